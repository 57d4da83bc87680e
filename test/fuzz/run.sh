#!/usr/bin/env bash
#
# test/fuzz/run.sh: build the libFuzzer harness of engram_hnsw's page-reading
# code and run it for a bounded time (see test/fuzz/README.md).
#
#     bash test/fuzz/run.sh                 build, then fuzz for FUZZ_SECONDS
#     bash test/fuzz/run.sh --build-only    build only
#     bash test/fuzz/run.sh CRASH_FILE...   build, then replay these inputs
#
# Environment:
#   FUZZ_SECONDS   fuzzing time (default 60)
#   FUZZ_WORK      build and working directory (default: a mktemp dir,
#                  removed at exit unless FUZZ_KEEP=1)
#   FUZZ_SRC       the extension sources to compile (default: ../../src)
#   FUZZ_SKIP      stages the driver leaves out, e.g. "fullscan vacuum"
#   FUZZ_ARGS      extra libFuzzer arguments
#   FUZZ_CFLAGS    extra compiler flags, e.g. -fno-sanitize=alignment
#   CC             clang (default: clang)
#
# The seed corpus test/fuzz/corpus/ (plus the earlier findings in
# test/fuzz/crashes/, replayed first as regression tests) is only read: new
# inputs go to a copy in
# the working directory.  A finding (crash, ASan/UBSan report, a forbidden
# SQLSTATE, a timeout, a leak) is saved to test/fuzz/crashes/ and the script
# exits 1.  The last lines are "fuzz: N executions in S s" and "ok - ..." or
# "not ok - ...".

set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SRC="${FUZZ_SRC:-$ROOT/src}"
SECONDS_WANTED="${FUZZ_SECONDS:-60}"
CC="${CC:-clang}"
PG_CONFIG="${PG_CONFIG:-pg_config}"
KEEP="${FUZZ_KEEP:-0}"

# the extension files the harness compiles, unchanged: every one that reads
# pages (hnsw_check.c, hnsw_build.c and hnsw_util.c need the catalog and the
# executor, hnsw_options.c and hnsw_cost.c the GUC, reloption and planner
# machinery: not linked)
SRC_FILES=(hnsw_pages hnsw_place hnsw_vector hnsw_veccache hnsw_pagegraph hnsw_graph hnsw_distance hnsw_kernels hnsw_codes hnsw_codes_kernels hnsw_space hnsw_scan hnsw_insert hnsw_vacuum hnsw_pending)

die() {
	echo "fuzz: $*" >&2
	echo "not ok - fuzz: $*"
	exit 2
}

command -v "$CC" >/dev/null || die "$CC not found (apt-get install clang libclang-rt-14-dev)"
INC="$("$PG_CONFIG" --includedir-server)" || die "pg_config not found"
PGCOMMON="$("$PG_CONFIG" --pkglibdir)/libpgcommon.a"
[[ -f "$PGCOMMON" ]] || die "$PGCOMMON not found (postgresql-server-dev)"

if [[ -n "${FUZZ_WORK:-}" ]]; then
	WORK="$FUZZ_WORK"
	mkdir -p "$WORK"
else
	WORK="$(mktemp -d "${TMPDIR:-/tmp}/engram_fuzz.XXXXXX")" || die "mktemp failed"
	if [[ "$KEEP" != 1 ]]; then
		trap 'rm -rf "$WORK"' EXIT
	fi
fi
BIN="$WORK/fuzz_hnsw"

# ---------------------------------------------------------------- build
# shellcheck disable=SC2054 # the commas belong to -fsanitize=
CFLAGS=(-g -O1 -fno-omit-frame-pointer
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
	-fwrapv -fno-strict-aliasing -DUSE_ASSERT_CHECKING
	-Wall -Wno-unused-parameter -Wno-ignored-attributes -Wno-unused-but-set-variable
	-I"$INC" -I"$SRC" -I"$HERE")
# shellcheck disable=SC2206 # FUZZ_CFLAGS is split on purpose
CFLAGS+=(${FUZZ_CFLAGS:-})

