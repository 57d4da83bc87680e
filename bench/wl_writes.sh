#!/usr/bin/env bash
#
# bench/wl_writes.sh: write workload.  Rows/s of
#   - pgbench -c 1, 2, 8 single-row INSERT and 100-row INSERT (INSERT ...
#     SELECT from a pool table of new vectors, stored like the base rows:
#     uncompressed with the default BENCH_STORAGE, as a client sends
#     them), -T $WRITES_SECS each,
#   - COPY of $COPY_ROWS rows from a server-side file into an empty table,
# each against the same table with no vector index (the upper limit) and
# with an engram_hnsw index; and COPY into the bare table followed by
# CREATE INDEX (bulk load).  Every pgbench measurement starts from the same
# state: the table is recreated from the base rows (and its index rebuilt).
# Then recall@10 after the inserts (against an exact scan of the final
# table) for the pgbench-grown table and the COPY-filled one.
# Writes bench/results/writes.md, writes.tsv and writes.png.
#
# Data: WRITES_SET fmnist (default): base = the first $WRITES_BASE train
# images, pool = the next $WRITES_POOL train images, COPY = the first
# $COPY_ROWS train images (Fashion-MNIST has 60 000), queries = test images;
# or gaussD (e.g. gauss128): base, pool, COPY rows and queries from four
# streams of one gaussian mixture.
#
# Knobs: WRITES_SET (fmnist), WRITES_BASE (40000, QUICK 5000), WRITES_POOL
#        (20000, QUICK 5000), COPY_ROWS (60000 fmnist / 100000 gauss, QUICK
#        10000), WRITES_CLIENTS ("1 2 8"), WRITES_SECS (5, QUICK 1),
#        WRITES_NQ (recall queries, 100, QUICK 50), INDEX_M, INDEX_EFC,
#        WRITES_INDEX_VARIANTS ("engram_hnsw=": NAME=WITH-options;NAME=...,
#        e.g. "fast=fastupdate = on;direct=fastupdate = off"), BENCH_RUNS,
#        WRITES_WAITS (1: after the measured runs, one extra pgbench -c
#        $WRITES_WAIT_CLIENTS (8) run per table and INSERT size in
#        $WRITES_WAIT_SIZES ("1 100" rows per INSERT)
#        while a procedure samples the pgbench backends' wait events in
#        pg_stat_activity every $WRITES_WAIT_MS (50) ms; 0: skip),
#        WRITES_COPY (1; 0: only the pgbench INSERT runs, no COPY, bulk
#        load or recall after the inserts).
#
# After every indexed run, engram_hnsw_check() verifies the index and gives
# the rows still pending (fastupdate) at the end of the run; a check error,
# or heap TIDs in the index != table rows, is reported at the top.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init writes

SET_NAME="${WRITES_SET:-fmnist}"
NB="${WRITES_BASE:-$(bench_quick 5000 40000)}"
POOL="${WRITES_POOL:-$(bench_quick 5000 20000)}"
COPY_ROWS="${COPY_ROWS:-$(bench_quick 10000 "$([[ "$SET_NAME" == fmnist ]] && echo 60000 || echo 100000)")}"
SECS="${WRITES_SECS:-$(bench_quick 1 5)}"
NQ="${WRITES_NQ:-$(bench_quick 50 100)}"
CLIENTS="${WRITES_CLIENTS:-1 2 8}"
VARIANTS="${WRITES_INDEX_VARIANTS:-engram_hnsw=}"
METRIC=l2
OP='<->'
printf 'table\tworkload\tclients\trun\trows_per_s\trows\tpending\n' >"$TSV"
WAITS_ON="${WRITES_WAITS:-1}"
COPY_ON="${WRITES_COPY:-1}"
WAIT_CLIENTS="${WRITES_WAIT_CLIENTS:-8}"
WAIT_MS="${WRITES_WAIT_MS:-50}"
WAIT_SIZES="${WRITES_WAIT_SIZES:-1 100}"
CHECK_PROBLEMS="$OUT/check_problems.txt"
: >"$CHECK_PROBLEMS"

