#!/usr/bin/env bash
#
# bench/wl_hnswlib.sh: the in-memory reference alone: hnswlib 0.6.2 on
# Fashion-MNIST (60 000 x 784, L2), M=16, ef_construction=64, built with 1
# and with 2 threads, recall@10 and single-thread QPS for ef 10..400.
# No PostgreSQL.  Writes bench/results/hnswlib_fmnist.md and .png.
#
# QUICK=1: the first 10 000 train images only.
# Knobs: BENCH_RUNS (3), HNSW_NQ (queries; 10000, QUICK 1000),
#        HNSW_EF ("10 20 40 80 120 200 400"), HNSW_M (16), HNSW_EFC (64)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init hnswlib_fmnist

DS=fmnist
[[ "$QUICK" == 1 ]] && DS=fmnist-10k
NQ="${HNSW_NQ:-$([[ "$QUICK" == 1 ]] && echo 1000 || echo 10000)}"
EFS="${HNSW_EF:-10 20 40 80 120 200 400}"
M="${HNSW_M:-16}"
EFC="${HNSW_EFC:-64}"

bench_truth "$DS" l2 "$NQ"
for th in 1 2; do
	bench_log "hnswlib: $DS, M=$M efc=$EFC, $th thread(s): $BENCH_RUNS builds, $BENCH_RUNS search runs x $NQ queries"
	"$BENCH_BIN/hnswlib_bench" --base "$DS_BASE" --queries "$DS_QUERY" --truth "$DS_TRUTH" \
		--metric l2 --M "$M" --efc "$EFC" --threads "$th" --ef "${EFS// /,}" --nq "$NQ" \
		--runs "$BENCH_RUNS" --build-runs "$BENCH_RUNS" >"$OUT/t$th.tsv"
	awk -F'\t' '$1 == "search" { print $3, $4, $2 }' "$OUT/t$th.tsv" >"$OUT/curve_t$th.dat"
done

build_row() {
	local f="$OUT/t$1.tsv" med lo hi mb rss cpu
	med="$(awk -F'\t' '$1 == "build" { print $3 }' "$f" | bench_median)"
	lo="$(awk -F'\t' '$1 == "build" { print $3 }' "$f" | sort -g | head -n 1)"
	hi="$(awk -F'\t' '$1 == "build" { print $3 }' "$f" | sort -g | tail -n 1)"
	mb="$(awk -F'\t' '$1 == "build" { print $4 }' "$f" | tail -n 1)"
	rss="$(awk -F'\t' '$1 == "build" { print $5 }' "$f" | tail -n 1)"
	cpu="$(awk -F'\t' '$1 == "build" { print $6 }' "$f" | bench_median)"
	echo "| $1 | $(bench_fmt "$med" 2) | $(bench_fmt "$lo" 2) - $(bench_fmt "$hi" 2) | $(bench_fmt "$cpu" 2) | $(bench_fmt "$mb" 0) | $(bench_fmt "$rss" 0) |"
}

B1="$(awk -F'\t' '$1 == "build" { print $3 }' "$OUT/t1.tsv" | bench_median)"
B2="$(awk -F'\t' '$1 == "build" { print $3 }' "$OUT/t2.tsv" | bench_median)"
bench_plot_recall_qps "$BENCH_RESULTS/hnswlib_fmnist.png" \
	"hnswlib 0.6.2, Fashion-MNIST $DS_N x 784, L2, M=$M efc=$EFC ($NQ queries, 1 search thread)" "" -- \
	"index built with 1 thread" "$OUT/curve_t1.dat" "index built with 2 threads" "$OUT/curve_t2.dat"

{
	echo "# hnswlib on Fashion-MNIST (in-memory reference)"
	echo
	echo "$(bench_machine_line)."
	echo
	echo "hnswlib 0.6.2 (Debian libhnswlib-dev) built with -O3 -march=native; data: the $DS_N train"
	echo "images (784 floats from pixel bytes), queries: the first $NQ test images, L2, M=$M,"
	echo "ef_construction=$EFC. Recall@10 against exact brute force (ties count as hits)."
	echo "Search is single-threaded (queries one after another); QPS is the median of $BENCH_RUNS passes"
	echo "over the wall clock; CPU-QPS divides by the thread's CPU time instead, and build CPU s is the"
	echo "process's CPU time: on this shared machine other jobs take CPU away, so wall-clock figures"
	echo "can be far below the CPU ones (the two agree on a quiet machine)."
	echo
	echo "<!-- summary -->"
	echo "## Build"
	echo
	echo "| threads | build s (median) | min - max | CPU s (median) | index MB | peak RSS MB (process) |"
	echo "|---|---|---|---|---|---|"
	build_row 1
	build_row 2
	echo
	echo "Speed-up of the 2-thread build (wall clock): $(bench_ratio "$B1" "$B2")x."
	echo
	echo "## Search (1 thread)"
	echo
	echo "| ef | recall@10 (1-thread build) | QPS | CPU-QPS | recall@10 (2-thread build) | QPS | CPU-QPS |"
	echo "|---|---|---|---|---|---|---|"
	join -j 1 <(awk -F'\t' '$1 == "search" { print $2, $3, $4, $8 }' "$OUT/t1.tsv" | sort -k1,1) \
		<(awk -F'\t' '$1 == "search" { print $2, $3, $4, $8 }' "$OUT/t2.tsv" | sort -k1,1) |
		sort -n | awk '{ printf "| %s | %.4f | %.0f | %.0f | %.4f | %.0f | %.0f |\n", $1, $2, $3, $4, $5, $6, $7 }'
	echo "<!-- /summary -->"
	echo
	echo "![recall vs QPS](hnswlib_fmnist.png)"
	echo
	echo "Raw output: bench/work/hnswlib_fmnist/t1.tsv, t2.tsv (format in bench/tools/hnswlib_bench.cpp)."
} >"$RESULT_MD"
cat "$RESULT_MD"
bench_log "wrote $RESULT_MD in $(bench_since "$BENCH_T0") s"
