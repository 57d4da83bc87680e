# shellcheck shell=bash
#
# bench/lib.sh: helpers shared by bench/run.sh and the bench/wl_*.sh
# workloads.  Source it; it only defines functions and variables.  It
# sources test/lib.sh, whose engram_* functions install the packages, start
# and stop clusters and run psql for tests and benchmarks alike; the bench_*
# names of those (bench_log, bench_die, bench_install_deps, bench_as_pg,
# bench_cluster_start, bench_cleanup, bench_psql, bench_val) are thin
# wrappers with the benchmark's defaults.
#
#   bench_init NAME           common start of a workload: deps, tools; sets
#                             RESULT_MD, TSV, OUT (emptied), M, EFC, WITH
#   bench_quick Q FULL        a knob's default: Q when QUICK=1, else FULL
#   bench_start               bench_ext_prepare + bench_cluster_start
#   bench_start_db DB         the same, then DB with the extension in it
#   bench_merge_kept AWK SETS...
#                             BENCH_MERGE=1: the sets of the old report kept
#   bench_qps_fn, bench_knn_loop
#                             SQL of a PL/pgSQL query loop returning QPS
#   bench_loop_record         a warm run of such a loop: QPS and CPU-QPS
#   bench_install_deps        apt-get what the suite needs (test/lib.sh's
#                             list; idempotent)
#   bench_build_tools         make -C bench (tools/bin/*)
#   bench_ext_prepare         build engram_hnsw into a private server tree
#                             (bench/work/pgtree) if it builds; sets EXT_BUILT,
#                             EXT_NOTE, PGBIN (call before bench_cluster_start)
#   bench_cluster_start       throwaway cluster (runs as "postgres", mktemp
#                             dir, private socket, port $BENCH_PGPORT); it is
#                             stopped and removed on exit; BENCH_TMPDIR,
#                             BENCH_PGDATA, BENCH_PGLOG name its files
#   bench_ext_check DB        CREATE EXTENSION + a tiny index in DB; sets
#                             EXT_OK=1/0 (and EXT_NOTE when 0)
#   bench_psql / bench_val    psql against the cluster (bench_val: one value)
#   bench_dataset NAME        make the fvecs files of a data set (cached in
#                             bench/data: fmnist[-N], gaussDIM[n|v]-N,
#                             spacesDIM-SxR, zipfDIM-N-S-eE); sets DS_BASE
#                             DS_QUERY DS_N DS_DIM DS_NQ DS_SPACES (1 for
#                             multi-space sets)
#   bench_truth NAME METRIC   exact ground truth (cached, checksummed); sets DS_TRUTH
#   bench_load_set DB NAME METRIC [NQ]
#                             load items, queries and truth tables into DB
#   bench_median              median of the numbers on stdin
#   bench_qps_at T FILE       queries/s at recall T on a recall-QPS curve
#                             (interpolated; see there)
#   bench_index_build DB INDEX DDL WORKERS
#                             one timed CREATE INDEX: "s cpu_s MB peak_MB workers"
#   bench_hnswlib_build THREADS METRIC
#                             one timed hnswlib build of $DS_BASE (its "build" line)
#   bench_pgvector_prepare    build pgvector from its source tarball into the
#                             private server tree (PGVECTOR_TARBALL or
#                             ../shared/peers); 1 when there is none
#   bench_plot_recall_qps     gnuplot: recall vs QPS (log y), ann-benchmarks style
#
# Environment knobs (all optional):
#   QUICK=1                   smaller data, fewer runs, shorter pgbench runs;
#                             results go to bench/results/quick/
#   BENCH_RUNS                repetitions per figure (default 3, QUICK 2; median taken)
#   BENCH_PGPORT              cluster port (default $ENGRAM_PGPORT, else 54331;
#                             unix socket only)
#   BENCH_SHARED_BUFFERS (4GB) BENCH_MAINTENANCE_WORK_MEM (4GB)
#   BENCH_PARALLEL_WORKERS    max_parallel_maintenance_workers of the
#                             "parallel" builds (default 1: leader + 1 = 2 cores)
#   BENCH_SYNC_COMMIT (on)    BENCH_FSYNC (on)
#   BENCH_HUGE_PAGES=1        (root) reserve huge pages for the cluster's shared
#                             memory (vm.nr_hugepages, restored on exit) and
#                             start it with huge_pages = on; default 0:
#                             huge_pages = off, whatever the machine has
#   BENCH_STORAGE             storage of the embedding column (default plain:
#                             vectors inline in the heap, no TOAST)
#   BENCH_SKIP_DEPS=1         do not apt-get
#   BENCH_EXT_FROM=head       benchmark the last commit instead of the work tree
#                             (or any commit: BENCH_EXT_FROM=<hash>)
#   BENCH_EXT_BUILD=0         do not build the extension: use the system-wide
#                             installation as it is
#   BENCH_DATA, BENCH_RESULTS, BENCH_WORK   directories (bench/data, bench/results, bench/work)
#   BENCH_KEEP_TMP=1          keep the cluster directory after the run
#   BENCH_WAIT_QUIET=N        wait up to N s for load average < BENCH_QUIET_LOAD (0.5)
#                             before a workload (the machine is shared)
#   BENCH_NICE=-5             run the workload (cluster, clients, hnswlib) at a
#                             higher CPU priority than other jobs (root)
#   BENCH_MERGE=1             build, search, spaces: run only the sets asked for and
#                             keep the other sets' sections of the existing report
#                             (see "merging reports" below)

if [[ -n "${BENCH_LIB_LOADED:-}" ]]; then
	return 0
fi
BENCH_LIB_LOADED=1

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BENCH_ROOT="$(cd "$BENCH_DIR/.." && pwd)"
BENCH_BIN="$BENCH_DIR/tools/bin"
QUICK="${QUICK:-0}"
BENCH_DATA="${BENCH_DATA:-$BENCH_DIR/data}"
# a quick run must not overwrite the real results
BENCH_RESULTS="${BENCH_RESULTS:-$BENCH_DIR/results$([[ "$QUICK" == 1 ]] && echo /quick || true)}"
BENCH_RUNS="${BENCH_RUNS:-$([[ "$QUICK" == 1 ]] && echo 2 || echo 3)}"
BENCH_WORK="${BENCH_WORK:-$BENCH_DIR/work}"
BENCH_PGPORT="${BENCH_PGPORT:-${ENGRAM_PGPORT:-54331}}"
BENCH_STORAGE="${BENCH_STORAGE:-plain}"
BENCH_PG_OSUSER="${BENCH_PG_OSUSER:-postgres}"
K=10

# Packages, clusters, psql and logging are test/lib.sh's (the engram_*
# functions); the bench_* names below are kept for the bench scripts.
ENGRAM_PG_OSUSER="$BENCH_PG_OSUSER"
# shellcheck source=test/lib.sh
source "$BENCH_ROOT/test/lib.sh"

BENCH_TMPDIR=""
BENCH_PGDATA=""
BENCH_PGLOG=""
EXT_BUILT=0
EXT_OK=0
EXT_NOTE=""

# bench_quick QUICK_VALUE FULL_VALUE: the default of a knob, by QUICK
bench_quick() { [[ "$QUICK" == 1 ]] && echo "$1" || echo "$2"; }

bench_log() { engram_log "$@"; }
bench_die() { engram_die "$@"; }
bench_now() { date +%s.%N; }
bench_since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }'; }

# ---------------------------------------------------------------- setup

