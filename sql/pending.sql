--
-- pending: the fastupdate pending list.  Inserts wait there (exactly
-- searchable) until a merge links them into the graph: at the list's limit,
-- in VACUUM, or on engram_hnsw_merge_pending().
--
CREATE FUNCTION pend_vec(i int, d int) RETURNS real[]
LANGUAGE sql IMMUTABLE AS
$$ SELECT array_agg(sin(i * 0.37 + k * 1.3)::real ORDER BY k) FROM generate_series(1, d) k $$;

-- options
CREATE TABLE pend_t (id int, v real[]);
CREATE INDEX ON pend_t USING engram_hnsw (v) WITH (fastupdate = maybe);
CREATE INDEX ON pend_t USING engram_hnsw (v) WITH (fastupdate = on, fastupdate = off);
CREATE INDEX ON pend_t USING engram_hnsw (v) WITH (pending_list_limit = 63);
CREATE INDEX ON pend_t USING engram_hnsw (v) WITH (pending_list_limit = 'big');
SET engram_hnsw.pending_list_limit = 10;
SET engram_hnsw.pending_list_limit = '1MB';
SHOW engram_hnsw.pending_list_limit;
RESET engram_hnsw.pending_list_limit;

-- a bulk-built graph, then rows by INSERT: they are pending
INSERT INTO pend_t SELECT i, pend_vec(i, 8) FROM generate_series(1, 300) i;
CREATE INDEX pend_idx ON pend_t USING engram_hnsw (v) WITH (m = 8, ef_construction = 32);
SELECT pending, unreachable FROM engram_hnsw_check('pend_idx');
INSERT INTO pend_t SELECT i, pend_vec(i, 8) FROM generate_series(301, 500) i;
SELECT elements, heap_tids, unreachable, pending FROM engram_hnsw_check('pend_idx');

-- every row, pending or not, is found at once by its own vector
SET enable_seqscan = off;
SELECT count(*) AS rows,
       count(*) FILTER (WHERE (SELECT t2.id FROM pend_t t2 ORDER BY t2.v <-> t.v LIMIT 1) = t.id) AS found
FROM pend_t t;
-- and the order (graph and pending rows merged) is the exact one
CREATE FUNCTION pend_same(q real[], k int) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
	idx int[];
	exact int[];
BEGIN
	SET LOCAL enable_seqscan = off;
	SELECT array_agg(id) INTO idx FROM (SELECT id FROM pend_t ORDER BY v <-> q LIMIT k) s;
	SET LOCAL enable_seqscan = on;
	SET LOCAL enable_indexscan = off;
	SELECT array_agg(id) INTO exact FROM (SELECT id FROM pend_t ORDER BY v <-> q, id LIMIT k) s;
	RETURN idx = exact;
END $$;
SELECT pend_same(pend_vec(350, 8), 5) AS near_pending, pend_same(pend_vec(10, 8), 5) AS near_graph,
       pend_same(pend_vec(9999, 8), 20) AS anywhere;
-- the distance is exact for pending rows too
SELECT id, round((v <-> pend_vec(401, 8))::numeric, 5) AS dist
FROM pend_t ORDER BY v <-> pend_vec(401, 8) LIMIT 3;

-- rolled back and deleted rows are not returned
BEGIN;
INSERT INTO pend_t VALUES (1001, pend_vec(1001, 8));
ROLLBACK;
SELECT id FROM pend_t ORDER BY v <-> pend_vec(1001, 8) LIMIT 1;
DELETE FROM pend_t WHERE id = 450;
SELECT id FROM pend_t ORDER BY v <-> pend_vec(450, 8) LIMIT 1;

-- merging: the pending rows join the graph, nothing is lost
SELECT engram_hnsw_merge_pending('pend_idx') AS merged;
SELECT elements, heap_tids, unreachable, pending FROM engram_hnsw_check('pend_idx');
SELECT engram_hnsw_merge_pending('pend_idx') AS merged_again;
SELECT count(*) AS rows,
       count(*) FILTER (WHERE (SELECT t2.id FROM pend_t t2 ORDER BY t2.v <-> t.v LIMIT 1) = t.id) AS found
FROM pend_t t;

-- VACUUM merges too, and removes dead rows
INSERT INTO pend_t SELECT i, pend_vec(i, 8) FROM generate_series(501, 600) i;
DELETE FROM pend_t WHERE id BETWEEN 550 AND 559;
SELECT pending FROM engram_hnsw_check('pend_idx');
VACUUM pend_t;
SELECT elements - deleted_elements AS live, heap_tids, unreachable, pending
FROM engram_hnsw_check('pend_idx');

