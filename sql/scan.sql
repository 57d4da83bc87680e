--
-- scan: plans, result order, scans that go on past ef_search, filters,
-- NULL and invalid query vectors, prepared statements.
--
CREATE FUNCTION scan_vec(i int, d int) RETURNS real[]
LANGUAGE sql IMMUTABLE STRICT AS $$
	SELECT array_agg(sin(i * 0.37 + j * 0.11 + (i % 7) * j * 0.013)::real ORDER BY j)
	FROM generate_series(1, d) j
$$;

CREATE TABLE scan_t (id int PRIMARY KEY, v real[]);
INSERT INTO scan_t SELECT i, scan_vec(i, 8) FROM generate_series(1, 500) i;
CREATE INDEX scan_t_idx ON scan_t USING engram_hnsw (v);
ANALYZE scan_t;

--
-- plans
--
-- on a large enough table the planner picks the index by itself for
-- ORDER BY distance LIMIT k ...
CREATE TABLE scan_big (id int, v real[]);
INSERT INTO scan_big
SELECT i, ARRAY[sin(i * 0.1), cos(i * 0.1), sin(i * 0.37), cos(i * 0.37)]::real[]
FROM generate_series(1, 20000) i;
CREATE INDEX scan_big_idx ON scan_big USING engram_hnsw (v);
ANALYZE scan_big;
EXPLAIN (costs off) SELECT id FROM scan_big ORDER BY v <-> '{0.5,-0.3,0.2,0.1}' LIMIT 10;
SELECT id FROM scan_big ORDER BY v <-> ARRAY[sin(1234 * 0.1), cos(1234 * 0.1), sin(1234 * 0.37), cos(1234 * 0.37)]::real[] LIMIT 1;
-- ... but not for queries without such an ORDER BY
EXPLAIN (costs off) SELECT id FROM scan_big WHERE id < 10;
EXPLAIN (costs off) SELECT count(*) FROM scan_big;
EXPLAIN (costs off) SELECT id FROM scan_big WHERE v = '{1,2,3,4}';
EXPLAIN (costs off) SELECT id FROM scan_big ORDER BY id LIMIT 10;
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('scan_big_idx');
DROP TABLE scan_big;

-- on the small table, force the index from here on
SET enable_seqscan = off;
EXPLAIN (costs off) SELECT id FROM scan_t ORDER BY v <-> '{0.5,-0.3,0.2,0.1,-0.4,0.6,0.3,-0.2}' LIMIT 10;
EXPLAIN (costs off) SELECT id, v <-> '{0.5,-0.3,0.2,0.1,-0.4,0.6,0.3,-0.2}' AS dist
FROM scan_t ORDER BY v <-> '{0.5,-0.3,0.2,0.1,-0.4,0.6,0.3,-0.2}' LIMIT 10;
-- even with sequential scans disabled, a plain WHERE query does not use it
EXPLAIN (costs off) SELECT id FROM scan_t WHERE v = '{1,2,3,4,5,6,7,8}';
EXPLAIN (costs off) SELECT count(*) FROM scan_t;
-- an operator of another operator class cannot use it
EXPLAIN (costs off) SELECT id FROM scan_t ORDER BY v <=> '{0.5,-0.3,0.2,0.1,-0.4,0.6,0.3,-0.2}' LIMIT 10;
-- descending order cannot use it
EXPLAIN (costs off) SELECT id FROM scan_t ORDER BY v <-> '{0.5,-0.3,0.2,0.1,-0.4,0.6,0.3,-0.2}' DESC LIMIT 10;

--
-- results come nearest first and equal the exact ones
--
SET engram_hnsw.ef_search = 100;
CREATE TEMP TABLE scan_idx AS
SELECT row_number() OVER () AS rn, id, v <-> '{0.5,-0.3,0.2,0.1,-0.4,0.6,0.3,-0.2}' AS dist
FROM (SELECT id, v FROM scan_t ORDER BY v <-> '{0.5,-0.3,0.2,0.1,-0.4,0.6,0.3,-0.2}' LIMIT 100) s;
SELECT count(*) AS rows,
       bool_and(dist >= prev) AS non_decreasing
FROM (SELECT dist, lag(dist) OVER (ORDER BY rn) AS prev FROM scan_idx) s;
RESET enable_seqscan;
SET enable_indexscan = off;
CREATE TEMP TABLE scan_exact AS
SELECT row_number() OVER () AS rn, id
FROM (SELECT id FROM scan_t ORDER BY v <-> '{0.5,-0.3,0.2,0.1,-0.4,0.6,0.3,-0.2}' LIMIT 100) s;
RESET enable_indexscan;
SET enable_seqscan = off;
SELECT count(*) AS rows,
       count(*) FILTER (WHERE i.id = e.id) AS same_position
