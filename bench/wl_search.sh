#!/usr/bin/env bash
#
# bench/wl_search.sh: search workload.  For each data set: recall@10 and
# queries/s for ef_search in a list, measured
#   - in one backend running the queries in a PL/pgSQL loop (no client
#     round trips),
#   - with pgbench, 1 and 2 clients, prepared statements, a custom script
#     picking a random query from the query table,
#   - and for hnswlib (same data, M, ef_construction; one thread),
# plus the exact sequential scan (the floor) and a trivial primary-key
# lookup in the same loop (the fixed per-query cost of the executor).
# Writes bench/results/search.md, search.tsv and search_<set>.png.
#
# Knobs: SEARCH_SETS ("fmnist:l2 gauss128-100k:l2 gauss1536n-100k:cosine
#        gauss128-100k:ip", QUICK "fmnist-10k:l2"; BENCH_BIG=1 adds
#        gauss128-1m:l2), SEARCH_NQ (1000, QUICK 200), SEARCH_EF
#        ("10 20 40 80 120 200 400", QUICK "10 40 100 400"), PGBENCH_SECS
#        (5, QUICK 2), EXACT_NQ (50, QUICK 10), INDEX_M (16), INDEX_EFC (64),
#        INDEX_OPTS (extra WITH options, e.g. "fastupdate = off"), BENCH_RUNS,
#        BENCH_MERGE=1 (keep the sections of the sets not run now from the
#        existing search.md, see lib.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init search

SETS="${SEARCH_SETS:-$(bench_quick fmnist-10k:l2 "fmnist:l2 gauss128-100k:l2 gauss1536n-100k:cosine gauss128-100k:ip")}"
NQ="${SEARCH_NQ:-$(bench_quick 200 1000)}"
EFS="${SEARCH_EF:-$(bench_quick "10 40 100 400" "10 20 40 80 120 200 400")}"
SECS="${PGBENCH_SECS:-$(bench_quick 2 5)}"
EXACT_NQ="${EXACT_NQ:-$(bench_quick 10 50)}"
[[ "${BENCH_BIG:-0}" == 1 ]] && SETS="$SETS gauss128-1m:l2"
# BENCH_MERGE=1: the sets (name:metric) of the previous report not run now are kept
# shellcheck disable=SC2016,SC2086 # an awk program; the sets, split
bench_merge_kept '/<!-- \/summary -->/ { on = 1 } on && /^## / && $2 ~ /,$/ { sub(/,$/, "", $2); print $2 ":" $3 }' $SETS
printf 'set\tmethod\tef\trecall\tqps\n' >"$TSV"
keptt=()
for t in "${KEPT[@]}"; do keptt+=("$(sed 's/-/_/g' <<<"${t%%:*}")_${t#*:}"); done
bench_merge_tsv "$OUT/old.tsv" "$TSV" 1 "${keptt[@]}"

bench_start

# PL/pgSQL loops, templated with the operator
make_functions() {
	local db="$1" op="$2" knn="i.embedding $2 r.embedding"
	{
		echo "SET client_min_messages = warning;"
		echo "DROP TABLE IF EXISTS res;"
		echo "CREATE TABLE res (ef int, qid int, ids int[]);"
		# ANN: the first p_nq queries, each an ORDER BY ... LIMIT K through the index
		bench_qps_fn bench_ann "p_ef int, p_nq int, p_store bool" \
			"engram_hnsw.ef_search=p_ef::text enable_seqscan='off'" \
			"$(bench_knn_loop queries items "$knn" "p_ef, r.id, v")"
		# exact: the same query with index scans off (sequential scan + top-N sort)
		bench_qps_fn bench_exact "p_nq int, p_store bool" "enable_indexscan='off' enable_bitmapscan='off'" \
			"$(bench_knn_loop queries items "$knn" "0, r.id, v")"
		# trivial: a primary-key lookup per query, the executor's fixed cost
		bench_qps_fn bench_trivial "p_nq int" "" "	FOR r IN SELECT id, embedding FROM queries ORDER BY id LIMIT p_nq LOOP
		SELECT array_agg(s.id) INTO v FROM (SELECT i.id FROM items i WHERE i.id = r.id) s;
	END LOOP;"
	} | bench_psql -d "$db"
}