bench_pkg_present() { _engram_pkg_present "$@"; }

# test/lib.sh's package list (the suite's needs are part of it); BENCH_SKIP_DEPS=1
# or ENGRAM_SKIP_DEPS=1 skips it
bench_install_deps() {
	[[ "${BENCH_SKIP_DEPS:-0}" == 1 ]] && return 0
	(engram_install_deps) || bench_die "installing the Debian packages failed"
}

bench_build_tools() {
	make -s -C "$BENCH_DIR" >/dev/null || bench_die "building bench tools failed (make -C bench)"
}

# Build the extension into a private PostgreSQL tree, so that the suite
# neither disturbs nor is disturbed by other builds and installs on the
# machine (a `make install` in the middle of a run would swap the library
# under a running cluster).  The sources are copied first: the work tree
# (tracked and untracked files, as git sees them; BENCH_EXT_FROM=tree, the
# default) or the last commit (BENCH_EXT_FROM=head).  The private tree
# ($BENCH_WORK/pgtree: copies of the server's bin, lib and share dirs plus
# `make install DESTDIR=`) is rebuilt only when the sources change; the
# throwaway clusters run from it (PostgreSQL finds its share and lib dirs
# relative to its binary).  Never fatal: without the extension the suite
# runs the baselines only.  Sets EXT_BUILT=1/0, EXT_NOTE, EXT_REV, PGBIN.
bench_ext_prepare() {
	EXT_BUILT=0
	local src="$BENCH_WORK/ext-src" tree="$BENCH_WORK/pgtree" log="$BENCH_WORK/ext_build.log"
	local bindir libdir sharedir stamp from="${BENCH_EXT_FROM:-tree}"
	bindir="$("$PG_CONFIG" --bindir)"
	libdir="$("$PG_CONFIG" --pkglibdir)"
	sharedir="$("$PG_CONFIG" --sharedir)"
	mkdir -p "$BENCH_WORK"
	if [[ "${BENCH_EXT_BUILD:-1}" != 1 ]]; then
		# use the system-wide installation as it is
		PGBIN="$bindir"
		EXT_REV="installed"
		[[ -f "$libdir/engram_hnsw.so" ]] && EXT_BUILT=1 || EXT_NOTE="engram_hnsw is not installed"
		return 0
	fi
	rm -rf "$src.new"
	mkdir -p "$src.new"
	EXT_REV="$(git -C "$BENCH_ROOT" rev-parse --short HEAD 2>/dev/null || echo none)"
	if [[ "$from" != tree ]]; then
		# head, or any commit: measure that commit's extension
		[[ "$from" == head ]] && from=HEAD
		EXT_REV="$(git -C "$BENCH_ROOT" rev-parse --short --verify "$from^{commit}" 2>/dev/null)" ||
			bench_die "BENCH_EXT_FROM=$from: not a commit"
		git -C "$BENCH_ROOT" archive "$from" | tar -x -C "$src.new" || {
			EXT_NOTE="git archive $from failed"
			return 0
		}
	else
		(cd "$BENCH_ROOT" && git ls-files -co --exclude-standard -z -- . ':!bench' |
			xargs -0 tar -cf - --no-recursion 2>/dev/null) | tar -x -C "$src.new" || {
			EXT_NOTE="copying the work tree failed"
			return 0
		}
		[[ -n "$(git -C "$BENCH_ROOT" status --porcelain -- . ':!bench' 2>/dev/null)" ]] && EXT_REV="$EXT_REV + uncommitted changes"
	fi
	stamp="$(cd "$src.new" && find . -type f -print0 | sort -z | xargs -0 sha1sum | sha1sum | cut -c1-16)"
	if [[ -x "$tree$bindir/postgres" && -f "$tree/.stamp" && "$(cat "$tree/.stamp")" == "$stamp" &&
		-f "$tree$libdir/engram_hnsw.so" ]]; then
		rm -rf "$src.new"
		PGBIN="$tree$bindir"
		EXT_BUILT=1
		return 0
	fi
	rm -rf "$src" "$tree"
	mv "$src.new" "$src"
	bench_log "building engram_hnsw ($from: $EXT_REV) into the private tree $tree"
	mkdir -p "$tree$(dirname "$bindir")" "$tree$(dirname "$sharedir")"
	cp -a "$bindir" "$tree$bindir"
	[[ -d "$tree$libdir" ]] || cp -a "$libdir" "$tree$libdir"
	cp -a "$sharedir" "$tree$sharedir"
	PGBIN="$tree$bindir"
	if ! make -C "$src" -j"$(nproc)" PG_CONFIG="$PG_CONFIG" >"$log" 2>&1; then
		EXT_NOTE="engram_hnsw does not build (make failed, see bench/work/ext_build.log)"
		bench_log "$EXT_NOTE"
		return 0
	fi
	if ! make -C "$src" install DESTDIR="$tree" PG_CONFIG="$PG_CONFIG" >>"$log" 2>&1; then
		EXT_NOTE="make install DESTDIR=... failed (see bench/work/ext_build.log)"
		bench_log "$EXT_NOTE"
		return 0
	fi
	echo "$stamp" >"$tree/.stamp"
	EXT_BUILT=1
}

# ---------------------------------------------------------------- cluster

bench_as_pg() { engram_as_pg "$@"; }

# bench_cleanup: the EXIT trap of bench_cluster_start: stops the cluster and
# removes its directory (engram_cleanup; BENCH_KEEP_TMP=1 keeps it), the
# memory watcher, the huge pages reserved for it
bench_cleanup() {
	local rc=$?
	if [[ -n "${BENCH_RSSWATCH_PID:-}" ]]; then
		kill "$BENCH_RSSWATCH_PID" 2>/dev/null || true
	fi
	ENGRAM_PGDATA="$BENCH_PGDATA"
	ENGRAM_KEEP_TMP="${BENCH_KEEP_TMP:-${ENGRAM_KEEP_TMP:-0}}" engram_cleanup
	if [[ -n "${BENCH_HP_SAVED:-}" ]]; then
		echo "$BENCH_HP_SAVED" >/proc/sys/vm/nr_hugepages 2>/dev/null || true
		BENCH_HP_SAVED=""
	fi
	BENCH_PGDATA=""
	BENCH_TMPDIR=""
	return "$rc"
}

# bench_cluster_start [-c name=value ...]: test/lib.sh's throwaway cluster
# (port $BENCH_PGPORT) with the benchmark's settings (durable unless
# BENCH_FSYNC/BENCH_SYNC_COMMIT say otherwise, large memory, no autovacuum),
# then the extra settings; stopped and removed on exit
bench_cluster_start() {
	local opts=()
	[[ -z "$BENCH_PGDATA" ]] || bench_die "a cluster is already running"
	id "$BENCH_PG_OSUSER" >/dev/null 2>&1 || bench_die "no OS user $BENCH_PG_OSUSER (install postgresql-15)"
	opts=(-c max_connections=40 -c "shared_buffers=${BENCH_SHARED_BUFFERS:-4GB}"
		-c "maintenance_work_mem=${BENCH_MAINTENANCE_WORK_MEM:-4GB}"
		-c "max_parallel_maintenance_workers=${BENCH_PARALLEL_WORKERS:-1}"
		-c max_parallel_workers_per_gather=0 -c max_worker_processes=8 -c work_mem=64MB
		-c "synchronous_commit=${BENCH_SYNC_COMMIT:-on}" -c "fsync=${BENCH_FSYNC:-on}"
		-c full_page_writes=on -c max_prepared_transactions=0
		-c max_wal_size=16GB -c min_wal_size=4GB -c checkpoint_timeout=1h
		-c autovacuum=off -c jit=off -c "log_line_prefix='%m [%p] '")
	while (($#)); do
		case "$1" in
		-c) opts+=(-c "$2"); shift 2 ;;
		*) bench_die "bench_cluster_start: unknown argument $1" ;;
		esac
	done
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
	ENGRAM_PGDATA=""
	ENGRAM_PGPORT="$BENCH_PGPORT" engram_cluster_init "${opts[@]}"
	BENCH_TMPDIR="$ENGRAM_TMPDIR"
	BENCH_PGDATA="$ENGRAM_PGDATA"
	BENCH_PGLOG="$ENGRAM_PGLOG"
	bench_huge_pages
	engram_cluster_up
}

