#!/usr/bin/env bash
#
# bench/wl_spaces_small.sh: where reading a memory space whole beats
# searching its graph.  For spaces of growing size (1 000 spaces of R rows,
# 128 dims, bench/tools/gen.c spaces), the same (space, query) pairs of
#     SELECT id FROM T WHERE space_id = $s ORDER BY embedding <-> $q LIMIT 10
# are run three ways, alternating, in one session each (warm):
#   exact   btree on space_id, no vector index: the exact per-space top 10
#   graph   the space index with engram_hnsw.space_read_pages = 0: every
#           space searched as a graph (ef_search 40)
#   whole   the same index with space_read_pages = 32: a space listed on at
#           most 32 blocks is read whole, in exact order
# and reported as queries per CPU second of the backend (steadier than the
# wall clock on a shared machine), medians of the rounds, with the mean
# number of blocks the spaces' directory entries list (0 when scattered)
# and how often graph and whole give exactly the exact top 10.  The
# default of engram_hnsw.space_read_pages comes from this table.
# Writes bench/results/spaces_small.md and spaces_small.tsv.
#
# Knobs: SMALL_SETS (default "spaces128-1000x25 spaces128-1000x50
#        spaces128-1000x100 spaces128-1000x200 spaces128-1000x300
#        spaces128-1000x450 spaces128-10000x100"; QUICK
#        "spaces128-200x50"), SMALL_NQ (500), SMALL_REPS (passes over the
#        queries per measurement, 10; QUICK 2), BENCH_RUNS (rounds, 3).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init spaces_small

SETS="${SMALL_SETS:-$(bench_quick spaces128-200x50 "spaces128-1000x25 spaces128-1000x50 spaces128-1000x100 spaces128-1000x200 spaces128-1000x300 spaces128-1000x450 spaces128-10000x100")}"
NQ="${SMALL_NQ:-500}"
REPS="${SMALL_REPS:-$(bench_quick 2 10)}"
printf 'set\tvariant\tmeasure\trun\tvalue\n' >"$TSV"

bench_start

# loop_T(p_pages, p_nq, p_store): the queries against table T (p_pages < 0:
# the exact table, no setting), queries per wall second
make_loops() {
	local db="$1" t
	for t in t_exact t_space; do
		bench_psql -d "$db" <<SQL
CREATE OR REPLACE FUNCTION loop_$t(p_pages int, p_nq int, p_store bool, p_reps int DEFAULT 1) RETURNS float8
LANGUAGE plpgsql AS \$f\$
DECLARE r record; v int[]; t0 timestamptz;
BEGIN
	PERFORM set_config('enable_seqscan', 'off', true);
	PERFORM set_config('enable_bitmapscan', 'off', true);
	IF p_pages >= 0 THEN
		PERFORM set_config('engram_hnsw.space_read_pages', p_pages::text, true);
	END IF;
	t0 := clock_timestamp();
	FOR k IN 1 .. p_reps LOOP
	FOR r IN SELECT id, space_id, embedding FROM queries ORDER BY id LIMIT p_nq LOOP
		SELECT array_agg(s.id) INTO v FROM (SELECT i.id FROM $t i WHERE i.space_id = r.space_id
			ORDER BY i.embedding <-> r.embedding LIMIT 10) s;
		IF p_store THEN INSERT INTO res VALUES (p_pages, r.id, v); END IF;
	END LOOP;
	END LOOP;
	RETURN p_nq * p_reps / extract(epoch FROM clock_timestamp() - t0)::float8;
END \$f\$;
SQL
	done
}

# the mean number of blocks listed per directory entry (scattered: 0), and
# the share of spaces scattered, read with pageinspect (src/hnsw_format.h)
LISTED_SQL="
CREATE EXTENSION IF NOT EXISTS pageinspect;
CREATE OR REPLACE FUNCTION listed_blocks(idx regclass, OUT mean_blocks float8, OUT scattered float8)
LANGUAGE plpgsql AS \$f\$
DECLARE
	meta bytea := get_raw_page(idx::text, 0);
	p bytea; blk bigint; off int; flags int; n int := 0; tot int := 0; sc int := 0;
BEGIN
	blk := get_byte(meta, 72) + 256 * get_byte(meta, 73) + 65536 * get_byte(meta, 74) + 16777216::bigint * get_byte(meta, 75);
	WHILE blk <> 4294967295 LOOP
		p := get_raw_page(idx::text, blk::int);
		FOR k IN 0 .. (get_byte(p, 12) + 256 * get_byte(p, 13) - 24) / 4 - 1 LOOP
			off := (get_byte(p, 24 + 4 * k) + 256 * get_byte(p, 25 + 4 * k)) & 32767;
			flags := get_byte(p, off + 1);
			n := n + 1;
			IF flags & 4 <> 0 THEN sc := sc + 1;
			ELSIF flags & 2 <> 0 THEN tot := tot + get_byte(p, off + 24) + 256 * get_byte(p, off + 25);
			END IF;
		END LOOP;
		blk := get_byte(p, 8176) + 256 * get_byte(p, 8177) + 65536 * get_byte(p, 8178) + 16777216::bigint * get_byte(p, 8179);
	END LOOP;
	mean_blocks := tot::float8 / greatest(n, 1);
	scattered := sc::float8 / greatest(n, 1);
