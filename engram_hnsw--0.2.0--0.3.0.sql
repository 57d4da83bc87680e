/* engram_hnsw--0.2.0--0.3.0.sql: ALTER EXTENSION engram_hnsw UPDATE TO '0.3.0' */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION engram_hnsw UPDATE TO '0.3.0'" to load this file. \quit

-- 0.3.0 gives the distance functions a planner support function that
-- estimates the cost of a call from the vectors' length and whether the
-- column's vectors are stored out of line (the fixed COST 1 of 0.2.0 made
-- a seq scan + sort over 1536-d vectors look 20 times cheaper than it is).
-- Existing indexes keep their page format (1 or 2) and keep working; new
-- indexes, and a REINDEX, use format 3 (compact codes, vectors of up to
-- 16 000 dimensions).
CREATE FUNCTION @extschema@.engram_hnsw_distance_support(internal) RETURNS internal
	AS 'MODULE_PATHNAME', 'engram_hnsw_distance_support'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

ALTER FUNCTION @extschema@.l2_distance(real[], real[])
	SUPPORT @extschema@.engram_hnsw_distance_support;
ALTER FUNCTION @extschema@.cosine_distance(real[], real[])
	SUPPORT @extschema@.engram_hnsw_distance_support;
ALTER FUNCTION @extschema@.inner_product(real[], real[])
	SUPPORT @extschema@.engram_hnsw_distance_support;
ALTER FUNCTION @extschema@.negative_inner_product(real[], real[])
	SUPPORT @extschema@.engram_hnsw_distance_support;

-- engram_hnsw_check also reports the page format and the code kind.
DROP FUNCTION @extschema@.engram_hnsw_check(regclass);
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
