#!/usr/bin/env bash
#
# bench/wl_spaces.sh: multi-space ("memory spaces") workload.  Rows carry a
# space_id; every query searches inside one space:
#     SELECT id FROM T WHERE space_id = $s ORDER BY embedding <-> $q LIMIT 10
# measured, side by side on the same rows and (space, query) pairs, for
#   exact      btree on space_id, no vector index (exact per-space top 10)
#   filter     one engram_hnsw index on embedding + the WHERE filter
#   partition  LIST-partitioned table, one partition (and one engram_hnsw
#              index, created on the parent) per space; skipped above
#              $SPACES_MAX_PARTITIONS spaces
#   spacecol   one engram_hnsw index on (space_id, embedding): the
#              memory-spaces design; tried, and skipped with a note when
#              CREATE INDEX does not accept it yet
# Reports build time, index size, recall@10 against exact per-space ground
# truth, rows returned per query and QPS (PL/pgSQL loop, median of runs);
# then pgbench -c 8 INSERTs with each client writing its own space versus
# all 8 writing one space.  Writes bench/results/spaces.md, spaces.tsv.
#
# Knobs: SPACES_SETS ("spaces128-100x1000 spaces128-10000x100", QUICK
#        "spaces128-20x500"), SPACES_EF ("40 100", QUICK "40"),
#        SPACES_NQ (500), SPACES_FILTER_NQ (queries for the filter variant
#        on sets of >= 1000 spaces, 50), SPACES_TIMEOUT (statement_timeout of
#        one measured loop, default 300s; a loop slower than 60 s runs once), SPACES_MAX_PARTITIONS (1000),
#        SPACES_WRITE_SECS (5, QUICK 2), INDEX_M, INDEX_EFC, BENCH_RUNS,
#        BENCH_BIG_RUNS (build runs for sets of >= 1M rows, 1), BENCH_MERGE=1
#        (keep the sections of the sets not run now from the existing
#        spaces.md, see lib.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init spaces

SETS="${SPACES_SETS:-$(bench_quick spaces128-20x500 "spaces128-100x1000 spaces128-10000x100")}"
EFS="${SPACES_EF:-$(bench_quick 40 "40 100")}"
WSECS="${SPACES_WRITE_SECS:-$(bench_quick 2 5)}"
NQ="${SPACES_NQ:-500}"
FILTER_NQ="${SPACES_FILTER_NQ:-50}"
TIMEOUT="${SPACES_TIMEOUT:-300s}"
MAXPART="${SPACES_MAX_PARTITIONS:-1000}"
METRIC=l2
OP='<->'
OPC=real_l2_ops
# BENCH_MERGE=1: the sets of the previous report that are not run now are kept
# shellcheck disable=SC2016,SC2086 # an awk program; the sets, split
bench_merge_kept '/<!-- summary -->/ { on = 1 } /<!-- \/summary -->/ { on = 0 } on && /^## / { sub(/:$/, "", $2); print $2 }' $SETS
printf 'set\tvariant\tmeasure\tef\trun\tvalue\n' >"$TSV"
bench_merge_tsv "$OUT/old.tsv" "$TSV" 1 "${KEPT[@]}"

bench_start
bench_wal_warmup

# loop function over one table; p_filter: WHERE space_id = query's space
make_loop() {
	local db="$1" table="$2" fn="loop_$2"
	bench_psql -d "$db" <<SQL
CREATE OR REPLACE FUNCTION $fn(p_variant text, p_ef int, p_nq int, p_store bool) RETURNS float8
LANGUAGE plpgsql AS \$f\$
DECLARE r record; v int[]; t0 timestamptz;
BEGIN
	IF p_ef > 0 THEN
		PERFORM set_config('engram_hnsw.ef_search', p_ef::text, true);
		PERFORM set_config('enable_seqscan', 'off', true);
		PERFORM set_config('enable_bitmapscan', 'off', true);
	END IF;
	t0 := clock_timestamp();
	FOR r IN SELECT id, space_id, embedding FROM queries ORDER BY id LIMIT p_nq LOOP
		SELECT array_agg(s.id) INTO v FROM (SELECT i.id FROM $table i WHERE i.space_id = r.space_id
			ORDER BY i.embedding $OP r.embedding LIMIT $K) s;
		IF p_store THEN INSERT INTO res VALUES (p_variant, p_ef, r.id, coalesce(v, '{}')); END IF;
	END LOOP;
	RETURN p_nq / extract(epoch FROM clock_timestamp() - t0)::float8;
END \$f\$;
SQL
}