END \$f\$;"

# one warm measurement: appends q/CPU-s and QPS of VARIANT to the TSV
measure() {
	local set="$1" var="$2" table="$3" pages="$4" run="$5" q c
	read -r _ q c <<<"$(bench_loop_cpu "$DB" "SELECT loop_$table($pages, $NQ, false, $REPS)" warm)"
	printf '%s\t%s\tqps\t%s\t%s\n' "$set" "$var" "$run" "$q" >>"$TSV"
	printf '%s\t%s\tq_per_cpu_s\t%s\t%s\n' "$set" "$var" "$run" "$(bench_per_cpu "$((NQ * REPS))" "$c")" >>"$TSV"
}

med() { awk -F'\t' -v s="$1" -v v="$2" -v m="$3" '$1 == s && $2 == v && $3 == m && $5 != "nan" { print $5 }' "$TSV" | bench_median; }

ROWS=()
for set in $SETS; do
	DB="small_${set//-/_}"
	bench_load_set "$DB" "$set" l2 "$NQ"
	bench_ext_check "$DB"
	[[ "$EXT_OK" == 1 ]] || bench_die "engram_hnsw is not available: $EXT_NOTE"
	S="$(bench_val -d "$DB" -c "SELECT max(space_id) + 1 FROM items")"
	bench_psql -d "$DB" -c "SET client_min_messages = warning" \
		-c "DROP TABLE IF EXISTS t_exact, t_space, res" \
		-c "CREATE TABLE res (pages int, qid int, ids int[])" \
		-c "CREATE TABLE t_exact AS SELECT * FROM items" -c "CREATE INDEX ON t_exact (space_id)" \
		-c "CREATE TABLE t_space AS SELECT * FROM items" \
		-c "CREATE INDEX t_space_ann ON t_space USING engram_hnsw (space_id, embedding) WITH ($WITH)" \
		-c "VACUUM ANALYZE t_exact" -c "VACUUM ANALYZE t_space" -c "$LISTED_SQL"
	make_loops "$DB"
	read -r blocks scattered < <(bench_val -d "$DB" -A -F ' ' -c "SELECT round(mean_blocks::numeric, 1), round(scattered::numeric, 2) FROM listed_blocks('t_space_ann')")
	bench_log "[$set] $S spaces, $blocks blocks listed per space, $scattered scattered"

	# agreement with the exact top 10
	bench_psql -d "$DB" -c "SELECT loop_t_exact(-1, $NQ, true)" -c "SELECT loop_t_space(0, $NQ, true)" \
		-c "SELECT loop_t_space(32, $NQ, true)" >/dev/null
	same_graph="$(bench_val -d "$DB" -c "SELECT round(avg((a.ids = b.ids)::int), 3) FROM res a JOIN res b USING (qid) WHERE a.pages = -1 AND b.pages = 0")"
	same_whole="$(bench_val -d "$DB" -c "SELECT round(avg((a.ids = b.ids)::int), 3) FROM res a JOIN res b USING (qid) WHERE a.pages = -1 AND b.pages = 32")"

	for ((r = 1; r <= BENCH_RUNS; r++)); do
		measure "$set" exact t_exact -1 "$r"
		measure "$set" graph t_space 0 "$r"
		measure "$set" whole t_space 32 "$r"
	done
	e="$(med "$set" exact q_per_cpu_s)"
	g="$(med "$set" graph q_per_cpu_s)"
	w="$(med "$set" whole q_per_cpu_s)"
	eq="$(med "$set" exact qps)"
	gq="$(med "$set" graph qps)"
	wq="$(med "$set" whole qps)"
	ROWS+=("| $S x $((DS_N / S)) | $blocks | $scattered | $(bench_fmt "$e") | $(bench_fmt "$g") | $(bench_fmt "$w") | $(bench_ratio "$w" "$g") | $(bench_ratio "$w" "$e") | $(bench_ratio "$g" "$e") | $(bench_fmt "$eq") | $(bench_fmt "$gq") | $(bench_fmt "$wq") | $(bench_ratio "$wq" "$eq") | $same_graph | $same_whole |")
	bench_log "[$set] q/CPU-s exact $e, graph $g, whole $w"
done

{
	echo "# Memory spaces read whole or searched as graphs"
	echo
	bench_machine_line
	echo
	echo "Sets spaces128-SxR: S spaces of R rows (bench/tools/gen.c spaces, 128 dims), one space index"
	echo "WITH ($WITH); $NQ (space, query) pairs, $REPS passes per measurement; \`LIMIT 10\`; queries per CPU second of the"
	echo "backend (warm session) and per wall-clock second (QPS), medians of $BENCH_RUNS rounds alternating"
	echo "the three ways."
	echo "*blocks listed*: mean over the spaces' directory entries (a scattered space lists none);"
	echo "*same as exact*: share of queries whose 10 ids equal the exact top 10 in order."
	echo
	echo "| spaces x rows | blocks listed | scattered | exact q/CPU-s | graph q/CPU-s | whole q/CPU-s | whole / graph | whole / exact | graph / exact | exact QPS | graph QPS | whole QPS | whole / exact QPS | graph same as exact | whole same as exact |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
	printf '%s\n' "${ROWS[@]}"
	echo
	bench_settings_md
} >"$RESULT_MD"
bench_log "wrote $RESULT_MD"
