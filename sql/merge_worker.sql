--
-- merge_worker: an insert that finds its share of the pending list over
-- the limit leaves the merge to a background worker of the index, started
-- on demand (engram_hnsw.merge_worker, on by default).
--
CREATE FUNCTION mw_vec(i int, d int) RETURNS real[]
LANGUAGE sql IMMUTABLE AS
$$ SELECT array_agg(cos(i * 0.53 + k * 0.7)::real ORDER BY k) FROM generate_series(1, d) k $$;

-- settings (the library defines them once loaded)
LOAD 'engram_hnsw';
SHOW engram_hnsw.merge_worker;
SET engram_hnsw.merge_worker = sometimes;
SET engram_hnsw.max_merge_workers = 4;
SHOW engram_hnsw.max_merge_workers;
SHOW engram_hnsw.merge_helper_idle_cpus;
SET engram_hnsw.merge_helper_idle_cpus = 1;

-- wait (up to 60 s) until the boolean expression cond is true
CREATE FUNCTION mw_wait(cond text) RETURNS bool
LANGUAGE plpgsql AS $$
DECLARE
  ok bool;
BEGIN
  FOR i IN 1..1200 LOOP
    EXECUTE 'SELECT ' || cond INTO ok;
    IF ok THEN
      RETURN true;
    END IF;
    PERFORM pg_sleep(0.05);
  END LOOP;
  RETURN false;
END $$;
-- ... until the index has fewer than n pending rows
CREATE FUNCTION mw_wait_pending(idx regclass, n int) RETURNS bool
LANGUAGE sql AS $$
  SELECT mw_wait(format('(SELECT pending FROM engram_hnsw_check(%L)) < %s', idx, n))
$$;

-- is a merge worker of the index running (it holds its advisory lock)?
CREATE FUNCTION mw_worker(idx regclass) RETURNS bool
LANGUAGE sql AS $$
  SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'
                 AND classid = idx::oid AND objid = 0 AND objsubid = 3 AND granted)
$$;
-- wait (up to 60 s) until it is, or is not
CREATE FUNCTION mw_wait_worker(idx regclass, running bool) RETURNS bool
LANGUAGE sql AS $$
  SELECT mw_wait(format('mw_worker(%L) = %L', idx, running))
$$;

-- one row per statement, so that the rows of this session stay in one
-- stripe (a statement storing many rows moves on to another stripe when
-- its own is over its share, as long as the others are nearly empty)
CREATE FUNCTION mw_insert_rows(first int, last int) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN first .. last LOOP
    INSERT INTO mw_t VALUES (i, mw_vec(i, 16));
  END LOOP;
END
$$;
-- a stripe's share is 64kB / 8 = 8kB, 56 rows of 16 dimensions: 150
-- rows from one session pass it (the insert starts a worker and goes on),
-- but stay under 4 shares (where a writer would merge or pause itself)
CREATE TABLE mw_t (id int, v real[]);
INSERT INTO mw_t SELECT i, mw_vec(i, 16) FROM generate_series(1, 200) i;
CREATE INDEX mw_idx ON mw_t USING engram_hnsw (v) WITH (m = 8, ef_construction = 32,
                                                       pending_list_limit = 64);
-- the table lock keeps the worker (which opens the table as an insert does)
-- out until COMMIT, so the count shows that the writer did not merge
BEGIN;
LOCK TABLE mw_t IN SHARE ROW EXCLUSIVE MODE;
SELECT mw_insert_rows(201, 350);
SELECT pending AS pending_left_to_the_worker FROM engram_hnsw_check('mw_idx');
-- past 4 shares (224 rows) with a worker running, the writer pauses
-- a moment per row and still leaves the rows to the worker ...
SELECT mw_wait_worker('mw_idx', true) AS worker_started;
SELECT mw_insert_rows(351, 550);
SELECT pending AS pending_past_four_shares FROM engram_hnsw_check('mw_idx');
-- ... up to 8 shares (448 rows): beyond, it merges its stripe itself
SELECT mw_insert_rows(551, 650);
SELECT pending < 224 AS merged_past_eight_shares FROM engram_hnsw_check('mw_idx');
COMMIT;
-- only the worker merges now: this session is idle until the list shrinks
SELECT mw_wait_pending('mw_idx', 57) AS merged_by_worker;
SELECT elements, heap_tids, unreachable FROM engram_hnsw_check('mw_idx');
SET enable_seqscan = off;
SELECT count(*) AS rows,
       count(*) FILTER (WHERE (SELECT t2.id FROM mw_t t2 ORDER BY t2.v <-> t.v LIMIT 1) = t.id) AS found
