--
-- insert: rows added after CREATE INDEX, the dimension of an index
-- created on an empty table, dimension errors, UPDATE, cosine zero
-- vectors, aborted inserts.
--
CREATE FUNCTION ins_vec(i int, d int) RETURNS real[]
LANGUAGE sql IMMUTABLE STRICT AS $$
	SELECT array_agg(sin(i * 0.37 + j * 0.11 + (i % 7) * j * 0.013)::real ORDER BY j)
	FROM generate_series(1, d) j
$$;

SET enable_seqscan = off;

--
-- an index created on an empty table without dims: the first vector
-- fixes the dimension
--
-- (free space on every page: an UPDATE of another column is always a HOT
-- update, which adds no index entry)
CREATE TABLE ins_t (id int, v real[]) WITH (fillfactor = 50);
CREATE INDEX ins_t_idx ON ins_t USING engram_hnsw (v);
SELECT elements, heap_tids FROM engram_hnsw_check('ins_t_idx');
INSERT INTO ins_t VALUES (1, ins_vec(1, 6));
-- another dimension now fails, naming both numbers
INSERT INTO ins_t VALUES (2, ins_vec(2, 5));
INSERT INTO ins_t VALUES (2, ins_vec(2, 7));
INSERT INTO ins_t VALUES (2, '{1}');
-- many rows in one statement, then one by one
INSERT INTO ins_t SELECT i, ins_vec(i, 6) FROM generate_series(2, 300) i;
DO $$
BEGIN
	FOR i IN 301..400 LOOP
		INSERT INTO ins_t VALUES (i, ins_vec(i, 6));
	END LOOP;
END
$$;
-- and with COPY
COPY ins_t FROM stdin;
401	{0.1,0.2,0.3,0.4,0.5,0.6}
402	{-0.1,0.2,-0.3,0.4,-0.5,0.6}
403	\N
\.
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('ins_t_idx');
-- every row is found by its own vector
SELECT count(*) AS rows,
       count(*) FILTER (WHERE (SELECT i2.id FROM ins_t i2 ORDER BY i2.v <-> i.v LIMIT 1) = i.id) AS found
FROM ins_t i WHERE v IS NOT NULL;
SELECT count(*), count(DISTINCT id)
FROM (SELECT id FROM ins_t ORDER BY v <-> '{0,0,0,0,0,0}' LIMIT 1000) s;
-- invalid vectors are rejected by the index
INSERT INTO ins_t VALUES (500, '{1,2,3,4,5,NaN}');
INSERT INTO ins_t VALUES (500, '{1,2,3,4,5,-Infinity}');
INSERT INTO ins_t VALUES (500, '{1,2,3,4,5,NULL}');
INSERT INTO ins_t VALUES (500, '{}');
INSERT INTO ins_t VALUES (500, '{{1,2,3},{4,5,6}}');
INSERT INTO ins_t VALUES (500, '[2:7]={1,2,3,4,5,6}');
INSERT INTO ins_t VALUES (500, array_fill(1::real, ARRAY[16001]));
SELECT count(*) FROM ins_t WHERE id = 500;

--
-- UPDATE of a vector
--
UPDATE ins_t SET v = '{5,5,5,5,5,5}' WHERE id = 10;
SELECT id FROM ins_t ORDER BY v <-> '{5,5,5,5,5,5}' LIMIT 1;
-- the old vector now finds another row
SELECT id <> 10 AS moved FROM ins_t ORDER BY v <-> ins_vec(10, 6) LIMIT 1;
SELECT count(*) FROM (SELECT id FROM ins_t ORDER BY v <-> ins_vec(10, 6) LIMIT 1000) s WHERE id = 10;
-- to NULL and back
UPDATE ins_t SET v = NULL WHERE id = 11;
SELECT count(*) FROM (SELECT id FROM ins_t ORDER BY v <-> ins_vec(11, 6) LIMIT 1000) s WHERE id = 11;
UPDATE ins_t SET v = '{-5,-5,-5,-5,-5,-5}' WHERE id = 11;
SELECT id FROM ins_t ORDER BY v <-> '{-5,-5,-5,-5,-5,-5}' LIMIT 1;
-- an UPDATE that leaves the vector alone
UPDATE ins_t SET id = 1000 WHERE id = 12;
SELECT id FROM ins_t ORDER BY v <-> ins_vec(12, 6) LIMIT 1;
-- an UPDATE to another dimension fails
UPDATE ins_t SET v = '{1,2,3}' WHERE id = 13;
-- the old versions are still in the index until VACUUM
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('ins_t_idx');