build() {
	local f objs=() log="$WORK/build.log"
	: >"$log"
	for f in "${SRC_FILES[@]}"; do
		"$CC" "${CFLAGS[@]}" -c "$SRC/$f.c" -o "$WORK/$f.o" >>"$log" 2>&1 || {
			cat "$log"
			die "compiling $SRC/$f.c failed"
		}
		objs+=("$WORK/$f.o")
	done
	for f in pg_stubs fuzz_hnsw; do
		"$CC" "${CFLAGS[@]}" -c "$HERE/$f.c" -o "$WORK/$f.o" >>"$log" 2>&1 || {
			cat "$log"
			die "compiling test/fuzz/$f.c failed"
		}
		objs+=("$WORK/$f.o")
	done
	# libpgcommon.a: hash_bytes() only (the space keys' hash, as stored)
	if ! "$CC" "${CFLAGS[@]}" "${objs[@]}" "$PGCOMMON" -lm -o "$BIN" >>"$log" 2>&1; then
		cat "$log"
		if grep -q "undefined reference" "$log"; then
			echo "fuzz: src/ calls backend functions the harness does not provide:"
			grep -o "undefined reference to \`[^']*'" "$log" | sort -u | sed 's/^/    /'
			echo "fuzz: add them to test/fuzz/pg_stubs.c (see its header comment)"
		fi
		die "linking the harness failed"
	fi
}

echo "fuzz: building $BIN from $SRC (${SRC_FILES[*]})"
build
[[ "${1:-}" == --build-only ]] && {
	echo "ok - fuzz harness built"
	exit 0
}

# ---------------------------------------------------------------- replay
if (($# > 0)); then
	"$BIN" -runs=1 "$@"
	exit $?
fi

# ---------------------------------------------------------------- fuzz
rm -rf "$WORK/artifacts"
mkdir -p "$WORK/corpus" "$WORK/artifacts"
cp "$HERE"/corpus/* "$WORK/corpus/" 2>/dev/null || true
# earlier findings are seeds too: each run replays them first (regressions)
cp "$HERE"/crashes/* "$WORK/corpus/" 2>/dev/null || true
nseeds="$(find "$WORK/corpus" -type f | wc -l)"
echo "fuzz: ${SECONDS_WANTED}s, one worker, $nseeds seed(s)${FUZZ_SKIP:+, skipping stages: $FUZZ_SKIP}"
start="$(date +%s)"
# max_len: the 32-byte header and 16 pages; timeout: a slow input is an
# endless loop on a corrupted page; rss_limit: see the memory cap in pg_stubs.c
# shellcheck disable=SC2086 # FUZZ_ARGS is split on purpose
FUZZ_STATS=1 "$BIN" "$WORK/corpus" \
	-max_total_time="$SECONDS_WANTED" -max_len=$((32 + 16 * 8192)) -timeout=20 \
	-rss_limit_mb=2048 -print_final_stats=1 -dict="$HERE/hnsw.dict" \
	-artifact_prefix="$WORK/artifacts/" ${FUZZ_ARGS:-} >"$WORK/fuzz.log" 2>&1
rc=$?
elapsed=$(($(date +%s) - start))
execs="$(grep -E '^stat::number_of_executed_units:' "$WORK/fuzz.log" | awk '{print $2}' | tail -n 1)"
[[ -n "$execs" ]] || execs="$(grep -Eo '#[0-9]+' "$WORK/fuzz.log" | tail -n 1 | tr -d '#')"
grep -E '^fuzz stats:' "$WORK/fuzz.log" | tail -n 1
tail -n 3 "$WORK/fuzz.log" | grep -E 'DONE|stat::' >/dev/null || true
echo "fuzz: ${execs:-0} executions in ${elapsed}s (exit status $rc)"

artifacts=("$WORK"/artifacts/*)
if ((rc != 0)) || [[ -e "${artifacts[0]}" ]]; then
	echo "---- fuzzer log (last 80 lines) ----"
	tail -n 80 "$WORK/fuzz.log"
	echo "---- end of fuzzer log ----"
	mkdir -p "$HERE/crashes"
	for a in "${artifacts[@]}"; do
		[[ -e "$a" ]] || continue
		cp "$a" "$HERE/crashes/"
		echo "fuzz: saved $HERE/crashes/$(basename "$a")"
		# per-backend state (stripe shift, caches) outlives an input, so a
		# finding can need the inputs before it: say whether it replays
		if "$BIN" -runs=1 "$a" >"$WORK/replay.log" 2>&1; then
			echo "fuzz: replayed alone, $(basename "$a") runs clean: the finding needs state left by earlier inputs"
		else
			echo "fuzz: replayed alone, $(basename "$a") fails again"
		fi
		# mostly zeros: small compressed, so a CI log is enough to replay it
		if (($(gzip -9c "$a" | wc -c) < 6000)); then
			echo "fuzz: the input, to replay from this log: base64 -d <<'EOF' | gunzip > $(basename "$a")"
			gzip -9c "$a" | base64
			echo "EOF"
		fi
	done
	echo "not ok - fuzz: finding after ${execs:-0} executions (replay: bash test/fuzz/run.sh test/fuzz/crashes/FILE)"
	exit 1
fi
echo "ok - fuzz: ${execs:-0} executions in ${elapsed}s, no finding"
exit 0
