
# Copyright: engram_hnsw authors; PostgreSQL licence.
#
# 015_upgrade.pl: ALTER EXTENSION engram_hnsw UPDATE from every earlier
# release (0.1.0), and indexes in the page format of that release.
#
#  1. CREATE EXTENSION engram_hnsw VERSION '0.1.0', tables with an L2 index
#     and a memory-space index; ALTER EXTENSION engram_hnsw UPDATE: the
#     version is 0.2.0, the objects of 0.2.0 exist (engram_hnsw_check with
#     its "pending" column, engram_hnsw_merge_pending), the object list
#     equals that of a fresh 0.2.0 install, and the indexes keep answering.
#  2. Page format 1 (what 0.1.0 writes): the meta page of 0.1.0 is the
#     prefix of format 2 with version 1, and every other page is unchanged,
#     so an index is put into format 1 by rewriting the version field of
#     its meta page with the server stopped.  Then: the index is read as
#     format 1 (inserts go straight into the graph, nothing pending), every
#     row is found by its own vector, VACUUM works, engram_hnsw_check
#     passes; REINDEX gives format 2 and the pending list again.

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

# ---------------------------------------------------------------- 1. UPDATE
$node->safe_psql('postgres', 'CREATE DATABASE old');
$node->safe_psql('old', "CREATE EXTENSION engram_hnsw VERSION '0.1.0';" . vec_function_sql() . q{
CREATE TABLE items (id int PRIMARY KEY, v real[]);
INSERT INTO items SELECT i, vec(i, 8) FROM generate_series(1, 2000) i;
CREATE INDEX items_idx ON items USING engram_hnsw (v);
CREATE TABLE sp (id int PRIMARY KEY, space_id int, v real[]);
INSERT INTO sp SELECT i, i % 10, vec(i, 8) FROM generate_series(1, 2000) i;
CREATE INDEX sp_idx ON sp USING engram_hnsw (space_id, v);
});
is($node->safe_psql('old', "SELECT extversion FROM pg_extension WHERE extname = 'engram_hnsw'"),
	'0.1.0', 'installed as 0.1.0');
$node->safe_psql('old', 'ALTER EXTENSION engram_hnsw UPDATE');
is($node->safe_psql('old', "SELECT extversion FROM pg_extension WHERE extname = 'engram_hnsw'"),
	'0.2.0', 'ALTER EXTENSION UPDATE reaches 0.2.0');

# the same objects as a fresh install of the default version
my $objects = q{
SELECT string_agg(pg_describe_object(classid, objid, 0), E'\n' ORDER BY 1)
  FROM pg_depend
 WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'engram_hnsw')};
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION engram_hnsw');
is($node->safe_psql('old', $objects), $node->safe_psql('fresh', $objects),
	'updated extension has the objects of a fresh 0.2.0 install');
my $sig = q{SELECT pg_get_function_result('engram_hnsw_check'::regproc) || ' / ' ||
	pg_get_function_arguments('engram_hnsw_check'::regproc)};
is($node->safe_psql('old', $sig), $node->safe_psql('fresh', $sig),
	'engram_hnsw_check has the 0.2.0 signature');

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
is($fmt->('old', 'items_idx'), '2', 'an index built after the update has page format 2 (as 0.2.0 builds)');
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

# ---------------------------------------------------------------- 2. format 1
$node->safe_psql('postgres', 'CREATE DATABASE f1');
$node->safe_psql('f1', 'CREATE EXTENSION engram_hnsw;' . vec_function_sql() . q{
CREATE TABLE items (id int PRIMARY KEY, v real[]);
INSERT INTO items SELECT i, vec(i, 8) FROM generate_series(1, 3000) i;
CREATE INDEX items_idx ON items USING engram_hnsw (v);
CREATE TABLE sp (id int PRIMARY KEY, space_id int, v real[]);
INSERT INTO sp SELECT i, i % 10, vec(i, 8) FROM generate_series(1, 3000) i;
CREATE INDEX sp_idx ON sp USING engram_hnsw (space_id, v);
CHECKPOINT;
});
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
	is($fmt->('f1', $idx), '2', "$idx after REINDEX: page format 2");
	$node->safe_psql('f1', "INSERT INTO $tab SELECT i, " . ($tab eq 'sp' ? 'i % 13, ' : '')
		  . "vec(i, 8) FROM generate_series(3401, 3500) i");
	$chk = $node->safe_psql('f1', "SELECT pending FROM engram_hnsw_check('$idx')");
	is($chk, '100', "$idx after REINDEX: inserts use the pending list again");
}

$node->stop;
done_testing();
