#!/usr/bin/env bash
#
# bench/wl_targets.sh: the project's targets side by side in one run:
# engram_hnsw, hnswlib (in-process, the practical limit) and pgvector (the
# PostgreSQL standard, built from its source tarball into the suite's private
# server tree), on the same data, M and ef_construction.  Per data set:
#   - serial build time (median of BENCH_RUNS) and its ratio to hnswlib's
#     1-thread build; parallel build (max_parallel_maintenance_workers = 1,
#     leader + 1 worker; hnswlib 2 threads) and its speed-up over the serial
#     one; index size and bytes per element.  Builds of one run are
#     interleaved (method order reversed every other run), and the serial
#     build of each method comes last, so the searches use it;
#   - recall@10 and queries/s for ef_search 10 20 40 80 200: one backend runs
#     the queries in a PL/pgSQL loop (no client round trips), timed on a
#     second pass in the same backend (warm, like hnswlib's process); the
#     two PostgreSQL methods alternate; hnswlib: one thread, in-process;
#   - queries/s at recall@10 = 0.97 (bench_qps_at in lib.sh: log(QPS)
#     interpolated linearly in recall between the two ef_search points
#     around 0.97) as a ratio to hnswlib's at the same recall.
# And, when Fashion-MNIST is among the sets, the write path of engram_hnsw
# (bench/wl_writes.sh and bench/wl_merge.sh, each in a cluster of its own):
# pgbench 1 and 8 clients of single-row and 100-row INSERTs against the same
# table without the index, the per-row index cost of a 100-row INSERT
# relative to a single-row one, and the merge's CPU time per row.
#
# Vectors (base rows and queries) are stored uncompressed in the heap: the
# columns get SET STORAGE PLAIN before loading (a 1536-d row, about 6 kB,
# fits a heap page); the report checks it (no TOAST, no compressed row).
#
# Data sets (BENCH_SETS, space-separated; names as in lib.sh or these):
#   fmnist   Fashion-MNIST 60 000 x 784 train images, L2, test images as queries
#   ip128    gauss128v-100k: 100 000 x 128 gaussian mixture (64 centres,
#            decaying spectrum), each row offset by 0.5 and scaled by a factor
#            uniform in (0, 1]: widely varying norms; inner product
#   cos1536  gauss1536n-100k: 100 000 x 1536 gaussian mixture (64 centres,
#            coordinate j scaled by 1/sqrt(1+j), centres 2x the noise: clusters
#            with structure), unit-normalised; cosine
#   or NAME:METRIC (e.g. gauss128-100k:l2).  Default: "fmnist ip128 cos1536".
#
# Usage (as root; PostgreSQL runs as "postgres"):
#   bash bench/wl_targets.sh [--quick]
#   BENCH_SETS=fmnist bash bench/wl_targets.sh
# --quick: 20 000 rows per set, 200 queries, one run, results in
# bench/results/quick/ (smoke test).
#
# Knobs: BENCH_SETS, TARGETS_NQ (1000, quick 200), TARGETS_EF ("10 20 40 80
#        200"), TARGETS_RECALL (0.97), TARGETS_WRITES (1: the write path when
#        fmnist is in the sets; 0: skip), TARGETS_PGVECTOR (1; 0: without
#        pgvector), PGVECTOR_TARBALL, INDEX_M (16), INDEX_EFC (64),
#        BENCH_RUNS (3, quick 1), BENCH_PARALLEL_WORKERS (1), BENCH_PIN_CPU
#        (the CPU of every serial build and query loop, all methods; default
#        the last CPU, "none" for none), and lib.sh's.
# Writes: bench/results/targets.md (a section per run, appended; quick:
# rewritten), targets.tsv (raw figures of every run), and per set
# targets_<set>_<commit>.png (queries/s against recall@10).
set -Eeuo pipefail

for arg in "$@"; do
	case "$arg" in
	--quick) export QUICK=1 ;;
	-h | --help)
		sed -n '3,/^set -Eeuo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "wl_targets.sh: unknown argument $arg (--quick, --help)" >&2
		exit 2
		;;
	esac
done
if [[ "${QUICK:-0}" == 1 ]]; then
	export BENCH_RUNS="${BENCH_RUNS:-1}"
fi
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap 'bench_log "wl_targets.sh: FAILED at line $LINENO: $BASH_COMMAND"' ERR
bench_init targets