# build_measure SET VARIANT TABLE COLUMNS SIZE_SQL NQ FAIL: build (runs times)
# the index TABLE_ann USING engram_hnsw (COLUMNS), then measure VARIANT on
# TABLE at every ef with NQ queries; when CREATE INDEX fails, the variant's
# note is FAIL (a printf format) with the error
build_measure() {
	local set="$1" var="$2" table="$3" cols="$4" size="$5" nq="$6" fail="$7" ef
	if ! build "$set" "$var" "DROP INDEX IF EXISTS ${table}_ann" \
		"CREATE INDEX ${table}_ann ON $table USING engram_hnsw ($cols) WITH ($WITH)" "$size" "$runs"; then
		# shellcheck disable=SC2059 # FAIL is the format
		NOTE[$var]="$(printf "$fail" "$BUILD_ERR")"
		bench_log "[$set] $var: ${NOTE[$var]}"
		return 0
	fi
	VARS+=("$var")
	make_loop "$DB" "$table"
	for ef in $EFS; do measure "$set" "$var" "$table" "$ef" "$nq"; done
}

# measure SET VARIANT TABLE EF NQ: recall pass + BENCH_RUNS timed passes
measure() {
	local set="$1" var="$2" table="$3" ef="$4" nq="$5" r q rec rows
	bench_log "[$set] $var ef=$ef: $nq queries"
	local first runs="$BENCH_RUNS" slow=""
	if ! first="$(bench_val -d "$DB" -c "SET statement_timeout = '$TIMEOUT'" \
		-c "SELECT loop_$table('$var', $ef, $nq, true)" 2>"$OUT/err")"; then
		bench_log "[$set] $var ef=$ef failed: $(head -n 1 "$OUT/err")"
		printf '%s\t%s\tqps\t%s\t0\tnan\n' "$set" "$var" "$ef" >>"$TSV"
		RESULT[$var.$ef]="- | - | failed: $(grep -m1 ERROR "$OUT/err" | cut -c1-80)"
		return 0
	fi
	# a pass slower than a minute is not repeated: its own QPS is the figure
	if awk -v q="$first" -v n="$nq" 'BEGIN { exit !(q <= 0 || n / q > 60) }'; then
		runs=0
		slow=" (1 run)"
		printf '%s\t%s\tqps\t%s\t1\t%s\n' "$set" "$var" "$ef" "$first" >>"$TSV"
	fi
	for ((r = 1; r <= runs; r++)); do
		q="$(bench_val -d "$DB" -c "SET statement_timeout = '$TIMEOUT'" -c "SELECT loop_$table('$var', $ef, $nq, false)" 2>/dev/null || echo nan)"
		printf '%s\t%s\tqps\t%s\t%s\t%s\n' "$set" "$var" "$ef" "$r" "$q" >>"$TSV"
	done
	q="$(awk -F'\t' -v s="$set" -v v="$var" -v e="$ef" '$1 == s && $2 == v && $3 == "qps" && $4 == e && $6 != "nan" { print $6 }' "$TSV" | bench_median)"
	rec="$(bench_val -d "$DB" -c "$(bench_recall_sql "$OP" "(SELECT qid, ids FROM res WHERE variant = '$var' AND ef = $ef)")")"
	rows="$(bench_val -d "$DB" -c "SELECT round(avg(cardinality(ids)), 2) FROM res WHERE variant = '$var' AND ef = $ef")"
	printf '%s\t%s\trecall\t%s\t0\t%s\n' "$set" "$var" "$ef" "$rec" >>"$TSV"
	RESULT[$var.$ef]="$rec | $rows | $(bench_fmt "$q" "$(awk -v q="$q" 'BEGIN { print (q != "nan" && q < 10) ? 1 : 0 }')")$slow"
}

# build SET VARIANT SQL-to-drop SQL-to-create INDEXNAME-or-TABLE runs
build() {
	local set="$1" var="$2" drop="$3" create="$4" sizeof="$5" runs="$6" r t0 secs
	for ((r = 1; r <= runs; r++)); do
		bench_psql -d "$DB" -c "SET client_min_messages = warning" -c "$drop" -c "CHECKPOINT"
		bench_rss_start
		t0="$(bench_now)"
		if ! bench_psql -d "$DB" -c "$create" 2>"$OUT/err"; then
			bench_rss_stop
			BUILD_ERR="$(grep -m1 -E 'ERROR|FATAL' "$OUT/err" || head -n 1 "$OUT/err")"
			return 1
		fi
		secs="$(bench_since "$t0")"
		bench_rss_stop
		printf '%s\t%s\tbuild_s\t0\t%s\t%s\n' "$set" "$var" "$r" "$secs" >>"$TSV"
		printf '%s\t%s\tbuild_peak_mb\t0\t%s\t%s\n' "$set" "$var" "$r" "$RSS_PEAK_MB" >>"$TSV"
		bench_log "[$set] build $var run $r: $secs s"
	done
	BUILD[$var]="$(awk -F'\t' -v s="$set" -v v="$var" '$1 == s && $2 == v && $3 == "build_s" { print $6 }' "$TSV" | bench_median)"
	PEAK[$var]="$(awk -F'\t' -v s="$set" -v v="$var" '$1 == s && $2 == v && $3 == "build_peak_mb" { print $6 }' "$TSV" | bench_median)"
	SIZE[$var]="$(bench_val -d "$DB" -c "$sizeof")"
	return 0
}

