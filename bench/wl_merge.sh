#!/usr/bin/env bash
#
# bench/wl_merge.sh: the pending list (fastupdate) and its merge.  In each run,
# from scratch, on Fashion-MNIST (ids = train image numbers):
#   1. a table with the first $MERGE_BASE rows and an engram_hnsw index built on
#      them, WITH (fastupdate = on, pending_list_limit = 2000000): nothing
#      merges by itself;
#   2. INSERT of the next $MERGE_NEW rows in one statement (timed: rows/s into
#      the pending list);
#   3. SELECT engram_hnsw_merge_pending() (timed: merge rows/s, wall clock and
#      the backend's CPU time);
#   4. the same from scratch, but the merge runs while pgbench queries (-c 1)
#      go on (query latency during the merge; merge rows/s under that load);
#   5. the same rows inserted into a table whose index has fastupdate = off
#      (the direct per-row path; timed in one statement).
# Query latency (pgbench -M prepared -c 1 --log, per-transaction latencies,
# random test images, ORDER BY ... LIMIT 10, engram_hnsw.ef_search =
# $MERGE_EF): base rows only (nothing pending), $MERGE_NEW rows pending, during
# the merge (transactions that ended between its start and end), after the
# merge (nothing pending).  Recall@10 at ef_search $MERGE_EF in each state
# (truth: tools/truth on the prefix of the train images).
# Then, once: recall during a merge (recall passes in a second session while
# the merge runs); recall after all rows arrived by inserts + merges vs a bulk
# build of the same rows: base + new (merged), base + 2 x new (two inserts +
# merges, when the set has the rows), and, with MERGE_FULL=1, all
# $MERGE_FULL_ROWS rows inserted into an empty index by pgbench -c 2 100-row
# INSERTs with the default pending_list_limit (merges triggered by the
# inserts, then a final merge).  engram_hnsw_check() after every step.
# Writes bench/results/merge.md and merge.tsv.
#
# Knobs: MERGE_BASE (40000, QUICK 5000), MERGE_NEW (10000, QUICK 2000),
#        MERGE_NQ (recall queries, 500, QUICK 100), MERGE_SECS (pgbench
#        seconds per latency state, 8, QUICK 2), MERGE_EF (40),
#        MERGE_FULL (1: the all-inserts index; 0: skip), MERGE_FULL_ROWS
#        (60000, QUICK 10000), INDEX_M, INDEX_EFC, BENCH_RUNS.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init merge

NB="${MERGE_BASE:-$(bench_quick 5000 40000)}"
NEW="${MERGE_NEW:-$(bench_quick 2000 10000)}"
NQ="${MERGE_NQ:-$(bench_quick 100 500)}"
SECS="${MERGE_SECS:-$(bench_quick 2 8)}"
FULL_ROWS="${MERGE_FULL_ROWS:-$(bench_quick 10000 60000)}"
EF="${MERGE_EF:-40}"
FULL="${MERGE_FULL:-1}"
WITH_FAST="m = $M, ef_construction = $EFC, fastupdate = on, pending_list_limit = 2000000"
WITH_DIRECT="m = $M, ef_construction = $EFC, fastupdate = off"
WITH_BULK="m = $M, ef_construction = $EFC"
OP='<->'
chmod 777 "$OUT"
printf 'run\tmeasure\tvalue\n' >"$TSV"
tsv() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$TSV"; }

# ---------------------------------------------------------------- data
bench_dataset fmnist
ALL_N="$DS_N"
N1=$((NB + NEW))
N2=$((NB + 2 * NEW))
((N1 <= ALL_N)) || bench_die "MERGE_BASE + MERGE_NEW must be <= $ALL_N"
((FULL_ROWS <= ALL_N)) || bench_die "MERGE_FULL_ROWS must be <= $ALL_N"
set_of() { [[ "$1" == "$ALL_N" ]] && echo fmnist || echo "fmnist-$1"; }
declare -A TRUTHF
for n in $NB $N1 $N2 $FULL_ROWS; do
	((n <= ALL_N)) || continue
	bench_truth "$(set_of "$n")" l2 "$NQ"
	TRUTHF[$n]="$DS_TRUTH"
done
bench_dataset fmnist

