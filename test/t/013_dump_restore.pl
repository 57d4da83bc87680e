
# Copyright: engram_hnsw authors; PostgreSQL licence.
#
# 013_dump_restore.pl: pg_dump -Fc of a database with engram_hnsw indexes
# and pg_restore into a new database round-trip.
#
# Database "src": the extension, tables with
#  - an L2 index with options (m, ef_construction),
#  - a cosine index with other options and a partial index (WHERE),
#  - an inner-product index with default options,
#  - an index with a fixed dimension (dims = 8),
#  - an index created on an empty table (its dimension is fixed by the
#    first insert),
#  - a memory-space index (int4 space key + vector) with several spaces,
# with deleted rows vacuumed away and rows inserted after the build, in a
# schema of its own as well as in public.  pg_dump -Fc, createdb "dst",
# pg_restore.  Then:
#  - pg_dump and pg_restore succeed without errors;
#  - pg_indexes.indexdef is identical for every index of both databases
#    (same access method, operator classes, options, predicates);
#  - the row counts are equal;
#  - a few ordered queries (engram_hnsw.ef_search = 200, above the size of
#    the answer sets, and exact: the answers are also compared with a
#    sequential scan) return the same ids in the same order in both;
#  - engram_hnsw_check passes on every restored index, with one heap TID
#    per indexed row.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use EngramTAP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $t_start = time;
my $node = PostgreSQL::Test::Cluster->new('engram_dump');
$node->init;
$node->append_conf('postgresql.conf', "autovacuum = off\nlog_min_messages = warning\nstatement_timeout = '10min'\n");
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src',
	'CREATE EXTENSION engram_hnsw;' . vec_function_sql() . q{
CREATE TABLE items (id int PRIMARY KEY, v real[]);
INSERT INTO items SELECT i, vec(i, 8) FROM generate_series(1, 3000) i;
CREATE INDEX items_l2 ON items USING engram_hnsw (v real_l2_ops) WITH (m = 12, ef_construction = 48);
CREATE INDEX items_cos ON items USING engram_hnsw (v real_cosine_ops) WITH (m = 6, ef_construction = 20);
CREATE INDEX items_ip ON items USING engram_hnsw (v real_ip_ops);
CREATE INDEX items_dims ON items USING engram_hnsw (v) WITH (dims = 8, m = 10);
CREATE INDEX items_cos_part ON items USING engram_hnsw (v real_cosine_ops) WITH (m = 8)
	WHERE id % 2 = 0;
DELETE FROM items WHERE id % 7 = 0;
VACUUM items;
INSERT INTO items SELECT i, vec(i, 8) FROM generate_series(5001, 5500) i;

CREATE TABLE empty_then_filled (id int PRIMARY KEY, v real[]);
CREATE INDEX etf_l2 ON empty_then_filled USING engram_hnsw (v) WITH (m = 8);
INSERT INTO empty_then_filled SELECT i, vec(i, 12) FROM generate_series(1, 800) i;

CREATE SCHEMA other;
CREATE TABLE other.mem (id int PRIMARY KEY, space_id int, v real[]);
INSERT INTO other.mem SELECT i, i % 5, vec(i + 10000, 8) FROM generate_series(1, 2000) i;
CREATE INDEX mem_space ON other.mem USING engram_hnsw (space_id, v real_cosine_ops)
	WITH (m = 8, ef_construction = 32);
INSERT INTO other.mem SELECT i, i % 7, vec(i + 10000, 8) FROM generate_series(2001, 2300) i;
ANALYZE;
});

my $tmp  = PostgreSQL::Test::Utils::tempdir;
my $dump = "$tmp/src.dump";

$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', 'src' ], 'pg_dump -Fc succeeds');
$node->safe_psql('postgres', 'CREATE DATABASE dst');
$node->command_ok([ 'pg_restore', '--exit-on-error', '-d', 'dst', $dump ],
	'pg_restore into a new database succeeds');

# index definitions
my $defs_q = q{SELECT schemaname || '.' || indexname || ': ' || indexdef FROM pg_indexes
 WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1};
my $src_defs = $node->safe_psql('src', $defs_q);
my $dst_defs = $node->safe_psql('dst', $defs_q);
is($dst_defs, $src_defs, 'pg_indexes.indexdef is identical for every index');
my @hnsw = split /\n/, $node->safe_psql('dst', q{
SELECT c.oid::regclass FROM pg_class c JOIN pg_am a ON a.oid = c.relam
 WHERE a.amname = 'engram_hnsw' ORDER BY 1});
