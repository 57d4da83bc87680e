--
-- build: CREATE INDEX on empty, tiny, NULL-holding, duplicate-holding and
-- high-dimensional tables, several indexes on one column, and a build that
-- does not fit into maintenance_work_mem.
--
-- Vectors come from a fixed formula (no random()); element levels are
-- random, so only counts and ids that do not depend on them are printed.
--

-- a deterministic d-dimensional vector for row i
CREATE FUNCTION build_vec(i int, d int) RETURNS real[]
LANGUAGE sql IMMUTABLE STRICT AS $$
	SELECT array_agg(sin(i * 0.37 + j * 0.11 + (i % 7) * j * 0.013)::real ORDER BY j)
	FROM generate_series(1, d) j
$$;

SET enable_seqscan = off;
-- large enough to make every search below exact on these small tables
SET engram_hnsw.ef_search = 1000;

--
-- an index on an empty table, then inserts
--
CREATE TABLE build_empty (id int, v real[]);
CREATE INDEX build_empty_idx ON build_empty USING engram_hnsw (v);
SELECT pages, elements, deleted_elements, heap_tids, max_level, unreachable
FROM engram_hnsw_check('build_empty_idx');
EXPLAIN (costs off) SELECT id FROM build_empty ORDER BY v <-> '{1,2,3}' LIMIT 5;
SELECT id FROM build_empty ORDER BY v <-> '{1,2,3}' LIMIT 5;
-- the first vector fixes the dimension
INSERT INTO build_empty SELECT i, build_vec(i, 3) FROM generate_series(1, 100) i;
SELECT elements, deleted_elements, heap_tids, unreachable
FROM engram_hnsw_check('build_empty_idx');
INSERT INTO build_empty VALUES (101, '{1,2}');
-- every row is the nearest neighbour of its own vector
EXPLAIN (costs off)
SELECT b.id, (SELECT b2.id FROM build_empty b2 ORDER BY b2.v <-> b.v LIMIT 1)
FROM build_empty b;
SELECT count(*) AS rows,
       count(*) FILTER (WHERE (SELECT b2.id FROM build_empty b2 ORDER BY b2.v <-> b.v LIMIT 1) = b.id) AS found
FROM build_empty b;
SELECT count(*) FROM (SELECT id FROM build_empty ORDER BY v <-> '{0,0,0}' LIMIT 1000) s;
DROP TABLE build_empty;

--
-- one row
--
CREATE TABLE build_one (id int, v real[]);
INSERT INTO build_one VALUES (1, '{0.5,-1,2}');
CREATE INDEX build_one_idx ON build_one USING engram_hnsw (v);
SELECT pages, elements, deleted_elements, heap_tids, max_level >= 0 AS has_level, unreachable
FROM engram_hnsw_check('build_one_idx');
SELECT id FROM build_one ORDER BY v <-> '{0.5,-1,2}' LIMIT 1;
SELECT id FROM build_one ORDER BY v <-> '{100,100,100}' LIMIT 5;
SELECT id, v <-> '{0.5,-1,2}' AS dist FROM build_one ORDER BY v <-> '{0.5,-1,2}' LIMIT 5;
-- a second row, inserted into the built index
INSERT INTO build_one VALUES (2, '{1,1,1}');
SELECT id FROM build_one ORDER BY v <-> '{1,1,1.1}' LIMIT 5;
SELECT elements, heap_tids, unreachable FROM engram_hnsw_check('build_one_idx');
DROP TABLE build_one;

--
-- NULL vectors are not indexed
--
CREATE TABLE build_nulls (id int, v real[]);
INSERT INTO build_nulls
SELECT i, CASE WHEN i % 2 = 0 THEN NULL ELSE build_vec(i, 4) END
FROM generate_series(1, 40) i;
CREATE INDEX build_nulls_idx ON build_nulls USING engram_hnsw (v);
SELECT elements, deleted_elements, heap_tids, unreachable
FROM engram_hnsw_check('build_nulls_idx');
-- the index returns only the 20 non-NULL rows (a sequential scan would
-- return the NULL ones last)
SELECT count(*) AS rows, count(v) AS non_null,
       (SELECT count(*) FROM (SELECT id FROM build_nulls ORDER BY v <-> build_vec(1, 4) LIMIT 100) s) AS index_rows,
       (SELECT bool_and(id % 2 = 1) FROM (SELECT id FROM build_nulls ORDER BY v <-> build_vec(1, 4) LIMIT 100) s) AS only_odd