FROM mw_t t;
RESET enable_seqscan;

-- a scan that finds a chain over its share starts the worker too: here the
-- writer's worker is terminated while it waits for the table, so the 150
-- rows stay pending with no worker and no insert after them
SELECT mw_wait_worker('mw_idx', false) AS idle_worker_exited;
BEGIN;
LOCK TABLE mw_t IN SHARE ROW EXCLUSIVE MODE;
INSERT INTO mw_t SELECT i, mw_vec(i, 16) FROM generate_series(651, 800) i;
SELECT mw_wait_worker('mw_idx', true) AS worker_started;
SELECT pg_terminate_backend(pid, 30000) AS worker_terminated FROM pg_stat_activity
WHERE backend_type = 'engram_hnsw merge worker';
COMMIT;
SELECT pending >= 150 AS left_pending, mw_worker('mw_idx') AS worker FROM engram_hnsw_check('mw_idx');
-- (a backend starts at most one worker per index per second)
SELECT pg_sleep(1.1);
SET enable_seqscan = off;
SELECT id FROM mw_t ORDER BY v <-> mw_vec(700, 16) LIMIT 1;
RESET enable_seqscan;
SELECT mw_wait_pending('mw_idx', 57) AS merged_by_worker_the_scan_started;
SELECT elements, heap_tids, unreachable FROM engram_hnsw_check('mw_idx');

-- with merge_worker off, the insert over its share merges itself, at once
SET engram_hnsw.merge_worker = off;
-- (first the list is drained: the number merged depends on how far the
-- worker got, the list left behind does not)
SELECT engram_hnsw_merge_pending('mw_idx') AS drained \gset
SELECT pending AS pending_after_drain FROM engram_hnsw_check('mw_idx');
INSERT INTO mw_t SELECT i, mw_vec(i, 16) FROM generate_series(801, 950) i;
SELECT pending < 150 AS merged_inline, unreachable FROM engram_hnsw_check('mw_idx');
RESET engram_hnsw.merge_worker;

-- a temporary index has no worker (its pages are this backend's own):
-- its writer merges itself
CREATE TEMP TABLE mw_tmp (id int, v real[]);
CREATE INDEX mw_tmp_idx ON mw_tmp USING engram_hnsw (v) WITH (pending_list_limit = 64);
INSERT INTO mw_tmp SELECT i, mw_vec(i, 16) FROM generate_series(1, 150) i;
SELECT pending < 150 AS merged_inline, unreachable FROM engram_hnsw_check('mw_tmp_idx');

-- dropping the index while its worker may still run does not wait for it
-- beyond one round, and the worker goes away with the index
INSERT INTO mw_t SELECT i, mw_vec(i, 16) FROM generate_series(951, 1100) i;
DROP INDEX mw_idx;
SELECT count(*) AS rows FROM mw_t;

DROP TABLE mw_t, mw_tmp;
DROP FUNCTION mw_insert_rows(int, int);
DROP FUNCTION mw_wait_pending(regclass, int);
DROP FUNCTION mw_wait_worker(regclass, bool);
DROP FUNCTION mw_worker(regclass);
DROP FUNCTION mw_wait(text);
DROP FUNCTION mw_vec(int, int);
