#!/usr/bin/env bash
#
# test/fuzz/make_corpus.sh: (re)generate the seed corpus test/fuzz/corpus/
# from real engram_hnsw indexes.  Not part of CI (the seeds are committed);
# run it after a page format change:
#
#     sudo bash test/fuzz/make_corpus.sh
#
# Needs PostgreSQL 15 with engram_hnsw installed under PGBIN (default
# /usr/lib/postgresql/15/bin; a private tree works too: PGBIN=/path/bin).
# Starts a throwaway cluster as "postgres" in a temp dir, builds a few small
# indexes (L2 with on-page inserts, deletes and VACUUM; cosine with int4
# memory spaces; inner product with 2 000 dimensions; 4 200 dimensions
# whose vectors span vector pages; RaBitQ codes; an empty one), stops it and writes, for each index, the
# 32-byte control header of fuzz_hnsw.c followed by the index's blocks.

set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PGBIN="${PGBIN:-/usr/lib/postgresql/15/bin}"
OUT="${CORPUS_OUT:-$HERE/corpus}"
PGOS="${ENGRAM_PG_OSUSER:-postgres}"
PORT="${CORPUS_PGPORT:-54347}"

as_pg() {
	if [[ "$(id -u)" -eq 0 ]]; then runuser -u "$PGOS" -- "$@"; else "$@"; fi
}

WORK="$(mktemp -d "${TMPDIR:-/tmp}/engram_corpus.XXXXXX")"
chmod 755 "$WORK"
[[ "$(id -u)" -eq 0 ]] && chown "$PGOS:" "$WORK"
DATA="$WORK/data"
cleanup() {
	[[ -f "$DATA/postmaster.pid" ]] && as_pg "$PGBIN/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null 2>&1
	rm -rf "$WORK"
}
trap cleanup EXIT

as_pg "$PGBIN/initdb" -D "$DATA" -U postgres --auth=trust --no-sync >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$DATA" -l "$WORK/log" -w \
	-o "-p $PORT -k $WORK -c listen_addresses='' -c fsync=off -c autovacuum=off" start >/dev/null
psql() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$WORK" -p "$PORT" -U postgres -d postgres "$@"; }

psql <<'SQL'
SELECT setseed(0.42) AS seed \gset
CREATE EXTENSION engram_hnsw;

-- L2, built, then on-page inserts, deletes and VACUUM (deleted elements)
CREATE TABLE t_l2 (id int, v real[]);
INSERT INTO t_l2 SELECT i, ARRAY[random(), random(), random(), random()]::real[]
  FROM generate_series(1, 60) i;
CREATE INDEX l2_idx ON t_l2 USING engram_hnsw (v) WITH (m = 4, ef_construction = 16, fastupdate = off);
INSERT INTO t_l2 SELECT i, ARRAY[random(), random(), random(), random()]::real[]
  FROM generate_series(61, 90) i;
INSERT INTO t_l2 SELECT 100 + i, ARRAY[0.5, 0.5, 0.5, 0.5]::real[] FROM generate_series(1, 12) i;
DELETE FROM t_l2 WHERE id % 7 = 0;
VACUUM t_l2;

-- L2 with a pending list (fastupdate): inserts wait there, not merged
CREATE TABLE t_pend (id int, v real[]);
INSERT INTO t_pend SELECT i, ARRAY[random(), random(), random()]::real[] FROM generate_series(1, 40) i;
CREATE INDEX pend_idx ON t_pend USING engram_hnsw (v) WITH (m = 3, fastupdate = on, pending_list_limit = 4096);
INSERT INTO t_pend SELECT i, ARRAY[random(), random(), random()]::real[] FROM generate_series(41, 100) i;
DELETE FROM t_pend WHERE id % 5 = 0;

