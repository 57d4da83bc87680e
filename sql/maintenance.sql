--
-- maintenance: REINDEX, REINDEX CONCURRENTLY, CREATE INDEX CONCURRENTLY,
-- DROP INDEX, ALTER INDEX SET, unlogged and partitioned tables.
--
CREATE FUNCTION mnt_vec(i int, d int) RETURNS real[]
LANGUAGE sql IMMUTABLE STRICT AS $$
	SELECT array_agg(sin(i * 0.37 + j * 0.11 + (i % 7) * j * 0.013)::real ORDER BY j)
	FROM generate_series(1, d) j
$$;

-- every row of a table found by its own vector through the index; the
-- search is as wide as the tables here (a few hundred rows), so a row
-- counts as found if it is in the index and reachable: one of the graphs
-- below is built with m = 4 and ef_construction = 10, where the default
-- ef_search missed a row in about one build in 50
CREATE FUNCTION mnt_found(tab regclass) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	r text;
BEGIN
	SET LOCAL enable_seqscan = off;
	SET LOCAL engram_hnsw.ef_search = 1000;
	EXECUTE format('SELECT count(*) FILTER (WHERE (SELECT t2.id FROM %1$s t2 ORDER BY t2.v <-> t.v LIMIT 1) = t.id) '
				   '|| '' of '' || count(*) || '' found'' FROM %1$s t WHERE v IS NOT NULL',
				   tab) INTO r;
	RETURN r;
END
$$;

CREATE TABLE mnt_t (id int, v real[]);
INSERT INTO mnt_t SELECT i, mnt_vec(i, 4) FROM generate_series(1, 300) i;

--
-- CREATE INDEX CONCURRENTLY
--
CREATE INDEX CONCURRENTLY mnt_idx ON mnt_t USING engram_hnsw (v);
SELECT indisvalid, indisready, indislive FROM pg_index WHERE indexrelid = 'mnt_idx'::regclass;
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('mnt_idx');
SELECT mnt_found('mnt_t');
INSERT INTO mnt_t SELECT i, mnt_vec(i, 4) FROM generate_series(301, 350) i;
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('mnt_idx');
SELECT mnt_found('mnt_t');

--
-- REINDEX after deletes: deleted elements go away (a temporary table:
-- VACUUM and REINDEX then skip every deleted row, whatever other sessions'
-- snapshots see)
--
CREATE TEMP TABLE mnt_tmp AS SELECT * FROM mnt_t;
CREATE INDEX mnt_tmp_idx ON mnt_tmp USING engram_hnsw (v);
DELETE FROM mnt_tmp WHERE id % 3 = 0;
VACUUM mnt_tmp;
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('mnt_tmp_idx');
REINDEX INDEX mnt_tmp_idx;
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('mnt_tmp_idx');
SELECT mnt_found('mnt_tmp');
REINDEX TABLE mnt_tmp;
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('mnt_tmp_idx');
DROP TABLE mnt_tmp;
REINDEX INDEX mnt_idx;
REINDEX TABLE mnt_t;
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('mnt_idx');
SELECT mnt_found('mnt_t');

--
-- REINDEX CONCURRENTLY
--
REINDEX INDEX CONCURRENTLY mnt_idx;
SELECT indisvalid, indisready, indislive FROM pg_index WHERE indexrelid = 'mnt_idx'::regclass;
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('mnt_idx');
SELECT mnt_found('mnt_t');
INSERT INTO mnt_t SELECT i, mnt_vec(i, 4) FROM generate_series(1001, 1050) i;
REINDEX TABLE CONCURRENTLY mnt_t;
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('mnt_idx');
SELECT mnt_found('mnt_t');
-- only the rebuilt index is left
SELECT count(*) FROM pg_index WHERE indrelid = 'mnt_t'::regclass;

--
-- a CREATE INDEX CONCURRENTLY that fails leaves an invalid index, which
-- REINDEX repairs once the data is fixed
--
CREATE TABLE mnt_bad (id int, v real[]);
INSERT INTO mnt_bad SELECT i, mnt_vec(i, 4) FROM generate_series(1, 50) i;
INSERT INTO mnt_bad VALUES (51, '{1,2,NaN,4}');
CREATE INDEX CONCURRENTLY mnt_bad_idx ON mnt_bad USING engram_hnsw (v);
SELECT indisvalid FROM pg_index WHERE indexrelid = 'mnt_bad_idx'::regclass;
TRUNCATE mnt_bad;
INSERT INTO mnt_bad SELECT i, mnt_vec(i, 4) FROM generate_series(1, 50) i;
REINDEX INDEX mnt_bad_idx;
SELECT indisvalid FROM pg_index WHERE indexrelid = 'mnt_bad_idx'::regclass;
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('mnt_bad_idx');
SELECT mnt_found('mnt_bad');
DROP TABLE mnt_bad;

