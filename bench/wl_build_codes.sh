#!/usr/bin/env bash
#
# bench/wl_build_codes.sh: what walking the build's graph on compact codes
# costs and gives.  Two clusters run side by side: BEFORE_PGBIN (a private
# install of the commit to compare against, required) and PGBIN (this
# tree, installed).  Each loads the same Fashion-MNIST rows (CODES_ROWS,
# default 60 000 train images, 784-d) and queries (CODES_QUERIES, default
# 200 test images); the exact top 10 of every query comes from a sequential
# scan.  Each run builds, interleaved (odd runs in one order, even runs in
# the reverse order):
#   before            serial CREATE INDEX of the BEFORE install
#   int8/rabitq/fp16  serial CREATE INDEX WITH (codes = ...) of this install
#   before_par, int8_par  the same with one parallel worker and the leader
# and measures recall@10 of every index at ef_search 10, 20, 40 and 80.
# Searches run on the pages of the index (exact distances), so the recall
# reflects the graph the build made.
#
# Knobs: BENCH_RUNS (3), INDEX_M (16), INDEX_EFC (64), CODES_VARIANTS
# (default "before int8 rabitq fp16 before_par int8_par"), CODES_OUT
# (bench/results/build_codes), CODES_TITLE (a line for the report).
# Writes $CODES_OUT.tsv and $CODES_OUT.md.  Run as root (the servers run as
# postgres).
set -euo pipefail
# shellcheck source=test/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../test/lib.sh"

: "${BEFORE_PGBIN:?BEFORE_PGBIN: the bin directory of the install to compare against}"
ROWS="${CODES_ROWS:-60000}"
NQ="${CODES_QUERIES:-200}"
RUNS="${BENCH_RUNS:-3}"
M="${INDEX_M:-16}"
EFC="${INDEX_EFC:-64}"
VARIANTS="${CODES_VARIANTS:-before int8 rabitq fp16 before_par int8_par}"
OUT="${CODES_OUT:-$ENGRAM_ROOT/bench/results/build_codes}"
EFS=(10 20 40 80)
AFTER_PGBIN="$PGBIN"
trap engram_cleanup EXIT

# start_side NAME BIN PORT: a throwaway cluster of install BIN; SIDE_SOCK is its socket dir
start_side() {
	local name="$1" bin="$2" port="$3" d
	engram_mktemp_pg
	d="$ENGRAM_LAST_TMPDIR"
	engram_as_pg mkdir -p "$d/sock"
	engram_as_pg "$bin/initdb" -D "$d/data" -U postgres --auth=trust --no-locale -E UTF8 \
		--no-sync >"$d/initdb.log" 2>&1 || engram_die "initdb ($name) failed"
	printf '%s\n' "port = $port" "listen_addresses = ''" "unix_socket_directories = '$d/sock'" \
		"fsync = off" "synchronous_commit = off" "full_page_writes = off" \
		"maintenance_work_mem = '1GB'" "shared_buffers = '512MB'" "max_wal_size = '4GB'" \
		"max_parallel_maintenance_workers = 1" "log_min_messages = warning" |
		engram_as_pg tee -a "$d/data/postgresql.conf" >/dev/null
	engram_as_pg "$bin/pg_ctl" -D "$d/data" -l "$d/server.log" -w -t 120 start >/dev/null ||
		engram_die "could not start the $name cluster"
	SIDE_SOCK="$d/sock"
}

# on SIDE: point the clients at one side's cluster
on() {
	if [[ "$1" == before ]]; then
		export PGHOST="$BEFORE_SOCK" PGPORT="$BEFORE_PORT"
	else
		export PGHOST="$AFTER_SOCK" PGPORT="$AFTER_PORT"
	fi
	export PGUSER=postgres PGDATABASE=postgres
}

load_side() {
	on "$1"
	engram_psql -c "SET client_min_messages = warning" -c "CREATE EXTENSION IF NOT EXISTS engram_hnsw"
	engram_load_fmnist items train "$ROWS"
	engram_load_fmnist queries test "$NQ"
	engram_psql -c "ALTER TABLE items ALTER COLUMN embedding SET STORAGE PLAIN" \
		-c "ALTER TABLE items SET (parallel_workers = 1)" -c "VACUUM ANALYZE items"
}

BEFORE_PORT=$((ENGRAM_PGPORT + 3))
AFTER_PORT=$((ENGRAM_PGPORT + 4))
start_side before "$BEFORE_PGBIN" "$BEFORE_PORT"
BEFORE_SOCK="$SIDE_SOCK"
start_side after "$AFTER_PGBIN" "$AFTER_PORT"
AFTER_SOCK="$SIDE_SOCK"
ERR="$(mktemp)"
engram_log "loading $ROWS rows and $NQ queries into both clusters"
load_side before
load_side after

# exact truth by a sequential scan, copied to the other side
on after
engram_psql -c "CREATE TABLE truth AS SELECT q.id AS qid, t.id
	FROM queries q, LATERAL (SELECT id FROM items ORDER BY embedding <-> q.embedding LIMIT 10) t"
