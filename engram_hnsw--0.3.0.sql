/* engram_hnsw--0.3.0.sql: install script for engram_hnsw 0.3.0 */

\echo Use "CREATE EXTENSION engram_hnsw" to load this file. \quit

-- Planner support function of the distance functions: estimates the cost
-- of a call from the vectors' length and whether the column's vectors are
-- stored out of line (a fixed COST cannot: a call on 1536 out-of-line
-- floats costs about 20 times one on 128 inline floats).
CREATE FUNCTION @extschema@.engram_hnsw_distance_support(internal) RETURNS internal
	AS 'MODULE_PATHNAME', 'engram_hnsw_distance_support'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- Distance functions on real[] (one-dimensional, no NULL, NaN or infinite
-- elements, equal lengths).  All are immutable, strict and parallel safe.
CREATE FUNCTION @extschema@.l2_distance(real[], real[]) RETURNS float8
	AS 'MODULE_PATHNAME', 'engram_l2_distance'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
	SUPPORT @extschema@.engram_hnsw_distance_support;

CREATE FUNCTION @extschema@.cosine_distance(real[], real[]) RETURNS float8
	AS 'MODULE_PATHNAME', 'engram_cosine_distance'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
	SUPPORT @extschema@.engram_hnsw_distance_support;

CREATE FUNCTION @extschema@.inner_product(real[], real[]) RETURNS float8
	AS 'MODULE_PATHNAME', 'engram_inner_product'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
	SUPPORT @extschema@.engram_hnsw_distance_support;

CREATE FUNCTION @extschema@.negative_inner_product(real[], real[]) RETURNS float8
	AS 'MODULE_PATHNAME', 'engram_negative_inner_product'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
	SUPPORT @extschema@.engram_hnsw_distance_support;

CREATE OPERATOR @extschema@.<-> (
	LEFTARG = real[], RIGHTARG = real[],
	FUNCTION = @extschema@.l2_distance,
	COMMUTATOR = OPERATOR(@extschema@.<->)
);

CREATE OPERATOR @extschema@.<=> (
	LEFTARG = real[], RIGHTARG = real[],
	FUNCTION = @extschema@.cosine_distance,
	COMMUTATOR = OPERATOR(@extschema@.<=>)
);

CREATE OPERATOR @extschema@.<#> (
	LEFTARG = real[], RIGHTARG = real[],
	FUNCTION = @extschema@.negative_inner_product,
	COMMUTATOR = OPERATOR(@extschema@.<#>)
);

-- The access method
CREATE FUNCTION @extschema@.engram_hnsw_handler(internal) RETURNS index_am_handler
	AS 'MODULE_PATHNAME', 'engram_hnsw_handler'
	LANGUAGE C;

CREATE ACCESS METHOD engram_hnsw TYPE INDEX HANDLER @extschema@.engram_hnsw_handler;

COMMENT ON ACCESS METHOD engram_hnsw IS 'HNSW graph index for approximate nearest-neighbour search on real[]';

-- Support function 1 of every operator class: tells the index which metric
-- the class uses.  It takes "internal", so it cannot be called from SQL.
CREATE FUNCTION @extschema@.engram_hnsw_l2_support(internal) RETURNS int4
	AS 'MODULE_PATHNAME', 'engram_hnsw_l2_support'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@.engram_hnsw_cosine_support(internal) RETURNS int4
	AS 'MODULE_PATHNAME', 'engram_hnsw_cosine_support'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@.engram_hnsw_ip_support(internal) RETURNS int4
	AS 'MODULE_PATHNAME', 'engram_hnsw_ip_support'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OPERATOR CLASS @extschema@.real_l2_ops
	DEFAULT FOR TYPE real[] USING engram_hnsw AS
	OPERATOR 1 @extschema@.<-> (real[], real[]) FOR ORDER BY pg_catalog.float_ops,
	FUNCTION 1 @extschema@.engram_hnsw_l2_support(internal);

CREATE OPERATOR CLASS @extschema@.real_cosine_ops
	FOR TYPE real[] USING engram_hnsw AS
	OPERATOR 1 @extschema@.<=> (real[], real[]) FOR ORDER BY pg_catalog.float_ops,
	FUNCTION 1 @extschema@.engram_hnsw_cosine_support(internal);

CREATE OPERATOR CLASS @extschema@.real_ip_ops
	FOR TYPE real[] USING engram_hnsw AS
	OPERATOR 1 @extschema@.<#> (real[], real[]) FOR ORDER BY pg_catalog.float_ops,
	FUNCTION 1 @extschema@.engram_hnsw_ip_support(internal);

-- Memory spaces: a leading space key column (int4, int8, text or uuid)
-- gives every distinct key its own graph.  These classes are the defaults,
-- so CREATE INDEX ... USING engram_hnsw (space_id, embedding) just works;
-- "space_id = value" and "space_id = ANY(array)" are answered by the index.
CREATE FUNCTION @extschema@.engram_hnsw_space_support(internal) RETURNS int4
	AS 'MODULE_PATHNAME', 'engram_hnsw_space_support'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OPERATOR CLASS @extschema@.int4_space_ops
	DEFAULT FOR TYPE int4 USING engram_hnsw AS
	OPERATOR 1 pg_catalog.= (int4, int4),
	FUNCTION 1 @extschema@.engram_hnsw_space_support(internal);

CREATE OPERATOR CLASS @extschema@.int8_space_ops
	DEFAULT FOR TYPE int8 USING engram_hnsw AS
	OPERATOR 1 pg_catalog.= (int8, int8),
	FUNCTION 1 @extschema@.engram_hnsw_space_support(internal);

CREATE OPERATOR CLASS @extschema@.text_space_ops
	DEFAULT FOR TYPE text USING engram_hnsw AS
	OPERATOR 1 pg_catalog.= (text, text),
	FUNCTION 1 @extschema@.engram_hnsw_space_support(internal);

CREATE OPERATOR CLASS @extschema@.uuid_space_ops
	DEFAULT FOR TYPE uuid USING engram_hnsw AS
	OPERATOR 1 pg_catalog.= (uuid, uuid),
	FUNCTION 1 @extschema@.engram_hnsw_space_support(internal);

-- Structural verification of an index.  Raises ERROR (SQLSTATE XX001/XX002)
-- on any inconsistency; otherwise returns counts (pending: rows waiting in
-- the pending list), the index's page format and its code kind (format 3;
-- NULL before).  Only the index owner (or a superuser) may run it.
CREATE FUNCTION @extschema@.engram_hnsw_check(index regclass,
	OUT pages bigint,
	OUT elements bigint,
	OUT deleted_elements bigint,
	OUT heap_tids bigint,
	OUT max_level int,
	OUT unreachable bigint,
	OUT pending bigint,
	OUT format int,
	OUT codes text)
	RETURNS record
	AS 'MODULE_PATHNAME', 'engram_hnsw_check'
	LANGUAGE C STRICT PARALLEL RESTRICTED;

-- Merge the pending list (fastupdate) of an index into its graph now;
-- returns the number of rows linked.  VACUUM and inserts that find the
-- list over pending_list_limit do the same.  Only the index owner (or a
-- superuser) may run it.
CREATE FUNCTION @extschema@.engram_hnsw_merge_pending(index regclass)
	RETURNS bigint
	AS 'MODULE_PATHNAME', 'engram_hnsw_merge_pending'
	LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

