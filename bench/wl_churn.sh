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
# Knobs: CHURN_SET (gauss128-100k, QUICK gauss128-20k; a gaussD-N set),
#        CHURN_NQ (200, QUICK 50), INDEX_M, INDEX_EFC, INDEX_OPTS, BENCH_RUNS.
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

if [[ "$EXT_OK" == 1 ]]; then
	for ((r = 1; r <= BENCH_RUNS; r++)); do
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
	if [[ "$EXT_OK" == 1 ]]; then
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
	echo
	echo "## Cluster"
	echo
	bench_settings_md
	echo
	echo "Raw figures: churn.tsv (run, measure, value)."
} >"$RESULT_MD"
cat "$RESULT_MD"
bench_log "wrote $RESULT_MD in $(bench_since "$BENCH_T0") s"