NQ="${TARGETS_NQ:-$(bench_quick 200 1000)}"
EFS="${TARGETS_EF:-10 20 40 80 200}"
TARGET_RECALL="${TARGETS_RECALL:-0.97}"
PW="${BENCH_PARALLEL_WORKERS:-1}"
# serial builds and query loops of every method on one CPU (lib.sh, bench_pin_cpu)
PIN="$(bench_pin_cpu)"
PINCMD=()
[[ -z "$PIN" ]] || PINCMD=(taskset -c "$PIN")
PGV="${TARGETS_PGVECTOR:-1}"
RUN_ID="$(date -u +%Y%m%dT%H%MZ)"
UPTIME_START="$(uptime)"

# set specs "name:metric"
SPECS=()
for s in ${BENCH_SETS:-fmnist ip128 cos1536}; do
	case "$s" in
	fmnist) SPECS+=("$(bench_quick fmnist-20000 fmnist):l2") ;;
	ip128) SPECS+=("$(bench_quick gauss128v-20k gauss128v-100k):ip") ;;
	cos1536) SPECS+=("$(bench_quick gauss1536n-20k gauss1536n-100k):cosine") ;;
	*:l2 | *:cosine | *:ip) SPECS+=("$s") ;;
	*) bench_die "BENCH_SETS: unknown set $s (fmnist, ip128, cos1536 or NAME:l2|cosine|ip)" ;;
	esac
done
WRITES=0
if [[ "${TARGETS_WRITES:-1}" == 1 ]]; then
	for s in "${SPECS[@]}"; do [[ "$s" == fmnist* ]] && WRITES=1; done
fi

bench_ext_prepare
[[ "$EXT_BUILT" == 1 ]] || bench_die "engram_hnsw is not usable: $EXT_NOTE"
FORMAT="$(awk '$2 == "HNSW_FORMAT_VERSION" { print $3; exit }' "$BENCH_WORK/ext-src/src/hnsw_format.h" 2>/dev/null || true)"
PGVECTOR_VERSION=""
if [[ "$PGV" == 1 ]]; then
	bench_pgvector_prepare || bench_die "$PGVECTOR_NOTE (or TARGETS_PGVECTOR=0)"
fi
# shellcheck disable=SC2119 # the cluster's default settings
bench_cluster_start
METHODS=(ours)
[[ "$PGV" == 1 ]] && METHODS+=(pgv)
RAW="$OUT/raw.tsv"
: >"$RAW"
raw() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$RUN_ID" "$1" "$2" "$3" "$4" "$5" >>"$RAW"; } # set method measure run value

label() {
	case "$1" in
	ours) echo "engram_hnsw" ;;
	pgv) echo "pgvector ${PGVECTOR_SQL_VERSION:-}" ;;
	h) echo "hnswlib 0.6.2" ;;
	esac
}

# the PostgreSQL side of a method: its tables, index, opclass, operator, ef GUC
tbl() { [[ "$1" == pgv ]] && echo "${2}_v" || echo "$2"; }
ddl() { # method metric
	if [[ "$1" == pgv ]]; then
		echo "CREATE INDEX items_v_ann ON items_v USING hnsw (embedding vector_${2}_ops) WITH ($WITH)"
	else
		echo "CREATE INDEX items_ann ON items USING engram_hnsw (embedding $(bench_opclass "$2")) WITH ($WITH)"
	fi
}
idxname() { [[ "$1" == pgv ]] && echo items_v_ann || echo items_ann; }
efguc() { [[ "$1" == pgv ]] && echo hnsw.ef_search || echo engram_hnsw.ef_search; }

# storage_check DB TABLE: a line on how TABLE stores its vectors; dies unless
# they are all inline and uncompressed (no TOAST, no compressed row)
storage_check() {
	local db="$1" t="$2" v
	v="$(bench_val -d "$db" -F ' ' -c "SELECT round(pg_relation_size('$t') / 1048576.0),
		coalesce((SELECT pg_relation_size(reltoastrelid) FROM pg_class WHERE oid = '$t'::regclass AND reltoastrelid <> 0), 0),
		(SELECT count(*) FROM $t WHERE pg_column_compression(embedding) IS NOT NULL),
		(SELECT attstorage FROM pg_attribute WHERE attrelid = '$t'::regclass AND attname = 'embedding')")"
	read -r heap toast comp st <<<"$v"
	[[ "$toast" == 0 && "$comp" == 0 ]] || bench_die "$t: vectors are not stored inline uncompressed (TOAST $toast bytes, $comp compressed rows, storage $st)"
	echo "\`$t\` $heap MB heap, storage $([[ "$st" == p ]] && echo plain || echo "$st"), TOAST 0 bytes, 0 compressed rows"
}

