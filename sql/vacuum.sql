--
-- vacuum: dead rows leave the index, the graph stays sound and searchable,
-- deleted rows are never returned, and the index keeps working after
-- deleting everything and after TRUNCATE.
--
CREATE FUNCTION vac_vec(i int, d int) RETURNS real[]
LANGUAGE sql IMMUTABLE STRICT AS $$
	SELECT array_agg(sin(i * 0.37 + j * 0.11 + (i % 7) * j * 0.013)::real ORDER BY j)
	FROM generate_series(1, d) j
$$;

-- Temporary tables: VACUUM then removes every row deleted by a committed
-- transaction, whatever other sessions (autovacuum, say) are doing.
CREATE TEMP TABLE vac_t (id int, v real[]);
INSERT INTO vac_t
SELECT i, CASE WHEN i % 10 = 0 THEN NULL ELSE vac_vec(i, 8) END
FROM generate_series(1, 1000) i;
CREATE INDEX vac_t_idx ON vac_t USING engram_hnsw (v);
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('vac_t_idx');
SELECT reltuples FROM pg_class WHERE relname = 'vac_t_idx';
SET enable_seqscan = off;

--
-- delete half of the rows
--
DELETE FROM vac_t WHERE id % 2 = 0;
-- before VACUUM the dead rows are still in the index, but never returned
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('vac_t_idx');
SELECT count(*), count(*) FILTER (WHERE id % 2 = 0) AS deleted_rows
FROM (SELECT id FROM vac_t ORDER BY v <-> vac_vec(2, 8) LIMIT 1000) s;
VACUUM vac_t;
-- the 400 elements of deleted rows are marked deleted; 500 rows remain
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('vac_t_idx');
SELECT reltuples FROM pg_class WHERE relname = 'vac_t_idx';
-- every remaining row is found by its own vector ...
SELECT count(*) AS rows,
       count(*) FILTER (WHERE (SELECT t2.id FROM vac_t t2 ORDER BY t2.v <-> t.v LIMIT 1) = t.id) AS found
FROM vac_t t WHERE v IS NOT NULL;
-- ... also at a small ef_search
SET engram_hnsw.ef_search = 10;
SELECT count(*) FILTER (WHERE (SELECT t2.id FROM vac_t t2 ORDER BY t2.v <-> t.v LIMIT 1) = t.id) AS found
FROM vac_t t WHERE v IS NOT NULL;
RESET engram_hnsw.ef_search;
-- deleted rows are never returned, and a scan still reaches every live row
SELECT count(*), count(DISTINCT id), count(*) FILTER (WHERE id % 2 = 0) AS deleted_rows
FROM (SELECT id FROM vac_t ORDER BY v <-> vac_vec(2, 8) LIMIT 1000) s;
-- querying with deleted vectors finds their live neighbours
SELECT count(*) AS queries,
       count(*) FILTER (WHERE (SELECT t2.id FROM vac_t t2 ORDER BY t2.v <-> vac_vec(q, 8) LIMIT 1) % 2 = 1) AS live_answer
FROM generate_series(2, 200, 2) q;

--
-- recall after the deletion is as good as on a fresh build of the survivors
--
CREATE TEMP TABLE vac_queries AS
SELECT q, vac_vec(q, 8) AS qv FROM generate_series(2, 1000, 20) q;
CREATE TEMP TABLE vac_exact AS
SELECT q, ARRAY(SELECT id FROM vac_t WHERE v IS NOT NULL ORDER BY l2_distance(v, qv), id LIMIT 10) AS ids
FROM vac_queries;
CREATE FUNCTION vac_recall() RETURNS numeric LANGUAGE sql AS $$
	SELECT round(avg((SELECT count(*) FROM unnest(ARRAY(SELECT id FROM vac_t ORDER BY v <-> qv LIMIT 10)) x
	                  WHERE x = ANY (e.ids)) / 10.0), 2)
	FROM vac_queries JOIN vac_exact e USING (q)
$$;
SELECT vac_recall() >= 0.95 AS vacuumed_recall_ok;
CREATE TEMP TABLE vac_recall_after_vacuum AS SELECT vac_recall() AS r;
REINDEX INDEX vac_t_idx;
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('vac_t_idx');
SELECT vac_recall() >= 0.95 AS rebuilt_recall_ok;
SELECT (SELECT r FROM vac_recall_after_vacuum) >= vac_recall() - 0.02 AS as_good_as_rebuilt;

