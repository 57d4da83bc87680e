#!/usr/bin/env bash
#
# bench/wl_scaleout.sh: scale-out workload.  One coordinator and up to three
# data servers, each a throwaway cluster on this machine (unix sockets):
#   direct     pgbench straight at data server 1, whose table holds every row
#              (the single-server baseline)
#   N shards   (N = 1, 2, 3) pgbench at the coordinator, whose table
#              "sharded_N" is HASH partitioned by id into N foreign tables
#              (postgres_fdw, extensions 'engram_hnsw', fetch_size 10), one
#              on each of data servers 1..N; every shard table has its own
#              engram_hnsw index.  With N = 1 the shard is the very table of
#              "direct", so direct vs 1 shard is the coordinator's overhead.
# Query: SELECT id FROM T ORDER BY embedding <-> (SELECT embedding FROM
# queries WHERE id = :qid) LIMIT 10; pgbench -M prepared, random query id,
# 1 and 2 clients, median of BENCH_RUNS runs.  Recall@10 of every variant
# against exact ground truth (bench/tools/truth), and how many queries give
# the same ids as direct.  All servers share the machine's 2 cores: more
# shards add work (N graph searches per query) and no CPU, so expect no
# speedup here; the figures show the cost of the machinery.
# Writes bench/results/scaleout.md, scaleout.tsv and scaleout.png.
#
# Knobs: SCALE_SET (gauss128-100k, QUICK gauss128-20k), SCALE_NQ (1000,
#        QUICK 200; the recall pass and pgbench's query pool), SCALE_EF
#        (ef_search everywhere, 40), SCALE_FETCH (postgres_fdw fetch_size,
#        10), SCALE_SHARED_BUFFERS (1GB per cluster), PGBENCH_SECS (5,
#        QUICK 2), INDEX_M (16), INDEX_EFC (64), BENCH_RUNS.  The data
#        servers listen on BENCH_PGPORT+1..3.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init scaleout

SET="${SCALE_SET:-$(bench_quick gauss128-20k gauss128-100k)}"
NQ="${SCALE_NQ:-$(bench_quick 200 1000)}"
SECS="${PGBENCH_SECS:-$(bench_quick 2 5)}"
EF="${SCALE_EF:-40}"
FETCH="${SCALE_FETCH:-10}"
export BENCH_SHARED_BUFFERS="${SCALE_SHARED_BUFFERS:-1GB}"
DB=scaleout
printf 'variant\tmeasure\tclients\trun\tvalue\n' >"$TSV"

bench_start # the coordinator

# ---------------------------------------------------------------- data servers
# Each is started by bench_cluster_start in a subshell (its own mktemp dir,
# socket and port; the subshell's exit trap is dropped, so it keeps running)
# and stopped by so_cleanup.
SDIR=()
SPORT=()
so_cleanup() {
	local d
	for d in "${SDIR[@]}"; do
		[[ -f "$d/data/postmaster.pid" ]] &&
			{ bench_as_pg "$PGBIN/pg_ctl" -D "$d/data" -m fast -w -t 60 stop >/dev/null 2>&1 ||
				bench_as_pg "$PGBIN/pg_ctl" -D "$d/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true; }
		[[ "${BENCH_KEEP_TMP:-0}" == 1 ]] || rm -rf -- "$d"
	done
	SDIR=()
}
trap 'so_cleanup; bench_cleanup' EXIT

for i in 1 2 3; do
	port=$((BENCH_PGPORT + i))
	d="$(
		BENCH_PGDATA="" BENCH_PGPORT="$port"
		bench_cluster_start >&2
		trap - EXIT
		echo "$BENCH_TMPDIR"
	)" || bench_die "data server $i did not start"
	SDIR[i]="$d"
	SPORT[i]="$port"
done

# sq I ARGS...: psql on data server I
sq() {
	local i="$1"
	shift
	PGHOST="${SDIR[$i]}/sock" PGPORT="${SPORT[$i]}" bench_psql -d postgres "$@"
}
# direct-connection settings, the same as the shards' (server option "options")
REMOTE_OPTS="-c engram_hnsw.ef_search=$EF -c enable_seqscan=off"

# ---------------------------------------------------------------- data
bench_load_set "$DB" "$SET" l2 "$NQ"
bench_ext_check "$DB"
[[ "$EXT_OK" == 1 ]] || bench_die "engram_hnsw is not usable: $EXT_NOTE"
N="$DS_N"