-- an insert that finds the list over its limit merges it
ALTER INDEX pend_idx SET (pending_list_limit = 64);
INSERT INTO pend_t SELECT i, pend_vec(i, 8) FROM generate_series(601, 2600) i;
SELECT pending < 2000 AS merged_on_the_way, unreachable FROM engram_hnsw_check('pend_idx');
SELECT count(*) AS rows,
       count(*) FILTER (WHERE (SELECT t2.id FROM pend_t t2 ORDER BY t2.v <-> t.v LIMIT 1) = t.id) AS found
FROM pend_t t;

-- fastupdate = off: rows go straight into the graph; pending ones stay found
ALTER INDEX pend_idx RESET (pending_list_limit);
-- (the merge worker may still be merging the rows above: the number merged
-- here varies, the list left behind does not)
SELECT engram_hnsw_merge_pending('pend_idx') AS merged_the_rest \gset
SELECT pending AS pending_after_merging_the_rest FROM engram_hnsw_check('pend_idx');
INSERT INTO pend_t SELECT i, pend_vec(i, 8) FROM generate_series(2601, 2700) i;
ALTER INDEX pend_idx SET (fastupdate = off);
SELECT pending AS pending_before FROM engram_hnsw_check('pend_idx');
INSERT INTO pend_t SELECT i, pend_vec(i, 8) FROM generate_series(2701, 2800) i;
SELECT pending AS pending_after FROM engram_hnsw_check('pend_idx');
SELECT pend_same(pend_vec(2650, 8), 5) AS near_pending, pend_same(pend_vec(2750, 8), 5) AS near_direct;
ALTER INDEX pend_idx SET (fastupdate = on);
SELECT engram_hnsw_merge_pending('pend_idx') AS merged;
SELECT unreachable, pending FROM engram_hnsw_check('pend_idx');
RESET enable_seqscan;

-- an empty index with dims unknown: the first pending row sets them
CREATE TABLE pend_e (id int, v real[]);
CREATE INDEX pend_e_idx ON pend_e USING engram_hnsw (v real_cosine_ops);
INSERT INTO pend_e VALUES (1, '{1,0,0}'), (2, '{0,1,0}'), (3, '{0,0,0}'), (4, NULL);
INSERT INTO pend_e VALUES (5, '{1,1}');
SET enable_seqscan = off;
SELECT id FROM pend_e ORDER BY v <=> '{1,0.1,0}' LIMIT 5;
SELECT engram_hnsw_merge_pending('pend_e_idx') AS merged;
SELECT id FROM pend_e ORDER BY v <=> '{1,0.1,0}' LIMIT 5;
SELECT elements, unreachable, pending FROM engram_hnsw_check('pend_e_idx');
RESET enable_seqscan;

-- memory spaces: each space's pending rows, only in that space
CREATE TABLE pend_s (id int, space_id int, v real[]);
INSERT INTO pend_s SELECT i, i % 5, pend_vec(i, 8) FROM generate_series(1, 200) i;
CREATE INDEX pend_s_idx ON pend_s USING engram_hnsw (space_id, v) WITH (m = 8, ef_construction = 32);
INSERT INTO pend_s SELECT i, i % 7, pend_vec(i, 8) FROM generate_series(201, 400) i;
SELECT pending FROM engram_hnsw_check('pend_s_idx');
SET enable_seqscan = off;
SELECT count(*) AS rows,
       count(*) FILTER (WHERE (SELECT t2.id FROM pend_s t2 WHERE t2.space_id = t.space_id
                               ORDER BY t2.v <-> t.v LIMIT 1) = t.id) AS found_in_space,
       count(*) FILTER (WHERE (SELECT t2.id FROM pend_s t2 ORDER BY t2.v <-> t.v LIMIT 1) = t.id) AS found_all
FROM pend_s t;
-- a space that only has pending rows so far
SELECT array_agg(id ORDER BY id) AS space_6 FROM (SELECT id FROM pend_s WHERE space_id = 6 ORDER BY v <-> pend_vec(1, 8) LIMIT 100) s;
SELECT count(*) = count(*) FILTER (WHERE space_id IN (5, 6)) AS only_5_and_6
FROM (SELECT id, space_id FROM pend_s WHERE space_id = ANY ('{5,6}') ORDER BY v <-> pend_vec(3, 8) LIMIT 30) s;
SELECT engram_hnsw_merge_pending('pend_s_idx') AS merged;
SELECT unreachable, pending FROM engram_hnsw_check('pend_s_idx');
SELECT array_agg(id ORDER BY id) AS space_6 FROM (SELECT id FROM pend_s WHERE space_id = 6 ORDER BY v <-> pend_vec(1, 8) LIMIT 100) s;
RESET enable_seqscan;

