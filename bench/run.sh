#!/usr/bin/env bash
#
# bench/run.sh: the whole benchmark suite, one workload after the other:
#
#     sudo bash bench/run.sh              # full suite (long: hours with BENCH_BIG=1)
#     sudo QUICK=1 bash bench/run.sh      # smoke test, a few minutes; results in bench/results/quick/
#
# Each workload is also a script of its own (bench/wl_*.sh, same knobs).
# BENCH_WORKLOADS picks and orders them (default: "hnswlib build search
# writes merge spaces churn scaleout"; scaleout, about 6 minutes, starts four
# clusters at once: a coordinator and three postgres_fdw shards).  BENCH_SUMMARY_ONLY=1 runs nothing and rebuilds
# summary.md from the reports already there (after running workloads alone).  A workload that fails does not stop the others;
# run.sh exits non-zero at the end if any failed.  Writes
# bench/results/summary.md (the key table of every workload, linked to its
# full report) and the logs to bench/work/logs/.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WORKLOADS="${BENCH_WORKLOADS:-hnswlib build search writes merge spaces churn scaleout}"
LOGS="$BENCH_WORK/logs"
mkdir -p "$LOGS" "$BENCH_RESULTS"
# once, before the workloads (each one checks again, cheaply)
bench_install_deps
bench_build_tools

T0="$(bench_now)"
BENCH_LOAD_START="$(cut -d' ' -f1 /proc/loadavg)"
declare -A STATUS SECS
failed=0
RUN_LIST="$WORKLOADS"
if [[ "${BENCH_SUMMARY_ONLY:-0}" == 1 ]]; then
	# only rebuild summary.md from the reports already in bench/results
	RUN_LIST=""
	for w in $WORKLOADS; do
		[[ "$w" == hnswlib ]] && f=hnswlib_fmnist || f="$w"
		[[ -f "$BENCH_RESULTS/$f.md" ]] && STATUS[$w]="ok (earlier run)" || STATUS[$w]="not run"
	done
fi
for w in $RUN_LIST; do
	script="$BENCH_DIR/wl_$w.sh"
	if [[ ! -f "$script" ]]; then
		bench_log "no workload $w ($script)"
		STATUS[$w]="missing"
		failed=1
		continue
	fi
	bench_log "=== workload $w (log: $LOGS/$w.log)"
	t0="$(bench_now)"
	bash "$script" >"$LOGS/$w.log" 2>&1
	rc=$?
	SECS[$w]="$(bench_since "$t0")"
	if ((rc == 0)); then
		STATUS[$w]="ok"
	else
		STATUS[$w]="FAILED (exit $rc)"
		failed=1
		bench_log "workload $w failed (exit $rc); last lines of its log:"
		tail -n 15 "$LOGS/$w.log" >&2
	fi
	bench_log "=== workload $w: ${STATUS[$w]} in ${SECS[$w]} s"
done

file_of() {
	case "$1" in
	hnswlib) echo hnswlib_fmnist ;;
	*) echo "$1" ;;
	esac
}

SUM="$BENCH_RESULTS/summary.md"
{
	echo "# engram_hnsw benchmark summary"
	echo
	echo "$(bench_machine_line)."
	[[ "${BENCH_SUMMARY_ONLY:-0}" == 1 ]] || echo "Total time $(awk -v s="$(bench_since "$T0")" 'BEGIN { printf "%.0f", s }') s."
	echo "Each section is the key table of one workload (each report names its own date, load and commit); its file has the"
	echo "method, the plots, the cluster settings and the raw figures (.tsv)."
	echo
	echo "| workload | status | seconds | report |"
	echo "|---|---|---|---|"
	for w in $WORKLOADS; do
		f="$(file_of "$w")"
		echo "| $w | ${STATUS[$w]:-?} | ${SECS[$w]:--} | [$f.md]($f.md) |"
	done
	echo
	for w in $WORKLOADS; do
		f="$BENCH_RESULTS/$(file_of "$w").md"
		[[ -f "$f" && "${STATUS[$w]:-}" == ok* ]] || continue
		# the writes workload may also have a run with huge pages (BENCH_HUGE_PAGES=1)
		for f in "$f" $([[ "$w" == writes && -f "$BENCH_RESULTS/writes_hugepages.md" ]] &&
			echo "$BENCH_RESULTS/writes_hugepages.md"); do
			echo "## $(basename "$f" .md) ([$(basename "$f")]($(basename "$f")))"
			echo
			# engram_hnsw availability note, if any
			grep -m1 '^\*\*engram_hnsw was not measured' "$f" && echo
			awk '/<!-- summary -->/ { on = 1; next } /<!-- \/summary -->/ { on = 0 } on' "$f" |
				sed -e 's/^## /### /'
			echo
		done
	done
} >"$SUM"
bench_log "summary: $SUM"
cat "$SUM"
exit "$failed"
