#!/usr/bin/env bash
#
# bench/tools/selftest.sh: checks of the bench tools on small data (no
# PostgreSQL).  Run by `make -C bench check`.  Prints "N passed, N failed".
set -uo pipefail
BIN="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/bin"
T="$(mktemp -d)"
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
ok() {
	if eval "$2"; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		echo "FAIL: $1" >&2
	fi
}

# gen: deterministic, sizes, prefix property
"$BIN/gen" gauss --dim 16 --n 3000 --nq 50 --seed 7 --base "$T/b.fvecs" --queries "$T/q.fvecs"
"$BIN/gen" gauss --dim 16 --n 1000 --nq 50 --seed 7 --base "$T/b2.fvecs" --queries "$T/q2.fvecs"
ok "gen info" '[[ "$("$BIN/gen" info "$T/b.fvecs")" == "3000 16" ]]'
ok "gen: smaller n is a prefix" 'cmp -s -n $((1000 * 68)) "$T/b.fvecs" "$T/b2.fvecs"'
ok "gen: same queries" 'cmp -s "$T/q.fvecs" "$T/q2.fvecs"'
ok "gen copy rows" '[[ "$("$BIN/gen" copy --in "$T/b.fvecs" --offset 10 --limit 5 | wc -l)" == 5 ]]'
ok "gen copy ids" '[[ "$("$BIN/gen" copy --in "$T/b.fvecs" --offset 10 --limit 1 | cut -f1)" == 10 ]]'
ok "gen copy 16 values" '[[ "$("$BIN/gen" copy --in "$T/b.fvecs" --limit 1 | cut -f2 | tr -cd , | wc -c)" == 15 ]]'
# --varnorm: rows (x + 0.5) * f with f in (0, 1] per row, queries unchanged
"$BIN/gen" gauss --dim 16 --n 1000 --nq 50 --seed 7 --varnorm --base "$T/bv.fvecs" --queries "$T/qv.fvecs"
ok "gen --varnorm: same queries" 'cmp -s "$T/q2.fvecs" "$T/qv.fvecs"'
ok "gen --varnorm: rows scaled from the plain ones" 'paste <("$BIN/gen" copy --in "$T/b2.fvecs" | cut -f2) <("$BIN/gen" copy --in "$T/bv.fvecs" | cut -f2) | tr -d "{}" |
	awk -F"\t" "{ n = split(\$1, a, \",\"); split(\$2, b, \",\"); f = b[1] / (a[1] + 0.5); if (f <= 0 || f > 1.0001) exit 1
		for (i = 2; i <= n; i++) if (a[i] + 0.5 != 0 && (b[i] / (a[i] + 0.5) - f) ^ 2 > 1e-8) exit 1; if (f < lo || NR == 1) lo = f; if (f > hi) hi = f }
		END { exit !(lo < 0.05 && hi > 0.95) }"'

# truth: cached on the second call, k rows, ascending distances
for m in l2 cosine ip; do
	"$BIN/truth" compute --base "$T/b.fvecs" --queries "$T/q.fvecs" --metric "$m" --out "$T/t.$m" 2>/dev/null
	ok "truth $m cached" '"$BIN/truth" compute --base "$T/b.fvecs" --queries "$T/q.fvecs" --metric "$m" --out "$T/t.$m" 2>&1 | grep -q cached'
	ok "truth $m dump" '[[ "$("$BIN/truth" dump "$T/t.$m" | wc -l)" == 50 ]]'
	ok "truth $m sorted" '"$BIN/truth" dump "$T/t.$m" | awk -F"\t" "{ gsub(/[{}]/, \"\", \$3); n = split(\$3, d, \",\"); if (n != 10) exit 1; for (i = 2; i <= n; i++) if (d[i] + 0 < d[i - 1] + 0) exit 1 }"'
	# hnswlib at a large ef finds (almost) everything
	r="$("$BIN/hnswlib_bench" --base "$T/b.fvecs" --queries "$T/q.fvecs" --truth "$T/t.$m" --metric "$m" \
		--ef 200 --runs 1 --threads 2 | awk -F'\t' '$1 == "search" { print $3 }')"
	# (inner product is not a metric: HNSW needs a larger ef there)
	min=0.99
	[[ "$m" == ip ]] && min=0.95
	ok "hnswlib $m recall $r >= $min" 'awk -v r="$r" -v m="$min" "BEGIN { exit !(r >= m) }"'
done
# brute force check of one query against awk (l2)
"$BIN/gen" copy --in "$T/b.fvecs" | tr -d '{}' | tr ',' '\t' >"$T/b.tsv"
"$BIN/gen" copy --in "$T/q.fvecs" --limit 1 | tr -d '{}' | tr ',' '\t' >"$T/q.tsv"
want="$(awk -F'\t' 'NR == FNR { for (i = 2; i <= NF; i++) q[i] = $i; next }
	{ s = 0; for (i = 2; i <= NF; i++) s += ($i - q[i]) ^ 2; print s, $1 }' "$T/q.tsv" "$T/b.tsv" |
	sort -g | head -n 10 | awk '{ printf "%s%s", (NR > 1 ? "," : ""), $2 }')"
