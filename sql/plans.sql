--
-- plans: the planner's choice between an engram_hnsw index scan, a seq
-- scan + sort and a btree on a filter column (src/hnsw_cost.c, and the
-- distance functions' support function).  Fixed data, ANALYZEd (the
-- samples cover whole tables), plans without costs.
--
SET client_min_messages = warning;

-- 1 000 rows of 1536-d vectors: stored out of line (float arrays do not
-- compress), so a seq scan detoasts 6 kB and computes a 1536-d distance
-- per row, where the index visits a few hundred elements
CREATE TABLE plans_hd (id int PRIMARY KEY, c50 int, v real[]);
INSERT INTO plans_hd
SELECT i, i % 2, (SELECT array_agg(sin(i * 0.37 + j * 1.3)::real) FROM generate_series(1, 1536) j)
  FROM generate_series(1, 1000) i;
CREATE INDEX plans_hd_ann ON plans_hd USING engram_hnsw (v) WITH (ef_construction = 32);
CREATE INDEX plans_hd_c50 ON plans_hd (c50);
ANALYZE plans_hd;

-- ORDER BY distance LIMIT: the index
EXPLAIN (COSTS OFF)
SELECT id FROM plans_hd ORDER BY v <-> (SELECT v FROM plans_hd WHERE id = 1) LIMIT 10;

-- a filter half of the rows pass (with a btree on it): still the index
EXPLAIN (COSTS OFF)
SELECT id FROM plans_hd WHERE c50 = 0 ORDER BY v <-> (SELECT v FROM plans_hd WHERE id = 1) LIMIT 10;

-- 20 000 rows of 8-d vectors, a filter 0.5 % of the rows pass, with a
-- btree: to find 10 rows that pass, the index would return about 2 000
-- rows nearest first; the btree finds the 100 rows that pass and they are
-- sorted
CREATE TABLE plans_ld (id int PRIMARY KEY, c int, v real[]);
INSERT INTO plans_ld
SELECT i, i % 200, ARRAY[sin(i), cos(i), sin(i * 2), cos(i * 3), sin(i * 5), cos(i * 7),
		sin(i * 11), cos(i * 13)]::real[]
  FROM generate_series(1, 20000) i;
CREATE INDEX plans_ld_ann ON plans_ld USING engram_hnsw (v) WITH (ef_construction = 32);
CREATE INDEX plans_ld_c ON plans_ld (c);
ANALYZE plans_ld;

EXPLAIN (COSTS OFF)
SELECT id FROM plans_ld WHERE c = 7 ORDER BY v <-> '{0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8}' LIMIT 10;

-- without a filter, the same table: the index
EXPLAIN (COSTS OFF)
SELECT id FROM plans_ld ORDER BY v <-> '{0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8}' LIMIT 10;

DROP TABLE plans_hd, plans_ld;
