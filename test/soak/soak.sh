#!/usr/bin/env bash
#
# test/soak/soak.sh: bounded soak test of engram_hnsw under a mixed pgbench
# workload, then a full verification.
#
# Run standalone as root (10 minutes of load; installs packages, builds and
# installs the extension, starts a throwaway cluster):
#
#     sudo bash test/soak/soak.sh
#
# test/run_all.sh runs a 3-minute version (SOAK_SECONDS=180) with
# ENGRAM_SKIP_SETUP=1 and SOAK_USE_CLUSTER=1 (reuse the cluster in
# PGHOST/PGPORT; SOAK_SERVER_LOG names its log file).
#
# Data (database engram_soak, dropped at the end): two tables
#   memories    20 000 rows in 50 spaces, index memories_idx on (space_id,
#               embedding real_l2_ops) with fastupdate = on and a small
#               pending_list_limit, so rows go through the pending list and
#               inserts merge it while the others go on
#   memories_d  10 000 rows in 50 spaces, index memories_d_idx with
#               fastupdate = off (every row inserted into its graph at once)
# Vectors have 32 dimensions and are a deterministic function of the row id
# (soak_vec(id), hash based), so they can be checked afterwards; query
# vectors are soak_vec(-n).
#
# Workload: pgbench -c 8 -j 2 -T $SOAK_SECONDS --max-tries=1 with weighted
# custom scripts (-f script@weight), for each table:
#   ins     BEGIN; insert one row (id from a sequence, random space); log it
#           in insert_log; COMMIT
#   upd     move a random row to another space (UPDATE ... SET space_id),
#           logged in update_log in the same statement
#   del     delete a random row, logged in delete_log in the same statement
#   knn     10 nearest rows of one space (WHERE space_id = :s ORDER BY
#           embedding <-> (SELECT embedding FROM ... WHERE id = :id) LIMIT 10);
#           fewer than 10 rows or a row of another space is logged in
#           violation_log
#   knnall  10 nearest rows over all spaces (SET LOCAL enable_seqscan = off:
#           the planner may prefer a sort); fewer than 10 rows or rows out
#           of distance order are violations
#   self    a random row must be among the first 5 results of its space for
#           its own vector (same snapshot); a miss is a violation
#   vacuum  VACUUM of the table, at most once per SOAK_VACUUM_EVERY seconds
#           (a time gate in soak_state)
#   check   engram_hnsw_check of the index, once per SOAK_CHECK_EVERY seconds
# plus "merge": engram_hnsw_merge_pending('memories_idx') once per
# SOAK_MERGE_EVERY seconds.  Every transaction takes at most one row lock
# and tables are locked in the same order everywhere, so deadlocks cannot
# happen; any failed transaction (pgbench's count) or aborted client fails
# the test.  Autovacuum stays on.
#
# Checks afterwards, each one "ok - soak ..." / "not ok - soak ..." line:
#   pgbench           exit status 0, 0 failed transactions, > 0 transactions
#   violations wrong  no row of another space, no result out of distance
#                     order (always a failure)
#   violations        at most SOAK_MAX_MISSING (0) missing rows logged by the
#                     knn/knnall/self scripts (fewer than 10 rows, a row not
#                     found by its own vector)
#   ledger TABLE      count(*) = initial + inserted - deleted; no deleted id
#                     present, no logged insert missing, no unknown row;
#                     every row's space is the one of its last logged
#                     update (or insert, or the initial id % 50); every
#                     embedding equals soak_vec(id)
#   check IDX         engram_hnsw_check passes, unreachable <= 1% of elements
#   self TABLE        every row is among the first 5 index-scan results of
#                     its space for its own vector
#   selfall TABLE     the same without a space qual, for a sample of rows
#   merged IDX        after engram_hnsw_merge_pending + VACUUM: the check
#                     passes with pending = 0, heap_tids = count(*)
#   self_merged TABLE every row found again (now all in the graph)
#   recall TABLE      200 query vectors, recall@10 within a space (space
#                     (q-1) % 50) vs an exact sequential scan >= 0.95, and
#                     over all spaces >= 0.95
#   server log        no PANIC, TRAP, crash or unexpected ERROR during the test
# Figures printed: transactions, tps, failed transactions, rows inserted /
# updated / deleted, merges (and rows merged), vacuums, checks, recall.
#
# Knobs: SOAK_SECONDS (600), SOAK_CLIENTS (8), SOAK_THREADS (2),
# SOAK_ROWS (20000), SOAK_ROWS_D (10000), SOAK_SPACES (50), SOAK_DIMS (32),
# SOAK_VACUUM_EVERY (20), SOAK_MERGE_EVERY (7), SOAK_CHECK_EVERY (45)
# seconds, SOAK_QUERIES (200), SOAK_MIN_RECALL (0.95),
# SOAK_MAX_UNREACHABLE_FRAC (0.01), SOAK_MAX_MISSING (0), SOAK_GLOBAL_SAMPLE (500),
# SOAK_KEEP_DB=1 keeps the database.

