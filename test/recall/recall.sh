#!/usr/bin/env bash
#
# test/recall/recall.sh: recall@10 of engram_hnsw on Fashion-MNIST.
#
# Loads 10 000 train images into items(id int primary key, embedding real[])
# and 100 test images into queries(id int, embedding real[]), computes the
# exact top 10 of every query by a sequential scan (no index exists yet),
# then for each case builds an index, checks that KNN queries use it, runs
# engram_hnsw_check on it and measures recall@10 at the default ef_search:
#
#   l2_bulk            real_l2_ops, CREATE INDEX on the filled table (a
#                      parallel build: the table asks for 2 workers)
#   l2_bulk_serial     the same built serially (max_parallel_maintenance_
#                      workers = 0); its recall must be within 0.01
#                      (RECALL_INSERT_SLACK) of l2_bulk's
#   l2_insert          real_l2_ops, CREATE INDEX on an empty table, then
#                      10 000 single-row INSERT statements (fastupdate = on,
#                      the default: rows go through the pending list and
#                      merges at its limit; some are still pending at the end)
#   l2_insert_merged   the same, then engram_hnsw_merge_pending(): all rows
#                      in the graph
#   l2_insert_direct   the same with fastupdate = off (every row inserted
#                      into the graph at once)
#   l2_insert_concurrent  the same rows from 8 sessions at once (single-row
#                      INSERTs, fastupdate = on, pending_list_limit = 1MB, so
#                      the sessions' merges run concurrently, each linking
#                      its stripe); here no element may be unreachable and
#                      every row must be among the first 5 results for its
#                      own vector at ef_search 400
#                      The four insert cases must also reach the recall of
#                      l2_bulk minus 0.01 (RECALL_INSERT_SLACK).
#   l2_bulk_then_direct  40 000 train images bulk-built, then the next 5 000
#                      inserted through the direct path: no element of the
#                      old graph may be cut off (unreachable = 0)
#   cosine_bulk        real_cosine_ops, truth by <=>
#   ip_bulk            real_ip_ops, truth by <#> (unit vectors by default,
#                      RECALL_IP_NORMALIZE=0 for the raw pixel vectors)
#   spaces_l2          memory spaces: 20 000 train images in 100 spaces of
#                      200 (space = (id - 1) % 100), an index on (space_id,
#                      embedding real_l2_ops), 100 (space, query) pairs
#                      (test image q searches space (q - 1) % 100) with exact
#                      per-space truth; every query must return 10 rows of
#                      its space and recall@10 must be >= 0.99
#   ip_varnorm3_bulk, ip_varnorm3_direct, ip_varnorm3_merged,
#   ip_varnorm128_l2, ip_varnorm128_ip
#                      inner product on vectors whose norms vary (described
#                      at ipvar_cases below)
#   planner_default    with default planner settings a LIMIT 10 KNN query
#                      uses the index
#
# Output: one "ok - NAME ..." / "not ok - NAME ..." line per case, then a
# summary; exit status 1 if any case failed.
#
# Recall@10 = |returned ∩ truth| / 10 averaged over the queries; a returned
# row whose exact distance ties the 10th true distance counts as a hit.
#
# Run standalone as root: sudo bash test/recall/recall.sh
# (installs packages, builds and installs the extension, starts a throwaway
# cluster).  test/run_all.sh runs it with ENGRAM_SKIP_SETUP=1 and
# RECALL_USE_CLUSTER=1 (reuse the cluster in PGHOST/PGPORT).
#
# Knobs (environment): RECALL_ITEMS (10000), RECALL_QUERIES (100),
# RECALL_MIN (0.95), RECALL_MAX_UNREACHABLE_FRAC (0.01: elements that
# engram_hnsw_check reports unreachable from the entry point, as a fraction),
# RECALL_M (16), RECALL_EF_CONSTRUCTION (64), RECALL_IP_NORMALIZE (1),
# RECALL_PLANNER_CHECK (1; 0 skips the planner_default case),
# RECALL_SPACES (100), RECALL_SPACE_ROWS (200), RECALL_SPACES_MIN (0.99),
# RECALL_SPACES_CHECK (1; 0 skips the spaces_l2 case), RECALL_BT_BASE (40000),
# RECALL_BT_MORE (5000), RECALL_BULK_THEN_DIRECT (1; 0 skips that case),
# RECALL_IPVAR (1; 0 skips the ip_varnorm cases), RECALL_IPVAR_MIN (0.98),
# RECALL_IPVAR128_ROWS (20000), RECALL_CASES (a regular expression: only
# the run_case cases whose names match run).

set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=test/lib.sh
source "$HERE/../lib.sh"

