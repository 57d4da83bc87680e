#!/usr/bin/env bash
#
# bench/wl_format.sh: page format 2 (vectors in the element tuples, walks on
# float4) against format 3 (codes in the element tuples, vectors on vector
# pages, exact rerank) with each code kind, on one binary and one cluster:
# engram_hnsw.build_format = 2 builds the former.  Fashion-MNIST (L2), base
# and query vectors stored PLAIN.  Per index: serial CREATE INDEX time, size,
# and recall@10 / queries/s at each ef_search (one backend, PL/pgSQL loop,
# the second of two passes timed).  Indexes are built and measured one after
# the other, in the order of FORMAT_KINDS, FORMAT_RUNS times (medians).
#
#     bash bench/wl_format.sh            # as root; PostgreSQL runs as postgres
#
# Knobs: FORMAT_ROWS (60000), FORMAT_QUERIES (200), FORMAT_KINDS ("f2 int8
# rabitq"), FORMAT_EF ("10 20 40 80"), FORMAT_RUNS (1), ENGRAM_SKIP_BUILD=1
# (use the installed extension), and test/lib.sh's (PGBIN, ENGRAM_PGPORT).
# Prints a markdown table; results go to bench/results/format3.md by hand.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=test/lib.sh
source "$HERE/../test/lib.sh"

ROWS="${FORMAT_ROWS:-60000}"
NQ="${FORMAT_QUERIES:-200}"
KINDS="${FORMAT_KINDS:-f2 int8 rabitq}"
EFS="${FORMAT_EF:-10 20 40 80}"
RUNS="${FORMAT_RUNS:-1}"

[[ "${ENGRAM_SKIP_BUILD:-0}" == 1 ]] || engram_build_install
engram_cluster_start -c shared_buffers=1GB -c maintenance_work_mem=2GB \
	-c max_parallel_maintenance_workers=0 -c jit=off
trap 'engram_cluster_stop; engram_cleanup' EXIT
engram_psql -c "CREATE EXTENSION engram_hnsw"
ENGRAM_LOAD_STORAGE=PLAIN engram_load_fmnist base train "$ROWS" >/dev/null
ENGRAM_LOAD_STORAGE=PLAIN engram_load_fmnist q test "$NQ" >/dev/null
engram_psql -c "SET max_parallel_workers_per_gather = 0" -c "CREATE TABLE truth AS
  SELECT q.id AS qid, array(SELECT b.id FROM base b ORDER BY b.embedding <-> q.embedding LIMIT 10) AS ids
  FROM q"
engram_psql <<'SQL'
CREATE FUNCTION run_queries(ef int, OUT recall float8, OUT qps float8) LANGUAGE plpgsql AS $$
DECLARE
  t0 timestamptz;
  hits int;
  r record;
  got int[];
BEGIN
  EXECUTE format('SET engram_hnsw.ef_search = %s', ef);
  SET enable_seqscan = off;
  FOR pass IN 1..2 LOOP
    hits := 0;
    t0 := clock_timestamp();
    FOR r IN SELECT q.embedding, t.ids FROM q JOIN truth t ON t.qid = q.id LOOP
      got := array(SELECT b.id FROM base b ORDER BY b.embedding <-> r.embedding LIMIT 10);
      hits := hits + (SELECT count(*) FROM unnest(got) g WHERE g = ANY (r.ids));
    END LOOP;
  END LOOP;
  qps := (SELECT count(*) FROM q) / extract(epoch FROM clock_timestamp() - t0);
  recall := hits::float8 / (10 * (SELECT count(*) FROM q));
END $$;
SQL

declare -A build size qps recall
for run in $(seq "$RUNS"); do
	for k in $KINDS; do
		engram_psql -c "DROP INDEX IF EXISTS base_idx"
		pre="" opt=""
		if [[ "$k" == f2 ]]; then pre="SET engram_hnsw.build_format = 2;"; else opt="WITH (codes = $k)"; fi
		t0="$(date +%s.%N)"
		engram_psql -c "$pre CREATE INDEX base_idx ON base USING engram_hnsw (embedding) $opt"
		build[$k]+="$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') "
		size[$k]="$(engram_psql_val -c "SELECT pg_relation_size('base_idx') / 1048576")"
		for ef in $EFS; do
			read -r rc qp < <(engram_psql_val -F ' ' -c "SELECT round(recall::numeric, 4), round(qps::numeric) FROM run_queries($ef)")
			recall[$k,$ef]="$rc"
			qps[$k,$ef]+="$qp "
		done
	done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$HERE/.." rev-parse --short HEAD), $(uptime | sed 's/.*load/load/')"
echo "Fashion-MNIST $ROWS x 784, $NQ queries, m 16, ef_construction 64, PLAIN storage, medians of $RUNS"
echo
echo "| index | build s | MB | $(for ef in $EFS; do printf 'ef %s recall / q/s | ' "$ef"; done)"
echo "|---|---|---|$(for ef in $EFS; do printf -- '---|'; done)"
for k in $KINDS; do
	line="| $([[ $k == f2 ]] && echo 'format 2' || echo "format 3, $k") | $(echo "${build[$k]}" | median) | ${size[$k]} |"
	for ef in $EFS; do
		line+=" ${recall[$k,$ef]} / $(echo "${qps[$k,$ef]}" | median) |"
	done
	echo "$line"
done
