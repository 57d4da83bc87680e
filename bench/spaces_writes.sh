#!/usr/bin/env bash
#
# bench/spaces_writes.sh: concurrent single-row INSERTs into memory spaces.
#
# pgbench, $SPW_CLIENTS clients (8), $SPW_SECS seconds (30) per workload, one
# INSERT of one row per transaction:
#   own_space    each client inserts into its own space (space = :client_id)
#   one_space    every client inserts into space 0
#   no_index     each client its own space, table without any vector index
#                (what the heap and WAL cost without the graph)
# The table t(id bigserial, space_id int, embedding real[]) starts every
# workload from the same state: $SPW_BASE rows (1000) in each of the
# $SPW_CLIENTS spaces, then (own_space, one_space) CREATE INDEX ... USING
# engram_hnsw (space_id, embedding) WITH (m = 16, ef_construction = 64).
# Vectors are 64-d, deterministic pseudo-random (a sin() hash of the row
# number), taken from a pool table; every insert takes the next pool row (a
# sequence), so no vector repeats within a run.
#
# While pgbench runs, the wait events of its backends are sampled every
# 0.2 s (pg_stat_activity); the most frequent ones are reported.  After each
# indexed run, engram_hnsw_check verifies the index.
#
# Output: a Markdown table of rows/s and ratios on stdout and in
# bench/results/spaces_writes.md.
#
# Run as root (it installs nothing with ENGRAM_SKIP_SETUP=1; otherwise it
# installs the Debian packages, builds and installs the extension):
#     sudo bash bench/spaces_writes.sh
# It starts its own throwaway cluster (test/lib.sh, port $ENGRAM_PGPORT or
# 54329, private socket) and removes it on exit.
#
# Knobs: SPW_CLIENTS (8), SPW_SECS (30), SPW_BASE (1000 rows per space),
# SPW_POOL (200000 vectors), SPW_SEED (pgbench --random-seed, 1),
# SPW_OUT (bench/results/spaces_writes.md).

set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=test/lib.sh
source "$HERE/../test/lib.sh"

CLIENTS="${SPW_CLIENTS:-8}"
SECS="${SPW_SECS:-30}"
BASE="${SPW_BASE:-1000}"
POOL="${SPW_POOL:-200000}"
SEED="${SPW_SEED:-1}"
OUT="${SPW_OUT:-$ENGRAM_ROOT/bench/results/spaces_writes.md}"
DIMS=64
M=16
EFC=64
DB=spaces_writes

engram_require_root "bench/spaces_writes.sh"
trap engram_cleanup EXIT
trap 'exit 130' INT TERM

if [[ "${ENGRAM_SKIP_SETUP:-0}" != 1 ]]; then
	engram_install_deps
	engram_log "building and installing engram_hnsw"
	engram_build_install >/dev/null || engram_die "build failed"
fi
engram_mktemp_pg
WORK="$ENGRAM_LAST_TMPDIR"

engram_cluster_start -c shared_buffers=1GB -c maintenance_work_mem=512MB \
	-c max_wal_size=8GB -c checkpoint_timeout=30min -c max_connections=60 \
	-c autovacuum=off
engram_psql -c "CREATE DATABASE $DB"
export PGDATABASE=$DB
q() { engram_psql "$@"; }
qv() { engram_psql_val "$@"; }

engram_log "pool of $POOL vectors of $DIMS dimensions"
t0="$(date +%s)"
q <<SQL
CREATE EXTENSION engram_hnsw;
-- DIMS pseudo-random values in [-0.5, 0.5) from a sin() hash of i
CREATE FUNCTION vec(i bigint) RETURNS real[] LANGUAGE sql IMMUTABLE STRICT AS
\$\$ SELECT array_agg((x - floor(x) - 0.5)::real ORDER BY d)
     FROM (SELECT d, sin(i * 12.9898 + d * 78.233) * 43758.5453 AS x
             FROM generate_series(0, $DIMS - 1) d) s \$\$;
CREATE TABLE pool (id int PRIMARY KEY, v real[]);
ALTER TABLE pool ALTER COLUMN v SET STORAGE plain;
INSERT INTO pool SELECT i, vec(i) FROM generate_series(1, $POOL) i;
VACUUM ANALYZE pool;
CREATE SEQUENCE pick;
SQL
engram_log "pool ready in $(($(date +%s) - t0))s"

# the pgbench script: one row into space :client_id (own) or 0 (one)
mkscript() {
	local space="$1" f="$WORK/insert_$2.sql"
	cat >"$f" <<SQL
INSERT INTO t (space_id, embedding)
SELECT $space, v FROM pool WHERE id = (SELECT (nextval('pick') - 1) % $POOL + 1);
SQL
	chmod 644 "$f"
	echo "$f"
}

# fresh table: BASE rows in each space 0..CLIENTS-1, pool rows 1..BASE*CLIENTS
setup_table() {
	local index="$1"
	q -c "SET client_min_messages = warning" -c "DROP TABLE IF EXISTS t" \
		-c "CREATE TABLE t (id bigserial, space_id int, embedding real[])" \
		-c "ALTER TABLE t ALTER COLUMN embedding SET STORAGE plain" \
		-c "INSERT INTO t (space_id, embedding) SELECT (id - 1) % $CLIENTS, v FROM pool WHERE id <= $((BASE * CLIENTS)) ORDER BY id"
	if [[ "$index" == 1 ]]; then
		q -c "CREATE INDEX t_idx ON t USING engram_hnsw (space_id, embedding) WITH (m = $M, ef_construction = $EFC)"
	fi
	q -c "VACUUM ANALYZE t" -c "SELECT setval('pick', $((BASE * CLIENTS)))" >/dev/null
	q -c "CHECKPOINT"
}