N_ITEMS="${RECALL_ITEMS:-10000}"
N_QUERIES="${RECALL_QUERIES:-100}"
MIN_RECALL="${RECALL_MIN:-0.95}"
RECALL_MIN_DEFAULT="$MIN_RECALL"
INSERT_SLACK="${RECALL_INSERT_SLACK:-0.01}"
L2_BULK_RECALL=""
MAX_UNREACH_FRAC="${RECALL_MAX_UNREACHABLE_FRAC:-0.01}"
M="${RECALL_M:-16}"
EF_CONSTRUCTION="${RECALL_EF_CONSTRUCTION:-64}"
IP_NORMALIZE="${RECALL_IP_NORMALIZE:-1}"
SP_SPACES="${RECALL_SPACES:-100}"
SP_ROWS="${RECALL_SPACE_ROWS:-200}"
SP_MIN_RECALL="${RECALL_SPACES_MIN:-0.99}"
DB=engram_recall
K=10

PASSED=0
FAILED=0

engram_suite_start RECALL "$DB" 15min -c shared_buffers=256MB -c maintenance_work_mem=256MB
engram_build_idx2copy
engram_psql -c "CREATE EXTENSION engram_hnsw"

q() { engram_psql "$@"; }
qv() { engram_psql_val "$@"; }

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

engram_log "loading $N_ITEMS train vectors and $N_QUERIES test queries"
engram_load_fmnist items train "$N_ITEMS" 0 pk
engram_load_fmnist queries test "$N_QUERIES" 0 nopk
if [[ "$IP_NORMALIZE" == 1 ]]; then
	engram_load_fmnist items_unit train "$N_ITEMS" 0 pk --normalize
	engram_load_fmnist queries_unit test "$N_QUERIES" 0 nopk --normalize
	IP_ITEMS=items_unit IP_QUERIES=queries_unit
else
	IP_ITEMS=items IP_QUERIES=queries
fi

# Exact top K by sequential scan.  No engram_hnsw index exists at this
# point, and index scans are disabled anyway.
truth() {
	local name="$1" items="$2" queries="$3" op="$4"
	q -c "SET enable_indexscan = off" -c "SET enable_bitmapscan = off" -c "
		CREATE TABLE $name AS
		SELECT qq.id AS qid, t.id AS nid, t.dist
		FROM $queries qq CROSS JOIN LATERAL (
			SELECT i.id, i.embedding $op qq.embedding AS dist
			FROM $items i
			ORDER BY i.embedding $op qq.embedding, i.id
			LIMIT $K) t"
}

t0="$(now)"
truth truth_l2 items queries '<->'
truth truth_cos items queries '<=>'
truth truth_ip "$IP_ITEMS" "$IP_QUERIES" '<#>'
engram_log "exact ground truth for 3 metrics: $(elapsed "$t0")s"
ntruth="$(qv -c "SELECT count(*) FROM truth_l2")"
[[ "$ntruth" == $((N_QUERIES * K)) ]] || engram_die "ground truth has $ntruth rows, expected $((N_QUERIES * K))"

# recall_of RESULT_TABLE TRUTH_TABLE QUERIES_TABLE [k] -> prints recall@k
# (3 decimals; k defaults to K)
recall_of() {
	local res="$1" tru="$2" queries="$3" K="${4:-$K}"
	qv -c "
		WITH kth AS (
			SELECT qid, max(dist) AS kd FROM $tru GROUP BY qid
		), hits AS (
			SELECT qq.id AS qid,
				count(DISTINCT r.nid) FILTER (
					WHERE r.nid IN (SELECT t.nid FROM $tru t WHERE t.qid = qq.id)
					   OR r.dist <= k.kd + 1e-9 * greatest(1.0, abs(k.kd))) AS h
			FROM $queries qq
			JOIN kth k ON k.qid = qq.id
			LEFT JOIN $res r ON r.qid = qq.id
			GROUP BY qq.id
		)
		SELECT to_char(avg(least(h, $K))::numeric / $K, 'FM0.000') FROM hits"
}

report() {
	local status="$1" name="$2" detail="$3"
	if [[ "$status" == ok ]]; then
		PASSED=$((PASSED + 1))
		echo "ok - $name $detail"
	else
		FAILED=$((FAILED + 1))
		echo "not ok - $name $detail"
	fi
}