# Huge pages for the cluster's shared memory (BENCH_HUGE_PAGES=1), else none.
# With 4 kB pages every backend faults in, one by one, each shared-buffer page
# it touches, and a graph search touches thousands of them at random: in
# bench/wl_writes.sh, 8 single-row INSERT clients with an engram_hnsw index ran
# 1.7x faster with huge pages, the table without an index 1.2x
# (bench/results/writes_hugepages.md against writes.md; bench/writes_analysis.md,
# measured at 98bb192).  Off by default so that runs compare
# alike whatever the machine has reserved; runs with it say so.
bench_huge_pages() {
	local need have
	if [[ "${BENCH_HUGE_PAGES:-0}" != 1 ]]; then
		echo "huge_pages = off" | bench_as_pg tee -a "$BENCH_PGDATA/postgresql.conf" >/dev/null
		return 0
	fi
	[[ "$(id -u)" -eq 0 ]] || bench_die "BENCH_HUGE_PAGES=1 needs root (it sets vm.nr_hugepages)"
	need="$(bench_as_pg "$PGBIN/postgres" -D "$BENCH_PGDATA" -C shared_memory_size_in_huge_pages)" ||
		bench_die "cannot tell the cluster's shared memory size in huge pages"
	((need > 0)) || bench_die "this system has no huge pages (shared_memory_size_in_huge_pages = $need)"
	BENCH_HP_SAVED="$(cat /proc/sys/vm/nr_hugepages)"
	echo $((BENCH_HP_SAVED + need + need / 20 + 8)) >/proc/sys/vm/nr_hugepages
	have="$(awk '/HugePages_Free/ { print $2 }' /proc/meminfo)"
	((have >= need)) || bench_die "only $have free huge pages of the $need needed (memory too fragmented?)"
	echo "huge_pages = on" | bench_as_pg tee -a "$BENCH_PGDATA/postgresql.conf" >/dev/null
	bench_log "huge pages: $need reserved for shared memory"
}

# Pre-create WAL segments (kept for recycling by min_wal_size), so that the
# first write measurement does not pay for creating WAL files.
bench_wal_warmup() {
	local mb="${1:-$([[ "$QUICK" == 1 ]] && echo 256 || echo 1024)}"
	bench_log "WAL warm-up (${mb} MB)"
	bench_psql -c "CREATE TABLE bench_wal_warmup (x text)" \
		-c "INSERT INTO bench_wal_warmup SELECT repeat('x', 1000) FROM generate_series(1, $mb * 1000)" \
		-c "DROP TABLE bench_wal_warmup" -c "CHECKPOINT"
}

bench_postmaster_pid() { head -n 1 "$BENCH_PGDATA/postmaster.pid"; }

bench_psql() { engram_psql "$@"; }
bench_val() { engram_psql_val "$@"; }

# Markdown: the machine and the cluster's settings
bench_settings_md() {
	local s v
	echo "| setting | value |"
	echo "|---|---|"
	for s in server_version shared_buffers huge_pages maintenance_work_mem max_parallel_maintenance_workers \
		synchronous_commit fsync work_mem max_parallel_workers_per_gather autovacuum jit; do
		v="$(bench_val -c "SHOW $s" 2>/dev/null)"
		echo "| $s | $v |"
	done
	echo "| embedding storage | $BENCH_STORAGE |"
}

bench_machine_line() {
	local cpu mem rev
	cpu="$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
	mem="$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
	rev="${EXT_REV:-$(git -C "$BENCH_ROOT" rev-parse --short HEAD 2>/dev/null || echo "no commit")}"
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($cpu), $mem, load average (1 min) at start ${BENCH_LOAD_START:-?} / at end $(cut -d' ' -f1 /proc/loadavg), engram_hnsw at $rev, QUICK=$QUICK, runs per figure: $BENCH_RUNS (median)"
}

# bench_ext_check DB: is the extension usable here?  Sets EXT_OK and EXT_NOTE.
bench_ext_check() {
	local db="$1" err
	EXT_OK=0
	if [[ "$EXT_BUILT" != 1 ]]; then
		[[ -n "$EXT_NOTE" ]] || EXT_NOTE="engram_hnsw not built"
		return 0
	fi
	if ! err="$(bench_psql -d "$db" -c "CREATE EXTENSION IF NOT EXISTS engram_hnsw" 2>&1)"; then
		EXT_NOTE="CREATE EXTENSION engram_hnsw failed: $(echo "$err" | head -n 1)"
		bench_log "$EXT_NOTE"
		return 0
	fi
	if ! err="$(bench_psql -d "$db" 2>&1 <<'SQL'
SET client_min_messages = warning;
CREATE TEMP TABLE bench_smoke AS
	SELECT g AS id, ARRAY[g, g * 2, 1]::real[] AS embedding FROM generate_series(1, 200) g;
CREATE INDEX ON bench_smoke USING engram_hnsw (embedding real_l2_ops) WITH (m = 16, ef_construction = 64);
SET enable_seqscan = off;
DO $$
BEGIN
	IF (SELECT id FROM bench_smoke ORDER BY embedding <-> '{5,10,1}'::real[] LIMIT 1) IS DISTINCT FROM 5 THEN
		RAISE EXCEPTION 'index scan returned the wrong nearest row';
	END IF;
END $$;
SQL
	)"; then
		EXT_NOTE="engram_hnsw smoke test failed: $(echo "$err" | grep -m1 -E 'ERROR|FATAL|server closed' || echo "$err" | head -n 1)"
		bench_log "$EXT_NOTE"
		return 0
	fi
	EXT_OK=1
	EXT_NOTE=""
}

# ---------------------------------------------------------------- stats

# median of the numbers on stdin (one per line; blank lines ignored)
bench_median() {
	sort -g | awk 'NF { v[n++] = $1 } END {
		if (n == 0) { print "nan"; exit }
		if (n % 2) print v[(n - 1) / 2]; else print (v[n / 2 - 1] + v[n / 2]) / 2 }'
}

# bench_fmt N DIGITS: printf a number, "-" for empty or nan
bench_fmt() {
	if [[ -z "$1" || "$1" == nan || "$1" == - ]]; then
		echo "-"
	else
		printf "%.${2:-0}f" "$1"
	fi
}

# ratio a/b with 2 decimals ("-" if either is missing)
bench_ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (a == "" || b == "" || a == "-" || b == "-" || a == "nan" || b == "nan" || b + 0 == 0) print "-";
		else printf "%.2f", a / b }'
}