set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=test/lib.sh
source "$HERE/../lib.sh"

SECONDS_RUN="${SOAK_SECONDS:-600}"
CLIENTS="${SOAK_CLIENTS:-8}"
THREADS="${SOAK_THREADS:-2}"
ROWS="${SOAK_ROWS:-20000}"
ROWS_D="${SOAK_ROWS_D:-10000}"
NSP="${SOAK_SPACES:-50}"
DIMS="${SOAK_DIMS:-32}"
VACUUM_EVERY="${SOAK_VACUUM_EVERY:-20}"
MERGE_EVERY="${SOAK_MERGE_EVERY:-7}"
CHECK_EVERY="${SOAK_CHECK_EVERY:-45}"
NQ="${SOAK_QUERIES:-200}"
MIN_RECALL="${SOAK_MIN_RECALL:-0.95}"
MAX_UNREACH_FRAC="${SOAK_MAX_UNREACHABLE_FRAC:-0.01}"
MAX_MISSING="${SOAK_MAX_MISSING:-0}"
GSAMPLE="${SOAK_GLOBAL_SAMPLE:-500}"
SELF_EF="${SOAK_SELF_EF:-100}"
DB=engram_soak
K=10

PASSED=0
FAILED=0

T_START="$(date +%s)"

engram_suite_start SOAK "$DB" 10min -c shared_buffers=256MB -c max_connections=50
if [[ "${SOAK_USE_CLUSTER:-0}" == 1 ]]; then
	SERVER_LOG="${SOAK_SERVER_LOG:-}"
else
	SERVER_LOG="$ENGRAM_PGLOG"
fi
LOG_OFFSET=0
if [[ -n "$SERVER_LOG" && -r "$SERVER_LOG" ]]; then
	LOG_OFFSET="$(stat -c %s "$SERVER_LOG")"
fi

q() { engram_psql "$@"; }
qv() { engram_psql_val "$@"; }

report() {
	local status="$1" name="$2" detail="$3"
	if [[ "$status" == ok ]]; then
		PASSED=$((PASSED + 1))
		echo "ok - soak $name $detail"
	else
		FAILED=$((FAILED + 1))
		echo "not ok - soak $name $detail"
	fi
}

# report_why (test/lib.sh) reports through report() above

oneline() { head -n 3 | tr '\n' ' '; }

