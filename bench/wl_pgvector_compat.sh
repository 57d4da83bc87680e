#!/usr/bin/env bash
#
# bench/wl_pgvector_compat.sh: a pgvector table indexed as it is.  One table
# with a pgvector `vector(n)` column gets, per metric, pgvector's own hnsw
# index and an engram_hnsw expression index on `embedding::real[]`:
#
#   CREATE INDEX ON items USING hnsw (embedding vector_l2_ops);
#   CREATE INDEX ON items USING engram_hnsw ((embedding::real[]) real_l2_ops);
#   ... ORDER BY embedding <-> $q LIMIT 10                      -- pgvector
#   ... ORDER BY embedding::real[] <-> $q::real[] LIMIT 10      -- engram_hnsw
#
# (likewise <=> with vector_cosine_ops / real_cosine_ops and <#> with
# vector_ip_ops / real_ip_ops).  For each: the plan (which index it uses),
# recall@10 against exact brute force, the overlap of the ids the two return,
# and queries/s of the PL/pgSQL loop of wl_search.sh (one backend, warm pass
# first), the two alternated, medians of BENCH_RUNS.
#
# pgvector is not part of this project: its source tarball is looked for in
# PGVECTOR_TARBALL, else ../shared/peers/pgvector-*.tar.gz next to the
# repository (or one level up); it is built into the suite's private server
# tree only.  Without it the script says so and exits without measuring.
# Writes bench/results/pgvector_compat.md.
#
# Knobs: COMPAT_SET (gauss128-10k, QUICK gauss128-2k), COMPAT_METRICS
#        ("l2 cosine ip"), COMPAT_NQ (1000, QUICK 200), COMPAT_EF ("20 40
#        100"), INDEX_M (16), INDEX_EFC (64), BENCH_RUNS.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bench_init pgvector_compat
SET="${COMPAT_SET:-$(bench_quick gauss128-2k gauss128-10k)}"
NQ="${COMPAT_NQ:-$(bench_quick 200 1000)}"
METRICS="${COMPAT_METRICS:-l2 cosine ip}"
EFS="${COMPAT_EF:-20 40 100}"
WITH="m = ${INDEX_M:-16}, ef_construction = ${INDEX_EFC:-64}"
DB=compat

bench_ext_prepare
[[ "$EXT_BUILT" == 1 ]] || bench_die "engram_hnsw did not build: $EXT_NOTE"
# pgvector into the same private tree (rebuilt with it)
if ! bench_pgvector_prepare; then
	bench_log "pgvector_compat: skipped: $PGVECTOR_NOTE"
	exit 0
fi
bench_cluster_start
bench_db_ext "$DB"
bench_psql -d "$DB" -c "CREATE EXTENSION vector"
PGVECTOR_SQL_VERSION="$(bench_val -d "$DB" -c "SELECT extversion FROM pg_extension WHERE extname = 'vector'")"

bench_dataset "$SET"
dims="$DS_DIM"
bench_log "loading $SET ($DS_N x $dims) as vector($dims)"
bench_psql -d "$DB" -c "CREATE TABLE stage (id int, embedding real[])" \
	-c "CREATE TABLE items (id int PRIMARY KEY, embedding vector($dims))" \
	-c "CREATE TABLE queries (id int PRIMARY KEY, embedding vector($dims))"
bench_copy_fvecs "$DB" stage "$DS_BASE"
bench_psql -d "$DB" -c "INSERT INTO items SELECT id, embedding FROM stage" -c "TRUNCATE stage"
bench_copy_fvecs "$DB" stage "$DS_QUERY" --limit "$NQ"
bench_psql -d "$DB" -c "INSERT INTO queries SELECT id, embedding FROM stage" -c "DROP TABLE stage" \
	-c "CREATE TABLE res (method text, metric text, ef int, qid int, ids int[])" \
	-c "VACUUM ANALYZE"