# check_recall NAME MODE k RECALL RESULT_TABLE: run_case's recall@k checks,
# appended to its why[] (dynamic scope).  The floor is MIN_RECALL; with
# CASE_WITHIN=CASE, recall must also be at most INSERT_SLACK below that
# earlier case's recall@k (RECALLS[CASE@k]).
declare -A RECALLS=()
check_recall() {
	local name="$1" mode="$2" k="$3" recall="$4" res="$5" nres ref
	RECALLS["$name@$k"]="$recall"
	nres="$(qv -c "SELECT count(*) FROM $res")"
	[[ "$nres" == $((N_QUERIES * k)) ]] || why+=("index returned $nres rows, expected $((N_QUERIES * k))")
	awk -v r="$recall" -v m="$MIN_RECALL" 'BEGIN { exit !(r + 0 >= m + 0) }' ||
		why+=("recall@$k $recall < $MIN_RECALL")
	if [[ -n "${CASE_WITHIN:-}" ]]; then
		ref="${RECALLS["$CASE_WITHIN@$k"]:-}"
		if [[ -z "$ref" ]]; then
			why+=("no recall@$k of $CASE_WITHIN to compare with")
		else
			awk -v r="$recall" -v b="$ref" -v s="$INSERT_SLACK" 'BEGIN { exit !(r + 0 >= b - s) }' ||
				why+=("recall@$k $recall is more than $INSERT_SLACK below $CASE_WITHIN's $ref")
		fi
	fi
	[[ "$name" == l2_bulk ]] && L2_BULK_RECALL="$recall"
	[[ "$name" == l2_* ]] || return 0
	if [[ "$mode" == bulk_serial && -n "${L2_BULK_RECALL:-}" ]]; then
		awk -v r="$recall" -v b="$L2_BULK_RECALL" -v s="$INSERT_SLACK" \
			'BEGIN { d = r - b; if (d < 0) d = -d; exit !(d <= s) }' ||
			why+=("recall $recall differs from the parallel build's $L2_BULK_RECALL by more than $INSERT_SLACK")
	fi
	if [[ "$mode" == insert* && -n "${L2_BULK_RECALL:-}" ]]; then
		awk -v r="$recall" -v b="$L2_BULK_RECALL" -v s="$INSERT_SLACK" \
			'BEGIN { exit !(r + 0 >= b - s) }' ||
			why+=("recall $recall is more than $INSERT_SLACK below l2_bulk's $L2_BULK_RECALL")
	fi
}

# run_case NAME bulk|insert|insert_merged|insert_direct TABLE QUERIES OPCLASS OP TRUTH
# (dynamic scope: a caller may set K, N_ITEMS, N_QUERIES, MIN_RECALL, and
# CASE_KS / CASE_WITHIN as check_recall describes)
# the server's engram_hnsw.ef_search ("?" when it cannot tell)
ef_search_now() { qv -c "LOAD 'engram_hnsw'" -c "SHOW engram_hnsw.ef_search" 2>/dev/null || echo '?'; }

# check_structure NAME IDX NROWS ERRF [exact]: engram_hnsw_check of IDX
# (NOTICEs to ERRF): NROWS heap TIDs, no deleted elements, unreachable
# elements at most MAX_UNREACH_FRAC of them (with "exact": none); sets the
# caller's chk and adds the failures to its why
check_structure() {
	local name="$1" idx="$2" nrows="$3" errf="$4" exact="${5:-}" out
	local pages elements deleted heap_tids max_level unreachable
	if ! out="$(qv -F ' ' -c "SELECT pages, elements, deleted_elements, heap_tids, max_level, unreachable FROM engram_hnsw_check('$idx'::regclass)" 2>"$errf")"; then
		why+=("engram_hnsw_check failed: $(head -n 3 "$errf" | tr '\n' ' ')")
		return 0
	fi
	read -r pages elements deleted heap_tids max_level unreachable <<<"$out"
	chk="pages=$pages elements=$elements heap_tids=$heap_tids max_level=$max_level unreachable=$unreachable"
	[[ "$heap_tids" == "$nrows" ]] || why+=("heap_tids=$heap_tids, expected $nrows")
	[[ "$deleted" == 0 ]] || why+=("deleted_elements=$deleted, expected 0")
	if ! awk -v u="$unreachable" -v e="$elements" -v f="$MAX_UNREACH_FRAC" 'BEGIN { exit !(u + 0 <= f * e) }'; then
		why+=("unreachable=$unreachable exceeds ${MAX_UNREACH_FRAC} of $elements elements")
	fi
	if [[ -n "$exact" && "$unreachable" != 0 ]]; then
		why+=("unreachable=$unreachable after concurrent merges, expected 0")
	fi
	# NOTICEs of the checker (e.g. about unreachable elements)
	if [[ -s "$errf" ]]; then
		engram_log "$name: $(tr '\n' ' ' <"$errf")"
	fi
}

