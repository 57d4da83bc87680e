#!/usr/bin/env bash
#
# bench/wl_spaces_skew.sh: memory spaces of skewed (Zipf-like) sizes, the
# shape of a real multi-tenant table: a few spaces hold thousands of rows,
# most hold a handful (bench/tools/gen.c: gen spaces --zipf E).  Measured
# side by side on the same rows, in one cluster:
#   1. per-space search  SELECT id FROM T WHERE space_id = $s
#                        ORDER BY embedding <-> $q LIMIT 10
#      for exact (btree on space_id + sort), filter (one engram_hnsw index
#      on embedding + the WHERE; few queries, it is slow) and spacecol (one
#      engram_hnsw index on (space_id, embedding)): build time and peak
#      memory, index size, recall@10, rows returned per query (must be
#      min(10, space size)), QPS, for two query mixes (spaces drawn by rows,
#      in proportion to their sizes, and uniformly over spaces), and by size
#      class of the queried space (tiny <= 10 rows, small 11..1000, large
#      > 1000; both mixes pooled);
#   2. space_id = ANY(list) ORDER BY embedding <-> $q LIMIT 10 for lists of
#      1, 10, 100, 1000 spaces (the query's own space plus others drawn
#      uniformly), spacecol against exact, recall@10 against exact;
#   3. dropping a tenant: DELETE FROM T WHERE space_id = k for the largest
#      space and a 5-row space, then VACUUM (for the 5-row space the default
#      VACUUM, which skips index vacuuming for so few dead rows, then
#      VACUUM (INDEX_CLEANUP ON)), timed on the table with the
#      btree and the space index against the same table with the btree
#      only, on the main set and on a second set of half the rows (does the
#      index's share grow with the index or with the space?); afterwards an
#      index scan of the dropped spaces must return nothing, a row inserted
#      into them must be found, engram_hnsw_check must see every live row.
# Query times are per query (clock_timestamp around each SELECT in a
# PL/pgSQL loop); QPS = queries / their summed time, median of the timed runs,
# each run after a warm-up pass in the same backend.
#
# Knobs: SKEW_SET (zipf128-200k-20k-e0.9; the full shape is
#        zipf128-1m-100k-e0.9), SKEW_HALF (the VACUUM comparison's smaller
#        set, zipf128-100k-10k-e0.9; empty: skip), SKEW_NQ (queries per mix,
#        <= 500, default 500), SKEW_FILTER_NQ (per mix for filter, 25),
#        SKEW_EF (40), SKEW_ANY ("1 10 100 1000"), SKEW_ANY_NQ (50),
#        SKEW_VAC_RUNS (3), SKEW_TIMEOUT (statement_timeout of one loop,
#        600s), SKEW_VARIANTS ("exact spacecol filter"; exact and spacecol
#        always run), BENCH_RUNS (timed runs of exact and spacecol; filter runs
#        once after its recall pass), INDEX_M, INDEX_EFC.
# Writes bench/results/spaces_skew.md and spaces_skew.tsv.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init spaces_skew

SET="${SKEW_SET:-$(bench_quick zipf128-20k-2k-e0.9 zipf128-200k-20k-e0.9)}"
HALF="${SKEW_HALF-$(bench_quick zipf128-10k-1k-e0.9 zipf128-100k-10k-e0.9)}"
NQ="${SKEW_NQ:-$(bench_quick 100 500)}"
FNQ="${SKEW_FILTER_NQ:-25}"
EF="${SKEW_EF:-40}"
ANYL="${SKEW_ANY:-1 10 100 1000}"
ANYNQ="${SKEW_ANY_NQ:-50}"
VRUNS="${SKEW_VAC_RUNS:-3}"
TIMEOUT="${SKEW_TIMEOUT:-600s}"
VARIANTS="${SKEW_VARIANTS:-exact spacecol filter}"
OPC=real_l2_ops
printf 'set\tvariant\tmeasure\tkey\trun\tvalue\n' >"$TSV"
tsv() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$TSV"; }
med() { awk -F'\t' -v s="$1" -v v="$2" -v m="$3" -v k="$4" \
	'$1 == s && $2 == v && $3 == m && $4 == k && $6 != "nan" { print $6 }' "$TSV" | bench_median; }

bench_start
bench_wal_warmup