# bench_qps_at T FILE: queries/s at recall@K = T on the curve in FILE (lines
# "recall qps ef", in ef order), printed as "QPS HOW".  HOW "i": between the
# last point below T and the first at or above it, log(QPS) interpolated
# linearly in recall; "b": the first point (smallest ef) is already at or
# above T, its QPS is printed (a lower bound: a smaller ef would be faster);
# "-" (and QPS "-"): no point reaches T.
bench_qps_at() {
	sort -k3,3n "$2" | awk -v t="$1" '
		$1 == "" || $1 == "-" || $2 == "" || $2 == "nan" || $2 <= 0 { next }
		$1 + 0 >= t {
			if (n == 0) printf "%.1f b\n", $2
			else printf "%.1f i\n", exp(log(pq) + (t - pr) / ($1 - pr) * (log($2) - log(pq)))
			done = 1; exit
		}
		{ pr = $1; pq = $2; n++ }
		END { if (!done) print "- -" }'
}

# ---------------------------------------------------------------- index builds

# bench_index_build DB INDEX DDL WORKERS: drop INDEX, CHECKPOINT, then run DDL
# (a CREATE INDEX making INDEX) with max_parallel_maintenance_workers =
# WORKERS; prints "SECONDS CPU_S MB PEAK_MB WORKERS": wall clock, the
# backend's CPU time (parallel workers not included), the index size, the
# backends' peak private memory above the level before it and the most
# parallel workers seen at once (bench_rss_*).  "nan nan nan nan 0" when the
# build failed (the first error line goes to the log).
bench_index_build() {
	local db="$1" idx="$2" ddl="$3" w="$4" t0 secs cpu mb err="$BENCH_WORK/build_err.$$"
	bench_psql -d "$db" -c "DROP INDEX IF EXISTS $idx" -c "CHECKPOINT" >&2
	bench_rss_start
	t0="$(bench_now)"
	read -r _ cpu <<<"$(bench_loop_cpu "$db" "SET max_parallel_maintenance_workers = $w; $ddl" 2>"$err")"
	secs="$(bench_since "$t0")"
	bench_rss_stop
	if [[ "$(bench_val -d "$db" -c "SELECT to_regclass('$idx') IS NOT NULL")" != t ]]; then
		bench_log "CREATE INDEX $idx failed: $(grep -m1 -E 'ERROR|FATAL|server closed' "$err")"
		rm -f "$err"
		echo "nan nan nan nan 0"
		return 0
	fi
	rm -f "$err"
	mb="$(bench_val -d "$db" -c "SELECT round(pg_relation_size('$idx') / 1048576.0, 1)")"
	echo "$secs $cpu $mb $RSS_PEAK_MB $RSS_WORKERS"
}

# bench_hnswlib_build THREADS METRIC: one hnswlib build of $DS_BASE with M and
# EFC (bench_init); prints its "build" line (tab-separated: build THREADS
# SECONDS INDEX_MB PEAK_RSS_MB CPU_SECONDS, see tools/hnswlib_bench.cpp).  A
# 1-thread build runs on CPU BENCH_PIN when that is set.
bench_hnswlib_build() {
	local pin=()
	[[ "$1" == 1 && -n "${BENCH_PIN:-}" ]] && pin=(taskset -c "$BENCH_PIN")
	"${pin[@]}" "$BENCH_BIN/hnswlib_bench" --base "$DS_BASE" --metric "$2" --M "$M" --efc "$EFC" \
		--threads "$1" --build-only --build-runs 1 | awk -F'\t' '$1 == "build"'
}

# bench_pgvector_prepare: pgvector, for side-by-side measurements only, built
# from its source tarball (PGVECTOR_TARBALL, else the newest
# ../shared/peers/pgvector-*.tar.gz next to the repository or one level up)
# and installed into the suite's private server tree (bench_ext_prepare
# first; never into the system-wide installation).  Rebuilt when the tree
# was.  Sets PGVECTOR_VERSION (the tarball's name); returns 1, with
# PGVECTOR_NOTE, when there is no tarball; dies when it does not build.
bench_pgvector_prepare() {
	local tarball="${PGVECTOR_TARBALL:-}" dir f libdir tree="$BENCH_WORK/pgtree" src="$BENCH_WORK/pgvector-src"
	if [[ -z "$tarball" ]]; then
		for dir in "$BENCH_ROOT/../shared/peers" "$BENCH_ROOT/../../shared/peers"; do
			for f in "$dir"/pgvector-*.tar.gz; do
				[[ -f "$f" ]] && tarball="$f"
			done
		done
	fi
	if [[ -z "$tarball" || ! -f "$tarball" ]]; then
		# shellcheck disable=SC2034 # for the caller
		PGVECTOR_NOTE="no pgvector source (set PGVECTOR_TARBALL to a pgvector-*.tar.gz; looked in ../shared/peers)"
		return 1
	fi
	[[ "${BENCH_EXT_BUILD:-1}" == 1 && "$EXT_BUILT" == 1 ]] ||
		bench_die "pgvector goes into the private server tree, which needs BENCH_EXT_BUILD=1 and a built engram_hnsw"
	PGVECTOR_VERSION="$(basename "$tarball" .tar.gz)"
	libdir="$("$PG_CONFIG" --pkglibdir)"
	[[ -f "$tree$libdir/vector.so" && "$(cat "$tree/.pgvector" 2>/dev/null)" == "$PGVECTOR_VERSION" ]] && return 0
	bench_log "building $PGVECTOR_VERSION into $tree"
	rm -rf "$src"
	mkdir -p "$src"
	tar xzf "$tarball" -C "$src" --strip-components=1 || bench_die "cannot unpack $tarball"
	make -C "$src" -j"$(nproc)" PG_CONFIG="$PG_CONFIG" >"$BENCH_WORK/pgvector_build.log" 2>&1 &&
		make -C "$src" install DESTDIR="$tree" PG_CONFIG="$PG_CONFIG" >>"$BENCH_WORK/pgvector_build.log" 2>&1 ||
		bench_die "building pgvector failed (see $BENCH_WORK/pgvector_build.log)"
	echo "$PGVECTOR_VERSION" >"$tree/.pgvector"
}

# ---------------------------------------------------------------- merging reports
#
# BENCH_MERGE=1 (build, search, spaces): run only the sets asked for
# (BUILD_SETS, SEARCH_SETS, SPACES_SETS) and keep, from the report already in
# bench/results, the sections and raw .tsv rows of the sets not run now, each
# marked with the date, load and commit of the run that measured it.  Lets
# the long sets (1 000 000 rows, 1536-d) be measured one at a time.

