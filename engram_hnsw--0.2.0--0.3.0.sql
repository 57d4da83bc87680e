/* engram_hnsw--0.2.0--0.3.0.sql: ALTER EXTENSION engram_hnsw UPDATE TO '0.3.0' */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION engram_hnsw UPDATE TO '0.3.0'" to load this file. \quit

-- 0.3.0 gives the distance functions a planner support function that
-- estimates the cost of a call from the vectors' length and whether the
-- column's vectors are stored out of line (the fixed COST 1 of 0.2.0 made
-- a seq scan + sort over 1536-d vectors look 20 times cheaper than it is).
-- Indexes and their page format are unchanged.
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
