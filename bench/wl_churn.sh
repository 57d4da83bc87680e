#!/usr/bin/env bash
#
# bench/wl_churn.sh: churn workload.  In each run, from scratch:
#   1. a table with the N base rows and an engram_hnsw index (built),
#   2. DELETE half of the rows (even ids), VACUUM (timed; the same on a copy
#      with no vector index, for the heap's own share),
#   3. INSERT N/2 new rows from the same distribution (timed),
#   4. a fresh CREATE INDEX on a copy of the final rows,
# with recall@10 (ef_search 10 and 40) after each step: against the file
# ground truth for the base rows, and against an exact scan of the table
# for the later states (computed once; the contents are the same in every
# run).  engram_hnsw_check() of the churned index is reported when it exists.
# Writes bench/results/churn.md and churn.tsv.
#
# Then the reuse of deleted elements' space (index sizes from pg_relation_size):
#   5. delete all + VACUUM + reinsert, twice, of CHURN_REINSERT_N (10 000)
#      3-d vectors (gen gauss), with fastupdate off and on;
#   6. CHURN_ROUNDS (10) rounds on the base set: delete half of the rows at
#      random, VACUUM, insert as many new rows (a pool of ROUNDS x N/2 rows from
#      the same mixture), merge the pending list, engram_hnsw_check; at the end
#      a fresh build of the final rows, sizes and recall@10 of both.
#
# Knobs: CHURN_SET (gauss128-100k, QUICK gauss128-20k; a gaussD-N set),
#        CHURN_NQ (200, QUICK 50), INDEX_M, INDEX_EFC, INDEX_OPTS, BENCH_RUNS,
#        CHURN_REINSERT_N, CHURN_ROUNDS (0: skip 5 and 6), CHURN_BASE_RUNS
#        (0: skip 1-4).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init churn

SET="${CHURN_SET:-$(bench_quick gauss128-20k gauss128-100k)}"
NQ="${CHURN_NQ:-$(bench_quick 50 200)}"
[[ "$SET" == gauss* ]] || bench_die "CHURN_SET must be a gaussian set (new rows come from the same mixture)"
METRIC=l2
OP='<->'
OPC=real_l2_ops
EFS="10 40"
printf 'run\tmeasure\tvalue\n' >"$TSV"

bench_start
DB=churn
bench_load_set "$DB" "$SET" "$METRIC" "$NQ"
bench_ext_check "$DB"
bench_wal_warmup
N="$DS_N"
HALF=$((N / 2))
spec="${SET#gauss}"
dim="${spec%%-*}"
norm=()
[[ "$dim" == *n ]] && norm=(--normalize) && dim="${dim%n}"
POOLF="$BENCH_DATA/$SET.new$HALF.fvecs"
[[ -s "$POOLF" ]] || "$BENCH_BIN/gen" gauss --dim "$dim" --n "$HALF" --nq 0 --seed 42 --stream 3 "${norm[@]}" \
	--base "$POOLF" --queries -
bench_psql -d "$DB" -c "CREATE TABLE pool (id int PRIMARY KEY, embedding real[])"
bench_copy_fvecs "$DB" pool "$POOLF" --id-base "$N"
bench_psql -d "$DB" -c "VACUUM ANALYZE pool"

put() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$TSV"; }
put_rec() { # run step table truth
	local ef
	for ef in $EFS; do
		put "$1" "recall${ef}_$2" "$(bench_ann_recall "$DB" "$3" queries "$4" "$OP" "$ef" || echo nan)"
	done
}
timed() { # SQL... -> seconds
	local t0
	t0="$(bench_now)"
	bench_psql -d "$DB" "$@" >/dev/null
	bench_since "$t0"
}

ROUNDS="${CHURN_ROUNDS:-10}"
RN="${CHURN_REINSERT_N:-10000}"
BASE_RUNS="${CHURN_BASE_RUNS:-$BENCH_RUNS}"
size_kb() { bench_val -d "$DB" -c "SELECT pg_relation_size('$1') / 1024"; }

# 5. delete all, VACUUM, reinsert the same number of rows (twice)
reinsert_case() { # fastupdate
	local fu="$1" c
	bench_psql -d "$DB" -c "SET client_min_messages = warning" -c "DROP TABLE IF EXISTS ra" \
		-c "CREATE TABLE ra (id int PRIMARY KEY, embedding real[])" \
		-c "ALTER TABLE ra ALTER COLUMN embedding SET STORAGE $BENCH_STORAGE" \
		-c "INSERT INTO ra SELECT id, embedding FROM r3 WHERE id < $RN" \
		-c "CREATE INDEX ra_ann ON ra USING engram_hnsw (embedding $OPC) WITH ($WITH, fastupdate = $fu)"
	put "$fu" reinsert_kb0 "$(size_kb ra_ann)"
	for c in 1 2; do
		bench_psql -d "$DB" -c "DELETE FROM ra" -c "VACUUM ra" \
			-c "INSERT INTO ra SELECT id, embedding FROM r3 WHERE id >= $c * $RN AND id < ($c + 1) * $RN" \
			-c "SELECT engram_hnsw_merge_pending('ra_ann')" >/dev/null
		put "$fu" "reinsert_kb$c" "$(size_kb ra_ann)"
	done
}

