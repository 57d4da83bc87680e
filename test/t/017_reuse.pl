
# Copyright: engram_hnsw authors; PostgreSQL licence.
#
# 017_reuse.pl: VACUUM makes the space of deleted elements reusable
# (src/README.md, "Reusing the space of deleted elements").
#  - Delete every row, VACUUM, insert as many new rows straight into the
#    graph (fastupdate = off): the index stays within 1.02x its size plus
#    the few fresh pages of new elements drawn above every freed level.
#  - The same through the pending list and its merges: the first cycle adds
#    only the pending chain's pages, the second stays within 1.02x of it
#    (plus those fresh pages).
#  - Churn rounds (delete half at random, VACUUM, insert as many): after
#    each round engram_hnsw_check is clean and every live row is found by
#    its own vector; at the end the index is at most 1.3x a fresh build of
#    the same rows and its recall@10 (ef_search 10, m = 8) within 0.05 of
#    that build's (VACUUM's list repair costs about 0.03 there, with or
#    without reuse).
#  - A scan open across a VACUUM that frees slots and inserts that reuse
#    them (the index within 1.02x plus those fresh pages) returns only rows
#    its snapshot sees, each once, with their distances, and still finds
#    the nearest ones.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use EngramTAP qw(start_node vec_function_sql self_find check_index);

my $node = start_node('engram_reuse', shared_buffers => '32MB');
$node->safe_psql('postgres', 'CREATE EXTENSION engram_hnsw');
$node->safe_psql('postgres', vec_function_sql());

sub size_of
{
	return $node->safe_psql('postgres', "SELECT pg_relation_size('$_[0]')");
}

