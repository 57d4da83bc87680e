#!/usr/bin/env bash
#
# bench/wl_build.sh: index build workload.  For each data set, in each run:
#   - CREATE INDEX ... USING engram_hnsw, serial (max_parallel_maintenance_workers = 0),
#   - the same with max_parallel_maintenance_workers = $BENCH_PARALLEL_WORKERS (default 1),
#   - hnswlib with 1 and with 2 threads (same data, M, ef_construction),
# reporting the median build time, index size and peak memory of the
# backends (sum of RssAnon over all backends and workers, sampled every
# 50 ms, above the level before the build).  Runs are interleaved.
# Writes bench/results/build.md, build.tsv and build.png.
#
# Knobs: BUILD_SETS ("fmnist:l2 gauss128-100k:l2 gauss1536n-100k:cosine",
#        QUICK "fmnist-10k:l2"; BENCH_BIG=1 adds gauss128-1m:l2 and
#        spaces128-10000x100 is in wl_spaces.sh), INDEX_M (16), INDEX_EFC (64),
#        INDEX_OPTS, BENCH_RUNS (3), BENCH_BIG_RUNS (runs for sets of
#        >= 1M rows, default 1), BUILD_METHODS (default "pg0 pgp h1 h2":
#        engram_hnsw serial, engram_hnsw parallel, hnswlib 1 and 2 threads),
#        BENCH_MERGE=1 (keep the sections of the
#        sets not run now from the existing build.md, see lib.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init build

SETS="${BUILD_SETS:-$(bench_quick fmnist-10k:l2 "fmnist:l2 gauss128-100k:l2 gauss1536n-100k:cosine")}"
[[ "${BENCH_BIG:-0}" == 1 ]] && SETS="$SETS gauss128-1m:l2"
PW="${BENCH_PARALLEL_WORKERS:-1}"
# BENCH_MERGE=1: the sets of the previous report that are not run now are kept
now=()
for spec in $SETS; do now+=("$(sed 's/-/_/g' <<<"${spec%%:*}")_${spec#*:}"); done
# shellcheck disable=SC2016 # an awk program
bench_merge_kept '/<!-- summary -->/ { on = 1 } /<!-- \/summary -->/ { on = 0 } on && /^## / { print $2 }' "${now[@]}"
printf 'set\tmethod\trun\tseconds\tindex_mb\tpeak_mb\tworkers\tcpu_s\n' >"$TSV"
bench_merge_tsv "$OUT/old.tsv" "$TSV" 1 "${KEPT[@]}"

bench_start

pg_build() { # db opclass workers tag run
	local db="$1" opc="$2" w="$3" tag="$4" run="$5" secs cpu mb peak workers
	read -r secs cpu mb peak workers <<<"$(bench_index_build "$db" items_ann \
		"CREATE INDEX items_ann ON items USING engram_hnsw (embedding $opc) WITH ($WITH)" "$w")"
	if [[ "$secs" == nan ]]; then
		printf '%s\t%s\t%s\tnan\tnan\tnan\t0\tnan\n' "$tag" "engram_w$w" "$run" >>"$TSV"
		return 0
	fi
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$tag" "engram_w$w" "$run" "$secs" "$mb" "$peak" "$workers" "$cpu" >>"$TSV"
	bench_log "[$tag] run $run engram_hnsw workers=$w: ${secs} s, $mb MB, peak +$peak MB, parallel workers seen: $workers"
}

hnsw_build() { # threads tag run
	local th="$1" tag="$2" run="$3" line
	line="$(bench_hnswlib_build "$th" "$metric")"
	# build THREADS SECONDS INDEX_MB PEAK_RSS_MB CPU_SECONDS
	awk -F'\t' -v s="$tag" -v r="$run" -v t="$th" '{ printf "%s\thnswlib_t%s\t%s\t%s\t%s\t%s\t0\t%s\n", s, t, r, $3, $4, $5, $6 }' \
		<<<"$line" >>"$TSV"
	bench_log "[$tag] run $run hnswlib threads=$th: $(cut -f3 <<<"$line") s"
}

SETTAGS=()
for spec in $SETS; do
	set_name="${spec%%:*}"
	metric="${spec#*:}"
	tag="${set_name//-/_}_$metric"
	db="b_$tag"
	bench_load_set "$db" "$set_name" "$metric" 10
	bench_ext_check "$db"
	runs="$BENCH_RUNS"
	((DS_N >= 1000000)) && runs="${BENCH_BIG_RUNS:-1}"
	SETTAGS+=("$tag:$DS_N:$DS_DIM:$runs")
	# odd runs in one order, even runs in the reverse order (cancels drift)
	for ((r = 1; r <= runs; r++)); do
		read -r -a steps <<<"${BUILD_METHODS:-pg0 pgp h1 h2}"
		if ((r % 2 == 0)); then
			for ((i = 0, j = ${#steps[@]} - 1; i < j; i++, j--)); do
				x="${steps[i]}"; steps[i]="${steps[j]}"; steps[j]="$x"
			done
		fi
		for st in "${steps[@]}"; do
			case "$st" in
			pg0) [[ "$EXT_OK" == 1 ]] && pg_build "$db" "$(bench_opclass "$metric")" 0 "$tag" "$r" ;;
			pgp) [[ "$EXT_OK" == 1 ]] && pg_build "$db" "$(bench_opclass "$metric")" "$PW" "$tag" "$r" ;;
			h1) hnsw_build 1 "$tag" "$r" ;;
			h2) hnsw_build 2 "$tag" "$r" ;;
			esac
		done
	done
	bench_psql -c "DROP DATABASE $db" || true