# median over runs of a SQL expression returning QPS
median_sql() {
	local db="$1" sql="$2" r
	for ((r = 0; r < BENCH_RUNS; r++)); do
		bench_val -d "$db" -c "$sql"
	done | bench_median
}

# best QPS at recall >= threshold from "recall qps ef" lines
best_at() {
	awk -v t="$1" '$1 >= t && $2 > b { b = $2 } END { if (b) printf "%.0f", b; else print "-" }' "$2"
}

SUMMARY="$OUT/summary.md"
SECTIONS="$OUT/sections.md"
: >"$SUMMARY"
: >"$SECTIONS"
for t in "${KEPT[@]}"; do
	bench_md_section_kept "$OUT/old.md" "${t%%:*}, ${t#*:} (" >>"$SECTIONS"
	awk -F' [|] ' -v n="${t%%:*}" -v m="${t#*:}" '/<!-- summary -->/ { on = 1 } /<!-- \/summary -->/ { on = 0 }
		on { s = $1; sub(/^[|] /, "", s); sub(/ [(]earlier run[)]$/, "", s)
		     if (s == n && $2 == m) { if ($1 !~ /earlier run/) sub(/^[|] [^ ]+/, "& (earlier run)"); print } }' "$OUT/old.md" >>"$SUMMARY"
done

for spec in $SETS; do
	set_name="${spec%%:*}"
	metric="${spec#*:}"
	op="$(bench_operator "$metric")"
	tag="${set_name//-/_}_$metric"
	db="s_$tag"
	d="$OUT/$tag"
	mkdir -p "$d"
	bench_load_set "$db" "$set_name" "$metric" "$NQ"
	make_functions "$db" "$op"
	bench_ext_check "$db"

	# floors: exact scan, trivial lookup
	bench_log "[$tag] exact scan ($EXACT_NQ queries x $BENCH_RUNS runs)"
	exact_qps="$(median_sql "$db" "SELECT bench_exact($EXACT_NQ, false)")"
	bench_val -d "$db" -c "SELECT bench_exact(least($EXACT_NQ, 20), true)" >/dev/null
	exact_recall="$(bench_val -d "$db" -c "$(bench_recall_sql "$op" "(SELECT qid, ids FROM res WHERE ef = 0)")")"
	trivial_qps="$(median_sql "$db" "SELECT bench_trivial($NQ)")"
	printf '%s\texact\t0\t%s\t%s\n' "$tag" "$exact_recall" "$exact_qps" >>"$TSV"
	printf '%s\ttrivial\t0\t-\t%s\n' "$tag" "$trivial_qps" >>"$TSV"

	# hnswlib, same data and queries
	bench_log "[$tag] hnswlib (build + $BENCH_RUNS search runs per ef)"
	"$BENCH_BIN/hnswlib_bench" --base "$DS_BASE" --queries "$DS_QUERY" --truth "$DS_TRUTH" \
		--metric "$metric" --M "$M" --efc "$EFC" --threads 1 --ef "${EFS// /,}" --nq "$NQ" \
		--runs "$BENCH_RUNS" >"$d/hnswlib.tsv"
	awk -F'\t' '$1 == "search" { print $3, $4, $2 }' "$d/hnswlib.tsv" >"$d/hnswlib.dat"
	awk -F'\t' '$1 == "search" { print $3, $8, $2 }' "$d/hnswlib.tsv" >"$d/hnswlibcpu.dat"
	awk -F'\t' -v s="$tag" '$1 == "search" { printf "%s\thnswlib\t%s\t%s\t%s\n", s, $2, $3, $4 }' "$d/hnswlib.tsv" >>"$TSV"
	hnsw_build="$(awk -F'\t' '$1 == "build" { print $3 }' "$d/hnswlib.tsv")"

	build_s="-"
	index_mb="-"
	plan_note=""
	: >"$d/loop.dat"
	: >"$d/loopcpu.dat"
	: >"$d/loopcold.dat"
	: >"$d/pgb1.dat"
	: >"$d/pgb2.dat"
	if [[ "$EXT_OK" == 1 ]]; then
		bench_log "[$tag] CREATE INDEX USING engram_hnsw (embedding $(bench_opclass "$metric")) WITH ($WITH)"
		t0="$(bench_now)"
		if ! err="$(bench_psql -d "$db" -c "CREATE INDEX items_ann ON items USING engram_hnsw (embedding $(bench_opclass "$metric")) WITH ($WITH)" 2>&1)"; then
			EXT_OK=0
			EXT_NOTE="CREATE INDEX failed on $set_name: $(grep -m1 -E 'ERROR|server closed' <<<"$err")"
			bench_log "$EXT_NOTE"
		fi
		build_s="$(bench_since "$t0")"
	fi
	if [[ "$EXT_OK" == 1 ]]; then
		bench_psql -d "$db" -c "ANALYZE items"
		index_mb="$(bench_val -d "$db" -c "SELECT round(pg_relation_size('items_ann') / 1048576.0)")"
		cat >"$d/pgbench.sql" <<SQL