got="$("$BIN/truth" dump "$T/t.l2" --nq 1 | cut -f2 | tr -d '{}')"
ok "truth l2 equals awk brute force ($got)" '[[ "$got" == "$want" ]]'

# spaces: per-space truth stays in the query's space
"$BIN/gen" spaces --dim 8 --spaces 7 --rows 40 --nq 30 --base "$T/s.fvecs" --queries "$T/sq.fvecs"
"$BIN/truth" compute --base "$T/s.fvecs" --queries "$T/sq.fvecs" --metric l2 --spaces --out "$T/st" 2>/dev/null
ok "spaces truth flagged" '"$BIN/truth" info "$T/st" | grep -q per-space'
"$BIN/gen" copy --in "$T/s.fvecs" --spaces | cut -f1,2 >"$T/s.map"
"$BIN/gen" copy --in "$T/sq.fvecs" --spaces | cut -f1,2 >"$T/sq.map"
ok "spaces truth in the right space" '"$BIN/truth" dump "$T/st" | awk -F"\t" -v B="$T/s.map" -v Q="$T/sq.map" "
	BEGIN { while ((getline l < B) > 0) { split(l, a, \"\t\"); bs[a[1]] = a[2] } while ((getline l < Q) > 0) { split(l, a, \"\t\"); qs[a[1]] = a[2] } }
	{ gsub(/[{}]/, \"\", \$2); n = split(\$2, ids, \",\"); if (n != 10) exit 1; for (i = 1; i <= n; i++) if (bs[ids[i]] != qs[\$1]) exit 1 }"'
ok "hnswlib refuses a per-space truth" '! "$BIN/hnswlib_bench" --base "$T/s.fvecs" --queries "$T/sq.fvecs" --truth "$T/st" --metric l2 >/dev/null 2>&1'
# spaces --zipf: N rows, every space at least one row, sizes falling with the
# space id, 2Q queries (the first Q by rows), shuffled rows, deterministic
"$BIN/gen" spaces --dim 8 --spaces 200 --rows 10 --nq 40 --zipf 0.9 --base "$T/z.fvecs" --queries "$T/zq.fvecs" 2>/dev/null
"$BIN/gen" spaces --dim 8 --spaces 200 --rows 10 --nq 40 --zipf 0.9 --base "$T/z2.fvecs" --queries "$T/zq2.fvecs" 2>/dev/null
"$BIN/gen" copy --in "$T/z.fvecs" --spaces | cut -f2 >"$T/z.sid"
ok "zipf: 2000 rows, 80 queries" '[[ "$("$BIN/gen" info "$T/z.fvecs")" == "2000 8" && "$("$BIN/gen" info "$T/zq.fvecs")" == "80 8" ]]'
ok "zipf: 200 spaces, each >= 1 row, largest first, 100..400 rows" 'sort -n "$T/z.sid" | uniq -c | awk "
	{ n[\$2] = \$1; k++ } END { if (k != 200) exit 1; for (s = 1; s < 200; s++) if (n[s] > n[s - 1]) exit 1; exit !(n[0] >= 100 && n[0] <= 400) }"'
ok "zipf: median space of a few rows" '[[ "$(sort -n "$T/z.sid" | uniq -c | sort -n | awk "NR == 100 { print \$1 }")" -le 5 ]]'
"$BIN/gen" spaces --dim 8 --spaces 200 --rows 10 --nq 0 --zipf 2 --base "$T/z3.fvecs" --queries "$T/zq3.fvecs" 2>/dev/null
ok "zipf 2: 2000 rows, still every space" '[[ "$("$BIN/gen" copy --in "$T/z3.fvecs" --spaces | cut -f2 | sort -u | wc -l)" == 200 && "$("$BIN/gen" info "$T/z3.fvecs")" == "2000 8" ]]'
ok "zipf: rows interleaved" '[[ "$(head -n 20 "$T/z.sid" | sort -u | wc -l)" -ge 10 ]]'
ok "zipf: deterministic" 'cmp -s "$T/z.fvecs" "$T/z2.fvecs" && cmp -s "$T/z.fvecs.spaces" "$T/z2.fvecs.spaces" && cmp -s "$T/zq.fvecs.spaces" "$T/zq2.fvecs.spaces"'
"$BIN/gen" copy --in "$T/zq.fvecs" --spaces | cut -f2 >"$T/zq.sid"
ok "zipf: queries by rows hit the largest space more than by spaces" '[[ "$(head -n 40 "$T/zq.sid" | grep -cx 0)" -gt "$(tail -n 40 "$T/zq.sid" | grep -cx 0)" ]]'

# mnist: the Debian data set, when present
F=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
if [[ -f "$F" ]]; then
	"$BIN/mnist" --in "$F" --out "$T/m.fvecs" --limit 20 2>/dev/null
	ok "mnist 20 x 784" '[[ "$("$BIN/gen" info "$T/m.fvecs")" == "20 784" ]]'
	ok "mnist pixel range" '"$BIN/gen" copy --in "$T/m.fvecs" | cut -f2 | tr -d "{}" | tr , "\n" | awk "\$1 < 0 || \$1 > 255 || \$1 != int(\$1) { exit 1 }"'
fi

echo "$pass passed, $fail failed"
((fail == 0))