--
-- ALTER INDEX SET: options are validated; the index keeps the settings it
-- was built with until the next REINDEX
--
CREATE EXTENSION IF NOT EXISTS pageinspect;
-- dims, m, ef_construction and metric as stored in the meta page
CREATE FUNCTION mnt_meta(idx regclass, OUT dims int, OUT m int, OUT ef_construction int, OUT metric int)
LANGUAGE sql AS $$
	SELECT get_byte(p, 32) + 256 * get_byte(p, 33) + 65536 * get_byte(p, 34),
	       get_byte(p, 36) + 256 * get_byte(p, 37),
	       get_byte(p, 38) + 256 * get_byte(p, 39),
	       get_byte(p, 40) + 256 * get_byte(p, 41)
	FROM get_raw_page(idx::text, 0) p
$$;
SELECT * FROM mnt_meta('mnt_idx');
ALTER INDEX mnt_idx SET (ef_construction = 10);
ALTER INDEX mnt_idx SET (m = 101);
ALTER INDEX mnt_idx SET (ef_construction = 0);
ALTER INDEX mnt_idx SET (m = 'x');
ALTER INDEX mnt_idx SET (nonsense = 1);
ALTER INDEX mnt_idx SET (m = 4, ef_construction = 10);
SELECT reloptions FROM pg_class WHERE relname = 'mnt_idx';
SELECT * FROM mnt_meta('mnt_idx');
-- inserts still work with the settings of the build
INSERT INTO mnt_t SELECT i, mnt_vec(i, 4) FROM generate_series(1051, 1060) i;
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('mnt_idx');
REINDEX INDEX mnt_idx;
SELECT * FROM mnt_meta('mnt_idx');
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('mnt_idx');
SELECT mnt_found('mnt_t');
-- a dims option that does not match the data makes the REINDEX fail
ALTER INDEX mnt_idx SET (dims = 5);
REINDEX INDEX mnt_idx;
ALTER INDEX mnt_idx SET (dims = 4);
REINDEX INDEX mnt_idx;
SELECT * FROM mnt_meta('mnt_idx');
ALTER INDEX mnt_idx RESET (m, ef_construction, dims);
SELECT reloptions FROM pg_class WHERE relname = 'mnt_idx';
REINDEX INDEX CONCURRENTLY mnt_idx;
SELECT * FROM mnt_meta('mnt_idx');
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('mnt_idx');
-- the metric of each operator class
CREATE INDEX mnt_cos ON mnt_t USING engram_hnsw (v real_cosine_ops);
CREATE INDEX mnt_ip ON mnt_t USING engram_hnsw (v real_ip_ops) WITH (dims = 4);
SELECT 'mnt_cos' AS idx, * FROM mnt_meta('mnt_cos')
UNION ALL
SELECT 'mnt_ip', * FROM mnt_meta('mnt_ip');
DROP INDEX mnt_cos, mnt_ip;

--
-- other DDL
--
CLUSTER mnt_t USING mnt_idx;
ALTER INDEX mnt_idx RENAME TO mnt_idx2;
SELECT elements, heap_tids, unreachable FROM engram_hnsw_check('mnt_idx2');
-- a column type rewrite rebuilds the index
ALTER TABLE mnt_t ALTER COLUMN v TYPE real[] USING v || 0::real;
SELECT * FROM mnt_meta('mnt_idx2');
SELECT elements, heap_tids, unreachable FROM engram_hnsw_check('mnt_idx2');
SELECT mnt_found('mnt_t');

--
-- DROP INDEX
--
DROP INDEX mnt_idx2;
SELECT count(*) FROM pg_class WHERE relname = 'mnt_idx2';
CREATE INDEX mnt_idx3 ON mnt_t USING engram_hnsw (v);
DROP INDEX CONCURRENTLY mnt_idx3;
SELECT count(*) FROM pg_index WHERE indrelid = 'mnt_t'::regclass;
-- dropping the extension's objects is refused while indexes use them
CREATE INDEX mnt_idx4 ON mnt_t USING engram_hnsw (v);
DROP OPERATOR CLASS real_l2_ops USING engram_hnsw;
DROP TABLE mnt_t;