--
-- heap TIDs freed by VACUUM are reused by new rows: the index must not
-- confuse them with the deleted ones
--
DELETE FROM vac_t WHERE id % 4 = 1;
VACUUM vac_t;
INSERT INTO vac_t SELECT i, vac_vec(i, 8) FROM generate_series(2001, 2250) i;
SELECT elements - deleted_elements AS live_elements, heap_tids, unreachable
FROM engram_hnsw_check('vac_t_idx');
-- a deleted row's vector never comes back at distance 0
SELECT count(*) FILTER (WHERE (SELECT t2.v <-> vac_vec(q, 8) FROM vac_t t2 ORDER BY t2.v <-> vac_vec(q, 8) LIMIT 1) = 0) AS stale_hits
FROM generate_series(1, 1000, 4) q;
-- and the index agrees with the exact answer
SELECT count(*) AS queries,
       count(*) FILTER (WHERE (SELECT t2.id FROM vac_t t2 ORDER BY t2.v <-> vac_vec(q, 8) LIMIT 1)
                            = (SELECT t3.id FROM vac_t t3 WHERE v IS NOT NULL ORDER BY l2_distance(t3.v, vac_vec(q, 8)) LIMIT 1)) AS exact
FROM generate_series(1, 1000, 4) q;
SELECT count(*) AS rows,
       count(*) FILTER (WHERE (SELECT t2.id FROM vac_t t2 ORDER BY t2.v <-> t.v LIMIT 1) = t.id) AS found
FROM vac_t t WHERE v IS NOT NULL;

--
-- VACUUM with INDEX_CLEANUP off leaves the index alone; a later VACUUM
-- cleans it
--
DELETE FROM vac_t WHERE id > 2000 AND id % 2 = 0;
VACUUM (INDEX_CLEANUP off) vac_t;
SELECT elements - deleted_elements AS live_elements, heap_tids, unreachable
FROM engram_hnsw_check('vac_t_idx');
SELECT count(*) FILTER (WHERE id > 2000 AND id % 2 = 0) AS deleted_rows
FROM (SELECT id FROM vac_t ORDER BY v <-> vac_vec(2100, 8) LIMIT 1000) s;
VACUUM vac_t;
SELECT elements - deleted_elements AS live_elements, heap_tids, unreachable
FROM engram_hnsw_check('vac_t_idx');

--
-- delete every row, VACUUM, insert again
--
DELETE FROM vac_t;
VACUUM vac_t;
SELECT elements = deleted_elements AS all_deleted, heap_tids, unreachable
FROM engram_hnsw_check('vac_t_idx');
SELECT reltuples FROM pg_class WHERE relname = 'vac_t_idx';
SELECT count(*) FROM (SELECT id FROM vac_t ORDER BY v <-> vac_vec(1, 8) LIMIT 10) s;
INSERT INTO vac_t SELECT i, vac_vec(i, 8) FROM generate_series(3001, 3100) i;
SELECT elements - deleted_elements AS live_elements, heap_tids, unreachable
FROM engram_hnsw_check('vac_t_idx');
SELECT count(*) AS rows,
       count(*) FILTER (WHERE (SELECT t2.id FROM vac_t t2 ORDER BY t2.v <-> t.v LIMIT 1) = t.id) AS found
FROM vac_t t;
-- the dimension stays fixed
INSERT INTO vac_t VALUES (4000, '{1,2,3}');

--
-- TRUNCATE empties the index; the dimension is learned anew
--
TRUNCATE vac_t;
SELECT pages, elements, deleted_elements, heap_tids, max_level, unreachable
FROM engram_hnsw_check('vac_t_idx');
SELECT count(*) FROM (SELECT id FROM vac_t ORDER BY v <-> '{1,2,3}' LIMIT 10) s;
INSERT INTO vac_t SELECT i, vac_vec(i, 3) FROM generate_series(1, 200) i;
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('vac_t_idx');
SELECT count(*) AS rows,
       count(*) FILTER (WHERE (SELECT t2.id FROM vac_t t2 ORDER BY t2.v <-> t.v LIMIT 1) = t.id) AS found
