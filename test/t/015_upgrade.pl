
# Copyright: engram_hnsw authors; PostgreSQL licence.
#
# 015_upgrade.pl: ALTER EXTENSION engram_hnsw UPDATE from every earlier
# release (0.1.0, 0.2.0), and indexes in the page format of 0.1.0.
#
#  1. CREATE EXTENSION engram_hnsw VERSION '0.1.0', tables with an L2 index
#     and a memory-space index; ALTER EXTENSION engram_hnsw UPDATE: the
#     version is the default (0.3.0), the objects of 0.2.0 exist
#     (engram_hnsw_check with its "pending" column,
#     engram_hnsw_merge_pending) and those of 0.3.0 (the distance functions'
#     planner support function), the object list equals that of a fresh
#     install, and the indexes keep answering.  The same from 0.2.0: the
#     distance functions get their support function, and the planner's
#     cost of a distance call then grows with the vectors' length.
#  2. Page format 2 (what 0.2.0 writes; engram_hnsw.build_format = 2
#     builds it): the index answers, takes rows through its pending list,
#     VACUUM and engram_hnsw_check work (format 2, no codes); REINDEX moves
#     it to format 3 with int8 codes, and every row is still found.
#  3. Page format 1 (what 0.1.0 writes): the meta page of 0.1.0 is the
#     prefix of format 2 with version 1, and every other page is unchanged,
#     so a format 2 index is put into format 1 by rewriting the version
#     field of its meta page with the server stopped.  Then: the index is
#     read as format 1 (inserts go straight into the graph, nothing
#     pending), every row is found by its own vector, VACUUM works,
#     engram_hnsw_check passes; REINDEX gives format 3 and the pending list
#     again.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use EngramTAP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('engram_upgrade');
$node->init;
$node->append_conf('postgresql.conf', "autovacuum = off\n");
$node->start;

# a database $db with the extension (created by $create), vec(), and $n rows
# in items (index items_idx on v) and in sp (index sp_idx on (space_id, v),
# 10 spaces); $more: statements run after
sub items_db
{
	my ($db, $create, $n, $more) = @_;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, $create . vec_function_sql() . qq{
CREATE TABLE items (id int PRIMARY KEY, v real[]);
INSERT INTO items SELECT i, vec(i, 8) FROM generate_series(1, $n) i;
CREATE INDEX items_idx ON items USING engram_hnsw (v);
CREATE TABLE sp (id int PRIMARY KEY, space_id int, v real[]);
INSERT INTO sp SELECT i, i % 10, vec(i, 8) FROM generate_series(1, $n) i;
CREATE INDEX sp_idx ON sp USING engram_hnsw (space_id, v);
} . ($more // ''));
	return;
}

# ---------------------------------------------------------------- 1. UPDATE
items_db('old', "CREATE EXTENSION engram_hnsw VERSION '0.1.0';", 2000);
is($node->safe_psql('old', "SELECT extversion FROM pg_extension WHERE extname = 'engram_hnsw'"),
	'0.1.0', 'installed as 0.1.0');
$node->safe_psql('old', 'ALTER EXTENSION engram_hnsw UPDATE');
is($node->safe_psql('old', "SELECT extversion FROM pg_extension WHERE extname = 'engram_hnsw'"),
	'0.3.0', 'ALTER EXTENSION UPDATE reaches 0.3.0');

# the same objects as a fresh install of the default version
my $objects = q{
SELECT string_agg(d, E'\n' ORDER BY d) FROM (SELECT pg_describe_object(classid, objid, 0) AS d
  FROM pg_depend
 WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'engram_hnsw')) s};
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION engram_hnsw');
is($node->safe_psql('old', $objects), $node->safe_psql('fresh', $objects),
	'updated extension has the objects of a fresh install');
my $sig = q{SELECT pg_get_function_result('engram_hnsw_check'::regproc) || ' / ' ||
	pg_get_function_arguments('engram_hnsw_check'::regproc)};
is($node->safe_psql('old', $sig), $node->safe_psql('fresh', $sig),
	'engram_hnsw_check has the signature of a fresh install');

# 0.3.0: every distance function has the planner support function
my $support = q{SELECT string_agg(p.proname || ':' || p.prosupport::regproc::text, ' ' ORDER BY p.proname)
  FROM pg_proc p
 WHERE p.proname IN ('l2_distance', 'cosine_distance', 'inner_product', 'negative_inner_product')};
my $want_support = join(' ', map { "$_:engram_hnsw_distance_support" }
	  qw(cosine_distance inner_product l2_distance negative_inner_product));