run_case() {
	local name="$1" mode="$2" src="$3" queries="$4" opclass="$5" op="$6" tru="$7"
	local table="$src" idx="${name}_idx" why=() out t0 build_s recall="n/a" chk=""

	[[ "$name" =~ ${RECALL_CASES:-.} ]] || return 0
	local withopts="WITH (m = $M, ef_construction = $EF_CONSTRUCTION)"

	[[ "$mode" == insert_direct ]] &&
		withopts="WITH (m = $M, ef_construction = $EF_CONSTRUCTION, fastupdate = off)"
	[[ "$mode" == insert_concurrent ]] &&
		withopts="WITH (m = $M, ef_construction = $EF_CONSTRUCTION, pending_list_limit = 1024)"

	engram_log "case $name: $mode build, $opclass"
	t0="$(now)"
	if [[ "$mode" == bulk* ]]; then
		# bulk: the table asks for 2 parallel workers; bulk_serial: none
		local workers=2
		[[ "$mode" == bulk_serial ]] && workers=0
		if ! out="$(q -c "SET max_parallel_maintenance_workers = $workers" \
			-c "CREATE INDEX $idx ON $table USING engram_hnsw (embedding $opclass) $withopts" 2>&1)"; then
			report "not ok" "$name" "(CREATE INDEX failed: $(echo "$out" | head -n 3 | tr '\n' ' '))"
			return
		fi
	else
		table="${src}_ins"
		if ! out="$(q -c "SET client_min_messages = warning" -c "DROP TABLE IF EXISTS $table" \
			-c "CREATE TABLE $table (id int primary key, embedding real[])" \
			-c "CREATE INDEX $idx ON $table USING engram_hnsw (embedding $opclass) $withopts" 2>&1)"; then
			report "not ok" "$name" "(CREATE INDEX on empty table failed: $(echo "$out" | head -n 3 | tr '\n' ' '))"
			return
		fi
		# one INSERT statement (and transaction) per row
		if [[ "$mode" == insert_concurrent ]]; then
			# 8 sessions at once, each its share of the rows
			local k pids=() failed=0
			for k in 0 1 2 3 4 5 6 7; do
				printf '%s\n' \
					"SELECT format('INSERT INTO $table (id, embedding) VALUES (%s, %L)', id, embedding) FROM $src WHERE id % 8 = $k ORDER BY id" \
					'\gexec' | q -f - >"$WORK/conc.$k.out" 2>&1 &
				pids+=($!)
			done
			for k in "${pids[@]}"; do
				wait "$k" || failed=1
			done
			if ((failed)); then
				report "not ok" "$name" "(concurrent single-row INSERTs failed: $(cat "$WORK"/conc.*.out | grep -m 3 ERROR | tr '\n' ' '))"
				return
			fi
		elif ! out="$(printf '%s\n' \
			"SELECT format('INSERT INTO $table (id, embedding) VALUES (%s, %L)', id, embedding) FROM $src ORDER BY id" \
			'\gexec' | q -f - 2>&1)"; then
			report "not ok" "$name" "(single-row INSERTs failed: $(echo "$out" | head -n 3 | tr '\n' ' '))"
			return
		fi
		local n
		n="$(qv -c "SELECT count(*) FROM $table")"
		if [[ "$n" != "$N_ITEMS" ]]; then
			report "not ok" "$name" "(single-row INSERTs: $n rows, expected $N_ITEMS)"
			return
		fi
		if [[ "$mode" == insert_merged ]] &&
			! out="$(q -c "SELECT engram_hnsw_merge_pending('$idx')" 2>&1)"; then
			report "not ok" "$name" "(engram_hnsw_merge_pending failed: $(echo "$out" | head -n 3 | tr '\n' ' '))"
			return
		fi
		q -c "ANALYZE $table"
	fi
	build_s="$(elapsed "$t0")"

	# structural check
	check_structure "$name" "$idx" "$N_ITEMS" "$WORK/check.err" "$([[ "$mode" == insert_concurrent ]] && echo exact)"

	# the KNN query must be an index scan on our index
	local knn="SELECT qq.id AS qid, r.id AS nid, r.dist FROM $queries qq CROSS JOIN LATERAL (
		SELECT i.id, i.embedding $op qq.embedding AS dist FROM $table i
		ORDER BY i.embedding $op qq.embedding LIMIT $K) r"
	if out="$(q -c "SET enable_seqscan = off" -c "EXPLAIN (COSTS OFF) $knn" 2>&1)"; then
		grep -q "Index Scan using $idx" <<<"$out" ||
			why+=("plan does not use $idx: $(echo "$out" | tr -s ' \n' ' ')")
	else
		why+=("EXPLAIN failed: $(echo "$out" | head -n 3 | tr '\n' ' ')")
	fi

	# approximate results and recall@k for each k of CASE_KS (truth
	# table TRUTH$k), or recall@K (truth table TRUTH)
	local k ks="${CASE_KS:-$K}" res tk all_recall=""
	for k in $ks; do
		res="result_${name}_$k"
		tk="$tru"
		[[ -n "${CASE_KS:-}" ]] && tk="$tru$k"
		if out="$(q -c "SET enable_seqscan = off" -c "DROP TABLE IF EXISTS $res" \
			-c "CREATE TABLE $res AS ${knn/LIMIT $K)/LIMIT $k)}" 2>&1)"; then
			recall="$(recall_of "$res" "$tk" "$queries" "$k")"
			check_recall "$name" "$mode" "$k" "$recall" "$res"
		else
			why+=("KNN query failed: $(echo "$out" | head -n 3 | tr '\n' ' ')")
		fi
		if [[ -n "${CASE_KS:-}" ]]; then
			all_recall+="${all_recall:+ }@$k=$recall"
		fi
	done
	if [[ -n "$all_recall" ]]; then
		recall="$all_recall"
	fi

	# every row findable by its own vector (after concurrent merges)
	if [[ "$mode" == insert_concurrent ]]; then
		local missing
		# at a wide ef_search: at the default, even a bulk-built index of
		# these rows misses about 15 of 10 000 self queries (approximate
		# search), at 400 none; a row still missed is cut off from the graph
		if missing="$(qv -c "SET enable_seqscan = off" -c "SET engram_hnsw.ef_search = 400" -c "SELECT count(*) FROM $table x
				WHERE NOT EXISTS (SELECT 1 FROM (SELECT i.id FROM $table i
					ORDER BY i.embedding $op x.embedding LIMIT 5) s WHERE s.id = x.id)" 2>&1)"; then
			[[ "$missing" == 0 ]] || why+=("$missing rows not among the first 5 for their own vector")
			chk+=" self_missing=$missing"
		else
			why+=("self query failed: $(echo "$missing" | head -n 3 | tr '\n' ' ')")
		fi
	fi

	report_why "$name" "recall=$recall (ef_search=$(ef_search_now) build=${build_s}s $chk)" "${why[@]}"
	q -c "DROP INDEX IF EXISTS $idx" || true
}