--
-- an UNLOGGED table
--
CREATE UNLOGGED TABLE mnt_unlogged (id int, v real[]);
CREATE INDEX mnt_unlogged_idx ON mnt_unlogged USING engram_hnsw (v) WITH (dims = 3);
SELECT relpersistence FROM pg_class WHERE relname = 'mnt_unlogged_idx';
-- the init fork holds just a meta page
SELECT pg_relation_size('mnt_unlogged_idx', 'init') / current_setting('block_size')::int AS init_pages;
SELECT * FROM mnt_meta('mnt_unlogged_idx');
INSERT INTO mnt_unlogged SELECT i, mnt_vec(i, 3) FROM generate_series(1, 100) i;
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('mnt_unlogged_idx');
SELECT mnt_found('mnt_unlogged');
REINDEX INDEX mnt_unlogged_idx;
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('mnt_unlogged_idx');
-- an unlogged table built with data
CREATE UNLOGGED TABLE mnt_unlogged2 AS SELECT * FROM mnt_unlogged;
CREATE INDEX mnt_unlogged2_idx ON mnt_unlogged2 USING engram_hnsw (v real_cosine_ops);
SELECT pg_relation_size('mnt_unlogged2_idx', 'init') / current_setting('block_size')::int AS init_pages;
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('mnt_unlogged2_idx');
DROP TABLE mnt_unlogged2;
-- switching to LOGGED and back rewrites table and index
ALTER TABLE mnt_unlogged SET LOGGED;
SELECT relpersistence FROM pg_class WHERE relname = 'mnt_unlogged_idx';
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('mnt_unlogged_idx');
SELECT mnt_found('mnt_unlogged');
ALTER TABLE mnt_unlogged SET UNLOGGED;
SELECT relpersistence FROM pg_class WHERE relname = 'mnt_unlogged_idx';
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('mnt_unlogged_idx');
TRUNCATE mnt_unlogged;
SELECT elements, heap_tids FROM engram_hnsw_check('mnt_unlogged_idx');
-- the dims option survives TRUNCATE
INSERT INTO mnt_unlogged VALUES (1, '{1,2,3,4}');
INSERT INTO mnt_unlogged VALUES (1, '{1,2,3}');
SELECT elements, heap_tids, unreachable FROM engram_hnsw_check('mnt_unlogged_idx');
DROP TABLE mnt_unlogged;

--
-- a partitioned table: one engram_hnsw index per partition
--
CREATE TABLE mnt_part (id int, v real[]) PARTITION BY RANGE (id);
CREATE TABLE mnt_part1 PARTITION OF mnt_part FOR VALUES FROM (1) TO (101);
CREATE TABLE mnt_part2 PARTITION OF mnt_part FOR VALUES FROM (101) TO (201);
INSERT INTO mnt_part SELECT i, mnt_vec(i, 4) FROM generate_series(1, 200) i;
CREATE INDEX mnt_part_idx ON mnt_part USING engram_hnsw (v);
SET enable_seqscan = off;
EXPLAIN (costs off) SELECT id FROM mnt_part ORDER BY v <-> '{0.1,0.2,0.3,0.4}' LIMIT 3;
SELECT id FROM mnt_part ORDER BY v <-> mnt_vec(150, 4) LIMIT 1;
SELECT id FROM mnt_part ORDER BY v <-> mnt_vec(15, 4) LIMIT 1;
RESET enable_seqscan;
SELECT c.relname, k.elements, k.heap_tids, k.unreachable
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid,
LATERAL engram_hnsw_check(i.inhrelid) k
WHERE i.inhparent = 'mnt_part_idx'::regclass
ORDER BY c.relname;
-- a new partition gets its own index
CREATE TABLE mnt_part3 PARTITION OF mnt_part FOR VALUES FROM (201) TO (301);
INSERT INTO mnt_part SELECT i, mnt_vec(i, 4) FROM generate_series(201, 250) i;
SELECT c.relname, k.elements, k.heap_tids, k.unreachable
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid,
LATERAL engram_hnsw_check(i.inhrelid) k
WHERE i.inhparent = 'mnt_part_idx'::regclass
ORDER BY c.relname;
REINDEX TABLE mnt_part;
SELECT c.relname, k.elements, k.heap_tids, k.unreachable
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid,
LATERAL engram_hnsw_check(i.inhrelid) k
WHERE i.inhparent = 'mnt_part_idx'::regclass
ORDER BY c.relname;
DROP TABLE mnt_part;

DROP FUNCTION mnt_meta(regclass);
DROP EXTENSION pageinspect;
DROP FUNCTION mnt_found(regclass);
DROP FUNCTION mnt_vec(int, int);
