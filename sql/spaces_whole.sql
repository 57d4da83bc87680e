--
-- spaces_whole: memory spaces read whole.  A format 3 index lists, in each
-- space's directory entry, the data blocks holding its elements; a scan of
-- a space listed on at most engram_hnsw.space_read_pages blocks reads those
-- blocks and returns the space's rows in exact distance order, whatever
-- engram_hnsw.ef_search is.  With ef_search = 1 a graph search returns
-- rows only roughly in order, so "same" below on a whole ordering shows the
-- space was read whole and the list held every block.
--
-- The list grows as inserts put elements on new blocks (direct inserts,
-- pending inserts, slots reused after VACUUM, heap TIDs added to an
-- identical vector's element) and the space is flagged scattered when it
-- outgrows the list; VACUUM lists each space's blocks afresh, so a space
-- that shrank is listed (and read whole) again; engram_hnsw_check verifies
-- every live element lies on a listed block.
--

-- 8 pseudo-random values in [-0.5, 0.5) from a sin() hash of i
CREATE FUNCTION sw_vec(i int) RETURNS real[]
LANGUAGE sql IMMUTABLE STRICT AS $$
	SELECT array_agg((x - floor(x) - 0.5)::real ORDER BY d)
	FROM (SELECT d, sin(i * 12.9898 + d * 78.233) * 43758.5453 AS x
	      FROM generate_series(0, 7) d) s
$$;

-- every row of space s in order of distance to sw_vec(q): by the index and
-- by brute force; "same" if they agree and the index was used
CREATE FUNCTION sw_same(s int, q int) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	by_index int[];
	by_seqscan int[];
	plan text;
BEGIN
	SET LOCAL enable_seqscan = off;
	SET LOCAL enable_bitmapscan = off;
	EXECUTE format('EXPLAIN (COSTS OFF) SELECT id FROM sw WHERE space_id = %s ORDER BY embedding <-> sw_vec(%s)', s, q)
		INTO plan;
	SELECT array_agg(id) INTO by_index FROM
		(SELECT id FROM sw WHERE space_id = s ORDER BY embedding <-> sw_vec(q)) x;
	SET LOCAL enable_indexscan = off;
	SET LOCAL enable_seqscan = on;
	SELECT array_agg(id) INTO by_seqscan FROM
		(SELECT id FROM sw WHERE space_id = s ORDER BY embedding <-> sw_vec(q), id) x;
	SET LOCAL enable_indexscan = on;
	IF plan NOT LIKE '%Index Scan%' THEN
		RETURN 'no index scan';
	ELSIF by_index IS NOT DISTINCT FROM by_seqscan THEN
		RETURN 'same';
	END IF;
	RETURN format('%s rows by index, %s by seqscan, first difference at %s',
				  cardinality(by_index), cardinality(by_seqscan),
				  (SELECT min(i) FROM generate_series(1, greatest(cardinality(by_index), cardinality(by_seqscan))) i
				   WHERE by_index[i] IS DISTINCT FROM by_seqscan[i]));
END
$$;

-- the same for the rows of several spaces (space_id = ANY): the spaces read
-- whole are merged by their rows' bounds, taking exact distances lazily
CREATE FUNCTION sw_same_any(tab regclass, s int[], q int) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	by_index int[];
	by_seqscan int[];
	l text;
	used boolean := false;
	sql text := 'SELECT array_agg(id) FROM (SELECT id FROM %s WHERE space_id = ANY (%L)
		ORDER BY embedding <-> sw_vec(%s)%s LIMIT 30) x';
BEGIN
	SET LOCAL enable_seqscan = off;
	SET LOCAL enable_bitmapscan = off;
	FOR l IN EXECUTE 'EXPLAIN (COSTS OFF) ' || format(sql, tab, s, q, '') LOOP
		used := used OR l LIKE '%Index Scan%';
	END LOOP;
	EXECUTE format(sql, tab, s, q, '') INTO by_index;
	SET LOCAL enable_indexscan = off;
	SET LOCAL enable_seqscan = on;
	EXECUTE format(sql, tab, s, q, ', id') INTO by_seqscan;
	SET LOCAL enable_indexscan = on;
	IF NOT used THEN
		RETURN 'no index scan';
	ELSIF by_index IS NOT DISTINCT FROM by_seqscan THEN
		RETURN 'same';
	END IF;
	RETURN format('index %s, seqscan %s', by_index, by_seqscan);
END
$$;