is($node->safe_psql('fresh', $support), $want_support, 'a fresh install has the distance support function');
is($node->safe_psql('old', $support), $want_support, 'updated from 0.1.0: the distance support function');

# from 0.2.0: the same objects, and the estimated cost of a distance call
# now depends on the vectors' length (0.2.0: a fixed COST 1, so equal)
$node->safe_psql('postgres', 'CREATE DATABASE v02');
$node->safe_psql('v02', "CREATE EXTENSION engram_hnsw VERSION '0.2.0'; CREATE TABLE vv (v real[])");
my $cost = sub {
	my ($db, $dims) = @_;
	my $plan = $node->safe_psql($db, qq{
EXPLAIN SELECT l2_distance(v, array_fill(1::real, ARRAY[$dims])) FROM vv});
	return $plan =~ /cost=[\d.]+\.\.([\d.]+)/ ? $1 : "?";
};
my $cost_02 = $cost->('v02', 1536);
is($cost_02, $cost->('v02', 8), '0.2.0: a distance call costs the same for 8 and 1536 dims');
$node->safe_psql('v02', 'ALTER EXTENSION engram_hnsw UPDATE');
is($node->safe_psql('v02', "SELECT extversion FROM pg_extension WHERE extname = 'engram_hnsw'"),
	'0.3.0', 'ALTER EXTENSION UPDATE from 0.2.0 reaches 0.3.0');
is($node->safe_psql('v02', $objects), $node->safe_psql('fresh', $objects),
	'updated from 0.2.0: the objects of a fresh install');
is($node->safe_psql('v02', $support), $want_support, 'updated from 0.2.0: the distance support function');
cmp_ok($cost->('v02', 1536), '>', $cost->('v02', 8),
	'updated from 0.2.0: a distance call on 1536 dims is estimated dearer than on 8');

# the indexes keep working, and new rows go through the pending list
$node->safe_psql('old', 'INSERT INTO items SELECT i, vec(i, 8) FROM generate_series(2001, 2300) i');
$node->safe_psql('old', 'INSERT INTO sp SELECT i, i % 12, vec(i, 8) FROM generate_series(2001, 2300) i');
my $fmt = sub {
	my ($db, $idx) = @_;
	# the version field of the meta page (block 0, after the 24-byte page
	# header and the 4-byte magic), on disk after a checkpoint
	$node->safe_psql($db, 'CHECKPOINT');
	return $node->safe_psql($db, qq{
SELECT get_byte(b, 28) + 256 * get_byte(b, 29)
  FROM (SELECT pg_read_binary_file(pg_relation_filepath('$idx'), 0, 32) AS b) s});
};
is($fmt->('old', 'items_idx'), '3', 'an index built after the update has page format 3');
for my $idx ('items_idx', 'sp_idx')
{
	my $tab = $idx eq 'items_idx' ? 'items' : 'sp';
	my ($rows, $missing, $ids) = (0, 0, '');
	my $found = $node->safe_psql('old', qq{
SET enable_seqscan = off;
SELECT count(*) FILTER (WHERE NOT f) FROM (
  SELECT (SELECT b.id FROM $tab b ORDER BY b.v <-> a.v LIMIT 1) = a.id AS f FROM $tab a) s});
	is($found, '0', "$idx after the update: every row is found by its own vector");
	my $chk = $node->safe_psql('old', "SELECT unreachable || ' ' || pending FROM engram_hnsw_check('$idx')");
	like($chk, qr/^0 \d+$/, "$idx after the update: engram_hnsw_check passes ($chk unreachable/pending)");
}
is($node->safe_psql('old', "SELECT engram_hnsw_merge_pending('items_idx') > 0"), 't',
	'engram_hnsw_merge_pending works after the update');

# every row of $tab found by its own vector through the index: the misses
my $misses = sub {
	my ($db, $tab) = @_;
	return $node->safe_psql($db, qq{
SET enable_seqscan = off;
SELECT count(*) FILTER (WHERE NOT f) FROM (
  SELECT (SELECT b.id FROM $tab b ORDER BY b.v <-> a.v LIMIT 1) = a.id AS f FROM $tab a) s});
};