# copy_table DB NAME: NAME(id, space_id, embedding) with items' rows and
# column storage
copy_table() {
	bench_psql -d "$1" -c "SET client_min_messages = warning" -c "DROP TABLE IF EXISTS $2" \
		-c "CREATE TABLE $2 (LIKE items INCLUDING STORAGE)" \
		-c "INSERT INTO $2 SELECT * FROM items ORDER BY id" -c "VACUUM ANALYZE $2"
}

# load DB SET: the rows, 2 x NQ queries (by rows, then by spaces), truth,
# sizes(space_id, n) and qmeta(qid, mix, class)
load() {
	local db="$1" set="$2"
	bench_load_set "$db" "$set" l2 1000
	bench_ext_check "$db"
	[[ "$EXT_OK" == 1 ]] || bench_die "engram_hnsw is not usable: $EXT_NOTE"
	bench_psql -d "$db" -c "SET client_min_messages = warning" \
		-c "CREATE TABLE sizes AS SELECT space_id, count(*) AS n FROM items GROUP BY space_id" \
		-c "CREATE UNIQUE INDEX ON sizes (space_id)" \
		-c "CREATE TABLE qmeta AS SELECT q.id AS qid, CASE WHEN q.id < 500 THEN 'rows' ELSE 'spaces' END AS mix,
			s.n, CASE WHEN s.n <= 10 THEN 'tiny' WHEN s.n <= 1000 THEN 'small' ELSE 'large' END AS class
			FROM queries q JOIN sizes s USING (space_id)
			WHERE q.id < $NQ OR q.id >= 500 AND q.id < 500 + $NQ" \
		-c "CREATE TABLE res (variant text, run int, qid int, us float8, ids int[])"
}

# make_loop DB TABLE: loop_TABLE(variant, run, ef, nq per mix): one row of
# res per query (ids only in run 0, the recall pass)
make_loop() {
	bench_psql -d "$1" <<SQL
CREATE OR REPLACE FUNCTION loop_$2(p_variant text, p_run int, p_ef int, p_nq int) RETURNS void
LANGUAGE plpgsql AS \$f\$
DECLARE r record; v int[]; t0 timestamptz; t1 timestamptz;
BEGIN
	IF p_ef > 0 THEN
		PERFORM set_config('engram_hnsw.ef_search', p_ef::text, true);
		PERFORM set_config('enable_seqscan', 'off', true);
		PERFORM set_config('enable_bitmapscan', 'off', true);
	END IF;
	FOR r IN SELECT id, space_id, embedding FROM queries
		WHERE id < p_nq OR id >= 500 AND id < 500 + p_nq ORDER BY id LOOP
		t0 := clock_timestamp();
		SELECT array_agg(s.id) INTO v FROM (SELECT i.id FROM $2 i WHERE i.space_id = r.space_id
			ORDER BY i.embedding <-> r.embedding LIMIT $K) s;
		t1 := clock_timestamp();
		INSERT INTO res VALUES (p_variant, p_run, r.id, extract(epoch FROM t1 - t0) * 1e6,
			CASE WHEN p_run = 0 THEN coalesce(v, '{}') END);
	END LOOP;
END \$f\$;
SQL
}

# build DB VARIANT CREATE-SQL SIZE-SQL: one timed CREATE INDEX with its peak memory
build() {
	local db="$1" var="$2" t0
	bench_psql -d "$db" -c "CHECKPOINT"
	bench_rss_start
	t0="$(bench_now)"
	bench_psql -d "$db" -c "$3"
	tsv "$SET" "$var" build_s - 1 "$(bench_since "$t0")"
	bench_rss_stop
	tsv "$SET" "$var" build_peak_mb - 1 "$RSS_PEAK_MB"
	tsv "$SET" "$var" index_mb - 0 "$(bench_val -d "$db" -c "$4")"
	bench_log "[$SET] build $var: $(med "$SET" "$var" build_s -) s"
}

# search DB VARIANT TABLE EF NQ RUNS: recall pass (run 0) + RUNS timed runs
search() {
	local db="$1" var="$2" table="$3" ef="$4" nq="$5" runs="$6" r warm
	make_loop "$db" "$table"
	for ((r = 0; r <= runs; r++)); do
		bench_log "[$SET] $var run $r: $((2 * nq)) queries"
		# a timed run follows a warm-up pass in the same backend (a new
		# backend faults in every shared buffer it touches), but for filter
		# (slow: one run, warm enough after its first queries)
		warm=()
		((r > 0)) && [[ "$var" != filter ]] && warm=(-c "SELECT loop_$table('$var', -1, $ef, $nq)")
		bench_psql -d "$db" -c "SET statement_timeout = '$TIMEOUT'" "${warm[@]}" \
			-c "SELECT loop_$table('$var', $r, $ef, $nq)" -c "DELETE FROM res WHERE run = -1" >/dev/null
	done
}