# 6. rounds of: delete half at random, VACUUM, insert as many new rows
rounds_case() {
	local r chk
	bench_psql -d "$DB" -c "SET client_min_messages = warning" -c "DROP TABLE IF EXISTS k, kf" \
		-c "CREATE TABLE k (id int PRIMARY KEY, embedding real[])" \
		-c "ALTER TABLE k ALTER COLUMN embedding SET STORAGE $BENCH_STORAGE" \
		-c "INSERT INTO k SELECT id, embedding FROM items" -c "VACUUM ANALYZE k" \
		-c "CREATE INDEX k_ann ON k USING engram_hnsw (embedding $OPC) WITH ($WITH)"
	put rounds kb_round0 "$(size_kb k_ann)"
	for ((r = 1; r <= ROUNDS; r++)); do
		bench_log "round $r/$ROUNDS: delete $HALF at random, VACUUM, insert $HALF"
		bench_psql -d "$DB" -c "DELETE FROM k WHERE id IN (SELECT id FROM k ORDER BY hashint4(id + $r * 7919) LIMIT $HALF)"
		put rounds "vacuum_s_round$r" "$(timed -c "VACUUM k")"
		put rounds "insert_s_round$r" "$(timed -c "INSERT INTO k SELECT id, embedding FROM pool2 WHERE id >= $((N + (r - 1) * HALF)) AND id < $((N + r * HALF))" \
			-c "SELECT engram_hnsw_merge_pending('k_ann')")"
		chk="$(bench_val -d "$DB" -F ' ' -c "SELECT 'ok elements=' || elements || ' deleted=' || deleted_elements || ' unreachable=' || unreachable FROM engram_hnsw_check('k_ann'::regclass)" 2>&1 || true)"
		put rounds "check_round$r" "${chk//$'\n'/ }"
		put rounds "kb_round$r" "$(size_kb k_ann)"
	done
	bench_psql -d "$DB" -c "CREATE TABLE kf AS SELECT * FROM k" -c "CREATE INDEX kf_id ON kf (id)" -c "VACUUM ANALYZE kf" \
		-c "CREATE INDEX kf_ann ON kf USING engram_hnsw (embedding $OPC) WITH ($WITH)"
	put rounds kb_fresh "$(size_kb kf_ann)"
	bench_sql_truth "$DB" k queries truth_rounds "$OP" "$NQ"
	for ef in $EFS; do
		put rounds "recall${ef}_churned" "$(bench_ann_recall "$DB" k queries truth_rounds "$OP" "$ef" || echo nan)"
		put rounds "recall${ef}_fresh" "$(bench_ann_recall "$DB" kf queries truth_rounds "$OP" "$ef" || echo nan)"
	done
}

if [[ "$EXT_OK" == 1 && "$ROUNDS" -gt 0 ]]; then
	R3F="$BENCH_DATA/gauss3-reinsert$((3 * RN)).fvecs"
	[[ -s "$R3F" ]] || "$BENCH_BIN/gen" gauss --dim 3 --n $((3 * RN)) --nq 0 --seed 7 --base "$R3F" --queries -
	bench_psql -d "$DB" -c "DROP TABLE IF EXISTS r3" -c "CREATE TABLE r3 (id int PRIMARY KEY, embedding real[])"
	bench_copy_fvecs "$DB" r3 "$R3F"
	bench_log "delete all, VACUUM, reinsert: $RN rows of 3 dimensions"
	reinsert_case off
	reinsert_case on
	POOL2F="$BENCH_DATA/$SET.rounds$((ROUNDS * HALF)).fvecs"
	[[ -s "$POOL2F" ]] || "$BENCH_BIN/gen" gauss --dim "$dim" --n $((ROUNDS * HALF)) --nq 0 --seed 42 --stream 4 "${norm[@]}" \
		--base "$POOL2F" --queries -
	bench_psql -d "$DB" -c "DROP TABLE IF EXISTS pool2" -c "CREATE TABLE pool2 (id int PRIMARY KEY, embedding real[])" \
		-c "ALTER TABLE pool2 ALTER COLUMN embedding SET STORAGE $BENCH_STORAGE"
	bench_copy_fvecs "$DB" pool2 "$POOL2F" --id-base "$N"
	bench_psql -d "$DB" -c "VACUUM ANALYZE pool2"
	rounds_case