sub clean
{
	my ($index, $table, $what) = @_;
	my $c = check_index($node, $index, $table);
	ok($c->{ok} && !$c->{vacuumed} && $c->{unreachable} == 0,
		"$what: engram_hnsw_check clean")
	  or diag("vacuumed $c->{vacuumed}, unreachable " . ($c->{unreachable} // '?')
		  . ": $c->{error}");
	my ($rows, $missing, $ids) = self_find($node, $table, exact => 1, column => 'v');
	is($missing, 0, "$what: each of $rows rows found by its own vector")
	  or diag("missing: $ids");
}

# 1. delete all, VACUUM, the same number of rows inserted straight into the graph
my $n = 4000;
$node->safe_psql(
	'postgres', qq{
CREATE TABLE d (id int PRIMARY KEY, v real[]);
INSERT INTO d SELECT i, vec(i, 3) FROM generate_series(1, $n) i;
CREATE INDEX d_v ON d USING engram_hnsw (v real_l2_ops) WITH (fastupdate = off);
});
my $before = size_of('d_v');
$node->safe_psql('postgres', 'DELETE FROM d');
$node->safe_psql('postgres', 'VACUUM d');
$node->safe_psql('postgres',
	"INSERT INTO d SELECT i, vec(i, 3) FROM generate_series($n + 1, 2 * $n) i");
my $after = size_of('d_v');
# The new rows draw their own levels: those above every freed slot's level
# open fresh pages (an insert page and a vector page, twice when the first
# insert page fills). Ten runs grew 0, 2 or 4 pages of about 183.
my $fresh = 4 * 8192;
ok($after <= 1.02 * $before + $fresh,
	sprintf("direct inserts: delete all, VACUUM, reinsert: %.0f kB -> %.0f kB (%.2fx, at most 1.02x plus %.0f kB of fresh pages)",
		$before / 1024, $after / 1024, $after / $before, $fresh / 1024));
clean('d_v', 'd', 'direct reinsert');

# 2. the same through the pending list and its merges, two cycles
$node->safe_psql(
	'postgres', qq{
CREATE TABLE p (id int PRIMARY KEY, v real[]);
INSERT INTO p SELECT i, vec(i, 3) FROM generate_series(1, $n) i;
CREATE INDEX p_v ON p USING engram_hnsw (v real_l2_ops) WITH (fastupdate = on);
});
my @sizes = (size_of('p_v'));
for my $cycle (1 .. 2)
{
	my $base = 2 * $n * $cycle;
	$node->safe_psql('postgres', 'DELETE FROM p');
	$node->safe_psql('postgres', 'VACUUM p');
	$node->safe_psql('postgres',
		"INSERT INTO p SELECT i, vec(i, 3) FROM generate_series($base + 1, $base + $n) i");
	$node->safe_psql('postgres', "SELECT engram_hnsw_merge_pending('p_v')");
	push @sizes, size_of('p_v');
	clean('p_v', 'p', "pending reinsert, cycle $cycle");
}
# the pending chain of $n entries: 24 bytes and a line pointer each; and
# the fresh pages of elements above every freed slot's level, as above
my $chain = int($n * 28 / 8000 + 2) * 8192 + $fresh;
ok($sizes[1] <= 1.02 * $sizes[0] + $chain,
	sprintf("pending inserts, cycle 1: %.0f kB -> %.0f kB (at most 1.02x plus %.0f kB of pending chain and new pages)",
		$sizes[0] / 1024, $sizes[1] / 1024, $chain / 1024));
ok($sizes[2] <= 1.02 * $sizes[1] + $fresh,
	sprintf("pending inserts, cycle 2: %.0f kB -> %.0f kB (at most 1.02x plus %.0f kB of fresh pages)",
		$sizes[1] / 1024, $sizes[2] / 1024, $fresh / 1024));

# 3. churn rounds: delete half at random, VACUUM, insert as many
my $cn = 4000;
$node->safe_psql(
	'postgres', qq{
CREATE TABLE c (id int PRIMARY KEY, v real[]);
INSERT INTO c SELECT i, vec(i, 8) FROM generate_series(1, $cn) i;
CREATE INDEX c_v ON c USING engram_hnsw (v real_l2_ops) WITH (m = 8, ef_construction = 32);
});
my $next = 100000;
for my $round (1 .. 3)
{
	$node->safe_psql('postgres',
		"DELETE FROM c WHERE id IN (SELECT id FROM c ORDER BY hashint4(id + $round * 7919) LIMIT $cn / 2)");
	$node->safe_psql('postgres', 'VACUUM c');
	$node->safe_psql('postgres',
		"INSERT INTO c SELECT i, vec(i, 8) FROM generate_series($next, $next + $cn / 2 - 1) i");
	$next += $cn;
	$node->safe_psql('postgres', "SELECT engram_hnsw_merge_pending('c_v')");
	clean('c_v', 'c', "churn round $round");
}
$node->safe_psql(
	'postgres', q{
CREATE TABLE f AS SELECT * FROM c;
CREATE INDEX f_v ON f USING engram_hnsw (v real_l2_ops) WITH (m = 8, ef_construction = 32);
CREATE TABLE q AS SELECT i AS qid, vec(900000 + i, 8) AS v FROM generate_series(1, 50) i;
});
my ($csize, $fsize) = (size_of('c_v'), size_of('f_v'));
ok($csize <= 1.3 * $fsize,
	sprintf("churn: %.0f kB against a fresh build's %.0f kB (%.2fx, at most 1.3x)",
		$csize / 1024, $fsize / 1024, $csize / $fsize));

# recall@10 over the 50 queries, against an exact sort
sub recall
{
	my ($t) = @_;
	return $node->safe_psql(
		'postgres', qq{
SET enable_seqscan = off; SET enable_bitmapscan = off; SET engram_hnsw.ef_search = 10;
CREATE TEMP TABLE got AS
SELECT q.qid, g.id FROM q CROSS JOIN LATERAL
  (SELECT id FROM $t ORDER BY $t.v <-> q.v LIMIT 10) g;
RESET enable_seqscan; RESET enable_bitmapscan;
SET enable_indexscan = off;
CREATE TEMP TABLE truth AS
SELECT q.qid, e.id FROM q CROSS JOIN LATERAL
  (SELECT id FROM $t ORDER BY $t.v <-> q.v LIMIT 10) e;
SELECT round(count(*) / 500.0, 4) FROM got JOIN truth USING (qid, id);
});
}
my ($crec, $frec) = (recall('c'), recall('f'));
ok($crec >= $frec - 0.05 && $crec >= 0.8,
	"churn: recall\@10 at ef_search 10 $crec, fresh build $frec (at least fresh - 0.05 and 0.8)");

# 4. a scan open across a VACUUM that frees slots and inserts reusing them
my $sn = 3000;
$node->safe_psql(
	'postgres', qq{
CREATE TABLE s (id int PRIMARY KEY, v real[]);
INSERT INTO s SELECT i, vec(i, 8) FROM generate_series(1, $sn) i;
CREATE INDEX s_v ON s USING engram_hnsw (v real_l2_ops) WITH (fastupdate = off);
DELETE FROM s WHERE id % 2 = 1;
});
my $qv = "vec(777777, 8)";
my $exact = $node->safe_psql(
	'postgres', qq{
SET enable_indexscan = off; SET enable_bitmapscan = off;
SELECT string_agg(id::text, ',' ORDER BY d, id) FROM
  (SELECT id, v <-> $qv AS d FROM s ORDER BY v <-> $qv LIMIT 100) x;
});
my $bg = $node->background_psql('postgres');
$bg->query_safe(
	qq{
BEGIN ISOLATION LEVEL REPEATABLE READ;
SET enable_seqscan = off; SET enable_bitmapscan = off; SET engram_hnsw.ef_search = 10;
DECLARE cur CURSOR FOR SELECT id, v <-> $qv AS d FROM s ORDER BY v <-> $qv;
});
my @rows = split /\n/, $bg->query_safe('FETCH 20 FROM cur');
my $mid = size_of('s_v');
$node->safe_psql('postgres', 'VACUUM s');
$node->safe_psql('postgres',
	"INSERT INTO s SELECT i, vec(i, 8) FROM generate_series(200001, 200000 + $sn / 2) i");
my $grown = size_of('s_v');
ok($grown <= 1.02 * $mid + $fresh,
	"concurrent scan: the new rows took freed slots ($mid -> $grown bytes, at most 1.02x plus $fresh bytes of fresh pages)");
push @rows, split /\n/, $bg->query_safe('FETCH ALL FROM cur');
$bg->query_safe('COMMIT');
$bg->quit;

my (%seen, $dups, $bad, $wrongd);
($dups, $bad, $wrongd) = (0, 0, 0);
my %dist = map { split /\|/ } split /\n/, $node->safe_psql('postgres',
	"SELECT id, v <-> $qv FROM s WHERE id <= $sn");
for my $r (@rows)
{
	my ($id, $d) = split /\|/, $r;
	$dups++ if $seen{$id}++;
	$bad++ if $id > $sn || $id % 2 == 1;
	$wrongd++ if !defined $dist{$id} || $dist{$id} ne $d;
}
is($dups, 0, 'concurrent scan: no row twice');
is($bad, 0, 'concurrent scan: only rows its snapshot sees (no deleted or new ones)');
is($wrongd, 0, 'concurrent scan: every row with its own distance');
my @first = map { (split /\|/)[0] } @rows[0 .. 99];
my %top = map { $_ => 1 } split /,/, $exact;
my $hits = grep { $top{$_} } @first;
ok($hits >= 90, "concurrent scan: $hits of the exact 100 nearest among its first 100 rows");
ok(scalar(@rows) >= 0.95 * $sn / 2,
	'concurrent scan: ' . scalar(@rows) . " of " . ($sn / 2) . " live rows returned");
clean('s_v', 's', 'after the concurrent scan');

$node->stop;
done_testing();