# order_by METHOD OP [QUERY]: the ORDER BY of each method, pgvector's
# operator on vector or ours on real[]; QUERY is the query vector (r.embedding)
order_by() {
	local method="$1" op="$2" q="${3:-r.embedding}"
	if [[ "$method" == pgvector ]]; then
		echo "i.embedding $op $q"
	else
		echo "i.embedding::real[] $op $q::real[]"
	fi
}

# loop_METHOD_METRIC(ef, nq, store): the wl_search.sh loop; QPS
make_loop() {
	local method="$1" metric="$2" op="$3" guc
	[[ "$method" == pgvector ]] && guc=hnsw.ef_search || guc=engram_hnsw.ef_search
	bench_qps_fn "loop_${method}_$metric" "p_ef int, p_nq int, p_store bool" "$guc=p_ef::text enable_seqscan='off'" \
		"$(bench_knn_loop queries items "$(order_by "$method" "$op")" "'$method', '$metric', p_ef, r.id, v")" |
		bench_psql -d "$DB"
}

: >"$OUT/plans.md"
: >"$OUT/rows.md"
: >"$OUT/builds.md"
for metric in $METRICS; do
	op="$(bench_operator "$metric")"
	bench_truth "$SET" "$metric" "$NQ"
	bench_psql -d "$DB" -c "DROP TABLE IF EXISTS truth" -c "CREATE TABLE truth (qid int PRIMARY KEY, ids int[], dists float8[])"
	"$BENCH_BIN/truth" dump "$DS_TRUTH" --nq "$NQ" | bench_psql -d "$DB" -c "COPY truth FROM STDIN"
	# both indexes, serial builds
	for method in pgvector engram; do
		if [[ "$method" == pgvector ]]; then
			ddl="CREATE INDEX p_$metric ON items USING hnsw (embedding vector_${metric}_ops) WITH ($WITH)"
		else
			ddl="CREATE INDEX e_$metric ON items USING engram_hnsw ((embedding::real[]) $(bench_opclass "$metric")) WITH ($WITH)"
		fi
		bench_log "[$metric] $ddl"
		t0="$(bench_now)"
		bench_psql -d "$DB" -c "SET max_parallel_maintenance_workers = 0" -c "$ddl"
		echo "| $metric | \`$ddl\` | $(bench_since "$t0") |" >>"$OUT/builds.md"
		make_loop "$method" "$metric" "$op"
	done
	bench_psql -d "$DB" -c "ANALYZE items"
	for method in pgvector engram; do
		plan="$(bench_val -d "$DB" -c "EXPLAIN (COSTS OFF) SELECT i.id FROM items i ORDER BY $(order_by "$method" "$op" "(SELECT embedding FROM queries WHERE id = 1)") LIMIT $K" |
			grep -o 'Index Scan using [a-z_0-9]* on items' || echo "no index scan")"
		echo "| $metric | \`ORDER BY $(order_by "$method" "$op" '$q' | sed 's/i\.//')\` | $plan |" >>"$OUT/plans.md"
	done
	# recall pass per ef (also the warm-up), then timed passes alternated.  A
	# first query loads the libraries: hnsw.ef_search set in a session before
	# pgvector's library is loaded did not apply to the queries that loaded it
	for ef in $EFS; do
		for method in pgvector engram; do
			bench_val -d "$DB" -c "SELECT loop_${method}_$metric($ef, 1, false)" \
				-c "SELECT loop_${method}_$metric($ef, $NQ, true)" >/dev/null
		done
	done
	for ((r = 0; r < BENCH_RUNS; r++)); do
		for ef in $EFS; do
			for method in pgvector engram; do
				bench_log "[$metric] run $((r + 1))/$BENCH_RUNS ef=$ef $method"
				bench_loop_record "$DB" "SELECT loop_${method}_$metric($ef, $NQ, false)" "$NQ" \
					"$OUT/qps.$metric.$ef.$method" "$OUT/cpu.$metric.$ef.$method"
			done
		done
	done
	for ef in $EFS; do
		rp="$(bench_val -d "$DB" -c "$(bench_recall_sql "$op" "(SELECT qid, ids FROM res WHERE method = 'pgvector' AND metric = '$metric' AND ef = $ef)")")"
		re="$(bench_val -d "$DB" -c "$(bench_recall_sql "$op" "(SELECT qid, ids FROM res WHERE method = 'engram' AND metric = '$metric' AND ef = $ef)")")"
		ov="$(bench_val -d "$DB" -c "SELECT round(avg((SELECT count(*) FROM unnest(p.ids) x WHERE x = ANY (e.ids)) / $K.0), 4)
			FROM res p JOIN res e USING (metric, ef, qid)
			WHERE p.method = 'pgvector' AND e.method = 'engram' AND metric = '$metric' AND ef = $ef")"
		same="$(bench_val -d "$DB" -c "SELECT round(avg((p.ids = e.ids)::int), 4)
			FROM res p JOIN res e USING (metric, ef, qid)
			WHERE p.method = 'pgvector' AND e.method = 'engram' AND metric = '$metric' AND ef = $ef")"
		qp="$(bench_median <"$OUT/qps.$metric.$ef.pgvector")"
		qe="$(bench_median <"$OUT/qps.$metric.$ef.engram")"
		cp="$(bench_median <"$OUT/cpu.$metric.$ef.pgvector")"
		ce="$(bench_median <"$OUT/cpu.$metric.$ef.engram")"
		echo "| $metric | $ef | $rp | $re | $ov | $same | $(bench_fmt "$qp") | $(bench_fmt "$qe") | $(bench_ratio "$qe" "$qp") | $(bench_fmt "$cp") | $(bench_fmt "$ce") | $(bench_ratio "$ce" "$cp") |" >>"$OUT/rows.md"
	done
	bench_psql -d "$DB" -c "DROP INDEX p_$metric, e_$metric"