# bench_md_section FILE HEADING_PREFIX: the section whose heading starts
# with "## HEADING_PREFIX", up to the next "## " heading or summary marker
bench_md_section() {
	awk -v p="## $2" 'index($0, p) == 1 { on = 1; print; next }
		on && (/^## / || /^<!-- \/summary -->/) { exit } on' "$1"
}

# bench_md_section_kept FILE HEADING_PREFIX: that section with an "earlier
# run" note after its heading (the note it already has, else one made from
# the machine line of FILE); nothing when FILE has no such section
bench_md_section_kept() {
	local file="$1" sec note
	[[ -f "$file" ]] || return 0
	sec="$(bench_md_section "$file" "$2")"
	[[ -n "$sec" ]] || return 0
	note="$(grep -m1 '^_Earlier run: ' <<<"$sec" || true)"
	if [[ -z "$note" ]]; then
		note="_Earlier run: $(sed -n '3{s/\.$//;p}' "$file")._"
	fi
	head -n 1 <<<"$sec"
	echo
	echo "$note"
	echo
	tail -n +2 <<<"$sec" | grep -v '^_Earlier run: ' | awk 'NR == 1 && $0 == "" { next } { print }'
	echo # $(...) dropped the blank line that ends a section
}

# bench_merge_tsv OLD NEW COL KEEP...: append to NEW the rows of OLD (header
# skipped) whose column COL is one of KEEP
bench_merge_tsv() {
	local old="$1" new="$2" col="$3"
	shift 3
	[[ -f "$old" ]] && (($# > 0)) || return 0
	awk -F'\t' -v c="$col" -v keep="$*" 'BEGIN { n = split(keep, k, " "); for (i = 1; i <= n; i++) want[k[i]] = 1 }
		NR > 1 && ($c in want)' "$old" >>"$new"
}

# ---------------------------------------------------------------- data sets
#
# Names:
#   fmnist[-N]               Fashion-MNIST: N (default 60000) train images as
#                            the base, the 10 000 test images as queries
#   gaussD-N  / gaussDn-N    gaussian mixture, D dims, N rows (100k, 1m, 20000);
#   / gaussDv-N              "n": unit-normalised (cosine sets); "v": widely
#                            varying norms, rows offset by 0.5 and scaled by a
#                            factor uniform in (0, 1] each (inner-product sets,
#                            gen --varnorm); queries: 10 000 (1 000 for N >= 1m)
#   spacesD-SxR              S spaces x R rows, D dims, 500 (space, query) pairs
# Files: bench/data/NAME.base.fvecs, NAME.query.fvecs (+ .spaces), NAME.METRIC[-qN].truth

bench_count() {
	local s="${1,,}"
	case "$s" in
	*k) echo $((${s%k} * 1000)) ;;
	*m) echo $((${s%m} * 1000000)) ;;
	*) echo "$s" ;;
	esac
}

bench_dataset() {
	local name="$1" base query
	mkdir -p "$BENCH_DATA"
	base="$BENCH_DATA/$name.base.fvecs"
	query="$BENCH_DATA/$name.query.fvecs"
	DS_SPACES=0
	case "$name" in
	fmnist | fmnist-*)
		local n=60000
		[[ "$name" == fmnist-* ]] && n="$(bench_count "${name#fmnist-}")"
		if [[ ! -s "$base" ]]; then
			bench_log "data set $name: converting Fashion-MNIST ($n train images)"
			"$BENCH_BIN/mnist" --in "$(bench_fmnist_file train)" --out "$base" --limit "$n" 2>/dev/null ||
				bench_die "mnist conversion failed"
		fi
		if [[ ! -s "$query" ]]; then
			"$BENCH_BIN/mnist" --in "$(bench_fmnist_file test)" --out "$query" 2>/dev/null ||
				bench_die "mnist conversion failed"
		fi
		;;
	gauss*-*)
		local spec="${name#gauss}" dim norm=() n nq=10000
		dim="${spec%%-*}"
		n="$(bench_count "${spec#*-}")"
		if [[ "$dim" == *n ]]; then
			dim="${dim%n}"
			norm=(--normalize)
		elif [[ "$dim" == *v ]]; then
			dim="${dim%v}"
			norm=(--varnorm)
		fi
		((n >= 1000000)) && nq=1000
		if [[ ! -s "$base" || ! -s "$query" ]]; then
			bench_log "data set $name: generating $n x $dim gaussian mixture (seed 42${norm[*]:+, ${norm[*]}})"
			"$BENCH_BIN/gen" gauss --dim "$dim" --n "$n" --nq "$nq" --seed 42 "${norm[@]}" \
				--base "$base" --queries "$query" || bench_die "gen failed"
		fi
		;;
	spaces*-*x*)
		local spec="${name#spaces}" dim s r
		dim="${spec%%-*}"
		spec="${spec#*-}"
		s="$(bench_count "${spec%x*}")"
		r="$(bench_count "${spec#*x}")"
		DS_SPACES=1
		if [[ ! -s "$base.spaces" || ! -s "$query.spaces" ]]; then
			bench_log "data set $name: generating $s spaces x $r rows, $dim dims (seed 42)"
			"$BENCH_BIN/gen" spaces --dim "$dim" --spaces "$s" --rows "$r" --nq 500 --seed 42 \
				--base "$base" --queries "$query" || bench_die "gen failed"
		fi
		;;
	zipf*-*-*-e*)
		# zipfDIM-ROWS-SPACES-eE: gen spaces --zipf E, 500 queries by rows then
		# 500 by spaces (1000 in the file)
		local spec="${name#zipf}" dim n s e
		IFS=- read -r dim n s e <<<"$spec"
		n="$(bench_count "$n")"
		s="$(bench_count "$s")"
		e="${e#e}"
		DS_SPACES=1
		if [[ ! -s "$base.spaces" || ! -s "$query.spaces" ]]; then
			bench_log "data set $name: generating $n rows in $s spaces of Zipf sizes (exponent $e), $dim dims (seed 42)"
			"$BENCH_BIN/gen" spaces --dim "$dim" --spaces "$s" --rows $((n / s)) --zipf "$e" --nq 500 \
				--seed 42 --base "$base" --queries "$query" || bench_die "gen failed"
		fi
		;;
	*) bench_die "unknown data set $name" ;;
	esac
	DS_NAME="$name"
	DS_BASE="$base"
	DS_QUERY="$query"
	read -r DS_N DS_DIM < <("$BENCH_BIN/gen" info "$base")
	read -r DS_NQ _ < <("$BENCH_BIN/gen" info "$query")
}

bench_fmnist_file() {
	local f
	case "$1" in
	train) f="$FMNIST_DIR/train-images-idx3-ubyte" ;;
	test) f="$FMNIST_DIR/t10k-images-idx3-ubyte" ;;
	esac
	if [[ -f "$f" ]]; then
		echo "$f"
	elif [[ -f "$f.gz" ]]; then
		echo "$f.gz"
	else
		bench_die "$f(.gz) not found (Debian package dataset-fashion-mnist)"
	fi
}

# bench_truth NAME METRIC [NQ]: after bench_dataset NAME
bench_truth() {
	local name="$1" metric="$2" nq="${3:-}" args=() suffix=""
	bench_dataset "$name"
	if [[ -n "$nq" ]]; then
		args+=(--nq "$nq")
		suffix="-q$nq"
	fi
	[[ "$DS_SPACES" == 1 ]] && args+=(--spaces)
	DS_TRUTH="$BENCH_DATA/$name.$metric$suffix.truth"
	"$BENCH_BIN/truth" compute --base "$DS_BASE" --queries "$DS_QUERY" --metric "$metric" \
		--k "$K" --out "$DS_TRUTH" "${args[@]}" || bench_die "truth failed"
}

bench_opclass() {
	case "$1" in
	l2) echo real_l2_ops ;;
	cosine) echo real_cosine_ops ;;
	ip) echo real_ip_ops ;;
	esac
}

bench_operator() {
	case "$1" in
	l2) echo '<->' ;;
	cosine) echo '<=>' ;;
	ip) echo '<#>' ;;
	esac
}