\\set qid random(0, $((NQ - 1)))
SELECT id FROM items ORDER BY embedding $op (SELECT embedding FROM queries WHERE id = :qid) LIMIT $K;
SQL
		# one ANN query from a new session must work, or the engram figures are meaningless
		if ! err="$(bench_psql -d "$db" -c "SET enable_seqscan = off" \
			-c "SELECT count(*) FROM (SELECT id FROM items ORDER BY embedding $op (SELECT embedding FROM queries WHERE id = 0) LIMIT $K) s" 2>&1)"; then
			EXT_OK=0
			EXT_NOTE="an index scan failed after CREATE INDEX on $set_name: $(grep -m1 ERROR <<<"$err")"
			bench_log "$EXT_NOTE"
		fi
	fi
	if [[ "$EXT_OK" == 1 ]]; then
		plan="$(bench_psql -d "$db" -c "EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY embedding $op (SELECT embedding FROM queries WHERE id = 1) LIMIT $K")"
		if ! grep -q 'Index Scan using items_ann' <<<"$plan"; then
			plan_note="the planner did not choose the index by itself for the pgbench query; enable_seqscan = off is set for all ANN runs"
		fi
		# recall (one pass per ef, also a warm-up)
		for ef in $EFS; do
			bench_val -d "$db" -c "SELECT bench_ann($ef, $NQ, true)" >/dev/null
		done
		# timed passes, interleaved
		for ((r = 0; r < BENCH_RUNS; r++)); do
			for ef in $EFS; do
				bench_log "[$tag] run $((r + 1))/$BENCH_RUNS ef=$ef"
				read -r q0 q c <<<"$(bench_loop_cpu "$db" "SELECT bench_ann($ef, $NQ, false)" warm)"
				echo "$ef $q0" >>"$d/loopcold.raw"
				echo "$ef $q" >>"$d/loop.raw"
				echo "$ef $(bench_per_cpu "$NQ" "$c")" >>"$d/loopcpu.raw"
				for c in 1 2; do
					echo "$ef $(PGOPTIONS="-c engram_hnsw.ef_search=$ef -c enable_seqscan=off" \
						bench_pgbench_tps "$d/pgbench.sql" "$c" "$SECS" -d "$db")" >>"$d/pgb$c.raw"
				done
			done
		done
		for ef in $EFS; do
			rec="$(bench_val -d "$db" -c "$(bench_recall_sql "$op" "(SELECT qid, ids FROM res WHERE ef = $ef)")")"
			echo "$ef $rec" >>"$d/recall.raw"
			for m in loop loopcpu loopcold pgb1 pgb2; do
				q="$(awk -v e="$ef" '$1 == e { print $2 }' "$d/$m.raw" | bench_median)"
				echo "$rec $q $ef" >>"$d/$m.dat"
				printf '%s\t%s\t%s\t%s\t%s\n' "$tag" "engram_hnsw_$m" "$ef" "$rec" "$q" >>"$TSV"
			done
		done
	fi

	# plot
	title="$set_name, $DS_N x $DS_DIM, $metric, M=$M efc=$EFC, $NQ queries"
	bench_plot_recall_qps "$BENCH_RESULTS/search_$tag.png" "$title" "$exact_qps" -- \
		"engram_hnsw, PL/pgSQL loop (1 backend, warm)" "$d/loop.dat" \
		"engram_hnsw, loop, first pass in a new backend" "$d/loopcold.dat" \
		"engram_hnsw, pgbench -c 1" "$d/pgb1.dat" \
		"engram_hnsw, pgbench -c 2" "$d/pgb2.dat" \
		"hnswlib (1 thread, in-process)" "$d/hnswlib.dat"

	# section of the report
	{
		echo "## $set_name, $metric ($DS_N x $DS_DIM, $NQ queries)"
		echo
		echo "Index: m=$M, ef_construction=$EFC${INDEX_OPTS:+, $INDEX_OPTS}; build ${build_s} s (single run, see build.md for medians), size ${index_mb} MB."
		echo "hnswlib build ${hnsw_build:-?} s (1 thread)."
		[[ -n "$plan_note" ]] && echo "Note: $plan_note."
		echo
		echo "| ef_search | recall@10 | QPS loop | QPS loop, new backend | QPS pgbench -c1 | QPS pgbench -c2 | hnswlib recall@10 | hnswlib QPS | loop / hnswlib | CPU-QPS loop | CPU-QPS hnswlib | CPU ratio |"
		echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
		for ef in $EFS; do
			rec="$(awk -v e="$ef" '$3 == e { print $1 }' "$d/loop.dat")"
			ql="$(awk -v e="$ef" '$3 == e { print $2 }' "$d/loop.dat")"
			qc="$(awk -v e="$ef" '$3 == e { print $2 }' "$d/loopcold.dat")"
			q1="$(awk -v e="$ef" '$3 == e { print $2 }' "$d/pgb1.dat")"
			q2="$(awk -v e="$ef" '$3 == e { print $2 }' "$d/pgb2.dat")"
			hr="$(awk -v e="$ef" '$3 == e { print $1 }' "$d/hnswlib.dat")"
			hq="$(awk -v e="$ef" '$3 == e { print $2 }' "$d/hnswlib.dat")"
			cl="$(awk -v e="$ef" '$3 == e { print $2 }' "$d/loopcpu.dat")"
			ch="$(awk -v e="$ef" '$3 == e { print $2 }' "$d/hnswlibcpu.dat")"
			echo "| $ef | ${rec:--} | $(bench_fmt "$ql") | $(bench_fmt "$qc") | $(bench_fmt "$q1") | $(bench_fmt "$q2") | ${hr:--} | $(bench_fmt "$hq") | $(bench_ratio "$ql" "$hq") | $(bench_fmt "$cl") | $(bench_fmt "$ch") | $(bench_ratio "$cl" "$ch") |"
		done
		echo
		echo "Exact scan (sequential scan + top-$K sort, $EXACT_NQ queries): $(bench_fmt "$exact_qps" 1) QPS, recall $exact_recall."
		echo "Trivial primary-key lookup in the same loop: $(bench_fmt "$trivial_qps") QPS (fixed per-query cost $(awk -v q="$trivial_qps" 'BEGIN { if (q > 0) printf "%.1f", 1e6 / q; else print "-" }') us)."
		echo
		echo "Best QPS at equal recall (PL/pgSQL loop vs hnswlib):"
		echo
		echo "| recall >= | engram_hnsw loop | hnswlib | ratio | CPU-QPS loop | CPU-QPS hnswlib | CPU ratio |"
		echo "|---|---|---|---|---|---|---|"
		for t in 0.90 0.95 0.97 0.99; do
			a="$(best_at "$t" "$d/loop.dat")"
			b="$(best_at "$t" "$d/hnswlib.dat")"
			ca="$(best_at "$t" "$d/loopcpu.dat")"
			cb="$(best_at "$t" "$d/hnswlibcpu.dat")"
			echo "| $t | $a | $b | $(bench_ratio "$a" "$b") | $ca | $cb | $(bench_ratio "$ca" "$cb") |"
		done
		echo
		echo "![recall vs QPS: $tag](search_$tag.png)"
		echo
	} >>"$SECTIONS"
	a="$(best_at 0.97 "$d/loop.dat")"
	b="$(best_at 0.97 "$d/hnswlib.dat")"
	ca="$(best_at 0.97 "$d/loopcpu.dat")"
	cb="$(best_at 0.97 "$d/hnswlibcpu.dat")"
	echo "| $set_name | $metric | $(bench_fmt "$exact_qps" 1) | $a | $b | $(bench_ratio "$a" "$b") | $(bench_ratio "$ca" "$cb") | $(awk -v e=40 '$3 == e { print $1 }' "$d/loop.dat") | $(awk -v e=40 '$3 == e { print $1 }' "$d/hnswlib.dat") |" >>"$SUMMARY"
	bench_psql -c "DROP DATABASE $db" || true