fi

if [[ "$EXT_OK" == 1 ]]; then
	for ((r = 1; r <= BASE_RUNS; r++)); do
		bench_log "run $r/$BENCH_RUNS: build"
		bench_psql -d "$DB" -c "SET client_min_messages = warning" -c "DROP TABLE IF EXISTS c, c_noidx, f" \
			-c "CREATE TABLE c (id int, embedding real[])" \
			-c "ALTER TABLE c ALTER COLUMN embedding SET STORAGE $BENCH_STORAGE" \
			-c "INSERT INTO c SELECT id, embedding FROM items" \
			-c "CREATE TABLE c_noidx AS SELECT * FROM c" \
			-c "CREATE INDEX c_id ON c (id)" -c "VACUUM ANALYZE c" -c "VACUUM ANALYZE c_noidx" -c "CHECKPOINT"
		put "$r" build_s "$(timed -c "CREATE INDEX c_ann ON c USING engram_hnsw (embedding $OPC) WITH ($WITH)")"
		put_rec "$r" initial c truth

		bench_log "run $r/$BENCH_RUNS: delete half, vacuum"
		put "$r" delete_s "$(timed -c "DELETE FROM c WHERE id % 2 = 0")"
		bench_psql -d "$DB" -c "DELETE FROM c_noidx WHERE id % 2 = 0" -c "CHECKPOINT"
		put "$r" vacuum_noidx_s "$(timed -c "VACUUM c_noidx")"
		put "$r" vacuum_s "$(timed -c "VACUUM c")"
		if [[ "$r" == 1 ]]; then
			bench_log "exact truth of the survivors ($NQ queries)"
			bench_sql_truth "$DB" c queries truth_half "$OP" "$NQ"
		fi
		put_rec "$r" after_vacuum c truth_half

		bench_log "run $r/$BENCH_RUNS: insert $HALF new rows"
		s="$(timed -c "INSERT INTO c SELECT id, embedding FROM pool")"
		put "$r" insert_s "$s"
		put "$r" insert_rows_per_s "$(awk -v s="$s" -v n="$HALF" 'BEGIN { printf "%.1f", n / s }')"
		bench_psql -d "$DB" -c "VACUUM ANALYZE c"
		if [[ "$r" == 1 ]]; then
			bench_log "exact truth of the final rows ($NQ queries)"
			bench_sql_truth "$DB" c queries truth_final "$OP" "$NQ"
		fi
		put_rec "$r" after_insert c truth_final
		if [[ "$(bench_val -d "$DB" -c "SELECT count(*) FROM pg_proc WHERE proname = 'engram_hnsw_check'")" != 0 ]]; then
			CHECK="$(bench_val -d "$DB" -F ' ' -c "SELECT 'elements=' || elements || ' deleted=' || deleted_elements || ' heap_tids=' || heap_tids || ' unreachable=' || unreachable FROM engram_hnsw_check('c_ann'::regclass)" 2>&1 || true)"
		fi
		put "$r" index_mb_churned "$(bench_val -d "$DB" -c "SELECT round(pg_relation_size('c_ann') / 1048576.0, 1)")"

		bench_log "run $r/$BENCH_RUNS: fresh build of the final rows"
		bench_psql -d "$DB" -c "CREATE TABLE f AS SELECT * FROM c" -c "CREATE INDEX f_id ON f (id)" -c "VACUUM ANALYZE f" -c "CHECKPOINT"
		put "$r" fresh_build_s "$(timed -c "CREATE INDEX f_ann ON f USING engram_hnsw (embedding $OPC) WITH ($WITH)")"
		put_rec "$r" fresh f truth_final
		put "$r" index_mb_fresh "$(bench_val -d "$DB" -c "SELECT round(pg_relation_size('f_ann') / 1048576.0, 1)")"
	done
fi