# ---------------------------------------------------------------- data files
W="$BENCH_DATA/writes-$SET_NAME-$NB-$POOL-$COPY_ROWS"
case "$SET_NAME" in
fmnist)
	((NB + POOL <= 60000)) || bench_die "WRITES_BASE + WRITES_POOL must be <= 60000 for fmnist"
	((COPY_ROWS <= 60000)) || bench_die "COPY_ROWS must be <= 60000 for fmnist"
	train="$(bench_fmnist_file train)"
	test_f="$(bench_fmnist_file test)"
	[[ -s "$W.base.fvecs" ]] || "$BENCH_BIN/mnist" --in "$train" --out "$W.base.fvecs" --limit "$NB" 2>/dev/null
	[[ -s "$W.pool.fvecs" ]] || "$BENCH_BIN/mnist" --in "$train" --out "$W.pool.fvecs" --offset "$NB" --limit "$POOL" 2>/dev/null
	[[ -s "$W.copy.fvecs" ]] || "$BENCH_BIN/mnist" --in "$train" --out "$W.copy.fvecs" --limit "$COPY_ROWS" 2>/dev/null
	[[ -s "$W.query.fvecs" ]] || "$BENCH_BIN/mnist" --in "$test_f" --out "$W.query.fvecs" --limit "$NQ" 2>/dev/null
	;;
gauss*)
	dim="${SET_NAME#gauss}"
	[[ "$dim" =~ ^[0-9]+$ ]] || bench_die "WRITES_SET: fmnist or gaussD (e.g. gauss128)"
	[[ -s "$W.base.fvecs" ]] || "$BENCH_BIN/gen" gauss --dim "$dim" --n "$NB" --nq "$NQ" --seed 42 \
		--base "$W.base.fvecs" --queries "$W.query.fvecs"
	[[ -s "$W.pool.fvecs" ]] || "$BENCH_BIN/gen" gauss --dim "$dim" --n "$POOL" --nq 0 --seed 42 --stream 3 \
		--base "$W.pool.fvecs" --queries -
	[[ -s "$W.copy.fvecs" ]] || "$BENCH_BIN/gen" gauss --dim "$dim" --n "$COPY_ROWS" --nq 0 --seed 42 --stream 4 \
		--base "$W.copy.fvecs" --queries -
	;;
*) bench_die "WRITES_SET: fmnist or gaussD" ;;
esac
read -r _ DIM < <("$BENCH_BIN/gen" info "$W.base.fvecs")

bench_start
DB=writes
bench_psql -c "CREATE DATABASE $DB"
bench_ext_check "$DB"
bench_wal_warmup
COPY_FILE="$BENCH_TMPDIR/copy.txt"
"$BENCH_BIN/gen" copy --in "$W.copy.fvecs" >"$COPY_FILE"
chmod 644 "$COPY_FILE"

bench_log "loading base ($NB), pool ($POOL), queries ($NQ), $DIM dims"
bench_psql -d "$DB" -c "SET client_min_messages = warning" \
	-c "CREATE TABLE base_rows (id int, embedding real[])" \
	-c "ALTER TABLE base_rows ALTER COLUMN embedding SET STORAGE $BENCH_STORAGE" \
	-c "CREATE TABLE pool (id int PRIMARY KEY, embedding real[])" \
	-c "ALTER TABLE pool ALTER COLUMN embedding SET STORAGE $BENCH_STORAGE" \
	-c "CREATE TABLE queries (id int PRIMARY KEY, embedding real[])"
bench_copy_fvecs "$DB" base_rows "$W.base.fvecs"
bench_copy_fvecs "$DB" pool "$W.pool.fvecs" --id-base "$NB"
bench_copy_fvecs "$DB" queries "$W.query.fvecs"
bench_psql -d "$DB" -c "VACUUM ANALYZE base_rows" -c "VACUUM ANALYZE pool" -c "VACUUM ANALYZE queries"

