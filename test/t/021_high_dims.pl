
# Copyright: engram_hnsw authors; PostgreSQL licence.
#
# 021_high_dims.pl: vectors longer than a page, end to end (page format 3:
# vectors in chunks on vector pages, codes in the element tuples).
#
# For 3 072 and 4 096 dimensions (int8 codes) and 16 000 (the maximum,
# RaBitQ codes: an int8 code of 16 000 bytes cannot sit in an element
# tuple, which CREATE INDEX says): a bulk build over half the rows, the
# other half inserted through the pending list and merged, inserts straight
# into the graph (fastupdate off), every row found by its own vector,
# DELETE + VACUUM (slot reuse writes new vectors into the old chunks),
# engram_hnsw_check (format 3, the code kind, every code matches its
# vector), then a crash in the middle of inserts: after recovery every
# acknowledged row is found and the check passes.  And recall@10 on a
# clustered 4 096-dimension set against the exact order.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use EngramTAP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = start_node('engram_high_dims', shared_buffers => '256MB',
	'engram_hnsw.merge_worker' => 'off');
$node->safe_psql('postgres', 'CREATE EXTENSION engram_hnsw;' . vec_function_sql());

# an int8 code of 16 000 bytes does not fit an element tuple
my ($ret, $out, $err) = $node->psql('postgres', q{
CREATE TABLE too_wide (id int, v real[]);
INSERT INTO too_wide VALUES (1, vec(1, 16000));
CREATE INDEX ON too_wide USING engram_hnsw (v) WITH (codes = int8)});
like($err, qr/int8 codes of 16000 dimensions do not fit an engram_hnsw page/,
	'int8 codes refused at 16 000 dimensions, with the hint');
like($err, qr/codes = rabitq/, '... naming the codes that fit');

for my $case ([ 3072, 'int8', 200 ], [ 4096, 'int8', 200 ], [ 16000, 'rabitq', 60 ])
{
	my ($dims, $codes, $n) = @$case;
	my $t = "t$dims";
	my $half = $n / 2;
	$node->safe_psql('postgres', qq{
CREATE TABLE $t (id int PRIMARY KEY, v real[]);
INSERT INTO $t SELECT i, vec(i, $dims) FROM generate_series(1, $half) i;
CREATE INDEX ${t}_idx ON $t USING engram_hnsw (v)
  WITH (codes = $codes, pending_list_limit = 1000000);
INSERT INTO $t SELECT i, vec(i, $dims) FROM generate_series($half + 1, $n) i;
});
	is($node->safe_psql('postgres', "SELECT pending FROM engram_hnsw_check('${t}_idx')"), $half,
		"$dims dims: inserts after the build wait in the pending list");
	cmp_ok($node->safe_psql('postgres', "SELECT engram_hnsw_merge_pending('${t}_idx')"), '==', $half,
		"$dims dims: the merge links them");
	$node->safe_psql('postgres', qq{
ALTER INDEX ${t}_idx SET (fastupdate = off);
INSERT INTO $t SELECT i, vec(i, $dims) FROM generate_series($n + 1, $n + 20) i;
});
	my ($rows, $missing) = self_find($node, $t, exact => 1, jobs => 1);
	is("$rows $missing", ($n + 20) . " 0", "$dims dims: every row found by its own vector, first");

	$node->safe_psql('postgres', qq{
DELETE FROM $t WHERE id % 3 = 0;
VACUUM $t;
INSERT INTO $t SELECT i, vec(i, $dims) FROM generate_series($n + 21, $n + 40) i;
});
	($rows, $missing) = self_find($node, $t, exact => 1, jobs => 1);
	is($missing, 0, "$dims dims: after DELETE, VACUUM and reuse, every row is found ($rows)");
	my $c = check_index($node, "${t}_idx", $t);
	ok($c->{ok}, "$dims dims: engram_hnsw_check passes") or diag($c->{error});
	is($node->safe_psql('postgres', "SELECT format || ' ' || codes || ' ' || unreachable FROM engram_hnsw_check('${t}_idx')"),
		"3 $codes 0", "$dims dims: format 3, $codes codes, nothing unreachable");
	is($node->safe_psql('postgres', "SELECT heap_tids FROM engram_hnsw_check('${t}_idx')"),
		$node->safe_psql('postgres', "SELECT count(*) FROM $t"),
		"$dims dims: one heap TID per row");
}

# ---------------------------------------------------------------- crash
# rows acknowledged before the crash survive it, straight and pending
$node->safe_psql('postgres', q{
ALTER INDEX t4096_idx SET (fastupdate = on);
INSERT INTO t4096 SELECT i, vec(i, 4096) FROM generate_series(1001, 1040) i;
ALTER INDEX t16000_idx SET (fastupdate = off);
INSERT INTO t16000 SELECT i, vec(i, 16000) FROM generate_series(1001, 1010) i;
CHECKPOINT;
INSERT INTO t4096 SELECT i, vec(i, 4096) FROM generate_series(1041, 1060) i;
INSERT INTO t16000 SELECT i, vec(i, 16000) FROM generate_series(1011, 1020) i;
});
crash_server($node);
$node->start;
for my $t ('t4096', 't16000')
{
	my $c = check_index($node, "${t}_idx", $t);
	ok($c->{ok}, "after the crash: engram_hnsw_check('${t}_idx') passes") or diag($c->{error});
	my ($rows, $missing) = self_find($node, $t, exact => 1, jobs => 1);
	is($missing, 0, "after the crash: every row of $t is found by its own vector ($rows)");
}

# ---------------------------------------------------------------- recall
# 2 000 rows around 40 centres in 4 096 dimensions, 30 queries near them
$node->safe_psql('postgres', q{
CREATE FUNCTION clustered(i int, dims int) RETURNS real[] LANGUAGE sql IMMUTABLE AS
$$ SELECT array_agg((c + 0.25 * n)::real ORDER BY d)
     FROM unnest(vec(i % 40 + 100000, dims), vec(i, dims)) WITH ORDINALITY AS u(c, n, d) $$;
CREATE TABLE r4096 (id int PRIMARY KEY, v real[]);
ALTER TABLE r4096 ALTER COLUMN v SET STORAGE EXTERNAL;
INSERT INTO r4096 SELECT i, clustered(i, 4096) FROM generate_series(1, 2000) i;
CREATE INDEX r4096_idx ON r4096 USING engram_hnsw (v);
CREATE TABLE r4096_q AS SELECT i AS qid, clustered(i + 50000, 4096) AS v FROM generate_series(1, 30) i;
});
my $recall = $node->safe_psql('postgres', q{
SET engram_hnsw.ef_search = 40;
CREATE TEMP TABLE got AS
SELECT q.qid, array(SELECT r.id FROM r4096 r ORDER BY r.v <-> q.v LIMIT 10) AS ids FROM r4096_q q;
SET enable_indexscan = off;
SET enable_bitmapscan = off;
SELECT round(avg((SELECT count(*) FROM unnest(g.ids) x
                   WHERE x = ANY (array(SELECT r.id FROM r4096 r ORDER BY r.v <-> q.v LIMIT 10))))
             / 10.0, 3)
  FROM got g JOIN r4096_q q USING (qid);
});
cmp_ok($recall, '>=', 0.95, "4 096 dims, clustered: recall\@10 at ef_search 40 is $recall (>= 0.95)");

$node->stop;
done_testing();