# ---------------------------------------------------------------- schema and data
engram_log "creating $ROWS + $ROWS_D rows ($DIMS dims, $NSP spaces) and the indexes"
q <<SQL
SET client_min_messages = warning;
CREATE EXTENSION engram_hnsw;
-- deterministic pseudo-random vector of row n (queries use n < 0)
CREATE FUNCTION soak_vec(n bigint) RETURNS real[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS
\$\$ SELECT array_agg((hashint8(n * 64 + k)::float8 / 2147483648.0)::real ORDER BY k)
    FROM generate_series(1, $DIMS) k \$\$;

CREATE TABLE memories (id bigint PRIMARY KEY, space_id int NOT NULL, embedding real[] NOT NULL);
CREATE TABLE memories_d (id bigint PRIMARY KEY, space_id int NOT NULL, embedding real[] NOT NULL);
CREATE SEQUENCE memories_ids START $((ROWS + 1));
CREATE SEQUENCE memories_d_ids START $((ROWS_D + 1));
INSERT INTO memories SELECT i, i % $NSP, soak_vec(i) FROM generate_series(1, $ROWS) i;
INSERT INTO memories_d SELECT i, i % $NSP, soak_vec(i) FROM generate_series(1, $ROWS_D) i;
CREATE INDEX memories_idx ON memories USING engram_hnsw (space_id, embedding real_l2_ops)
    WITH (fastupdate = on, pending_list_limit = 256);
CREATE INDEX memories_d_idx ON memories_d USING engram_hnsw (space_id, embedding real_l2_ops)
    WITH (fastupdate = off);

-- the ledger
CREATE TABLE insert_log (seq bigserial PRIMARY KEY, tbl text NOT NULL, id bigint NOT NULL, space_id int NOT NULL);
CREATE TABLE update_log (seq bigserial PRIMARY KEY, tbl text NOT NULL, id bigint NOT NULL, space_id int NOT NULL);
CREATE TABLE delete_log (seq bigserial PRIMARY KEY, tbl text NOT NULL, id bigint NOT NULL);
CREATE TABLE violation_log (at timestamptz DEFAULT clock_timestamp(), kind text, tbl text, id bigint, detail text);
CREATE TABLE op_log (at timestamptz DEFAULT clock_timestamp(), op text, tbl text, n bigint, detail text);
CREATE TABLE soak_state (op text PRIMARY KEY, last_at timestamptz NOT NULL);
INSERT INTO soak_state VALUES ('vacuum_memories', now()), ('vacuum_memories_d', now() + interval '3 s'),
    ('merge_memories', now()), ('check_memories', now()), ('check_memories_d', now() + interval '5 s');
ANALYZE;
SQL

# ---------------------------------------------------------------- pgbench scripts
SCRIPTS="$WORK/scripts"
mkdir -p "$SCRIPTS"

# gate OP SECONDS: sets :due to 1 for exactly one client once per SECONDS
gate() {
	cat <<EOF
WITH u AS (UPDATE soak_state SET last_at = clock_timestamp()
           WHERE op = '$1' AND last_at < clock_timestamp() - interval '$2 seconds' RETURNING 1)
SELECT count(*) AS due FROM u \gset
EOF
}

# gen_scripts TABLE: writes TABLE's scripts into $SCRIPTS
gen_scripts() {
	local t="$1" seq="${1}_ids" idx="${1}_idx"
	local pick="SELECT last_value AS maxid FROM $seq \\gset
\\set id random(1, :maxid)"

	cat >"$SCRIPTS/ins_$t.sql" <<EOF
\\set s random(0, $((NSP - 1)))
BEGIN;
INSERT INTO $t (id, space_id, embedding) SELECT n, :s, soak_vec(n) FROM (SELECT nextval('$seq') AS n) x;
INSERT INTO insert_log (tbl, id, space_id) VALUES ('$t', currval('$seq'), :s);
COMMIT;
EOF
	cat >"$SCRIPTS/upd_$t.sql" <<EOF
$pick
\\set d random(1, $((NSP - 1)))
WITH u AS (UPDATE $t SET space_id = (space_id + :d) % $NSP WHERE id = :id RETURNING id, space_id)
INSERT INTO update_log (tbl, id, space_id) SELECT '$t', id, space_id FROM u;
EOF
	cat >"$SCRIPTS/del_$t.sql" <<EOF
$pick
WITH d AS (DELETE FROM $t WHERE id = :id RETURNING id)
INSERT INTO delete_log (tbl, id) SELECT '$t', id FROM d;
EOF
	cat >"$SCRIPTS/knn_$t.sql" <<EOF
$pick
\\set s random(0, $((NSP - 1)))
INSERT INTO violation_log (kind, tbl, id, detail)
SELECT 'knn_space', '$t', :s, format('query row %s: %s rows, %s of another space', :id, c, w)
FROM (SELECT count(*) AS c, count(*) FILTER (WHERE r.space_id <> :s) AS w
      FROM (SELECT id, space_id FROM $t WHERE space_id = :s
            ORDER BY embedding <-> COALESCE((SELECT embedding FROM $t WHERE id = :id), soak_vec(-:id))
            LIMIT $K) r) z
WHERE c <> $K OR w > 0;
EOF
	# without a space qual the planner may prefer a sort (one search per
	# space); the soak wants the index scan
	cat >"$SCRIPTS/knnall_$t.sql" <<EOF
\\set qn random(1, 1000000)
BEGIN;
SET LOCAL enable_seqscan = off;
INSERT INTO violation_log (kind, tbl, id, detail)
SELECT 'knn_all', '$t', :qn, format('%s rows, %s out of distance order', c, o)
FROM (SELECT count(*) AS c, count(*) FILTER (WHERE d < pd) AS o
      FROM (SELECT d, lag(d) OVER () AS pd
            FROM (SELECT embedding <-> soak_vec(-:qn) AS d FROM $t
                  ORDER BY embedding <-> soak_vec(-:qn) LIMIT $K) r) l) z
WHERE c <> $K OR o > 0;
COMMIT;
EOF
	cat >"$SCRIPTS/self_$t.sql" <<EOF
$pick
BEGIN;
SET LOCAL engram_hnsw.ef_search = $SELF_EF;
INSERT INTO violation_log (kind, tbl, id, detail)
SELECT 'self_space', '$t', m.id, format('not among the first 5 of space %s', m.space_id)
FROM $t m
WHERE m.id = :id AND NOT EXISTS (
    SELECT 1 FROM (SELECT x.id FROM $t x WHERE x.space_id = m.space_id
                   ORDER BY x.embedding <-> m.embedding LIMIT 5) s
    WHERE s.id = m.id);
COMMIT;
EOF
	{
		gate "vacuum_$t" "$VACUUM_EVERY"
		cat <<EOF
\\if :due
VACUUM $t;
INSERT INTO op_log (op, tbl) VALUES ('vacuum', '$t');
\\endif
EOF
	} >"$SCRIPTS/vacuum_$t.sql"
	{
		gate "check_$t" "$CHECK_EVERY"
		cat <<EOF
\\if :due
INSERT INTO op_log (op, tbl, n, detail)
SELECT 'check', '$t', unreachable,
       format('elements=%s deleted=%s heap_tids=%s unreachable=%s pending=%s', elements, deleted_elements, heap_tids, unreachable, pending)
FROM engram_hnsw_check('$idx');
\\endif
EOF
	} >"$SCRIPTS/check_$t.sql"
}
gen_scripts memories
gen_scripts memories_d
{
	gate merge_memories "$MERGE_EVERY"
	cat <<'EOF'
\if :due
SELECT engram_hnsw_merge_pending('memories_idx') AS merged \gset
INSERT INTO op_log (op, tbl, n) VALUES ('merge', 'memories', :merged);
\endif
EOF
} >"$SCRIPTS/merge_memories.sql"

# weights (per 200 transactions): memories gets about twice the traffic of
# memories_d; the gated scripts are no-ops between their runs
WEIGHTS=(
	ins_memories@24 upd_memories@20 del_memories@16 knn_memories@40 knnall_memories@6 self_memories@14
	ins_memories_d@12 upd_memories_d@10 del_memories_d@8 knn_memories_d@18 knnall_memories_d@3 self_memories_d@7
	vacuum_memories@2 vacuum_memories_d@2 merge_memories@2 check_memories@1 check_memories_d@1
)
PGB_ARGS=()
for w in "${WEIGHTS[@]}"; do
	PGB_ARGS+=(-f "$SCRIPTS/${w%@*}.sql@${w#*@}")
done
chmod -R a+rX "$SCRIPTS"

# ---------------------------------------------------------------- plans
# The workload's queries must use the engram_hnsw indexes.
why=()
for t in memories memories_d; do
	out="$(q -c "EXPLAIN (COSTS OFF) SELECT id FROM $t WHERE space_id = 7 ORDER BY embedding <-> (SELECT embedding FROM $t WHERE id = 3) LIMIT $K" \
		-c "SET enable_seqscan = off" \
		-c "EXPLAIN (COSTS OFF) SELECT id FROM $t ORDER BY embedding <-> soak_vec(-5) LIMIT $K" \
		-c "EXPLAIN (COSTS OFF) SELECT m.id FROM $t m WHERE m.id = 3 AND NOT EXISTS (SELECT 1 FROM (SELECT x.id FROM $t x WHERE x.space_id = m.space_id ORDER BY x.embedding <-> m.embedding LIMIT 5) s WHERE s.id = m.id)" 2>&1)" ||
		why+=("EXPLAIN failed: $(echo "$out" | oneline)")
	n="$(grep -c "Index Scan using ${t}_idx" <<<"$out" || true)"
	[[ "$n" == 3 ]] || why+=("$t: $n of 3 workload queries use ${t}_idx: $(echo "$out" | tr -s ' \n' ' ')")
done
report_why plans "(space KNN, all-spaces KNN and self query use the indexes)" "${why[@]}"

# ---------------------------------------------------------------- the run
PGB_OUT="$WORK/pgbench.out"
engram_log "pgbench: $CLIENTS clients, $THREADS threads, $SECONDS_RUN s, ${#WEIGHTS[@]} scripts"
t0="$(date +%s)"
set +e
timeout -k 30 $((SECONDS_RUN + 600)) "$PGBIN/pgbench" -n -c "$CLIENTS" -j "$THREADS" -T "$SECONDS_RUN" \
	--max-tries=1 --failures-detailed -P 30 "${PGB_ARGS[@]}" >"$PGB_OUT" 2>&1
pgb_rc=$?
set -e
run_s=$(($(date +%s) - t0))
sed -e "s|$SCRIPTS/||" "$PGB_OUT"
echo "pgbench exit status $pgb_rc after ${run_s}s"

tx="$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$PGB_OUT" | head -n 1)"
failed="$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$PGB_OUT" | head -n 1)"
tps="$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$PGB_OUT" | head -n 1)"
aborted="$(grep -c 'aborted' "$PGB_OUT" || true)"
why=()
[[ "$pgb_rc" == 0 ]] || why+=("pgbench exit status $pgb_rc")
[[ -n "$tx" && "$tx" -gt 0 ]] || why+=("no transactions processed")
[[ "${failed:-x}" == 0 ]] || why+=("failed transactions: ${failed:-not reported}")
[[ "$aborted" == 0 ]] || why+=("$aborted lines about aborted clients")
report_why pgbench "(transactions=${tx:-?} tps=${tps:-?} failed=${failed:-?} clients=$CLIENTS seconds=$SECONDS_RUN)" "${why[@]}"

