#!/usr/bin/env bash
#
# bench/wl_spaces_build.sh: serial against parallel CREATE INDEX of a
# memory-space index, USING engram_hnsw (space_id, embedding real_l2_ops),
# on the multi-space sets of bench/tools/gen.c (`gen spaces`: row i in
# space i % S, so every space's rows are spread over the whole heap).  In
# each run the serial build (max_parallel_maintenance_workers = 0) and the
# parallel one (= $BENCH_PARALLEL_WORKERS, default 1: leader + 1 worker)
# follow each other on the same table; reported: median wall clock, the
# speed-up (serial median / parallel median, and the median of the per-run
# ratios), the leader's CPU time, the index size and the backends' peak
# private memory above the level before the build (bench_index_build).
# Writes bench/results/spaces_build.md and spaces_build.tsv.
#
# Knobs: SPACES_BUILD_SETS ("spaces128-2000x100 spaces128-10000x100", QUICK
#        "spaces128-200x100"), INDEX_M (16), INDEX_EFC (64), BENCH_RUNS (3),
#        BENCH_PARALLEL_WORKERS (1), BENCH_MAINTENANCE_WORK_MEM (4GB).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init spaces_build

SETS="${SPACES_BUILD_SETS:-$(bench_quick spaces128-200x100 "spaces128-2000x100 spaces128-10000x100")}"
PW="${BENCH_PARALLEL_WORKERS:-1}"
printf 'set\tworkers\trun\tseconds\tcpu_s\tindex_mb\tpeak_mb\tworkers_seen\n' >"$TSV"

bench_start
bench_wal_warmup

for set in $SETS; do
	bench_dataset "$set"
	db="sb_$(tr -c 'a-z0-9\n' '_' <<<"$set")"
	bench_log "[$set] loading $DS_N rows"
	bench_psql -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
	bench_psql -d "$db" -c "CREATE EXTENSION engram_hnsw" \
		-c "CREATE TABLE items (id int PRIMARY KEY, space_id int NOT NULL, embedding real[])" \
		-c "ALTER TABLE items ALTER COLUMN embedding SET STORAGE $BENCH_STORAGE"
	bench_copy_fvecs "$db" items "$DS_BASE" --spaces
	bench_psql -d "$db" -c "VACUUM (ANALYZE) items"
	nspaces="$(bench_val -d "$db" -c "SELECT count(DISTINCT space_id) FROM items")"
	for run in $(seq 1 "$BENCH_RUNS"); do
		for w in 0 "$PW"; do
			read -r secs cpu mb peak seen <<<"$(bench_index_build "$db" items_sp \
				"CREATE INDEX items_sp ON items USING engram_hnsw (space_id, embedding real_l2_ops) WITH ($WITH)" "$w")"
			printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$set" "$w" "$run" "$secs" "$cpu" "$mb" "$peak" "$seen" >>"$TSV"
			bench_log "[$set] run $run workers=$w: $secs s (leader CPU $cpu s), $mb MB, peak +$peak MB, workers seen: $seen"
		done
	done
	check="$(bench_val -d "$db" -c "SELECT elements || ' elements, ' || unreachable || ' unreachable' FROM engram_hnsw_check('items_sp')")"
	printf '%s\tcheck\t-\t%s\t-\t-\t-\t-\n' "$set" "$check" >>"$TSV"
	printf '%s\tspaces\t-\t%s\t-\t-\t-\t-\n' "$set" "$nspaces" >>"$TSV"
	bench_psql -c "DROP DATABASE $db"
done

# median of column COL of the runs of SET with WORKERS
med() { awk -F'\t' -v s="$1" -v w="$2" -v c="$3" '$1 == s && $2 == w { print $c }' "$TSV" | bench_median; }
# median over runs of serial seconds / parallel seconds of the same run
med_ratio() {
	awk -F'\t' -v s="$1" -v w="$2" '$1 == s && $2 == 0 { a[$3] = $4 } $1 == s && $2 == w { b[$3] = $4 }
		END { for (r in a) if (r in b && b[r] > 0) printf "%.3f\n", a[r] / b[r] }' "$TSV" | bench_median
}
field() { awk -F'\t' -v s="$1" -v k="$2" '$1 == s && $2 == k { print $4 }' "$TSV"; }

{
	echo "# Memory-space index: serial against parallel build"
	echo
	echo "$(bench_machine_line)."
	echo
	echo "CREATE INDEX ... USING engram_hnsw (space_id, embedding real_l2_ops) WITH ($WITH) on"
	echo "\`gen spaces\` sets (bench/tools/gen.c: row i in space i % S), serial"
	echo "(max_parallel_maintenance_workers = 0) and parallel (= $PW: leader + $PW worker(s)), one after"
	echo "the other in each run, CHECKPOINT before each build. Seconds: wall clock, median of the runs;"
	echo "leader CPU: the backend's CPU time (parallel workers not included); peak MB: the backends'"
	echo "private memory above the level before the build (shared memory of the parallel build's"
	echo "area not included: it is bounded by maintenance_work_mem). Speed-up: serial median over"
	echo "parallel median (in brackets: median of the runs' own ratios)."
	echo
	echo "| set | rows | spaces | serial s | parallel s | speed-up | serial leader CPU s | parallel leader CPU s | index MB | peak MB serial / parallel | check |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|"
	for set in $SETS; do
		bench_dataset "$set" >/dev/null
		s="$(med "$set" 0 4)"
		p="$(med "$set" "$PW" 4)"
		printf '| %s | %s | %s | %s | %s | %s (%s) | %s | %s | %s | %s / %s | %s |\n' "$set" "$DS_N" "$(field "$set" spaces)" \
			"$(bench_fmt "$s" 2)" "$(bench_fmt "$p" 2)" "$(bench_ratio "$s" "$p")" "$(bench_fmt "$(med_ratio "$set" "$PW")" 2)" \
			"$(bench_fmt "$(med "$set" 0 5)" 2)" "$(bench_fmt "$(med "$set" "$PW" 5)" 2)" \
			"$(bench_fmt "$(med "$set" "$PW" 6)" 0)" "$(bench_fmt "$(med "$set" 0 7)" 0)" "$(bench_fmt "$(med "$set" "$PW" 7)" 0)" \
			"$(field "$set" check)"
	done
	echo
	echo "Runs (seconds, serial / parallel):"
	echo
	for set in $SETS; do
		printf -- '- %s: %s\n' "$set" "$(awk -F'\t' -v s="$set" -v w="$PW" '$1 == s && ($2 == 0 || $2 == w) {
			t[$3] = t[$3] ($2 == 0 ? "" : " / ") $4 } END { for (r = 1; r in t; r++) printf "%s%s", (r > 1 ? ", " : ""), t[r] }' "$TSV")"
	done
	echo
	bench_settings_md
} >"$RESULT_MD"
bench_log "wrote $RESULT_MD"