on before
engram_psql -c "CREATE TABLE truth (qid int, id int)"
on after
engram_psql -c "COPY truth TO STDOUT" | { on before; engram_psql -c "COPY truth FROM STDIN"; }

# recall@10 at every ef of EFS, tab-separated
recall() {
	local ef out=()
	for ef in "${EFS[@]}"; do
		out+=("$(engram_psql_val -c "SET enable_seqscan = off" -c "SET engram_hnsw.ef_search = $ef" \
			-c "SELECT round(count(*)::numeric / ($NQ * 10), 4) FROM queries q,
				LATERAL (SELECT id FROM items ORDER BY embedding <-> q.embedding LIMIT 10) r
				WHERE EXISTS (SELECT 1 FROM truth t WHERE t.qid = q.id AND t.id = r.id)")")
	done
	(IFS=$'\t'; echo "${out[*]}")
}

# build VARIANT RUN: one CREATE INDEX, its time and the recall of the index
build() {
	local v="$1" run="$2" side=after codes="" workers=0 t0 t1 with rec
	case "$v" in
	before) side=before ;;
	before_par) side=before workers=1 ;;
	*_par) codes="${v%_par}" workers=1 ;;
	*) codes="$v" ;;
	esac
	with="m = $M, ef_construction = $EFC"
	[[ -n "$codes" ]] && with="$with, codes = '$codes'"
	on "$side"
	engram_psql -c "DROP INDEX IF EXISTS items_ann" -c "CHECKPOINT"
	t0="$(date +%s.%N)"
	if ! engram_psql -c "SET max_parallel_maintenance_workers = $workers" \
		-c "CREATE INDEX items_ann ON items USING engram_hnsw (embedding real_l2_ops) WITH ($with)" \
		2>"$ERR"; then
		engram_log "[$v] run $run: CREATE INDEX failed: $(head -1 "$ERR")"
		printf '%s\t%s\tnan\tnan\tnan\tnan\tnan\n' "$v" "$run" >>"$OUT.tsv"
		return 0
	fi
	t1="$(date +%s.%N)"
	rec="$(recall)"
	printf '%s\t%s\t%.3f\t%s\n' "$v" "$run" "$(echo "$t1 - $t0" | bc)" "$rec" >>"$OUT.tsv"
	engram_log "[$v] run $run: $(echo "$t1 - $t0" | bc) s, recall@10 at ef ${EFS[*]}: $rec"
}

UPTIME_START="$(uptime)"
printf 'variant\trun\tseconds\tr10\tr20\tr40\tr80\n' >"$OUT.tsv"
read -r -a steps <<<"$VARIANTS"
for ((r = 1; r <= RUNS; r++)); do
	order=("${steps[@]}")
	if ((r % 2 == 0)); then
		order=()
		for ((i = ${#steps[@]} - 1; i >= 0; i--)); do order+=("${steps[i]}"); done
	fi
	for v in "${order[@]}"; do build "$v" "$r"; done
done
UPTIME_END="$(uptime)"

# the report: medians per variant
med() { # column variant
	awk -F'\t' -v c="$1" -v v="$2" 'NR > 1 && $1 == v && $c != "nan" { print $c }' "$OUT.tsv" |
		sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print a[(NR + 1) / 2]; else printf "%.4f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
base="$(med 3 before)"
{
	echo "# Building on compact codes"
	echo
	echo "${CODES_TITLE:-}"
	echo
	echo "Fashion-MNIST, $ROWS x 784, l2, m = $M, ef_construction = $EFC, maintenance_work_mem 1GB;"
	echo "$NQ test images as queries, exact top 10 by sequential scan.  Medians of $RUNS runs,"
	echo "interleaved (odd runs in one order, even runs reversed), the two installs running side by side."
	echo "Searches read the pages (float4 vectors, exact distances): recall reflects the graph only."
	echo
	echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "- uptime at start: \`$UPTIME_START\`"
	echo "- uptime at end: \`$UPTIME_END\`"
	echo
	echo "| build | CREATE INDEX s (median) | / before serial | recall@10 ef 10 | ef 20 | ef 40 | ef 80 |"
	echo "|---|---|---|---|---|---|---|"
	for v in "${steps[@]}"; do
		s="$(med 3 "$v")"
		ratio="$(awk -v a="$s" -v b="$base" 'BEGIN { if (a == "nan" || b == "nan" || b == 0) print "nan"; else printf "%.2f", a / b }')"
		echo "| $v | $s | $ratio | $(med 4 "$v") | $(med 5 "$v") | $(med 6 "$v") | $(med 7 "$v") |"
	done
	echo
	for pair in "before before_par" "int8 int8_par"; do
		read -r a b <<<"$pair"
		[[ " ${steps[*]} " == *" $a "* && " ${steps[*]} " == *" $b "* ]] || continue
		echo "Parallel ($b, 1 worker + leader) over serial ($a): $(awk -v a="$(med 3 "$a")" -v b="$(med 3 "$b")" 'BEGIN { if (a == "nan" || b == "nan" || b == 0) print "nan"; else printf "%.2fx", a / b }') faster."
		echo
	done
	echo "Every run: \`$(basename "$OUT").tsv\`."
} >"$OUT.md"
cat "$OUT.md"