# ---------------------------------------------------------------- figures
figures="$(qv -F ' ' -c "
	SELECT (SELECT count(*) FROM insert_log WHERE tbl = 'memories'),
	       (SELECT count(*) FROM update_log WHERE tbl = 'memories'),
	       (SELECT count(*) FROM delete_log WHERE tbl = 'memories'),
	       (SELECT count(*) FROM insert_log WHERE tbl = 'memories_d'),
	       (SELECT count(*) FROM update_log WHERE tbl = 'memories_d'),
	       (SELECT count(*) FROM delete_log WHERE tbl = 'memories_d'),
	       (SELECT count(*) FROM op_log WHERE op = 'merge'),
	       (SELECT coalesce(sum(n), 0) FROM op_log WHERE op = 'merge'),
	       (SELECT count(*) FROM op_log WHERE op = 'vacuum' AND tbl = 'memories'),
	       (SELECT count(*) FROM op_log WHERE op = 'vacuum' AND tbl = 'memories_d'),
	       (SELECT count(*) FROM op_log WHERE op = 'check'),
	       (SELECT coalesce(max(n), 0) FROM op_log WHERE op = 'check'),
	       (SELECT coalesce(sum(autovacuum_count), 0) FROM pg_stat_user_tables WHERE relname IN ('memories', 'memories_d'))")"