# tables: "noindex" and one per index variant
TABLES=(noindex)
VARIANT_NOTES=()
declare -A WITHOPTS
if [[ "$EXT_OK" == 1 ]]; then
	IFS=';' read -r -a vlist <<<"$VARIANTS"
	for v in "${vlist[@]}"; do
		name="${v%%=*}"
		opts="${v#*=}"
		[[ "$name" =~ ^[a-z][a-z0-9_]*$ ]] || bench_die "WRITES_INDEX_VARIANTS: bad variant name \"$name\" (lower case, digits, _)"
		w="m = $M, ef_construction = $EFC${opts:+, $opts}"
		# does CREATE INDEX accept these options?
		if ! err="$(bench_psql -d "$DB" -c "CREATE TEMP TABLE v_probe (id int, embedding real[])" \
			-c "CREATE INDEX ON v_probe USING engram_hnsw (embedding real_l2_ops) WITH ($w)" 2>&1)"; then
			VARIANT_NOTES+=("variant \`$name\` skipped: CREATE INDEX ... WITH ($w) failed: $(grep -m1 ERROR <<<"$err")")
			bench_log "${VARIANT_NOTES[-1]}"
			continue
		fi
		TABLES+=("$name")
		WITHOPTS[$name]="$w"
	done
fi

# recreate TABLE from the base rows (+ its index), then checkpoint
reset_table() {
	local t="$1"
	bench_psql -d "$DB" -c "SET client_min_messages = warning" -c "DROP TABLE IF EXISTS w_$t" \
		-c "DROP SEQUENCE IF EXISTS w_${t}_seq" \
		-c "CREATE TABLE w_$t (id int, embedding real[])" \
		-c "ALTER TABLE w_$t ALTER COLUMN embedding SET STORAGE $BENCH_STORAGE" \
		-c "INSERT INTO w_$t SELECT * FROM base_rows" \
		-c "CREATE SEQUENCE w_${t}_seq" \
		-c "VACUUM ANALYZE w_$t"
	if [[ "$t" != noindex ]]; then
		bench_psql -d "$DB" -c "CREATE INDEX w_${t}_ann ON w_$t USING engram_hnsw (embedding real_l2_ops) WITH (${WITHOPTS[$t]})"
	fi
	bench_psql -d "$DB" -c "CHECKPOINT"
}

# index_state TABLE INDEX: "rows pending" after a run (engram_hnsw_check verifies the
# index; its heap_tids, graph and pending elements, must equal the table's rows); "rows -" without an index
index_state() {
	local t="$1" idx="$2" rows out
	rows="$(bench_val -d "$DB" -c "SELECT count(*) FROM $t")"
	if [[ "$idx" == - ]]; then
		echo "$rows -"
		return 0
	fi
	if ! out="$(bench_val -d "$DB" -F ' ' -c "SET client_min_messages = warning" \
		-c "SELECT heap_tids, pending FROM engram_hnsw_check('$idx')" 2>&1)"; then
		echo "engram_hnsw_check('$idx') failed: $(grep -m1 ERROR <<<"$out")" >>"$CHECK_PROBLEMS"
		bench_log "$(tail -n 1 "$CHECK_PROBLEMS")"
		echo "$rows nan"
		return 0
	fi
	read -r tids pend <<<"$out"
	if ((tids != rows)); then
		echo "$idx: $tids heap TIDs in the index (graph and pending) != $rows rows in $t" >>"$CHECK_PROBLEMS"
		bench_log "$(tail -n 1 "$CHECK_PROBLEMS")"
	fi
	echo "$rows $pend"
}

# pgbench scripts: ids continue after the base rows; pool ids are NB .. NB+POOL-1
for t in "${TABLES[@]}"; do
	for n in 1 100; do
		cat >"$OUT/ins_${t}_$n.sql" <<SQL
INSERT INTO w_$t (id, embedding)
SELECT $NB + n.k, p.embedding
FROM (SELECT nextval('w_${t}_seq') AS k FROM generate_series(1, $n)) n
JOIN pool p ON p.id = n.k % $POOL + $NB;
SQL
	done
done

# ---------------------------------------------------------------- pgbench
for ((r = 1; r <= BENCH_RUNS; r++)); do
	for n in 1 100; do
		for c in $CLIENTS; do
			for t in "${TABLES[@]}"; do
				reset_table "$t"
				tps="$(bench_pgbench_tps "$OUT/ins_${t}_$n.sql" "$c" "$SECS" -d "$DB")"
				rows="$(awk -v t="$tps" -v n="$n" 'BEGIN { if (t == "nan") print "nan"; else printf "%.1f", t * n }')"
				[[ "$t" == noindex ]] && idx=- || idx="w_${t}_ann"
				read -r nrows pend <<<"$(index_state "w_$t" "$idx")"
				printf '%s\tinsert%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$n" "$c" "$r" "$rows" "$nrows" "$pend" >>"$TSV"
				bench_log "run $r/$BENCH_RUNS: $n-row INSERT, $c clients, $t: $rows rows/s ($nrows rows, $pend pending)"
			done
		done
	done
