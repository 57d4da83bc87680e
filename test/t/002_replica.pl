
# Copyright: engram_hnsw authors; PostgreSQL licence.
#
# 002_replica.pl: a streaming hot standby replays every change of an
# engram_hnsw index.  The standby is created before the index exists, so it
# replays the build (full-page images), single-row inserts, DELETE + VACUUM
# (neighbour repair), more inserts, and an index on an empty table whose
# dimension is fixed by its first insert.  After catch-up:
#  - every index page is byte-identical on primary and standby (pageinspect;
#    spare all-zero pages that relation extension added without WAL aside),
#    right after the build (its own WAL, before later changes log most pages
#    again) and at the end;
#  - ordered queries return the same ids in the same order on both;
#  - every row is found on the standby by an index scan for its own vector;
#  - engram_hnsw_check runs on the hot standby (with AccessShareLock, the
#    strongest lock recovery grants) and counts what the primary counts;
#    after promotion too;
#  - the promoted standby accepts inserts that its index finds.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use EngramTAP qw(start_node);

# SQL: a DO block inserting the rows $from .. $to (vec(i)) into each of
# @tables, each row in a transaction of its own
sub insert_each_sql
{
	my ($from, $to, @tables) = @_;
	my $ins = join("\n", map { "\t\tINSERT INTO $_ VALUES (i, vec(i));" } @tables);
	return qq{
DO \$\$
BEGIN
	FOR i IN $from .. $to LOOP
$ins
		COMMIT;
	END LOOP;
END \$\$;
};
}

# every index page is identical on primary and standby, after $when
sub compare_pages
{
	my ($when, @indexes) = @_;
	for my $index (@indexes)
	{
		# pages never initialised (all zeros: relation extension adds spare
		# pages for waiting inserters without WAL) may exist on the primary only
		my $q = qq{
SELECT count(*) || ' ' || md5(string_agg(b || ':' || md5(p), ',' ORDER BY b))
  FROM (SELECT b, get_raw_page('$index', b::int) AS p
          FROM generate_series(0, pg_relation_size('$index') / 8192 - 1) b) x
 WHERE (page_header(p)).upper > 0};
		my $p = $::primary->safe_psql('postgres', $q);
		my $s = $::standby->safe_psql('postgres', $q);
		note "$index $when: primary $p, standby $s";
		is($s, $p, "$index: every page is identical on primary and standby $when");
	}
}

our $primary = start_node('engram_primary', { allows_streaming => 1 }, shared_buffers => '16MB');

# vec(id): 8 pseudo-random values in [-0.5, 0.5) (a sin() hash)
$primary->safe_psql(
	'postgres', q{
CREATE EXTENSION engram_hnsw;
CREATE EXTENSION pageinspect;
CREATE FUNCTION vec(i int) RETURNS real[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT array_agg((x - floor(x) - 0.5)::real ORDER BY d)
     FROM (SELECT d, sin(i * 12.9898 + d * 78.233) * 43758.5453 AS x
             FROM generate_series(0, 7) d) s $$;
});

$primary->backup('base');
our $standby = PostgreSQL::Test::Cluster->new('engram_standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;

# build, single-row inserts, delete + vacuum, more inserts
$primary->safe_psql(
	'postgres', q{
CREATE TABLE t (id int PRIMARY KEY, embedding real[]);
INSERT INTO t SELECT i, vec(i) FROM generate_series(1, 3000) i;
CREATE INDEX t_l2 ON t USING engram_hnsw (embedding real_l2_ops)
	WITH (m = 8, ef_construction = 32);
CREATE INDEX t_cos ON t USING engram_hnsw (embedding real_cosine_ops)
	WITH (m = 6, ef_construction = 24);
CREATE TABLE u (id int PRIMARY KEY, embedding real[]);
CREATE INDEX u_l2 ON u USING engram_hnsw (embedding) WITH (m = 8, ef_construction = 32);
});
# the build's own WAL: the pages before anything else touches them (later
# changes write full images of most pages again)
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
compare_pages('after the build', 't_l2', 't_cos');
$primary->safe_psql('postgres', insert_each_sql(3001, 3600, 't', 'u'));
$primary->safe_psql('postgres', 'DELETE FROM t WHERE id % 3 = 0');
$primary->safe_psql('postgres', 'VACUUM t');
$primary->safe_psql(
	'postgres', insert_each_sql(3601, 4000, 't') . q{
INSERT INTO t SELECT 10000 + i, vec(i) FROM generate_series(3, 300, 3) i;
DELETE FROM u WHERE id % 2 = 0;
});
$primary->safe_psql('postgres', 'VACUUM u');

$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));

