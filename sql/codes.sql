--
-- codes: the "codes" option names the compact codes a build walks its
-- graph on (int8, rabitq, fp16).  Every kind builds a graph that a search
-- finds the nearest rows in, serially and in parallel, for each metric; any
-- other value is refused.
--
-- Vectors come from a fixed formula (no random()); element levels are
-- random, so only recall floors and counts are printed.
--

CREATE FUNCTION codes_vec(i int, d int) RETURNS real[]
LANGUAGE sql IMMUTABLE STRICT AS $$
	SELECT array_agg((sin(i * 0.37 + j * 1.1 + (i % 13) * j * 0.07)
					  + cos(i * 0.011 * j))::real ORDER BY j)
	FROM generate_series(1, d) j
$$;

CREATE TABLE codes_t (id int, v real[]);
INSERT INTO codes_t SELECT i, codes_vec(i, 16) FROM generate_series(1, 3000) i;
CREATE TABLE codes_q (qid int, v real[]);
INSERT INTO codes_q SELECT i, codes_vec(100000 + i * 7, 16) FROM generate_series(1, 20) i;

-- the exact 10 nearest rows of every query, per operator
CREATE TABLE codes_truth (op text, qid int, id int);
SET enable_indexscan = off;
SET enable_bitmapscan = off;
INSERT INTO codes_truth
SELECT 'l2', q.qid, t.id FROM codes_q q,
	LATERAL (SELECT id FROM codes_t ORDER BY v <-> q.v, id LIMIT 10) t;
INSERT INTO codes_truth
SELECT 'cosine', q.qid, t.id FROM codes_q q,
	LATERAL (SELECT id FROM codes_t ORDER BY v <=> q.v, id LIMIT 10) t;