SECTIONS="$OUT/sections.md"
SUMMARY="$OUT/summary.md"
: >"$SECTIONS"
: >"$SUMMARY"
for spec in "${SPECS[@]}"; do
	set_name="${spec%%:*}"
	metric="${spec#*:}"
	op="$(bench_operator "$metric")"
	tag="${set_name//-/_}_$metric"
	db="t_$tag"
	d="$OUT/$tag"
	mkdir -p "$d"
	set_uptime0="$(uptime)"
	bench_load_set "$db" "$set_name" "$metric" "$NQ"
	bench_ext_check "$db"
	[[ "$EXT_OK" == 1 ]] || bench_die "engram_hnsw is not usable: $EXT_NOTE"
	STORAGE=()
	for t in items queries; do
		v="$(storage_check "$db" "$t")"
		STORAGE+=("$v")
	done
	if [[ "$PGV" == 1 ]]; then
		bench_log "[$tag] pgvector tables: vector($DS_DIM), storage plain"
		bench_psql -d "$db" -c "SET client_min_messages = warning" -c "CREATE EXTENSION vector" \
			-c "ALTER DATABASE $db SET session_preload_libraries = 'vector'" \
			-c "CREATE TABLE items_v (id int PRIMARY KEY, embedding vector($DS_DIM))" \
			-c "ALTER TABLE items_v ALTER COLUMN embedding SET STORAGE PLAIN" \
			-c "CREATE TABLE queries_v (id int PRIMARY KEY, embedding vector($DS_DIM))" \
			-c "ALTER TABLE queries_v ALTER COLUMN embedding SET STORAGE PLAIN" \
			-c "INSERT INTO items_v SELECT id, embedding::vector($DS_DIM) FROM items" \
			-c "INSERT INTO queries_v SELECT id, embedding::vector($DS_DIM) FROM queries" \
			-c "VACUUM (ANALYZE) items_v" -c "VACUUM (ANALYZE) queries_v"
		PGVECTOR_SQL_VERSION="$(bench_val -d "$db" -c "SELECT extversion FROM pg_extension WHERE extname = 'vector'")"
		for t in items_v queries_v; do
			v="$(storage_check "$db" "$t")"
			STORAGE+=("$v")
		done
	fi
	{
		echo "DROP TABLE IF EXISTS res;"
		echo "CREATE TABLE res (method text, ef int, qid int, ids int[]);"
		for m in "${METHODS[@]}"; do
			bench_qps_fn "t_$m" "p_ef int, p_nq int, p_store bool" "$(efguc "$m")=p_ef::text enable_seqscan='off'" \
				"$(bench_knn_loop "$(tbl "$m" queries)" "$(tbl "$m" items)" "i.embedding $op r.embedding" "'$m', p_ef, r.id, v")"
		done
	} | bench_psql -d "$db" -c "SET client_min_messages = warning" -f -

	# ---------------------------------------------------------------- builds
	for ((r = 1; r <= BENCH_RUNS; r++)); do
		groups=("${METHODS[@]}" h)
		if ((r % 2 == 0)); then
			mapfile -t groups < <(printf '%s\n' "${groups[@]}" | tac)
		fi
		for g in "${groups[@]}"; do
			if [[ "$g" == h ]]; then
				for th in 1 2; do
					line="$(BENCH_PIN="$PIN" bench_hnswlib_build "$th" "$metric")"
					[[ -n "$line" ]] || bench_die "[$tag] hnswlib build ($th threads) failed"
					read -r _ _ secs mb _ cpu <<<"$line"
					raw "$tag" h "build$((th - 1))_s" "$r" "$secs"
					raw "$tag" h "build$((th - 1))_cpu" "$r" "$cpu"
					raw "$tag" h "index_mb" "$r" "$mb"
					bench_log "[$tag] run $r/$BENCH_RUNS hnswlib $th thread(s): $secs s"
				done
				continue
			fi
			# parallel first, serial last: the searches use the serial build
			for w in "$PW" 0; do
				read -r secs cpu mb peak workers <<<"$(BENCH_PIN="$([[ "$w" == 0 ]] && echo "$PIN")" bench_index_build "$db" "$(idxname "$g")" "$(ddl "$g" "$metric")" "$w")"
				[[ -n "$secs" && "$secs" != nan ]] || bench_die "[$tag] $(ddl "$g" "$metric") failed (max_parallel_maintenance_workers = $w)"
				k="$([[ "$w" == 0 ]] && echo build0 || echo build1)"
				raw "$tag" "$g" "${k}_s" "$r" "$secs"
				raw "$tag" "$g" "${k}_cpu" "$r" "$cpu"
				raw "$tag" "$g" "${k}_workers" "$r" "$workers"
				raw "$tag" "$g" "${k}_peak_mb" "$r" "$peak"
				raw "$tag" "$g" index_mb "$r" "$mb"
				bench_log "[$tag] run $r/$BENCH_RUNS $(label "$g") workers=$w: $secs s, $mb MB, parallel workers seen: $workers"
			done
		done
	done
	for m in "${METHODS[@]}"; do
		bench_psql -d "$db" -c "ANALYZE $(tbl "$m" items)"
		raw "$tag" "$m" index_bytes 0 "$(bench_val -d "$db" -c "SELECT pg_relation_size('$(idxname "$m")')")"
		plan="$(bench_psql -d "$db" -c "SET enable_seqscan = off" -c "EXPLAIN (COSTS OFF) SELECT id FROM $(tbl "$m" items) ORDER BY embedding $op (SELECT embedding FROM $(tbl "$m" queries) WHERE id = 0) LIMIT $K")"
		grep -q "Index Scan using $(idxname "$m")" <<<"$plan" || bench_die "[$tag] $(label "$m"): the loop's query does not use the index: $plan"
	done

	# ---------------------------------------------------------------- search
	bench_log "[$tag] recall passes (also the warm-up)"
	for ef in $EFS; do
		for m in "${METHODS[@]}"; do
			bench_val -d "$db" -c "SELECT t_$m($ef, $NQ, true)" >/dev/null
		done
	done
	for ((r = 1; r <= BENCH_RUNS; r++)); do
		ms=("${METHODS[@]}")
		((r % 2 == 0)) && mapfile -t ms < <(printf '%s\n' "${ms[@]}" | tac)
		for ef in $EFS; do
			for m in "${ms[@]}"; do
				read -r _ q c <<<"$(BENCH_PIN="$PIN" bench_loop_cpu "$db" "SELECT t_$m($ef, $NQ, false)" warm)"
				raw "$tag" "$m" "qps_ef$ef" "$r" "$q"
				raw "$tag" "$m" "cpuqps_ef$ef" "$r" "$(bench_per_cpu "$NQ" "$c")"
				bench_log "[$tag] run $r/$BENCH_RUNS ef=$ef $(label "$m"): $q QPS"
			done
		done
	done
	bench_log "[$tag] hnswlib search (its own 1-thread build, $BENCH_RUNS passes per ef)"
	"${PINCMD[@]}" "$BENCH_BIN/hnswlib_bench" --base "$DS_BASE" --queries "$DS_QUERY" --truth "$DS_TRUTH" \
		--metric "$metric" --M "$M" --efc "$EFC" --threads 1 --ef "${EFS// /,}" --nq "$NQ" \
		--runs "$BENCH_RUNS" >"$d/hnswlib.tsv" || bench_die "[$tag] hnswlib_bench failed"
	# curves: "recall qps ef"
	: >"$d/h.dat"
	: >"$d/h.cpu"
	awk -F'\t' '$1 == "search" { print $3, $4, $2 }' "$d/hnswlib.tsv" >"$d/h.dat"
	awk -F'\t' '$1 == "search" { print $3, $8, $2 }' "$d/hnswlib.tsv" >"$d/h.cpu"
	awk -F'\t' -v s="$tag" -v id="$RUN_ID" '$1 == "search" {
		printf "%s\t%s\th\trecall_ef%s\t0\t%s\n%s\t%s\th\tqps_ef%s\t0\t%s\n%s\t%s\th\tcpuqps_ef%s\t0\t%s\n",
			id, s, $2, $3, id, s, $2, $4, id, s, $2, $8 }' "$d/hnswlib.tsv" >>"$RAW"
	[[ -s "$d/h.dat" ]] || bench_die "[$tag] hnswlib_bench gave no search figures"
	for m in "${METHODS[@]}"; do
		: >"$d/$m.dat"
		: >"$d/$m.cpu"
		for ef in $EFS; do
			rec="$(bench_val -d "$db" -c "$(bench_recall_sql "$op" "(SELECT qid, ids FROM res WHERE method = '$m' AND ef = $ef)")")"
			raw "$tag" "$m" "recall_ef$ef" 0 "$rec"
			q="$(awk -F'\t' -v s="$tag" -v m="$m" -v k="qps_ef$ef" '$2 == s && $3 == m && $4 == k { print $6 }' "$RAW" | bench_median)"
			c="$(awk -F'\t' -v s="$tag" -v m="$m" -v k="cpuqps_ef$ef" '$2 == s && $3 == m && $4 == k { print $6 }' "$RAW" | bench_median)"
			echo "$rec $q $ef" >>"$d/$m.dat"
			echo "$rec $c $ef" >>"$d/$m.cpu"
		done
	done
	rev="$(cut -d' ' -f1 <<<"$EXT_REV")"
	png="targets_${tag}_$rev$([[ "$QUICK" == 1 ]] && echo _quick || true).png"
	plotargs=("engram_hnsw (PL/pgSQL loop, 1 backend)" "$d/ours.dat")
	[[ "$PGV" == 1 ]] && plotargs+=("pgvector $PGVECTOR_SQL_VERSION (same loop)" "$d/pgv.dat")
	plotargs+=("hnswlib (1 thread, in-process)" "$d/h.dat")
	bench_plot_recall_qps "$BENCH_RESULTS/$png" \
		"$set_name, $DS_N x $DS_DIM, $metric, M=$M efc=$EFC, $NQ queries, engram_hnsw at $rev" "" -- "${plotargs[@]}"

	# ---------------------------------------------------------------- section
	med() { # method measure
		awk -F'\t' -v s="$tag" -v m="$1" -v k="$2" '$2 == s && $3 == m && $4 == k && $6 != "nan" && $6 != "" { print $6 }' "$RAW" | bench_median
	}
	rng() {
		awk -F'\t' -v s="$tag" -v m="$1" -v k="$2" '$2 == s && $3 == m && $4 == k && $6 != "nan" { print $6 }' "$RAW" | sort -g |
			awk 'NR == 1 { a = $1 } { b = $1 } END { if (NR) printf "%.1f-%.1f", a, b; else print "-" }'
	}
	h0="$(med h build0_s)"
	hmb="$(med h index_mb)"
	read -r hq _ <<<"$(bench_qps_at "$TARGET_RECALL" "$d/h.dat")"
	read -r hc _ <<<"$(bench_qps_at "$TARGET_RECALL" "$d/h.cpu")"
	{
		echo "### $set_name, $metric ($DS_N x $DS_DIM, $NQ queries)"
		echo
		echo "Started $(sed 's/^ *//' <<<"$set_uptime0"); ended $(uptime | sed 's/^ *//')."
		echo "Storage: $(IFS=';'; echo "${STORAGE[*]}" | sed 's/;/; /g')."
		echo
		echo "| method | serial build s (median, range) | / hnswlib 1 thread | CPU s | CPU / hnswlib | parallel build s ($PW worker + leader / 2 threads) | parallel speed-up | workers seen | index MB | bytes / element |"
		echo "|---|---|---|---|---|---|---|---|---|---|"
		for m in "${METHODS[@]}" h; do
			s0="$(med "$m" build0_s)"
			s1="$(med "$m" build1_s)"
			if [[ "$m" == h ]]; then
				mb="$hmb"
				bytes="$(awk -v x="$mb" -v n="$DS_N" 'BEGIN { printf "%.0f", x * 1048576 / n }')"
				wk="(2 threads)"
				mbs="$(bench_fmt "$mb" 1) (in memory)"
			else
				bytes="$(awk -v x="$(med "$m" index_bytes)" -v n="$DS_N" 'BEGIN { printf "%.0f", x / n }')"
				mb="$(awk -v x="$(med "$m" index_bytes)" 'BEGIN { printf "%.1f", x / 1048576 }')"
				wk="$(awk -F'\t' -v s="$tag" -v m="$m" '$2 == s && $3 == m && $4 == "build1_workers" { printf "%s%s", c, $6; c = "," }' "$RAW")"
				mbs="$mb"
			fi
			echo "| $(label "$m") | $(bench_fmt "$s0" 2) ($(rng "$m" build0_s)) | $(bench_ratio "$s0" "$h0") | $(bench_fmt "$(med "$m" build0_cpu)" 2) | $(bench_ratio "$(med "$m" build0_cpu)" "$(med h build0_cpu)") | $(bench_fmt "$s1" 2) ($(rng "$m" build1_s)) | $(bench_ratio "$s0" "$s1") | $wk | $mbs | $bytes |"
		done
		echo
		printf '| ef_search |'
		for m in "${METHODS[@]}" h; do printf ' %s recall@10 | QPS | CPU-QPS |' "$(label "$m")"; done
		echo " engram_hnsw recall - hnswlib |"
		printf '|---|'
		for m in "${METHODS[@]}" h; do printf -- '---|---|---|'; done
		echo "---|"
		for ef in $EFS; do
			printf '| %s |' "$ef"
			for m in "${METHODS[@]}" h; do
				printf ' %s | %s | %s |' "$(awk -v e="$ef" '$3 == e { print $1 }' "$d/$m.dat")" \
					"$(bench_fmt "$(awk -v e="$ef" '$3 == e { print $2 }' "$d/$m.dat")")" \
					"$(bench_fmt "$(awk -v e="$ef" '$3 == e { print $2 }' "$d/$m.cpu")")"
			done
			awk -v a="$(awk -v e="$ef" '$3 == e { print $1 }' "$d/ours.dat")" -v b="$(awk -v e="$ef" '$3 == e { print $1 }' "$d/h.dat")" \
				'BEGIN { if (a == "" || b == "") print " - |"; else printf " %+.4f |\n", a - b }'
		done
		echo
		echo "At recall@10 = $TARGET_RECALL (see *How* above):"
		echo
		echo "| method | QPS | how | / hnswlib | CPU-QPS | / hnswlib (CPU) |"
		echo "|---|---|---|---|---|---|"
		for m in "${METHODS[@]}" h; do
			read -r q how <<<"$(bench_qps_at "$TARGET_RECALL" "$d/$m.dat")"
			read -r c _ <<<"$(bench_qps_at "$TARGET_RECALL" "$d/$m.cpu")"
			case "$how" in i) how="interpolated" ;; b) how="ef $(awk '{ print $3; exit }' "$d/$m.dat") already above (lower bound)" ;; *) how="not reached" ;; esac
			echo "| $(label "$m") | $(bench_fmt "$q") | $how | $(bench_ratio "$q" "$hq") | $(bench_fmt "$c") | $(bench_ratio "$c" "$hc") |"
			[[ "$m" == h ]] || raw "$tag" "$m" "qps_at_$TARGET_RECALL" 0 "$q"
		done
		echo
		echo "![queries/s against recall@10: $set_name]($png)"
		echo
	} >>"$SECTIONS"
	# summary row
	{
		printf '| %s | %s |' "$set_name" "$metric"
		for m in "${METHODS[@]}"; do
			read -r q _ <<<"$(bench_qps_at "$TARGET_RECALL" "$d/$m.dat")"
			read -r c _ <<<"$(bench_qps_at "$TARGET_RECALL" "$d/$m.cpu")"
			printf ' %s | %s | %s | %s |' "$(bench_ratio "$(med "$m" build0_s)" "$h0")" \
				"$(bench_ratio "$(med "$m" build0_s)" "$(med "$m" build1_s)")" "$(bench_ratio "$q" "$hq")" "$(bench_ratio "$c" "$hc")"
		done
		echo " $(bench_fmt "$hq") |"
	} >>"$SUMMARY"
	bench_psql -c "DROP DATABASE $db" || true