-- merges keep the vectors they read in the backend's vector cache, for the
-- next merge of the same index: with evictions (64 kB holds about 680 of
-- these 16-d vectors, for up to 2600 elements), across a VACUUM that marks
-- elements deleted (the cache starts over after it), and with the cache off
-- (0).  The graph stays whole, and every row is found by its own vector.
CREATE FUNCTION pend_rvec(i int, d int) RETURNS real[]
LANGUAGE sql IMMUTABLE AS
$$ SELECT array_agg((x - floor(x))::real ORDER BY k)
   FROM (SELECT k, sin(i * 12.9898 + k * 78.233) * 43758.5453 AS x FROM generate_series(1, d) k) s $$;
CREATE TABLE pend_c (id int, v real[]);
INSERT INTO pend_c SELECT i, pend_rvec(i, 16) FROM generate_series(1, 1000) i;
CREATE INDEX pend_c_idx ON pend_c USING engram_hnsw (v) WITH (m = 8, ef_construction = 32);
SET engram_hnsw.vector_cache_size = 64;
SHOW engram_hnsw.vector_cache_size;
INSERT INTO pend_c SELECT i, pend_rvec(i, 16) FROM generate_series(1001, 1400) i;
SELECT engram_hnsw_merge_pending('pend_c_idx') AS merged;
INSERT INTO pend_c SELECT i, pend_rvec(i, 16) FROM generate_series(1401, 1800) i;
SELECT engram_hnsw_merge_pending('pend_c_idx') AS merged;
SELECT elements, unreachable, pending FROM engram_hnsw_check('pend_c_idx');
-- the meta page's vacuum_gen (uint16 at byte 46 of block 0) moves on a VACUUM
-- that marks elements deleted (and again as it frees their slots), and only then
CREATE EXTENSION IF NOT EXISTS pageinspect;
CREATE FUNCTION pend_vacuum_gen() RETURNS int LANGUAGE sql AS
$$ SELECT get_byte(p, 46) + 256 * get_byte(p, 47) FROM get_raw_page('pend_c_idx', 0) p $$;
SELECT pend_vacuum_gen() AS gen_before \gset
VACUUM pend_c;
SELECT pend_vacuum_gen() - :gen_before AS gen_after_vacuum_without_deletes;
DELETE FROM pend_c WHERE id % 3 = 0;
VACUUM pend_c;
SELECT pend_vacuum_gen() - :gen_before AS gen_after_vacuum_with_deletes;
DROP FUNCTION pend_vacuum_gen();
DROP EXTENSION pageinspect;
SELECT elements, deleted_elements, unreachable, pending FROM engram_hnsw_check('pend_c_idx');
INSERT INTO pend_c SELECT i, pend_rvec(i, 16) FROM generate_series(1801, 2400) i;
SELECT engram_hnsw_merge_pending('pend_c_idx') AS merged;
SELECT elements - deleted_elements AS live, elements < 2400 AS slots_reused, unreachable, pending FROM engram_hnsw_check('pend_c_idx');
SET engram_hnsw.vector_cache_size = 0;
INSERT INTO pend_c SELECT i, pend_rvec(i, 16) FROM generate_series(2401, 2600) i;
SELECT engram_hnsw_merge_pending('pend_c_idx') AS merged;
SELECT elements - deleted_elements AS live, elements < 2600 AS slots_reused, unreachable, pending FROM engram_hnsw_check('pend_c_idx');
RESET engram_hnsw.vector_cache_size;
SET enable_seqscan = off;
SET engram_hnsw.ef_search = 100;
SELECT count(*) AS rows,
       count(*) FILTER (WHERE (SELECT t2.id FROM pend_c t2 ORDER BY t2.v <-> t.v LIMIT 1) = t.id) AS found
FROM pend_c t;
RESET engram_hnsw.ef_search;
RESET enable_seqscan;

-- engram_hnsw_merge_pending on the wrong relations, and as a non-owner
DO $$
BEGIN
	PERFORM engram_hnsw_merge_pending('pend_t');
EXCEPTION WHEN OTHERS THEN
	RAISE NOTICE '%: %', SQLSTATE, regexp_replace(SQLERRM, 'OID [0-9]+', 'OID N');
END $$;
CREATE INDEX pend_btree ON pend_t (id);
SELECT engram_hnsw_merge_pending('pend_btree');
SELECT engram_hnsw_merge_pending(NULL);
CREATE TABLE pend_p (id int, space_id int, v real[]) PARTITION BY LIST (space_id);
CREATE TABLE pend_p1 PARTITION OF pend_p FOR VALUES IN (1);
CREATE INDEX pend_p_idx ON pend_p USING engram_hnsw (v);
SELECT engram_hnsw_merge_pending('pend_p_idx');
CREATE ROLE pend_stranger;
SET ROLE pend_stranger;
SELECT engram_hnsw_merge_pending('pend_idx');
RESET ROLE;
DROP ROLE pend_stranger;

DROP TABLE pend_t, pend_e, pend_s, pend_p, pend_c;
DROP FUNCTION pend_rvec(int, int);
DROP FUNCTION pend_same(real[], int);
DROP FUNCTION pend_vec(int, int);
