#!/usr/bin/env bash
#
# bench/wl_plans.sh: plan choice.  For tables of rows x dims (gaussian
# mixture, L2, one engram_hnsw index each) and the queries
#     none   SELECT id FROM T ORDER BY v <-> q LIMIT 10
#     fN     ... WHERE fN = 0 ORDER BY v <-> q LIMIT 10   (no btree on fN)
#     bN     ... WHERE bN = 0 ORDER BY v <-> q LIMIT 10   (btree on bN)
#     bound  SELECT id FROM T WHERE v <-> q < 1e-6 ORDER BY v <-> q  (no row
#            is that close: a scan of the ANN index walks the whole graph)
# with N = 50 (50 % of the rows pass), 1 (1 %), 01 (0.1 %), it records the
# plan the planner picks and the time of each alternative forced with
# enable_* settings:
#     ann    the engram_hnsw index scan (seqscan, bitmapscan, sort off)
#     seq    seq scan + sort (indexscan, bitmapscan off)
#     btree  bitmap scan of the btree on the filter + sort (seqscan,
#            indexscan off); only where there is a btree
# Each time is the backend's CPU time per query (/proc) over passes through
# PLANS_NQ query vectors until 0.3 s of CPU, after a warm-up pass.
# A cell is "ok" when the time of the plan picked is within 1.5x of the
# fastest alternative.  Writes bench/results/plans.md and plans.tsv.
#
# The vector column has STORAGE EXTERNAL: what the default (EXTENDED)
# ends up with for float arrays, which do not compress (784 and 1536 dims
# are stored out of line in the TOAST table, 128 dims inline), without the
# futile compression attempt on load.  BENCH_STORAGE overrides it.
#
# Knobs: PLANS_ROWS ("1000 10000 100000"), PLANS_DIMS ("128 784 1536"),
#        PLANS_NQ (5), INDEX_M (16), INDEX_EFC (40),
#        PLANS_BEFORE (a plans.tsv of an earlier run, e.g. of the previous
#        cost model: its matrix is printed next to this one's).
set -euo pipefail
BENCH_STORAGE="${BENCH_STORAGE:-external}"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init plans

ROWS="${PLANS_ROWS:-1000 10000 100000}"
DIMS="${PLANS_DIMS:-128 784 1536}"
NQ="${PLANS_NQ:-5}"
EFC="${INDEX_EFC:-40}"
BEFORE="${PLANS_BEFORE:-}"
[[ -z "$BEFORE" ]] || cp "$BEFORE" "$OUT/before.tsv"
DB=plans
FILTERS="none f50 b50 f1 b1 f01 b01 bound"
MAXROWS=0
for r in $ROWS; do ((r > MAXROWS)) && MAXROWS=$r; done

bench_start
bench_psql -c "CREATE DATABASE $DB" -c "ALTER DATABASE $DB SET engram_plans.hz = $(getconf CLK_TCK)"
bench_ext_check "$DB"
[[ "$EXT_OK" == 1 ]] || bench_die "engram_hnsw is not usable: $EXT_NOTE"