DB=merge
bench_start_db "$DB"
bench_wal_warmup
bench_log "loading $ALL_N train images, $DS_NQ test images, truth for ${!TRUTHF[*]} rows"
bench_psql -d "$DB" -c "SET client_min_messages = warning" \
	-c "CREATE TABLE all_rows (id int PRIMARY KEY, embedding real[])" \
	-c "ALTER TABLE all_rows ALTER COLUMN embedding SET STORAGE $BENCH_STORAGE" \
	-c "CREATE TABLE queries (id int PRIMARY KEY, embedding real[])"
bench_copy_fvecs "$DB" all_rows "$DS_BASE"
bench_copy_fvecs "$DB" queries "$DS_QUERY"
for n in "${!TRUTHF[@]}"; do
	bench_psql -d "$DB" -c "CREATE TABLE truth_$n (qid int PRIMARY KEY, ids int[], dists float8[])"
	"$BENCH_BIN/truth" dump "${TRUTHF[$n]}" --nq "$NQ" | bench_psql -d "$DB" -c "COPY truth_$n FROM STDIN" ||
		bench_die "loading truth failed"
done
bench_psql -d "$DB" -c "VACUUM ANALYZE all_rows" -c "VACUUM ANALYZE queries"

# the latency query on TABLE: a random test image
for t in mf mq; do
	cat >"$OUT/query_$t.sql" <<SQL
\\set qid random(0, $((DS_NQ - 1)))
SELECT id FROM $t ORDER BY embedding $OP (SELECT embedding FROM queries WHERE id = :qid) LIMIT $K;
SQL
done
export PGOPTIONS="-c engram_hnsw.ef_search=$EF -c enable_seqscan=off"

# ---------------------------------------------------------------- helpers
PROBLEMS="$OUT/problems.txt"
: >"$PROBLEMS"

# new_table NAME WITH ROWS: NAME holds all_rows with id < ROWS, indexed (built)
new_table() {
	local t="$1" with="$2" rows="$3"
	bench_psql -d "$DB" -c "SET client_min_messages = warning" -c "DROP TABLE IF EXISTS $t" \
		-c "CREATE TABLE $t (id int, embedding real[])" \
		-c "ALTER TABLE $t ALTER COLUMN embedding SET STORAGE $BENCH_STORAGE" \
		-c "INSERT INTO $t SELECT id, embedding FROM all_rows WHERE id < $rows ORDER BY id" \
		-c "VACUUM ANALYZE $t" \
		-c "CREATE INDEX ${t}_ann ON $t USING engram_hnsw (embedding real_l2_ops) WITH ($with)" \
		-c "CHECKPOINT"
}

# check TABLE: engram_hnsw_check of TABLE_ann; prints "pending"; records problems
check() {
	local t="$1" out rows tids pend
	rows="$(bench_val -d "$DB" -c "SELECT count(*) FROM $t")"
	if ! out="$(bench_val -d "$DB" -F ' ' -c "SET client_min_messages = warning" \
		-c "SELECT heap_tids, pending, unreachable FROM engram_hnsw_check('${t}_ann')" 2>&1)"; then
		echo "engram_hnsw_check('${t}_ann') failed: $(grep -m1 ERROR <<<"$out")" >>"$PROBLEMS"
		bench_log "$(tail -n 1 "$PROBLEMS")"
		echo "?"
		return 0
	fi
	read -r tids pend _ <<<"$out"
	if ((tids != rows)); then
		echo "${t}_ann: $tids heap TIDs in the index != $rows rows in $t" >>"$PROBLEMS"
		bench_log "$(tail -n 1 "$PROBLEMS")"
	fi
	echo "$pend"
}

# recall TABLE TRUTH_ROWS [EF]: recall@K of index scans on TABLE against truth_ROWS
# (the ids are train image numbers, so all_rows gives the vectors for ties)
recall() {
	local t="$1" n="$2" ef="${3:-$EF}" res="res_$$_$RANDOM"
	bench_psql -d "$DB" -c "SET client_min_messages = warning" -c "SET engram_hnsw.ef_search = $ef" \
		-c "DROP TABLE IF EXISTS $res" -c "
		CREATE TABLE $res AS
		SELECT q.id AS qid, (SELECT array_agg(s.id) FROM (SELECT i.id FROM $t i
			ORDER BY i.embedding $OP q.embedding LIMIT $K) s) AS ids
		FROM queries q WHERE q.id IN (SELECT qid FROM truth_$n)" || {
		echo "-"
		return 0
	}
	bench_val -d "$DB" -c "$(bench_recall_sql "$OP" "$res" all_rows "truth_$n" queries)"
	bench_psql -d "$DB" -c "DROP TABLE $res"
}