read -r ins_m upd_m del_m ins_d upd_d del_d merges merged vac_m vac_d checks max_unreach autovac <<<"$figures"
echo "# figures: transactions=${tx:-?} tps=${tps:-?} failed=${failed:-?}"
echo "# memories:   inserted=$ins_m updated(moved)=$upd_m deleted=$del_m"
echo "# memories_d: inserted=$ins_d updated(moved)=$upd_d deleted=$del_d"
echo "# merges=$merges (rows merged by them: $merged) vacuums=$((vac_m + vac_d)) (memories $vac_m, memories_d $vac_d; autovacuum $autovac) checks during the run=$checks (max unreachable $max_unreach)"

# wrong results (rows of another space, out of distance order) are always a
# failure; missing ones during the run (fewer than 10 rows, a row not found
# by its own vector) fail above SOAK_MAX_MISSING (0)
hard="$(qv -c "SELECT count(*) FROM violation_log WHERE detail ~ '(^|[^0-9])[1-9][0-9]* (of another space|out of distance order)'")"
nviol="$(qv -c "SELECT count(*) FROM violation_log")"
if ((hard > 0)); then
	report "not ok" "violations wrong" "($hard wrong results: $(qv -c "SELECT string_agg(format('%s %s %s %s', kind, tbl, id, detail), '; ') FROM (SELECT * FROM violation_log WHERE detail ~ '(^|[^0-9])[1-9][0-9]* (of another space|out of distance order)' ORDER BY at LIMIT 10) v"))"
else
	report ok "violations wrong" "(no row of another space, nothing out of distance order)"
fi
missing=$((nviol - hard))
if ((missing == 0)); then
	report ok violations "(knn, knnall and self scripts logged no missing row)"
else
	status=ok
	((missing <= MAX_MISSING)) || status="not ok"
	report "$status" violations "($missing missing-row violations, at most $MAX_MISSING allowed: $(qv -c "SELECT string_agg(format('%s %s %s %s', kind, tbl, id, detail), '; ') FROM (SELECT * FROM violation_log ORDER BY at LIMIT 10) v"))"
fi

# ---------------------------------------------------------------- ledger
# ledger TABLE INITIAL_ROWS
ledger() {
	local t="$1" init="$2" why=() res
	res="$(qv -F ' ' -c "
		WITH ins AS (SELECT id, space_id FROM insert_log WHERE tbl = '$t'),
		     del AS (SELECT id FROM delete_log WHERE tbl = '$t'),
		     lastupd AS (SELECT DISTINCT ON (id) id, space_id FROM update_log WHERE tbl = '$t' ORDER BY id, seq DESC)
		SELECT (SELECT count(*) FROM $t),
		       (SELECT count(*) FROM ins),
		       (SELECT count(*) FROM del),
		       (SELECT count(*) FROM $t m WHERE m.id IN (SELECT id FROM del)),
		       (SELECT count(*) - count(DISTINCT id) FROM del),
		       (SELECT count(*) FROM ins WHERE id NOT IN (SELECT id FROM del) AND id NOT IN (SELECT id FROM $t)),
		       (SELECT count(*) FROM $t m WHERE m.id > $init AND m.id NOT IN (SELECT id FROM ins)),
		       (SELECT count(*) FROM $t m
		         WHERE m.space_id IS DISTINCT FROM coalesce((SELECT u.space_id FROM lastupd u WHERE u.id = m.id),
		                                                    (SELECT i.space_id FROM ins i WHERE i.id = m.id),
		                                                    (m.id % $NSP)::int)),
		       (SELECT count(*) FROM $t m WHERE m.embedding IS DISTINCT FROM soak_vec(m.id))" 2>&1)" || {
		report "not ok" "ledger $t" "(query failed: $(echo "$res" | oneline))"
		return
	}
	local n ins del delpresent deldup insmissing unknown wrongspace wrongvec
	read -r n ins del delpresent deldup insmissing unknown wrongspace wrongvec <<<"$res"
	local expect=$((init + ins - del))
	[[ "$n" == "$expect" ]] || why+=("count(*)=$n, expected $init + $ins - $del = $expect")
	[[ "$delpresent" == 0 ]] || why+=("$delpresent deleted ids still present")
	[[ "$deldup" == 0 ]] || why+=("$deldup ids deleted twice")
	[[ "$insmissing" == 0 ]] || why+=("$insmissing inserted ids missing")
	[[ "$unknown" == 0 ]] || why+=("$unknown rows not in the insert log")
	[[ "$wrongspace" == 0 ]] || why+=("$wrongspace rows in a space other than the ledger's")
	[[ "$wrongvec" == 0 ]] || why+=("$wrongvec rows with a wrong embedding")
	report_why "ledger $t" "(rows=$n = $init + $ins inserted - $del deleted)" "${why[@]}"
}
ledger memories "$ROWS"
ledger memories_d "$ROWS_D"