# plan_class(EXPLAIN json): ann (the engram_hnsw index), btree (another
# index) or seq
# plan_measure(template, query table, nq, alternative, time?): the plan, its
# estimated total cost and (time?) the backend's CPU time per query in ms
# (user + system from /proc, over whole passes through the nq queries until
# 0.3 s of CPU, after a warm-up pass; steadier than the wall clock on a
# shared machine) and the wall-clock time per query; the template has %1$s
# where the query vector goes
bench_psql -d "$DB" <<'SQL'
CREATE FUNCTION plan_class(j json) RETURNS text LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE
		WHEN bool_or(n #>> '{}' LIKE '%\_ann') THEN 'ann'
		WHEN count(n) > 0 THEN 'btree'
		ELSE 'seq' END
	FROM jsonb_path_query(j::jsonb, 'strict $.**."Index Name"') n
$$;
CREATE FUNCTION cpu_ticks() RETURNS bigint LANGUAGE sql AS $$
	SELECT f[12]::bigint + f[13]::bigint	-- utime, stime (fields 14, 15)
	FROM (SELECT regexp_split_to_array(split_part(pg_read_file('/proc/self/stat'), ') ', 2), ' ') AS f) s
$$;
CREATE FUNCTION plan_measure(p_tmpl text, p_qtab text, p_nq int, p_alt text, p_time bool,
	OUT plan text, OUT est float8, OUT ms float8, OUT wall_ms float8) LANGUAGE plpgsql AS $$
DECLARE
	qs text[];
	j json;
	q text;
	s text;
	c0 bigint;
	t0 timestamptz;
	n int := 0;
	off text[] := CASE p_alt
		WHEN 'ann' THEN '{enable_seqscan,enable_bitmapscan,enable_sort}'
		WHEN 'seq' THEN '{enable_indexscan,enable_bitmapscan,enable_indexonlyscan}'
		WHEN 'btree' THEN '{enable_seqscan,enable_indexscan,enable_indexonlyscan}'
		ELSE '{}' END;
BEGIN
	EXECUTE format('SELECT array_agg(format(%L, quote_literal(embedding::text) || ''::real[]'') ORDER BY id)
		FROM (SELECT * FROM %I ORDER BY id LIMIT %s) s', p_tmpl, p_qtab, p_nq) INTO qs;
	FOREACH s IN ARRAY off LOOP
		PERFORM set_config(s, 'off', true);
	END LOOP;
	EXECUTE 'EXPLAIN (FORMAT JSON) ' || qs[1] INTO j;
	plan := plan_class(j);
	est := (j -> 0 -> 'Plan' ->> 'Total Cost')::float8;
	IF p_time THEN
		FOREACH q IN ARRAY qs LOOP		-- warm-up
			EXECUTE q;
		END LOOP;
		c0 := cpu_ticks();
		t0 := clock_timestamp();
		-- whole passes until 0.3 s of CPU time (or 10 s)
		LOOP
			FOREACH q IN ARRAY qs LOOP
				EXECUTE q;
			END LOOP;
			n := n + array_length(qs, 1);
			EXIT WHEN cpu_ticks() - c0 >= 30 OR clock_timestamp() - t0 > interval '10 s';
		END LOOP;
		ms := (cpu_ticks() - c0) * 1000.0 / current_setting('engram_plans.hz')::float8 / n;
		wall_ms := extract(epoch FROM clock_timestamp() - t0) * 1000.0 / n;
	END IF;
	FOREACH s IN ARRAY off LOOP
		PERFORM set_config(s, 'on', true);
	END LOOP;
END $$;
SQL

# load DIMS: the base rows (gaussD-MAXROWS) into a staging table, the
# queries into q_DIMS
load_dims() {
	local d="$1"
	bench_dataset "gauss$d-$MAXROWS"
	bench_log "loading gauss$d-$MAXROWS ($DS_N x $DS_DIM) and $NQ queries"
	bench_psql -d "$DB" -c "CREATE UNLOGGED TABLE stage (id int, embedding real[])" \
		-c "ALTER TABLE stage ALTER COLUMN embedding SET STORAGE $BENCH_STORAGE" \
		-c "CREATE TABLE q_$d (id int PRIMARY KEY, embedding real[])"
	bench_copy_fvecs "$DB" stage "$DS_BASE"
	bench_copy_fvecs "$DB" "q_$d" "$DS_QUERY" --limit "$NQ"
}

# make_table ROWS DIMS: t_ROWS_DIMS with the filter columns (fN = bN, the
# same values; btrees on the bN), the ANN index, VACUUM ANALYZE
make_table() {
	local n="$1" d="$2" t="t_$1_$2" t0
	bench_psql -d "$DB" <<SQL
CREATE TABLE $t (id int PRIMARY KEY, f50 int, f1 int, f01 int, b50 int, b1 int, b01 int, v real[]);
ALTER TABLE $t ALTER COLUMN v SET STORAGE $BENCH_STORAGE;
INSERT INTO $t SELECT id, h % 2, h % 100, h % 1000, h % 2, h % 100, h % 1000, embedding
	FROM (SELECT id, hashint4(id) & 2147483647 AS h, embedding FROM stage WHERE id < $n) s;
CREATE INDEX ${t}_b50 ON $t (b50);
CREATE INDEX ${t}_b1 ON $t (b1);
CREATE INDEX ${t}_b01 ON $t (b01);
SQL
	t0="$(bench_now)"
	bench_psql -d "$DB" -c "CREATE INDEX ${t}_ann ON $t USING engram_hnsw (v real_l2_ops) WITH (m = $M, ef_construction = $EFC)"
	bench_log "[$t] index built in $(bench_since "$t0") s"
	bench_psql -d "$DB" -c "VACUUM ANALYZE $t"
}

template() {
	local t="$1" f="$2"
	case "$f" in
	none) echo "SELECT id FROM $t ORDER BY v <-> %1\$s LIMIT 10" ;;
	bound) echo "SELECT id FROM $t WHERE v <-> %1\$s < 1e-6 ORDER BY v <-> %1\$s" ;;
	*) echo "SELECT id FROM $t WHERE $f = 0 ORDER BY v <-> %1\$s LIMIT 10" ;;
	esac
}

