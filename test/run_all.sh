#!/usr/bin/env bash
#
# test/run_all.sh: run every test of engram_hnsw.  Run as root on Debian 12:
#
#     sudo bash test/run_all.sh        (CI: bash .ci/run)
#
#  1. install the Debian packages (idempotent)
#  2. make clean; make WERROR=1 && make install      (counted as one test)
#  3. copy the tree to a temp dir owned by "postgres", start a throwaway
#     cluster and run, as postgres, the three parts of `make installcheck`
#     one after the other:
#       pg_regress            REGRESS   (sql/*.sql vs expected/*.out)
#       pg_isolation_regress  ISOLATION (test/isolation/specs/*.spec)
#       prove                 PROVE_TESTS (test/t/*.pl, own clusters), one
#                             file at a time so each file's log can be shown
#  3b. test/kernels/run.sh: the distance kernels built once per instruction
#     set, against each other and a double-precision sum (one test per
#     variant and kernel; no cluster needed)
#  4. test/recall/recall.sh against the same cluster
#  5. test/soak/soak.sh against the same cluster, SOAK_SECONDS=180: 8
#     pgbench clients mixing inserts, updates that move rows between spaces,
#     deletes, queries, VACUUM and merges; then row counts, the check, every
#     row found by its own vector and a recall pass (one test per check)
#  6. test/fuzz/run.sh: the libFuzzer harness of the page-reading code for
#     FUZZ_SECONDS (default 60) -- one test
#  7. test/valgrind.sh: the pg_regress and isolation suites again, on a private
#     copy of the installation whose server runs under valgrind; fails on a
#     suite failure or a valgrind error with a frame in engram_hnsw.so -- one
#     test.  VALGRIND_SKIP_TESTS (default "vacuum", the slowest suite under
#     valgrind) names suites left out of this step.
#
# Every pg_regress / isolation test, every TAP assertion and every recall case
# counts as one test; a suite that fails without reporting a failed test
# (crash, timeout, bad plan) counts as one failed test.  On failure the
# regression.diffs and TAP log tails are printed.  The last line of output is
# exactly "N passed, M failed"; the exit status is 0 only if M = 0 and N > 0.
#
# Environment: RUN_ALL_BUDGET (seconds, default 3300) bounds the whole run;
# ENGRAM_SKIP_DEPS=1 skips apt; ENGRAM_KEEP_TMP=1 keeps the temp dirs;
# RUN_ALL_SKIP="kernels regress isolation tap recall soak fuzz valgrind" skips parts;
# FUZZ_SECONDS sets the fuzzing time.
#
# Out-of-disk test (test/t/012_faults.pl): before the TAP part, when run as
# root, a 20 MB tmpfs (or, failing that, a loop-mounted 20 MB ext4 image) is
# mounted on a temp dir owned by postgres and exported as
# ENGRAM_SMALL_TABLESPACE; it is unmounted on exit.  If it cannot be mounted
# (no privilege), ENGRAM_SMALL_TABLESPACE_SKIP carries the reason and the
# test reports that part as skipped.  An ENGRAM_SMALL_TABLESPACE set by the
# caller is used as it is.

set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=test/lib.sh
source "$HERE/lib.sh"

START_TS="$(date +%s)"
BUDGET="${RUN_ALL_BUDGET:-3300}"
SKIP=" ${RUN_ALL_SKIP:-} "
PASSED=0
FAILED=0
FAILED_NAMES=()

# ---------------------------------------------------------------- small file system
SMALL_FS_DIR=""
SMALL_FS_MOUNTED=0

