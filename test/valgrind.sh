#!/usr/bin/env bash
#
# test/valgrind.sh: memory-error run of engram_hnsw's regression suites
# under valgrind (memcheck); test/run_all.sh runs it as the "valgrind" step.
# Why valgrind and not AddressSanitizer: see below (the page-reading code is
# fuzzed under ASan: test/fuzz/).
#
#     sudo bash test/valgrind.sh          pg_regress + isolation suites
#     VALGRIND_KEEP=1 ...                 keep the temp dir (logs, reports)
#     VALGRIND_REGRESS="build scan"       only these pg_regress suites
#     VALGRIND_ISOLATION=""               no isolation suites (default: all)
#     VALGRIND_PGPORT=N                   the cluster's port (default
#                                         ENGRAM_PGPORT + 1000, or 54339)
#
# (The TAP tests start clusters of their own, which do not run under
# valgrind; they are not part of this run.)
#
# Needs: Debian 12, PostgreSQL 15 (server + server-dev), valgrind; run as
# root (the server runs as "postgres").
#
# What it does, without touching the system's PostgreSQL installation:
#  1. copies the PostgreSQL 15 installation (/usr/lib/postgresql/15,
#     /usr/share/postgresql/15, /usr/include/postgresql) into a temp dir;
#     Debian's build is relocatable, so the copy's pg_config, initdb and
#     postgres use their own lib and share dirs;
#  2. builds a copy of this tree with COPT="-O1 -g -fno-omit-frame-pointer"
#     and installs it into the copied installation only;
#  3. starts a throwaway cluster whose postmaster runs under
#     valgrind --trace-children=yes (backends are forked, so every backend
#     is checked), one log per process, with test/valgrind.supp (known false
#     positives of the server and glibc) and jit = off (LLVM compiling
#     expressions under valgrind is slow, and it is not the extension's code);
#  4. runs `make installcheck` (REGRESS and ISOLATION) against it;
#  5. counts the valgrind errors whose stack has a frame in engram_hnsw.so
#     (a function of src/hnsw_*.c) (errors elsewhere are PostgreSQL's own known false positives, e.g.
#     the padding bytes of the relcache init file; PostgreSQL ships a
#     suppression file for them only in its source tree) and prints them;
#     exits 1 if a suite fails or such an error was found, 0 otherwise.
#
# Limits: Debian's server is not built with USE_VALGRIND, so palloc() chunks
# are not marked: a read a little past a palloc'd chunk inside a memory-
# context block, or past a tuple inside a shared buffer, is not seen.
# Reads of uninitialised memory, overruns of malloc'd blocks (palloc
# requests above 8 kB get a block of their own), use after free of such
# blocks and invalid frees are.
#
# Why not AddressSanitizer: the extension can be built with
# -fsanitize=address, but the server is not, so libasan would have to be
# preloaded (LD_PRELOAD) into Debian's postgres; there, libgpg-error's
# constructor calls bindtextdomain() before libasan's constructor has run,
# its malloc() starts ASan's lazy initialisation while glibc holds
# _nl_state_lock, and the process deadlocks before main() (glibc 2.36,
# gcc 12 libasan 8; seen with `postgres -V`).  An ASan run needs a server
# built with ASan from source.

set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
PG_MAJOR="${PG_MAJOR:-15}"
PGOS="${ENGRAM_PG_OSUSER:-postgres}"
KEEP="${VALGRIND_KEEP:-0}"
START_TS="$(date +%s)"

die() {
	echo "valgrind.sh: $*" >&2
	exit 2
}

[[ "$(id -u)" -eq 0 ]] || die "run as root (the server runs as $PGOS)"
[[ -x "/usr/lib/postgresql/$PG_MAJOR/bin/postgres" ]] || die "PostgreSQL $PG_MAJOR not installed"
[[ -d "/usr/include/postgresql/$PG_MAJOR/server" ]] || die "postgresql-server-dev-$PG_MAJOR not installed"
command -v valgrind >/dev/null || die "valgrind not installed (apt-get install valgrind)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/engram_valgrind.XXXXXX")" || die "mktemp failed"
chmod 755 "$WORK"
PRIV="$WORK/pg"
TREE="$WORK/tree"
VG="$WORK/valgrind"
DATA="$WORK/data"
SOCK="$WORK/sock"
PORT="${VALGRIND_PGPORT:-$((${ENGRAM_PGPORT:-53339} + 1000))}"
PGBIN="$PRIV/usr/lib/postgresql/$PG_MAJOR/bin"
PG_CONFIG="$PGBIN/pg_config"

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	if [[ -f "$DATA/postmaster.pid" ]]; then
		runuser -u "$PGOS" -- "$PGBIN/pg_ctl" -D "$DATA" -m immediate -w -t 120 stop >/dev/null 2>&1
	fi
	if [[ -d "$TREE/tmp_check" ]]; then
		while IFS= read -r pidfile; do
			runuser -u "$PGOS" -- "$PGBIN/pg_ctl" -D "$(dirname "$pidfile")" -m immediate -w stop >/dev/null 2>&1
		done < <(find "$TREE/tmp_check" -name postmaster.pid 2>/dev/null)
	fi
	if [[ "$KEEP" == 1 ]]; then
		echo "valgrind.sh: keeping $WORK"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
# a timeout (test/run_all.sh) must not leave the valgrind server behind
trap 'exit 143' TERM
trap 'exit 130' INT