--
-- aborted inserts are never returned
--
BEGIN;
INSERT INTO ins_t VALUES (2000, '{9,9,9,9,9,9}'), (2001, '{9,9,9,9,9,8}');
SELECT id FROM ins_t ORDER BY v <-> '{9,9,9,9,9,9}' LIMIT 2;
ROLLBACK;
SELECT id FROM ins_t ORDER BY v <-> '{9,9,9,9,9,9}' LIMIT 1;
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('ins_t_idx');
DROP TABLE ins_t;

--
-- an index with dims set, on an empty table
--
CREATE TABLE ins_dims (id int, v real[]);
CREATE INDEX ins_dims_idx ON ins_dims USING engram_hnsw (v) WITH (dims = 4);
INSERT INTO ins_dims VALUES (1, '{1,2,3}');
INSERT INTO ins_dims VALUES (1, '{1,2,3,4,5}');
INSERT INTO ins_dims VALUES (1, '{1,2,3,4}');
SELECT id FROM ins_dims ORDER BY v <-> '{1,2,3,4}' LIMIT 1;
-- a query of another dimension
SELECT id FROM ins_dims ORDER BY v <-> '{1,2,3}' LIMIT 1;
SELECT elements, heap_tids, unreachable FROM engram_hnsw_check('ins_dims_idx');
-- an empty index with dims set also checks queries
TRUNCATE ins_dims;
SELECT id FROM ins_dims ORDER BY v <-> '{1,2,3,4}' LIMIT 1;
DROP TABLE ins_dims;

--
-- cosine: zero vectors are not indexed, and inserting one is no error
--
CREATE TABLE ins_cos (id int, v real[]);
CREATE INDEX ins_cos_idx ON ins_cos USING engram_hnsw (v real_cosine_ops);
INSERT INTO ins_cos VALUES (1, '{0,0,0}');
-- an all-zero first vector does not fix the dimension
INSERT INTO ins_cos VALUES (2, '{0,0,0,0}');
SELECT elements, heap_tids FROM engram_hnsw_check('ins_cos_idx');
INSERT INTO ins_cos SELECT i, ins_vec(i, 3) FROM generate_series(3, 40) i;
INSERT INTO ins_cos VALUES (41, '{0,0,0}'), (42, '{-0,0,-0}');
RESET enable_seqscan;
SELECT count(*) AS table_rows FROM ins_cos;
SET enable_seqscan = off;
SELECT count(*) AS index_rows
FROM (SELECT id FROM ins_cos ORDER BY v <=> '{1,2,3}' LIMIT 100) s;
-- a zero query vector is no error either
SELECT count(*) FROM (SELECT id FROM ins_cos ORDER BY v <=> '{0,0,0}' LIMIT 100) s;
-- the same vector scaled is the same direction
SELECT id FROM ins_cos ORDER BY v <=> (SELECT array_agg(x * 10)::real[] FROM unnest(ins_vec(17, 3)) x) LIMIT 1;
SELECT elements, heap_tids, unreachable FROM engram_hnsw_check('ins_cos_idx');
DROP TABLE ins_cos;

--
-- inner product, filled by inserts
--
CREATE TABLE ins_ip (id int, v real[]);
CREATE INDEX ins_ip_idx ON ins_ip USING engram_hnsw (v real_ip_ops);
INSERT INTO ins_ip SELECT i, ins_vec(i, 4) FROM generate_series(1, 32) i;
SELECT count(*), bool_and(dist >= prev) AS non_decreasing
FROM (SELECT dist, lag(dist) OVER (ORDER BY rn) AS prev
      FROM (SELECT row_number() OVER () AS rn, v <#> '{1,-1,1,-1}' AS dist
            FROM (SELECT v FROM ins_ip ORDER BY v <#> '{1,-1,1,-1}' LIMIT 32) a) b) c;
SELECT elements, heap_tids, unreachable FROM engram_hnsw_check('ins_ip_idx');
DROP TABLE ins_ip;

--
-- identical vectors inserted one by one
--
CREATE TABLE ins_dup (id int, v real[]);
CREATE INDEX ins_dup_idx ON ins_dup USING engram_hnsw (v);
INSERT INTO ins_dup SELECT i, '{1,1,1}' FROM generate_series(1, 20) i;
SELECT count(*), count(DISTINCT id)
FROM (SELECT id FROM ins_dup ORDER BY v <-> '{1,1,1}' LIMIT 100) s;
SELECT heap_tids, unreachable FROM engram_hnsw_check('ins_dup_idx');
DROP TABLE ins_dup;

RESET enable_seqscan;
DROP FUNCTION ins_vec(int, int);