-- the directory entry of an int4 key, read with pageinspect (layout of
-- src/hnsw_format.h): the number of blocks it lists, -1 if it is flagged
-- scattered, -2 if it has no list
\i sql/include/directory.sql
CREATE FUNCTION sw_blocks(idx regclass, key int) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	d record;
BEGIN
	FOR d IN SELECT * FROM rd_dir(idx) LOOP
		CONTINUE WHEN rd_u32(d.page, d.off + 20) <> key;
		IF get_byte(d.page, d.off + 1) & 2 = 0 THEN
			RETURN -2;
		ELSIF get_byte(d.page, d.off + 1) & 4 <> 0 THEN
			RETURN -1;
		END IF;
		RETURN rd_u16(d.page, d.off + 24);
	END LOOP;
	RAISE EXCEPTION 'no directory entry for key %', key;
END
$$;
-- the same as a word (block counts depend on the graphs' random levels)
CREATE FUNCTION sw_list(idx regclass, key int) RETURNS text
LANGUAGE sql AS $$
	SELECT CASE WHEN n = -2 THEN 'no list' WHEN n = -1 THEN 'scattered'
		WHEN n BETWEEN 0 AND 32 THEN 'listed' ELSE 'bad count ' || n END
	FROM sw_blocks(idx, key) n
$$;

-- space 1: 40 rows, space 2: 2 000 rows (more blocks than a list holds),
-- space 3: 5 rows; rows interleaved as a table fills
CREATE TABLE sw (id int, space_id int, embedding real[]);
INSERT INTO sw SELECT i, CASE WHEN i % 50 = 0 THEN 1 WHEN i % 400 = 1 THEN 3 ELSE 2 END, sw_vec(i)
	FROM generate_series(1, 2045) i;
SELECT space_id, count(*) FROM sw GROUP BY 1 ORDER BY 1;
CREATE INDEX sw_idx ON sw USING engram_hnsw (space_id, embedding) WITH (fastupdate = off);
SELECT sw_list('sw_idx', 1) AS space1, sw_list('sw_idx', 2) AS space2, sw_list('sw_idx', 3) AS space3;

SET engram_hnsw.ef_search = 1;
SELECT s, q, sw_same(s, q) FROM (VALUES (1), (3)) a(s), (VALUES (7), (5000)) b(q);
-- the graph search of space 2 (scattered) still finds its nearest row
SELECT (SELECT id FROM sw WHERE space_id = 2 ORDER BY embedding <-> sw_vec(2) LIMIT 1) AS nearest;

-- direct inserts into every space, interleaved: space 1's new elements land on
-- insert pages shared with the others, and its list grows
SELECT sw_blocks('sw_idx', 1) AS b1, sw_blocks('sw_idx', 3) AS b3 \gset
INSERT INTO sw SELECT i, 1 + i % 3, sw_vec(i) FROM generate_series(3001, 3090) i;
SELECT sw_blocks('sw_idx', 1) > :b1 AS space1_grew, sw_blocks('sw_idx', 3) > :b3 AS space3_grew,
	sw_list('sw_idx', 1) AS space1, sw_list('sw_idx', 3) AS space3;
SELECT s, q, sw_same(s, q) FROM (VALUES (1), (3)) a(s), (VALUES (11), (4000)) b(q);

-- a row with the vector of an existing one: its heap TID joins that element
INSERT INTO sw VALUES (3100, 1, sw_vec(50));
SELECT count(*) AS twins FROM sw WHERE space_id = 1 AND embedding = sw_vec(50);
SELECT sw_same(1, 50);

-- free slots on space 1's blocks taken by space 3's new elements
DELETE FROM sw WHERE space_id = 1 AND id % 100 = 0;
VACUUM sw;
SELECT sw_blocks('sw_idx', 3) AS b3 \gset
INSERT INTO sw SELECT i, 3, sw_vec(i) FROM generate_series(3101, 3120) i;
SELECT sw_blocks('sw_idx', 3) > :b3 AS space3_grew;
SELECT s, q, sw_same(s, q) FROM (VALUES (1), (3)) a(s), (VALUES (13), (6000)) b(q);
SELECT elements - deleted_elements AS live, heap_tids, unreachable, pending FROM engram_hnsw_check('sw_idx');
SELECT q, sw_same_any('sw', '{1,3}', q) FROM (VALUES (13), (6000)) b(q);

-- pending rows (fastupdate) come through the pending list, not twice
ALTER INDEX sw_idx SET (fastupdate = on);
INSERT INTO sw SELECT i, 1, sw_vec(i) FROM generate_series(3201, 3220) i;
SELECT sw_same(1, 17);
SELECT engram_hnsw_merge_pending('sw_idx') > 0 AS merged;
SELECT sw_same(1, 17), sw_list('sw_idx', 1) AS space1;
ALTER INDEX sw_idx SET (fastupdate = off);

-- space 3 outgrows the list: scattered, searched as a graph from then on
INSERT INTO sw SELECT i, 3, sw_vec(i) FROM generate_series(4001, 5600) i;
SELECT sw_list('sw_idx', 3) AS space3;
SET engram_hnsw.ef_search = 200;
SELECT (SELECT array_agg(id) FROM (SELECT id FROM sw WHERE space_id = 3 ORDER BY embedding <-> sw_vec(9) LIMIT 5) x)
	= (SELECT array_agg(id) FROM (SELECT id FROM sw WHERE space_id = 3 ORDER BY embedding <-> sw_vec(9), id LIMIT 5) x)
	AS graph_top5_exact;
SET engram_hnsw.ef_search = 1;

-- and back: after deletes, VACUUM lists the blocks of the rows left, and
-- the space is read whole again
DELETE FROM sw WHERE space_id = 3 AND id > 4000;
VACUUM sw;
SELECT sw_list('sw_idx', 3) AS space3;
SELECT s, q, sw_same(s, q) FROM (VALUES (3)) a(s), (VALUES (9), (8000)) b(q);

-- VACUUM drops the blocks a space no longer has rows on
SELECT sw_blocks('sw_idx', 1) AS b1 \gset
DELETE FROM sw WHERE space_id = 1 AND id > 3000;
VACUUM sw;
SELECT sw_blocks('sw_idx', 1) < :b1 AS space1_shrank, sw_list('sw_idx', 1) AS space1, sw_same(1, 31);

-- a space emptied by VACUUM and revived reads whole again
DELETE FROM sw WHERE space_id = 1;
VACUUM sw;
SELECT sw_same(1, 19);
INSERT INTO sw SELECT i, 1, sw_vec(i) FROM generate_series(6001, 6012) i;
SELECT sw_same(1, 19), sw_list('sw_idx', 1) AS space1;

-- engram_hnsw.space_read_pages = 0: every space is searched as a graph
SET engram_hnsw.space_read_pages = 0;
SET engram_hnsw.ef_search = 200;
SELECT sw_same(1, 23);
RESET engram_hnsw.space_read_pages;
SELECT elements - deleted_elements AS live, heap_tids, unreachable, pending FROM engram_hnsw_check('sw_idx');

-- a rebuilt index lists its spaces afresh
REINDEX INDEX sw_idx;
SELECT sw_list('sw_idx', 1) AS space1, sw_list('sw_idx', 3) AS space3;
SET engram_hnsw.ef_search = 1;
SELECT s, q, sw_same(s, q) FROM (VALUES (1)) a(s), (VALUES (29), (7000)) b(q);

-- = ANY over many spaces: 300 spaces of 1 to 7 rows, 200 of them listed
-- (and a key that has no space); the top 30 over their union as by brute force
CREATE TABLE sw_many (id int, space_id int, embedding real[]);
INSERT INTO sw_many SELECT i, i % 300, sw_vec(i) FROM generate_series(1, 300) i;
INSERT INTO sw_many SELECT i, (i * 7) % 300, sw_vec(i) FROM generate_series(301, 1200) i WHERE (i * 13) % 5 <> 0;
CREATE INDEX sw_many_idx ON sw_many USING engram_hnsw (space_id, embedding);
SELECT q, sw_same_any('sw_many', ARRAY(SELECT g FROM generate_series(0, 399, 2) g), q)
FROM (VALUES (3), (9000)) b(q);
DROP TABLE sw_many;

-- format 2 indexes keep no lists and search every space as a graph
SET engram_hnsw.build_format = 2;
CREATE INDEX sw_idx2 ON sw USING engram_hnsw (space_id, embedding);
RESET engram_hnsw.build_format;
SELECT sw_list('sw_idx2', 1) AS space1;
DROP INDEX sw_idx2;

RESET engram_hnsw.ef_search;
DROP TABLE sw;
DROP FUNCTION sw_same(int, int);
DROP FUNCTION sw_same_any(regclass, int[], int);
DROP FUNCTION sw_list(regclass, int);
DROP FUNCTION sw_blocks(regclass, int);
DROP FUNCTION rd_dir(regclass), rd_u32(bytea, int), rd_u16(bytea, int);
DROP FUNCTION sw_vec(int);
DROP EXTENSION pageinspect;