# bench_copy_fvecs DB TABLE FVECS [gen copy args...]: COPY rows into TABLE
bench_copy_fvecs() {
	local db="$1" table="$2" file="$3"
	shift 3
	local cols="(id, embedding)"
	[[ " $* " == *" --spaces "* ]] && cols="(id, space_id, embedding)"
	"$BENCH_BIN/gen" copy --in "$file" "$@" |
		bench_psql -d "$db" -c "COPY $table $cols FROM STDIN" ||
		bench_die "COPY into $table failed"
}

# bench_load_set DB NAME METRIC [NQ]
# Creates in DB (created if missing), both vector columns with storage
# $BENCH_STORAGE (plain by default: uncompressed, in the heap):
#   items(id int primary key, [space_id int,] embedding real[])   the base rows
#   queries(id int primary key, [space_id int,] embedding real[]) first NQ queries
#   truth(qid int primary key, ids int[], dists float8[])           exact top K
bench_load_set() {
	local db="$1" name="$2" metric="$3" nq="${4:-}" sp="" spc=()
	bench_truth "$name" "$metric" "$nq"
	[[ -n "$nq" ]] || nq="$DS_NQ"
	if [[ "$DS_SPACES" == 1 ]]; then
		sp="space_id int NOT NULL, "
		spc=(--spaces)
	fi
	if [[ "$(bench_val -c "SELECT count(*) FROM pg_database WHERE datname = '$db'")" == 0 ]]; then
		bench_psql -c "CREATE DATABASE $db"
	fi
	bench_log "loading $name ($DS_N x $DS_DIM, $metric, $nq queries) into database $db"
	bench_psql -d "$db" -c "SET client_min_messages = warning" \
		-c "DROP TABLE IF EXISTS items, queries, truth CASCADE" \
		-c "CREATE TABLE items (id int PRIMARY KEY, ${sp}embedding real[])" \
		-c "ALTER TABLE items ALTER COLUMN embedding SET STORAGE $BENCH_STORAGE" \
		-c "CREATE TABLE queries (id int PRIMARY KEY, ${sp}embedding real[])" \
		-c "ALTER TABLE queries ALTER COLUMN embedding SET STORAGE $BENCH_STORAGE" \
		-c "CREATE TABLE truth (qid int PRIMARY KEY, ids int[], dists float8[])"
	bench_copy_fvecs "$db" items "$DS_BASE" "${spc[@]}"
	bench_copy_fvecs "$db" queries "$DS_QUERY" --limit "$nq" "${spc[@]}"
	"$BENCH_BIN/truth" dump "$DS_TRUTH" --nq "$nq" |
		bench_psql -d "$db" -c "COPY truth FROM STDIN" || bench_die "loading truth failed"
	bench_psql -d "$db" -c "VACUUM (ANALYZE) items" -c "VACUUM (ANALYZE) queries" -c "VACUUM (ANALYZE) truth"
}

# bench_recall_sql OP RESULTS [ITEMS] [TRUTH] [QUERIES]: SQL giving the mean
# recall@K of RESULTS(qid int, ids int[]) (a table or a parenthesised
# subquery) against TRUTH(qid, ids int[], dists float8[]), with ties: a
# returned id counts when it is a true neighbour or its distance (computed
# here, by the same operator) is not larger than that of the K-th true
# neighbour.  ITEMS needs an index on id for speed.
bench_recall_sql() {
	local op="$1" res="$2" items="${3:-items}" truth="${4:-truth}" queries="${5:-queries}"
	cat <<SQL
SELECT coalesce(round(avg(hit)::numeric, 4), 0) FROM (
	SELECT least(cardinality(t.ids),
		(SELECT count(*) FROM unnest(r.ids) AS x(id)
		 WHERE x.id = ANY (t.ids)
		    OR (SELECT i.embedding $op q.embedding FROM $items i WHERE i.id = x.id LIMIT 1)
		       <= (SELECT i.embedding $op q.embedding FROM $items i WHERE i.id = t.ids[cardinality(t.ids)] LIMIT 1)
		          + 1e-9 * greatest(1, abs(t.dists[cardinality(t.ids)]))))::float8
		/ greatest(cardinality(t.ids), 1) AS hit
	FROM $res r JOIN $truth t ON t.qid = r.qid JOIN $queries q ON q.id = r.qid
	WHERE cardinality(t.ids) > 0) s
SQL
}

# bench_sql_truth DB ITEMS QUERIES TRUTH OP [NQ]: exact top K by sequential
# scan in the server (for tables whose contents the suite does not know in
# advance: after inserts, deletes).  Creates TRUTH(qid, ids, dists).
bench_sql_truth() {
	local db="$1" items="$2" queries="$3" truth="$4" op="$5" nq="${6:-1000000}"
	bench_psql -d "$db" -c "SET enable_indexscan = off" -c "SET enable_bitmapscan = off" \
		-c "SET client_min_messages = warning" -c "DROP TABLE IF EXISTS $truth" -c "
		CREATE TABLE $truth AS
		SELECT q.id AS qid, array_agg(t.id ORDER BY t.d, t.id) AS ids,
			array_agg(t.d ORDER BY t.d, t.id) AS dists
		FROM (SELECT * FROM $queries ORDER BY id LIMIT $nq) q
		CROSS JOIN LATERAL (SELECT i.id, i.embedding $op q.embedding AS d FROM $items i
			ORDER BY i.embedding $op q.embedding, i.id LIMIT $K) t
		GROUP BY q.id"
}

# bench_ann_recall DB ITEMS QUERIES TRUTH OP EF: recall@K of index scans
# (enable_seqscan off, engram_hnsw.ef_search = EF) for the queries in TRUTH
bench_ann_recall() {
	local db="$1" items="$2" queries="$3" truth="$4" op="$5" ef="$6"
	bench_psql -d "$db" -c "SET client_min_messages = warning" -c "SET engram_hnsw.ef_search = $ef" \
		-c "SET enable_seqscan = off" -c "DROP TABLE IF EXISTS bench_ann_res" -c "
		CREATE TABLE bench_ann_res AS
		SELECT q.id AS qid, (SELECT array_agg(s.id) FROM (SELECT i.id FROM $items i
			ORDER BY i.embedding $op q.embedding LIMIT $K) s) AS ids
		FROM $queries q WHERE q.id IN (SELECT qid FROM $truth)" || return 1
	bench_val -d "$db" -c "$(bench_recall_sql "$op" bench_ann_res "$items" "$truth" "$queries")"
}

# bench_qps_fn NAME ARGS SETTINGS BODY [COUNT]: SQL creating the PL/pgSQL
# function NAME(ARGS) that sets each "name=value" of SETTINGS for its
# transaction (value is an SQL expression), runs BODY (with the variables
# r record, v int[]) and returns COUNT (default p_nq) per second
bench_qps_fn() {
	local name="$1" params="$2" settings="$3" body="$4" count="${5:-p_nq}" s
	cat <<SQL
CREATE OR REPLACE FUNCTION $name($params) RETURNS float8
LANGUAGE plpgsql AS \$f\$
DECLARE r record; v int[]; t0 timestamptz;
BEGIN
$(for s in $settings; do echo "	PERFORM set_config('${s%%=*}', ${s#*=}, true);"; done)
	t0 := clock_timestamp();
$body
	RETURN $count / extract(epoch FROM clock_timestamp() - t0)::float8;
END \$f\$;
SQL
}