# ---------------------------------------------------------------- 2. format 2
items_db('f2', 'CREATE EXTENSION engram_hnsw; SET engram_hnsw.build_format = 2;', 3000);
for my $idx ('items_idx', 'sp_idx')
{
	my $tab = $idx eq 'items_idx' ? 'items' : 'sp';
	is($fmt->('f2', $idx), '2', "$idx built in page format 2");
	is($node->safe_psql('f2', "SELECT format || ' ' || coalesce(codes, 'none') FROM engram_hnsw_check('$idx')"),
		'2 none', "$idx: engram_hnsw_check reports format 2 without codes");
	$node->safe_psql('f2', "INSERT INTO $tab SELECT i, " . ($tab eq 'sp' ? 'i % 13, ' : '')
		  . "vec(i, 8) FROM generate_series(3001, 3200) i");
	is($node->safe_psql('f2', "SELECT pending FROM engram_hnsw_check('$idx')"), '200',
		"$idx in format 2: inserts go to the pending list");
	is($misses->('f2', $tab), '0', "$idx in format 2: every row is found by its own vector");
	$node->safe_psql('f2', "DELETE FROM $tab WHERE id % 4 = 0; VACUUM $tab");
	is($node->safe_psql('f2', "SELECT heap_tids || ' ' || pending || ' ' || unreachable FROM engram_hnsw_check('$idx')"),
		'2400 0 0', "$idx in format 2: VACUUM merged and removed the deleted rows, check passes");
	$node->safe_psql('f2', "REINDEX INDEX $idx");
	is($fmt->('f2', $idx), '3', "$idx after REINDEX: page format 3");
	is($node->safe_psql('f2', "SELECT format || ' ' || codes || ' ' || heap_tids FROM engram_hnsw_check('$idx')"),
		'3 int8 2400', "$idx after REINDEX: int8 codes, every row");
	is($misses->('f2', $tab), '0', "$idx after REINDEX: every row is found by its own vector");
}

# ---------------------------------------------------------------- 3. format 1
items_db('f1', 'CREATE EXTENSION engram_hnsw; SET engram_hnsw.build_format = 2;', 3000, 'CHECKPOINT;');
my %path;
for my $idx ('items_idx', 'sp_idx')
{
	$path{$idx} = $node->data_dir . '/'
	  . $node->safe_psql('f1', "SELECT pg_relation_filepath('$idx')");
}
$node->stop;
for my $idx ('items_idx', 'sp_idx')
{
	open(my $fh, '+<:raw', $path{$idx}) or die "open $path{$idx}: $!";
	seek($fh, 28, 0);
	read($fh, my $ver, 4);
	is(unpack('V', $ver), 2, "$idx was written in format 2");
	seek($fh, 28, 0);
	print $fh pack('V', 1);
	# the page checksum is off in this cluster (initdb default of the test
	# framework); with checksums this edit would need a recomputed checksum
	close($fh);
}
$node->start;
for my $idx ('items_idx', 'sp_idx')
{
	my $tab = $idx eq 'items_idx' ? 'items' : 'sp';
	is($fmt->('f1', $idx), '1', "$idx is now in page format 1");
	$node->safe_psql('f1', "INSERT INTO $tab SELECT i, " . ($tab eq 'sp' ? 'i % 13, ' : '')
		  . "vec(i, 8) FROM generate_series(3001, 3400) i");
	my $chk = $node->safe_psql('f1', "SELECT elements || ' ' || unreachable || ' ' || pending FROM engram_hnsw_check('$idx')");
	is($chk, '3400 0 0', "$idx in format 1: inserts went straight into the graph (elements, unreachable, pending)");
	my $found = $node->safe_psql('f1', qq{
SET enable_seqscan = off;
SELECT count(*) FILTER (WHERE NOT f) FROM (
  SELECT (SELECT b.id FROM $tab b ORDER BY b.v <-> a.v LIMIT 1) = a.id AS f FROM $tab a) s});
	is($found, '0', "$idx in format 1: every row is found by its own vector");
	$node->safe_psql('f1', "DELETE FROM $tab WHERE id % 5 = 0; VACUUM $tab");
	$chk = $node->safe_psql('f1', "SELECT heap_tids || ' ' || pending FROM engram_hnsw_check('$idx')");
	is($chk, '2720 0', "$idx in format 1: VACUUM removed the deleted rows, check passes");
	is($node->safe_psql('f1', "SELECT engram_hnsw_merge_pending('$idx')"), '0',
		"$idx in format 1: nothing to merge");

	$node->safe_psql('f1', "REINDEX INDEX $idx");
	is($fmt->('f1', $idx), '3', "$idx after REINDEX: page format 3");
	$node->safe_psql('f1', "INSERT INTO $tab SELECT i, " . ($tab eq 'sp' ? 'i % 13, ' : '')
		  . "vec(i, 8) FROM generate_series(3401, 3500) i");
	$chk = $node->safe_psql('f1', "SELECT pending FROM engram_hnsw_check('$idx')");
	is($chk, '100', "$idx after REINDEX: inserts use the pending list again");
}

$node->stop;
done_testing();