# ---------------------------------------------------------------- structure
# check_index NAME TABLE [merged]: engram_hnsw_check; with "merged" the
# pending list must be empty and heap_tids equal the row count (after VACUUM)
check_index() {
	local name="$1" t="$2" mode="${3:-}" idx="${2}_idx" why=() out errf="$WORK/check.err" rows
	rows="$(qv -c "SELECT count(*) FROM $t")"
	if out="$(qv -F ' ' -c "SELECT pages, elements, deleted_elements, heap_tids, max_level, unreachable, pending FROM engram_hnsw_check('$idx')" 2>"$errf")"; then
		local pages elements deleted heap_tids max_level unreachable pending
		read -r pages elements deleted heap_tids max_level unreachable pending <<<"$out"
		local chk="pages=$pages elements=$elements deleted_elements=$deleted heap_tids=$heap_tids rows=$rows max_level=$max_level unreachable=$unreachable pending=$pending"
		local gap=()
		awk -v u="$unreachable" -v e="$elements" -v f="$MAX_UNREACH_FRAC" 'BEGIN { exit !(u + 0 <= f * e) }' ||
			gap+=("unreachable=$unreachable exceeds $MAX_UNREACH_FRAC of $elements elements")
		report_why "$name $idx reach" "(unreachable=$unreachable of $elements elements)" "${gap[@]}"
		((heap_tids >= rows)) || why+=("heap_tids=$heap_tids < $rows rows")
		if [[ "$mode" == merged ]]; then
			[[ "$pending" == 0 ]] || why+=("pending=$pending after the merge")
			[[ "$heap_tids" == "$rows" ]] || why+=("heap_tids=$heap_tids after VACUUM, expected $rows")
		fi
		[[ -s "$errf" ]] && engram_log "$name: $(tr '\n' ' ' <"$errf")"
		report_why "$name $idx" "($chk)" "${why[@]}"
	else
		report "not ok" "$name $idx" "(engram_hnsw_check failed: $(oneline <"$errf"))"
	fi
}
check_index check memories
check_index check memories_d

# ---------------------------------------------------------------- every row found
# self_find NAME TABLE space|all: each row (all rows with the space qual, a
# sample of $GSAMPLE without) must be among the first 5 index-scan results
# for its own vector, at engram_hnsw.ef_search = $SELF_EF (100, as the crash
# tests: this is about every row being findable; recall at the default
# ef_search is measured by the recall pass)
self_find() {
	local name="$1" t="$2" mode="$3" out inner rows_sql
	if [[ "$mode" == space ]]; then
		inner="SELECT x.id FROM $t x WHERE x.space_id = m.space_id ORDER BY x.embedding <-> m.embedding LIMIT 5"
		rows_sql="SELECT * FROM $t"
	else
		inner="SELECT x.id FROM $t x ORDER BY x.embedding <-> m.embedding LIMIT 5"
		rows_sql="SELECT * FROM $t ORDER BY hashint8(id) LIMIT $GSAMPLE"
	fi
	local sql="FROM ($rows_sql) m WHERE NOT EXISTS (SELECT 1 FROM ($inner) s WHERE s.id = m.id)"
	if ! out="$(q -c "SET enable_seqscan = off" -c "SET engram_hnsw.ef_search = $SELF_EF" -c "EXPLAIN (COSTS OFF) SELECT m.id $sql" 2>&1)"; then
		report "not ok" "$name $t" "(EXPLAIN failed: $(echo "$out" | oneline))"
		return
	fi
	if ! grep -q "Index Scan using ${t}_idx" <<<"$out"; then
		report "not ok" "$name $t" "(the self query does not use ${t}_idx: $(echo "$out" | tr -s ' \n' ' '))"
		return
	fi
	local t0 res
	t0="$(date +%s)"
	if ! res="$(qv -F ' ' -c "SET enable_seqscan = off" -c "SET engram_hnsw.ef_search = $SELF_EF" -c "
		SELECT (SELECT count(*) FROM ($rows_sql) a),
		       count(*), coalesce(string_agg(id::text, ',' ORDER BY id) FILTER (WHERE rn <= 20), '')
		FROM (SELECT m.id, row_number() OVER (ORDER BY m.id) AS rn $sql) miss" 2>&1)"; then
		report "not ok" "$name $t" "(query failed: $(echo "$res" | oneline))"
		return
	fi
	local checked missed ids
	read -r checked missed ids <<<"$res"
	local what="with space qual, all rows"
	[[ "$mode" == all ]] && what="no space qual, sample"
	if [[ "$missed" == 0 ]]; then
		report ok "$name $t" "($what: $checked of $checked rows found among the first 5, $(($(date +%s) - t0))s)"
	else
		report_why "$name $t" "($what" "$missed of $checked rows not found among the first 5; first ids: $ids)"
	fi
}
self_find self memories space
self_find self memories_d space
self_find selfall memories all
self_find selfall memories_d all