# bench_knn_loop QUERIES ITEMS ORDER [ROW]: PL/pgSQL loop over the first p_nq
# rows r of QUERIES (by id): v = the ids of the K rows i of ITEMS first by
# ORDER; with p_store, the values ROW go into the table res
bench_knn_loop() {
	local queries="$1" items="$2" order="$3" row="${4:-}"
	echo "	FOR r IN SELECT id, embedding FROM $queries ORDER BY id LIMIT p_nq LOOP"
	echo "		SELECT array_agg(s.id) INTO v FROM (SELECT i.id FROM $items i ORDER BY $order LIMIT $K) s;"
	[[ -z "$row" ]] || echo "		IF p_store THEN INSERT INTO res VALUES ($row); END IF;"
	echo "	END LOOP;"
}

# bench_loop_cpu DB SQL [warm]: run SQL (one value, e.g. a loop returning QPS)
# in one session and print "VALUE CPU_SECONDS", CPU_SECONDS being the backend's
# user+system time during the statement (/proc, 10 ms ticks): steadier than
# the wall clock on a shared machine.  With "warm", SQL runs twice in that
# session and the line is "FIRST VALUE CPU_SECONDS": FIRST from a backend that
# had not touched the index yet, VALUE and its CPU time from the same backend,
# warm.  Without huge pages a new backend takes a page fault on the first
# touch of every 4 kB page of shared buffers it reads, which a graph search
# does at random over the whole index (0.3-0.6 s for the first 1000
# Fashion-MNIST queries); a pooled connection has paid that long before.
# With BENCH_PIN set (a CPU number, see bench_pin_cpu), the backend runs on
# that CPU only.
bench_loop_cpu() {
	local db="$1" sql="$2" warm="${3:-}" f="$BENCH_WORK/cpu.$$" v first="" pin=""
	[[ "$warm" == warm ]] && first="$sql;"
	[[ -n "${BENCH_PIN:-}" ]] && pin="\\! taskset -p -c $BENCH_PIN \$BENCH_BPID >/dev/null"
	v="$(bench_psql -At -d "$db" <<SQL | tr '\n' ' '
SELECT pg_backend_pid() AS bench_bpid \gset
\setenv BENCH_BPID :bench_bpid
$pin
$first
\! awk '{ print \$14 + \$15 }' /proc/\$BENCH_BPID/stat > $f.0
$sql;
\! awk '{ print \$14 + \$15 }' /proc/\$BENCH_BPID/stat > $f.1
SQL
	)" || v=nan
	v="${v% }"
	[[ -n "$warm" && "$v" != *" "* ]] && v="nan nan"
	echo "${v:--} $(awk -v a="$(cat "$f.0" 2>/dev/null)" -v b="$(cat "$f.1" 2>/dev/null)" -v t="$(getconf CLK_TCK)" \
		'BEGIN { if (a == "" || b == "") print "nan"; else printf "%.3f", (b - a) / t }')"
	rm -f "$f.0" "$f.1"
}

# bench_pin_cpu: the CPU that single-threaded measurements run on, from
# BENCH_PIN_CPU (a CPU number; "none": wherever the scheduler puts them;
# default: the last CPU of a machine with more than one, else none).  On a
# shared virtual machine one CPU can run a loop 1.4x slower than the other
# for minutes at a time (the other tenant's load sits on it), and a
# measurement that lands there by chance shifts a side-by-side ratio by as
# much: single-threaded builds and query loops of every method go to one CPU.
bench_pin_cpu() {
	local cpu="${BENCH_PIN_CPU:-}" n
	n="$(nproc)"
	if [[ -z "$cpu" ]]; then
		((n > 1)) && echo $((n - 1))
		return 0
	fi
	[[ "$cpu" == none ]] && return 0
	[[ "$cpu" =~ ^[0-9]+$ ]] && ((cpu < n)) || bench_die "BENCH_PIN_CPU=$cpu: not a CPU of this machine (0..$((n - 1)) or none)"
	echo "$cpu"
}

# bench_per_cpu N CPU_SECONDS: N per CPU second (one decimal); nan without
# CPU time
bench_per_cpu() { awk -v c="$2" -v n="$1" 'BEGIN { if (c > 0) printf "%.1f\n", n / c; else print "nan" }'; }

# bench_loop_record DB SQL N QPS_FILE CPU_FILE: bench_loop_cpu DB SQL warm;
# appends the warm run's value (SQL's QPS) to QPS_FILE and N (the queries
# SQL ran) per CPU second to CPU_FILE
bench_loop_record() {
	local q c
	read -r _ q c <<<"$(bench_loop_cpu "$1" "$2" warm)"
	echo "$q" >>"$4"
	bench_per_cpu "$3" "$c" >>"$5"
}

# ---------------------------------------------------------------- pgbench

# bench_pgbench_tps SCRIPT CLIENTS SECONDS [pgbench args...]: prints tps
bench_pgbench_tps() { _bench_pgbench -T "$@"; }

# same with a fixed number of transactions per client
bench_pgbench_tps_t() { _bench_pgbench -t "$@"; }

# _bench_pgbench -T|-t SCRIPT CLIENTS N [pgbench args...]: prints tps ("nan"
# and the tail of pgbench's output on stderr when it fails)
_bench_pgbench() {
	local mode="$1" script="$2" c="$3" n="$4" out
	shift 4
	out="$("$PGBIN/pgbench" -n -M prepared -f "$script" -c "$c" -j "$c" "$mode" "$n" "$@" 2>&1)" || {
		echo "$out" | tail -n 5 >&2
		echo "nan"
		return 0
	}
	echo "$out" | awk '/^tps = / { print $3; exit }'
}

# ---------------------------------------------------------------- memory

# bench_rss_start / bench_rss_stop: peak RssAnon of all backends above the
# first sample; bench_rss_stop sets RSS_PEAK_MB and RSS_WORKERS (the most
# parallel workers seen at once).  Call both in the current shell.
bench_rss_start() {
	BENCH_RSS_FILE="$BENCH_WORK/rsswatch.$$"
	"$BENCH_BIN/rsswatch" "$(bench_postmaster_pid)" 50 >"$BENCH_RSS_FILE" &
	BENCH_RSSWATCH_PID=$!
	sleep 0.1
}

bench_rss_stop() {
	local peak first
	RSS_WORKERS=0
	RSS_PEAK_MB="-"
	[[ -n "${BENCH_RSSWATCH_PID:-}" ]] || return 0
	kill -TERM "$BENCH_RSSWATCH_PID" 2>/dev/null
	wait "$BENCH_RSSWATCH_PID" 2>/dev/null || true
	BENCH_RSSWATCH_PID=""
	read -r peak first RSS_WORKERS <"$BENCH_RSS_FILE" || true
	rm -f "$BENCH_RSS_FILE"
	RSS_PEAK_MB="$(awk -v p="${peak:-0}" -v f="${first:-0}" 'BEGIN { printf "%.0f", (p - f) / 1024 }')"
}

# ---------------------------------------------------------------- plots

