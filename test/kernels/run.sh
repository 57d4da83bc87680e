#!/usr/bin/env bash
#
# test/kernels/run.sh: build src/hnsw_kernels.c once per instruction set
# (-march=x86-64-v4, x86-64-v3, x86-64, names prefixed v4_/v3_/base_) and
# once as the extension builds it (target_clones, dispatched by an ifunc),
# link them into test/kernels/kernel_test.c and run it; the same for the
# compact codes (src/hnsw_codes*.c, test/kernels/codes_test.c).  Needs gcc; no
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
status=0
"$WORK/kernel_test" || status=1

# The compact codes: src/hnsw_codes_kernels.c with the kernels' flags and
# src/hnsw_codes.c (encoders, scalar) with the Makefile's, once per
# instruction set with every name prefixed, and once as the extension
# builds them.
CODES="$HERE/../../src"
CFLAGS_CODES=(-O2 -ffp-contract=off -fwrapv -Wall -Wextra -Werror)
mkdir "$WORK/codes"
# (v4p: AVX-512 with VPOPCNTDQ, which the extension dispatches by hand)
for v in "v4p x86-64-v4 -mavx512vpopcntdq" "v4 x86-64-v4" "v3 x86-64-v3" "base x86-64"; do
	read -r prefix arch extra <<<"$v"
	"$CC" "${FLAGS[@]}" -march="$arch" $extra -DHNSW_KERNEL= "-DHNSW_KERNEL_NAME(name)=${prefix}_##name" \
		-c "$CODES/hnsw_codes_kernels.c" -o "$WORK/codes/${prefix}_kernels.o"
	"$CC" "${CFLAGS_CODES[@]}" -march="$arch" $extra "-DHNSW_KERNEL_NAME(name)=${prefix}_##name" \
		-c "$CODES/hnsw_codes.c" -o "$WORK/codes/${prefix}_codes.o"
done
"$CC" "${FLAGS[@]}" -c "$CODES/hnsw_codes_kernels.c" -o "$WORK/codes/kernels.o"
"$CC" "${CFLAGS_CODES[@]}" -c "$CODES/hnsw_codes.c" -o "$WORK/codes/codes.o"
"$CC" -O2 -Wall -Wextra -Werror "$HERE/codes_test.c" "$WORK"/codes/*.o -lm -o "$WORK/codes_test"
"$WORK/codes_test" || status=1
exit $status