FROM vac_t t;
-- TRUNCATE in a transaction that rolls back keeps the old index
BEGIN;
TRUNCATE vac_t;
INSERT INTO vac_t VALUES (1, '{1,2,3,4,5}');
ROLLBACK;
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('vac_t_idx');
SELECT id FROM vac_t ORDER BY v <-> vac_vec(150, 3) LIMIT 1;

--
-- VACUUM FULL rebuilds the index
--
DELETE FROM vac_t WHERE id <= 100;
VACUUM FULL vac_t;
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('vac_t_idx');
SELECT count(*) AS rows,
       count(*) FILTER (WHERE (SELECT t2.id FROM vac_t t2 ORDER BY t2.v <-> t.v LIMIT 1) = t.id) AS found
FROM vac_t t;

--
-- a permanent table (WAL-logged changes); only counts that do not depend on
-- what other sessions' snapshots still see
--
CREATE TABLE vac_perm (id int, v real[]);
INSERT INTO vac_perm SELECT i, vac_vec(i, 8) FROM generate_series(1, 400) i;
CREATE INDEX vac_perm_idx ON vac_perm USING engram_hnsw (v);
DELETE FROM vac_perm WHERE id % 2 = 0;
VACUUM vac_perm;
SELECT elements, heap_tids >= 200 AS at_least_live, unreachable FROM engram_hnsw_check('vac_perm_idx');
SELECT count(*) AS rows,
       count(*) FILTER (WHERE (SELECT t2.id FROM vac_perm t2 ORDER BY t2.v <-> t.v LIMIT 1) = t.id) AS found
FROM vac_perm t;
INSERT INTO vac_perm SELECT i, vac_vec(i, 8) FROM generate_series(401, 500) i;
VACUUM vac_perm;
SELECT count(*) AS rows,
       count(*) FILTER (WHERE (SELECT t2.id FROM vac_perm t2 ORDER BY t2.v <-> t.v LIMIT 1) = t.id) AS found
FROM vac_perm t;
SELECT count(*), count(*) FILTER (WHERE id % 2 = 0 AND id <= 400) AS deleted_rows
FROM (SELECT id FROM vac_perm ORDER BY v <-> vac_vec(2, 8) LIMIT 1000) s;
SELECT heap_tids >= 300 AS at_least_live, unreachable FROM engram_hnsw_check('vac_perm_idx');
DROP TABLE vac_perm;