coord_sql="CREATE EXTENSION IF NOT EXISTS postgres_fdw;"
for i in 1 2 3; do
	sq "$i" -c "CREATE EXTENSION IF NOT EXISTS engram_hnsw"
	coord_sql+="
CREATE SERVER data$i FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '${SDIR[$i]}/sock',
	port '${SPORT[$i]}', dbname 'postgres', extensions 'engram_hnsw', fetch_size '$FETCH',
	batch_size '1000', options '$REMOTE_OPTS');
CREATE USER MAPPING FOR CURRENT_USER SERVER data$i;"
done
for n in 1 2 3; do
	coord_sql+="
CREATE TABLE sharded_$n (id int NOT NULL, embedding real[]) PARTITION BY HASH (id);"
	for ((r = 0; r < n; r++)); do
		sq "$((r + 1))" -c "CREATE TABLE part_${n}_$r (id int PRIMARY KEY, embedding real[])" \
			-c "ALTER TABLE part_${n}_$r ALTER COLUMN embedding SET STORAGE $BENCH_STORAGE"
		coord_sql+="
CREATE FOREIGN TABLE sharded_${n}_$r PARTITION OF sharded_$n FOR VALUES WITH (MODULUS $n, REMAINDER $r)
	SERVER data$((r + 1)) OPTIONS (table_name 'part_${n}_$r');"
	done
done
bench_psql -d "$DB" -c "$coord_sql"
for n in 1 2 3; do
	bench_log "routing $N rows through the coordinator into $n shard(s)"
	bench_psql -d "$DB" -c "INSERT INTO sharded_$n SELECT id, embedding FROM items"
done

# indexes, one table after the other (build seconds go to the report)
declare -A BUILD
for n in 1 2 3; do
	for ((r = 0; r < n; r++)); do
		t0="$(bench_now)"
		sq "$((r + 1))" -c "CREATE INDEX part_${n}_${r}_ann ON part_${n}_$r USING engram_hnsw (embedding real_l2_ops) WITH ($WITH)" \
			-c "VACUUM ANALYZE part_${n}_$r"
		s="$(bench_since "$t0")"
		BUILD[$n.$r]="$s"
		printf 'shards_%s\tbuild_s_part%s\t0\t1\t%s\n' "$n" "$r" "$s" >>"$TSV"
		bench_log "index on part_${n}_$r ($(sq "$((r + 1))" -At -c "SELECT count(*) FROM part_${n}_$r") rows): $s s"
	done
	bench_psql -d "$DB" -c "ANALYZE sharded_$n"
done
# the query pool on data server 1, for the direct runs
sq 1 -c "CREATE TABLE queries (id int PRIMARY KEY, embedding real[])"
bench_psql -d "$DB" -c "COPY queries TO STDOUT" | sq 1 -c "COPY queries FROM STDIN"

# ---------------------------------------------------------------- plans
PLAN="$OUT/plan.txt"
bench_psql -d "$DB" -c "EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM sharded_2 ORDER BY embedding <-> (SELECT embedding FROM queries WHERE id = 0) LIMIT $K" >"$PLAN"
grep -q 'ORDER BY (embedding OPERATOR(public.<->)' "$PLAN" || bench_die "ORDER BY <-> is not shipped to the shards: $(cat "$PLAN")"
remote="$(grep -m1 -o 'Remote SQL: .*' "$PLAN" | sed 's/^Remote SQL: //')"
SHARD_PLAN="$OUT/shard_plan.txt"
sq 1 -c "SET engram_hnsw.ef_search = $EF" -c "BEGIN" \
	-c "EXPLAIN (COSTS OFF) DECLARE c CURSOR FOR $(sed 's/\$1::real\[\]/(SELECT embedding FROM queries WHERE id = 0)/' <<<"$remote")" \
	-c "COMMIT" >"$SHARD_PLAN" 2>&1 || true
sq 1 -c "EXPLAIN (COSTS OFF) SELECT id FROM part_1_0 ORDER BY embedding <-> (SELECT embedding FROM queries WHERE id = 0) LIMIT $K" >"$OUT/direct_plan.txt"
grep -q 'Index Scan using part_1_0_ann' "$OUT/direct_plan.txt" ||
	bench_log "note: the planner does not choose the index for the direct query by itself (enable_seqscan = off is set for every run)"