# summarise DB VARIANT GROUPCOL: per group (mix or class) recall, rows check,
# median QPS of the timed runs (run 0 too when it is the only one)
summarise() {
	local db="$1" var="$2" col="$3" g rec rows bad q
	local minrun
	minrun="$(bench_val -d "$db" -c "SELECT CASE WHEN max(run) = 0 THEN 0 ELSE 1 END FROM res WHERE variant = '$var'")"
	for g in $(bench_val -d "$db" -c "SELECT DISTINCT $col FROM qmeta m JOIN res r USING (qid) WHERE r.variant = '$var' ORDER BY 1"); do
		rec="$(bench_val -d "$db" -c "$(bench_recall_sql '<->' "(SELECT r.qid, r.ids FROM res r JOIN qmeta m USING (qid) WHERE r.variant = '$var' AND r.run = 0 AND m.$col = '$g')")")"
		read -r rows bad < <(bench_val -F ' ' -d "$db" -c "SELECT round(avg(cardinality(r.ids)), 2),
			count(*) FILTER (WHERE cardinality(r.ids) <> least($K, m.n))
			FROM res r JOIN qmeta m USING (qid) WHERE r.variant = '$var' AND r.run = 0 AND m.$col = '$g'")
		tsv "$SET" "$var" "recall_$col" "$g" 0 "$rec"
		tsv "$SET" "$var" "rows_$col" "$g" 0 "$rows"
		tsv "$SET" "$var" "rows_wrong_$col" "$g" 0 "$bad"
		bench_val -d "$db" -c "SELECT r.run, count(*) / (sum(r.us) / 1e6), count(*) FROM res r JOIN qmeta m USING (qid)
			WHERE r.variant = '$var' AND r.run >= $minrun AND m.$col = '$g' GROUP BY r.run ORDER BY r.run" |
			while IFS='|' read -r run q n; do
				tsv "$SET" "$var" "qps_$col" "$g" "$run" "$q"
				tsv "$SET" "$var" "n_$col" "$g" "$run" "$n"
			done
	done
}

# ---------------------------------------------------------------- 1. search
DB=skew
load "$DB" "$SET"
N="$DS_N"
S="$(bench_val -d "$DB" -c "SELECT count(*) FROM sizes")"
SHAPE="$(bench_val -d "$DB" -c "SELECT 'largest ' || max(n) || ' rows (' || round(100.0 * max(n) / sum(n), 1) || ' %), median '
	|| percentile_disc(0.5) WITHIN GROUP (ORDER BY n) || ', smallest ' || min(n) || '; spaces tiny / small / large: '
	|| count(*) FILTER (WHERE n <= 10) || ' / ' || count(*) FILTER (WHERE n > 10 AND n <= 1000) || ' / '
	|| count(*) FILTER (WHERE n > 1000) || ', their rows ' || round(100.0 * sum(n) FILTER (WHERE n <= 10) / sum(n))
	|| ' / ' || round(100.0 * sum(n) FILTER (WHERE n > 10 AND n <= 1000) / sum(n)) || ' / '
	|| round(100.0 * sum(n) FILTER (WHERE n > 1000) / sum(n)) || ' %' FROM sizes")"
bench_log "[$SET] $N rows, $S spaces: $SHAPE"

copy_table "$DB" t_exact
bench_psql -d "$DB" -c "CREATE INDEX t_exact_sp ON t_exact (space_id)" -c "VACUUM ANALYZE t_exact"
tsv "$SET" exact index_mb - 0 "$(bench_val -d "$DB" -c "SELECT round(pg_relation_size('t_exact_sp') / 1048576.0, 1)")"
search "$DB" exact t_exact 0 "$NQ" "$BENCH_RUNS"

copy_table "$DB" t_spacecol
build "$DB" spacecol "CREATE INDEX t_spacecol_ann ON t_spacecol USING engram_hnsw (space_id, embedding $OPC) WITH ($WITH)" \
	"SELECT round(pg_relation_size('t_spacecol_ann') / 1048576.0, 1)"
search "$DB" spacecol t_spacecol "$EF" "$NQ" "$BENCH_RUNS"

if [[ " $VARIANTS " == *" filter "* ]]; then
	copy_table "$DB" t_filter
	build "$DB" filter "CREATE INDEX t_filter_ann ON t_filter USING engram_hnsw (embedding $OPC) WITH ($WITH)" \
		"SELECT round(pg_relation_size('t_filter_ann') / 1048576.0, 1)"
	search "$DB" filter t_filter "$EF" "$((FNQ < NQ ? FNQ : NQ))" 1
	bench_psql -d "$DB" -c "DROP TABLE t_filter"
fi
STORAGE="$(bench_val -d "$DB" -c "SELECT string_agg(DISTINCT c.relname || ':' || a.attstorage::text, ' ') FROM pg_attribute a
	JOIN pg_class c ON c.oid = a.attrelid WHERE a.attname = 'embedding' AND c.relname IN ('items', 't_exact', 't_spacecol')")"

for v in exact spacecol filter; do
	summarise "$DB" "$v" mix
	summarise "$DB" "$v" class
done

# ---------------------------------------------------------------- 2. = ANY
bench_log "[$SET] = ANY: lists of $ANYL spaces, $ANYNQ queries each"
bench_psql -d "$DB" -c "SELECT setseed(0.42)" -c "CREATE TABLE anyq AS
	SELECT l.l, q.id AS qid, q.embedding, q.space_id || ARRAY(SELECT s.space_id FROM sizes s
		WHERE s.space_id <> q.space_id ORDER BY random() + 0 * q.id LIMIT l.l - 1) AS spaces
	FROM unnest('{${ANYL// /,}}'::int[]) l(l) CROSS JOIN
		(SELECT * FROM queries WHERE id < $ANYNQ) q" \
	-c "CREATE TABLE anyres (variant text, l int, run int, qid int, us float8, ids int[])"
for t in exact spacecol; do
	bench_psql -d "$DB" <<SQL
CREATE FUNCTION any_t_$t(p_variant text, p_run int, p_ef int) RETURNS void
LANGUAGE plpgsql AS \$f\$
DECLARE r record; v int[]; t0 timestamptz; t1 timestamptz;
BEGIN
	IF p_ef > 0 THEN
		PERFORM set_config('engram_hnsw.ef_search', p_ef::text, true);
		PERFORM set_config('enable_seqscan', 'off', true);
		PERFORM set_config('enable_bitmapscan', 'off', true);
	END IF;
	FOR r IN SELECT * FROM anyq ORDER BY l, qid LOOP
		t0 := clock_timestamp();
		SELECT array_agg(s.id) INTO v FROM (SELECT i.id FROM t_$t i WHERE i.space_id = ANY (r.spaces)
			ORDER BY i.embedding <-> r.embedding LIMIT $K) s;
		t1 := clock_timestamp();
		INSERT INTO anyres VALUES (p_variant, r.l, p_run, r.qid, extract(epoch FROM t1 - t0) * 1e6,
			CASE WHEN p_run = 0 THEN coalesce(v, '{}') END);
	END LOOP;
END \$f\$;
SQL
done
bench_psql -d "$DB" -c "SET engram_hnsw.ef_search = $EF" -c "SET enable_seqscan = off" -c "SET enable_bitmapscan = off" \
	-c "EXPLAIN (COSTS OFF) SELECT id FROM t_spacecol WHERE space_id = ANY ('{1,2,3}') ORDER BY embedding <-> (SELECT embedding FROM queries LIMIT 1) LIMIT 10" \
	>"$OUT/any_plan.txt"
PLAN_EXACT="$(bench_val -d "$DB" -c "EXPLAIN (COSTS OFF) SELECT id FROM t_exact WHERE space_id = (SELECT space_id FROM sizes ORDER BY n DESC LIMIT 1)
	ORDER BY embedding <-> (SELECT embedding FROM queries LIMIT 1) LIMIT 10" | grep -o -E '(Seq|Index|Bitmap Heap|Bitmap Index) Scan[a-z ]* on [a-z_]+' | paste -sd, -)"
PLAN_EXACT_ANY="$(bench_val -d "$DB" -c "EXPLAIN (COSTS OFF) SELECT id FROM t_exact WHERE space_id = ANY ((SELECT spaces FROM anyq ORDER BY l DESC LIMIT 1)::int[])
	ORDER BY embedding <-> (SELECT embedding FROM queries LIMIT 1) LIMIT 10" | grep -o -E '(Seq|Index|Bitmap Heap|Bitmap Index) Scan[a-z ]* on [a-z_]+' | paste -sd, -)"
for ((r = 0; r <= BENCH_RUNS; r++)); do
	bench_log "[$SET] = ANY run $r"
	# each timed run after a warm-up pass in the same backend, as in search()
	for v in exact spacecol; do
		e=0
		[[ "$v" == spacecol ]] && e="$EF"
		bench_psql -d "$DB" -c "SET statement_timeout = '$TIMEOUT'" -c "SELECT any_t_$v('$v', -1, $e)" \
			-c "SELECT any_t_$v('$v', $r, $e)" -c "DELETE FROM anyres WHERE run = -1" >/dev/null
	done
done
for l in $ANYL; do
	for v in exact spacecol; do
		bench_val -d "$DB" -c "SELECT run, count(*) / (sum(us) / 1e6) FROM anyres WHERE variant = '$v' AND l = $l AND run >= 1 GROUP BY run" |
			while IFS='|' read -r run q; do tsv "$SET" "$v" any_qps "$l" "$run" "$q"; done
	done
	# recall against exact (brute force over the union of the listed spaces)
	tsv "$SET" spacecol any_recall "$l" 0 "$(bench_val -d "$DB" -c "SELECT round(avg(
		(SELECT count(*) FROM unnest(s.ids) x WHERE x = ANY (e.ids))::numeric / greatest(cardinality(e.ids), 1)), 4)
		FROM anyres s JOIN anyres e USING (l, run, qid) WHERE s.variant = 'spacecol' AND e.variant = 'exact'
		AND s.run = 0 AND s.l = $l")"
	tsv "$SET" spacecol any_rows "$l" 0 "$(bench_val -d "$DB" -c "SELECT round(avg(cardinality(ids)), 2) FROM anyres
		WHERE variant = 'spacecol' AND run = 0 AND l = $l")"
	tsv "$SET" - any_union_rows "$l" 0 "$(bench_val -d "$DB" -c "SELECT round(avg((SELECT sum(n) FROM sizes
		WHERE space_id = ANY (a.spaces)))) FROM anyq a WHERE l = $l")"
done

# ---------------------------------------------------------------- 3. drop a tenant
# vacuum_drop DB SETNAME: on t_exact (btree) and t_spacecol (btree + space
# index), VRUNS times: re-insert the dropped spaces' rows (runs after the
# first), DELETE the largest space, VACUUM (timed), DELETE a 5-row space,
# VACUUM (timed); then the checks
vacuum_drop() {
	local db="$1" set="$2" big small r t k t0 what opt
	big="$(bench_val -d "$db" -c "SELECT space_id FROM sizes ORDER BY n DESC, space_id LIMIT 1")"
	small="$(bench_val -d "$db" -c "SELECT coalesce(min(space_id) FILTER (WHERE n = 5), min(space_id)) FROM sizes")"
	tsv "$set" - drop_spaces "$big:$small" 0 "$(bench_val -d "$db" -c "SELECT string_agg(n::text, ':' ORDER BY n DESC) FROM sizes WHERE space_id IN ($big, $small)")"
	bench_psql -d "$db" -c "CREATE INDEX t_spacecol_sp ON t_spacecol (space_id)" -c "VACUUM ANALYZE t_spacecol"
	tsv "$set" spacecol index_mb_vac - 0 "$(bench_val -d "$db" -c "SELECT round(pg_relation_size('t_spacecol_ann') / 1048576.0, 1)")"
	for ((r = 1; r <= VRUNS; r++)); do
		for t in t_exact t_spacecol; do
			if ((r > 1)); then
				bench_psql -d "$db" -c "INSERT INTO $t SELECT * FROM items WHERE space_id IN ($big, $small) ORDER BY id" \
					-c "VACUUM $t"
			fi
			for what in none big small_default small; do
				case "$what" in
				none | small) k="" ;;
				big) k="$big" ;;
				small_default) k="$small" ;;
				esac
				opt=""
				[[ "$what" == small ]] && opt="(INDEX_CLEANUP ON)"
				[[ -n "$k" ]] && bench_psql -d "$db" -c "DELETE FROM $t WHERE space_id = $k"
				bench_psql -d "$db" -c "CHECKPOINT"
				t0="$(bench_now)"
				bench_psql -d "$db" -c "VACUUM $opt $t"
				tsv "$set" "$t" "vacuum_$what" - "$r" "$(bench_since "$t0")"
			done
		done
		bench_log "[$set] VACUUM run $r: $(awk -F'\t' -v s="$set" -v r="$r" '$1 == s && $5 == r && $3 ~ /^vacuum_/ { printf "%s %s %.2f s; ", $2, $3, $6 }' "$TSV")"
	done
	# checks: the dropped spaces are empty, a revived space finds its row
	tsv "$set" spacecol dropped_rows - 0 "$(bench_val -d "$db" -c "SET enable_seqscan = off" -c "SET enable_bitmapscan = off" \
		-c "SET enable_indexscan = on" -c "SET engram_hnsw.ef_search = $EF" \
		-c "SELECT count(*) FROM (SELECT id FROM t_spacecol WHERE space_id = $big ORDER BY embedding <-> (SELECT embedding FROM queries LIMIT 1) LIMIT 10) a" \
		-c "SELECT count(*) FROM (SELECT id FROM t_spacecol WHERE space_id = $small ORDER BY embedding <-> (SELECT embedding FROM queries LIMIT 1) LIMIT 10) a" |
		awk '{ s += $1 } END { print s + 0 }')"
	check "$db" "$set" check_after
	bench_psql -d "$db" -c "VACUUM t_spacecol"
	check "$db" "$set" check_after2
	bench_psql -d "$db" -c "INSERT INTO t_spacecol SELECT -1, $big, embedding FROM queries WHERE id = 1" \
		-c "INSERT INTO t_spacecol SELECT -2, $small, embedding FROM queries WHERE id = 2"
	tsv "$set" spacecol revived - 0 "$(bench_val -d "$db" -c "SET enable_seqscan = off" -c "SET enable_bitmapscan = off" \
		-c "SET engram_hnsw.ef_search = $EF" \
		-c "SELECT (SELECT array_agg(id) FROM (SELECT id FROM t_spacecol WHERE space_id = $big ORDER BY embedding <-> (SELECT embedding FROM queries WHERE id = 7) LIMIT 10) a)::text
			|| (SELECT array_agg(id) FROM (SELECT id FROM t_spacecol WHERE space_id = $small ORDER BY embedding <-> (SELECT embedding FROM queries WHERE id = 7) LIMIT 10) a)::text")"
	bench_psql -d "$db" -c "EXPLAIN (COSTS OFF) SELECT id FROM t_spacecol WHERE space_id = $big ORDER BY embedding <-> (SELECT embedding FROM queries WHERE id = 7) LIMIT 10" >"$OUT/drop_plan_$set.txt" || true
	check "$db" "$set" check
}