--
-- cosine and inner-product indexes are vacuumed too
--
CREATE TEMP TABLE vac_ops (id int, v real[]);
INSERT INTO vac_ops SELECT i, vac_vec(i, 8) FROM generate_series(1, 30) i;
INSERT INTO vac_ops VALUES (31, '{0,0,0,0,0,0,0,0}');
CREATE INDEX vac_ops_cos ON vac_ops USING engram_hnsw (v real_cosine_ops);
CREATE INDEX vac_ops_ip ON vac_ops USING engram_hnsw (v real_ip_ops);
DELETE FROM vac_ops WHERE id % 3 = 0;
VACUUM vac_ops;
SELECT c.relname, k.elements, k.deleted_elements, k.heap_tids, k.unreachable
FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid,
LATERAL engram_hnsw_check(x.indexrelid) k
WHERE x.indrelid = 'vac_ops'::regclass
ORDER BY c.relname;
SELECT count(*), count(*) FILTER (WHERE id % 3 = 0) AS deleted_rows
FROM (SELECT id FROM vac_ops ORDER BY v <=> vac_vec(5, 8) LIMIT 100) s;
SELECT count(*), count(*) FILTER (WHERE id % 3 = 0) AS deleted_rows
FROM (SELECT id FROM vac_ops ORDER BY v <#> vac_vec(5, 8) LIMIT 100) s;
DROP TABLE vac_ops;

--
-- A deleted entry point must not make a merge lose its way.  The entry
-- point is often alone on its top layers; VACUUM merges the pending list
-- while the entry is already flagged deleted, and each merged element's
-- search descends through it.  Had the descent dropped the deleted entry on
-- the way down, the search would find nothing live, the merged element
-- would take over as entry point, and the index would be left entered from
-- a low element (found by TAP 002: half the rows then missed their own
-- vector).  Thirty rounds, m = 2 (tall graphs, so the entry is often alone
-- on two layers): after VACUUM the entry is live and on the highest level
-- of any live element.
--
CREATE EXTENSION IF NOT EXISTS pageinspect;
CREATE FUNCTION vac_u16(p bytea, o int) RETURNS int LANGUAGE sql IMMUTABLE
AS $$ SELECT get_byte(p, o) + 256 * get_byte(p, o + 1) $$;
-- the meta page's entry point (block, offset) and level
CREATE FUNCTION vac_entry(idx regclass, OUT blk int, OUT off int, OUT level int)
LANGUAGE sql AS $$
	SELECT vac_u16(p, 48) * 65536 + vac_u16(p, 50), vac_u16(p, 52), vac_u16(p, 44)
	FROM get_raw_page(idx::text, 0) p
$$;
-- every element tuple: where, level, flags and its first heap TID
CREATE FUNCTION vac_elements(idx regclass)
RETURNS TABLE (blk int, off int, level int, flags int, heap tid)
LANGUAGE sql AS $$
	SELECT b::int, o, get_byte(p, lo + 1), get_byte(p, lo + 2),
	       format('(%s,%s)', vac_u16(p, lo + 14) * 65536::bigint + vac_u16(p, lo + 16),
	              vac_u16(p, lo + 18))::tid
	FROM generate_series(1, pg_relation_size(idx) / 8192 - 1) b,
	     LATERAL get_raw_page(idx::text, b::int) p,
	     LATERAL generate_series(1, (vac_u16(p, 12) - 24) / 4) o,
	     LATERAL (SELECT vac_u16(p, 24 + 4 * (o - 1)) +
	                     65536::bigint * vac_u16(p, 26 + 4 * (o - 1)) AS w) lp,
	     LATERAL (SELECT (w & 32767)::int AS lo, (w >> 15) & 3 AS lpflags) x
	WHERE lpflags = 1 AND lo > 0 AND get_byte(p, lo) = 1
$$;
CREATE TABLE vac_ep (id int, v real[]);
CREATE TABLE vac_ep_result (round int, entry_live bool, entry_level int, max_live_level int);
\set ECHO none
SELECT 'DROP INDEX IF EXISTS vac_ep_idx',
       'TRUNCATE vac_ep',
       format('INSERT INTO vac_ep SELECT i, vac_vec(i + %s, 4) FROM generate_series(1, 200) i', r * 1000),
       'CREATE INDEX vac_ep_idx ON vac_ep USING engram_hnsw (v) WITH (m = 2, ef_construction = 8)',
       format('INSERT INTO vac_ep SELECT i, vac_vec(i + %s, 4) FROM generate_series(201, 230) i', r * 1000),
       $q$DELETE FROM vac_ep WHERE ctid = (SELECT e.heap FROM vac_elements('vac_ep_idx') e,
              vac_entry('vac_ep_idx') x WHERE e.blk = x.blk AND e.off = x.off)$q$,
       'VACUUM vac_ep',
       format($q$INSERT INTO vac_ep_result
              SELECT %s, (SELECT e.flags = 0 FROM vac_elements('vac_ep_idx') e
                           WHERE (e.blk, e.off) = (x.blk, x.off)),
                     x.level,
                     (SELECT max(e.level) FROM vac_elements('vac_ep_idx') e WHERE e.flags = 0)
              FROM vac_entry('vac_ep_idx') x$q$, r)
FROM generate_series(1, 30) r
\gexec
\set ECHO all
SELECT count(*) AS rounds,
       count(*) FILTER (WHERE entry_live AND entry_level = max_live_level) AS entry_on_top
FROM vac_ep_result;
SELECT elements, deleted_elements, heap_tids, unreachable, pending FROM engram_hnsw_check('vac_ep_idx');
DROP TABLE vac_ep, vac_ep_result;
DROP FUNCTION vac_elements(regclass);
DROP FUNCTION vac_entry(regclass);
DROP FUNCTION vac_u16(bytea, int);
DROP EXTENSION pageinspect;

RESET enable_seqscan;
DROP FUNCTION vac_recall();
DROP TABLE vac_t, vac_queries, vac_exact, vac_recall_after_vacuum;
DROP FUNCTION vac_vec(int, int);