done
bench_log "sets done; stopping the cluster"
bench_cleanup

# ---------------------------------------------------------------- writes (fmnist)
# wl_writes.sh and wl_merge.sh, each in a cluster of its own (one at a time),
# their reports in $OUT/sub (bench/results is not touched)
sub_run() { # script [VAR=value ...]
	local name="$1"
	shift
	bench_log "running $name.sh (log: $OUT/$name.log)"
	env "$@" BENCH_RESULTS="$OUT/sub" BENCH_SKIP_DEPS=1 BENCH_WAIT_QUIET=0 BENCH_RUNS="$BENCH_RUNS" \
		bash "$BENCH_DIR/$name.sh" >"$OUT/$name.log" 2>&1 ||
		bench_die "$name.sh failed: $(grep -m1 -E 'ERROR|FAILED' "$OUT/$name.log" || tail -n 3 "$OUT/$name.log")"
}
WSEC="$OUT/writes.md"
: >"$WSEC"
if [[ "$WRITES" == 1 ]]; then
	sub_run wl_writes WRITES_SET=fmnist WRITES_CLIENTS="1 8" WRITES_WAITS=0 WRITES_COPY=0
	sub_run wl_merge MERGE_FULL=0 MERGE_SECS="$(bench_quick 2 3)"
	wt="$OUT/sub/writes.tsv"
	mt="$OUT/sub/merge.tsv"
	wmed() { awk -F'\t' -v t="$1" -v w="$2" -v c="$3" '$1 == t && $2 == w && $3 == c && $5 != "nan" { print $5 }' "$wt" | bench_median; }
	mmed() { awk -F'\t' -v m="$1" '$1 > 0 && $2 == m && $3 != "nan" && $3 != "-" { print $3 }' "$mt" | bench_median; }
	cost() { awk -v x="$1" -v y="$2" 'BEGIN { if (x > 0 && y > 0) printf "%.0f", 1e6 / x - 1e6 / y; else print "-" }'; }
	us() { awk -v r="$1" 'BEGIN { if (r > 0) printf "%.0f", 1e6 / r; else print "-" }'; }
	awk -F'\t' -v id="$RUN_ID" 'NR > 1 { printf "%s\twrites\t%s\t%s_c%s\t%s\t%s\n", id, $1, $2, $3, $4, $5 }' "$wt" >>"$RAW"
	awk -F'\t' -v id="$RUN_ID" 'NR > 1 && $1 > 0 { printf "%s\tmerge\tours\t%s\t%s\t%s\n", id, $2, $1, $3 }' "$mt" >>"$RAW"
	{
		echo "### Writes: Fashion-MNIST, engram_hnsw"
		echo
		echo "bench/wl_writes.sh (pgbench -M prepared, -T $(bench_quick 1 5) s per point, a fresh table of the"
		echo "first $(bench_quick 5000 40000) train images before each, new rows from the next ones; storage plain)"
		echo "and bench/wl_merge.sh ($(bench_quick 2000 10000) rows inserted into the pending list of an index of"
		echo "$(bench_quick 5000 40000), then merged), medians of $BENCH_RUNS runs. Per-row index cost: 1/rate - 1/(rate without the index)."
		echo
		echo "| INSERT | clients | no index rows/s | engram_hnsw rows/s | / no index | index cost us/row |"
		echo "|---|---|---|---|---|---|"
		for n in 1 100; do
			for c in 1 8; do
				a="$(wmed noindex "insert$n" "$c")"
				b="$(wmed engram_hnsw "insert$n" "$c")"
				echo "| $n-row | $c | $(bench_fmt "$a") | $(bench_fmt "$b") | $(bench_ratio "$b" "$a") | $(cost "$b" "$a") |"
			done
		done
		echo
		echo "Per-row index cost of a 100-row INSERT / a single-row INSERT's:"
		for c in 1 8; do
			echo "$c client(s) $(bench_ratio "$(cost "$(wmed engram_hnsw insert100 "$c")" "$(wmed noindex insert100 "$c")")" \
				"$(cost "$(wmed engram_hnsw insert1 "$c")" "$(wmed noindex insert1 "$c")")")$([[ "$c" == 1 ]] && echo ";" || echo ".")"
		done
		echo
		echo "| merge (engram_hnsw_merge_pending) | rows/s | CPU us per row |"
		echo "|---|---|---|"
		echo "| alone | $(bench_fmt "$(mmed merge_rows_s)") | $(us "$(mmed merge_cpu_rows_s)") |"
		echo "| while pgbench -c 1 queries | $(bench_fmt "$(mmed merge_under_queries_rows_s)") | $(us "$(mmed merge_under_queries_cpu_rows_s)") |"
		echo "| (INSERT with fastupdate = off, the direct path) | $(bench_fmt "$(mmed direct_insert_rows_s)") | $(us "$(mmed direct_insert_cpu_rows_s)") |"
		echo "| (INSERT into the pending list) | $(bench_fmt "$(mmed fast_insert_rows_s)") | $(us "$(mmed fast_insert_cpu_rows_s)") |"
		echo
		for f in writes merge; do
			if grep -q '^\*\*Index problems' "$OUT/sub/$f.md"; then
				echo "**$f: index problems:** $(sed -n '/^\*\*Index problems/,/^$/p' "$OUT/sub/$f.md" | tail -n +3 | tr '\n' ' ')"
				echo
			fi
		done
	} >"$WSEC"