# check DB SET NAME: engram_hnsw_check of t_spacecol_ann against the live rows
check() {
	tsv "$2" spacecol "$3" - 0 "$(bench_val -d "$1" -c "SELECT 'heap_tids ' || c.heap_tids || ' / ' || (SELECT count(*) FROM t_spacecol)
		|| ' live rows, unreachable ' || c.unreachable || ', deleted_elements ' || c.deleted_elements || ', pending ' || c.pending
		FROM engram_hnsw_check('t_spacecol_ann') c" 2>&1 | tr '\n' ' ')"
}
vacuum_drop "$DB" "$SET"
bench_psql -c "DROP DATABASE $DB"

if [[ -n "$HALF" ]]; then
	SET_MAIN="$SET"
	SET="$HALF"
	DB=skewhalf
	load "$DB" "$HALF"
	copy_table "$DB" t_exact
	bench_psql -d "$DB" -c "CREATE INDEX t_exact_sp ON t_exact (space_id)" -c "VACUUM ANALYZE t_exact"
	copy_table "$DB" t_spacecol
	build "$DB" spacecol "CREATE INDEX t_spacecol_ann ON t_spacecol USING engram_hnsw (space_id, embedding $OPC) WITH ($WITH)" \
		"SELECT round(pg_relation_size('t_spacecol_ann') / 1048576.0, 1)"
	vacuum_drop "$DB" "$HALF"
	bench_psql -c "DROP DATABASE $DB"
	SET="$SET_MAIN"