INSERT INTO codes_truth
SELECT 'ip', q.qid, t.id FROM codes_q q,
	LATERAL (SELECT id FROM codes_t ORDER BY v <#> q.v, id LIMIT 10) t;
RESET enable_indexscan;
RESET enable_bitmapscan;

-- recall@10 of the index scans over the 20 queries, at ef_search 40 (scans
-- walk on the codes too: RaBitQ's one bit per dimension needs the width)
CREATE FUNCTION codes_recall(op text) RETURNS float8
LANGUAGE plpgsql AS $$
DECLARE
	r float8;
BEGIN
	SET LOCAL enable_seqscan = off;
	SET LOCAL engram_hnsw.ef_search = 40;
	EXECUTE format($q$
		SELECT count(*)::float8 / 200 FROM codes_q q,
			LATERAL (SELECT id FROM codes_t ORDER BY v %s q.v LIMIT 10) t
		WHERE EXISTS (SELECT 1 FROM codes_truth c
					  WHERE c.op = %L AND c.qid = q.qid AND c.id = t.id)$q$,
		CASE op WHEN 'l2' THEN '<->' WHEN 'cosine' THEN '<=>' ELSE '<#>' END, op)
		INTO r;
	RETURN r;
END
$$;

-- a scan returns the results it read ahead (ef_search of them) in exact
-- distance order: the executor's own distances of the first 40 rows at
-- ef_search 1000 never decrease.  int8 and fp16 codes place rows by their
-- error bounds, which always hold; RaBitQ's bound is probabilistic, so
-- every RaBitQ result is placed by its exact distance (NULL here: the
-- recall floor covers it)
CREATE FUNCTION codes_sorted(op text, codes text) RETURNS bool
LANGUAGE plpgsql AS $$
DECLARE
	bad bigint;
BEGIN
	IF codes = 'rabitq' THEN
		RETURN NULL;
	END IF;
	SET LOCAL enable_seqscan = off;
	SET LOCAL engram_hnsw.ef_search = 1000;
	EXECUTE format($q$
		SELECT count(*) FROM codes_q q,
			LATERAL (SELECT d, lag(d) OVER (ORDER BY n) AS prev
					 FROM (SELECT d, row_number() OVER () AS n
						   FROM (SELECT v %1$s q.v AS d FROM codes_t
								 ORDER BY v %1$s q.v LIMIT 40) s) r) t
		WHERE t.d < t.prev$q$,
		CASE op WHEN 'l2' THEN '<->' WHEN 'cosine' THEN '<=>' ELSE '<#>' END)
		INTO bad;
	RETURN bad = 0;
END
$$;

-- one index at a time: build it, check it, measure its recall and order
CREATE FUNCTION codes_build(op text, codes text) RETURNS TABLE (
	elements bigint, unreachable bigint, recall_ok bool, sorted bool)
LANGUAGE plpgsql AS $$
BEGIN
	DROP INDEX IF EXISTS codes_idx;
	EXECUTE format('CREATE INDEX codes_idx ON codes_t USING engram_hnsw (v %s) WITH (codes = %L)',
				   CASE op WHEN 'l2' THEN 'real_l2_ops' WHEN 'cosine' THEN 'real_cosine_ops'
				   ELSE 'real_ip_ops' END, codes);
	RETURN QUERY
	SELECT c.elements, c.unreachable, codes_recall(op) >= 0.9, codes_sorted(op, codes_build.codes)
	FROM engram_hnsw_check('codes_idx') c;
END
$$;

-- serial builds: every kind, every metric
SET max_parallel_maintenance_workers = 0;
SELECT op, codes, b.*
FROM unnest(ARRAY['l2', 'cosine', 'ip']) op,
	 unnest(ARRAY['int8', 'rabitq', 'fp16']) codes,
	 LATERAL codes_build(op, codes) b
ORDER BY op, codes;

-- the option as stored; the default is int8
CREATE INDEX codes_default ON codes_t USING engram_hnsw (v);
SELECT relname, reloptions FROM pg_class
WHERE relname IN ('codes_idx', 'codes_default') ORDER BY relname;
DROP INDEX codes_default;

-- parallel builds (a worker and the leader) walk on codes too
SET max_parallel_maintenance_workers = 1;
ALTER TABLE codes_t SET (parallel_workers = 1);
SELECT op, codes, b.*
FROM unnest(ARRAY['l2', 'ip']) op,
	 unnest(ARRAY['int8', 'rabitq', 'fp16']) codes,
	 LATERAL codes_build(op, codes) b
ORDER BY op, codes;
RESET max_parallel_maintenance_workers;

-- names are case-insensitive
CREATE INDEX codes_upper ON codes_t USING engram_hnsw (v) WITH (codes = 'FP16');
DROP INDEX codes_upper;

-- anything else is refused, naming the value and the allowed ones
CREATE INDEX codes_bad ON codes_t USING engram_hnsw (v) WITH (codes = 'int4');
CREATE INDEX codes_bad ON codes_t USING engram_hnsw (v) WITH (codes = '');
ALTER INDEX codes_idx SET (codes = 'pq');

DROP TABLE codes_t, codes_q, codes_truth;
DROP FUNCTION codes_vec(int, int), codes_recall(text), codes_sorted(text, text),
	codes_build(text, text);

-- an element's code must fit a page: int8 stops near 7 900 dimensions,
-- fp16 near 3 900; RaBitQ fits every length up to 16 000
CREATE TABLE codes_wide (v real[]);
INSERT INTO codes_wide SELECT array_fill(0.5::real, ARRAY[9000]);
CREATE INDEX codes_wide_i8 ON codes_wide USING engram_hnsw (v) WITH (codes = int8);
CREATE INDEX codes_wide_f16 ON codes_wide USING engram_hnsw (v) WITH (codes = fp16);
CREATE INDEX codes_wide_rq ON codes_wide USING engram_hnsw (v) WITH (codes = rabitq);
SELECT format, codes, elements FROM engram_hnsw_check('codes_wide_rq');
-- page format 2 (engram_hnsw.build_format, for upgrade tests) holds at
-- most 2 000 dimensions, at build and at the first insert
SET engram_hnsw.build_format = 2;
CREATE INDEX codes_wide_f2 ON codes_wide USING engram_hnsw (v);
CREATE TABLE codes_f2 (v real[]);
CREATE INDEX codes_f2_idx ON codes_f2 USING engram_hnsw (v);
RESET engram_hnsw.build_format;
INSERT INTO codes_f2 VALUES (array_fill(1::real, ARRAY[2001]));
SELECT format, codes, elements FROM engram_hnsw_check('codes_f2_idx');
DROP TABLE codes_wide, codes_f2;
