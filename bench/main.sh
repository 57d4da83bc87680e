#!/usr/bin/env bash
#
# bench/main.sh: end-to-end demonstration.  On a fresh Debian 12 machine, as root:
#
#     sudo bash bench/main.sh
#
# installs the Debian packages, builds (-Werror) and installs engram_hnsw,
# starts a throwaway cluster, loads the 60 000 Fashion-MNIST train images
# (784-dim real[]) and 1 000 test images as queries, then reports:
#
#   - the exact brute-force top 10 of every query (sequential scan), its
#     total wall time and the median latency of one exact query;
#   - the CREATE INDEX time (m = 16, ef_construction = 64) and index size;
#   - for ef_search in 10 20 40 80 200: recall@10 against the exact top 10
#     and the median / p95 latency of one query.
#
# Latencies are measured server-side (clock_timestamp() around each query in
# a PL/pgSQL loop, one session, serial execution), so they exclude the
# client round trip.  Results are printed and saved in bench/work/.
#
# Knobs (environment): BENCH_TRAIN (60000), BENCH_QUERIES (1000),
# BENCH_EF_LIST ("10 20 40 80 200"), BENCH_M (16), BENCH_EF_CONSTRUCTION (64),
# BENCH_EXACT_QUERIES (100: queries timed for the exact-scan latency),
# BENCH_OUT (bench/work), ENGRAM_SKIP_DEPS=1, ENGRAM_SKIP_BUILD=1.

set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=test/lib.sh
source "$HERE/../test/lib.sh"

N_TRAIN="${BENCH_TRAIN:-60000}"
N_QUERIES="${BENCH_QUERIES:-1000}"
EF_LIST="${BENCH_EF_LIST:-10 20 40 80 200}"
M="${BENCH_M:-16}"
EF_CONSTRUCTION="${BENCH_EF_CONSTRUCTION:-64}"
N_EXACT="${BENCH_EXACT_QUERIES:-100}"
OUT_DIR="${BENCH_OUT:-$ENGRAM_ROOT/bench/work}"
K=10
DB=engram_bench

trap engram_cleanup EXIT
trap 'exit 130' INT TERM

T_START="$(date +%s)"
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

engram_install_deps
if [[ "${ENGRAM_SKIP_BUILD:-0}" != 1 ]]; then
	engram_log "building (make WERROR=1) and installing engram_hnsw"
	engram_build_install >/dev/null || engram_die "build failed (run: make WERROR=1)"
fi
engram_build_idx2copy
mkdir -p "$OUT_DIR"

engram_cluster_start -c shared_buffers=1GB -c maintenance_work_mem=1GB \
	-c work_mem=64MB -c jit=off -c max_parallel_workers_per_gather=0 \
	-c max_wal_size=4GB -c checkpoint_timeout=30min

engram_psql -c "CREATE DATABASE $DB"
export PGDATABASE=$DB
q() { engram_psql "$@"; }
qv() { engram_psql_val "$@"; }
q -c "CREATE EXTENSION engram_hnsw"

# ---------------------------------------------------------------- load
engram_log "loading $N_TRAIN train vectors and $N_QUERIES queries"
t0="$(now)"
# plain storage: no compression/TOAST, so exact scans measure distances
ENGRAM_LOAD_STORAGE=plain engram_load_fmnist items train "$N_TRAIN" 0 pk
ENGRAM_LOAD_STORAGE=plain engram_load_fmnist queries test "$N_QUERIES" 0 nopk
q -c "VACUUM (ANALYZE) items" -c "VACUUM (ANALYZE) queries"
LOAD_S="$(since "$t0")"
# warm the cache
q -c "SELECT count(*), sum(array_length(embedding, 1)) FROM items" >/dev/null

# ---------------------------------------------------------------- exact
q <<'SQL'
CREATE TABLE truth (qid int, nid int, dist float8);
CREATE TABLE runs (method text, ef int, qid int, ms float8, ids int[], dists float8[]);