printf 'rows\tdims\tfilter\talt\tplan\test\tms\twall_ms\n' >"$TSV"
for d in $DIMS; do
	load_dims "$d"
	for n in $ROWS; do
		make_table "$n" "$d"
		for f in $FILTERS; do
			alts="chosen ann seq"
			[[ "$f" == b* && "$f" != bound ]] && alts="$alts btree"
			tmpl="$(template "t_${n}_$d" "$f")"
			for a in $alts; do
				# the plan picked is only explained: its time is that of the
				# alternative of its kind
				line="$(bench_val -d "$DB" -F $'\t' -c "SET statement_timeout = '600s'" \
					-c "SELECT plan, round(est::numeric, 1), coalesce(round(ms::numeric, 3)::text, '-'),
						coalesce(round(wall_ms::numeric, 3)::text, '-')
					FROM plan_measure(\$t\$$tmpl\$t\$, 'q_$d', $NQ, '$a', '$a' <> 'chosen')")" ||
					line="$(printf 'failed\t-\t-\t-')"
				printf '%s\t%s\t%s\t%s\t%s\n' "$n" "$d" "$f" "$a" "$line" >>"$TSV"
				bench_log "[t_${n}_$d $f] $a: $(tr '\t' ' ' <<<"$line")"
			done
		done
		bench_psql -d "$DB" -c "DROP TABLE t_${n}_$d"
	done
	bench_psql -d "$DB" -c "DROP TABLE stage, q_$d"
done

# matrix TSV: one line per rows x dims, one column per filter: the plan
# picked and its time over the fastest alternative's (bold above 1.5x,
# with the fastest named); then the count of cells within 1.5x
matrix() {
	awk -F'\t' -v filters="$FILTERS" '
		$1 == "rows" || /^#/ { next }
		{ k = $1 SUBSEP $2 SUBSEP $3
		  if ($4 == "chosen") pick[k] = $5
		  else if ($7 != "-" && $7 != "") {
			t[k, $5] = $7
			if (!(k in best) || $7 + 0 < best[k]) { best[k] = $7 + 0; fast[k] = $5 } }
		  if (!(($1, $2) in seen)) { seen[$1, $2] = 1; order[++nr] = $1 SUBSEP $2 } }
		END {
			nf = split(filters, F, " ")
			printf "| rows | dims |"; for (i = 1; i <= nf; i++) printf " %s |", F[i]; print ""
			printf "|---|---|"; for (i = 1; i <= nf; i++) printf "---|"; print ""
			for (r = 1; r <= nr; r++) {
				split(order[r], RD, SUBSEP)
				printf "| %s | %s |", RD[1], RD[2]
				for (i = 1; i <= nf; i++) {
					k = RD[1] SUBSEP RD[2] SUBSEP F[i]
					p = pick[k]
					if (!(k in pick) || !((k, p) in t) || !(k in best) || best[k] <= 0) { printf " %s ? |", p; continue }
					x = t[k, p] / best[k]; cells++
					if (x <= 1.5) { okc++; printf " %s %.2f |", p, x }
					else printf " **%s %.2f** (%s) |", p, x, fast[k]
				}
				print ""
			}
			printf "\nCells where the plan picked is within 1.5x of the fastest alternative: **%d of %d**.\n", okc, cells
		}' "$1"
}