# pgbench: 8 clients, own space each vs all in one space
writes() {
	local set="$1" var="$2" table="$3" mode r tps
	for mode in own one; do
		local sp=":client_id % $S"
		[[ "$mode" == one ]] && sp="0"
		cat >"$OUT/w_${table}_${mode}.sql" <<SQL
\\set r random(0, $((N - 1)))
INSERT INTO $table (id, space_id, embedding)
SELECT nextval('wseq'), $sp, embedding FROM items WHERE id = :r;
SQL
		for ((r = 1; r <= BENCH_RUNS; r++)); do
			tps="$(bench_pgbench_tps "$OUT/w_${table}_${mode}.sql" 8 "$WSECS" -d "$DB")"
			printf '%s\t%s\twrite_%s\t0\t%s\t%s\n' "$set" "$var" "$mode" "$r" "$tps" >>"$TSV"
		done
		W[$var.$mode]="$(awk -F'\t' -v s="$set" -v v="$var" -v m="write_$mode" '$1 == s && $2 == v && $3 == m && $6 != "nan" { print $6 }' "$TSV" | bench_median)"
	done
	bench_log "[$set] writes $var: own spaces ${W[$var.own]} rows/s, one space ${W[$var.one]} rows/s"
}

REPORT="$OUT/report.md"
: >"$REPORT"
for t in "${KEPT[@]}"; do
	bench_md_section_kept "$OUT/old.md" "$t:" >>"$REPORT"