-- time every query of a loop; ef = 0 means "exact" (no index exists then)
CREATE FUNCTION bench_loop(p_method text, p_ef int, p_limit int) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	r record;
	t0 timestamptz;
	v_ids int[];
	v_dists float8[];
BEGIN
	IF p_ef > 0 THEN
		PERFORM set_config('engram_hnsw.ef_search', p_ef::text, true);
	END IF;
	FOR r IN SELECT id, embedding FROM queries ORDER BY id LIMIT p_limit LOOP
		t0 := clock_timestamp();
		SELECT array_agg(s.id), array_agg(s.d) INTO v_ids, v_dists
		FROM (SELECT i.id, i.embedding <-> r.embedding AS d
			  FROM items i ORDER BY i.embedding <-> r.embedding LIMIT 10) s;
		INSERT INTO runs VALUES (p_method, p_ef, r.id,
			extract(epoch FROM clock_timestamp() - t0) * 1000, v_ids, v_dists);
	END LOOP;
END $$;
SQL

engram_log "exact top $K of $N_QUERIES queries by sequential scan (2 sessions)"
t0="$(now)"
pids=()
for part in 0 1; do
	q -c "SET enable_indexscan = off" -c "SET enable_bitmapscan = off" -c "
		INSERT INTO truth
		SELECT qq.id, t.id, t.dist FROM queries qq CROSS JOIN LATERAL (
			SELECT i.id, i.embedding <-> qq.embedding AS dist FROM items i
			ORDER BY i.embedding <-> qq.embedding, i.id LIMIT $K) t
		WHERE qq.id % 2 = $part" &
	pids+=("$!")
done
for p in "${pids[@]}"; do wait "$p" || engram_die "ground truth query failed"; done
TRUTH_S="$(since "$t0")"
[[ "$(qv -c "SELECT count(*) FROM truth")" == $((N_QUERIES * K)) ]] || engram_die "incomplete ground truth"

engram_log "timing $N_EXACT exact queries (serial seq scan)"
q -c "SELECT bench_loop('exact', 0, $N_EXACT)" >/dev/null

# ---------------------------------------------------------------- build
engram_log "CREATE INDEX ... WITH (m = $M, ef_construction = $EF_CONSTRUCTION)"
t0="$(now)"
q -c "CREATE INDEX items_embedding_idx ON items USING engram_hnsw (embedding real_l2_ops)
	WITH (m = $M, ef_construction = $EF_CONSTRUCTION)"
BUILD_S="$(since "$t0")"
q -c "ANALYZE items"
INDEX_SIZE="$(qv -c "SELECT pg_size_pretty(pg_relation_size('items_embedding_idx'))")"
TABLE_SIZE="$(qv -c "SELECT pg_size_pretty(pg_table_size('items'))")"
t0="$(now)"
CHECK="$(qv -F ' ' -c "SELECT 'elements=' || elements || ' heap_tids=' || heap_tids || ' max_level=' || max_level || ' unreachable=' || unreachable FROM engram_hnsw_check('items_embedding_idx'::regclass)" 2>"$ENGRAM_TMPDIR/check.err")" ||
	CHECK="engram_hnsw_check FAILED"
CHECK="$CHECK $(tr -s '\n' ' ' <"$ENGRAM_TMPDIR/check.err")"
CHECK_S="$(since "$t0")"

PLAN="$(q -c "EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY embedding <-> (SELECT embedding FROM queries WHERE id = 1) LIMIT $K")"
if ! grep -q 'Index Scan using items_embedding_idx' <<<"$PLAN"; then
	engram_log "WARNING: the planner does not pick the index by default:"
	echo "$PLAN" >&2
	engram_log "forcing it with enable_seqscan = off"
	q -c "ALTER DATABASE $DB SET enable_seqscan = off"
fi

# ---------------------------------------------------------------- ANN runs
engram_log "warm-up"
q -c "SELECT bench_loop('warmup', 40, least($N_QUERIES, 200))" >/dev/null
for ef in $EF_LIST; do
	engram_log "ef_search = $ef: $N_QUERIES queries"
	q -c "SELECT bench_loop('engram_hnsw', $ef, $N_QUERIES)" >/dev/null