-- cosine, int4 memory spaces (directory page), built, then inserted into
CREATE TABLE t_sp (space int, v real[]);
INSERT INTO t_sp SELECT i % 3, ARRAY[random() - 0.5, random() - 0.5, random() - 0.5]::real[]
  FROM generate_series(1, 45) i;
CREATE INDEX sp_idx ON t_sp USING engram_hnsw (space, v real_cosine_ops) WITH (m = 2, fastupdate = off);
INSERT INTO t_sp SELECT 3 + i % 4, ARRAY[random() - 0.5, random() - 0.5, random() - 0.5]::real[]
  FROM generate_series(1, 20) i;
DELETE FROM t_sp WHERE space = 1;
VACUUM t_sp;

-- inner product, 2000 dimensions: element and neighbour list on two pages
CREATE TABLE t_ip (v real[]);
CREATE INDEX ip_idx ON t_ip USING engram_hnsw (v real_ip_ops) WITH (m = 16, fastupdate = off);
INSERT INTO t_ip SELECT array_agg(((i * 7 + j) % 13)::real / 13) FROM generate_series(1, 2) i,
  generate_series(1, 2000) j GROUP BY i;

-- format 3: vectors longer than a page (chunks over three vector pages)
CREATE TABLE t_long (v real[]);
CREATE INDEX long_idx ON t_long USING engram_hnsw (v) WITH (m = 4, fastupdate = off);
INSERT INTO t_long SELECT array_agg(((i * 5 + j) % 11)::real / 11) FROM generate_series(1, 3) i,
  generate_series(1, 4200) j GROUP BY i;

-- format 3: RaBitQ codes
CREATE TABLE t_rq (id int, v real[]);
INSERT INTO t_rq SELECT i, ARRAY[random(), random(), random(), random(), random()]::real[]
  FROM generate_series(1, 50) i;
CREATE INDEX rq_idx ON t_rq USING engram_hnsw (v) WITH (m = 4, codes = rabitq, fastupdate = off);
DELETE FROM t_rq WHERE id % 6 = 0;
VACUUM t_rq;

-- empty, dimension not fixed yet
CREATE TABLE t_empty (v real[]);
CREATE INDEX empty_idx ON t_empty USING engram_hnsw (v);

-- L2 with a higher-level graph (m = 2 gives many levels)
CREATE TABLE t_lv (v real[]);
INSERT INTO t_lv SELECT ARRAY[random(), random()]::real[] FROM generate_series(1, 100);
CREATE INDEX lv_idx ON t_lv USING engram_hnsw (v) WITH (m = 2, ef_construction = 8);
CHECKPOINT;
SQL

mapfile -t rows < <(psql -At -F ' ' -c "SELECT relname, oid, pg_relation_filepath(oid)
	FROM pg_class WHERE relname IN ('l2_idx', 'pend_idx', 'sp_idx', 'ip_idx', 'empty_idx', 'lv_idx',
	  'long_idx', 'rq_idx') ORDER BY relname")
as_pg "$PGBIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null

mkdir -p "$OUT"
for row in "${rows[@]}"; do
	read -r name oid path <<<"$row"
	file="$DATA/$path"
	pages=$(($(stat -c %s "$file") / 8192))
	((pages > 16)) && pages=16
	# header (see fuzz_hnsw.c): every operation, level byte, ef, query
	# seed, OID, new dims, dead mod, space key 2, rows per scan, empty FSM,
	# fastupdate on, backend id, pending limit 8 kB; then the blocks
	{
		perl -e 'print pack("CCCCVCCVCCCCC", 0x3f, 200, 9, 7, $ARGV[0], 3, 2, 2, 20, 0, 1, 3, 1), "\0" x 13' "$oid"
		head -c $((pages * 8192)) "$file"
	} >"$OUT/${CORPUS_PREFIX:-}$name.bin"
	echo "$OUT/${CORPUS_PREFIX:-}$name.bin: $pages page(s), index OID $oid"
done
du -ch "$OUT"/*.bin | tail -n 1