done

{
	bench_md_header "pgvector's tables indexed by engram_hnsw"
	echo "pgvector $PGVECTOR_SQL_VERSION ($PGVECTOR_VERSION, built into the same private server tree)."
	echo "Data: $SET ($DS_N x $dims) in a \`vector($dims)\` column, $NQ queries (a \`vector($dims)\` table)."
	echo "Per metric, pgvector's hnsw index and an engram_hnsw expression index on \`embedding::real[]\`,"
	echo "both $WITH, serial builds, on the same table. Queries: \`SELECT id FROM items ORDER BY ... LIMIT $K\`"
	echo "in the PL/pgSQL loop of wl_search.sh (one backend, timed after a warm pass), ef_search set through"
	echo "\`hnsw.ef_search\` and \`engram_hnsw.ef_search\` alike, the two alternated, medians of $BENCH_RUNS runs."
	echo "*recall*: recall@10 against exact brute force (ties counted); *overlap*: the mean share of the ids"
	echo "pgvector returned that engram_hnsw returned too; *same*: queries with the same ids in the same order."
	echo "*CPU-QPS*: queries per CPU second of the backend (counted in 10 ms ticks: with runs of a tenth"
	echo "of a second, single CPU figures are coarse, about 10 %)."
	echo
	echo "## Plans"
	echo
	echo "| metric | query | plan |"
	echo "|---|---|---|"
	cat "$OUT/plans.md"
	echo
	echo "## Recall, overlap, queries/s"
	echo
	echo "| metric | ef_search | recall pgvector | recall engram_hnsw | overlap | same | QPS pgvector | QPS engram_hnsw | ratio | CPU-QPS pgvector | CPU-QPS engram_hnsw | CPU ratio |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
	cat "$OUT/rows.md"
	echo
	echo "## Builds (single runs)"
	echo
	echo "| metric | statement | seconds |"
	echo "|---|---|---|"
	cat "$OUT/builds.md"
	echo
	echo "## Cluster"
	echo
	bench_settings_md | grep -v 'embedding storage'
	echo
	echo "\`uptime\` at the end: $(uptime)"
} >"$RESULT_MD"
cat "$RESULT_MD"
bench_log "wrote $RESULT_MD in $(bench_since "$BENCH_T0") s"