# Mount a 20 MB file system for the out-of-disk test; exports
# ENGRAM_SMALL_TABLESPACE, or ENGRAM_SMALL_TABLESPACE_SKIP with the reason.
small_fs_mount() {
	local err1 err2 img
	if [[ -n "${ENGRAM_SMALL_TABLESPACE:-}" ]]; then
		echo "ENGRAM_SMALL_TABLESPACE=$ENGRAM_SMALL_TABLESPACE (given by the caller)"
		return 0
	fi
	if [[ "$(id -u)" -ne 0 ]]; then
		export ENGRAM_SMALL_TABLESPACE_SKIP="test/run_all.sh is not running as root, so it cannot mount a 20 MB file system"
		echo "$ENGRAM_SMALL_TABLESPACE_SKIP"
		return 0
	fi
	SMALL_FS_DIR="$(mktemp -d "${TMPDIR:-/tmp}/engram_small.XXXXXX")" || return 0
	if err1="$(mount -t tmpfs -o size=20m,mode=0755 tmpfs "$SMALL_FS_DIR" 2>&1)"; then
		SMALL_FS_MOUNTED=1
	else
		img="$SMALL_FS_DIR.img"
		if ! err2="$(truncate -s 20M "$img" 2>&1 && mkfs.ext4 -q -F "$img" 2>&1)"; then
			:
		elif err2="$(mount -o loop "$img" "$SMALL_FS_DIR" 2>&1)"; then
			SMALL_FS_MOUNTED=1
		fi
	fi
	if ((SMALL_FS_MOUNTED)); then
		chown "$ENGRAM_PG_OSUSER:" "$SMALL_FS_DIR"
		export ENGRAM_SMALL_TABLESPACE="$SMALL_FS_DIR"
		unset ENGRAM_SMALL_TABLESPACE_SKIP
		echo "small file system for the out-of-disk test: $(df -hP "$SMALL_FS_DIR" | tail -n 1)"
	else
		export ENGRAM_SMALL_TABLESPACE_SKIP="cannot mount a 20 MB file system (tmpfs: ${err1:-?}; loop-mounted ext4: ${err2:-?})"
		echo "$ENGRAM_SMALL_TABLESPACE_SKIP"
	fi
}

small_fs_umount() {
	if ((SMALL_FS_MOUNTED)); then
		umount "$SMALL_FS_DIR" 2>/dev/null || umount -l "$SMALL_FS_DIR" 2>/dev/null ||
			echo "WARNING: could not unmount $SMALL_FS_DIR"
		SMALL_FS_MOUNTED=0
	fi
	if [[ -n "$SMALL_FS_DIR" ]]; then
		rm -f "$SMALL_FS_DIR.img"
		rmdir "$SMALL_FS_DIR" 2>/dev/null || true
		SMALL_FS_DIR=""
	fi
}

trap 'small_fs_umount; engram_cleanup' EXIT
trap 'echo "interrupted"; exit 130' INT TERM

section() {
	echo
	echo "=================== $* ==================="
}

pass() {
	PASSED=$((PASSED + ${2:-1}))
}

fail() {
	FAILED=$((FAILED + ${2:-1}))
	FAILED_NAMES+=("$1")
}

# Keep the lines that say why a part failed (its "not ok" lines and, with a
# pattern, more) for the end of the output: CI shows only the last lines.
FAILED_DETAILS=()
fail_detail() {
	local name="$1" out="$2" pattern="${3:-^not ok - }" line
	[[ -f "$out" ]] || return 0
	while IFS= read -r line; do
		FAILED_DETAILS+=("[$name] $line")
	done < <(grep -E -e "$pattern" "$out" | grep -v '# TODO' | head -n 40)
}