is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'standby is in recovery');

# ---------------------------------------------------------------- pages
compare_pages('after the whole run', 't_l2', 't_cos', 'u_l2');

# ---------------------------------------------------------------- queries
my $scan = q{SET enable_seqscan = off; SET enable_bitmapscan = off;};
my @queries;
for my $q (7, 42, 333, 2500, 3999)
{
	push @queries,
	  "SELECT array_agg(id) FROM (SELECT id FROM t ORDER BY embedding <-> vec($q) LIMIT 10) s";
	push @queries,
	  "SELECT array_agg(id) FROM (SELECT id FROM t ORDER BY embedding <=> vec($q) LIMIT 10) s";
	push @queries,
	  "SELECT array_agg(id) FROM (SELECT id FROM u ORDER BY embedding <-> vec($q) LIMIT 10) s";
}
like(
	$standby->safe_psql('postgres',
		"$scan EXPLAIN (COSTS OFF) SELECT id FROM t ORDER BY embedding <-> vec(7) LIMIT 10"),
	qr/Index Scan using t_l2/,
	'standby plans an index scan');
for my $sql (@queries)
{
	my $p = $primary->safe_psql('postgres', "$scan $sql");
	my $s = $standby->safe_psql('postgres', "$scan $sql");
	is($s, $p, "same result on the standby: $sql");
}

# every row found by its own vector, on the standby
for my $case ([ 't', '<->' ], [ 't', '<=>' ], [ 'u', '<->' ])
{
	my ($tab, $op) = @$case;
	my $out = $standby->safe_psql(
		'postgres', qq{
$scan SET engram_hnsw.ef_search = 100;
SELECT count(*), count(*) FILTER (WHERE n.id IS DISTINCT FROM a.id)
  FROM $tab a
  LEFT JOIN LATERAL (SELECT b.id FROM $tab b ORDER BY b.embedding $op a.embedding LIMIT 1) n ON true;
});
	my ($rows, $fail) = split /\|/, $out;
	ok($rows > 0 && $fail == 0,
		"standby: every row of $tab is found by its own vector with $op")
	  or diag("$tab $op: $fail of $rows rows not found");
}

# ---------------------------------------------------------------- check
my %primary_check;
for my $index ('t_l2', 't_cos', 'u_l2')
{
	$primary_check{$index} = $primary->safe_psql('postgres',
		"SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('$index')");
	note "primary $index: elements|deleted|heap_tids|unreachable = $primary_check{$index}";
}
# on the hot standby the check runs (with AccessShareLock: recovery grants
# nothing stronger) and, the standby having caught up, counts what the
# primary counts
for my $index ('t_l2', 't_cos', 'u_l2')
{
	my ($ret, $out, $err) = $standby->psql('postgres',
		"SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('$index')");
	is($ret, 0, "hot standby: engram_hnsw_check('$index') runs") or diag($err);
	is($out, $primary_check{$index}, "hot standby: $index has the counts of the primary");
}

# promote: the check and inserts on the promoted standby
$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die "standby did not leave recovery";
for my $index ('t_l2', 't_cos', 'u_l2')
{
	my ($r, $o, $e) = $standby->psql('postgres',
		"SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('$index')");
	is($r, 0, "promoted standby: engram_hnsw_check('$index') passes") or diag($e);
	is($o, $primary_check{$index}, "promoted standby: $index has the counts of the primary");
}

# inserts on the promoted standby work and are found
$standby->safe_psql('postgres',
	"INSERT INTO t SELECT i, vec(i) FROM generate_series(20001, 20050) i");
my $found = $standby->safe_psql(
	'postgres', qq{
$scan
SELECT count(*) FILTER (WHERE n.id = a.id)
  FROM t a
  LEFT JOIN LATERAL (SELECT b.id FROM t b ORDER BY b.embedding <-> a.embedding LIMIT 1) n ON true
 WHERE a.id > 20000;
});
is($found, 50, 'promoted standby: new rows are found by their own vector');
my ($r2, $o2, $e2) = $standby->psql('postgres', "SELECT unreachable FROM engram_hnsw_check('t_l2')");
is($r2, 0, 'promoted standby: engram_hnsw_check passes after inserts') or diag($e2);

$standby->stop;
$primary->stop;
done_testing();
