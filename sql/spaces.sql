--
-- spaces: memory spaces.  An index on (space key, vector) keeps one graph per
-- distinct key: int4, int8, text and uuid keys; plans for "= const", "= ANY",
-- "= $1" (generic plan) and no space qual; results against a brute-force
-- sequential scan; NULL keys; UPDATE moving a row to another space; a space
-- emptied by VACUUM and revived; cross-type quals; errors; a LIST-partitioned
-- table.
--
-- Output never depends on the random levels of the graphs: every space holds
-- fewer rows than engram_hnsw.ef_search (200), so a search inside one space
-- is exhaustive and its order exact; engram_hnsw_check prints only counts
-- fixed by the data (elements, deleted elements, heap TIDs, unreachable).
--

-- 8 pseudo-random values in [-0.5, 0.5) from a sin() hash of i: deterministic,
-- all distinct (so no two rows tie on a distance)
CREATE FUNCTION sp_vec(i int) RETURNS real[]
LANGUAGE sql IMMUTABLE STRICT AS $$
	SELECT array_agg((x - floor(x) - 0.5)::real ORDER BY d)
	FROM (SELECT d, sin(i * 12.9898 + d * 78.233) * 43758.5453 AS x
	      FROM generate_series(0, 7) d) s
$$;

-- Run a query returning an "id" column twice, through the index (index
-- scans only) and by brute force (no index scans), and compare the ids in
-- order.  Says "same" only if they agree and the first plan really had an
-- index scan on an index whose name starts with idx.
CREATE FUNCTION sp_same(q text, idx text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	l text;
	used boolean := false;
	by_index int[];
	by_seqscan int[];
BEGIN
	SET LOCAL enable_seqscan = off;
	SET LOCAL enable_bitmapscan = off;
	SET LOCAL enable_indexscan = on;
	FOR l IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
		used := used OR l LIKE '%Index Scan using ' || idx || '%';
	END LOOP;
	EXECUTE 'SELECT array_agg(id) FROM (' || q || ') s' INTO by_index;
	SET LOCAL enable_indexscan = off;
	SET LOCAL enable_seqscan = on;
	EXECUTE 'SELECT array_agg(id) FROM (' || q || ') s' INTO by_seqscan;
	SET LOCAL enable_indexscan = on;
	IF NOT used THEN
		RETURN 'no index scan on ' || idx;
	ELSIF by_index IS NOT DISTINCT FROM by_seqscan THEN
		RETURN 'same';
	END IF;
	RETURN format('index %s, seqscan %s', by_index, by_seqscan);
END
$$;

-- The space directory, read with pageinspect (layout of src/hnsw_format.h):
-- its entries, those flagged empty, and the entry count on the meta page.
\i sql/include/directory.sql
CREATE FUNCTION sp_dir(idx regclass, OUT entries int, OUT empty_spaces int, OUT meta_count bigint)
LANGUAGE plpgsql AS $$
DECLARE
	strays int;
BEGIN
	SELECT count(*), coalesce(sum(get_byte(d.page, d.off + 1) & 1), 0),
		count(*) FILTER (WHERE get_byte(d.page, d.off) <> 3)
		INTO entries, empty_spaces, strays FROM rd_dir(idx) d;
	IF strays > 0 THEN
		RAISE EXCEPTION '% items of the directory of % are not directory entries', strays, idx;
	END IF;
	meta_count := rd_u32(get_raw_page(idx::text, 0), 80);
END
$$;

SET engram_hnsw.ef_search = 200;

--
-- int4 space keys: 10 spaces of 30 rows (0..9), rows with a NULL key or a
-- NULL vector; index built on the filled table, then inserts (also into two
-- new spaces, 10 and 11)
--
CREATE TABLE sp_i4 (id int PRIMARY KEY, space_id int, embedding real[])
	WITH (autovacuum_enabled = off);
INSERT INTO sp_i4 SELECT i, i % 10, sp_vec(i) FROM generate_series(1, 300) i;
INSERT INTO sp_i4 SELECT i, NULL, sp_vec(i) FROM generate_series(301, 305) i;
INSERT INTO sp_i4 VALUES (306, 3, NULL);
CREATE INDEX sp_i4_idx ON sp_i4 USING engram_hnsw (space_id, embedding real_l2_ops)
	WITH (m = 8, ef_construction = 32);
-- the default operator class of the key column is int4_space_ops
SELECT a.attname, o.opcname
FROM pg_index i
JOIN pg_attribute a ON a.attrelid = i.indexrelid
JOIN pg_opclass o ON o.oid = i.indclass[a.attnum - 1]
WHERE i.indexrelid = 'sp_i4_idx'::regclass ORDER BY a.attnum;
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('sp_i4_idx');
SELECT * FROM sp_dir('sp_i4_idx');
-- inserts after the build: existing spaces, two new ones, NULL key and vector
INSERT INTO sp_i4 SELECT i, i % 12, sp_vec(i) FROM generate_series(307, 420) i;
INSERT INTO sp_i4 VALUES (421, NULL, sp_vec(421)), (422, 11, NULL);
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('sp_i4_idx');
SELECT * FROM sp_dir('sp_i4_idx');
SELECT space_id, count(*) FROM sp_i4 GROUP BY space_id ORDER BY space_id;

SET enable_seqscan = off;
-- plans: one space, a list of spaces, all spaces
EXPLAIN (COSTS OFF)
SELECT id FROM sp_i4 WHERE space_id = 3 ORDER BY embedding <-> '{0.1,0.2,0.3,0.4,0.1,0.2,0.3,0.4}' LIMIT 5;
EXPLAIN (COSTS OFF)
SELECT id FROM sp_i4 WHERE space_id = ANY ('{1,5,9}') ORDER BY embedding <-> '{0.1,0.2,0.3,0.4,0.1,0.2,0.3,0.4}' LIMIT 5;
EXPLAIN (COSTS OFF)
SELECT id FROM sp_i4 WHERE space_id IN (2, 4) ORDER BY embedding <-> '{0.1,0.2,0.3,0.4,0.1,0.2,0.3,0.4}' LIMIT 5;
EXPLAIN (COSTS OFF)
SELECT id FROM sp_i4 ORDER BY embedding <-> '{0.1,0.2,0.3,0.4,0.1,0.2,0.3,0.4}' LIMIT 5;
-- an unknown-typed literal becomes int4: still an Index Cond
EXPLAIN (COSTS OFF)
SELECT id FROM sp_i4 WHERE space_id = '7' ORDER BY embedding <-> '{0.1,0.2,0.3,0.4,0.1,0.2,0.3,0.4}' LIMIT 5;
-- a prepared statement: the generic plan keeps the Index Cond on $1
PREPARE sp_q(int, real[]) AS
	SELECT id FROM sp_i4 WHERE space_id = $1 ORDER BY embedding <-> $2 LIMIT 5;
SET plan_cache_mode = force_generic_plan;
EXPLAIN (COSTS OFF) EXECUTE sp_q(3, '{0.1,0.2,0.3,0.4,0.1,0.2,0.3,0.4}');
PREPARE sp_qa(int[], real[]) AS
	SELECT id FROM sp_i4 WHERE space_id = ANY ($1) ORDER BY embedding <-> $2 LIMIT 5;
EXPLAIN (COSTS OFF) EXECUTE sp_qa('{3,4}', '{0.1,0.2,0.3,0.4,0.1,0.2,0.3,0.4}');
-- a correlated subquery: the space comes from the outer row
EXPLAIN (COSTS OFF)
SELECT a.id, (SELECT b.id FROM sp_i4 b WHERE b.space_id = a.space_id
              ORDER BY b.embedding <-> a.embedding LIMIT 1)
FROM sp_i4 a WHERE a.id < 5;

-- results: the generic plan returns the exact top 5 of space 3 (ids that are
-- 3 mod 10 from the build, or 3 mod 12 from the inserts)
EXECUTE sp_q(3, sp_vec(1000));
SELECT array_agg(id) AS exact_top5_space3 FROM (
	SELECT id FROM sp_i4 WHERE space_id = 3 ORDER BY embedding <-> sp_vec(1000) LIMIT 5) s;
EXECUTE sp_qa('{3,4}', sp_vec(1000));
RESET plan_cache_mode;

-- index order equals brute-force order: every space (top 10 and the whole
-- space), lists of spaces, all spaces
SELECT s AS space_id,
       sp_same(format('SELECT id FROM sp_i4 WHERE space_id = %s ORDER BY embedding <-> sp_vec(%s) LIMIT 10', s, 1000 + s), 'sp_i4_idx') AS top10,
       sp_same(format('SELECT id FROM sp_i4 WHERE space_id = %s AND embedding IS NOT NULL ORDER BY embedding <-> sp_vec(%s) LIMIT 1000', s, 2000 + s), 'sp_i4_idx') AS whole_space
FROM generate_series(0, 11) s;
SELECT sp_same('SELECT id FROM sp_i4 WHERE space_id = ANY (''{1,5,9}'') ORDER BY embedding <-> sp_vec(3000) LIMIT 10', 'sp_i4_idx') AS any_3,
       sp_same('SELECT id FROM sp_i4 WHERE space_id = ANY (''{0,1,2,3,4,5,6,7,8,9,10,11}'') ORDER BY embedding <-> sp_vec(3001) LIMIT 50', 'sp_i4_idx') AS any_all,
       sp_same('SELECT id FROM sp_i4 WHERE space_id = ANY (''{5,5,11,NULL}'') AND embedding IS NOT NULL ORDER BY embedding <-> sp_vec(3002) LIMIT 100', 'sp_i4_idx') AS any_dup_null,
       sp_same('SELECT id FROM sp_i4 WHERE space_id IN (2, 4) AND space_id = ANY (''{4,6}'') ORDER BY embedding <-> sp_vec(3003) LIMIT 10', 'sp_i4_idx') AS two_quals;
-- without a space qual all graphs are searched and merged by distance; rows
-- with a NULL key or vector are not in the index, so compare on the others
SELECT sp_same('SELECT id FROM sp_i4 WHERE space_id IS NOT NULL ORDER BY embedding <-> sp_vec(4000) LIMIT 20', 'sp_i4_idx') AS all_spaces_top20,
       sp_same('SELECT id FROM sp_i4 WHERE space_id IS NOT NULL AND embedding IS NOT NULL ORDER BY embedding <-> sp_vec(4001) LIMIT 1000', 'sp_i4_idx') AS all_spaces_all_rows;
-- every row is the first result for its own vector within its own space
SELECT count(*) FILTER (WHERE (SELECT b.id FROM sp_i4 b WHERE b.space_id = a.space_id
                               ORDER BY b.embedding <-> a.embedding LIMIT 1) = a.id) AS found_first,
       count(*) AS keyed_rows
FROM sp_i4 a WHERE a.space_id IS NOT NULL AND a.embedding IS NOT NULL;
-- and never in another space's results
SELECT count(*) AS rows_of_other_spaces
FROM generate_series(0, 11) s,
     LATERAL (SELECT id, space_id FROM sp_i4 WHERE space_id = s
              ORDER BY embedding <-> sp_vec(5000) LIMIT 1000) r
WHERE r.space_id <> s;

-- absent keys: no rows
SELECT count(*) AS absent FROM (SELECT id FROM sp_i4 WHERE space_id = 99 ORDER BY embedding <-> sp_vec(1) LIMIT 10) s;
SELECT count(*) AS absent_any FROM (SELECT id FROM sp_i4 WHERE space_id = ANY ('{98,99,-1}') ORDER BY embedding <-> sp_vec(1) LIMIT 10) s;
SELECT count(*) AS empty_any FROM (SELECT id FROM sp_i4 WHERE space_id = ANY ('{}') ORDER BY embedding <-> sp_vec(1) LIMIT 10) s;
-- NULL keys: "= NULL" is never true; the planner sees it for a constant,
-- the index sees it for a parameter
SELECT count(*) AS eq_null FROM (SELECT id FROM sp_i4 WHERE space_id = NULL ORDER BY embedding <-> sp_vec(1) LIMIT 10) s;
SET plan_cache_mode = force_generic_plan;
EXECUTE sp_q(NULL, sp_vec(1));
EXECUTE sp_qa(NULL, sp_vec(1));
EXECUTE sp_qa('{NULL}', sp_vec(1));
RESET plan_cache_mode;
-- rows with a NULL key (6 of them) or a NULL vector (2) are not indexed: a
-- scan of all spaces returns the other rows only
SELECT (SELECT count(*) FROM sp_i4) AS table_rows,
       (SELECT count(*) FROM (SELECT id FROM sp_i4 ORDER BY embedding <-> sp_vec(1) LIMIT 100000) s) AS index_rows,
       (SELECT count(*) FROM sp_i4 WHERE space_id IS NOT NULL AND embedding IS NOT NULL) AS keyed_rows;

-- cross-type quals: a bigint or numeric constant against the int4 key is not
-- an Index Cond (the operator classes hold int4 = int4 only); the filter
-- still gives the right rows, out of a scan of all spaces
EXPLAIN (COSTS OFF)
SELECT id FROM sp_i4 WHERE space_id = 3::bigint ORDER BY embedding <-> '{0.1,0.2,0.3,0.4,0.1,0.2,0.3,0.4}' LIMIT 5;
EXPLAIN (COSTS OFF)
SELECT id FROM sp_i4 WHERE space_id = ANY ('{3,4}'::bigint[]) ORDER BY embedding <-> '{0.1,0.2,0.3,0.4,0.1,0.2,0.3,0.4}' LIMIT 5;
SELECT sp_same('SELECT id FROM sp_i4 WHERE space_id = 3::bigint ORDER BY embedding <-> sp_vec(1000) LIMIT 10', 'sp_i4_idx') AS bigint_const,
       sp_same('SELECT id FROM sp_i4 WHERE space_id = 3.0 ORDER BY embedding <-> sp_vec(1000) LIMIT 10', 'sp_i4_idx') AS numeric_const,
       sp_same('SELECT id FROM sp_i4 WHERE space_id = ANY (''{3,4}''::bigint[]) ORDER BY embedding <-> sp_vec(1000) LIMIT 10', 'sp_i4_idx') AS bigint_any;
SELECT id FROM sp_i4 WHERE space_id = 3::bigint ORDER BY embedding <-> sp_vec(1000) LIMIT 5;
-- a text constant does not compare with int4
SELECT id FROM sp_i4 WHERE space_id = '3'::text ORDER BY embedding <-> sp_vec(1000) LIMIT 5;
-- a query vector of another dimension
SELECT id FROM sp_i4 WHERE space_id = 3 ORDER BY embedding <-> '{1,2,3}' LIMIT 5;

-- UPDATE moves a row to another space: found there, no longer in the old one
UPDATE sp_i4 SET space_id = 5 WHERE id = 13;
SELECT id FROM sp_i4 WHERE space_id = 5 ORDER BY embedding <-> sp_vec(13) LIMIT 1;
SELECT count(*) AS in_old_space FROM (SELECT id FROM sp_i4 WHERE space_id = 3
                                      ORDER BY embedding <-> sp_vec(13) LIMIT 1000) s WHERE id = 13;
SELECT array_agg(id) AS nearest_in_old_space FROM (
	SELECT id FROM sp_i4 WHERE space_id = 3 ORDER BY embedding <-> sp_vec(13) LIMIT 3) s;
SELECT sp_same('SELECT id FROM sp_i4 WHERE space_id = 3 AND embedding IS NOT NULL ORDER BY embedding <-> sp_vec(13) LIMIT 1000', 'sp_i4_idx') AS old_space,
       sp_same('SELECT id FROM sp_i4 WHERE space_id = 5 ORDER BY embedding <-> sp_vec(13) LIMIT 1000', 'sp_i4_idx') AS new_space;
-- a NULL key takes a row out of the index, a key brings one in
UPDATE sp_i4 SET space_id = NULL WHERE id = 14;
UPDATE sp_i4 SET space_id = 0 WHERE id = 301;
SELECT id FROM sp_i4 WHERE space_id = 4 ORDER BY embedding <-> sp_vec(14) LIMIT 1;
SELECT id FROM sp_i4 WHERE space_id = 0 ORDER BY embedding <-> sp_vec(301) LIMIT 1;
-- two more elements (the new versions of rows 13 and 301; that of row 14
-- has no key); the old versions are dead, not yet vacuumed
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('sp_i4_idx');
RESET enable_seqscan;

--
-- a space emptied by DELETE + VACUUM, then revived by inserts (on a
-- temporary copy: VACUUM then removes every deleted row, whatever other
-- sessions' snapshots see)
--
CREATE TEMP TABLE sp_tmp AS SELECT * FROM sp_i4 WHERE space_id IS NOT NULL AND embedding IS NOT NULL;
CREATE INDEX sp_tmp_idx ON sp_tmp USING engram_hnsw (space_id, embedding) WITH (m = 8, ef_construction = 32);
SELECT count(*) AS rows_space4 FROM sp_tmp WHERE space_id = 4;
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('sp_tmp_idx');
DELETE FROM sp_tmp WHERE space_id = 4;
-- not vacuumed yet: the dead rows are still in the index, a scan skips them
SET enable_seqscan = off;
SELECT count(*) AS visible_space4 FROM (SELECT id FROM sp_tmp WHERE space_id = 4 ORDER BY embedding <-> sp_vec(1) LIMIT 1000) s;
VACUUM sp_tmp;
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('sp_tmp_idx');
-- space 4 is flagged empty; its entry stays
SELECT * FROM sp_dir('sp_tmp_idx');
SELECT count(*) AS after_vacuum_space4 FROM (SELECT id FROM sp_tmp WHERE space_id = 4 ORDER BY embedding <-> sp_vec(1) LIMIT 1000) s;
SELECT count(*) AS after_vacuum_all FROM (SELECT id FROM sp_tmp ORDER BY embedding <-> sp_vec(1) LIMIT 1000) s;
SELECT sp_same('SELECT id FROM sp_tmp ORDER BY embedding <-> sp_vec(6000) LIMIT 1000', 'sp_tmp_idx') AS all_spaces_after_vacuum;
-- a second VACUUM changes nothing
VACUUM sp_tmp;
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('sp_tmp_idx');
-- the key comes back: one row, then more
INSERT INTO sp_tmp VALUES (1001, 4, sp_vec(1001));
-- the row waits in the pending list (found by scans already); once merged
-- into the graph, the space is revived in place: no new entry
SELECT engram_hnsw_merge_pending('sp_tmp_idx') AS merged;
SELECT * FROM sp_dir('sp_tmp_idx');
SELECT id FROM sp_tmp WHERE space_id = 4 ORDER BY embedding <-> sp_vec(7000) LIMIT 10;
INSERT INTO sp_tmp SELECT i, 4, sp_vec(i) FROM generate_series(1002, 1020) i;
SELECT sp_same('SELECT id FROM sp_tmp WHERE space_id = 4 ORDER BY embedding <-> sp_vec(7001) LIMIT 1000', 'sp_tmp_idx') AS revived_space,
       (SELECT count(*) FROM (SELECT id FROM sp_tmp WHERE space_id = 4 ORDER BY embedding <-> sp_vec(7001) LIMIT 1000) s) AS rows_found;
SELECT count(*) FILTER (WHERE (SELECT b.id FROM sp_tmp b WHERE b.space_id = a.space_id
                               ORDER BY b.embedding <-> a.embedding LIMIT 1) = a.id) AS found_first,
       count(*) AS all_rows
FROM sp_tmp a;
SELECT elements - deleted_elements AS live, elements < 434 AS slots_reused, heap_tids, unreachable FROM engram_hnsw_check('sp_tmp_idx');
-- delete the revived rows and one row of every other space, vacuum again
DELETE FROM sp_tmp WHERE space_id = 4 OR id % 10 = 7;
VACUUM sp_tmp;
SELECT elements - deleted_elements AS live, elements < 434 AS slots_reused, heap_tids, unreachable FROM engram_hnsw_check('sp_tmp_idx');
SELECT * FROM sp_dir('sp_tmp_idx');
SELECT count(*) AS space4 FROM (SELECT id FROM sp_tmp WHERE space_id = 4 ORDER BY embedding <-> sp_vec(1) LIMIT 1000) s;
SELECT sp_same('SELECT id FROM sp_tmp WHERE space_id = ANY (''{3,4,7}'') ORDER BY embedding <-> sp_vec(7002) LIMIT 1000', 'sp_tmp_idx') AS after_second_delete;
-- emptied again, then revived by a rebuild
REINDEX INDEX sp_tmp_idx;
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('sp_tmp_idx');
SELECT * FROM sp_dir('sp_tmp_idx');
INSERT INTO sp_tmp VALUES (1100, 4, sp_vec(1100));
SELECT id FROM sp_tmp WHERE space_id = 4 ORDER BY embedding <-> sp_vec(1) LIMIT 10;
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('sp_tmp_idx');
SELECT * FROM sp_dir('sp_tmp_idx');
RESET enable_seqscan;
DROP TABLE sp_tmp;

--
-- int8 space keys (beyond the int4 range), cosine distance; index built on
-- the filled table, then inserts
--
CREATE TABLE sp_i8 (id int, space_id bigint, embedding real[]) WITH (autovacuum_enabled = off);
INSERT INTO sp_i8 SELECT i, 10000000000 + i % 6, sp_vec(i) FROM generate_series(1, 150) i;
CREATE INDEX sp_i8_idx ON sp_i8 USING engram_hnsw (space_id, embedding real_cosine_ops)
	WITH (m = 8, ef_construction = 32);
INSERT INTO sp_i8 SELECT i, 10000000000 + i % 8, sp_vec(i) FROM generate_series(151, 250) i;
INSERT INTO sp_i8 VALUES (251, -9223372036854775808, sp_vec(251)), (252, 9223372036854775807, sp_vec(252));
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('sp_i8_idx');
SET enable_seqscan = off;
EXPLAIN (COSTS OFF)
SELECT id FROM sp_i8 WHERE space_id = 10000000003 ORDER BY embedding <=> '{0.1,0.2,0.3,0.4,0.1,0.2,0.3,0.4}' LIMIT 5;
-- an int4 constant against the int8 key: int84eq, not in the class
EXPLAIN (COSTS OFF)
SELECT id FROM sp_i8 WHERE space_id = 3 ORDER BY embedding <=> '{0.1,0.2,0.3,0.4,0.1,0.2,0.3,0.4}' LIMIT 5;
SELECT s - 10000000000 AS space,
       sp_same(format('SELECT id FROM sp_i8 WHERE space_id = %s ORDER BY embedding <=> sp_vec(%s) LIMIT 10', s, 100 + s % 100), 'sp_i8_idx') AS top10
FROM generate_series(10000000000, 10000000007) s;
SELECT sp_same('SELECT id FROM sp_i8 WHERE space_id = ANY (''{10000000001,10000000007,-9223372036854775808}'') ORDER BY embedding <=> sp_vec(3000) LIMIT 100', 'sp_i8_idx') AS any_3,
       sp_same('SELECT id FROM sp_i8 ORDER BY embedding <=> sp_vec(3001) LIMIT 20', 'sp_i8_idx') AS all_spaces;
SELECT id FROM sp_i8 WHERE space_id = 9223372036854775807 ORDER BY embedding <=> sp_vec(1) LIMIT 5;
SELECT id FROM sp_i8 WHERE space_id = 3 ORDER BY embedding <=> sp_vec(1) LIMIT 5;
SELECT count(*) FILTER (WHERE (SELECT b.id FROM sp_i8 b WHERE b.space_id = a.space_id
                               ORDER BY b.embedding <=> a.embedding LIMIT 1) = a.id) AS found_first,
       count(*) AS all_rows
FROM sp_i8 a;
RESET enable_seqscan;
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('sp_i8_idx');

--
-- text space keys: an empty key, a multibyte key, keys of 255 and exactly
-- 256 bytes
--
CREATE TABLE sp_txt (id int, space_id text, embedding real[]) WITH (autovacuum_enabled = off);
INSERT INTO sp_txt SELECT i, 'tenant-' || (i % 5), sp_vec(i) FROM generate_series(1, 100) i;
INSERT INTO sp_txt SELECT i, '', sp_vec(i) FROM generate_series(101, 110) i;
CREATE INDEX sp_txt_idx ON sp_txt USING engram_hnsw (space_id, embedding)
	WITH (m = 8, ef_construction = 32);
INSERT INTO sp_txt SELECT i, 'tenant-' || (i % 7), sp_vec(i) FROM generate_series(111, 200) i;
INSERT INTO sp_txt SELECT i, 'espace-é', sp_vec(i) FROM generate_series(201, 210) i;
INSERT INTO sp_txt SELECT i, repeat('k', 256), sp_vec(i) FROM generate_series(211, 220) i;
INSERT INTO sp_txt SELECT i, repeat('k', 255), sp_vec(i) FROM generate_series(221, 225) i;
INSERT INTO sp_txt VALUES (226, NULL, sp_vec(226));
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('sp_txt_idx');
SELECT * FROM sp_dir('sp_txt_idx');
-- keys longer than 256 bytes cannot be indexed (é is two bytes)
INSERT INTO sp_txt VALUES (300, repeat('k', 257), sp_vec(300));
INSERT INTO sp_txt VALUES (301, repeat('é', 129), sp_vec(301));
SELECT count(*) AS rows_with_long_keys FROM sp_txt WHERE octet_length(space_id) > 256;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF)
SELECT id FROM sp_txt WHERE space_id = 'tenant-3' ORDER BY embedding <-> '{0.1,0.2,0.3,0.4,0.1,0.2,0.3,0.4}' LIMIT 5;
EXPLAIN (COSTS OFF)
SELECT id FROM sp_txt WHERE space_id = ANY ('{tenant-1,tenant-6}') ORDER BY embedding <-> '{0.1,0.2,0.3,0.4,0.1,0.2,0.3,0.4}' LIMIT 5;
-- varchar compares as text
EXPLAIN (COSTS OFF)
SELECT id FROM sp_txt WHERE space_id = 'tenant-3'::varchar ORDER BY embedding <-> '{0.1,0.2,0.3,0.4,0.1,0.2,0.3,0.4}' LIMIT 5;
SELECT CASE WHEN length(k) > 20 THEN format('repeat(k, %s)', length(k)) ELSE format('%L', k) END AS space_key,
       count(*) AS nrows,
       sp_same(format('SELECT id FROM sp_txt WHERE space_id = %L ORDER BY embedding <-> sp_vec(%s) LIMIT 10', k, 100 + length(k)), 'sp_txt_idx') AS top10
FROM (SELECT space_id FROM sp_txt WHERE space_id IS NOT NULL) t(k)
GROUP BY k ORDER BY k COLLATE "C";
SELECT sp_same('SELECT id FROM sp_txt WHERE space_id = ANY (ARRAY[''tenant-1'', ''espace-é'', repeat(''k'', 256), '''']) ORDER BY embedding <-> sp_vec(3000) LIMIT 100', 'sp_txt_idx') AS any_4,
       sp_same('SELECT id FROM sp_txt WHERE space_id IS NOT NULL ORDER BY embedding <-> sp_vec(3001) LIMIT 20', 'sp_txt_idx') AS all_spaces;
-- keys match by their bytes: no prefix, case or trailing-space matches
SELECT count(*) AS near_misses FROM (
	SELECT id FROM sp_txt WHERE space_id = ANY ('{tenant-,Tenant-1,"tenant-1 ",tenant-10,kk,espace-e}')
	ORDER BY embedding <-> sp_vec(1) LIMIT 100) s;
SELECT count(*) AS absent FROM (SELECT id FROM sp_txt WHERE space_id = 'nobody' ORDER BY embedding <-> sp_vec(1) LIMIT 100) s;
-- a query for a key longer than 256 bytes (no row can have it): no rows
SELECT count(*) AS long_key FROM (SELECT id FROM sp_txt WHERE space_id = repeat('k', 257) ORDER BY embedding <-> sp_vec(1) LIMIT 100) s;
SELECT count(*) FILTER (WHERE (SELECT b.id FROM sp_txt b WHERE b.space_id = a.space_id
                               ORDER BY b.embedding <-> a.embedding LIMIT 1) = a.id) AS found_first,
       count(*) AS keyed_rows
FROM sp_txt a WHERE a.space_id IS NOT NULL;
RESET enable_seqscan;
-- text keys with a nondeterministic collation are refused
CREATE COLLATION sp_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE INDEX ON sp_txt USING engram_hnsw (space_id COLLATE sp_ci, embedding);
DROP COLLATION sp_ci;
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('sp_txt_idx');

--
-- uuid space keys, on an empty table: every row arrives by insert
--
CREATE TABLE sp_uuid (id int, space_id uuid, embedding real[]) WITH (autovacuum_enabled = off);
CREATE INDEX sp_uuid_idx ON sp_uuid USING engram_hnsw (space_id, embedding) WITH (m = 8, ef_construction = 32);
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('sp_uuid_idx');
SET enable_seqscan = off;
SELECT count(*) AS empty_index FROM (SELECT id FROM sp_uuid WHERE space_id = md5('space1')::uuid ORDER BY embedding <-> sp_vec(1) LIMIT 10) s;
INSERT INTO sp_uuid SELECT i, md5('space' || (i % 4))::uuid, sp_vec(i) FROM generate_series(1, 120) i;
INSERT INTO sp_uuid VALUES (121, NULL, sp_vec(121)), (122, '00000000-0000-0000-0000-000000000000', sp_vec(122));
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('sp_uuid_idx');
EXPLAIN (COSTS OFF)
SELECT id FROM sp_uuid WHERE space_id = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11' ORDER BY embedding <-> '{0.1,0.2,0.3,0.4,0.1,0.2,0.3,0.4}' LIMIT 5;
SELECT s AS space,
       sp_same(format('SELECT id FROM sp_uuid WHERE space_id = %L ORDER BY embedding <-> sp_vec(%s) LIMIT 10', md5('space' || s)::uuid, 100 + s), 'sp_uuid_idx') AS top10
FROM generate_series(0, 3) s;
SELECT sp_same('SELECT id FROM sp_uuid WHERE space_id = ANY (ARRAY[md5(''space1'')::uuid, ''00000000-0000-0000-0000-000000000000'']) ORDER BY embedding <-> sp_vec(3000) LIMIT 100', 'sp_uuid_idx') AS any_2,
       sp_same('SELECT id FROM sp_uuid WHERE space_id IS NOT NULL ORDER BY embedding <-> sp_vec(3001) LIMIT 20', 'sp_uuid_idx') AS all_spaces;
SELECT id FROM sp_uuid WHERE space_id = '00000000-0000-0000-0000-000000000000' ORDER BY embedding <-> sp_vec(1) LIMIT 5;
SELECT count(*) AS absent FROM (SELECT id FROM sp_uuid WHERE space_id = md5('space9')::uuid ORDER BY embedding <-> sp_vec(1) LIMIT 10) s;
SELECT count(*) FILTER (WHERE (SELECT b.id FROM sp_uuid b WHERE b.space_id = a.space_id
                               ORDER BY b.embedding <-> a.embedding LIMIT 1) = a.id) AS found_first,
       count(*) AS keyed_rows
FROM sp_uuid a WHERE a.space_id IS NOT NULL;
-- a text constant against the uuid key is an error, as without the index
SELECT id FROM sp_uuid WHERE space_id = 'not a uuid' ORDER BY embedding <-> sp_vec(1) LIMIT 5;
RESET enable_seqscan;
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('sp_uuid_idx');

--
-- a build that does not fit into maintenance_work_mem: the spaces built in
-- memory are written out, the rest is inserted on pages (the NOTICE names a
-- row count that depends on the random levels: not shown)
--
CREATE TABLE sp_spill (id int, space_id int, embedding real[]) WITH (autovacuum_enabled = off);
INSERT INTO sp_spill SELECT i, i % 40, sp_vec(i) FROM generate_series(1, 6000) i;
SET maintenance_work_mem = '1MB';
SET client_min_messages = warning;
CREATE INDEX sp_spill_idx ON sp_spill USING engram_hnsw (space_id, embedding) WITH (m = 8, ef_construction = 32);
RESET client_min_messages;
RESET maintenance_work_mem;
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('sp_spill_idx');
SELECT * FROM sp_dir('sp_spill_idx');
SET enable_seqscan = off;
SELECT count(*) FILTER (WHERE (SELECT b.id FROM sp_spill b WHERE b.space_id = a.space_id
                               ORDER BY b.embedding <-> a.embedding LIMIT 1) = a.id) AS found_first,
       count(*) AS all_rows
FROM sp_spill a WHERE a.id % 10 = 1;
SELECT s AS space,
       sp_same(format('SELECT id FROM sp_spill WHERE space_id = %s ORDER BY embedding <-> sp_vec(%s) LIMIT 10', s, 10000 + s), 'sp_spill_idx') AS top10
FROM generate_series(0, 39, 13) s;
RESET enable_seqscan;
DROP TABLE sp_spill;

--
-- many spaces: the directory spans several pages, written by the build and
-- extended by inserts (int4 keys, and 256-byte text keys: 28 to a page)
--
CREATE TABLE sp_many (id int, space_id int, tkey text, embedding real[]) WITH (autovacuum_enabled = off);
INSERT INTO sp_many SELECT i, i % 600, repeat(chr(65 + i % 26), 250) || to_char(i % 60, 'FM000000'), sp_vec(i) FROM generate_series(1, 1200) i;
CREATE INDEX sp_many_i4 ON sp_many USING engram_hnsw (space_id, embedding) WITH (m = 8, ef_construction = 32);
CREATE INDEX sp_many_txt ON sp_many USING engram_hnsw (tkey, embedding) WITH (m = 8, ef_construction = 32);
SELECT * FROM sp_dir('sp_many_i4');
SELECT * FROM sp_dir('sp_many_txt');
INSERT INTO sp_many SELECT i, i % 1100, repeat(chr(65 + i % 26), 250) || to_char(i % 130, 'FM000000'), sp_vec(i) FROM generate_series(1201, 2400) i;
SELECT * FROM sp_dir('sp_many_i4');
SELECT * FROM sp_dir('sp_many_txt');
SELECT count(DISTINCT space_id) AS int_keys, count(DISTINCT tkey) AS text_keys FROM sp_many;
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('sp_many_i4');
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('sp_many_txt');
SET enable_seqscan = off;
SELECT count(*) FILTER (WHERE (SELECT b.id FROM sp_many b WHERE b.space_id = a.space_id
                               ORDER BY b.embedding <-> a.embedding LIMIT 1) = a.id) AS found_first_i4,
       count(*) FILTER (WHERE (SELECT b.id FROM sp_many b WHERE b.tkey = a.tkey
                               ORDER BY b.embedding <-> a.embedding LIMIT 1) = a.id) AS found_first_txt,
       count(*) AS all_rows
FROM sp_many a;
SELECT sp_same('SELECT id FROM sp_many WHERE space_id = ANY (''{0,599,600,1099}'') ORDER BY embedding <-> sp_vec(3000) LIMIT 100', 'sp_many_i4') AS any_i4,
       sp_same('SELECT id FROM sp_many WHERE tkey = ANY (ARRAY[repeat(''A'', 250) || ''000000'', repeat(''Z'', 250) || ''000129'']) ORDER BY embedding <-> sp_vec(3001) LIMIT 100', 'sp_many_txt') AS any_txt;
RESET enable_seqscan;
DROP TABLE sp_many;

--
-- errors: the shape of the index
--
CREATE TABLE sp_err (a int, b int, t text, v real[], w real[]);
-- three columns
CREATE INDEX ON sp_err USING engram_hnsw (a, b, v);
-- the vector first, the space key second
CREATE INDEX ON sp_err USING engram_hnsw (v, a);
-- two vectors
CREATE INDEX ON sp_err USING engram_hnsw (v, w);
-- a space key alone
CREATE INDEX ON sp_err USING engram_hnsw (a);
-- a real[] column with a space operator class, and the other way round
CREATE INDEX ON sp_err USING engram_hnsw (v int4_space_ops);
CREATE INDEX ON sp_err USING engram_hnsw (a, v text_space_ops);
CREATE INDEX ON sp_err USING engram_hnsw (a real_l2_ops, v);
-- a key type without a space operator class
CREATE INDEX ON sp_err USING engram_hnsw ((b::smallint), v);
-- an existing key longer than 256 bytes fails the build
INSERT INTO sp_err (t, v) VALUES (repeat('x', 300), '{1,2}');
CREATE INDEX ON sp_err USING engram_hnsw (t, v);
-- ... and with the index in place, the insert
TRUNCATE sp_err;
CREATE INDEX sp_err_t_idx ON sp_err USING engram_hnsw (t, v);
INSERT INTO sp_err (t, v) VALUES (repeat('x', 300), '{1,2}');
INSERT INTO sp_err (t, v) VALUES ('ok', '{1,2}'), ('ok', '{1,2,3}');
SELECT count(*) FROM sp_err;
-- the failed statements left an element of an aborted row behind, no space
-- for the long key
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('sp_err_t_idx');
SELECT * FROM sp_dir('sp_err_t_idx');
DROP TABLE sp_err;

--
-- a LIST-partitioned table: the index on the parent cascades to every
-- partition (one created after the index too); queries through the parent
--
CREATE TABLE sp_part (id int, space_id int, embedding real[]) PARTITION BY LIST (space_id);
CREATE TABLE sp_part_a PARTITION OF sp_part FOR VALUES IN (1, 2) WITH (autovacuum_enabled = off);
CREATE TABLE sp_part_b PARTITION OF sp_part FOR VALUES IN (3) WITH (autovacuum_enabled = off);
CREATE TABLE sp_part_d PARTITION OF sp_part DEFAULT WITH (autovacuum_enabled = off);
INSERT INTO sp_part SELECT i, i % 6, sp_vec(i) FROM generate_series(1, 120) i;
CREATE INDEX sp_part_idx ON sp_part USING engram_hnsw (space_id, embedding) WITH (m = 8, ef_construction = 32);
CREATE TABLE sp_part_c PARTITION OF sp_part FOR VALUES IN (7, 8) WITH (autovacuum_enabled = off);
INSERT INTO sp_part SELECT i, i % 9, sp_vec(i) FROM generate_series(121, 240) i;
SELECT c.relname AS partition, x.indexrelid::regclass AS index
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_index x ON x.indrelid = c.oid
WHERE i.inhparent = 'sp_part'::regclass ORDER BY 1;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF)
SELECT id FROM sp_part WHERE space_id = 3 ORDER BY embedding <-> '{0.1,0.2,0.3,0.4,0.1,0.2,0.3,0.4}' LIMIT 5;
EXPLAIN (COSTS OFF)
SELECT id FROM sp_part WHERE space_id = ANY ('{1,4,8}') ORDER BY embedding <-> '{0.1,0.2,0.3,0.4,0.1,0.2,0.3,0.4}' LIMIT 5;
EXPLAIN (COSTS OFF)
SELECT id FROM sp_part ORDER BY embedding <-> '{0.1,0.2,0.3,0.4,0.1,0.2,0.3,0.4}' LIMIT 5;
PREPARE sp_pq(int, real[]) AS
	SELECT id FROM sp_part WHERE space_id = $1 ORDER BY embedding <-> $2 LIMIT 5;
SET plan_cache_mode = force_generic_plan;
EXPLAIN (COSTS OFF) EXECUTE sp_pq(5, '{0.1,0.2,0.3,0.4,0.1,0.2,0.3,0.4}');
EXECUTE sp_pq(5, sp_vec(1000));
SELECT array_agg(id) AS exact_top5_space5 FROM (
	SELECT id FROM sp_part WHERE space_id = 5 ORDER BY embedding <-> sp_vec(1000) LIMIT 5) s;
RESET plan_cache_mode;
SELECT s AS space,
       sp_same(format('SELECT id FROM sp_part WHERE space_id = %s ORDER BY embedding <-> sp_vec(%s) LIMIT 10', s, 100 + s), 'sp_part_') AS top10
FROM generate_series(0, 8) s;
SELECT sp_same('SELECT id FROM sp_part WHERE space_id = ANY (''{1,4,8}'') ORDER BY embedding <-> sp_vec(3000) LIMIT 50', 'sp_part_') AS any_3,
       sp_same('SELECT id FROM sp_part ORDER BY embedding <-> sp_vec(3001) LIMIT 30', 'sp_part_') AS all_spaces;
SELECT count(*) FILTER (WHERE (SELECT b.id FROM sp_part b WHERE b.space_id = a.space_id
                               ORDER BY b.embedding <-> a.embedding LIMIT 1) = a.id) AS found_first,
       count(*) AS all_rows
FROM sp_part a;
-- a row moving to another space moves to another partition
UPDATE sp_part SET space_id = 7 WHERE id = 3;
SELECT tableoid::regclass AS partition, id FROM sp_part WHERE space_id = 7 ORDER BY embedding <-> sp_vec(3) LIMIT 1;
RESET enable_seqscan;
SELECT c.relname, k.elements, k.deleted_elements, k.heap_tids, k.unreachable
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid,
LATERAL engram_hnsw_check(i.inhrelid) k
WHERE i.inhparent = 'sp_part_idx'::regclass
ORDER BY c.relname;
-- the partitioned index itself has no pages to check
SELECT * FROM engram_hnsw_check('sp_part_idx');
DROP TABLE sp_part;

-- the int4 index once more, after everything above
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('sp_i4_idx');

DEALLOCATE ALL;
DROP TABLE sp_i4, sp_i8, sp_txt, sp_uuid;
DROP FUNCTION sp_same(text, text);
DROP FUNCTION sp_dir(regclass, OUT int, OUT int, OUT bigint);
DROP FUNCTION rd_dir(regclass), rd_u32(bytea, int), rd_u16(bytea, int);
DROP EXTENSION pageinspect;
DROP FUNCTION sp_vec(int);
RESET engram_hnsw.ef_search;