fi

# ---------------------------------------------------------------- report
REPORT="$OUT/report.md"
val() { awk -F'\t' -v s="$1" -v v="$2" -v m="$3" -v k="$4" '$1 == s && $2 == v && $3 == m && $4 == k { x = $6 } END { print x }' "$TSV"; }
{
	echo "## $SET: $N rows, $S spaces, $DS_DIM dims, ef_search $EF"
	echo
	echo "Space sizes (gen spaces --zipf ${SET##*-e}): $SHAPE."
	echo
	echo "### Search by query mix"
	echo
	echo "$NQ queries per mix (filter: the first $((FNQ < NQ ? FNQ : NQ)) of each). *rows* = rows returned per query;"
	echo "*wrong* = queries returning other than min(10, space size) rows."
	echo
	echo "| variant | build s | peak MB | index MB | mix | recall@10 | rows | wrong | QPS | QPS / exact | QPS / filter |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|"
	for mix in rows spaces; do
		qe="$(med "$SET" exact qps_mix "$mix")"
		qf="$(med "$SET" filter qps_mix "$mix")"
		for v in exact filter spacecol; do
			q="$(med "$SET" "$v" qps_mix "$mix")"
			echo "| $v | $(bench_fmt "$(val "$SET" "$v" build_s -)" 1) | $(val "$SET" "$v" build_peak_mb -) | $(val "$SET" "$v" index_mb -) | by $mix | $(val "$SET" "$v" recall_mix "$mix") | $(val "$SET" "$v" rows_mix "$mix") | $(val "$SET" "$v" rows_wrong_mix "$mix") | $(bench_fmt "$q" 1) | $(bench_ratio "$q" "$qe") | $(bench_ratio "$q" "$qf") |"
		done
	done
	echo
	echo "### Search by size class of the queried space (both mixes pooled)"
	echo
	echo "| variant | class | queries | recall@10 | rows | wrong | QPS | QPS / exact |"
	echo "|---|---|---|---|---|---|---|---|"
	for c in tiny small large; do
		qe="$(med "$SET" exact qps_class "$c")"
		for v in exact filter spacecol; do
			q="$(med "$SET" "$v" qps_class "$c")"
			echo "| $v | $c | $(val "$SET" "$v" n_class "$c") | $(val "$SET" "$v" recall_class "$c") | $(val "$SET" "$v" rows_class "$c") | $(val "$SET" "$v" rows_wrong_class "$c") | $(bench_fmt "$q" 1) | $(bench_ratio "$q" "$qe") |"
		done
	done
	echo
	echo "### space_id = ANY (list of L spaces)"
	echo
	echo "\`WHERE space_id = ANY (\$1) ORDER BY embedding <-> \$2 LIMIT 10\`, $ANYNQ queries per L (the query's own space"
	echo "plus L - 1 others drawn uniformly over the spaces; every listed space is non-empty). Recall@10 of"
	echo "spacecol against exact (the exact top 10 over the union). *time x* = time per query / that at L = 1."
	echo
	echo "| L | rows in the union | exact QPS | spacecol QPS | spacecol / exact | spacecol recall@10 | spacecol rows | spacecol time x | exact time x |"
	echo "|---|---|---|---|---|---|---|---|---|"
	e1="$(med "$SET" exact any_qps 1)"
	s1="$(med "$SET" spacecol any_qps 1)"
	for l in $ANYL; do
		qe="$(med "$SET" exact any_qps "$l")"
		qs="$(med "$SET" spacecol any_qps "$l")"
		echo "| $l | $(val "$SET" - any_union_rows "$l") | $(bench_fmt "$qe" 1) | $(bench_fmt "$qs" 1) | $(bench_ratio "$qs" "$qe") | $(val "$SET" spacecol any_recall "$l") | $(val "$SET" spacecol any_rows "$l") | $(bench_ratio "$s1" "$qs") | $(bench_ratio "$e1" "$qe") |"
	done
	echo
	echo "Plans of exact: the largest space: $PLAN_EXACT; a list of 1000 spaces: $PLAN_EXACT_ANY."
	echo
	echo "Plan of spacecol with = ANY:"
	echo
	echo '```'
	cat "$OUT/any_plan.txt"
	echo '```'
	echo
	echo "### Dropping a tenant: DELETE FROM T WHERE space_id = k, then VACUUM"
	echo
	echo "*btree* = the table with a btree on space_id; *+ space index* = the same rows with the btree and the"
	echo "(space_id, embedding) engram_hnsw index. Seconds, median of $VRUNS runs (runs after the first re-insert"
	echo "the dropped rows first). *none* = VACUUM with nothing deleted; *big* = VACUUM after deleting the largest"
	echo "space; *small_default* = VACUUM after deleting a 5-row space (PostgreSQL skips index vacuuming when"
	echo "fewer than 2 % of the heap pages have dead items: only amvacuumcleanup runs, the dead TIDs stay in the"
	echo "indexes and the heap line pointers stay reserved); *small* = the VACUUM (INDEX_CLEANUP ON) that follows it"
	echo "and removes those TIDs. Share = (+ space index) - btree."
	echo
	echo "| set | rows | index MB | VACUUM after | space rows | btree s | + space index s | index's share s |"
	echo "|---|---|---|---|---|---|---|---|"
	for s in "$SET" $HALF; do
		dsz="$(awk -F'\t' -v s="$s" '$1 == s && $3 == "drop_spaces" { print $6 }' "$TSV")"
		[[ -n "$dsz" ]] || continue
		rows_s="$(bench_count "$(echo "$s" | cut -d- -f2)")"
		for what in none big small_default small; do
			case "$what" in
			none) sr="-" ;;
			big) sr="${dsz%%:*}" ;;
			small*) sr="${dsz##*:}" ;;
			esac
			b="$(med "$s" t_exact "vacuum_$what" -)"
			x="$(med "$s" t_spacecol "vacuum_$what" -)"
			echo "| $s | $rows_s | $(val "$s" spacecol index_mb_vac -) | $what | $sr | $(bench_fmt "$b" 2) | $(bench_fmt "$x" 2) | $(awk -v a="$x" -v b="$b" 'BEGIN { printf "%.2f", a - b }') |"
		done
	done
	echo
	echo "After the last VACUUM (index scans, enable_seqscan off):"
	echo
	echo "| set | rows returned in the dropped spaces | engram_hnsw_check after the last VACUUM | after one more VACUUM | revived spaces: ids found (row -1 in the large, -2 in the small) | engram_hnsw_check after the revival |"
	echo "|---|---|---|---|---|---|"
	for s in "$SET" $HALF; do
		echo "| $s | $(val "$s" spacecol dropped_rows -) | $(val "$s" spacecol check_after -) | $(val "$s" spacecol check_after2 -) | $(val "$s" spacecol revived -) | $(val "$s" spacecol check -) |"
	done
	echo
} >"$REPORT"