fi

# ---------------------------------------------------------------- report
RUNSEC="$OUT/run.md"
{
	echo "## Run of $(date -u '+%Y-%m-%d %H:%M UTC'): engram_hnsw at $EXT_REV$([[ -n "$FORMAT" ]] && echo ", on-disk format $FORMAT")"
	echo
	echo "$(bench_machine_line)."
	echo
	echo "\`uptime\` at the start: \`$(sed 's/^ *//' <<<"$UPTIME_START")\`; at the end: \`$(uptime | sed 's/^ *//')\`."
	echo "Index options (all three): $WITH. pgvector: ${PGVECTOR_VERSION:-not measured} (extension $PGVECTOR_SQL_VERSION), hnswlib 0.6.2."
	echo "Base and query vectors are stored uncompressed in the heap (SET STORAGE PLAIN before loading; checked:"
	echo "no TOAST, no compressed row), real[] for engram_hnsw, vector(n) for pgvector."
	echo
	echo "| data set | metric |$(for m in "${METHODS[@]}"; do printf ' %s: serial build / hnswlib 1 thread | parallel speed-up | QPS at recall %s / hnswlib | same, CPU-QPS |' "$(label "$m")" "$TARGET_RECALL"; done) hnswlib QPS at recall $TARGET_RECALL |"
	echo "|---|---|$(for m in "${METHODS[@]}"; do printf -- '---|---|---|---|'; done)---|"
	cat "$SUMMARY"
	echo
	cat "$SECTIONS" "$WSEC"
	echo "Cluster: shared_buffers ${BENCH_SHARED_BUFFERS:-4GB}, maintenance_work_mem ${BENCH_MAINTENANCE_WORK_MEM:-4GB}, huge_pages $([[ "${BENCH_HUGE_PAGES:-0}" == 1 ]] && echo on || echo off), fsync ${BENCH_FSYNC:-on}, synchronous_commit ${BENCH_SYNC_COMMIT:-on}, autovacuum off, jit off. Serial builds and query loops $([[ -n "$PIN" ]] && echo "on CPU $PIN (all methods)" || echo "not pinned to a CPU"). Raw figures: targets.tsv (run $RUN_ID)."
	echo
} >"$RUNSEC"