# ---------------------------------------------------------------- merge, VACUUM, again
engram_log "merging the pending list and vacuuming"
final_merged="$(qv -c "SELECT engram_hnsw_merge_pending('memories_idx')")" || final_merged="failed"
direct_merged="$(qv -c "SELECT engram_hnsw_merge_pending('memories_d_idx')")" || direct_merged="failed"
echo "# final merge: memories_idx $final_merged rows, memories_d_idx $direct_merged rows"
# The final VACUUM must remove every dead row's index entry: INDEX_CLEANUP
# ON, because with only a few dead rows left VACUUM would skip the indexes
# (PostgreSQL's bypass below 2% of the pages), and no snapshot older than
# the deletions may be left (an autovacuum ANALYZE started during the load
# may hold one).  So autovacuum stops on the two tables, and we wait (at
# most 120 s) until no other backend holds a snapshot or transaction; the
# VACUUM is repeated (twice at most) if entries are still left over.
q -c "ALTER TABLE memories SET (autovacuum_enabled = off)" \
	-c "ALTER TABLE memories_d SET (autovacuum_enabled = off)" || true
for _ in $(seq 1 120); do
	others="$(qv -c "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid()
		AND (backend_xmin IS NOT NULL OR backend_xid IS NOT NULL)")" || others=0
	[[ "$others" == 0 ]] && break
	sleep 1
done
[[ "$others" == 0 ]] || echo "# still $others other backends with a snapshot before the final VACUUM"
for t in memories memories_d; do
	for _ in 1 2 3; do
		q -c "VACUUM (INDEX_CLEANUP ON) $t" || true
		left="$(qv -c "SELECT (SELECT heap_tids FROM engram_hnsw_check('${t}_idx')) - (SELECT count(*) FROM $t)")" || left=0
		[[ "$left" == 0 ]] && break
		echo "# $t: $left index entries of dead rows left after VACUUM; waiting 2 s and vacuuming again"
		sleep 2
	done
done
q -c "ANALYZE memories" -c "ANALYZE memories_d" || true
check_index merged memories merged
check_index merged memories_d merged
self_find self_merged memories space
self_find self_merged memories_d space