# sample the wait events of pgbench's backends until pgbench ends
sample_waits() {
	local file="$1" pid="$2"
	while kill -0 "$pid" 2>/dev/null; do
		qv -c "SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') FROM pg_stat_activity
			WHERE application_name = 'pgbench' AND state = 'active'" >>"$file" 2>/dev/null || true
		sleep 0.2
	done
}

declare -A TPS ROWS WAITS CHECK SIZES
run() {
	local name="$1" script="$2" index="$3"
	engram_log "workload $name: setting up"
	setup_table "$index"
	local log="$WORK/pgbench_$name.log" waits="$WORK/waits_$name.txt"
	: >"$waits"
	engram_log "workload $name: pgbench -c $CLIENTS -T $SECS"
	"$PGBIN/pgbench" -n -c "$CLIENTS" -j "$CLIENTS" -T "$SECS" --random-seed="$SEED" \
		-f "$script" "$DB" >"$log" 2>&1 &
	local pid=$!
	sample_waits "$waits" "$pid" &
	local spid=$!
	local rc=0
	wait "$pid" || rc=$?
	wait "$spid" || true
	if ((rc != 0)); then
		cat "$log" >&2
		engram_die "pgbench failed for $name"
	fi
	TPS[$name]="$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p' "$log")"
	ROWS[$name]="$(qv -c "SELECT count(*) - $((BASE * CLIENTS)) FROM t")"
	SIZES[$name]="$(qv -c "SELECT string_agg(n::text, '/' ORDER BY s) FROM (SELECT space_id s, count(*) n FROM t GROUP BY 1) x")"
	local total
	total="$(wc -l <"$waits")"
	WAITS[$name]="$(sort "$waits" | uniq -c | sort -rn | head -n 4 |
		awk -v t="$total" '{ printf "%s%s %.0f%%", (NR > 1 ? ", " : ""), $2, 100 * $1 / (t ? t : 1) }')"
	if [[ "$index" == 1 ]]; then
		CHECK[$name]="$(qv -c "SET client_min_messages = warning" \
			-c "SELECT 'elements=' || elements || ' heap_tids=' || heap_tids || ' unreachable=' || unreachable FROM engram_hnsw_check('t_idx')" 2>&1 | tr '\n' ' ' | sed 's/ *$//')"
	else
		CHECK[$name]="-"
	fi
	engram_log "workload $name: ${TPS[$name]} rows/s (${ROWS[$name]} rows; waits: ${WAITS[$name]}; check: ${CHECK[$name]})"
}

OWN="$(mkscript ':client_id' own)"
ONE="$(mkscript '0' one)"
T_START="$(date +%s)"
run own_space "$OWN" 1
run one_space "$ONE" 1
run no_index "$OWN" 0

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
cpu="$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)"
pgver="$(qv -c "SHOW server_version")"
mkdir -p "$(dirname "$OUT")"
{
	echo "# Memory spaces: concurrent single-row INSERTs"
	echo
	echo "\`bench/spaces_writes.sh\`, $(date -u +%Y-%m-%d) on $(nproc) CPUs (${cpu:-unknown CPU}), PostgreSQL $pgver."
	echo "pgbench -c $CLIENTS -j $CLIENTS -T $SECS, one row per transaction; $DIMS-d vectors; every"
	echo "workload starts from $BASE rows in each of $CLIENTS spaces; index on (space_id, embedding)"
	echo "with m = $M, ef_construction = $EFC (built on the $((BASE * CLIENTS)) rows before the run)."
	echo
	echo "| workload | rows/s | vs no index | rows inserted | rows per space after (0..$((CLIENTS - 1))) | top wait events of the pgbench backends | engram_hnsw_check |"
	echo "|---|---:|---:|---:|---|---|---|"
	for w in own_space one_space no_index; do
		case "$w" in
		own_space) label="(a) $CLIENTS clients, each its own space" ;;
		one_space) label="(b) $CLIENTS clients, all in space 0" ;;
		no_index) label="(c) no vector index (own spaces)" ;;
		esac
		printf '| %s | %.0f | %s | %s | %s | %s | %s |\n' "$label" "${TPS[$w]}" \
			"$(ratio "${TPS[$w]}" "${TPS[no_index]}")" "${ROWS[$w]}" "${SIZES[$w]}" "${WAITS[$w]}" "${CHECK[$w]}"
	done
	echo
	echo "(a) / (b) = $(ratio "${TPS[own_space]}" "${TPS[one_space]}"): own spaces vs one shared space."
	echo
	echo "Wait events: share of samples (every 0.2 s) of active pgbench backends; CPU = no wait event"
	echo "(with more clients than CPUs, lock holders get descheduled, which inflates lock waits)."
	echo "In (b) the one graph grows by all rows of the run, in (a) each graph by an eighth of them,"
	echo "so part of the difference is graph size (search depth), not lock contention."
	echo "Total time of the three runs with setup: $(($(date +%s) - T_START)) s."
} | tee "$OUT"
engram_log "wrote $OUT"