# ---------------------------------------------------------------- recall
bench_log "recall pass: $NQ queries per variant"
bench_psql -d "$DB" -c "CREATE TABLE res (variant text, qid int, ids int[])"
sq 1 -c "SET engram_hnsw.ef_search = $EF" -c "SET enable_seqscan = off" -c "
	CREATE TABLE res_direct AS SELECT q.id AS qid, (SELECT array_agg(s.id) FROM
		(SELECT p.id FROM part_1_0 p ORDER BY p.embedding <-> q.embedding LIMIT $K) s) AS ids
	FROM queries q"
sq 1 -At -c "COPY (SELECT 'direct', qid, ids FROM res_direct) TO STDOUT" | bench_psql -d "$DB" -c "COPY res FROM STDIN"
for n in 1 2 3; do
	bench_psql -d "$DB" -c "
	INSERT INTO res SELECT 'shards_$n', q.id, (SELECT array_agg(s.id) FROM
		(SELECT p.id FROM sharded_$n p ORDER BY p.embedding <-> q.embedding LIMIT $K) s)
	FROM queries q"
done
declare -A RECALL SAME
for v in direct shards_1 shards_2 shards_3; do
	RECALL[$v]="$(bench_val -d "$DB" -c "$(bench_recall_sql '<->' "(SELECT qid, ids FROM res WHERE variant = '$v')")")"
	SAME[$v]="$(bench_val -d "$DB" -c "SELECT count(*) FROM res a JOIN res b USING (qid)
		WHERE a.variant = '$v' AND b.variant = 'direct' AND a.ids = b.ids")"
	printf '%s\trecall\t0\t0\t%s\n' "$v" "${RECALL[$v]}" >>"$TSV"
	printf '%s\tsame_as_direct\t0\t0\t%s\n' "$v" "${SAME[$v]}" >>"$TSV"
	bench_log "$v: recall@$K ${RECALL[$v]}, same ids as direct for ${SAME[$v]} of $NQ queries"
done

# ---------------------------------------------------------------- throughput
script_for() {
	local table="$1" f="$OUT/pgbench_$1.sql"
	cat >"$f" <<SQL
\\set qid random(0, $((NQ - 1)))
SELECT id FROM $table ORDER BY embedding <-> (SELECT embedding FROM queries WHERE id = :qid) LIMIT $K;
SQL
	echo "$f"
}
declare -A QPS
VARIANTS="direct shards_1 shards_2 shards_3"
for ((run = 1; run <= BENCH_RUNS; run++)); do
	for v in $VARIANTS; do
		for c in 1 2; do
			if [[ "$v" == direct ]]; then
				tps="$(PGHOST="${SDIR[1]}/sock" PGPORT="${SPORT[1]}" PGOPTIONS="$REMOTE_OPTS" \
					bench_pgbench_tps "$(script_for part_1_0)" "$c" "$SECS" -d postgres)"
			else
				tps="$(bench_pgbench_tps "$(script_for "sharded_${v#shards_}")" "$c" "$SECS" -d "$DB")"
			fi
			printf '%s\tqps\t%s\t%s\t%s\n' "$v" "$c" "$run" "$tps" >>"$TSV"
			bench_log "run $run/$BENCH_RUNS $v -c $c: $tps QPS"
		done
	done
done
for v in $VARIANTS; do
	for c in 1 2; do
		QPS[$v.$c]="$(awk -F'\t' -v v="$v" -v c="$c" '$1 == v && $2 == "qps" && $3 == c && $5 != "nan" { print $5 }' "$TSV" | bench_median)"
	done
done

# ---------------------------------------------------------------- report
ms() { awk -v q="$1" 'BEGIN { if (q > 0) printf "%.2f", 1000 / q; else print "-" }'; }
overhead="$(awk -v a="${QPS[direct.1]}" -v b="${QPS[shards_1.1]}" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", 1000 / b - 1000 / a; else print "-" }')"
DAT="$OUT/qps.dat"
{
	echo "variant pgbench_-c1 pgbench_-c2"
	for v in $VARIANTS; do
		label="$v"
		[[ "$v" == direct ]] && label="direct"
		[[ "$v" == shards_1 ]] && label="1_shard"
		[[ "$v" == shards_[23] ]] && label="${v#shards_}_shards"
		echo "$label $(bench_fmt "${QPS[$v.1]}" 1) $(bench_fmt "${QPS[$v.2]}" 1)"
	done
} >"$DAT"
bench_plot_bars "$BENCH_RESULTS/scaleout.png" "$SET, ef_search $EF: direct vs coordinator + N shards ($(nproc) cores shared by all servers)" \
	"queries per second" "$DAT"