finish() {
	small_fs_umount
	engram_cleanup >/dev/null 2>&1 || true
	trap - EXIT
	echo
	if ((${#FAILED_DETAILS[@]})); then
		echo "why (repeated from above):"
		printf '  %s\n' "${FAILED_DETAILS[@]}"
	fi
	if ((${#FAILED_NAMES[@]})); then
		echo "failed: ${FAILED_NAMES[*]}"
	fi
	echo "total time: $(($(date +%s) - START_TS))s"
	echo "$PASSED passed, $FAILED failed"
	if ((FAILED > 0 || PASSED == 0)); then
		exit 1
	fi
	exit 0
}

# Seconds left for a step wanting $1 seconds (at least 30).
budget_for() {
	local want="$1" left
	left=$((BUDGET - ($(date +%s) - START_TS)))
	((left < want)) && want="$left"
	((want < 30)) && want=30
	echo "$want"
}

# Run a command as postgres in the test tree, with a time limit.
as_pg_in_tree() {
	local limit="$1"
	shift
	engram_as_pg env -C "$TREE" \
		PGHOST="$PGHOST" PGPORT="$PGPORT" PGUSER=postgres PGDATABASE=postgres \
		PATH="$PGBIN:/usr/local/bin:/usr/bin:/bin" HOME="$TREE" LC_ALL=C.UTF-8 \
		timeout -k 30 "$limit" "$@"
}

# Value of a Makefile variable in the test tree.
make_var() {
	# shellcheck disable=SC2016 # make, not shell, expands $($*)
	as_pg_in_tree 60 make -s --no-print-directory PG_CONFIG="$PG_CONFIG" \
		--eval 'print-var-%: ; @echo $($*)' "print-var-$1" 2>/dev/null
}

# Count pg_regress / pg_isolation_regress result lines in file $1.
# PG15: "test NAME ... ok   12 ms", "     NAME ... FAILED", "... failed (ignored)"
# PG16+: "ok 1 - NAME   12 ms", "not ok 2 - NAME"
count_regress() {
	local file="$1" ok bad
	ok="$(grep -Ec '^(test )? *[^ ]+ +\.\.\. +(ok|failed \(ignored\))( |$)|^ok [0-9]+ +[-+] ' "$file")"
	bad="$(grep -Ec '^(test )? *[^ ]+ +\.\.\. +FAILED|^not ok [0-9]+ +[-+] ' "$file")"
	echo "$ok $bad"
}

# ---------------------------------------------------------------- deps
section "dependencies"
if ! (engram_install_deps); then
	echo "not ok - install Debian packages"
	fail deps
	finish
fi

# ---------------------------------------------------------------- build
section "build: make clean; make WERROR=1 && make install"
if engram_build_install 2>&1 && engram_build_idx2copy; then
	echo "ok - build with -Werror and install"
	pass
else
	echo "not ok - build with -Werror and install"
	fail build
	finish
fi

# ---------------------------------------------------------------- kernels
if [[ "$SKIP" != *" kernels "* ]]; then
	section "distance kernels, one build per instruction set (test/kernels/run.sh)"
	kout="$(mktemp)"
	bash "$ENGRAM_ROOT/test/kernels/run.sh" 2>&1 | tee "$kout"
	krc="${PIPESTATUS[0]}"
	kok="$(grep -c '^ok - ' "$kout")"
	kbad="$(grep -c '^not ok - ' "$kout")"
	pass kernels "$kok"
	((kbad > 0)) && fail kernels "$kbad" && fail_detail kernels "$kout"
	if ((krc != 0 && kbad == 0)); then
		echo "not ok - kernels: test/kernels/run.sh exited with status $krc"
		fail kernels-script
	fi
	rm -f "$kout"
fi

# ---------------------------------------------------------------- tree + cluster
section "test tree and throwaway cluster"
engram_mktemp_pg
TREE="$ENGRAM_LAST_TMPDIR/tree"
mkdir -p "$TREE"
tar -C "$ENGRAM_ROOT" --exclude=./.git --exclude=./tmp_check --exclude=./results \
	--exclude=./output_iso --exclude=./log --exclude=./bench/work --exclude=./bench/data \
	-cf - . | tar -C "$TREE" -xf -
chown -R "$ENGRAM_PG_OSUSER:" "$TREE"
echo "test tree: $TREE"
engram_cluster_start -c shared_buffers=256MB -c max_connections=50

# run_pg_suite regress|isolation: one part of `make installcheck` (the other
# parts switched off), counted per test.  Every suite file (sql/*.sql, or
# test/isolation/specs/*.spec) must be listed in the Makefile variable
# (REGRESS, ISOLATION): an unlisted file is a failed test, as is a listed
# test that gives no result line or a suite that fails without a failed test.
run_pg_suite() {
	local kind="$1" var title label budget diffs glob ext list f b out rc ok bad noresult
	local off=() listed=()
	case "$kind" in
	regress)
		var=REGRESS title=pg_regress label=pg_regress budget=1200
		off=(ISOLATION= TAP_TESTS=)
		diffs=regression.diffs glob="sql/*.sql" ext=.sql
		;;
	isolation)
		var=ISOLATION title=pg_isolation_regress label=isolation budget=900
		off=(REGRESS= TAP_TESTS=)
		diffs=output_iso/regression.diffs glob="test/isolation/specs/*.spec" ext=.spec
		;;
	*) engram_die "run_pg_suite: unknown suite $kind" ;;
	esac
	section "$title (make installcheck, $var part)"
	list="$(make_var "$var")"
	echo "$var = $list"
	if [[ -z "$list" ]]; then
		echo "no $var tests defined"
		return
	fi
	for f in "$TREE"/$glob; do
		[[ -e "$f" ]] || continue
		b="$(basename "$f" "$ext")"
		if [[ " $list " != *" $b "* ]]; then
			echo "not ok - ${f#"$TREE"/} is not listed in $var (Makefile)"
			fail "$kind-unlisted"
			FAILED_DETAILS+=("[$kind] ${f#"$TREE"/} is not listed in $var (Makefile)")
		fi
	done
	out="$TREE/$kind.out"
	as_pg_in_tree "$(budget_for "$budget")" make installcheck PG_CONFIG="$PG_CONFIG" \
		"${off[@]}" 2>&1 | tee "$out"
	rc="${PIPESTATUS[0]}"
	read -r ok bad < <(count_regress "$out")
	echo "$label: $ok ok, $bad failed (make exit status $rc)"
	pass "$kind" "$ok"
	((bad > 0)) && fail "$kind" "$bad" && fail_detail "$kind" "$out" ' \.\.\. FAILED|^not ok '
	# listed tests that produced no result line (missing file, crash, timeout)
	read -r -a listed <<<"$list"
	noresult=$((${#listed[@]} - ok - bad))
	if ((noresult > 0)); then
		echo "not ok - $noresult $label test(s) produced no result (make exit status $rc)"
		fail "$kind-no-result" "$noresult"
	elif ((rc != 0 && bad == 0)); then
		echo "not ok - $label suite exited with status $rc without a failed test (crash/timeout?)"
		fail "$kind-suite"
	fi
	if [[ -s "$TREE/$diffs" ]]; then
		echo "---- $diffs (first 400 lines) ----"
		head -n 400 "$TREE/$diffs"
		echo "---- end of $diffs ----"
	fi
	((rc != 0)) && engram_cluster_log_tail 40
}

# ---------------------------------------------------------------- pg_regress, isolation
[[ "$SKIP" == *" regress "* ]] || run_pg_suite regress
[[ "$SKIP" == *" isolation "* ]] || run_pg_suite isolation

# ---------------------------------------------------------------- TAP
if [[ "$SKIP" != *" tap "* ]]; then
	section "TAP tests (make installcheck, prove part)"
	tap_tests="$(make_var TAP_TESTS)"
	prove_glob="$(make_var PROVE_TESTS)"
	[[ -n "$prove_glob" ]] || prove_glob="t/*.pl"
	if [[ -z "$tap_tests" ]]; then
		echo "TAP_TESTS not set"
	else
		# shellcheck disable=SC2086 # $prove_glob is a glob on purpose
		mapfile -t tap_files < <(cd "$TREE" && shopt -s nullglob &&
			for g in $prove_glob; do [[ -f "$g" ]] && echo "$g"; done)
		if ((${#tap_files[@]} == 0)); then
			echo "no TAP test files match $prove_glob"
		fi
		small_fs_mount
		for tf in "${tap_files[@]}"; do
			out="$TREE/tap.$(basename "$tf" .pl).out"
			echo "--- prove $tf"
			# 1200 s each: 011_crash_rounds took 561 s with the merge worker
			# (658-713 s before scans started it; 383 s with
			# engram_hnsw.merge_worker = off; bench/writes_analysis.md)
			as_pg_in_tree "$(budget_for 1200)" make installcheck PG_CONFIG="$PG_CONFIG" \
				REGRESS= ISOLATION= PROVE_TESTS="$tf" PROVE_FLAGS=-v 2>&1 | tee "$out"
			rc="${PIPESTATUS[0]}"
			# top-level TAP lines only (subtests are indented); TODO = pass
			ok="$(grep -Ec '^ok [0-9]+|^not ok [0-9]+.*# *TODO' "$out")"
			bad="$(grep -E '^not ok [0-9]+' "$out" | grep -Evc '# *TODO')"
			echo "$tf: $ok ok, $bad failed (exit status $rc)"
			pass "$tf" "$ok"
			((bad > 0)) && fail "$tf" "$bad" && fail_detail "$tf" "$out" '^not ok [0-9]+|^#   (Failed test|at |  got|expected)'
			if ((rc != 0 && bad == 0)); then
				echo "not ok - $tf exited with status $rc without a failed assertion (died/bad plan/timeout?)"
				fail "$tf"
			fi
			# servers of a killed test survive it (pg_ctl uses setsid)
			engram_stop_servers_under "$TREE/tmp_check"
			if ((rc != 0 || bad > 0)); then
				((rc == 124)) && echo "$tf: killed by timeout"
				logdir="$TREE/tmp_check/log"
				if [[ -d "$logdir" ]]; then
					for lf in "$logdir"/*; do
						[[ -f "$lf" ]] || continue
						echo "---- tail of $(basename "$lf") ----"
						tail -n 60 "$lf"
					done
					echo "---- end of TAP logs ----"
				fi
			fi
		done
	fi
fi

# run_counted NAME LOG COMMAND...: a script against the running cluster that
# prints one "ok - ..." / "not ok - ..." line per check; each line counts
# (a "not ok" line always as a failure), and a non-zero exit without a
# failed line counts as one failure.
run_counted() {
	local name="$1" out="$2" rc ok bad line
	shift 2
	"$@" 2>&1 | tee "$out"
	rc="${PIPESTATUS[0]}"
	ok="$(grep -c '^ok - ' "$out")"
	bad="$(grep -c '^not ok - ' "$out")"
	pass "$name" "$ok"
	((bad > 0)) && fail "$name" "$bad" && fail_detail "$name" "$out"
	if ((rc != 0 && bad == 0)); then
		echo "not ok - $name exited with status $rc without a failed check (crash/timeout?)"
		fail "$name-script"
		# why: the status and the script's last words (an unbound variable, a timeout, ...)
		FAILED_DETAILS+=("[$name] exited with status $rc$( ((rc == 124)) && echo ' (timeout)'); its last lines:")
		while IFS= read -r line; do
			FAILED_DETAILS+=("[$name]   $line")
		done < <(grep -v '^[[:space:]]*$' "$out" | tail -n 8)
	fi
	((rc != 0)) && engram_cluster_log_tail 40
	return 0
}

# ---------------------------------------------------------------- recall
if [[ "$SKIP" != *" recall "* ]]; then
	section "recall test (test/recall/recall.sh)"
	ENGRAM_SKIP_SETUP=1 RECALL_USE_CLUSTER=1 run_counted recall "$ENGRAM_TMPDIR/recall.out" \
		timeout -k 30 "$(budget_for 1200)" bash "$ENGRAM_ROOT/test/recall/recall.sh"
fi

# ---------------------------------------------------------------- soak
if [[ "$SKIP" != *" soak "* ]]; then
	section "soak test (test/soak/soak.sh, SOAK_SECONDS=180)"
	ENGRAM_SKIP_SETUP=1 SOAK_USE_CLUSTER=1 SOAK_SECONDS=180 SOAK_SERVER_LOG="$ENGRAM_PGLOG" \
		run_counted soak "$ENGRAM_TMPDIR/soak.out" \
		timeout -k 30 "$(budget_for 1200)" bash "$ENGRAM_ROOT/test/soak/soak.sh"
fi

# ---------------------------------------------------------------- fuzz
if [[ "$SKIP" != *" fuzz "* ]]; then
	section "fuzz: libFuzzer harness of the page-reading code (test/fuzz/run.sh)"
	out="$ENGRAM_TMPDIR/fuzz.out"
	FUZZ_SECONDS="${FUZZ_SECONDS:-60}" timeout -k 30 "$(budget_for 900)" \
		bash "$ENGRAM_ROOT/test/fuzz/run.sh" 2>&1 | tee "$out"
	rc="${PIPESTATUS[0]}"
	if ((rc == 0)) && grep -q '^ok - fuzz' "$out"; then
		pass fuzz
	else
		grep -q '^not ok - fuzz' "$out" || echo "not ok - fuzz: exit status $rc (killed by timeout?)"
		fail fuzz
		# the input (base64 of gzip), then libFuzzer's reason and the stack
		# top: CI shows the last lines, and they must say why
		fail_detail fuzz "$out" '^fuzz: the input|^[A-Za-z0-9+/=]{20,}$'
		fail_detail fuzz "$out" '^not ok - |ERROR: |SUMMARY: |^    #[0-9] |deadly signal|^fuzz: [^t]'
	fi
fi

# ---------------------------------------------------------------- valgrind
if [[ "$SKIP" != *" valgrind "* ]]; then
	section "valgrind: pg_regress + isolation suites under valgrind (test/valgrind.sh)"
	out="$ENGRAM_TMPDIR/valgrind.out"
	vg_skip=" ${VALGRIND_SKIP_TESTS-vacuum} "
	vg_regress=""
	vg_iso=""
	for t in $(make_var REGRESS); do
		[[ "$vg_skip" == *" $t "* ]] || vg_regress+="${vg_regress:+ }$t"
	done
	for t in $(make_var ISOLATION); do
		[[ "$vg_skip" == *" $t "* ]] || vg_iso+="${vg_iso:+ }$t"
	done
	echo "under valgrind: REGRESS = $vg_regress; ISOLATION = $vg_iso (left out:${vg_skip% })"
	VALGRIND_REGRESS="$vg_regress" VALGRIND_ISOLATION="$vg_iso" timeout -k 60 "$(budget_for 1500)" \
		bash "$ENGRAM_ROOT/test/valgrind.sh" 2>&1 | tee "$out"
	rc="${PIPESTATUS[0]}"
	if ((rc == 0)) && grep -q '^valgrind.sh: suites passed, no valgrind error in the extension' "$out"; then
		echo "ok - valgrind: suites passed, no valgrind error in engram_hnsw.so"
		pass valgrind
	else
		echo "not ok - valgrind: exit status $rc"
		fail valgrind
		fail_detail valgrind "$out" '^valgrind.sh: |^not ok|FAILED|==[0-9]+== (Invalid|Conditional|Use of|Syscall|Mismatched)'
	fi
fi

finish