FROM build_nulls;
INSERT INTO build_nulls VALUES (41, NULL), (43, build_vec(43, 4));
SELECT elements, heap_tids, unreachable FROM engram_hnsw_check('build_nulls_idx');
DROP TABLE build_nulls;

-- only NULLs: an empty index without a dimension; the first vector sets it
CREATE TABLE build_only_nulls (id int, v real[]);
INSERT INTO build_only_nulls SELECT i, NULL FROM generate_series(1, 10) i;
CREATE INDEX build_only_nulls_idx ON build_only_nulls USING engram_hnsw (v);
SELECT pages, elements, heap_tids, max_level, unreachable
FROM engram_hnsw_check('build_only_nulls_idx');
SELECT count(*) FROM (SELECT id FROM build_only_nulls ORDER BY v <-> '{1,2}' LIMIT 10) s;
INSERT INTO build_only_nulls VALUES (11, '{1,2}'), (12, '{3,4}');
INSERT INTO build_only_nulls VALUES (13, '{1,2,3}');
SELECT id FROM build_only_nulls ORDER BY v <-> '{3,3.9}' LIMIT 10;
SELECT elements, heap_tids, unreachable FROM engram_hnsw_check('build_only_nulls_idx');
DROP TABLE build_only_nulls;

--
-- duplicates: 1000 identical vectors, every one of them findable
--
CREATE TABLE build_dup (id int, v real[]);
INSERT INTO build_dup SELECT i, '{1,1,1}' FROM generate_series(1, 1000) i;
CREATE INDEX build_dup_idx ON build_dup USING engram_hnsw (v);
SELECT heap_tids, deleted_elements, unreachable FROM engram_hnsw_check('build_dup_idx');
SET engram_hnsw.ef_search = 40;
SELECT count(*), count(DISTINCT id), min(id), max(id)
FROM (SELECT id FROM build_dup ORDER BY v <-> '{1,1,1}' LIMIT 1000) s;
SELECT count(*), count(DISTINCT id)
FROM (SELECT id FROM build_dup ORDER BY v <-> '{1,1,1}' LIMIT 2000) s;
-- also from far away
SELECT count(*), count(DISTINCT id)
FROM (SELECT id FROM build_dup ORDER BY v <-> '{-5,3,100}' LIMIT 2000) s;
SET engram_hnsw.ef_search = 1000;
DROP TABLE build_dup;

