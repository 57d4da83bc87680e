/* engram_hnsw--0.1.0--0.2.0.sql: ALTER EXTENSION engram_hnsw UPDATE TO '0.2.0' */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION engram_hnsw UPDATE TO '0.2.0'" to load this file. \quit

-- 0.2.0 adds the pending list (index option fastupdate, default on) and
-- striped insert pages.  Indexes built by 0.1.0 keep page format 1 and work
-- as before (rows go straight into the graph); REINDEX moves them to
-- format 2, which has the pending list.

-- engram_hnsw_check() reports pending rows as well
DROP FUNCTION @extschema@.engram_hnsw_check(regclass);
-- Structural verification of an index.  Raises ERROR (SQLSTATE XX001/XX002)
-- on any inconsistency; otherwise returns counts (pending: rows waiting in
-- the pending list).  Only the index owner (or a superuser) may run it.
CREATE FUNCTION @extschema@.engram_hnsw_check(index regclass,
	OUT pages bigint,
	OUT elements bigint,
	OUT deleted_elements bigint,
	OUT heap_tids bigint,
	OUT max_level int,
	OUT unreachable bigint,
	OUT pending bigint)
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