done

{
	bench_md_header "Search: recall@10 vs queries/s"
	echo "Each query: \`SELECT id FROM items ORDER BY embedding <op> \$q LIMIT $K\`. *Loop*: one backend"
	echo "runs the $NQ queries in a PL/pgSQL loop (no client round trips), twice: *QPS loop* is the second"
	echo "pass, in a warm backend, as hnswlib's process is warm; *new backend* is the first. Without huge"
	echo "pages (this cluster: huge_pages = $(bench_val -c "SHOW huge_pages" 2>/dev/null || echo '?')) a new backend takes a page fault on the first touch of every"
	echo "4 kB page of shared buffers it reads, and a graph search reads them at random over the whole"
	echo "index; a pooled connection has paid that long before. *pgbench*: -M prepared, random"
	echo "query id per transaction (the vector comes from the query table by a subselect), ${SECS} s per"
	echo "point, -c 1 and -c 2, new connections each time (so the first-touch cost is in these figures); its"
	echo "recall is the loop's (same queries, same ef). hnswlib: same data,"
	echo "M and ef_construction, one thread, in-process (no SQL). QPS are medians of $BENCH_RUNS runs;"
	echo "recall@10 against exact brute force (bench/tools/truth), ties counted as hits. *CPU-QPS*: queries"
	echo "per second of CPU time (the backend's user+system time from /proc for the loop, the thread's"
	echo "CPU time for hnswlib): steadier than the wall clock when other jobs share the machine."
	echo
	echo "## Summary"
	echo
	echo "<!-- summary -->"
	echo "| data set | metric | exact scan QPS | best loop QPS at recall >= 0.97 | hnswlib | ratio | CPU-time ratio | recall ef=40 | hnswlib recall ef=40 |"
	echo "|---|---|---|---|---|---|---|---|---|"
	cat "$SUMMARY"
	echo "<!-- /summary -->"
	echo
	if ((${#KEPT[@]} > 0)); then
		echo "Sets marked *earlier run* were not measured in this run: their section below names the run that did."
		echo
	fi
	cat "$SECTIONS"
	echo "## Cluster"
	echo
	bench_settings_md
	echo
	echo "Raw figures: search.tsv (set, method, ef, recall, qps)."
} >"$RESULT_MD"
cat "$RESULT_MD"
bench_log "wrote $RESULT_MD in $(bench_since "$BENCH_T0") s"