q -c "ALTER TABLE items SET (parallel_workers = 2)"
run_case l2_bulk bulk items queries real_l2_ops '<->' truth_l2
run_case l2_bulk_serial bulk_serial items queries real_l2_ops '<->' truth_l2
run_case l2_insert insert items queries real_l2_ops '<->' truth_l2
run_case l2_insert_merged insert_merged items queries real_l2_ops '<->' truth_l2
run_case l2_insert_direct insert_direct items queries real_l2_ops '<->' truth_l2
run_case l2_insert_concurrent insert_concurrent items queries real_l2_ops '<->' truth_l2
run_case cosine_bulk bulk items queries real_cosine_ops '<=>' truth_cos
run_case ip_bulk bulk "$IP_ITEMS" "$IP_QUERIES" real_ip_ops '<#>' truth_ip

# Inner product with norms that vary: the largest vectors are everyone's
# nearest neighbours.  The neighbour-selection heuristic must not let one
# of them prune every other candidate (see hnsw_selection_distance()).
#
#   ip_varnorm3_*      10 000 3-d rows, each component the product of two
#                      uniform [0,1) numbers; 100 queries with uniform [0,1)
#                      components; recall@10 and @20 >= 0.98
#                      (RECALL_IPVAR_MIN) when bulk-built (_bulk), inserted
#                      one by one with fastupdate = off (_direct) and through
#                      the pending list and engram_hnsw_merge_pending()
#                      (_merged)
#   ip_varnorm128_*    20 000 (RECALL_IPVAR128_ROWS) 128-d rows of a
#                      Gaussian mixture (64 centres, coordinate j scaled by
#                      1/sqrt(j), as bench/tools/gen.c draws), offset by 0.5
#                      and scaled by a per-row factor uniform in (0, 1];
#                      100 queries from the mixture; both bulk-built:
#                      real_l2_ops (_l2, for reference: recall >= 0.9) and
#                      real_ip_ops (_ip), whose recall@10 and @20 must reach
#                      0.98 (RECALL_IPVAR_MIN).  Over builds (the levels are
#                      random) _l2 measured 0.97-1.00 and _ip 0.989-0.998;
#                      selecting neighbours by inner product instead of
#                      euclidean distance gave _ip 0.953 and 0.948.  A floor
#                      relative to _l2 could not tell these apart.
# Rows are drawn by random() after setseed(), so every run has the same.
IPVAR_MIN="${RECALL_IPVAR_MIN:-0.98}"
IPVAR128_ROWS="${RECALL_IPVAR128_ROWS:-20000}"
GAUSS="(sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()))"
ipvar_cases() {
	local N_ITEMS=10000 N_QUERIES=100 MIN_RECALL="$IPVAR_MIN" CASE_KS="10 20" K

	engram_log "varying-norm inner product sets: 3-d x $N_ITEMS, 128-d x $IPVAR128_ROWS"
	q -c "SET client_min_messages = warning" -c "SELECT setseed(0.42)" \
		-c "DROP TABLE IF EXISTS ipv3, ipv3_q" \
		-c "CREATE TABLE ipv3 (id int primary key, embedding real[])" \
		-c "INSERT INTO ipv3 SELECT i, ARRAY[random() * random(), random() * random(), random() * random()]::real[]
			FROM generate_series(1, $N_ITEMS) i" \
		-c "CREATE TABLE ipv3_q AS SELECT i AS id, ARRAY[random(), random(), random()]::real[] AS embedding
			FROM generate_series(1, $N_QUERIES) i" \
		-c "ANALYZE ipv3" >/dev/null
	for K in $CASE_KS; do
		truth "ipv3_truth$K" ipv3 ipv3_q '<#>'
	done
	run_case ip_varnorm3_bulk bulk ipv3 ipv3_q real_ip_ops '<#>' ipv3_truth
	run_case ip_varnorm3_direct insert_direct ipv3 ipv3_q real_ip_ops '<#>' ipv3_truth
	run_case ip_varnorm3_merged insert_merged ipv3 ipv3_q real_ip_ops '<#>' ipv3_truth

	N_ITEMS="$IPVAR128_ROWS"
	q -c "SET client_min_messages = warning" -c "SELECT setseed(0.17)" \
		-c "DROP TABLE IF EXISTS ipv128_c, ipv128, ipv128_q" \
		-c "CREATE TABLE ipv128_c AS SELECT c, j, (2 * $GAUSS / sqrt(j))::real AS x
			FROM generate_series(0, 63) c, generate_series(1, 128) j ORDER BY c, j" \
		-c "CREATE TABLE ipv128 AS SELECT r.id, array_agg(((c.x + $GAUSS / sqrt(c.j) + 0.5) * r.f)::real ORDER BY c.j) AS embedding
			FROM (SELECT i AS id, floor(random() * 64)::int AS c, 1 - random() AS f
				FROM generate_series(1, $N_ITEMS) i) r JOIN ipv128_c c ON c.c = r.c
			GROUP BY r.id ORDER BY r.id" \
		-c "CREATE TABLE ipv128_q AS SELECT r.id, array_agg((c.x + $GAUSS / sqrt(c.j))::real ORDER BY c.j) AS embedding
			FROM (SELECT i AS id, floor(random() * 64)::int AS c FROM generate_series(1, $N_QUERIES) i) r
			JOIN ipv128_c c ON c.c = r.c GROUP BY r.id ORDER BY r.id" \
		-c "ALTER TABLE ipv128 ADD PRIMARY KEY (id)" -c "ANALYZE ipv128" >/dev/null
	for K in $CASE_KS; do
		truth "ipv128_l2_truth$K" ipv128 ipv128_q '<->'
		truth "ipv128_ip_truth$K" ipv128 ipv128_q '<#>'
	done
	# the L2 index for reference (0.97-1.00 over builds: random levels)
	MIN_RECALL=0.9
	run_case ip_varnorm128_l2 bulk ipv128 ipv128_q real_l2_ops '<->' ipv128_l2_truth
	MIN_RECALL="$IPVAR_MIN"
	run_case ip_varnorm128_ip bulk ipv128 ipv128_q real_ip_ops '<#>' ipv128_ip_truth
	MIN_RECALL="$RECALL_MIN_DEFAULT"
	q -c "DROP TABLE IF EXISTS ipv3, ipv3_q, ipv128_c, ipv128, ipv128_q" || true
}
if [[ "${RECALL_IPVAR:-1}" == 1 ]]; then
	ipvar_cases
