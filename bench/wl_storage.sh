#!/usr/bin/env bash
#
# bench/wl_storage.sh: the storage of the table's vector column against
# index-scan queries/s.  The executor computes `embedding <-> $q` for every
# row an index scan returns, so each returned row's heap vector is
# detoasted: decompressed (pglz) when the column stored it compressed,
# fetched from the TOAST table when stored out of line.  For each data set,
# the same rows go into one table per storage (PLAIN, MAIN, EXTERNAL,
# EXTENDED), each with its own engram_hnsw index (serial build), and the
# PL/pgSQL loop of wl_search.sh (one backend, warm pass first) runs the same
# queries against each, alternated, BENCH_RUNS times.  The query vectors
# come from a PLAIN table (uncompressed), and for two variants from an
# EXTENDED one (compressed like the rows when compressible).  PLAIN holds a
# row of up to about 2 030 floats in a page: every vector engram_hnsw
# indexes (at most 2 000 dims).
# Writes bench/results/storage.md, storage.tsv and storage.png.
#
# Knobs: STORAGE_SETS ("fmnist-10k gauss128-10k gauss512-10k gauss1024-10k
#        gauss2000-10k", QUICK "fmnist-2k gauss1024-2k"),
#        STORAGE_NQ (1000, QUICK 200), STORAGE_REPS (passes over the queries
#        per timed run: 3), STORAGE_EF ("20"), INDEX_M (16), INDEX_EFC (64),
#        BENCH_RUNS; STORAGE_REPORT_ONLY=1 only rewrites storage.md from
#        storage.tsv (STORAGE_NOTE: a line saying which run measured it).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init storage
BENCH_STORAGE="one table per storage, see the table"

SETS="${STORAGE_SETS:-$(bench_quick "fmnist-2k gauss1024-2k" "fmnist-10k gauss128-10k gauss512-10k gauss1024-10k gauss2000-10k")}"
NQ="${STORAGE_NQ:-$(bench_quick 200 1000)}"
REPS="${STORAGE_REPS:-3}"
EFS="${STORAGE_EF:-20}"
WITH="m = ${INDEX_M:-16}, ef_construction = ${INDEX_EFC:-64}"
# items storage : query table storage
VARIANTS="plain:plain main:plain external:plain extended:plain extended:extended plain:extended"
DB=storage
if [[ "${STORAGE_REPORT_ONLY:-0}" == 1 ]]; then
	SETS=""
	# shellcheck disable=SC2034 # read by bench_md_header
	EXT_OK=1
	EXT_REV="$(git -C "$BENCH_ROOT" rev-parse --short HEAD), figures of storage.tsv"
else
	printf 'set\tdims\titems\tqueries\tef\trecall\tqps\tcpu_qps\tavg_bytes\ttoast_mb\n' >"$TSV"
	bench_start_db "$DB"
fi

# q(ITEMS, QUERIES): the loop over the first p_nq queries, p_reps times; QPS
make_loop() {
	local it="$1" qt="$2"
	bench_qps_fn "loop_${it}_${qt}" "p_ef int, p_nq int, p_reps int, p_store bool" \
		"engram_hnsw.ef_search=p_ef::text enable_seqscan='off'" "	FOR rep IN 1 .. p_reps LOOP
$(bench_knn_loop "q_$qt" "i_$it" "i.embedding <-> r.embedding" "'${it}_${qt}', r.id, v")
	END LOOP;" "p_nq * p_reps" | bench_psql -d "$DB"
}

