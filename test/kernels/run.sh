#!/usr/bin/env bash
#
# test/kernels/run.sh: build src/hnsw_kernels.c once per instruction set
# (-march=x86-64-v4, x86-64-v3, x86-64, names prefixed v4_/v3_/base_) and
# once as the extension builds it (target_clones, dispatched by an ifunc),
# link them into test/kernels/kernel_test.c and run it.  Needs gcc; no
# PostgreSQL.  Prints "ok - " / "not ok - " lines; exit status 1 on a failure.
#
#     bash test/kernels/run.sh
#
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SRC="$HERE/../../src/hnsw_kernels.c"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
CC="${CC:-gcc}"
# the flags the Makefile gives hnsw_kernels.o, and PostgreSQL's -fwrapv
FLAGS=(-O3 -fno-math-errno -fno-trapping-math -fassociative-math -fno-signed-zeros -fwrapv
	-Wall -Wextra -Werror)
for v in "v4 x86-64-v4" "v3 x86-64-v3" "base x86-64"; do
	read -r prefix arch <<<"$v"
	"$CC" "${FLAGS[@]}" -march="$arch" -DHNSW_KERNEL= "-DHNSW_KERNEL_NAME(name)=${prefix}_##name" \
		-c "$SRC" -o "$WORK/$prefix.o"
done
"$CC" "${FLAGS[@]}" -c "$SRC" -o "$WORK/dispatched.o"
"$CC" -O2 -Wall -Wextra -Werror "$HERE/kernel_test.c" "$WORK"/*.o -lm -o "$WORK/kernel_test"
"$WORK/kernel_test"