done
# the last table state of each indexed variant: after the 100-row INSERTs of the last client count
declare -A GROWN GROWN_PEND
for t in "${TABLES[@]}"; do
	GROWN[$t]="$(bench_val -d "$DB" -c "SELECT count(*) FROM w_$t")"
	[[ "$t" == noindex ]] || GROWN_PEND[$t]="$(bench_val -d "$DB" -c "SELECT pending FROM engram_hnsw_check('w_${t}_ann')" 2>/dev/null || echo "?")"
done

# ---------------------------------------------------------------- COPY
copy_into() { # table-name variant run -> rows/s ; also builds the index afterwards for noindex
	local t="$1" r="$2" t0 secs
	bench_psql -d "$DB" -c "SET client_min_messages = warning" -c "DROP TABLE IF EXISTS c_$t" \
		-c "CREATE TABLE c_$t (id int, embedding real[])" \
		-c "ALTER TABLE c_$t ALTER COLUMN embedding SET STORAGE $BENCH_STORAGE"
	if [[ "$t" != noindex ]]; then
		bench_psql -d "$DB" -c "CREATE INDEX c_${t}_ann ON c_$t USING engram_hnsw (embedding real_l2_ops) WITH (${WITHOPTS[$t]})"
	fi
	bench_psql -d "$DB" -c "CHECKPOINT"
	t0="$(bench_now)"
	bench_psql -d "$DB" -c "COPY c_$t (id, embedding) FROM '$COPY_FILE'"
	secs="$(bench_since "$t0")"
	[[ "$t" == noindex ]] && idx=- || idx="c_${t}_ann"
	read -r nrows pend <<<"$(index_state "c_$t" "$idx")"
	printf '%s\tcopy\t1\t%s\t%s\t%s\t%s\n' "$t" "$r" "$(awk -v s="$secs" -v n="$COPY_ROWS" 'BEGIN { printf "%.1f", n / s }')" "$nrows" "$pend" >>"$TSV"
	bench_log "run $r/$BENCH_RUNS: COPY $COPY_ROWS rows into $t: $secs s ($pend pending)"
	if [[ "$t" == noindex && ${#TABLES[@]} -gt 1 ]]; then
		# bulk load: the same rows, then CREATE INDEX (default variant's options)
		t0="$(bench_now)"
		bench_psql -d "$DB" -c "CREATE INDEX c_noindex_ann ON c_noindex USING engram_hnsw (embedding real_l2_ops) WITH (${WITHOPTS[${TABLES[1]}]})"
		secs="$(awk -v a="$secs" -v b="$(bench_since "$t0")" 'BEGIN { print a + b }')"
		printf '%s\tcopy\t1\t%s\t%s\t%s\t-\n' "copy_then_create_index" "$r" "$(awk -v s="$secs" -v n="$COPY_ROWS" 'BEGIN { printf "%.1f", n / s }')" "$COPY_ROWS" >>"$TSV"
		bench_psql -d "$DB" -c "DROP INDEX c_noindex_ann"
	fi
}
for ((r = 1; r <= BENCH_RUNS; r++)); do
	[[ "$COPY_ON" == 1 ]] || break
	order=("${TABLES[@]}")
	((r % 2 == 0)) && order=($(printf '%s\n' "${TABLES[@]}" | tac))
	for t in "${order[@]}"; do
		copy_into "$t" "$r"
	done
done

# ---------------------------------------------------------------- recall after inserts
declare -A REC
if [[ "$EXT_OK" == 1 && "$COPY_ON" == 1 ]]; then
	for t in "${TABLES[@]:1}"; do
		for kind in w c; do
			bench_log "recall after inserts: ${kind}_$t (exact scan of $NQ queries)"
			bench_psql -d "$DB" -c "CREATE INDEX ON ${kind}_$t (id)"
			bench_sql_truth "$DB" "${kind}_$t" queries "truth_${kind}_$t" "$OP" "$NQ"
			for ef in 40 100; do
				REC[$kind.$t.$ef]="$(bench_ann_recall "$DB" "${kind}_$t" queries "truth_${kind}_$t" "$OP" "$ef" || echo "-")"
			done
		done
	done
fi

# ---------------------------------------------------------------- wait events
# One extra (unmeasured) pgbench run per table and INSERT size at $WAIT_CLIENTS
# clients; a procedure in its own session samples pg_stat_activity every
# $WAIT_MS ms (COMMIT per sample: the activity snapshot is per transaction).
# "CPU" = active without a wait event (running or runnable).
declare -A WAITS WAIT_RATE
if [[ "$WAITS_ON" == 1 ]]; then
	bench_psql -d "$DB" -c "SET client_min_messages = warning" \
		-c "CREATE UNLOGGED TABLE IF NOT EXISTS bench_waits (t text, w text, ev text)" -c "
CREATE OR REPLACE PROCEDURE bench_sample_waits(tag text, n int, ms int) LANGUAGE plpgsql AS \$\$
BEGIN
	FOR i IN 1..n LOOP
		INSERT INTO bench_waits SELECT tag, i::text, coalesce(wait_event_type || ':' || wait_event, 'CPU')
		FROM pg_stat_activity WHERE application_name = 'pgbench' AND state = 'active';
		COMMIT;
		PERFORM pg_sleep(ms / 1000.0);
	END LOOP;
END \$\$"
	nsamp="$(awk -v s="$SECS" -v m="$WAIT_MS" 'BEGIN { n = int((s - 1) * 1000 / m); print (n < 10 ? 10 : n) }')"
	for n in $WAIT_SIZES; do
		for t in "${TABLES[@]}"; do
			reset_table "$t"
			bench_log "wait events: $n-row INSERT, $WAIT_CLIENTS clients, $t"
			"$PGBIN/pgbench" -n -M prepared -f "$OUT/ins_${t}_$n.sql" -c "$WAIT_CLIENTS" -j "$WAIT_CLIENTS" \
				-T "$SECS" -d "$DB" >"$OUT/waits_${t}_$n.log" 2>&1 &
			pgb=$!
			sleep 0.5
			bench_psql -d "$DB" -c "SET synchronous_commit = off" -c "CALL bench_sample_waits('${t}_$n', $nsamp, $WAIT_MS)"
			wait "$pgb" || bench_log "pgbench for the wait events of $t failed: $(tail -n 2 "$OUT/waits_${t}_$n.log")"
			WAIT_RATE[$t.$n]="$(awk -v n="$n" '/^tps = / { printf "%.0f", $3 * n; exit }' "$OUT/waits_${t}_$n.log")"
			WAITS[$t.$n]="$(bench_val -d "$DB" -c "
				SELECT string_agg(ev || ' ' || round(100.0 * c / tot) || '%', ', ' ORDER BY c DESC)
				FROM (SELECT ev, count(*) c, sum(count(*)) OVER () tot, row_number() OVER (ORDER BY count(*) DESC) rn
				      FROM bench_waits WHERE t = '${t}_$n' GROUP BY ev) s WHERE rn <= 6")"
			WAITS[$t.$n.samples]="$(bench_val -d "$DB" -c "SELECT count(DISTINCT w) || ' samples, ' || round(count(*)::numeric / greatest(count(DISTINCT w), 1), 1) || ' active backends/sample' FROM bench_waits WHERE t = '${t}_$n'")"
			bench_log "  $t: ${WAITS[$t.$n]}"
		done
	done
fi

# ---------------------------------------------------------------- report
med() { # table workload clients
	awk -F'\t' -v t="$1" -v w="$2" -v c="$3" '$1 == t && $2 == w && $3 == c && $5 != "nan" { print $5 }' "$TSV" | bench_median
}
BARS="$OUT/bars.dat"
{
	printf 'workload'
	for t in "${TABLES[@]}"; do printf ' %s' "$t"; done
	echo
	for n in 1 100; do
		for c in $CLIENTS; do
			printf '%s' "${n}row-c$c"
			for t in "${TABLES[@]}"; do printf ' %s' "$(med "$t" "insert$n" "$c" | sed 's/nan/0/')"; done
			echo
		done
	done
} >"$BARS"
bench_plot_bars "$BENCH_RESULTS/writes.png" "INSERT throughput, rows/s (median of $BENCH_RUNS)" "rows per second (log scale)" "$BARS" log

{
	bench_md_header "Writes: rows/s with and without the index"
	if [[ -s "$CHECK_PROBLEMS" ]]; then
		echo "**Index problems found after the runs:**"
		echo
		sed 's/^/- /' "$CHECK_PROBLEMS"
		echo
	fi
	echo "Data: $SET_NAME, $DIM dims. Each pgbench measurement (-M prepared, -T $SECS, -j = -c) starts from a"
	echo "fresh table holding the $NB base rows (no other index), recreated and re-indexed before it;"
	echo "rows come from a pool table of $POOL new vectors (INSERT ... SELECT, ids from a sequence),"
	echo "stored like the base rows (storage $BENCH_STORAGE: uncompressed, as a client sends them)."
	echo "COPY: $COPY_ROWS rows from a server-side text file into an empty table (the indexed one has"
	echo "its index defined before the COPY). Rows/s are medians of $BENCH_RUNS runs."
	echo
	for t in "${TABLES[@]:1}"; do
		echo "Index variant \`$t\`: WITH (${WITHOPTS[$t]})."
	done
	for t in "${VARIANT_NOTES[@]}"; do
		echo "Note: $t."
	done
	echo
	echo "<!-- summary -->"
	printf '| workload | clients |'
	for t in "${TABLES[@]}"; do printf ' %s rows/s |' "$t"; done
	for t in "${TABLES[@]:1}"; do printf ' %s / noindex |' "$t"; done
	for t in "${TABLES[@]:2}"; do printf ' %s / %s |' "${TABLES[1]}" "$t"; done
	echo
	printf '|---|---|'
	for t in "${TABLES[@]}"; do printf -- '---|'; done
	for t in "${TABLES[@]:1}"; do printf -- '---|'; done
	for t in "${TABLES[@]:2}"; do printf -- '---|'; done
	echo
	for n in 1 100; do
		for c in $CLIENTS; do
			base="$(med noindex "insert$n" "$c")"
			printf '| %s-row INSERT | %s |' "$n" "$c"
			for t in "${TABLES[@]}"; do printf ' %s |' "$(bench_fmt "$(med "$t" "insert$n" "$c")")"; done
			for t in "${TABLES[@]:1}"; do printf ' %s |' "$(bench_ratio "$(med "$t" "insert$n" "$c")" "$base")"; done
			for t in "${TABLES[@]:2}"; do printf ' %s |' "$(bench_ratio "$(med "${TABLES[1]}" "insert$n" "$c")" "$(med "$t" "insert$n" "$c")")"; done
			echo
		done
	done
	base="$(med noindex copy 1)"
	printf '| COPY %s rows | 1 |' "$COPY_ROWS"
	for t in "${TABLES[@]}"; do printf ' %s |' "$(bench_fmt "$(med "$t" copy 1)")"; done
	for t in "${TABLES[@]:1}"; do printf ' %s |' "$(bench_ratio "$(med "$t" copy 1)" "$base")"; done
	for t in "${TABLES[@]:2}"; do printf ' %s |' "$(bench_ratio "$(med "${TABLES[1]}" copy 1)" "$(med "$t" copy 1)")"; done
	echo
	if [[ "$EXT_OK" == 1 && ${#TABLES[@]} -gt 1 ]]; then
		echo
		echo "COPY into the bare table then CREATE INDEX (bulk load): $(bench_fmt "$(med copy_then_create_index copy 1)") rows/s overall."
		echo
		echo "Per-row index cost (1/rate - 1/noindex rate, 1 client): single-row INSERT vs 100-row INSERT:"
		echo
		echo "| variant | single-row us/row | 100-row us/row | ratio 100-row / single |"
		echo "|---|---|---|---|"
		for t in "${TABLES[@]:1}"; do
			a="$(awk -v x="$(med "$t" insert1 1)" -v y="$(med noindex insert1 1)" 'BEGIN { if (x > 0 && y > 0) printf "%.0f", 1e6 / x - 1e6 / y; else print "-" }')"
			b="$(awk -v x="$(med "$t" insert100 1)" -v y="$(med noindex insert100 1)" 'BEGIN { if (x > 0 && y > 0) printf "%.0f", 1e6 / x - 1e6 / y; else print "-" }')"
			echo "| $t | $a | $b | $(bench_ratio "$b" "$a") |"
		done
		echo
		echo "## Recall after the inserts"
		echo
		echo "Against an exact scan of the final table, $NQ queries (test images / query stream)."
		echo
		echo "| table | rows | recall@10 ef=40 | recall@10 ef=100 |"
		echo "|---|---|---|---|"
		for t in "${TABLES[@]:1}"; do
			echo "| $t after the pgbench INSERTs (base $NB + inserted; ${GROWN_PEND[$t]:-?} still pending, scanned exactly) | ${GROWN[$t]} | ${REC[w.$t.40]:--} | ${REC[w.$t.100]:--} |"
			echo "| $t filled by COPY into the empty indexed table | $COPY_ROWS | ${REC[c.$t.40]:--} | ${REC[c.$t.100]:--} |"
		done
	fi
	echo "<!-- /summary -->"
	if [[ "$EXT_OK" == 1 && ${#TABLES[@]} -gt 1 ]]; then
		echo
		echo "## Rows and pending rows at the end of each run"
		echo
		echo "Rows in the table after the run (base $NB + inserted) and rows still in the pending list"
		echo "(engram_hnsw_check's *pending* column): throughput depends on how much of the inserted rows were"
		echo "merged during the run. Medians of $BENCH_RUNS runs; every run's figures in writes.tsv."
		echo
		printf '| workload | clients |'
		for t in "${TABLES[@]:1}"; do printf ' %s rows | %s pending |' "$t" "$t"; done
		echo
		printf '|---|---|'
		for t in "${TABLES[@]:1}"; do printf -- '---|---|'; done
		echo
		medc() { # table workload clients column
			awk -F'\t' -v t="$1" -v w="$2" -v c="$3" -v k="$4" '$1 == t && $2 == w && $3 == c && $k != "nan" && $k != "-" { print $k }' "$TSV" | bench_median
		}
		for w in insert1 insert100 copy; do
			for c in $CLIENTS; do
				[[ "$w" == copy && "$c" != 1 ]] && continue
				case "$w" in insert1) wl="1-row INSERT" ;; insert100) wl="100-row INSERT" ;; copy) wl="COPY $COPY_ROWS rows" ;; esac
				printf '| %s | %s |' "$wl" "$c"
				for t in "${TABLES[@]:1}"; do printf ' %s | %s |' "$(bench_fmt "$(medc "$t" "$w" "$c" 6)")" "$(bench_fmt "$(medc "$t" "$w" "$c" 7)")"; done
				echo
			done
		done
	fi
	if [[ "$WAITS_ON" == 1 ]]; then
		echo
		echo "## Wait events at $WAIT_CLIENTS clients"
		echo
		echo "One extra pgbench run per table (-c $WAIT_CLIENTS -T $SECS, not part of the medians above), sampling"
		echo "pg_stat_activity every $WAIT_MS ms (the pgbench backends with state = active); *CPU* is"
		echo "active without a wait event (running or waiting for a core). Share of backend-samples."
		echo
		echo "| workload | table | rows/s in this run | top wait events | samples |"
		echo "|---|---|---|---|---|"
		for n in $WAIT_SIZES; do
			for t in "${TABLES[@]}"; do
				echo "| $n-row INSERT | $t | ${WAIT_RATE[$t.$n]:--} | ${WAITS[$t.$n]:--} | ${WAITS[$t.$n.samples]:--} |"
			done
		done
	fi
	echo
	echo "![insert throughput](writes.png)"
	echo
	echo "## Cluster"
	echo
	bench_settings_md
	echo
	echo "Raw figures: writes.tsv (table, workload, clients, run, rows/s, rows after the run, pending rows after the run)."
} >"$RESULT_MD"
cat "$RESULT_MD"
bench_log "wrote $RESULT_MD in $(bench_since "$BENCH_T0") s"
