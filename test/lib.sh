# shellcheck shell=bash
#
# test/lib.sh: the helpers of every test and benchmark script (test/*,
# bench/main.sh, bench/spaces_writes.sh, and bench/lib.sh, which builds the
# bench_* functions on these).  Source it; it defines functions and a few
# variables and does nothing by itself.
#
#   engram_install_deps        apt-get the Debian packages we need (idempotent;
#                              ENGRAM_SKIP_DEPS=1 skips it)
#   engram_build_install       make clean; make WERROR=1 && make install
#   engram_build_idx2copy      compile test/tools/idx2copy
#   engram_cluster_start [-c name=value ...]
#                              initdb + start a throwaway cluster as "postgres"
#                              in a mktemp dir; exports PGHOST/PGPORT/PGUSER
#                              (= engram_cluster_init + engram_cluster_up, for
#                              a caller that edits the configuration between)
#   engram_cluster_stop        stop it (engram_cleanup removes the temp dir)
#   engram_cleanup             stop/remove everything this shell started
#                              (install it with: trap engram_cleanup EXIT)
#   engram_psql ARGS...        psql -X -q -v ON_ERROR_STOP=1 against it
#   engram_psql_val ARGS...    the same, unaligned, tuples only (one value)
#   engram_as_pg CMD...        run CMD as the PostgreSQL OS user
#   engram_log / engram_die    a timestamped line on stderr / an error and exit 1
#   engram_suite_start PREFIX DB TIMEOUT [-c name=value ...]
#                              the start of recall.sh and soak.sh (see below)
#   engram_suite_end PREFIX DB and their end
#   engram_load_fmnist TABLE train|test COUNT [OFFSET] [pk|nopk] [--normalize]
#                              create TABLE(id int, embedding real[]) and COPY
#                              Fashion-MNIST images into it (ids 1..COUNT);
#                              ENGRAM_LOAD_STORAGE=plain|main|... sets the
#                              column's storage first
#
# Requirements: Debian 12, PostgreSQL 15.  Servers run as the "postgres"
# user (PostgreSQL refuses to run as root); clients run as the calling user
# and connect as role "postgres" over a private unix socket (trust auth).

if [[ -n "${ENGRAM_LIB_LOADED:-}" ]]; then
	return 0
fi
ENGRAM_LIB_LOADED=1

ENGRAM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PG_MAJOR="${PG_MAJOR:-15}"
PGBIN="${PGBIN:-/usr/lib/postgresql/${PG_MAJOR}/bin}"
PG_CONFIG="${PG_CONFIG:-${PGBIN}/pg_config}"
FMNIST_DIR="${FMNIST_DIR:-/usr/share/datasets/fashion-mnist}"
IDX2COPY="${IDX2COPY:-${ENGRAM_ROOT}/test/tools/idx2copy}"
ENGRAM_PG_OSUSER="${ENGRAM_PG_OSUSER:-postgres}"
export PG_CONFIG

ENGRAM_DEB_PACKAGES=(
	postgresql-15 postgresql-server-dev-15 postgresql-contrib-15 postgresql-client-15
	libipc-run-perl dataset-fashion-mnist libhnswlib-dev gnuplot-nox
	build-essential
	clang libclang-rt-14-dev llvm valgrind
)

# state of the cluster started by engram_cluster_start
ENGRAM_TMPDIR=""
ENGRAM_PGDATA=""
ENGRAM_PGLOG=""
ENGRAM_PGSOCK=""
ENGRAM_PGPORT_USED=""
ENGRAM_TMPDIRS=()

engram_log() {
	printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2
}

engram_die() {
	printf 'ERROR: %s\n' "$*" >&2
	exit 1
}

engram_require_root() {
	[[ "$(id -u)" -eq 0 ]] || engram_die "${1:-this script} must run as root (sudo)"
}

# Run a command as the PostgreSQL OS user (or directly when we are not root).
engram_as_pg() {
	if [[ "$(id -u)" -eq 0 ]]; then
		runuser -u "$ENGRAM_PG_OSUSER" -- "$@"
	else
		"$@"
	fi
}

# True when the package (or something providing it) is installed.
_engram_pkg_present() {
	local pkg="$1"
	if dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -q '^install ok installed'; then
		return 0
	fi
	# virtual packages, e.g. postgresql-contrib-15 is provided by postgresql-15
	dpkg-query -W -f='${Status}|${Provides}\n' 2>/dev/null |
		grep '^install ok installed|' | cut -d'|' -f2 | tr ',' '\n' |
		sed -e 's/([^)]*)//g' -e 's/^ *//' -e 's/ *$//' | grep -qxF "$pkg"
}