done

# ---------------------------------------------------------------- report
col() { # tag method column -> median
	awk -F'\t' -v s="$1" -v m="$2" -v c="$3" '$1 == s && $2 == m { print $c }' "$TSV" | bench_median
}
range() {
	local v
	v="$(awk -F'\t' -v s="$1" -v m="$2" '$1 == s && $2 == m && $4 != "nan" { print $4 }' "$TSV" | sort -g)"
	[[ -n "$v" ]] && echo "$(head -n 1 <<<"$v") - $(tail -n 1 <<<"$v")" || echo "-"
}
label() {
	case "$1" in
	engram_w0) echo "engram_hnsw serial" ;;
	engram_w*) echo "engram_hnsw, max_parallel_maintenance_workers=${1#engram_w}" ;;
	hnswlib_t1) echo "hnswlib, 1 thread" ;;
	hnswlib_t2) echo "hnswlib, 2 threads" ;;
	esac
}

BARS="$OUT/bars.dat"
echo "set engram_serial engram_parallel hnswlib_1t hnswlib_2t" >"$BARS"
{
	bench_md_header "Index build"
	echo "CREATE INDEX ... USING engram_hnsw (embedding <opclass>) WITH ($WITH) on a loaded, vacuumed"
	echo "table (CHECKPOINT before each build), serial and with max_parallel_maintenance_workers=$PW;"
	echo "hnswlib 0.6.2 with 1 and 2 threads on the same vectors. Time: wall clock of the statement"
	echo "(median of the runs, range beside it). Peak MB: highest sum of private memory (RssAnon) of all"
	echo "backends and parallel workers during the build, above the level before it (sampled every 50 ms;"
	echo "for hnswlib the process's peak RSS, data included). Workers: most parallel workers seen at once."
	echo "CPU s: CPU time of the backend running CREATE INDEX (parallel workers not included) or of the"
	echo "hnswlib process (all threads); on a shared machine it is steadier than the wall clock."
	echo "For the parallel build the CPU column is the leader's share only: compare its wall clock with the"
	echo "serial build's, measured in the same runs (builds interleaved)."
	echo
	echo "<!-- summary -->"
	for tag in "${KEPT[@]}"; do
		bench_md_section_kept "$OUT/old.md" "$tag ("
		echo "$tag $(col "$tag" engram_w0 4) $(col "$tag" "engram_w$PW" 4) $(col "$tag" hnswlib_t1 4) $(col "$tag" hnswlib_t2 4)" | sed 's/nan/0/g' >>"$BARS"
	done
	for st in "${SETTAGS[@]}"; do
		IFS=: read -r tag n dim runs <<<"$st"
		h1="$(col "$tag" hnswlib_t1 4)"
		s0="$(col "$tag" engram_w0 4)"
		sp="$(col "$tag" "engram_w$PW" 4)"
		echo "## $tag ($n x $dim, $runs run(s))"
		echo
		echo "| method | build s (median) | range | / hnswlib 1 thread | CPU s | CPU / hnswlib 1 thread | index MB | peak MB | workers |"
		echo "|---|---|---|---|---|---|---|---|---|"
		for m in engram_w0 "engram_w$PW" hnswlib_t1 hnswlib_t2; do
			grep -q "^$tag	$m	" "$TSV" || continue
			t="$(col "$tag" "$m" 4)"
			c="$(col "$tag" "$m" 8)"
			echo "| $(label "$m") | $(bench_fmt "$t" 2) | $(range "$tag" "$m") | $(bench_ratio "$t" "$h1") | $(bench_fmt "$c" 2) | $(bench_ratio "$c" "$(col "$tag" hnswlib_t1 8)") | $(col "$tag" "$m" 5) | $(col "$tag" "$m" 6) | $(col "$tag" "$m" 7) |"
		done
		echo
		if [[ "$s0" != nan && "$sp" != nan ]]; then
			echo "engram_hnsw parallel speed-up over its serial build: $(bench_ratio "$s0" "$sp")x; hnswlib 2 threads over 1: $(bench_ratio "$h1" "$(col "$tag" hnswlib_t2 4)")x."
			if [[ "$(awk -F'\t' -v s="$tag" -v m="engram_w$PW" '$1 == s && $2 == m && $7 > 0' "$TSV")" == "" ]]; then
				echo "No parallel worker was seen during the builds with max_parallel_maintenance_workers=$PW:"
				echo "both builds ran serially, and their difference is run-to-run noise."
			fi
			echo
		fi
		echo "$tag $s0 $sp $h1 $(col "$tag" hnswlib_t2 4)" | sed 's/nan/0/g' >>"$BARS"
	done
	echo "<!-- /summary -->"
	echo "![build times](build.png)"
	echo
	echo "## Cluster"
	echo
	bench_settings_md
	echo
	echo "Raw figures: build.tsv (one line per build)."
} >"$RESULT_MD"
bench_plot_bars "$BENCH_RESULTS/build.png" "CREATE INDEX vs hnswlib build (M=$M, ef_construction=$EFC), median seconds" "seconds" "$BARS"
cat "$RESULT_MD"
bench_log "wrote $RESULT_MD in $(bench_since "$BENCH_T0") s"