done

# ---------------------------------------------------------------- report
REPORT="$OUT_DIR/results.txt"
TSV="$OUT_DIR/results.tsv"
q -P footer=off -c "
	WITH kth AS (
		SELECT qid, max(dist) AS kd, array_agg(nid) AS tn FROM truth GROUP BY qid
	), per_query AS (
		SELECT r.method, r.ef, r.qid, r.ms,
			(SELECT count(DISTINCT x.id) FROM unnest(r.ids, r.dists) AS x(id, d)
			  WHERE x.id = ANY (k.tn) OR x.d <= k.kd + 1e-9 * greatest(1.0, abs(k.kd))) AS hits
		FROM runs r JOIN kth k USING (qid)
		WHERE r.method <> 'warmup'
	)
	SELECT method,
		CASE WHEN ef = 0 THEN '-' ELSE ef::text END AS ef_search,
		count(*) AS queries,
		to_char(avg(least(hits, $K))::numeric / $K, 'FM0.000') AS \"recall@10\",
		to_char(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), 'FM99990.000') AS \"median ms\",
		to_char(percentile_cont(0.95) WITHIN GROUP (ORDER BY ms), 'FM99990.000') AS \"p95 ms\",
		to_char(1000 / avg(ms), 'FM9999990') AS qps
	FROM per_query
	GROUP BY method, ef
	ORDER BY method = 'engram_hnsw', ef" >"$OUT_DIR/table.txt"

q -At -F $'\t' -c "
	WITH kth AS (
		SELECT qid, max(dist) AS kd, array_agg(nid) AS tn FROM truth GROUP BY qid
	), per_query AS (
		SELECT r.ef, r.ms,
			(SELECT count(DISTINCT x.id) FROM unnest(r.ids, r.dists) AS x(id, d)
			  WHERE x.id = ANY (k.tn) OR x.d <= k.kd + 1e-9 * greatest(1.0, abs(k.kd))) AS hits
		FROM runs r JOIN kth k USING (qid)
		WHERE r.method = 'engram_hnsw'
	)
	SELECT ef, round(avg(least(hits, $K))::numeric / $K, 4),
		round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 4)
	FROM per_query GROUP BY ef ORDER BY ef" >"$TSV"

{
	echo "engram_hnsw benchmark: Fashion-MNIST, $N_TRAIN x 784-dim real[] (L2), $N_QUERIES queries, top $K"
	echo "host: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo), $(qv -c 'SHOW server_version')"
	echo
	printf '%-44s %10s\n' "load (COPY + VACUUM ANALYZE)" "${LOAD_S} s"
	printf '%-44s %10s\n' "exact scan, all $N_QUERIES queries (2 sessions)" "${TRUTH_S} s"
	printf '%-44s %10s\n' "CREATE INDEX (m=$M, ef_construction=$EF_CONSTRUCTION)" "${BUILD_S} s"
	printf '%-44s %10s\n' "engram_hnsw_check" "${CHECK_S} s"
	printf '%-44s %10s\n' "table size / index size" "$TABLE_SIZE / $INDEX_SIZE"
	echo "index check: $CHECK"
	echo
	echo "per-query latency (server side, serial; exact = sequential scan over $N_TRAIN rows):"
	cat "$OUT_DIR/table.txt"
} | tee "$REPORT"

if command -v gnuplot >/dev/null 2>&1 && [[ -s "$TSV" ]]; then
	gnuplot -e "set terminal dumb 78 20; set title 'recall@10 vs median latency (ms)';
		set xlabel 'median ms'; set ylabel 'recall'; set key off;
		plot '$TSV' using 3:2 with linespoints pt '*'" 2>/dev/null | tee "$OUT_DIR/plot.txt" || true
fi
echo "results saved in $OUT_DIR (results.txt, results.tsv); total $(($(date +%s) - T_START)) s"