echo "== copying the PostgreSQL $PG_MAJOR installation into $PRIV"
mkdir -p "$PRIV/usr/lib/postgresql" "$PRIV/usr/share/postgresql" "$PRIV/usr/include"
if ! { cp -a "/usr/lib/postgresql/$PG_MAJOR" "$PRIV/usr/lib/postgresql/" &&
	cp -a "/usr/share/postgresql/$PG_MAJOR" "$PRIV/usr/share/postgresql/" &&
	cp -a /usr/include/postgresql "$PRIV/usr/include/"; }; then
	die "copy failed"
fi
[[ "$("$PG_CONFIG" --pkglibdir)" == "$PRIV"* ]] ||
	die "the copied pg_config does not relocate ($("$PG_CONFIG" --pkglibdir))"

echo "== building the extension (-O1 -g)"
mkdir -p "$TREE" "$VG" "$SOCK"
tar -C "$ROOT" --exclude=./.git --exclude=./tmp_check --exclude=./results \
	--exclude=./output_iso --exclude=./bench -cf - . | tar -C "$TREE" -xf -
(cd "$TREE" && make -s clean PG_CONFIG="$PG_CONFIG" >/dev/null 2>&1
	make -s -j"$(nproc)" PG_CONFIG="$PG_CONFIG" COPT="-O1 -g -fno-omit-frame-pointer" &&
	make -s install PG_CONFIG="$PG_CONFIG") || die "build failed"
chown -R "$PGOS:" "$WORK"

echo "== starting a cluster under valgrind"
runuser -u "$PGOS" -- "$PGBIN/initdb" -D "$DATA" -U postgres --auth=trust --no-sync \
	>"$WORK/initdb.log" 2>&1 || { cat "$WORK/initdb.log"; die "initdb failed"; }
cat >>"$DATA/postgresql.conf" <<EOF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$SOCK'
fsync = off
max_prepared_transactions = 10
max_connections = 30
autovacuum = off
jit = off
EOF
runuser -u "$PGOS" -- setsid valgrind --quiet --trace-children=yes --num-callers=40 \
	--error-limit=no --read-var-info=no --log-file="$VG/vg.%p.log" \
	--suppressions="$HERE/valgrind.supp" \
	"$PGBIN/postgres" -D "$DATA" >"$WORK/server.log" 2>&1 </dev/null &
for _ in $(seq 1 240); do
	"$PGBIN/pg_isready" -q -h "$SOCK" -p "$PORT" && break
	sleep 1
done
"$PGBIN/pg_isready" -q -h "$SOCK" -p "$PORT" || { tail -n 40 "$WORK/server.log"; die "the server did not start"; }

status=0
run_as_pg() {
	runuser -u "$PGOS" -- env -C "$TREE" PGHOST="$SOCK" PGPORT="$PORT" PGUSER=postgres \
		PATH="$PGBIN:/usr/local/bin:/usr/bin:/bin" HOME="$TREE" LC_ALL=C.UTF-8 "$@"
}

echo "== pg_regress + isolation suites"
regress=()
[[ -n "${VALGRIND_REGRESS:-}" ]] && regress=(REGRESS="$VALGRIND_REGRESS")
[[ -n "${VALGRIND_ISOLATION+set}" ]] && regress+=(ISOLATION="$VALGRIND_ISOLATION")
if ! run_as_pg make installcheck PG_CONFIG="$PG_CONFIG" TAP_TESTS= "${regress[@]}" 2>&1 |
	tee "$WORK/installcheck.out"; then
	status=1
fi
for d in "$TREE/regression.diffs" "$TREE/output_iso/regression.diffs"; do
	[[ -s "$d" ]] && { echo "---- $d"; head -n 200 "$d"; }
done

runuser -u "$PGOS" -- "$PGBIN/pg_ctl" -D "$DATA" -m fast -w -t 300 stop >/dev/null 2>&1

# valgrind errors with a frame in the extension
errors=0
others=0
for f in "$VG"/vg.*.log; do
	[[ -s "$f" ]] || continue
	while IFS= read -r -d '' block; do
		# WAL buffers are written with uninitialised padding bytes: a known
		# false positive (PostgreSQL's src/tools/valgrind.supp suppresses
		# it), reached through the extension's own XLogInsert calls too
		if grep -qE 'Syscall param p?write(64)?\(buf\)' <<<"$block" &&
			grep -qE 'XLogFlush|XLogInsertRecord|XLogBackgroundFlush|XLogWrite' <<<"$block"; then
			others=$((others + 1))
			continue
		fi
		# frames of the extension: "(in .../engram_hnsw.so)" or, with -g,
		# "fn (hnsw_xxx.c:123)"
		if grep -qE 'engram_hnsw\.so|\(hnsw_[a-z_]+\.c:[0-9]+\)' <<<"$block"; then
			errors=$((errors + 1))
			echo "---- valgrind error in the extension ($f)"
			head -n 60 <<<"$block"
		else
			others=$((others + 1))
		fi
	done < <(awk '
		/^==[0-9]+== [A-Z]/ && !inblk { inblk = 1; blk = "" }
		inblk { blk = blk $0 "\n" }
		/^==[0-9]+== *$/ && inblk { printf "%s%c", blk, 0; inblk = 0 }
		END { if (inblk) printf "%s%c", blk, 0 }' "$f")
done

echo
echo "valgrind.sh: $errors valgrind error(s) in engram_hnsw.so; $others elsewhere (PostgreSQL's own, not counted); $(($(date +%s) - START_TS))s"
((errors > 0)) && status=1
if ((status == 0)); then
	echo "valgrind.sh: suites passed, no valgrind error in the extension"
else
	echo "valgrind.sh: FAILED"
fi
exit "$status"