# bench_plot_recall_qps OUT.png TITLE [FLOOR_QPS] -- LABEL FILE [LABEL FILE ...]
# Each FILE: lines "recall qps ef".  FLOOR_QPS (exact scan) is drawn as a
# dashed horizontal line.  x = recall@10, y = queries/s (log scale).
bench_plot_recall_qps() {
	local out="$1" title="$2" floor="${3:-}" plot="" i=0
	shift 3
	[[ "${1:-}" == -- ]] && shift
	command -v gnuplot >/dev/null || {
		bench_log "gnuplot missing: no plot $out"
		return 0
	}
	local pts=(7 5 9 11 13 4 6 8)
	while (($# >= 2)); do
		if [[ -s "$2" ]]; then
			[[ -n "$plot" ]] && plot+=", "
			plot+="'$2' using 1:2 with linespoints pt ${pts[i % 8]} ps 1.2 lw 2 lc $((i + 1)) title '$1'"
			plot+=", '$2' using 1:2:3 with labels offset char 0,0.8 font ',8' tc lt $((i + 1)) notitle"
			i=$((i + 1))
		fi
		shift 2
	done
	[[ -n "$plot" ]] || return 0
	if [[ -n "$floor" && "$floor" != nan && "$floor" != - ]]; then
		plot+=", $floor with lines dt 2 lw 2 lc rgb '#555555' title 'exact scan (floor)'"
	fi
	gnuplot <<GP 2>"$BENCH_WORK/gnuplot.err" || bench_log "gnuplot failed for $out: $(head -n 3 "$BENCH_WORK/gnuplot.err")"
set terminal pngcairo noenhanced size 900,600 font 'sans,11'
set output '$out'
set title '$title'
set xlabel 'recall@10'
set ylabel 'queries per second (log scale)'
set logscale y
set grid xtics ytics mytics
set key below
set xrange [*:1.0]
$(if [[ -n "$floor" && "$floor" != nan && "$floor" != - ]]; then echo "set yrange [$floor/2:*]"; fi)
plot $plot
GP
}

# bench_plot_bars OUT.png TITLE YLABEL DATAFILE [log]: clustered bars; DATAFILE
# has a header line "group series1 series2 ..." and rows "name v1 v2 ...";
# "log" draws a logarithmic y axis
bench_plot_bars() {
	local out="$1" title="$2" ylabel="$3" data="$4" logy="${5:-}" ncol yset="set yrange [0:*]"
	[[ "$logy" == log ]] && yset="set logscale y; set yrange [1:*]"
	command -v gnuplot >/dev/null || return 0
	ncol="$(head -n 1 "$data" | awk '{ print NF }')"
	gnuplot <<GP 2>"$BENCH_WORK/gnuplot.err" || bench_log "gnuplot failed for $out: $(head -n 3 "$BENCH_WORK/gnuplot.err")"
set terminal pngcairo noenhanced size 900,600 font 'sans,11'
set output '$out'
set title '$title'
set ylabel '$ylabel'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set grid ytics
set key top left
$yset
plot for [c=2:$ncol] '$data' using c:xtic(1) title columnheader(c)
GP
}

# ---------------------------------------------------------------- workload start

# bench_init NAME: deps, tools; RESULT_MD=bench/results/NAME.md,
# TSV=bench/results/NAME.tsv, OUT=bench/work/NAME (emptied), and the index
# options every workload shares: M (INDEX_M, 16), EFC (INDEX_EFC, 64) and
# WITH ("m = M, ef_construction = EFC" plus INDEX_OPTS)
bench_init() {
	BENCH_NAME="$1"
	mkdir -p "$BENCH_RESULTS" "$BENCH_WORK" "$BENCH_DATA"
	bench_install_deps
	bench_build_tools
	RESULT_MD="$BENCH_RESULTS/$BENCH_NAME.md"
	TSV="$BENCH_RESULTS/$BENCH_NAME.tsv"
	OUT="$BENCH_WORK/$BENCH_NAME"
	rm -rf "$OUT"
	mkdir -p "$OUT"
	M="${INDEX_M:-16}"
	EFC="${INDEX_EFC:-64}"
	# shellcheck disable=SC2034 # for the workloads
	WITH="m = $M, ef_construction = $EFC${INDEX_OPTS:+, $INDEX_OPTS}"
	BENCH_T0="$(bench_now)"
	BENCH_LOAD_START="$(cut -d' ' -f1 /proc/loadavg)"
	bench_renice
	bench_wait_quiet
}

# bench_renice: with BENCH_NICE=-5 (root only), this shell and everything it
# starts (the cluster, pgbench, hnswlib) run at that priority, so that other
# jobs on a shared machine take less CPU from the measurements.  Every
# compared method gets the same priority.  Off by default.
bench_renice() {
	[[ -n "${BENCH_NICE:-}" && "${BENCH_NICE}" != 0 ]] || return 0
	renice -n "$BENCH_NICE" -p $$ >/dev/null 2>&1 && bench_log "running at nice $BENCH_NICE" ||
		bench_log "renice to $BENCH_NICE failed (not root?): normal priority"
}

# bench_wait_quiet: with BENCH_WAIT_QUIET=N, wait up to N seconds for the
# 1-minute load average to drop below BENCH_QUIET_LOAD (0.5): the machine is
# shared, and other jobs distort every figure.  Off by default.
bench_wait_quiet() {
	local max="${BENCH_WAIT_QUIET:-0}" lim="${BENCH_QUIET_LOAD:-0.5}" t=0
	((max > 0)) || return 0
	while awk -v l="$(cut -d' ' -f1 /proc/loadavg)" -v m="$lim" 'BEGIN { exit !(l >= m) }'; do
		if ((t >= max)); then
			bench_log "load average still $(cut -d' ' -f1 /proc/loadavg) after ${max}s: going on"
			break
		fi
		((t == 0)) && bench_log "waiting for a quiet machine (load $(cut -d' ' -f1 /proc/loadavg) >= $lim, up to ${max}s)"
		sleep 10
		t=$((t + 10))
	done
	BENCH_LOAD_START="$(cut -d' ' -f1 /proc/loadavg)"
}

# bench_start [-c name=value ...]: the extension (bench_ext_prepare), then
# the cluster (bench_cluster_start)
# shellcheck disable=SC2120 # the workloads call it
bench_start() {
	bench_ext_prepare
	bench_cluster_start "$@"
}

# bench_db_ext DB: create DB with the extension in it; dies when
# engram_hnsw is not usable there
bench_db_ext() {
	bench_psql -c "CREATE DATABASE $1"
	bench_ext_check "$1"
	[[ "$EXT_OK" == 1 ]] || bench_die "engram_hnsw is not usable: $EXT_NOTE"
}

# bench_start_db DB: bench_start, then bench_db_ext DB
bench_start_db() {
	# shellcheck disable=SC2119 # the cluster's default settings
	bench_start
	bench_db_ext "$1"
}

# bench_merge_kept AWK SETS...: with BENCH_MERGE=1 and a report already in
# RESULT_MD, copy it and its TSV to $OUT/old.md and $OUT/old.tsv, and set
# KEPT to the sets it has (AWK prints them from old.md) that are not among
# SETS; else KEPT=()
bench_merge_kept() {
	local prog="$1" sets t
	shift
	sets=" $* "
	KEPT=()
	[[ "${BENCH_MERGE:-0}" == 1 && -f "$RESULT_MD" ]] || return 0
	cp "$RESULT_MD" "$OUT/old.md"
	[[ -f "$TSV" ]] && cp "$TSV" "$OUT/old.tsv"
	while read -r t; do
		[[ "$sets" == *" $t "* ]] || KEPT+=("$t")
	done < <(awk "$prog" "$OUT/old.md")
}

# bench_md_header TITLE: the common top of a results file
bench_md_header() {
	echo "# $1"
	echo
	echo "$(bench_machine_line)."
	echo
	if [[ "$EXT_OK" != 1 ]]; then
		echo "**engram_hnsw was not measured: ${EXT_NOTE:-not available}.** Only the baselines ran."
		echo
	fi
}