# lat_stats FROM TO FILES...: "n p50_ms p99_ms qps" of pgbench --log lines whose
# end time is within [FROM, TO] (epoch seconds; 0 0 = all)
lat_stats() {
	local from="$1" to="$2"
	shift 2
	cat "$@" 2>/dev/null | awk -v f="$from" -v t="$to" '
		{ e = $5 + $6 / 1e6; if (f > 0 && (e < f || e > t)) next
		  printf "%.3f %.6f\n", $3 / 1000.0, e }' | sort -g | awk '
		{ v[n++] = $1; if (n == 1 || $2 < lo) lo = $2; if ($2 > hi) hi = $2 }
		END {
			if (n == 0) { print "0 nan nan nan"; exit }
			i50 = int(0.50 * n + 0.999999) - 1; i99 = int(0.99 * n + 0.999999) - 1
			printf "%d %.2f %.2f %.1f\n", n, v[i50], v[i99], (hi > lo ? (n - 1) / (hi - lo) : 0) }'
}

# pgbench_lat TABLE PREFIX SECONDS: pgbench -c 1 queries on TABLE, per-transaction log
pgbench_lat() {
	local t="$1" prefix="$2" secs="$3"
	(cd "$OUT" && "$PGBIN/pgbench" -n -M prepared -f "$OUT/query_$t.sql" -c 1 -j 1 -T "$secs" \
		--log --log-prefix="$prefix" -d "$DB" >"$prefix-stdout.txt" 2>&1) ||
		bench_log "pgbench failed: $(tail -n 2 "$prefix-stdout.txt")"
}

# state_measure RUN STATE TABLE ROWS: query latency (pgbench) on TABLE + recall against truth_ROWS
state_measure() {
	local r="$1" state="$2" t="$3" n="$4" st
	pgbench_lat "$t" "$OUT/lat_${state}_$r" "$SECS"
	read -r cnt p50 p99 qps <<<"$(lat_stats 0 0 "$OUT/lat_${state}_$r".*)"
	tsv "$r" "${state}_p50_ms" "$p50"
	tsv "$r" "${state}_p99_ms" "$p99"
	tsv "$r" "${state}_qps" "$qps"
	st="$(recall "$t" "$n")"
	tsv "$r" "${state}_recall" "$st"
	bench_log "run $r: $state: p50 $p50 ms, p99 $p99 ms, $qps q/s ($cnt queries), recall@10 $st"
}

# timed_sql SQL: "wall_s cpu_s value" (the backend's user+system CPU time)
timed_sql() {
	local t0 v c
	t0="$(bench_now)"
	read -r v c <<<"$(bench_loop_cpu "$DB" "$1")"
	echo "$(bench_since "$t0") $c $v"
}

insert_new() { # TABLE FROM TO: one INSERT of all_rows with FROM <= id < TO; "wall cpu rows"
	timed_sql "WITH i AS (INSERT INTO $1 SELECT id, embedding FROM all_rows WHERE id >= $2 AND id < $3 ORDER BY id RETURNING 1) SELECT count(*) FROM i"
}