{
	bench_md_header "Scale-out: postgres_fdw shards"
	echo "Data: $SET ($N x $DS_DIM, L2), $NQ queries; index WITH ($WITH); engram_hnsw.ef_search = $EF on every"
	echo "server. *direct*: pgbench at one data server whose table holds all $N rows. *N shard(s)*: pgbench at a"
	echo "coordinator whose table is HASH partitioned by id into N postgres_fdw foreign tables on data servers 1..N"
	echo "(server options: extensions 'engram_hnsw', fetch_size '$FETCH', options '$REMOTE_OPTS'); with 1 shard the"
	echo "remote table is the very table of *direct*. Query: \`SELECT id FROM T ORDER BY embedding <-> (SELECT embedding"
	echo "FROM queries WHERE id = :qid) LIMIT $K\`, pgbench -M prepared, ${SECS} s per point, median of $BENCH_RUNS runs."
	echo "Every cluster (coordinator and data servers) runs on the same $(nproc) cores, so more shards add work"
	echo "(one graph search per shard per query) and no CPU: this measures the cost of the machinery, not a speedup."
	echo "Per query and shard, postgres_fdw makes five round trips (START TRANSACTION, DECLARE CURSOR, FETCH, CLOSE,"
	echo "COMMIT), and the shards are asked one after the other (a Merge Append is not asynchronous in PostgreSQL 15)."
	echo "*same ids as direct*: queries whose 10 ids equal the single-server index's (smaller per-shard graphs searched"
	echo "with the same ef_search can find neighbours the single graph missed)."
	echo
	echo "<!-- summary -->"
	echo "| variant | QPS pgbench -c 1 | ms / query (-c 1) | QPS pgbench -c 2 | recall@10 | same ids as direct |"
	echo "|---|---|---|---|---|---|"
	for v in $VARIANTS; do
		label="$v"
		[[ "$v" == direct ]] && label="direct (1 server, no coordinator)"
		[[ "$v" == shards_* ]] && label="coordinator + ${v#shards_} shard(s)"
		echo "| $label | $(bench_fmt "${QPS[$v.1]}") | $(ms "${QPS[$v.1]}") | $(bench_fmt "${QPS[$v.2]}") | ${RECALL[$v]} | ${SAME[$v]} / $NQ |"
	done
	echo
	echo "Coordinator overhead (1 shard vs direct, -c 1): $overhead ms per query."
	echo "<!-- /summary -->"
	echo
	echo "![queries per second](scaleout.png)"
	echo
	echo "Index builds (one after the other; seconds):"
	echo
	echo "| shards | $(for ((r = 0; r < 3; r++)); do printf 'shard %s | ' "$((r + 1))"; done)"
	echo "|---|---|---|---|"
	for n in 1 2 3; do
		printf '| %s |' "$n"
		for ((r = 0; r < 3; r++)); do printf ' %s |' "$(bench_fmt "${BUILD[$n.$r]:-}" 1)"; done
		echo
	done
	echo
	echo "Coordinator plan with 2 shards (PostgreSQL 15 ships ORDER BY but no LIMIT below a Merge Append; each"
	echo "shard's cursor returns fetch_size rows per round trip):"
	echo
	echo '```'
	sed -e '/^ *$/d' -e '/^(.* rows)$/d' "$PLAN"
	echo '```'
	echo
	echo "Plan on a shard of the shipped query (run as a cursor, as postgres_fdw does):"
	echo
	echo '```'
	grep -v -E '^(BEGIN|COMMIT|SET)$' "$SHARD_PLAN" | sed -e '/^ *$/d' -e '/^(.* rows)$/d'
	echo '```'
	echo
	echo "## Cluster (coordinator; the data servers have the same settings)"
	echo
	bench_settings_md
	echo
	echo "Raw figures: scaleout.tsv (variant, measure, clients, run, value)."
} >"$RESULT_MD"
cat "$RESULT_MD"
bench_log "wrote $RESULT_MD in $(bench_since "$BENCH_T0") s"