done
for set in $SETS; do
	declare -A RESULT=() BUILD=() SIZE=() PEAK=() W=() NOTE=()
	DB="sp_${set//-/_}"
	bench_load_set "$DB" "$set" "$METRIC" "$NQ"
	bench_ext_check "$DB"
	N="$DS_N"
	S="$(bench_val -d "$DB" -c "SELECT max(space_id) + 1 FROM items")"
	runs="$BENCH_RUNS"
	((N >= 1000000)) && runs="${BENCH_BIG_RUNS:-1}"
	fnq="$NQ"
	((S >= 1000)) && fnq="$((FILTER_NQ < NQ ? FILTER_NQ : NQ))"
	bench_psql -d "$DB" -c "SET client_min_messages = warning" \
		-c "CREATE TABLE res (variant text, ef int, qid int, ids int[])" \
		-c "CREATE SEQUENCE wseq START 100000000"
	VARS=(exact)

	# exact: btree on space_id on a copy of the rows
	bench_psql -d "$DB" -c "CREATE TABLE t_exact AS SELECT * FROM items" \
		-c "CREATE INDEX ON t_exact (space_id)" -c "VACUUM ANALYZE t_exact"
	make_loop "$DB" t_exact
	measure "$set" exact t_exact 0 "$NQ"
	SIZE[exact]="$(bench_val -d "$DB" -c "SELECT round(pg_indexes_size('t_exact') / 1048576.0, 1)")"
	BUILD[exact]="-"
	PEAK[exact]="-"

	if [[ "$EXT_OK" == 1 ]]; then
		# filter: one index over all rows, WHERE space_id filter
		bench_psql -d "$DB" -c "CREATE TABLE t_filter AS SELECT * FROM items" -c "VACUUM ANALYZE t_filter"
		((fnq < NQ)) && NOTE[filter]="only the first $fnq queries (a filtered scan over $S spaces is slow)"
		build_measure "$set" filter t_filter "embedding $OPC" \
			"SELECT round(pg_relation_size('t_filter_ann') / 1048576.0, 1)" "$fnq" "CREATE INDEX failed: %s"

		# partition: LIST-partitioned table, one index per partition
		if ((S <= MAXPART)); then
			bench_log "[$set] creating $S list partitions"
			{
				echo "SET client_min_messages = warning;"
				echo "CREATE TABLE t_part (id int, space_id int NOT NULL, embedding real[]) PARTITION BY LIST (space_id);"
				for ((s = 0; s < S; s++)); do
					echo "CREATE TABLE t_part_$s PARTITION OF t_part FOR VALUES IN ($s);"
					echo "ALTER TABLE t_part_$s ALTER COLUMN embedding SET STORAGE $BENCH_STORAGE;"
				done
				echo "INSERT INTO t_part SELECT * FROM items;"
				echo "VACUUM ANALYZE t_part;"
			} | bench_psql -d "$DB" >/dev/null
			build_measure "$set" partition t_part "embedding $OPC" \
				"SELECT round(sum(pg_relation_size(indexrelid)) / 1048576.0, 1) FROM pg_index WHERE indrelid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = 't_part'::regclass)" \
				"$NQ" "CREATE INDEX failed: %s"
		else
			NOTE[partition]="skipped: $S partitions is more than SPACES_MAX_PARTITIONS=$MAXPART"
		fi

		# spacecol: one index on (space_id, embedding)
		bench_psql -d "$DB" -c "CREATE TABLE t_spacecol AS SELECT * FROM items" -c "VACUUM ANALYZE t_spacecol"
		build_measure "$set" spacecol t_spacecol "space_id, embedding $OPC" \
			"SELECT round(pg_relation_size('t_spacecol_ann') / 1048576.0, 1)" "$NQ" \
			"not measured: CREATE INDEX ... (space_id, embedding) is not accepted yet (%s)"
	fi

	# writes
	for v in "${VARS[@]}"; do
		case "$v" in
		exact) writes "$set" exact t_exact ;;
		filter) writes "$set" filter t_filter ;;
		partition) writes "$set" partition t_part ;;
		spacecol) writes "$set" spacecol t_spacecol ;;
		esac
	done

	{
		echo "## $set: $N rows, $S spaces of $((N / S)), $DS_DIM dims, $NQ (space, query) pairs"
		echo
		echo "| variant | build s | peak MB | index MB | ef_search | recall@10 | rows returned / query | QPS |"
		echo "|---|---|---|---|---|---|---|---|"
		for v in exact filter partition spacecol; do
			if [[ " ${VARS[*]} " != *" $v "* ]]; then
				echo "| $v | - | - | - | - | - | - | ${NOTE[$v]:-not run (engram_hnsw unavailable)} |"
				continue
			fi
			efl="$EFS"
			[[ "$v" == exact ]] && efl=0
			for ef in $efl; do
				local_ef="$ef"
				[[ "$ef" == 0 ]] && local_ef="exact"
				echo "| $v | $(bench_fmt "${BUILD[$v]}" 2) | ${PEAK[$v]} | ${SIZE[$v]} | $local_ef | ${RESULT[$v.$ef]:-- | - | -} |"
			done
		done
		for v in "${!NOTE[@]}"; do
			[[ " ${VARS[*]} " == *" $v "* ]] && echo && echo "Note ($v): ${NOTE[$v]}."
		done
		echo
		echo "INSERT with pgbench -c 8 (single rows, -T $WSECS, median of $BENCH_RUNS), each client in its own space vs all in space 0:"
		echo
		echo "| variant | own spaces rows/s | one space rows/s | own / one |"
		echo "|---|---|---|---|"
		for v in "${VARS[@]}"; do
			echo "| $v | $(bench_fmt "${W[$v.own]}") | $(bench_fmt "${W[$v.one]}") | $(bench_ratio "${W[$v.own]}" "${W[$v.one]}") |"
		done
		echo
	} >>"$REPORT"
	bench_psql -c "DROP DATABASE $DB" || true
	unset RESULT BUILD SIZE PEAK W NOTE
done

{
	bench_md_header "Memory spaces: per-space search"
	echo "Query: \`SELECT id FROM T WHERE space_id = \$s ORDER BY embedding <-> \$q LIMIT $K\` in a PL/pgSQL"
	echo "loop (QPS: median of $BENCH_RUNS passes). Variants: *exact* = btree on space_id, no vector index;"
	echo "*filter* = one engram_hnsw index on embedding + the WHERE filter; *partition* = LIST-partitioned"
	echo "table, one partition and one engram_hnsw index per space; *spacecol* = one engram_hnsw index on"
	echo "(space_id, embedding). Recall@10 against exact per-space ground truth; *rows returned* < $K means"
	echo "the scan gave up early. Index: WITH ($WITH). Build: median of the runs; peak MB as in build.md."
	echo "Spaces share a global mixture (bench/tools/gen.c: gen spaces), so a query's global"
	echo "neighbours mostly lie in other spaces."
	echo
	echo "<!-- summary -->"
	cat "$REPORT"
	echo "<!-- /summary -->"
	echo "## Cluster"
	echo
	bench_settings_md
	echo
	echo "Raw figures: spaces.tsv."
} >"$RESULT_MD"
cat "$RESULT_MD"
bench_log "wrote $RESULT_MD in $(bench_since "$BENCH_T0") s"