rate() { awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.1f", n / s; else print "nan" }'; }

# ---------------------------------------------------------------- runs
for ((r = 1; r <= BENCH_RUNS; r++)); do
	# 1-3: fastupdate, merge alone
	bench_log "run $r/$BENCH_RUNS: base $NB rows, fastupdate index"
	new_table mf "$WITH_FAST" "$NB"
	state_measure "$r" base mf "$NB"
	read -r w c n <<<"$(insert_new mf "$NB" "$N1")"
	tsv "$r" fast_insert_rows_s "$(rate "$NEW" "$w")"
	tsv "$r" fast_insert_cpu_rows_s "$(rate "$NEW" "$c")"
	pend="$(check mf)"
	tsv "$r" pending_after_insert "$pend"
	bench_log "run $r: INSERT $n rows into the pending list: $w s (CPU $c s), $pend pending"
	state_measure "$r" pending mf "$N1"
	read -r w c n <<<"$(timed_sql "SELECT engram_hnsw_merge_pending('mf_ann')")"
	tsv "$r" merge_rows "$n"
	tsv "$r" merge_rows_s "$(rate "$n" "$w")"
	tsv "$r" merge_cpu_rows_s "$(rate "$n" "$c")"
	merge_alone_s="$w"
	pend="$(check mf)"
	tsv "$r" pending_after_merge "$pend"
	bench_log "run $r: merge of $n rows: $w s (CPU $c s), $pend pending after"
	state_measure "$r" merged mf "$N1"

	# 4: merge during queries
	bench_log "run $r/$BENCH_RUNS: merge during pgbench queries"
	new_table mq "$WITH_FAST" "$NB"
	insert_new mq "$NB" "$N1" >/dev/null
	dur="$(awk -v m="$merge_alone_s" -v s="$SECS" 'BEGIN { d = int(3 * m + 4); print (d < s ? s : d) }')"
	pgbench_lat mq "$OUT/lat_during_$r" "$dur" &
	pgb=$!
	sleep 1.5
	m0="$(date +%s.%N)"
	read -r w c n <<<"$(timed_sql "SELECT engram_hnsw_merge_pending('mq_ann')")"
	m1="$(date +%s.%N)"
	wait "$pgb" || true
	read -r cnt p50 p99 qps <<<"$(lat_stats "$m0" "$m1" "$OUT/lat_during_$r".*)"
	read -r _ bp50 bp99 bqps <<<"$(lat_stats 0 "$m0" "$OUT/lat_during_$r".*)"
	tsv "$r" during_p50_ms "$p50"
	tsv "$r" during_p99_ms "$p99"
	tsv "$r" during_qps "$qps"
	tsv "$r" during_queries "$cnt"
	tsv "$r" merge_under_queries_rows_s "$(rate "$n" "$w")"
	tsv "$r" merge_under_queries_cpu_rows_s "$(rate "$n" "$c")"
	covered="$(awk -v a="$m1" -v d="$dur" -v s="$m0" 'BEGIN { print (a - s + 1.5 <= d) ? "yes" : "no" }')"
	tsv "$r" during_merge_covered "$covered"
	bench_log "run $r: merge of $n rows during queries: $w s (CPU $c s); queries during it: $cnt, p50 $p50 ms, p99 $p99 ms, $qps q/s (covered: $covered)"
	pend="$(check mq)"
	[[ "$pend" == 0 ]] || echo "mq_ann: $pend rows still pending after engram_hnsw_merge_pending" >>"$PROBLEMS"

	# 5: direct path
	bench_log "run $r/$BENCH_RUNS: the same rows through fastupdate = off"
	new_table md "$WITH_DIRECT" "$NB"
	read -r w c n <<<"$(insert_new md "$NB" "$N1")"
	tsv "$r" direct_insert_rows_s "$(rate "$NEW" "$w")"
	tsv "$r" direct_insert_cpu_rows_s "$(rate "$NEW" "$c")"
	bench_log "run $r: INSERT $n rows with fastupdate = off: $w s (CPU $c s)"
	check md >/dev/null
	tsv "$r" direct_recall "$(recall md "$N1")"
	bench_psql -d "$DB" -c "DROP TABLE mq, md"
done

# ---------------------------------------------------------------- once: recall during a merge, merged vs bulk
bench_log "recall during a merge"
new_table mr "$WITH_FAST" "$NB"
insert_new mr "$NB" "$N1" >/dev/null
m0="$(bench_now)"
(bench_val -d "$DB" -c "SELECT engram_hnsw_merge_pending('mr_ann')" >"$OUT/mr_merge.out" 2>&1; echo done >"$OUT/mr_merge.done") &
mpid=$!
sleep 0.5
DURING_RECALLS=()
while [[ ! -f "$OUT/mr_merge.done" ]]; do
	v="$(recall mr "$N1")"
	[[ -f "$OUT/mr_merge.done" ]] && break # a pass that ended after the merge does not count
	DURING_RECALLS+=("$v")
	bench_log "recall during the merge: $v"
done
wait "$mpid" || true
DURING_MERGE_S="$(bench_since "$m0")"
tsv 0 recall_during_merge "$(IFS=,; echo "${DURING_RECALLS[*]:-}")"
check mr >/dev/null

declare -A REC
for ef in $EF 100; do
	REC[merged1.$ef]="$(recall mr "$N1" "$ef")"
done
ROWS2=""
if ((N2 <= ALL_N)); then
	bench_log "second batch: $NEW more rows inserted and merged"
	insert_new mr "$N1" "$N2" >/dev/null
	for ef in $EF 100; do REC[pending2.$ef]="$(recall mr "$N2" "$ef")"; done
	bench_val -d "$DB" -c "SELECT engram_hnsw_merge_pending('mr_ann')" >/dev/null
	PEND2="$(check mr)"
	for ef in $EF 100; do REC[merged2.$ef]="$(recall mr "$N2" "$ef")"; done
	ROWS2=$N2
fi
bench_psql -d "$DB" -c "DROP TABLE mr"
for n in $N1 $ROWS2; do
	bench_log "bulk build of $n rows"
	new_table mb "$WITH_BULK" "$n"
	check mb >/dev/null
	for ef in $EF 100; do REC[bulk$n.$ef]="$(recall mb "$n" "$ef")"; done
done
if [[ "$FULL" == 1 ]]; then
	bench_log "all $FULL_ROWS rows by 100-row INSERTs (pgbench -c 2) into an empty index, default pending_list_limit"
	bench_psql -d "$DB" -c "SET client_min_messages = warning" -c "DROP TABLE IF EXISTS mi" \
		-c "DROP SEQUENCE IF EXISTS mi_seq" \
		-c "CREATE TABLE mi (id int, embedding real[])" \
		-c "ALTER TABLE mi ALTER COLUMN embedding SET STORAGE $BENCH_STORAGE" \
		-c "CREATE INDEX mi_ann ON mi USING engram_hnsw (embedding real_l2_ops) WITH ($WITH_BULK)" \
		-c "CREATE SEQUENCE mi_seq START 0 MINVALUE 0" -c "CHECKPOINT"
	cat >"$OUT/full_ins.sql" <<SQL
SELECT nextval('mi_seq') AS k \\gset
INSERT INTO mi SELECT id, embedding FROM all_rows WHERE id >= :k * 100 AND id < :k * 100 + 100;
SQL
	t0="$(bench_now)"
	FULL_TPS="$(bench_pgbench_tps_t "$OUT/full_ins.sql" 2 $((FULL_ROWS / 200)) -d "$DB")"
	FULL_S="$(bench_since "$t0")"
	FULL_PEND_BEFORE="$(check mi)"
	FULL_MERGED="$(bench_val -d "$DB" -c "SELECT engram_hnsw_merge_pending('mi_ann')")"
	FULL_PEND="$(check mi)"
	FULL_COUNT="$(bench_val -d "$DB" -c "SELECT count(*) || ' rows, ' || count(DISTINCT id) || ' distinct ids' FROM mi")"
	bench_log "all-inserts index: $FULL_COUNT in $FULL_S s, $FULL_PEND_BEFORE pending at the end, $FULL_MERGED merged by the final merge"
	for ef in $EF 100; do REC[full.$ef]="$(recall mi "$FULL_ROWS" "$ef")"; done
	if [[ "$FULL_ROWS" != "$N1" && "$FULL_ROWS" != "$ROWS2" ]]; then
		new_table mb "$WITH_BULK" "$FULL_ROWS"
		for ef in $EF 100; do REC[bulk$FULL_ROWS.$ef]="$(recall mb "$FULL_ROWS" "$ef")"; done
	fi
fi
for k in "${!REC[@]}"; do tsv 0 "recall_$k" "${REC[$k]}"; done

# ---------------------------------------------------------------- report
med() { awk -F'\t' -v m="$1" '$1 > 0 && $2 == m && $3 != "nan" && $3 != "-" && $3 != "" { print $3 }' "$TSV" | bench_median; }
rng() { awk -F'\t' -v m="$1" '$1 > 0 && $2 == m && $3 != "nan" && $3 != "-" && $3 != "" { print $3 }' "$TSV" | sort -g | awk 'NR == 1 { a = $1 } { b = $1 } END { if (NR) print a " - " b; else print "-" }'; }
diff2() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a == "-" || b == "-") print "-"; else printf "%+.4f", a - b }'; }
{
	bench_md_header "Pending list: merge throughput, query latency, recall"
	if [[ -s "$PROBLEMS" ]]; then
		echo "**Index problems found:**"
		echo
		sed 's/^/- /' "$PROBLEMS"
		echo
	fi
	echo "Data: Fashion-MNIST, 784 dims, ids = train image numbers. Each run starts from a table with the"
	echo "first $NB train images and an engram_hnsw index built on them, WITH ($WITH_FAST): nothing"
	echo "merges by itself. The next $NEW images are inserted in one INSERT ... SELECT statement, then merged"
	echo "by \`SELECT engram_hnsw_merge_pending()\`. The direct path: the same $NEW rows inserted in one"
	echo "statement into the same base table indexed WITH ($WITH_DIRECT). Rates are medians of $BENCH_RUNS"
	echo "runs (range beside them); CPU = the backend's user+system time (steadier than the wall clock on"
	echo "a shared machine)."
	echo
	echo "<!-- summary -->"
	echo "| $NEW rows into a $NB-row index | rows/s (wall) | range | rows/s (backend CPU) | / direct (wall) | / direct (CPU) |"
	echo "|---|---|---|---|---|---|"
	dw="$(med direct_insert_rows_s)"
	dc="$(med direct_insert_cpu_rows_s)"
	for x in "fast_insert:INSERT, fastupdate = on (append to the pending list)" \
		"merge:engram_hnsw_merge_pending (alone)" \
		"merge_under_queries:engram_hnsw_merge_pending while pgbench -c 1 queries" \
		"direct_insert:INSERT, fastupdate = off (direct graph insertion)"; do
		k="${x%%:*}"
		echo "| ${x#*:} | $(bench_fmt "$(med "${k}_rows_s")") | $(rng "${k}_rows_s") | $(bench_fmt "$(med "${k}_cpu_rows_s")") | $(bench_ratio "$(med "${k}_rows_s")" "$dw") | $(bench_ratio "$(med "${k}_cpu_rows_s")" "$dc") |"
	done
	fw="$(awk -v a="$(med fast_insert_rows_s)" -v b="$(med merge_rows_s)" 'BEGIN { if (a > 0 && b > 0) printf "%.1f", 1 / (1 / a + 1 / b); else print "nan" }')"
	fc="$(awk -v a="$(med fast_insert_cpu_rows_s)" -v b="$(med merge_cpu_rows_s)" 'BEGIN { if (a > 0 && b > 0) printf "%.1f", 1 / (1 / a + 1 / b); else print "nan" }')"
	echo "| INSERT + merge, fastupdate = on (both together) | $(bench_fmt "$fw") | | $(bench_fmt "$fc") | $(bench_ratio "$fw" "$dw") | $(bench_ratio "$fc" "$dc") |"
	echo
	echo "Query latency, pgbench -M prepared -c 1 (random test image, ORDER BY embedding <-> q LIMIT $K,"
	echo "ef_search $EF, -T $SECS per state; during the merge: the transactions that ended while it ran)."
	echo "Recall@10 at ef_search $EF over $NQ test images (pending rows are scanned exactly)."
	echo
	echo "| state | rows | pending | p50 ms | p99 ms | queries/s | recall@10 |"
	echo "|---|---|---|---|---|---|---|"
	echo "| base rows only, nothing pending | $NB | 0 | $(med base_p50_ms) | $(med base_p99_ms) | $(bench_fmt "$(med base_qps)") | $(med base_recall) |"
	echo "| $NEW rows pending (before the merge) | $N1 | $(med pending_after_insert) | $(med pending_p50_ms) | $(med pending_p99_ms) | $(bench_fmt "$(med pending_qps)") | $(med pending_recall) |"
	drec="$(awk -F'\t' '$2 == "recall_during_merge" { print $3 }' "$TSV")"
	echo "| during the merge | $N1 | $NEW -> 0 | $(med during_p50_ms) | $(med during_p99_ms) | $(bench_fmt "$(med during_qps)") | ${drec:--} (one per recall pass) |"
	echo "| after the merge, nothing pending | $N1 | $(med pending_after_merge) | $(med merged_p50_ms) | $(med merged_p99_ms) | $(bench_fmt "$(med merged_qps)") | $(med merged_recall) |"
	echo "| (direct path: $NEW rows inserted with fastupdate = off) | $N1 | 0 | | | | $(med direct_recall) |"
	echo
	echo "Recall after rows arrived by inserts and merges vs a bulk build (CREATE INDEX) of the same rows"
	echo "(target: within 0.01):"
	echo
	echo "| index | rows | recall@10 ef=$EF | ef=100 | bulk build ef=$EF | ef=100 | difference ef=$EF | ef=100 |"
	echo "|---|---|---|---|---|---|---|---|"
	echo "| $NB bulk + $NEW inserted, merged | $N1 | ${REC[merged1.$EF]} | ${REC[merged1.100]} | ${REC[bulk$N1.$EF]} | ${REC[bulk$N1.100]} | $(diff2 "${REC[merged1.$EF]}" "${REC[bulk$N1.$EF]}") | $(diff2 "${REC[merged1.100]}" "${REC[bulk$N1.100]}") |"
	if [[ -n "$ROWS2" ]]; then
		echo "| + $NEW more inserted (pending, before the 2nd merge) | $N2 | ${REC[pending2.$EF]} | ${REC[pending2.100]} | ${REC[bulk$N2.$EF]} | ${REC[bulk$N2.100]} | $(diff2 "${REC[pending2.$EF]}" "${REC[bulk$N2.$EF]}") | $(diff2 "${REC[pending2.100]}" "${REC[bulk$N2.100]}") |"
		echo "| $NB bulk + 2 x ($NEW inserted, merged) | $N2 | ${REC[merged2.$EF]} | ${REC[merged2.100]} | ${REC[bulk$N2.$EF]} | ${REC[bulk$N2.100]} | $(diff2 "${REC[merged2.$EF]}" "${REC[bulk$N2.$EF]}") | $(diff2 "${REC[merged2.100]}" "${REC[bulk$N2.100]}") |"
	fi
	if [[ "$FULL" == 1 ]]; then
		echo "| all rows by 100-row INSERTs (pgbench -c 2) into an empty index, merged by the inserts | $FULL_ROWS | ${REC[full.$EF]} | ${REC[full.100]} | ${REC[bulk$FULL_ROWS.$EF]} | ${REC[bulk$FULL_ROWS.100]} | $(diff2 "${REC[full.$EF]}" "${REC[bulk$FULL_ROWS.$EF]}") | $(diff2 "${REC[full.100]}" "${REC[bulk$FULL_ROWS.100]}") |"
	fi
	echo "<!-- /summary -->"
	echo
	echo "During-merge runs: the merge took $(bench_fmt "$(med merge_under_queries_rows_s)") rows/s (median) while pgbench ran;"
	echo "queries that ended during it per run: $(awk -F'\t' '$2 == "during_queries" { printf "%s%s", s, $3; s = ", " }' "$TSV");"
	echo "pgbench covered the whole merge: $(awk -F'\t' '$2 == "during_merge_covered" { printf "%s%s", s, $3; s = ", " }' "$TSV")."
	echo "Recall during a merge: ${#DURING_RECALLS[@]} recall passes ($NQ queries each) in a second session while"
	echo "one merge of $NEW rows ran (it took $(bench_fmt "$DURING_MERGE_S" 1) s with them)."
	if [[ "$FULL" == 1 ]]; then
		echo "All-inserts index: $FULL_COUNT inserted by pgbench -c 2 -t $((FULL_ROWS / 200)) (100 rows per"
		echo "transaction) in $(bench_fmt "$FULL_S" 1) s ($(bench_fmt "$(awk -v t="$FULL_TPS" 'BEGIN { print t * 100 }')") rows/s), index WITH ($WITH_BULK)"
		echo "(fastupdate on, pending_list_limit from engram_hnsw.pending_list_limit = $(bench_val -d "$DB" -c "LOAD 'engram_hnsw'" -c "SHOW engram_hnsw.pending_list_limit"));"
		echo "$FULL_PEND_BEFORE rows were still pending at the end, $FULL_MERGED merged by a final engram_hnsw_merge_pending."
	fi
	echo
	echo "## Cluster"
	echo
	bench_settings_md
	echo
	echo "Raw figures: merge.tsv (run, measure, value; run 0 = once)."
} >"$RESULT_MD"
cat "$RESULT_MD"
bench_log "wrote $RESULT_MD in $(bench_since "$BENCH_T0") s"