fi

# l2_bulk_then_direct: rows inserted one by one into a big bulk-built graph
# must not cut its old elements off.  The first $BT_BASE train images are
# bulk-built (2 workers), then the next $BT_MORE go in through the direct
# path (fastupdate = off) in one INSERT (one aminsert per row).  Their
# back-links prune the lists of old elements; outliers that only a hub and
# each other linked to lost every link from the rest of the graph before
# hnsw_relink_dropped() asked for a link from an element the pruning list
# still links to (2 unreachable elements in 3 of 3 runs on these rows, 0
# after).  Passes if the index holds every row and no element is unreachable.
BT_BASE="${RECALL_BT_BASE:-40000}"
BT_MORE="${RECALL_BT_MORE:-5000}"
bulk_then_direct_case() {
	local name=l2_bulk_then_direct out why=() t0 unreachable heap_tids
	engram_log "case $name: $BT_BASE rows bulk-built, $BT_MORE inserted directly"
	t0="$(now)"
	if ! engram_load_fmnist bt_items train "$BT_BASE" 0 nopk ||
		! engram_load_fmnist bt_more train "$BT_MORE" "$BT_BASE" nopk; then
		report "not ok" "$name" "(loading the rows failed)"
		return
	fi
	if ! out="$(q -c "ALTER TABLE bt_items SET (parallel_workers = 2)" \
		-c "SET max_parallel_maintenance_workers = 2" \
		-c "CREATE INDEX bt_idx ON bt_items USING engram_hnsw (embedding real_l2_ops) WITH (m = $M, ef_construction = $EF_CONSTRUCTION, fastupdate = off)" \
		-c "INSERT INTO bt_items SELECT id + $BT_BASE, embedding FROM bt_more" 2>&1)"; then
		report "not ok" "$name" "(build or INSERT failed: $(echo "$out" | head -n 3 | tr '\n' ' '))"
		return
	fi
	if out="$(qv -F ' ' -c "SET client_min_messages = warning" \
		-c "SELECT heap_tids, unreachable FROM engram_hnsw_check('bt_idx')" 2>&1)"; then
		read -r heap_tids unreachable <<<"$out"
		[[ "$heap_tids" == $((BT_BASE + BT_MORE)) ]] ||
			why+=("heap_tids=$heap_tids, expected $((BT_BASE + BT_MORE))")
		[[ "$unreachable" == 0 ]] || why+=("unreachable=$unreachable, expected 0")
	else
		why+=("engram_hnsw_check failed: $(echo "$out" | head -n 3 | tr '\n' ' ')")
	fi
	local detail="(heap_tids=${heap_tids:-?} unreachable=${unreachable:-?} ${BT_BASE}+${BT_MORE} rows in $(elapsed "$t0")s)"
	report_why "$name" "$detail" "${why[@]}"
	q -c "DROP TABLE IF EXISTS bt_items, bt_more" || true
}
if [[ "${RECALL_BULK_THEN_DIRECT:-1}" == 1 ]]; then
	bulk_then_direct_case