# ---------------------------------------------------------------- recall
# recall TABLE: $NQ query vectors soak_vec(-q); query q searches space
# (q - 1) % $NSP; truth by an exact sequential scan.  Also over all spaces.
recall() {
	local t="$1" why=() out r_sp r_all
	if ! out="$(q -c "SET client_min_messages = warning" \
		-c "DROP TABLE IF EXISTS rq, truth_sp, truth_all, res_sp, res_all" \
		-c "CREATE TABLE rq AS SELECT g AS qid, (g - 1) % $NSP AS space_id, soak_vec(-g) AS v FROM generate_series(1, $NQ) g" \
		-c "SET enable_indexscan = off" -c "SET enable_bitmapscan = off" \
		-c "CREATE TABLE truth_sp AS SELECT rq.qid, t.id AS nid, t.dist FROM rq CROSS JOIN LATERAL (
				SELECT i.id, i.embedding <-> rq.v AS dist FROM $t i WHERE i.space_id = rq.space_id
				ORDER BY i.embedding <-> rq.v, i.id LIMIT $K) t" \
		-c "CREATE TABLE truth_all AS SELECT rq.qid, t.id AS nid, t.dist FROM rq CROSS JOIN LATERAL (
				SELECT i.id, i.embedding <-> rq.v AS dist FROM $t i
				ORDER BY i.embedding <-> rq.v, i.id LIMIT $K) t" \
		-c "RESET enable_indexscan" -c "RESET enable_bitmapscan" -c "SET enable_seqscan = off" \
		-c "CREATE TABLE res_sp AS SELECT rq.qid, t.id AS nid, t.space_id, t.dist FROM rq CROSS JOIN LATERAL (
				SELECT i.id, i.space_id, i.embedding <-> rq.v AS dist FROM $t i WHERE i.space_id = rq.space_id
				ORDER BY i.embedding <-> rq.v LIMIT $K) t" \
		-c "CREATE TABLE res_all AS SELECT rq.qid, t.id AS nid, t.dist FROM rq CROSS JOIN LATERAL (
				SELECT i.id, i.embedding <-> rq.v AS dist FROM $t i
				ORDER BY i.embedding <-> rq.v LIMIT $K) t" \
		-c "EXPLAIN (COSTS OFF) SELECT rq.qid, t.id FROM rq CROSS JOIN LATERAL (
				SELECT i.id FROM $t i WHERE i.space_id = rq.space_id ORDER BY i.embedding <-> rq.v LIMIT $K) t" 2>&1)"; then
		report "not ok" "recall $t" "(queries failed: $(echo "$out" | oneline))"
		return
	fi
	grep -q "Index Scan using ${t}_idx" <<<"$out" || why+=("the KNN query does not use ${t}_idx")
	# recall@K, a returned row tying the K-th true distance counts as a hit
	local rsql="
		WITH kth AS (SELECT qid, max(dist) AS kd FROM %TRUTH% GROUP BY qid),
		hits AS (
			SELECT rq.qid, count(DISTINCT r.nid) FILTER (
					WHERE r.nid IN (SELECT t.nid FROM %TRUTH% t WHERE t.qid = rq.qid)
					   OR r.dist <= k.kd + 1e-9 * greatest(1.0, abs(k.kd))) AS h
			FROM rq JOIN kth k ON k.qid = rq.qid LEFT JOIN %RES% r ON r.qid = rq.qid
			GROUP BY rq.qid)
		SELECT to_char(avg(least(h, $K))::numeric / $K, 'FM0.000') FROM hits"
	r_sp="$(qv -c "$(sed -e 's/%TRUTH%/truth_sp/g' -e 's/%RES%/res_sp/g' <<<"$rsql")")"
	r_all="$(qv -c "$(sed -e 's/%TRUTH%/truth_all/g' -e 's/%RES%/res_all/g' <<<"$rsql")")"
	local short wrong
	short="$(qv -c "SELECT count(*) FROM rq WHERE (SELECT count(*) FROM res_sp r WHERE r.qid = rq.qid) <> $K
	                                          OR (SELECT count(*) FROM res_all r WHERE r.qid = rq.qid) <> $K")"
	wrong="$(qv -c "SELECT count(*) FROM res_sp r JOIN rq ON rq.qid = r.qid WHERE r.space_id <> rq.space_id")"
	[[ "$short" == 0 ]] || why+=("$short queries did not return $K rows")
	[[ "$wrong" == 0 ]] || why+=("$wrong rows from another space")
	awk -v r="$r_sp" -v m="$MIN_RECALL" 'BEGIN { exit !(r + 0 >= m + 0) }' || why+=("per-space recall $r_sp < $MIN_RECALL")
	awk -v r="$r_all" -v m="$MIN_RECALL" 'BEGIN { exit !(r + 0 >= m + 0) }' || why+=("all-spaces recall $r_all < $MIN_RECALL")
	local ef
	ef="$(qv -c "LOAD 'engram_hnsw'" -c "SHOW engram_hnsw.ef_search" 2>/dev/null || echo '?')"
	report_why "recall $t" "(recall@$K per space=$r_sp all spaces=$r_all; $NQ queries, ef_search=$ef)" "${why[@]}"
	q -c "DROP TABLE IF EXISTS rq, truth_sp, truth_all, res_sp, res_all" || true
}
recall memories
recall memories_d

# ---------------------------------------------------------------- server log
if [[ -n "$SERVER_LOG" && -r "$SERVER_LOG" ]]; then
	tail -c +"$((LOG_OFFSET + 1))" "$SERVER_LOG" >"$WORK/server.log.part"
	bad="$(grep -E 'PANIC|TRAP|terminated by signal|was terminated|server process .* exited|ERROR|FATAL' "$WORK/server.log.part" |
		grep -v 'canceling autovacuum task' || true)"
	if [[ -z "$bad" ]]; then
		report ok "server log" "(no PANIC, TRAP, crash, ERROR or FATAL during the soak)"
	else
		report "not ok" "server log" "($(grep -c . <<<"$bad") bad lines)"
		echo "---- bad server log lines (first 40) ----"
		head -n 40 <<<"$bad"
		echo "----"
	fi
else
	echo "# server log not available (SOAK_SERVER_LOG unset): not scanned"
fi

engram_suite_end SOAK "$DB"
echo "# soak: transactions=${tx:-?} failed=${failed:-?} tps=${tps:-?} in ${SECONDS_RUN}s; total time $(($(date +%s) - T_START))s"
echo "# soak: $PASSED passed, $FAILED failed"
((FAILED == 0 && PASSED > 0))