med() { awk -F'\t' -v m="$1" '$2 == m && $3 != "nan" { print $3 }' "$TSV" | bench_median; }
recs() { # step -> " r | r |" over EFS
	local ef
	for ef in $EFS; do
		if [[ "$1" == - ]]; then printf '  |'; else printf ' %s |' "$(bench_fmt "$(med "recall${ef}_$1")" 4)"; fi
	done
}
{
	bench_md_header "Churn: delete half, VACUUM, re-insert"
	echo "Data: $SET ($N x $DS_DIM, L2); the even ids are deleted, then $HALF new rows from the same mixture"
	echo "are inserted in one INSERT ... SELECT. Index WITH ($WITH). Recall@10 over $NQ queries; times and"
	echo "recalls are medians of $BENCH_RUNS runs, each from a fresh table."
	echo
	if [[ "$EXT_OK" == 1 && "$BASE_RUNS" -gt 0 ]]; then
		echo "<!-- summary -->"
		echo "| step | seconds |$(for ef in $EFS; do printf ' recall@10 ef=%s |' "$ef"; done)"
		echo "|---|---|$(for ef in $EFS; do printf -- '---|'; done)"
		echo "| CREATE INDEX on $N rows | $(bench_fmt "$(med build_s)" 2) |$(recs initial)"
		echo "| DELETE $HALF rows | $(bench_fmt "$(med delete_s)" 2) |$(recs -)"
		echo "| VACUUM (with the index) | $(bench_fmt "$(med vacuum_s)" 2) |$(recs after_vacuum)"
		echo "| VACUUM of the same table without the index | $(bench_fmt "$(med vacuum_noidx_s)" 2) |$(recs -)"
		echo "| INSERT $HALF new rows ($(bench_fmt "$(med insert_rows_per_s)") rows/s) | $(bench_fmt "$(med insert_s)" 2) |$(recs after_insert)"
		echo "| fresh CREATE INDEX on the final rows | $(bench_fmt "$(med fresh_build_s)" 2) |$(recs fresh)"
		echo
		printf 'Recall of the churned index minus the fresh build'"'"'s:'
		for ef in $EFS; do
			printf ' ef=%s %s' "$ef" "$(awk -v a="$(med "recall${ef}_after_insert")" -v b="$(med "recall${ef}_fresh")" 'BEGIN { printf "%+.4f", a - b }')"
		done
		echo "."
		echo "<!-- /summary -->"
		echo "Index size: churned $(med index_mb_churned) MB, fresh $(med index_mb_fresh) MB."
		[[ -n "${CHECK:-}" ]] && echo "engram_hnsw_check of the churned index (last run): $CHECK."
	fi
	if [[ "$EXT_OK" == 1 && "$ROUNDS" -gt 0 ]]; then
		val() { awk -F'\t' -v r="$1" -v m="$2" '$1 == r && $2 == m { v = $3 } END { print v }' "$TSV"; }
		echo
		echo "## Reusing the space of deleted elements"
		echo
		echo "Delete every row, VACUUM, insert as many new rows, twice: $RN rows of 3 dimensions (gen gauss),"
		echo "index WITH ($WITH); the second cycle recycles the pending pages the first one's merges detached."
		echo
		echo "| fastupdate | built | after cycle 1 | after cycle 2 | cycle 1 / built | cycle 2 / cycle 1 |"
		echo "|---|---|---|---|---|---|"
		for fu in off on; do
			k0="$(val "$fu" reinsert_kb0)" k1="$(val "$fu" reinsert_kb1)" k2="$(val "$fu" reinsert_kb2)"
			echo "| $fu | $k0 kB | $k1 kB | $k2 kB | $(awk -v a="$k1" -v b="$k0" 'BEGIN { printf "%.2fx", a / b }') | $(awk -v a="$k2" -v b="$k1" 'BEGIN { printf "%.2fx", a / b }') |"
		done
		echo
		echo "$ROUNDS rounds on $SET ($N rows): delete $HALF rows at random, VACUUM, insert $HALF new rows from the same"
		echo "mixture, merge the pending list, engram_hnsw_check."
		echo
		echo "| round | VACUUM s | INSERT + merge s | index | engram_hnsw_check |"
		echo "|---|---|---|---|---|"
		echo "| 0 (built) | | | $(val rounds kb_round0) kB | |"
		for ((r = 1; r <= ROUNDS; r++)); do
			echo "| $r | $(val rounds "vacuum_s_round$r") | $(val rounds "insert_s_round$r") | $(val rounds "kb_round$r") kB | $(val rounds "check_round$r") |"
		done
		kc="$(val rounds "kb_round$ROUNDS")" kf="$(val rounds kb_fresh)"
		echo
		echo "| index of the final rows | size |$(for ef in $EFS; do printf ' recall@10 ef=%s |' "$ef"; done)"
		echo "|---|---|$(for ef in $EFS; do printf -- '---|'; done)"
		echo "| after $ROUNDS rounds | $kc kB ($(awk -v a="$kc" -v b="$kf" 'BEGIN { printf "%.2fx", a / b }')) |$(for ef in $EFS; do printf ' %s |' "$(val rounds "recall${ef}_churned")"; done)"
		echo "| fresh build | $kf kB |$(for ef in $EFS; do printf ' %s |' "$(val rounds "recall${ef}_fresh")"; done)"
	fi
	echo
	echo "## Cluster"
	echo
	bench_settings_md
	echo
	echo "Raw figures: churn.tsv (run, measure, value)."
} >"$RESULT_MD"
cat "$RESULT_MD"
bench_log "wrote $RESULT_MD in $(bench_since "$BENCH_T0") s"