--
-- several engram_hnsw indexes on one column: each serves its operator
--
-- (32 rows: see the report about inner-product builds of larger tables)
CREATE TABLE build_multi (id int, v real[]);
INSERT INTO build_multi SELECT i, build_vec(i, 8) FROM generate_series(1, 32) i;
CREATE INDEX build_multi_l2 ON build_multi USING engram_hnsw (v real_l2_ops);
CREATE INDEX build_multi_cos ON build_multi USING engram_hnsw (v real_cosine_ops);
CREATE INDEX build_multi_ip ON build_multi USING engram_hnsw (v real_ip_ops);
EXPLAIN (costs off) SELECT id FROM build_multi ORDER BY v <-> '{0.5,-0.3,0.2,0.1,-0.4,0.6,0.3,-0.2}' LIMIT 5;
EXPLAIN (costs off) SELECT id FROM build_multi ORDER BY v <=> '{0.5,-0.3,0.2,0.1,-0.4,0.6,0.3,-0.2}' LIMIT 5;
EXPLAIN (costs off) SELECT id FROM build_multi ORDER BY v <#> '{0.5,-0.3,0.2,0.1,-0.4,0.6,0.3,-0.2}' LIMIT 5;
-- the commuted form is served too
EXPLAIN (costs off) SELECT id FROM build_multi ORDER BY '{0.5,-0.3,0.2,0.1,-0.4,0.6,0.3,-0.2}' <-> v LIMIT 5;
-- index results equal the exact ones
CREATE TEMP TABLE build_multi_idx AS
SELECT 'l2' AS op, array_agg(id) AS ids FROM (SELECT id FROM build_multi ORDER BY v <-> '{0.5,-0.3,0.2,0.1,-0.4,0.6,0.3,-0.2}' LIMIT 10) s
UNION ALL
SELECT 'cos', array_agg(id) FROM (SELECT id FROM build_multi ORDER BY v <=> '{0.5,-0.3,0.2,0.1,-0.4,0.6,0.3,-0.2}' LIMIT 10) s
UNION ALL
SELECT 'ip', array_agg(id) FROM (SELECT id FROM build_multi ORDER BY v <#> '{0.5,-0.3,0.2,0.1,-0.4,0.6,0.3,-0.2}' LIMIT 10) s;
SET enable_indexscan = off;
SET enable_seqscan = on;
EXPLAIN (costs off) SELECT id FROM build_multi ORDER BY v <-> '{0.5,-0.3,0.2,0.1,-0.4,0.6,0.3,-0.2}' LIMIT 5;
CREATE TEMP TABLE build_multi_exact AS
SELECT 'l2' AS op, array_agg(id) AS ids FROM (SELECT id FROM build_multi ORDER BY v <-> '{0.5,-0.3,0.2,0.1,-0.4,0.6,0.3,-0.2}' LIMIT 10) s
UNION ALL
SELECT 'cos', array_agg(id) FROM (SELECT id FROM build_multi ORDER BY v <=> '{0.5,-0.3,0.2,0.1,-0.4,0.6,0.3,-0.2}' LIMIT 10) s
UNION ALL
SELECT 'ip', array_agg(id) FROM (SELECT id FROM build_multi ORDER BY v <#> '{0.5,-0.3,0.2,0.1,-0.4,0.6,0.3,-0.2}' LIMIT 10) s;
RESET enable_indexscan;
SET enable_seqscan = off;
SELECT i.op, i.ids = e.ids AS same_as_exact, cardinality(i.ids) AS n
FROM build_multi_idx i JOIN build_multi_exact e USING (op)
ORDER BY i.op;
SELECT c.relname, k.elements, k.heap_tids, k.unreachable
FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid,
LATERAL engram_hnsw_check(x.indexrelid) k
WHERE x.indrelid = 'build_multi'::regclass
ORDER BY c.relname;
DROP TABLE build_multi, build_multi_idx, build_multi_exact;

-- cosine: a zero vector is not indexed (and is no error)
CREATE TABLE build_cos (id int, v real[]);
INSERT INTO build_cos SELECT i, build_vec(i, 3) FROM generate_series(1, 10) i;
INSERT INTO build_cos VALUES (11, '{0,0,0}'), (12, '{0,0,0}');
CREATE INDEX build_cos_idx ON build_cos USING engram_hnsw (v real_cosine_ops);
SELECT elements, heap_tids, unreachable FROM engram_hnsw_check('build_cos_idx');
RESET enable_seqscan;
SELECT count(*) AS table_rows FROM build_cos;
SET enable_seqscan = off;
SELECT count(*) AS index_rows
FROM (SELECT id FROM build_cos ORDER BY v <=> '{1,2,3}' LIMIT 100) s;
DROP TABLE build_cos;

--
-- high dimensions: 784, 1536 and 2000 (one vector chunk each)
--
CREATE TABLE build_784 (id int, v real[]);
INSERT INTO build_784 SELECT i, build_vec(i, 784) FROM generate_series(1, 200) i;
CREATE INDEX build_784_idx ON build_784 USING engram_hnsw (v) WITH (dims = 784);
SELECT elements, heap_tids, unreachable FROM engram_hnsw_check('build_784_idx');
SELECT count(*) FILTER (WHERE (SELECT b2.id FROM build_784 b2 ORDER BY b2.v <-> b.v LIMIT 1) = b.id) AS found
FROM build_784 b;
SELECT id FROM build_784 ORDER BY v <-> build_vec(77, 784) LIMIT 1;
DROP TABLE build_784;

CREATE TABLE build_1536 (id int, v real[]);
INSERT INTO build_1536 SELECT i, build_vec(i, 1536) FROM generate_series(1, 200) i;
CREATE INDEX build_1536_idx ON build_1536 USING engram_hnsw (v real_cosine_ops);
SELECT elements, heap_tids, unreachable FROM engram_hnsw_check('build_1536_idx');
SELECT count(*) FILTER (WHERE (SELECT b2.id FROM build_1536 b2 ORDER BY b2.v <=> b.v LIMIT 1) = b.id) AS found
FROM build_1536 b;
SELECT id FROM build_1536 ORDER BY v <=> build_vec(123, 1536) LIMIT 1;
-- rows inserted after the build
INSERT INTO build_1536 SELECT i, build_vec(i, 1536) FROM generate_series(201, 230) i;
SELECT count(*) FILTER (WHERE (SELECT b2.id FROM build_1536 b2 ORDER BY b2.v <=> b.v LIMIT 1) = b.id) AS found
FROM build_1536 b;
SELECT elements, heap_tids, unreachable FROM engram_hnsw_check('build_1536_idx');
DROP TABLE build_1536;

CREATE TABLE build_2000 (id int, v real[]);
INSERT INTO build_2000 SELECT i, build_vec(i, 2000) FROM generate_series(1, 50) i;
CREATE INDEX build_2000_idx ON build_2000 USING engram_hnsw (v);
SELECT elements, heap_tids, unreachable FROM engram_hnsw_check('build_2000_idx');
SELECT id FROM build_2000 ORDER BY v <-> build_vec(5, 2000) LIMIT 1;
INSERT INTO build_2000 VALUES (51, build_vec(51, 2000));
SELECT id FROM build_2000 ORDER BY v <-> build_vec(51, 2000) LIMIT 1;
-- a vector of another length cannot join
INSERT INTO build_2000 VALUES (52, build_vec(52, 2001));
SELECT elements, heap_tids, unreachable FROM engram_hnsw_check('build_2000_idx');
DROP TABLE build_2000;
-- more than 16000 dimensions cannot be indexed
CREATE TABLE build_16001 (id int, v real[]);
INSERT INTO build_16001 VALUES (1, build_vec(1, 16001));
CREATE INDEX build_16001_idx ON build_16001 USING engram_hnsw (v);
-- but the distance functions are not limited
SELECT l2_distance(v, v) FROM build_16001;
DROP TABLE build_16001;

--
-- dims mismatches at build time
--
CREATE TABLE build_dims (id int, v real[]);
INSERT INTO build_dims VALUES (1, '{1,2,3}'), (2, '{4,5,6}');
CREATE INDEX build_dims_idx ON build_dims USING engram_hnsw (v) WITH (dims = 4);
CREATE INDEX build_dims_idx ON build_dims USING engram_hnsw (v) WITH (dims = 2);
-- rows of different lengths: the first one fixes the dimension
INSERT INTO build_dims VALUES (3, '{1,2,3,4}');
CREATE INDEX build_dims_idx ON build_dims USING engram_hnsw (v);
-- (TRUNCATE, not DELETE: a dead row version that another snapshot may
-- still see would be indexed too)
TRUNCATE build_dims;
INSERT INTO build_dims VALUES (1, '{1,2,3}'), (2, '{4,5,6}');
CREATE INDEX build_dims_idx ON build_dims USING engram_hnsw (v) WITH (dims = 3);
SELECT elements, heap_tids, unreachable FROM engram_hnsw_check('build_dims_idx');
-- the index rejects invalid vectors
INSERT INTO build_dims VALUES (4, '{1,NaN,3}');
DROP TABLE build_dims;

-- invalid vectors in the table make the build fail
CREATE TABLE build_bad (id int, v real[]);
INSERT INTO build_bad VALUES (1, '{1,2}'), (2, '{1,NaN}');
CREATE INDEX build_bad_idx ON build_bad USING engram_hnsw (v);
TRUNCATE build_bad;
INSERT INTO build_bad VALUES (1, '{1,2}'), (2, '{{1,2},{3,4}}');
CREATE INDEX build_bad_idx ON build_bad USING engram_hnsw (v);
TRUNCATE build_bad;
INSERT INTO build_bad VALUES (1, '{1,2}'), (2, '{}');
CREATE INDEX build_bad_idx ON build_bad USING engram_hnsw (v);
TRUNCATE build_bad;
INSERT INTO build_bad VALUES (1, '{1,2}'), (2, '{1,NULL}');
CREATE INDEX build_bad_idx ON build_bad USING engram_hnsw (v);
TRUNCATE build_bad;
INSERT INTO build_bad VALUES (1, '{1,2}'), (2, '[0:1]={1,2}');
CREATE INDEX build_bad_idx ON build_bad USING engram_hnsw (v);
TRUNCATE build_bad;
INSERT INTO build_bad VALUES (1, '{1,2}'), (2, '{1,Infinity}');
CREATE INDEX build_bad_idx ON build_bad USING engram_hnsw (v);
-- none of them left an index behind
SELECT count(*) FROM pg_indexes WHERE tablename = 'build_bad';
DROP TABLE build_bad;

--
-- a build that does not fit into maintenance_work_mem: a NOTICE, and a
-- complete, correct index
--
CREATE TABLE build_mem (id int, v real[]);
INSERT INTO build_mem SELECT i, build_vec(i, 128) FROM generate_series(1, 2000) i;
SET maintenance_work_mem = '1MB';
-- The NOTICE names the number of tuples built in memory, which depends on
-- the random element levels: show only that a NOTICE (SQLSTATE 00000) came.
-- Its text is "engram_hnsw graph no longer fits into maintenance_work_mem
-- after N tuples".
\set VERBOSITY sqlstate
CREATE INDEX build_mem_idx ON build_mem USING engram_hnsw (v);
\set VERBOSITY default
RESET maintenance_work_mem;
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('build_mem_idx');
SET engram_hnsw.ef_search = 40;
SELECT count(*) FILTER (WHERE (SELECT b2.id FROM build_mem b2 ORDER BY b2.v <-> b.v LIMIT 1) = b.id) AS found
FROM build_mem b;
-- the same data built in memory
DROP INDEX build_mem_idx;
CREATE INDEX build_mem_idx ON build_mem USING engram_hnsw (v);
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('build_mem_idx');
SELECT count(*) FILTER (WHERE (SELECT b2.id FROM build_mem b2 ORDER BY b2.v <-> b.v LIMIT 1) = b.id) AS found
FROM build_mem b;
DROP TABLE build_mem;

--
-- parallel build: the leader and its workers insert into one shared graph.
-- The table's parallel_workers setting asks for 2 workers whatever its size
-- (without it, the build asks for one worker from 10 000 rows).  The DEBUG1
-- line shows the build went parallel; whether the workers could be
-- launched does not change the result.
--
CREATE TABLE build_par (id int PRIMARY KEY, v real[]);
INSERT INTO build_par SELECT i, CASE WHEN i % 100 = 0 THEN NULL ELSE build_vec(i, 16) END
FROM generate_series(1, 3000) i;
-- duplicates share elements, as in a serial build
INSERT INTO build_par SELECT 10000 + i, build_vec(i, 16) FROM generate_series(1, 30) i;
ALTER TABLE build_par SET (parallel_workers = 2);
SET max_parallel_maintenance_workers = 2;
SET client_min_messages = debug1;
CREATE INDEX build_par_idx ON build_par USING engram_hnsw (v) WITH (m = 8, ef_construction = 40);
RESET client_min_messages;
SELECT elements, deleted_elements, heap_tids, unreachable, pending FROM engram_hnsw_check('build_par_idx');
SET engram_hnsw.ef_search = 40;
-- the searches every parallel build of build_par_idx is checked with:
-- found = rows, every row found by its own vector (a duplicate finds its
-- twin or itself); exact = 5, the same answers as an exact scan for five
-- queries
CREATE FUNCTION build_par_searches(OUT found bigint, OUT rows bigint, OUT exact bigint)
LANGUAGE sql AS $$
SELECT (SELECT count(*) FILTER (WHERE (SELECT b2.v FROM build_par b2 ORDER BY b2.v <-> b.v LIMIT 1) = b.v)
        FROM build_par b WHERE v IS NOT NULL),
       (SELECT count(*) FROM build_par WHERE v IS NOT NULL),
       (SELECT count(*) FILTER (WHERE
          (SELECT array_agg(id ORDER BY id) FROM (SELECT id FROM build_par ORDER BY v <-> build_vec(q, 16) LIMIT 5) s) =
          (SELECT array_agg(id ORDER BY id) FROM (SELECT id FROM build_par WHERE v IS NOT NULL
                                                  ORDER BY l2_distance(v, build_vec(q, 16)), id LIMIT 5) s))
        FROM generate_series(5001, 5005) q)
$$;
SELECT * FROM build_par_searches();
-- the same build with every list read taking the node's spinlock, the path
-- a reader takes after meeting writers at work parallel_read_tries times
SET engram_hnsw.parallel_read_tries = 0;
SET client_min_messages = debug1;
REINDEX INDEX build_par_idx;
RESET client_min_messages;
RESET engram_hnsw.parallel_read_tries;
SELECT elements, deleted_elements, heap_tids, unreachable, pending FROM engram_hnsw_check('build_par_idx');
SELECT * FROM build_par_searches();
-- CONCURRENTLY and REINDEX take the parallel path too; a cosine index
SET client_min_messages = debug1;
CREATE INDEX CONCURRENTLY build_par_cos ON build_par USING engram_hnsw (v real_cosine_ops);
REINDEX INDEX build_par_cos;
RESET client_min_messages;
SELECT elements, heap_tids, unreachable FROM engram_hnsw_check('build_par_cos');
-- bad input in any participant fails the whole build with its own message
DROP INDEX build_par_idx, build_par_cos;
-- (terse: the error may come from a worker, which adds a CONTEXT line)
\set VERBOSITY terse
UPDATE build_par SET v = '{1,2,3}' WHERE id = 2500;
CREATE INDEX build_par_bad ON build_par USING engram_hnsw (v);
UPDATE build_par SET v = array_fill('Infinity'::real, ARRAY[16]) WHERE id = 2500;
CREATE INDEX build_par_bad ON build_par USING engram_hnsw (v);
\set VERBOSITY default
UPDATE build_par SET v = build_vec(2500, 16) WHERE id = 2500;
-- out of maintenance_work_mem: the parallel attempt gives up (a NOTICE),
-- the serial build that follows spills to disk (another NOTICE); 512 dims
-- under storage EXTENDED go to the TOAST table (a third)
INSERT INTO build_par SELECT i, build_vec(i, 512) FROM generate_series(20001, 22000) i;
DELETE FROM build_par WHERE id < 20000;
SET maintenance_work_mem = '1MB';
\set VERBOSITY sqlstate
CREATE INDEX build_par_idx ON build_par USING engram_hnsw (v);
\set VERBOSITY default
RESET maintenance_work_mem;
SELECT elements, heap_tids FROM engram_hnsw_check('build_par_idx');
SELECT count(*) FILTER (WHERE (SELECT b2.id FROM build_par b2 ORDER BY b2.v <-> b.v LIMIT 1) = b.id) AS found,
       count(*) AS rows
FROM build_par b;
-- the same with memory spaces: the parallel attempt gives up, the serial
-- build spills
CREATE TABLE build_par_sp WITH (parallel_workers = 2) AS
SELECT id, id % 20 AS space_id, v FROM build_par WHERE id <= 21000;
SET maintenance_work_mem = '1MB';
\set VERBOSITY sqlstate
CREATE INDEX build_par_sp_idx ON build_par_sp USING engram_hnsw (space_id, v);
\set VERBOSITY default
RESET maintenance_work_mem;
SELECT elements, heap_tids, unreachable FROM engram_hnsw_check('build_par_sp_idx');
SELECT count(*) FILTER (WHERE (SELECT b2.id FROM build_par_sp b2 WHERE b2.space_id = b.space_id
                               ORDER BY b2.v <-> b.v LIMIT 1) = b.id) AS found,
       count(*) AS rows
FROM build_par_sp b;
-- every vector NULL: the workers, done with an empty graph, wait for pages
-- to write and are told there are none; the build ends with an empty index
CREATE TABLE build_par_null (id int, v real[]) WITH (parallel_workers = 2);
INSERT INTO build_par_null SELECT i, NULL FROM generate_series(1, 100) i;
SET client_min_messages = debug1;
CREATE INDEX build_par_null_idx ON build_par_null USING engram_hnsw (v);
RESET client_min_messages;
SELECT elements, heap_tids FROM engram_hnsw_check('build_par_null_idx');
INSERT INTO build_par_null VALUES (101, build_vec(101, 16));
SELECT id FROM build_par_null ORDER BY v <-> build_vec(101, 16) LIMIT 1;
DROP TABLE build_par_null;
RESET max_parallel_maintenance_workers;
DROP FUNCTION build_par_searches();
DROP TABLE build_par, build_par_sp;

--
-- parallel build of a memory-space index: participants insert into the
-- spaces' graphs in shared memory; space numbers follow the heap order,
-- as in a serial build, so both builds write the same directory.  300
-- spaces interleaved over the heap, rows without a key or a vector, a
-- vector twice in one space (one element) and in two spaces (two).
--
\i sql/include/directory.sql
-- (space number, key) of every directory entry
CREATE FUNCTION build_dir(idx regclass) RETURNS TABLE (space_no bigint, key bytea)
LANGUAGE sql AS $$
	SELECT rd_u32(page, off + 4), substring(page FROM off + 21 FOR rd_u16(page, off + 18))
	FROM rd_dir(idx)
$$;
-- (space number, heap TID) of every row of every element
CREATE FUNCTION build_elems(idx regclass) RETURNS TABLE (space_no bigint, tid tid)
LANGUAGE plpgsql AS $$
DECLARE
	p bytea;
	off int;
	t int;
BEGIN
	FOR blk IN 1 .. pg_relation_size(idx) / 8192 - 1 LOOP
		p := get_raw_page(idx::text, blk::int);
		FOR k IN 0 .. (get_byte(p, 12) + 256 * get_byte(p, 13) - 24) / 4 - 1 LOOP
			off := (get_byte(p, 24 + 4 * k) + 256 * get_byte(p, 25 + 4 * k)) & 32767;
			CONTINUE WHEN get_byte(p, off) <> 1;
			space_no := get_byte(p, off + 4) + 256 * get_byte(p, off + 5) + 65536 * get_byte(p, off + 6) + 16777216::bigint * get_byte(p, off + 7);
			FOR n IN 0 .. get_byte(p, off + 3) - 1 LOOP
				t := off + 14 + 6 * n;
				tid := format('(%s,%s)', (get_byte(p, t) + 256 * get_byte(p, t + 1)) * 65536 + get_byte(p, t + 2) + 256 * get_byte(p, t + 3),
							  get_byte(p, t + 4) + 256 * get_byte(p, t + 5))::tid;
				RETURN NEXT;
			END LOOP;
		END LOOP;
	END LOOP;
END
$$;
CREATE TABLE build_psp (id int PRIMARY KEY, space_id int, v real[]) WITH (parallel_workers = 2);
INSERT INTO build_psp SELECT i, (i * 7) % 300, build_vec(i, 16) FROM generate_series(1, 3000) i;
INSERT INTO build_psp VALUES (3001, NULL, build_vec(3001, 16)), (3002, 5, NULL),
	(3003, (21 * 7) % 300, build_vec(21, 16)), (3004, 299, build_vec(21, 16));
-- the workers alone insert (the leader would take all of a small table
-- before they start)
SET max_parallel_maintenance_workers = 2;
SET parallel_leader_participation = off;
SET client_min_messages = debug1;
CREATE INDEX build_psp_par ON build_psp USING engram_hnsw (space_id, v) WITH (m = 8, ef_construction = 40);
RESET client_min_messages;
RESET parallel_leader_participation;
SET max_parallel_maintenance_workers = 0;
CREATE INDEX build_psp_ser ON build_psp USING engram_hnsw (space_id, v) WITH (m = 8, ef_construction = 40);
RESET max_parallel_maintenance_workers;
SELECT elements, deleted_elements, heap_tids, unreachable, pending FROM engram_hnsw_check('build_psp_par');
SELECT elements, deleted_elements, heap_tids, unreachable, pending FROM engram_hnsw_check('build_psp_ser');
-- the same directory: every key under the same space number
SELECT (SELECT count(*) FROM build_dir('build_psp_par')) AS spaces,
       (SELECT count(*) FROM (SELECT * FROM build_dir('build_psp_par')
                              EXCEPT SELECT * FROM build_dir('build_psp_ser')) d) AS differ,
       (SELECT max(space_no) FROM build_dir('build_psp_par')) AS max_space_no;
-- every row in an element of the same space as in the serial build
SELECT count(*) AS rows, count(*) FILTER (WHERE p.space_no = s.space_no) AS same_space
FROM build_elems('build_psp_par') p FULL JOIN build_elems('build_psp_ser') s USING (tid);
DROP INDEX build_psp_ser;
-- each space's graph holds exactly its rows: an index scan of a space
-- returns all of them, and every row is found first by its own vector
SELECT count(*) FILTER (WHERE n = c) AS spaces_complete, count(*) AS spaces
FROM (SELECT space_id, count(*) AS c,
             (SELECT count(*) FROM (SELECT b2.id FROM build_psp b2 WHERE b2.space_id = b.space_id
                                    ORDER BY b2.v <-> build_vec(1, 16) LIMIT 100) s) AS n
      FROM build_psp b WHERE space_id IS NOT NULL AND v IS NOT NULL GROUP BY space_id) x;
SELECT count(*) FILTER (WHERE (SELECT b2.v FROM build_psp b2 WHERE b2.space_id = b.space_id
                               ORDER BY b2.v <-> b.v LIMIT 1) = b.v) AS found,
       count(*) AS rows
FROM build_psp b WHERE space_id IS NOT NULL AND v IS NOT NULL;
DROP TABLE build_psp;
DROP FUNCTION build_dir(regclass), build_elems(regclass);
DROP FUNCTION rd_dir(regclass), rd_u32(bytea, int), rd_u16(bytea, int);
DROP EXTENSION pageinspect;

--
-- a NOTICE at CREATE INDEX when the column keeps its vectors compressed or
-- out of line: storage EXTENDED and rows over TOAST_TUPLE_THRESHOLD
--
CREATE TABLE build_toast (id int, v real[], w real[]);
INSERT INTO build_toast SELECT i, build_vec(i, 600), build_vec(i, 400) FROM generate_series(1, 20) i;
-- 600 dims: the rows went to the TOAST table, and the NOTICE says so
SELECT pg_relation_size(reltoastrelid) > 0 AS toasted FROM pg_class WHERE relname = 'build_toast';
CREATE INDEX build_toast_v ON build_toast USING engram_hnsw (v);
-- 400 dims (a row under the threshold), an expression: none
CREATE INDEX build_toast_w ON build_toast USING engram_hnsw (w);
CREATE INDEX build_toast_e ON build_toast USING engram_hnsw ((v[1:600]));
-- once per transaction
BEGIN;
CREATE INDEX build_toast_v2 ON build_toast USING engram_hnsw (v real_cosine_ops);
CREATE INDEX build_toast_v3 ON build_toast USING engram_hnsw (v real_ip_ops);
COMMIT;
-- PLAIN, MAIN: none
ALTER TABLE build_toast ALTER COLUMN v SET STORAGE PLAIN;
CREATE INDEX build_toast_p ON build_toast USING engram_hnsw (v);
ALTER TABLE build_toast ALTER COLUMN v SET STORAGE MAIN;
CREATE INDEX build_toast_m ON build_toast USING engram_hnsw (v);
SELECT id FROM build_toast ORDER BY v <-> build_vec(7, 600) LIMIT 1;
DROP TABLE build_toast;

RESET engram_hnsw.ef_search;
RESET enable_seqscan;
DROP FUNCTION build_vec(int, int);