# details TSV: every alternative of every cell
details() {
	echo "| rows | dims | filter | picked (est.) | ann ms (est.) | seq ms (est.) | btree ms (est.) |"
	echo "|---|---|---|---|---|---|---|"
	awk -F'\t' '
		$1 == "rows" || /^#/ { next }
		{ k = $1 " | " $2 " | " $3; if (!(k in seen)) { seen[k] = 1; order[++n] = k }
		  if ($4 == "chosen") pick[k] = $5 " (" $6 ")"; else v[k, $4] = $7 " (" $6 ")" }
		END { for (i = 1; i <= n; i++) { k = order[i]
			printf "| %s | %s | %s | %s | %s |\n", k, pick[k],
				((k, "ann") in v ? v[k, "ann"] : "-"), ((k, "seq") in v ? v[k, "seq"] : "-"),
				((k, "btree") in v ? v[k, "btree"] : "-") } }' "$1"
}

sed -i "1i # $(bench_machine_line)" "$TSV"
{
	bench_md_header "Plan choice: the ANN index, seq scan + sort, btree + sort"
	cat <<TXT
Tables of rows x dims (gaussian mixture, \`bench/tools/gen\`), L2, one engram_hnsw index each
(m = $M, ef_construction = $EFC, ef_search default), vector column STORAGE $BENCH_STORAGE.
Queries: \`none\` = \`ORDER BY v <-> q LIMIT 10\`; \`fN\` / \`bN\` = the same with \`WHERE fN = 0\`
(N: 50 % / 1 % / 0.1 % of the rows pass), \`b\` with a btree on the filter column, \`f\` without;
\`bound\` = \`WHERE v <-> q < 1e-6 ORDER BY v <-> q\` (no row that close: the ANN scan walks the
whole graph). Each cell: the plan picked (ann = the engram_hnsw index, seq = seq scan + sort,
btree = the btree on the filter + sort) and its time over that of the fastest alternative
forced by enable_* settings (each the backend's CPU time per query over passes through $NQ
query vectors until 0.3 s of CPU, after a warm-up pass: the machine is shared, and CPU time
is steadier than the wall clock; wall-clock times are in plans.tsv); **bold** above 1.5x,
with the fastest named.

TXT
	if [[ -s "$OUT/before.tsv" ]]; then
		echo "## Before: $(head -n 1 "$OUT/before.tsv" | sed 's/^# //')"
		echo
		matrix "$OUT/before.tsv"
		echo
		echo "## After: this run"
		echo
	fi
	matrix "$TSV"
	echo
	echo "### Every alternative: ms (estimated total cost)"
	echo
	details "$TSV"
	echo
	if [[ -s "$OUT/before.tsv" ]]; then
		echo "### Before: every alternative"
		echo
		details "$OUT/before.tsv"
		echo
	fi
	bench_settings_md
} >"$RESULT_MD"
cat "$RESULT_MD"
bench_log "wrote $RESULT_MD in $(bench_since "$BENCH_T0") s"