is(scalar(@hnsw), 7, 'dst has the 7 engram_hnsw indexes') or diag("@hnsw");
like($src_defs, qr/items_l2 ON public\.items USING engram_hnsw \(v(?: real_l2_ops)?\) WITH \(m='12', ef_construction='48'\)/,
	'the options appear in the definition');
note $dst_defs;

for my $tab ('items', 'empty_then_filled', 'other.mem')
{
	is($node->safe_psql('dst', "SELECT count(*) FROM $tab"),
		$node->safe_psql('src', "SELECT count(*) FROM $tab"), "$tab: same row count");
}

# ordered queries: index scans in both databases, and a sequential scan
my @queries = (
	[ 'items l2',     q{SELECT id FROM items ORDER BY v <-> vec(11, 8) LIMIT 10} ],
	[ 'items l2 new', q{SELECT id FROM items ORDER BY v <-> vec(5123, 8) LIMIT 10} ],
	[ 'items l2 far', q{SELECT id FROM items ORDER BY v <-> '{0.9,0.9,0.9,0.9,0.9,0.9,0.9,0.9}' LIMIT 10} ],
	[ 'items cosine', q{SELECT id FROM items ORDER BY v <=> vec(2222, 8) LIMIT 10} ],
	[ 'items ip',     q{SELECT id FROM items ORDER BY v <#> vec(77, 8) LIMIT 10} ],
	[ 'items cosine partial', q{SELECT id FROM items WHERE id % 2 = 0 ORDER BY v <=> vec(400, 8) LIMIT 10} ],
	[ 'empty_then_filled', q{SELECT id FROM empty_then_filled ORDER BY v <-> vec(3, 12) LIMIT 10} ],
	[ 'mem space 3', q{SELECT id FROM other.mem WHERE space_id = 3 ORDER BY v <=> vec(10042, 8) LIMIT 10} ],
	[ 'mem spaces 1,6', q{SELECT id FROM other.mem WHERE space_id = ANY ('{1,6}') ORDER BY v <=> vec(10500, 8) LIMIT 10} ],
	[ 'mem all spaces', q{SELECT id FROM other.mem ORDER BY v <=> vec(10999, 8) LIMIT 10} ]);

sub ordered_ids
{
	my ($db, $sql, $index) = @_;
	my $set = $index
	  ? 'SET enable_seqscan = off; SET enable_bitmapscan = off; SET engram_hnsw.ef_search = 200;'
	  : 'SET enable_indexscan = off; SET enable_bitmapscan = off;';
	return $node->safe_psql($db, "$set SELECT string_agg(id::text, ',') FROM ($sql) s");
}

for my $q (@queries)
{
	my ($name, $sql) = @$q;
	my $plan = $node->safe_psql('dst',
		"SET enable_seqscan = off; SET enable_bitmapscan = off; EXPLAIN (COSTS OFF) $sql");
	like($plan, qr/Index Scan using \w+/, "$name: dst answers with an index scan");
	my $src = ordered_ids('src', $sql, 1);
	my $dst = ordered_ids('dst', $sql, 1);
	my $exact = ordered_ids('dst', $sql, 0);
	is($dst, $src, "$name: the same ordered ids in src and dst ($dst)");
	is($dst, $exact, "$name: and they are the exact answer");
}

for my $idx (@hnsw)
{
	my ($ret, $out, $err) = $node->psql('dst',
		"SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('$idx')");
	is($ret, 0, "engram_hnsw_check('$idx') passes on the restored index") or diag($err);
	my (undef, $deleted, $tids, $unreach) = split /\|/, $out;
	my $table = $node->safe_psql('dst', "SELECT indrelid::regclass FROM pg_index WHERE indexrelid = '$idx'::regclass");
	my $pred = $node->safe_psql('dst', "SELECT coalesce(pg_get_expr(indpred, indrelid), 'true') FROM pg_index WHERE indexrelid = '$idx'::regclass");
	my $indexed = $node->safe_psql('dst', "SELECT count(*) FROM $table WHERE ($pred) AND v IS NOT NULL");
	is($tids, $indexed, "$idx: one heap TID per indexed row ($indexed)");
	is($deleted, 0, "$idx: no deleted elements after the restore");
}

# the restored database accepts writes
$node->safe_psql('dst', q{INSERT INTO items SELECT i, vec(i, 8) FROM generate_series(9001, 9100) i});
is(ordered_ids('dst', q{SELECT id FROM items ORDER BY v <-> vec(9050, 8) LIMIT 1}, 1),
	'9050', 'dst: a row inserted after the restore is found');

diag sprintf("013_dump_restore.pl took %.0f s", time - $t_start);
$node->stop;
done_testing();