# Install the Debian packages we need; apt-get update runs at most once and
# only when something is missing.  ENGRAM_SKIP_DEPS=1 skips the whole step.
engram_install_deps() {
	if [[ "${ENGRAM_SKIP_DEPS:-0}" == 1 ]]; then
		engram_log "ENGRAM_SKIP_DEPS=1: not installing packages"
		return 0
	fi
	local missing=() pkg
	for pkg in "${ENGRAM_DEB_PACKAGES[@]}"; do
		_engram_pkg_present "$pkg" || missing+=("$pkg")
	done
	if ((${#missing[@]} == 0)); then
		engram_log "all Debian packages present"
	else
		engram_require_root "installing ${missing[*]}"
		engram_log "installing: ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		if [[ -z "${ENGRAM_APT_UPDATED:-}" ]]; then
			apt-get update -q || engram_die "apt-get update failed"
			ENGRAM_APT_UPDATED=1
		fi
		apt-get install -y -q --no-install-recommends "${missing[@]}" ||
			engram_die "apt-get install failed"
	fi
	[[ -x "$PGBIN/postgres" ]] || engram_die "PostgreSQL $PG_MAJOR server not found in $PGBIN"
	[[ -x "$PG_CONFIG" ]] || engram_die "pg_config not found at $PG_CONFIG"
	id "$ENGRAM_PG_OSUSER" >/dev/null 2>&1 || engram_die "OS user $ENGRAM_PG_OSUSER does not exist"
}

engram_build_idx2copy() {
	local src="$ENGRAM_ROOT/test/tools/idx2copy.c"
	if [[ ! -x "$IDX2COPY" || "$src" -nt "$IDX2COPY" ]]; then
		engram_log "building $IDX2COPY"
		gcc -O2 -Wall -Wextra -Werror -o "$IDX2COPY" "$src" -lm
	fi
}

# make clean; make WERROR=1 && make install (as root).  Output goes to the
# caller's stdout/stderr; returns make's status.
engram_build_install() {
	(
		cd "$ENGRAM_ROOT" || exit 1
		local jobs
		jobs="$(nproc 2>/dev/null || echo 2)"
		make -s clean PG_CONFIG="$PG_CONFIG" >/dev/null &&
			make -j"$jobs" WERROR=1 PG_CONFIG="$PG_CONFIG" &&
			make install PG_CONFIG="$PG_CONFIG"
	)
}

# Make a temp dir owned by the postgres OS user; prints its name and records
# it for engram_cleanup.  (Call without $(...) to keep the record: the
# result is left in ENGRAM_LAST_TMPDIR.)
engram_mktemp_pg() {
	local d
	d="$(mktemp -d "${TMPDIR:-/tmp}/engram_hnsw.XXXXXX")" || engram_die "mktemp failed"
	chmod 755 "$d"
	if [[ "$(id -u)" -eq 0 ]]; then
		chown "$ENGRAM_PG_OSUSER:" "$d"
	fi
	ENGRAM_TMPDIRS+=("$d")
	ENGRAM_LAST_TMPDIR="$d"
}

# engram_cluster_start [-c name=value ...]
# initdb + pg_ctl start a throwaway cluster: engram_cluster_init, then
# engram_cluster_up.
engram_cluster_start() {
	engram_cluster_init "$@" && engram_cluster_up
}

# engram_cluster_init [-c name=value ...]: initdb a throwaway cluster in a
# mktemp dir and write its settings (ours, then the -c ones: the last of a
# name wins), without starting it.  Port: $ENGRAM_PGPORT or 54329 (no TCP
# listener, socket in a private dir, so the port cannot clash).
engram_cluster_init() {
	local opts=() port="${ENGRAM_PGPORT:-54329}"
	while (($#)); do
		case "$1" in
		-c) opts+=("$2"); shift 2 ;;
		*) engram_die "engram_cluster_init: unknown argument $1" ;;
		esac
	done
	[[ -z "$ENGRAM_PGDATA" ]] || engram_die "a cluster is already running ($ENGRAM_PGDATA)"
	engram_mktemp_pg
	ENGRAM_TMPDIR="$ENGRAM_LAST_TMPDIR"
	ENGRAM_PGDATA="$ENGRAM_TMPDIR/data"
	ENGRAM_PGLOG="$ENGRAM_TMPDIR/server.log"
	ENGRAM_PGSOCK="$ENGRAM_TMPDIR/sock"
	ENGRAM_PGPORT_USED="$port"
	engram_as_pg mkdir -p "$ENGRAM_PGSOCK"
	engram_log "initdb in $ENGRAM_PGDATA"
	engram_as_pg "$PGBIN/initdb" -D "$ENGRAM_PGDATA" -U postgres --auth=trust \
		--no-locale -E UTF8 --no-sync >"$ENGRAM_TMPDIR/initdb.log" 2>&1 || {
		cat "$ENGRAM_TMPDIR/initdb.log" >&2
		engram_die "initdb failed"
	}
	{
		echo "port = $port"
		echo "listen_addresses = ''"
		echo "unix_socket_directories = '$ENGRAM_PGSOCK'"
		echo "fsync = off"
		echo "synchronous_commit = off"
		echo "full_page_writes = off"
		echo "max_prepared_transactions = 10"
		echo "log_min_messages = warning"
		echo "log_line_prefix = '%m [%p] %q%a '"
		local o
		for o in "${opts[@]}"; do
			printf '%s = %s\n' "${o%%=*}" "${o#*=}"
		done
	} | engram_as_pg tee -a "$ENGRAM_PGDATA/postgresql.conf" >/dev/null
}

# engram_cluster_up: start the cluster engram_cluster_init made; exports
# PGHOST/PGPORT/PGUSER/PGDATABASE for it.
engram_cluster_up() {
	if ! engram_as_pg "$PGBIN/pg_ctl" -D "$ENGRAM_PGDATA" -l "$ENGRAM_PGLOG" -w -t 120 start >/dev/null; then
		tail -n 50 "$ENGRAM_PGLOG" >&2 || true
		engram_die "could not start the throwaway cluster"
	fi
	export PGHOST="$ENGRAM_PGSOCK" PGPORT="$ENGRAM_PGPORT_USED" PGUSER=postgres PGDATABASE=postgres
	unset PGSERVICE PGPASSWORD PGHOSTADDR PGSSLMODE PGOPTIONS
	engram_log "cluster up: PGHOST=$PGHOST PGPORT=$PGPORT (log: $ENGRAM_PGLOG)"
}

engram_cluster_stop() {
	if [[ -n "$ENGRAM_PGDATA" && -f "$ENGRAM_PGDATA/postmaster.pid" ]]; then
		engram_as_pg "$PGBIN/pg_ctl" -D "$ENGRAM_PGDATA" -m fast -w -t 60 stop >/dev/null 2>&1 ||
			engram_as_pg "$PGBIN/pg_ctl" -D "$ENGRAM_PGDATA" -m immediate -w -t 30 stop >/dev/null 2>&1 ||
			true
	fi
	ENGRAM_PGDATA=""
}

# Tail of the server log (for failure reports).
engram_cluster_log_tail() {
	local n="${1:-40}"
	if [[ -n "$ENGRAM_PGLOG" && -f "$ENGRAM_PGLOG" ]]; then
		echo "---- tail of server log $ENGRAM_PGLOG ----"
		tail -n "$n" "$ENGRAM_PGLOG"
		echo "---- end of server log ----"
	fi
}

# Stop (immediate) every server whose data dir lies under directory $1,
# e.g. clusters of a TAP test that was killed by a timeout.
engram_stop_servers_under() {
	local pidfile
	[[ -n "${1:-}" && -d "$1" ]] || return 0
	while IFS= read -r pidfile; do
		engram_as_pg "$PGBIN/pg_ctl" -D "$(dirname "$pidfile")" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
	done < <(find "$1" -name postmaster.pid -type f 2>/dev/null)
}

# Stop the cluster and remove every temp dir we made.  Keep them with
# ENGRAM_KEEP_TMP=1 (for debugging).
# engram_suite_start PREFIX DB TIMEOUT [-c name=value ...]: the start of a
# suite script (test/recall/recall.sh, test/soak/soak.sh) run alone or from
# run_all.sh: the cleanup trap; unless ENGRAM_SKIP_SETUP=1, the packages and
# a build + install; WORK, a temp dir; with PREFIX_USE_CLUSTER=1 the cluster
# of PGHOST/PGPORT, else a throwaway one with the settings given; then the
# database DB, created anew with statement_timeout TIMEOUT, as PGDATABASE
engram_suite_start() {
	local use="${1}_USE_CLUSTER" db="$2" timeout="$3"
	shift 3
	trap engram_cleanup EXIT
	trap 'exit 130' INT TERM
	if [[ "${ENGRAM_SKIP_SETUP:-0}" != 1 ]]; then
		engram_install_deps
		engram_log "building and installing engram_hnsw"
		engram_build_install || engram_die "build failed"
	fi
	engram_mktemp_pg
	# shellcheck disable=SC2034 # the caller's work directory
	WORK="$ENGRAM_LAST_TMPDIR"
	if [[ "${!use:-0}" == 1 ]]; then
		[[ -n "${PGHOST:-}" && -n "${PGPORT:-}" ]] || engram_die "$use=1 needs PGHOST and PGPORT"
		export PGUSER="${PGUSER:-postgres}"
		export PGDATABASE=postgres
	else
		engram_cluster_start "$@"
	fi
	engram_psql -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db" \
		-c "CREATE DATABASE $db" \
		-c "ALTER DATABASE $db SET statement_timeout = '$timeout'"
	export PGDATABASE="$db"
}

# engram_suite_end PREFIX DB: the end of such a script: when a case failed
# (FAILED > 0), the tail of the server log of its own cluster; DB dropped
# unless PREFIX_KEEP_DB=1
engram_suite_end() {
	local use="${1}_USE_CLUSTER" keep="${1}_KEEP_DB" db="$2"
	if ((FAILED > 0)) && [[ "${!use:-0}" != 1 ]]; then
		engram_cluster_log_tail 40
	fi
	if [[ "${!keep:-0}" != 1 ]]; then
		PGDATABASE=postgres engram_psql -c "DROP DATABASE IF EXISTS $db" || true
	fi
}

engram_cleanup() {
	local rc=$?
	engram_cluster_stop
	if [[ "${ENGRAM_KEEP_TMP:-0}" == 1 ]]; then
		((${#ENGRAM_TMPDIRS[@]})) && engram_log "keeping ${ENGRAM_TMPDIRS[*]}"
	else
		local d
		for d in "${ENGRAM_TMPDIRS[@]}"; do
			[[ -n "$d" && -d "$d" ]] || continue
			engram_stop_servers_under "$d"
			rm -rf -- "$d"
		done
	fi
	ENGRAM_TMPDIRS=()
	return "$rc"
}

engram_psql() {
	"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"
}

# Print one value (unaligned, tuples only).
engram_psql_val() {
	engram_psql -At "$@"
}

# engram_load_fmnist TABLE train|test COUNT [OFFSET] [pk|nopk] [--normalize]
# Creates TABLE(id int [primary key], embedding real[]) and loads COUNT
# images starting at image OFFSET with ids 1..COUNT.
engram_load_fmnist() {
	local table="$1" set="$2" count="$3" offset="${4:-0}" key="${5:-pk}" norm="${6:-}"
	local file
	case "$set" in
	train) file="$FMNIST_DIR/train-images-idx3-ubyte" ;;
	test) file="$FMNIST_DIR/t10k-images-idx3-ubyte" ;;
	*) engram_die "engram_load_fmnist: set must be train or test" ;;
	esac
	local cat_cmd=(cat "$file")
	if [[ ! -f "$file" ]]; then
		[[ -f "$file.gz" ]] || engram_die "dataset file $file(.gz) not found (package dataset-fashion-mnist)"
		cat_cmd=(zcat "$file.gz")
	fi
	[[ -x "$IDX2COPY" ]] || engram_build_idx2copy
	local pk=""
	[[ "$key" == pk ]] && pk=" primary key"
	engram_psql -c "SET client_min_messages = warning" -c "DROP TABLE IF EXISTS $table" \
		-c "CREATE TABLE $table (id int$pk, embedding real[])" || return 1
	if [[ -n "${ENGRAM_LOAD_STORAGE:-}" ]]; then
		engram_psql -c "ALTER TABLE $table ALTER COLUMN embedding SET STORAGE $ENGRAM_LOAD_STORAGE" || return 1
	fi
	local args=(--first-id 1 --offset "$offset" --limit "$count")
	[[ "$norm" == --normalize ]] && args+=(--normalize)
	# zcat may die of SIGPIPE (141) when idx2copy stops early: that is fine
	local st=(0 0 0)
	if ! "${cat_cmd[@]}" | "$IDX2COPY" "${args[@]}" |
		engram_psql -c "COPY $table (id, embedding) FROM STDIN"; then
		st=("${PIPESTATUS[@]}")
	fi
	if [[ "${st[0]}" != 0 && "${st[0]}" != 141 ]] || [[ "${st[1]}" != 0 || "${st[2]}" != 0 ]]; then
		engram_log "loading $table failed (pipeline status ${st[*]})"
		return 1
	fi
	local got
	got="$(engram_psql_val -c "SELECT count(*) FROM $table")"
	[[ "$got" == "$count" ]] || engram_die "loaded $got rows into $table, expected $count"
	engram_psql -c "ANALYZE $table"
}

# report_why NAME DETAIL [WHY...]: the calling script's report(): ok if no
# WHY is given, else not ok with the reasons joined by ';'
report_why() {
	local name="$1" detail="$2"
	shift 2
	if (($# == 0)); then
		report ok "$name" "$detail"
	else
		local IFS=';'
		report "not ok" "$name" "$detail: $*"
	fi
}