fi

# spaces_l2: memory spaces.  The first $SP_SPACES * $SP_ROWS train images in
# $SP_SPACES spaces (space = (id - 1) % $SP_SPACES, so $SP_ROWS rows each),
# one index on (space_id, embedding real_l2_ops), and $N_QUERIES (space,
# query) pairs: test image q searches space (q - 1) % $SP_SPACES.  Ground
# truth: the exact top K within the space by a sequential scan.  Passes if
# every query returns K rows of its own space through the index and recall@K
# at the default ef_search is at least $SP_MIN_RECALL.
spaces_case() {
	local name=spaces_l2 idx=spaces_l2_idx why=() out t0 build_s recall="n/a" chk=""
	local nrows=$((SP_SPACES * SP_ROWS))

	engram_log "case $name: $SP_SPACES spaces x $SP_ROWS rows, real_l2_ops"
	if ! out="$(engram_load_fmnist sp_src train "$nrows" 0 nopk 2>&1 &&
		q -c "SET client_min_messages = warning" -c "DROP TABLE IF EXISTS sp_items, sp_queries, truth_sp" \
			-c "CREATE TABLE sp_items AS SELECT id, (id - 1) % $SP_SPACES AS space_id, embedding FROM sp_src" \
			-c "DROP TABLE sp_src" \
			-c "CREATE TABLE sp_queries AS SELECT id, (id - 1) % $SP_SPACES AS space_id, embedding FROM queries" \
			-c "ANALYZE sp_items" -c "ANALYZE sp_queries" 2>&1)"; then
		report "not ok" "$name" "(loading failed: $(echo "$out" | head -n 3 | tr '\n' ' '))"
		return
	fi
	# exact top K within each query's space (no index exists yet)
	q -c "SET enable_indexscan = off" -c "SET enable_bitmapscan = off" -c "
		CREATE TABLE truth_sp AS
		SELECT qq.id AS qid, t.id AS nid, t.dist
		FROM sp_queries qq CROSS JOIN LATERAL (
			SELECT i.id, i.embedding <-> qq.embedding AS dist
			FROM sp_items i WHERE i.space_id = qq.space_id
			ORDER BY i.embedding <-> qq.embedding, i.id
			LIMIT $K) t"

	t0="$(now)"
	if ! out="$(q -c "CREATE INDEX $idx ON sp_items USING engram_hnsw (space_id, embedding real_l2_ops) WITH (m = $M, ef_construction = $EF_CONSTRUCTION)" 2>&1)"; then
		report "not ok" "$name" "(CREATE INDEX failed: $(echo "$out" | head -n 3 | tr '\n' ' '))"
		return
	fi
	build_s="$(elapsed "$t0")"

	# structural check
	check_structure "$name" "$idx" "$nrows" "$WORK/check_sp.err"

	# the KNN query must be an index scan with the space as Index Cond
	local knn="SELECT qq.id AS qid, r.id AS nid, r.space_id, r.dist FROM sp_queries qq CROSS JOIN LATERAL (
		SELECT i.id, i.space_id, i.embedding <-> qq.embedding AS dist FROM sp_items i
		WHERE i.space_id = qq.space_id
		ORDER BY i.embedding <-> qq.embedding LIMIT $K) r"
	if out="$(q -c "SET enable_seqscan = off" -c "EXPLAIN (COSTS OFF) $knn" 2>&1)"; then
		grep -q "Index Scan using $idx" <<<"$out" ||
			why+=("plan does not use $idx: $(echo "$out" | tr -s ' \n' ' ')")
		grep -q "Index Cond: (space_id = qq.space_id)" <<<"$out" ||
			why+=("the space is not an Index Cond: $(echo "$out" | tr -s ' \n' ' ')")
	else
		why+=("EXPLAIN failed: $(echo "$out" | head -n 3 | tr '\n' ' ')")
	fi

	local res="result_${name}"
	if out="$(q -c "SET enable_seqscan = off" -c "DROP TABLE IF EXISTS $res" \
		-c "CREATE TABLE $res AS $knn" 2>&1)"; then
		recall="$(recall_of "$res" truth_sp sp_queries)"
		local short wrong
		short="$(qv -c "SELECT count(*) FROM sp_queries qq WHERE (SELECT count(*) FROM $res r WHERE r.qid = qq.id) <> $K")"
		wrong="$(qv -c "SELECT count(*) FROM $res r JOIN sp_queries qq ON qq.id = r.qid WHERE r.space_id <> qq.space_id")"
		[[ "$short" == 0 ]] || why+=("$short queries did not return $K rows")
		[[ "$wrong" == 0 ]] || why+=("$wrong rows from another space")
		awk -v r="$recall" -v m="$SP_MIN_RECALL" 'BEGIN { exit !(r + 0 >= m + 0) }' ||
			why+=("recall $recall < $SP_MIN_RECALL")
	else
		why+=("KNN query failed: $(echo "$out" | head -n 3 | tr '\n' ' ')")
	fi

	report_why "$name" "recall=$recall (spaces=$SP_SPACES rows_per_space=$SP_ROWS queries=$N_QUERIES ef_search=$(ef_search_now) build=${build_s}s $chk)" "${why[@]}"
	q -c "DROP TABLE IF EXISTS sp_items, sp_queries, truth_sp, $res" || true
}
if [[ "${RECALL_SPACES_CHECK:-1}" == 1 ]]; then
	spaces_case
fi

# With default planner settings the index must be chosen for a plain
# ORDER BY ... LIMIT query.
planner_case() {
	local out
	if ! out="$(q -c "CREATE INDEX planner_idx ON items USING engram_hnsw (embedding real_l2_ops) WITH (m = $M, ef_construction = $EF_CONSTRUCTION)" \
		-c "ANALYZE items" \
		-c "EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY embedding <-> (SELECT embedding FROM queries WHERE id = 1) LIMIT $K" 2>&1)"; then
		report "not ok" planner_default "(failed: $(echo "$out" | head -n 3 | tr '\n' ' '))"
	elif grep -q "Index Scan using planner_idx" <<<"$out"; then
		report ok planner_default "(LIMIT $K KNN query uses the index with default settings)"
	else
		report "not ok" planner_default "(default plan does not use the index: $(echo "$out" | tr -s ' \n' ' '))"
	fi
	q -c "DROP INDEX IF EXISTS planner_idx" || true
}
if [[ "${RECALL_PLANNER_CHECK:-1}" == 1 ]]; then
	planner_case
fi

engram_suite_end RECALL "$DB"
echo "# recall: $PASSED passed, $FAILED failed"
((FAILED == 0 && PASSED > 0))