{
	bench_md_header "Memory spaces of skewed sizes (multi-tenant shapes)"
	echo "Rows in $S spaces of Zipf-like sizes (bench/tools/gen.c: gen spaces --zipf E; space of rank k gets"
	echo "about c / (k+1)^E rows, at least 1; rows shuffled so spaces interleave; spaces share a global"
	echo "mixture, so a query's global neighbours mostly lie in other spaces). Variants: *exact* = btree on"
	echo "space_id + exact sort; *filter* = one engram_hnsw index on embedding + the WHERE filter; *spacecol*"
	echo "= one engram_hnsw index on (space_id, embedding). Index: WITH ($WITH). Query mixes: *by rows* ="
	echo "the space of a random row (big tenants are queried more), *by spaces* = a space drawn uniformly."
	echo "Size classes: tiny <= 10 rows, small 11..1000, large > 1000. Per-query times (clock_timestamp"
	echo "around the SELECT in a PL/pgSQL loop); QPS = queries / summed time, median of $BENCH_RUNS timed runs"
	echo "after a recall pass for exact and spacecol, each run in a backend warmed by one untimed pass over"
	echo "the same queries; filter: the single timed run after the recall pass."
	echo "Builds: one run each. Embedding storage: $STORAGE (p = PLAIN)."
	echo
	cat "$REPORT"
	echo "## Cluster"
	echo
	bench_settings_md
	echo
	echo "Raw figures: spaces_skew.tsv."
} >"$RESULT_MD"
cat "$RESULT_MD"
bench_log "wrote $RESULT_MD in $(bench_since "$BENCH_T0") s"