FROM scan_idx i JOIN scan_exact e USING (rn);
DROP TABLE scan_idx, scan_exact;

-- the same for cosine and inner product on a small table
CREATE TABLE scan_ops (id int, v real[]);
INSERT INTO scan_ops SELECT i, scan_vec(i, 8) FROM generate_series(1, 32) i;
CREATE INDEX scan_ops_cos ON scan_ops USING engram_hnsw (v real_cosine_ops);
CREATE INDEX scan_ops_ip ON scan_ops USING engram_hnsw (v real_ip_ops);
SELECT count(*), bool_and(dist >= prev) AS non_decreasing
FROM (SELECT dist, lag(dist) OVER (ORDER BY rn) AS prev
      FROM (SELECT row_number() OVER () AS rn, v <=> '{0.5,-0.3,0.2,0.1,-0.4,0.6,0.3,-0.2}' AS dist
            FROM (SELECT v FROM scan_ops ORDER BY v <=> '{0.5,-0.3,0.2,0.1,-0.4,0.6,0.3,-0.2}' LIMIT 32) a) b) c;
SELECT count(*), bool_and(dist >= prev) AS non_decreasing
FROM (SELECT dist, lag(dist) OVER (ORDER BY rn) AS prev
      FROM (SELECT row_number() OVER () AS rn, v <#> '{0.5,-0.3,0.2,0.1,-0.4,0.6,0.3,-0.2}' AS dist
            FROM (SELECT v FROM scan_ops ORDER BY v <#> '{0.5,-0.3,0.2,0.1,-0.4,0.6,0.3,-0.2}' LIMIT 32) a) b) c;
SELECT c.relname, k.elements, k.heap_tids, k.unreachable
FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid,
LATERAL engram_hnsw_check(x.indexrelid) k
WHERE x.indrelid = 'scan_ops'::regclass
ORDER BY c.relname;
DROP TABLE scan_ops;

--
-- a scan does not stop at ef_search rows
--
SET engram_hnsw.ef_search = 10;
-- LIMIT larger than ef_search
SELECT count(*), count(DISTINCT id)
FROM (SELECT id FROM scan_t ORDER BY v <-> '{0.5,-0.3,0.2,0.1,-0.4,0.6,0.3,-0.2}' LIMIT 300) s;
-- the first ef_search rows are in order
SELECT count(*), bool_and(dist >= prev) AS non_decreasing
FROM (SELECT dist, lag(dist) OVER (ORDER BY rn) AS prev
      FROM (SELECT row_number() OVER () AS rn, v <-> '{0.5,-0.3,0.2,0.1,-0.4,0.6,0.3,-0.2}' AS dist
            FROM (SELECT v FROM scan_t ORDER BY v <-> '{0.5,-0.3,0.2,0.1,-0.4,0.6,0.3,-0.2}' LIMIT 10) a) b) c;
-- the whole index
SELECT count(*), count(DISTINCT id)
FROM (SELECT id FROM scan_t ORDER BY v <-> '{0.5,-0.3,0.2,0.1,-0.4,0.6,0.3,-0.2}' LIMIT 1000) s;
-- a filter that removes most rows still yields LIMIT rows
EXPLAIN (costs off)
SELECT id FROM scan_t WHERE id % 10 = 0
ORDER BY v <-> '{0.5,-0.3,0.2,0.1,-0.4,0.6,0.3,-0.2}' LIMIT 20;
SELECT count(*), bool_and(id % 10 = 0) AS all_match
FROM (SELECT id FROM scan_t WHERE id % 10 = 0
      ORDER BY v <-> '{0.5,-0.3,0.2,0.1,-0.4,0.6,0.3,-0.2}' LIMIT 20) s;
SELECT count(*), bool_and(id % 100 = 7) AS all_match
FROM (SELECT id FROM scan_t WHERE id % 100 = 7
      ORDER BY v <-> '{0.5,-0.3,0.2,0.1,-0.4,0.6,0.3,-0.2}' LIMIT 20) s;
-- a filter no row passes: the scan ends when the index is exhausted
SELECT count(*) FROM (SELECT id FROM scan_t WHERE id < 0
      ORDER BY v <-> '{0.5,-0.3,0.2,0.1,-0.4,0.6,0.3,-0.2}' LIMIT 20) s;
-- ef_search = 1 goes on searching too
SET engram_hnsw.ef_search = 1;
SELECT count(*), count(DISTINCT id)
FROM (SELECT id FROM scan_t ORDER BY v <-> scan_vec(250, 8) LIMIT 50) s;
SET engram_hnsw.ef_search = 40;

--
-- rescans: a different query vector for every outer row
--
EXPLAIN (costs off)
SELECT o.id, (SELECT i.id FROM scan_t i ORDER BY i.v <-> o.v LIMIT 1) AS nearest
FROM scan_t o WHERE o.id <= 5;
SELECT o.id, (SELECT i.id FROM scan_t i ORDER BY i.v <-> o.v LIMIT 1) AS nearest
FROM scan_t o WHERE o.id <= 5 ORDER BY o.id;
SELECT count(*) FILTER (WHERE (SELECT i.id FROM scan_t i ORDER BY i.v <-> o.v LIMIT 1) = o.id) AS found
FROM scan_t o;
-- a lateral join: three rows per outer row
SELECT count(*), count(DISTINCT o.id)
FROM (SELECT id, v FROM scan_t WHERE id <= 20) o,
LATERAL (SELECT i.id FROM scan_t i ORDER BY i.v <-> o.v LIMIT 3) n;

--
-- NULL and invalid query vectors
--
-- a NULL query vector is no error (the order is then undefined)
SELECT count(*) FROM (SELECT id FROM scan_t ORDER BY v <-> NULL LIMIT 5) s;
SELECT count(*) FROM (SELECT id FROM scan_t ORDER BY v <-> NULL::real[] LIMIT 1000) s;
-- a query vector of another dimension
SELECT id FROM scan_t ORDER BY v <-> '{1,2,3}' LIMIT 1;
SELECT id FROM scan_t ORDER BY v <-> '{1,2,3,4,5,6,7,8,9}' LIMIT 1;
-- invalid query vectors
SELECT id FROM scan_t ORDER BY v <-> '{1,2,3,4,5,6,7,NaN}' LIMIT 1;
SELECT id FROM scan_t ORDER BY v <-> '{1,2,3,4,5,6,7,Infinity}' LIMIT 1;
SELECT id FROM scan_t ORDER BY v <-> '{1,2,3,4,5,6,7,NULL}' LIMIT 1;
SELECT id FROM scan_t ORDER BY v <-> '{}' LIMIT 1;
SELECT id FROM scan_t ORDER BY v <-> '{{1,2,3,4},{5,6,7,8}}' LIMIT 1;
SELECT id FROM scan_t ORDER BY v <-> '[0:7]={1,2,3,4,5,6,7,8}' LIMIT 1;
SELECT id FROM scan_t ORDER BY v <-> array_fill(1::real, ARRAY[16001]) LIMIT 1;

--
-- prepared statements with a parameter vector
--
PREPARE scan_q(real[], int) AS
	SELECT id FROM scan_t ORDER BY v <-> $1 LIMIT $2;
EXPLAIN (costs off) EXECUTE scan_q('{0.5,-0.3,0.2,0.1,-0.4,0.6,0.3,-0.2}', 3);
EXECUTE scan_q(scan_vec(42, 8), 1);
EXECUTE scan_q(scan_vec(43, 8), 1);
EXECUTE scan_q(scan_vec(44, 8), 1);
EXECUTE scan_q(scan_vec(45, 8), 1);
EXECUTE scan_q(scan_vec(46, 8), 1);
-- by now a generic plan may be in use
EXECUTE scan_q(scan_vec(47, 8), 1);
EXECUTE scan_q(scan_vec(48, 8), 1);
EXECUTE scan_q('{1,2,3}', 1);
CREATE TEMP TABLE scan_null AS EXECUTE scan_q(NULL, 2);
SELECT count(*) FROM scan_null;
DEALLOCATE scan_q;
-- forced generic plan
SET plan_cache_mode = force_generic_plan;
PREPARE scan_g(real[]) AS SELECT id FROM scan_t ORDER BY v <-> $1 LIMIT 1;
EXPLAIN (costs off) EXECUTE scan_g(scan_vec(99, 8));
EXECUTE scan_g(scan_vec(99, 8));
EXECUTE scan_g(scan_vec(100, 8));
DEALLOCATE scan_g;
RESET plan_cache_mode;

-- a cursor, fetched in pieces
BEGIN;
DECLARE scan_c CURSOR FOR
	SELECT id FROM scan_t ORDER BY v <-> scan_vec(7, 8);
FETCH 1 FROM scan_c;
FETCH 3 FROM scan_c;
CLOSE scan_c;
COMMIT;
-- the same, exactly
SET enable_indexscan = off;
RESET enable_seqscan;
SELECT id FROM scan_t ORDER BY v <-> scan_vec(7, 8) LIMIT 4;
RESET enable_indexscan;
SET enable_seqscan = off;

SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('scan_t_idx');
RESET engram_hnsw.ef_search;
RESET enable_seqscan;
DROP TABLE scan_t, scan_null;
DROP FUNCTION scan_vec(int, int);