HEAD="$OUT/head.md"
{
	echo "# Targets: engram_hnsw, hnswlib and pgvector side by side"
	echo
	echo "Written by bench/wl_targets.sh; one section per run, newest last. Every figure of a run is measured"
	echo "in that run, on the same data, M and ef_construction. **Build**: CREATE INDEX wall clock (median of the"
	echo "runs, range beside it), serial (max_parallel_maintenance_workers = 0) and parallel (1 worker + leader;"
	echo "hnswlib 2 threads); *workers seen*: parallel workers counted during each parallel build (0: it ran"
	echo "serially). CPU s: the backend's CPU time (hnswlib: the process's). **Search**: one backend runs the"
	echo "queries (\`SELECT id FROM items ORDER BY embedding <op> \$q LIMIT 10\`) in a PL/pgSQL loop, no client"
	echo "round trips, twice; the second (warm) pass is timed; medians of the runs; recall@10 against exact"
	echo "brute force (bench/tools/truth), ties counted as hits. hnswlib: one thread, in-process, its own"
	echo "recall on the same truth. CPU-QPS: queries per CPU second (steadier on a shared machine)."
	echo "**How** (QPS at recall 0.97): on each method's curve (points in ef_search order), log(QPS) is"
	echo "interpolated linearly in recall between the last point below 0.97 and the first at or above it;"
	echo "when the smallest ef_search is already above, its QPS is given (a lower bound). Ratios divide by"
	echo "hnswlib's QPS at the same recall, found the same way."
	echo
} >"$HEAD"
if [[ "$QUICK" == 1 || ! -f "$RESULT_MD" ]]; then
	cat "$HEAD" "$RUNSEC" >"$RESULT_MD"
else
	cat "$RUNSEC" >>"$RESULT_MD"
fi
if [[ "$QUICK" == 1 || ! -f "$TSV" ]]; then
	printf 'run\tset\tmethod\tmeasure\trep\tvalue\n' >"$TSV"
fi
cat "$RAW" >>"$TSV"
cat "$RUNSEC"
bench_log "wrote $RESULT_MD (run $RUN_ID) in $(bench_since "$BENCH_T0") s"