for set in $SETS; do
	bench_truth "$set" l2 "$NQ"
	dims="$DS_DIM"
	d="$OUT/$set"
	mkdir -p "$d"
	variants="$VARIANTS"
	bench_log "[$set] loading $DS_N x $dims into one table per storage"
	bench_psql -d "$DB" -c "SET client_min_messages = warning" \
		-c "DROP TABLE IF EXISTS i_plain, i_main, i_external, i_extended, q_plain, q_extended, truth, res CASCADE" \
		-c "CREATE TABLE truth (qid int PRIMARY KEY, ids int[], dists float8[])" \
		-c "CREATE TABLE res (variant text, qid int, ids int[])"
	for s in $(tr ' ' '\n' <<<"$variants" | sed 's/:.*//' | sort -u); do
		bench_psql -d "$DB" -c "CREATE TABLE i_$s (id int PRIMARY KEY, embedding real[])" \
			-c "ALTER TABLE i_$s ALTER COLUMN embedding SET STORAGE $s"
		bench_copy_fvecs "$DB" "i_$s" "$DS_BASE"
	done
	for s in $(tr ' ' '\n' <<<"$variants" | sed 's/.*://' | sort -u); do
		bench_psql -d "$DB" -c "CREATE TABLE q_$s (id int PRIMARY KEY, embedding real[])" \
			-c "ALTER TABLE q_$s ALTER COLUMN embedding SET STORAGE $s"
		bench_copy_fvecs "$DB" "q_$s" "$DS_QUERY" --limit "$NQ"
	done
	"$BENCH_BIN/truth" dump "$DS_TRUTH" --nq "$NQ" | bench_psql -d "$DB" -c "COPY truth FROM STDIN"
	for s in $(tr ' ' '\n' <<<"$variants" | sed 's/:.*//' | sort -u); do
		bench_log "[$set] CREATE INDEX on i_$s"
		bench_psql -d "$DB" -c "SET max_parallel_maintenance_workers = 0" \
			-c "CREATE INDEX ON i_$s USING engram_hnsw (embedding real_l2_ops) WITH ($WITH)" \
			-c "VACUUM ANALYZE i_$s"
		read -r bytes toast < <(bench_val -d "$DB" -F ' ' -c "SELECT round(avg(pg_column_size(embedding))),
			round(coalesce(pg_relation_size(reltoastrelid), 0) / 1048576.0, 1)
			FROM i_$s, pg_class WHERE pg_class.oid = 'i_$s'::regclass GROUP BY reltoastrelid")
		echo "$s $bytes $toast" >>"$d/sizes"
	done
	bench_psql -d "$DB" -c "VACUUM ANALYZE" >/dev/null
	for v in $variants; do
		make_loop "${v%%:*}" "${v#*:}"
	done
	# recall (one pass per variant and ef)
	for ef in $EFS; do
		bench_psql -d "$DB" -c "TRUNCATE res"
		for v in $variants; do
			bench_val -d "$DB" -c "SELECT loop_${v/:/_}($ef, $NQ, 1, true)" >/dev/null
		done
		for v in $variants; do
			bench_val -d "$DB" -c "$(bench_recall_sql '<->' "(SELECT qid, ids FROM res WHERE variant = '${v/:/_}')" "i_${v%%:*}" truth "q_${v#*:}")" >"$d/recall.$ef.${v/:/_}"
		done
	done
	# timed passes, variants alternated
	for ((r = 0; r < BENCH_RUNS; r++)); do
		for ef in $EFS; do
			for v in $variants; do
				bench_log "[$set] run $((r + 1))/$BENCH_RUNS ef=$ef $v"
				bench_loop_record "$DB" "SELECT loop_${v/:/_}($ef, $NQ, $REPS, false)" "$((NQ * REPS))" \
					"$d/qps.$ef.${v/:/_}" "$d/cpu.$ef.${v/:/_}"
			done
		done
	done
	for ef in $EFS; do
		for v in $variants; do
			read -r _ bytes toast < <(awk -v s="${v%%:*}" '$1 == s' "$d/sizes")
			printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$set" "$dims" "${v%%:*}" "${v#*:}" "$ef" \
				"$(cat "$d/recall.$ef.${v/:/_}")" "$(bench_median <"$d/qps.$ef.${v/:/_}")" \
				"$(bench_median <"$d/cpu.$ef.${v/:/_}")" "$bytes" "$toast" >>"$TSV"
		done
	done
done

# ratio of a variant's QPS (column 7 wall, 8 CPU) to the PLAIN:plain row of its set and ef
ratios() {
	awk -F'\t' -v col="$1" 'NR > 1 { k = $1 "|" $5; row[NR] = $0; key[NR] = k
		if ($3 == "plain" && $4 == "plain") base[k] = $col }
		END { for (i = 2; i <= NR; i++) { split(row[i], f, "\t"); b = base[key[i]]
			printf "%s\t%s\n", row[i], (b > 0 && f[col] > 0) ? sprintf("%.2f", f[col] / b) : "-" } }' "$TSV"
}

# plot: CPU-QPS relative to PLAIN (uncompressed queries) against dims, gaussian sets
ratios 8 | awk -F'\t' '$1 ~ /^gauss/ && $4 != "extended" { print $3, $2, $11 }' >"$OUT/plot.dat"
if command -v gnuplot >/dev/null && [[ -s "$OUT/plot.dat" ]]; then
	{
		echo "set terminal pngcairo size 800,500 noenhanced"
		echo "set output '$BENCH_RESULTS/storage.png'"
		echo "set title 'gaussian 10k rows, L2, ef_search ${EFS%% *}: CPU queries/s relative to PLAIN'"
		echo "set xlabel 'dimensions'; set ylabel 'QPS / QPS(PLAIN)'; set key bottom left; set grid"
		echo "set yrange [0:1.3]"
		printf "plot "
		sep=""
		for s in plain main external extended; do
			awk -v s="$s" '$1 == s { print $2, $3 }' "$OUT/plot.dat" >"$OUT/plot.$s"
			printf "%s'%s' using 1:2 with linespoints title '%s'" "$sep" "$OUT/plot.$s" "${s^^}"
			sep=", "
		done
		echo
	} | gnuplot || bench_log "gnuplot failed"
fi

{
	bench_md_header "Column storage of the vector against index-scan queries/s"
	[[ -n "${STORAGE_NOTE:-}" ]] && echo "$STORAGE_NOTE" && echo
	echo "Each query: \`SELECT id FROM t ORDER BY embedding <-> \$q LIMIT $K\` through an engram_hnsw index"
	echo "($WITH, serial build), ef_search $EFS. The executor computes the distance of every row the scan"
	echo "returns, so each returned row's vector is detoasted from the heap. One table per storage, same rows;"
	echo "the PL/pgSQL loop of wl_search.sh ($NQ queries x $REPS passes in one backend, timed after a warm"
	echo "pass), the variants alternated, medians of $BENCH_RUNS runs. *queries*: storage of the table the"
	echo "query vectors come from (PLAIN: uncompressed; EXTENDED: compressed when compressible, else"
	echo "out of line above ~2 kB). *bytes/row*: average \`pg_column_size(embedding)\` (the vector as stored:"
	echo "4 x dims + 24 uncompressed). *ratio*: QPS over the PLAIN/PLAIN row of the set; *CPU-QPS*: queries"
	echo "per CPU second of the backend (steadier than the wall clock on a shared machine), *CPU ratio* likewise."
	echo
	echo "| set | dims | storage | queries | recall@10 | QPS | ratio | CPU-QPS | CPU ratio | bytes/row | TOAST MB |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|"
	paste <(ratios 7) <(ratios 8 | cut -f11) | awk -F'\t' '{
		printf "| %s | %s | %s | %s | %s | %.0f | %s | %.0f | %s | %s | %s |\n", $1, $2, toupper($3), toupper($4), $6, $7, $11, $8, $12, $9, $10 }'
	echo
	[[ -f "$BENCH_RESULTS/storage.png" ]] && echo "![CPU-QPS relative to PLAIN against dims](storage.png)" && echo
	if [[ "${STORAGE_REPORT_ONLY:-0}" != 1 ]]; then
		echo "## Cluster"
		echo
		bench_settings_md
		echo
	fi
	echo "\`uptime\` at the end: $(uptime)"
	echo
	echo "Raw figures: storage.tsv."
} >"$RESULT_MD"
cat "$RESULT_MD"
bench_log "wrote $RESULT_MD in $(bench_since "$BENCH_T0") s"
