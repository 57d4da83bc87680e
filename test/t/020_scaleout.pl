
# Copyright: engram_hnsw authors; PostgreSQL licence.
#
# 020_scaleout.pl: engram_hnsw inside PostgreSQL's own scale-out machinery,
# with real clusters on this machine (unix sockets).
#
# 1. Sharding with postgres_fdw.  A coordinator holds "items", HASH
#    partitioned by space_id, whose two partitions are foreign tables on two
#    shard servers; each shard stores its rows in an ordinary table with an
#    engram_hnsw (space_id, embedding real_l2_ops) index.  The foreign
#    servers are those of README's recipe: engram_hnsw in their "extensions"
#    option (so its operators are shippable), fetch_size 10, ef_search in
#    "options".  Rows are inserted and deleted through the coordinator; a
#    table holding all rows on the coordinator itself, with the same index,
#    is the single-server reference.
#     - README's recipe as written ("memories": 128-d vectors in spaces of
#       1 000 rows): before ANALYZE on the coordinator one space's query
#       ships no ORDER BY (postgres_fdw guesses a few rows and sorts them
#       locally); after it, EXPLAIN VERBOSE shows ORDER BY embedding <->
#       const in the Remote SQL of every shard (all spaces) and of the one
#       pruned shard (one space), and ORDER BY ... LIMIT 10 for a query on
#       one foreign table, with or without a space qual.
#     - EXPLAIN VERBOSE of ORDER BY embedding <-> const LIMIT 10 over the
#       parent: a Merge Append of one Foreign Scan per shard, each shipping
#       ORDER BY (embedding OPERATOR(public.<->) ...).  PostgreSQL 15 pushes
#       no LIMIT below a Merge Append: each shard runs the ordered query as
#       a cursor and the coordinator fetches fetch_size rows at a time (10
#       here), so a shard's index scan returns at most 10 rows (checked in
#       pg_stat_user_indexes on the shards).  The same query written as a
#       UNION ALL of one LIMITed subquery per foreign partition ships
#       ORDER BY ... LIMIT 10 to every shard (checked) and gives the same
#       answer.  Without the "extensions" option nothing is shipped (the
#       coordinator fetches every row and sorts).
#     - On each shard the remote query (as postgres_fdw runs it: a cursor)
#       is planned as an Index Scan using the engram_hnsw index.
#     - The coordinator's answers (all spaces, one space, two spaces on two
#       shards) equal the single-server index answers and the exact ones.
#     - WHERE space_id = const plans a single Foreign Scan (partition
#       pruning), on the shard holding that space, with the qual shipped;
#       a generic prepared plan prunes at run time (Subplans Removed: 1).
# 2. Read replicas: a primary and two streaming hot standbys.  After
#    inserts, deletes and VACUUM on the primary and catch-up, a set of
#    queries returns identical ordered ids (index scans) on all three, and
#    the exact ids; a client with a multi-host connection string and
#    target_session_attrs=standby lands on a standby and gets them too.
#    engram_hnsw_check passes on the primary and on both standbys with the
#    same counts (on a standby it takes AccessShareLock: recovery grants
#    nothing stronger).
# 3. Declarative partitioning on one server (LIST by space_id):
#     - CREATE INDEX on the parent cascades to every partition (pg_inherits,
#       pg_partition_tree, one engram_hnsw index per leaf, each passing
#       engram_hnsw_check with one element per row);
#     - WHERE space_id = const plans one partition's Index Scan;
#     - answers through the parent equal the exact ones;
#     - ATTACH PARTITION of a table with a matching index attaches that
#       index (no new one), even with other index options (m,
#       ef_construction are not compared); of a table without one creates
#       it; of a table with a non-matching (cosine) index creates a matching
#       one next to it;
#     - DETACH PARTITION (plain and CONCURRENTLY): the detached table keeps a
#       working index of its own (exact answers, check, new rows found).

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
my $DIMS    = 16;
# rows of "items": enough that a shard's index (at ef_search 200) beats a
# sequential scan and sort for a cursor read fetch_size rows at a time
my $NITEMS  = 40000;
my $conf    = qq{
shared_buffers = 16MB
max_connections = 20
autovacuum = off
log_min_messages = warning
statement_timeout = '5min'
};

sub new_node
{
	my ($name, %o) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(%o);
	$node->append_conf('postgresql.conf', $conf);
	$node->start;
	return $node;
}

# the text of vec(i, $DIMS), to write query vectors as literals
sub vec_literal
{
	my ($node, $i) = @_;
	return $node->safe_psql('postgres', "SELECT vec($i, $DIMS)::text");
}

# SQL: TABLE (COLS) on the coordinator, hash-partitioned by space_id over
# the tables of that name on shard1 and shard2 (partitions PART1, PART2)
sub sharded_table_sql
{
	my ($table, $cols, $part) = @_;
	return qq{
CREATE TABLE $table ($cols)
	PARTITION BY HASH (space_id);
CREATE FOREIGN TABLE ${part}1 PARTITION OF $table
	FOR VALUES WITH (MODULUS 2, REMAINDER 0) SERVER shard1 OPTIONS (table_name '$table');
CREATE FOREIGN TABLE ${part}2 PARTITION OF $table
	FOR VALUES WITH (MODULUS 2, REMAINDER 1) SERVER shard2 OPTIONS (table_name '$table');
};
}

my $index_sql = "USING engram_hnsw (space_id, embedding real_l2_ops) WITH (m = 8, ef_construction = 32)";

# ======================================================================
# 1. Sharding with postgres_fdw
# ======================================================================
my $coord  = new_node('engram_coord');
my @shards = map { new_node("engram_shard$_") } (1, 2);

for my $shard (@shards)
{
	$shard->safe_psql(
		'postgres', qq{
CREATE EXTENSION engram_hnsw;
CREATE TABLE items (id int PRIMARY KEY, space_id int NOT NULL, embedding real[]);
CREATE INDEX items_ann ON items $index_sql;
});
}

# Remote sessions search with ef_search 200: the coordinator's SET is not
# sent to the shards, the server option "options" is.
my $coord_sql = 'CREATE EXTENSION engram_hnsw; CREATE EXTENSION postgres_fdw;' . vec_function_sql();
for my $s (1, 2)
{
	my $shard = $shards[ $s - 1 ];
	my ($host, $port) = ($shard->host, $shard->port);
	$coord_sql .= qq{
CREATE SERVER shard$s FOREIGN DATA WRAPPER postgres_fdw
	OPTIONS (host '$host', port '$port', dbname 'postgres',
	         extensions 'engram_hnsw', fetch_size '10',
	         options '-c engram_hnsw.ef_search=200 -c cursor_tuple_fraction=0.01');
CREATE USER MAPPING FOR CURRENT_USER SERVER shard$s;
};
}
$coord_sql .= sharded_table_sql('items', 'id int NOT NULL, space_id int NOT NULL, embedding real[]', 'items_shard') . qq{
INSERT INTO items SELECT i, i % 8, vec(i, $DIMS) FROM generate_series(1, $NITEMS) i;

CREATE TABLE items_one (id int PRIMARY KEY, space_id int NOT NULL, embedding real[]);
INSERT INTO items_one SELECT i, i % 8, vec(i, $DIMS) FROM generate_series(1, $NITEMS) i;
CREATE INDEX items_one_ann ON items_one $index_sql;
};
$coord->safe_psql('postgres', $coord_sql);
$_->safe_psql('postgres', 'VACUUM ANALYZE items') for @shards;    # autovacuum's job (merges the pending list); it is off here
$coord->safe_psql('postgres', 'ANALYZE items; ANALYZE items_one');

# ---------------------------------------------------------------- the README recipe
# README's "Sharding with postgres_fdw" as written: its shard and coordinator
# statements (servers as above; sharded_table_sql writes the coordinator's
# CREATE statements as the README has them), 128-d vectors in spaces of 1 000 rows
# inserted through the coordinator, then ANALYZE on the coordinator.
my $recipe_shard = q{
CREATE TABLE memories (id bigint PRIMARY KEY, space_id int NOT NULL, embedding real[]);
CREATE INDEX ON memories USING engram_hnsw (space_id, embedding real_l2_ops);
};
$_->safe_psql('postgres', $recipe_shard) for @shards;
$coord->safe_psql('postgres',
	sharded_table_sql('memories', 'id bigint NOT NULL, space_id int NOT NULL, embedding real[]', 'memories_') . q{
INSERT INTO memories SELECT i, i / 1000, vec(i, 128) FROM generate_series(0, 7999) i;
});
$_->safe_psql('postgres', 'VACUUM ANALYZE memories') for @shards;
my $m_lit   = $coord->safe_psql('postgres', 'SELECT vec(100001, 128)::text');
my $m_order = "ORDER BY embedding <-> '$m_lit'::real[] LIMIT 10";
my $m_sp1   = $coord->safe_psql('postgres', 'SELECT min(space_id) FROM memories_1');
my $m_sp2   = $coord->safe_psql('postgres', 'SELECT min(space_id) FROM memories_2');
my $shipped = qr/ORDER BY \(embedding OPERATOR\(public\.<->\) '\{[^']+\}'\) ASC NULLS LAST/;
sub remote_sql
{
	my ($query) = @_;
	my $p = $coord->safe_psql('postgres', "EXPLAIN (VERBOSE, COSTS OFF) $query");
	return ($p, [ $p =~ /Remote SQL: (.*)$/mg ]);
}

# without the coordinator's ANALYZE, postgres_fdw guesses a few rows for one
# space, sorts them locally and ships no ORDER BY: why the recipe has it
my ($p0, $r0) = remote_sql("SELECT id FROM memories WHERE space_id = $m_sp2 $m_order");
ok(@$r0 == 1 && $r0->[0] !~ /ORDER BY/ && $p0 =~ /Sort Key/,
	'recipe before ANALYZE: one space is fetched whole and sorted on the coordinator') or diag($p0);

$coord->safe_psql('postgres', 'ANALYZE memories');
my ($p1, $r1) = remote_sql("SELECT id FROM memories $m_order");
ok($p1 =~ /Merge Append/ && @$r1 == 2 && (grep { /$shipped$/ } @$r1) == 2,
	'recipe: all spaces, each shard receives ORDER BY embedding <-> const (Merge Append)') or diag($p1);
my ($p2, $r2) = remote_sql("SELECT id FROM memories WHERE space_id = $m_sp2 $m_order");
ok(@$r2 == 1 && $r2->[0] =~ /WHERE \(\(space_id = $m_sp2\)\) $shipped$/ && $p2 !~ /Sort Key/,
	'recipe: one space, pruned to its shard, receives WHERE space_id and ORDER BY') or diag($p2);
for my $where ('', "WHERE space_id = $m_sp1 ")
{
	my ($p3, $r3) = remote_sql("SELECT id FROM memories_1 $where$m_order");
	ok(@$r3 == 1 && $r3->[0] =~ /$shipped LIMIT 10::bigint$/ && $p3 !~ /Limit|Sort Key/,
		"recipe: one foreign table ${where}receives ORDER BY ... <-> ... LIMIT 10") or diag($p3);
}
is(ordered_ids($coord, 'postgres', "SELECT id FROM memories WHERE space_id = $m_sp2 $m_order"),
	ordered_ids($shards[1], 'postgres', "SELECT id FROM memories WHERE space_id = $m_sp2 $m_order"),
	'recipe: the coordinator returns the exact answer of the shard');

# where the rows went
my @on_shard = map { $_->safe_psql('postgres', 'SELECT count(*) FROM items') } @shards;
ok($on_shard[0] > 0 && $on_shard[1] > 0 && $on_shard[0] + $on_shard[1] == $NITEMS,
	"the $NITEMS rows inserted through the coordinator are on the shards ($on_shard[0] + $on_shard[1])");
my %space_shard;    # space_id -> 1 or 2
for my $line (split /\n/,
	$coord->safe_psql('postgres', 'SELECT DISTINCT space_id, tableoid::regclass FROM items ORDER BY 1'))
{
	my ($sp, $rel) = split /\|/, $line;
	$space_shard{$sp} .= ($rel =~ /items_shard(\d)/)[0];
}
my @misplaced = grep { length($space_shard{$_} // '') != 1 } 0 .. 7;
is("@misplaced", '', 'every space 0..7 lives on exactly one shard');
my ($sp1) = grep { ($space_shard{$_} // '') eq '1' } 0 .. 7;
my ($sp2) = grep { ($space_shard{$_} // '') eq '2' } 0 .. 7;
ok(defined $sp1 && defined $sp2, 'each shard holds at least one space') or BAIL_OUT('hash placement');
note "spaces on shard1: @{[ grep { $space_shard{$_} eq '1' } 0 .. 7 ]}, on shard2: @{[ grep { $space_shard{$_} eq '2' } 0 .. 7 ]}";

# ---------------------------------------------------------------- plans
my $lit = vec_literal($coord, 100001);
my $knn = "SELECT id FROM items ORDER BY embedding <-> '$lit'::real[] LIMIT 10";
my $plan = $coord->safe_psql('postgres', "EXPLAIN (VERBOSE, COSTS OFF) $knn");
note $plan;
my @remote = $plan =~ /Remote SQL: (.*)$/mg;
like($plan, qr/Limit.*\n.*\n\s*->\s+Merge Append/s, 'all spaces: Limit over a Merge Append on the coordinator');
is(scalar(() = $plan =~ /Foreign Scan on public\.items_shard\d/g), 2, 'all spaces: one Foreign Scan per shard');
is(scalar(grep { /ORDER BY \(embedding OPERATOR\(public\.<->\) '\{[^']+\}'\) ASC NULLS LAST/ } @remote),
	2, 'all spaces: each shard receives ORDER BY embedding <-> const (the operator is shipped)');
note 'PostgreSQL 15 ships no LIMIT below a Merge Append: '
  . (grep({ /LIMIT/ } @remote) ? 'it did here' : 'the remote queries have none');

# without the "extensions" option the operator is not shippable: the shard
# sends every row and the coordinator sorts
{
	my ($host, $port) = ($shards[0]->host, $shards[0]->port);
	my $p = $coord->safe_psql(
		'postgres', qq{
CREATE SERVER shard1_noext FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '$host', port '$port', dbname 'postgres');
CREATE USER MAPPING FOR CURRENT_USER SERVER shard1_noext;
CREATE FOREIGN TABLE items_noext (id int, space_id int, embedding real[]) SERVER shard1_noext OPTIONS (table_name 'items');
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM items_noext ORDER BY embedding <-> '$lit'::real[] LIMIT 10;
DROP SERVER shard1_noext CASCADE;
});
	ok($p =~ /Remote SQL: SELECT id, embedding FROM public\.items\s*$/m && $p =~ /Sort Key/,
		'without extensions \'engram_hnsw\' nothing is shipped: the coordinator sorts all rows') or diag($p);
}

# the same query with one LIMITed subquery per foreign partition
my $knn_union = qq{SELECT id FROM (
	(SELECT id, embedding <-> '$lit'::real[] AS d FROM items_shard1 ORDER BY embedding <-> '$lit'::real[] LIMIT 10)
	UNION ALL
	(SELECT id, embedding <-> '$lit'::real[] AS d FROM items_shard2 ORDER BY embedding <-> '$lit'::real[] LIMIT 10)
) s ORDER BY d LIMIT 10};
my $uplan = $coord->safe_psql('postgres', "EXPLAIN (VERBOSE, COSTS OFF) $knn_union");
note $uplan;
is(scalar(grep { /ORDER BY \(embedding OPERATOR\(public\.<->\) '\{[^']+\}'\) ASC NULLS LAST LIMIT 10\b/ }
		  ($uplan =~ /Remote SQL: (.*)$/mg)),
	2, 'UNION ALL of one subquery per shard: each shard receives ORDER BY ... <-> ... LIMIT 10');
is(ordered_ids($coord, 'postgres', $knn_union), ordered_ids($coord, 'postgres', $knn),
	'UNION ALL form: same answer as the query on the parent');

# each shard plans the remote query (a cursor, as postgres_fdw runs it) with the index
for my $s (1, 2)
{
	my ($sql) = grep { /\S/ } ($plan =~ /Foreign Scan on public\.items_shard$s .*?Remote SQL: ([^\n]*)/s);
	my $splan = $shards[ $s - 1 ]->safe_psql('postgres',
		"BEGIN; SET LOCAL cursor_tuple_fraction = 0.01; SET LOCAL engram_hnsw.ef_search = 200; EXPLAIN (COSTS OFF) DECLARE c CURSOR FOR $sql; COMMIT");
	like($splan, qr/Index Scan using items_ann on items/, "shard$s runs the shipped query as an engram_hnsw index scan")
	  or diag($splan);
}

# ... and really does: index scans counted on the shards, each returning at
# most fetch_size (10) rows
my $stat_q = "SELECT idx_scan || ' ' || idx_tup_read FROM pg_stat_user_indexes WHERE indexrelname = 'items_ann'";
my @before = map { [ split / /, $_->safe_psql('postgres', $stat_q) ] } @shards;
$coord->safe_psql('postgres', "$knn; SELECT postgres_fdw_disconnect_all();");
for my $s (1, 2)
{
	my $shard = $shards[ $s - 1 ];
	$shard->poll_query_until('postgres',
		"SELECT idx_scan > $before[$s-1][0] FROM pg_stat_user_indexes WHERE indexrelname = 'items_ann'")
	  or diag("shard$s: no index scan counted");
	my ($scans, $tups) = split / /, $shard->safe_psql('postgres', $stat_q);
	my ($ds, $dt) = ($scans - $before[ $s - 1 ][0], $tups - $before[ $s - 1 ][1]);
	ok($ds == 1 && $dt > 0 && $dt <= 10,
		"shard$s: one engram_hnsw index scan returning at most fetch_size rows ($ds scans, $dt tuples)");
}

# ---------------------------------------------------------------- pruning
for my $case ([ $sp1, 1 ], [ $sp2, 2 ])
{
	my ($sp, $s) = @$case;
	my $p = $coord->safe_psql('postgres',
		"EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM items WHERE space_id = $sp ORDER BY embedding <-> '$lit'::real[] LIMIT 10");
	my $n = () = $p =~ /Foreign Scan on/g;
	ok($n == 1 && $p =~ /Foreign Scan on public\.items_shard$s\b/,
		"space_id = $sp: one Foreign Scan, on shard$s (partition pruning)") or diag($p);
	like($p, qr/Remote SQL: .*WHERE \(\(space_id = $sp\)\) ORDER BY \(embedding OPERATOR\(public\.<->\)/,
		"space_id = $sp: the space qual and the ORDER BY are shipped");
	my ($sql) = $p =~ /Remote SQL: ([^\n]*)/;
	like($shards[ $s - 1 ]->safe_psql('postgres', "BEGIN; SET LOCAL cursor_tuple_fraction = 0.01; SET LOCAL engram_hnsw.ef_search = 200; EXPLAIN (COSTS OFF) DECLARE c CURSOR FOR $sql; COMMIT"),
		qr/Index Scan using items_ann on items\s+Index Cond: \(space_id = $sp\)/,
		"space_id = $sp: shard$s searches that space's graph only");
}
my $gp = $coord->safe_psql(
	'postgres', qq{
PREPARE knn_space(int, real[]) AS
	SELECT id FROM items WHERE space_id = \$1 ORDER BY embedding <-> \$2 LIMIT 10;
SET plan_cache_mode = force_generic_plan;
EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE knn_space($sp2, '$lit');
});
ok($gp =~ /Subplans Removed: 1/ && (() = $gp =~ /Foreign Scan on/g) == 1,
	'generic prepared plan: run-time pruning leaves one Foreign Scan') or diag($gp);

# ---------------------------------------------------------------- answers
sub compare_answers
{
	my ($label) = @_;
	for my $q (100001, 100002, 100003)
	{
		my $l = vec_literal($coord, $q);
		for my $where ('true', "space_id = $sp1", "space_id = $sp2", "space_id IN ($sp1, $sp2)")
		{
			my $tail   = "WHERE $where ORDER BY embedding <-> '$l'::real[] LIMIT 10";
			my $shard  = ordered_ids($coord, 'postgres', "SELECT id FROM items $tail");
			my $single = ordered_ids($coord, 'postgres', "SELECT id FROM items_one $tail", index => 1);
			my $exact  = ordered_ids($coord, 'postgres', "SELECT id FROM items_one $tail");
			ok($shard eq $single && $shard eq $exact && $shard =~ /^\d+(,\d+){9}$/,
				"$label: vec($q), $where: coordinator = single server = exact ($shard)")
			  or diag("coordinator $shard\nsingle      $single\nexact       $exact");
		}
	}
}
compare_answers('sharded');

# deletes through the coordinator, VACUUM on the shards
$coord->safe_psql('postgres', 'DELETE FROM items WHERE id % 5 = 0; DELETE FROM items_one WHERE id % 5 = 0; VACUUM items_one');
$_->safe_psql('postgres', 'VACUUM items') for @shards;
my $left = 0;
$left += $_->safe_psql('postgres', 'SELECT count(*) FROM items') for @shards;
is($left, $NITEMS / 5 * 4, 'DELETE through the coordinator removed the rows on the shards');
compare_answers('after DELETE + VACUUM');
for my $s (1, 2)
{
	my ($ret, $out, $err) = $shards[ $s - 1 ]->psql('postgres',
		"SELECT elements - deleted_elements = (SELECT count(*) FROM items), unreachable FROM engram_hnsw_check('items_ann')");
	is("$ret|$out", '0|t|0', "shard$s: engram_hnsw_check passes, one live element per row") or diag($err);
}
$_->stop for @shards;
note sprintf('sharding part: %.1f s', time - $t_start);

# ======================================================================
# 2. Read replicas
# ======================================================================
my $primary = new_node('engram_primary', allows_streaming => 1);
$primary->safe_psql('postgres',
	'CREATE EXTENSION engram_hnsw;' . vec_function_sql() . qq{
CREATE TABLE r (id int PRIMARY KEY, space_id int NOT NULL, embedding real[]);
INSERT INTO r SELECT i, i % 4, vec(i, $DIMS) FROM generate_series(1, 2000) i;
CREATE INDEX r_ann ON r $index_sql;
});
$primary->backup('base');
my @standbys;
for my $i (1, 2)
{
	my $sb = PostgreSQL::Test::Cluster->new("engram_standby$i");
	$sb->init_from_backup($primary, 'base', has_streaming => 1);
	$sb->start;
	push @standbys, $sb;
}
$primary->safe_psql(
	'postgres', qq{
DO \$\$
BEGIN
	FOR i IN 2001 .. 2400 LOOP
		INSERT INTO r VALUES (i, i % 4, vec(i, $DIMS));
		COMMIT;
	END LOOP;
END \$\$;
DELETE FROM r WHERE id % 3 = 0;
});
$primary->safe_psql('postgres', 'VACUUM r');
$primary->safe_psql('postgres',
	"INSERT INTO r SELECT i, i % 5, vec(i, $DIMS) FROM generate_series(2401, 2800) i; ANALYZE r");
$primary->wait_for_catchup($_, 'replay', $primary->lsn('insert')) for @standbys;

is(join(',', map { $_->safe_psql('postgres', 'SELECT pg_is_in_recovery()') } @standbys), 't,t',
	'both standbys are in recovery');
my @rq;
for my $q (5, 77, 1234, 2600)
{
	push @rq, "SELECT id FROM r ORDER BY embedding <-> vec($q, $DIMS) LIMIT 10";
	push @rq, "SELECT id FROM r WHERE space_id = 2 ORDER BY embedding <-> vec($q, $DIMS) LIMIT 10";
	push @rq, "SELECT id FROM r WHERE space_id = ANY ('{1,4}') ORDER BY embedding <-> vec($q, $DIMS) LIMIT 10";
}
for my $i (1, 2)
{
	like($standbys[ $i - 1 ]->safe_psql('postgres',
			"SET enable_seqscan = off; EXPLAIN (COSTS OFF) $rq[1]"),
		qr/Index Scan using r_ann on r/, "standby$i plans an engram_hnsw index scan");
}
for my $sql (@rq)
{
	my $p = ordered_ids($primary, 'postgres', $sql, index => 1);
	my @s = map { ordered_ids($_, 'postgres', $sql, index => 1) } @standbys;
	my $exact = ordered_ids($primary, 'postgres', $sql);
	ok($s[0] eq $p && $s[1] eq $p && $p eq $exact && $p =~ /^\d+(,\d+){9}$/,
		"primary = standby1 = standby2 = exact: $sql")
	  or diag("primary $p\nstandby1 $s[0]\nstandby2 $s[1]\nexact $exact");
}

# a client with all three hosts and target_session_attrs=standby
{
	my $connstr = 'host=' . join(',', map { $_->host } ($primary, @standbys))
	  . ' port=' . join(',', map { $_->port } ($primary, @standbys))
	  . ' dbname=postgres target_session_attrs=standby';
	my $out = `psql -XAtq -d '$connstr' -c 'SET enable_seqscan = off' -c 'SET engram_hnsw.ef_search = 200' -c "SELECT pg_is_in_recovery(), (SELECT string_agg(id::text, ',') FROM ($rq[0]) s)"`;
	chomp $out;
	is($out, 't|' . ordered_ids($primary, 'postgres', $rq[0], index => 1),
		'a multi-host connection with target_session_attrs=standby reaches a standby and gets the same answer');
}

my $check_q = 'SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check(\'r_ann\')';
my ($pret, $pout, $perr) = $primary->psql('postgres', $check_q);
is($pret, 0, 'primary: engram_hnsw_check passes') or diag($perr);
for my $i (1, 2)
{
	my ($ret, $out, $err) = $standbys[ $i - 1 ]->psql('postgres', $check_q);
	note "standby$i: engram_hnsw_check: ret $ret, $out$err";
	is($ret, 0, "standby$i: engram_hnsw_check passes") or diag($err);
	is($out, $pout, "standby$i: engram_hnsw_check gives the primary's counts");
}
# a merge writes the index: refused on a standby, with the reason
{
	my ($ret, $out, $err) = $standbys[0]->psql('postgres', "SELECT engram_hnsw_merge_pending('r_ann')",
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	isnt($ret, 0, 'standby1: engram_hnsw_merge_pending is refused');
	like($err, qr/ERROR:\s+55000: recovery is in progress/,
		'... with "recovery is in progress" (55000)');
}
is($standbys[0]->safe_psql('postgres', 'SELECT count(*) FROM r'), $primary->safe_psql('postgres', 'SELECT count(*) FROM r'),
	'standby1 still serves queries');
$_->stop for (@standbys, $primary);
note sprintf('replica part done at %.1f s', time - $t_start);

# ======================================================================
# 3. Declarative partitioning on one server (the coordinator)
# ======================================================================
my $node = $coord;
$node->safe_psql(
	'postgres', qq{
CREATE TABLE pt (id int NOT NULL, space_id int NOT NULL, embedding real[]) PARTITION BY LIST (space_id);
CREATE TABLE pt_0 PARTITION OF pt FOR VALUES IN (0);
CREATE TABLE pt_1 PARTITION OF pt FOR VALUES IN (1);
CREATE TABLE pt_23 PARTITION OF pt FOR VALUES IN (2, 3);
INSERT INTO pt SELECT i, i % 4, vec(i, $DIMS) FROM generate_series(1, 2400) i;
CREATE INDEX pt_ann ON pt $index_sql;
ANALYZE pt;
});

# the leaves of pt and the leaves of pt_ann, with their tables
my $leaves_q = q{SELECT string_agg(relid::regclass::text, ',' ORDER BY relid::regclass::text)
	FROM pg_partition_tree('pt') WHERE isleaf};
my $leaf_idx_q = q{SELECT string_agg(x.indrelid::regclass::text, ',' ORDER BY x.indrelid::regclass::text)
	FROM pg_partition_tree('pt_ann') t JOIN pg_index x ON x.indexrelid = t.relid
	JOIN pg_class c ON c.oid = t.relid JOIN pg_am a ON a.oid = c.relam
	WHERE t.isleaf AND a.amname = 'engram_hnsw'};
is($node->safe_psql('postgres', $leaves_q), 'pt_0,pt_1,pt_23', 'pt has three partitions');
is($node->safe_psql('postgres', $leaf_idx_q), 'pt_0,pt_1,pt_23',
	'CREATE INDEX on the parent: every partition has an engram_hnsw index under pt_ann');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_inherits WHERE inhparent = 'pt_ann'::regclass}),
	3, 'pg_inherits: pt_ann has three child indexes');
is($node->safe_psql('postgres', q{SELECT relkind FROM pg_class WHERE oid = 'pt_ann'::regclass}),
	'I', 'pt_ann itself is a partitioned index');

# engram_hnsw_check on each partition's index: one element per row
sub check_leaves
{
	my ($label) = @_;
	my @idx = split /\n/, $node->safe_psql('postgres', q{
SELECT t.relid::regclass || ' ' || x.indrelid::regclass FROM pg_partition_tree('pt_ann') t
  JOIN pg_index x ON x.indexrelid = t.relid WHERE t.isleaf ORDER BY 1});
	for my $line (@idx)
	{
		my ($idx, $tab) = split / /, $line;
		my ($ret, $out, $err) = $node->psql('postgres',
			"SELECT elements - deleted_elements = (SELECT count(*) FROM $tab), unreachable FROM engram_hnsw_check('$idx')");
		is("$ret|$out", '0|t|0', "$label: engram_hnsw_check('$idx') passes, one element per row of $tab")
		  or diag($err);
	}
}
check_leaves('after CREATE INDEX');

sub pruned_plan_ok
{
	my ($sp, $part) = @_;
	my $p = $node->safe_psql('postgres',
		"SET enable_seqscan = off; EXPLAIN (COSTS OFF) SELECT id FROM pt WHERE space_id = $sp ORDER BY embedding <-> vec(9, $DIMS) LIMIT 10");
	my $n = () = $p =~ /Scan/g;
	ok($n == 1 && $p =~ /Index Scan using \w+ on $part\b/ && $p =~ /Index Cond: \(space_id = $sp\)/,
		"space_id = $sp: one Index Scan, on $part (pruning + index)") or diag($p);
}
pruned_plan_ok(1, 'pt_1');
pruned_plan_ok(2, 'pt_23');

sub exact_answers
{
	my ($label, $from, @wheres) = @_;
	for my $q (100001, 100002, 100003)
	{
		for my $where (@wheres)
		{
			my $sql   = "SELECT id FROM $from WHERE $where ORDER BY embedding <-> vec($q, $DIMS) LIMIT 10";
			my $idx   = ordered_ids($node, 'postgres', $sql, index => 1);
			my $exact = ordered_ids($node, 'postgres', $sql);
			ok($idx eq $exact && $idx =~ /^\d+(,\d+){9}$/, "$label: $from, vec($q), $where: index = exact ($idx)")
			  or diag("index $idx\nexact $exact");
		}
	}
}
exact_answers('partitioned', 'pt', 'true', 'space_id = 1', 'space_id = 3', 'space_id IN (0, 2)');

# ATTACH: a table with a matching index, one without, one with a cosine index
$node->safe_psql(
	'postgres', qq{
CREATE TABLE pt_4 (id int NOT NULL, space_id int NOT NULL, embedding real[]);
INSERT INTO pt_4 SELECT i, 4, vec(i, $DIMS) FROM generate_series(2401, 3000) i;
CREATE INDEX pt_4_own ON pt_4 USING engram_hnsw (space_id, embedding real_l2_ops) WITH (m = 6, ef_construction = 24);
CREATE TABLE pt_5 (id int NOT NULL, space_id int NOT NULL, embedding real[]);
INSERT INTO pt_5 SELECT i, 5, vec(i, $DIMS) FROM generate_series(3001, 3600) i;
CREATE TABLE pt_6 (id int NOT NULL, space_id int NOT NULL, embedding real[]);
INSERT INTO pt_6 SELECT i, 6, vec(i, $DIMS) FROM generate_series(3601, 4200) i;
CREATE INDEX pt_6_cos ON pt_6 USING engram_hnsw (space_id, embedding real_cosine_ops);
ALTER TABLE pt ATTACH PARTITION pt_4 FOR VALUES IN (4);
ALTER TABLE pt ATTACH PARTITION pt_5 FOR VALUES IN (5);
ALTER TABLE pt ATTACH PARTITION pt_6 FOR VALUES IN (6);
ANALYZE pt;
});
is($node->safe_psql('postgres', $leaf_idx_q), 'pt_0,pt_1,pt_23,pt_4,pt_5,pt_6',
	'after ATTACH: every partition has an engram_hnsw index under pt_ann');
is($node->safe_psql('postgres', q{SELECT inhparent::regclass FROM pg_inherits WHERE inhrelid = 'pt_4_own'::regclass}),
	'pt_ann', 'ATTACH of a table with a matching index attaches that index (other m and ef_construction)');
is($node->safe_psql('postgres', q{SELECT array_to_string(reloptions, ',') FROM pg_class WHERE oid = 'pt_4_own'::regclass}),
	'm=6,ef_construction=24', '... which keeps its own options');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_index WHERE indrelid = 'pt_4'::regclass}),
	1, '... and creates no second index');
is($node->safe_psql('postgres', q{
SELECT count(*) FROM pg_index x JOIN pg_inherits i ON i.inhrelid = x.indexrelid
 WHERE x.indrelid = 'pt_5'::regclass AND i.inhparent = 'pt_ann'::regclass}),
	1, 'ATTACH of a table without an index creates one');
is($node->safe_psql('postgres', q{
SELECT string_agg(c.relname || ':' || o.opcname || ':' || coalesce(i.inhparent::regclass::text, 'none'), ','
                  ORDER BY c.relname = 'pt_6_cos' DESC)
  FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
  JOIN pg_opclass o ON o.oid = x.indclass[1]
  LEFT JOIN pg_inherits i ON i.inhrelid = x.indexrelid
 WHERE x.indrelid = 'pt_6'::regclass}) =~ s/pt_6_space_id_embedding_idx\d*/NEW/r,
	'pt_6_cos:real_cosine_ops:none,NEW:real_l2_ops:pt_ann',
	'ATTACH of a table with a cosine index keeps it and creates a matching L2 index');
check_leaves('after ATTACH');
pruned_plan_ok(4, 'pt_4');
pruned_plan_ok(5, 'pt_5');
exact_answers('attached', 'pt', 'space_id = 4', 'space_id = 5', 'space_id = 6', 'true');

# DETACH (plain and CONCURRENTLY)
$node->safe_psql('postgres', 'ALTER TABLE pt DETACH PARTITION pt_1');
$node->safe_psql('postgres', 'ALTER TABLE pt DETACH PARTITION pt_23 CONCURRENTLY');
is($node->safe_psql('postgres', $leaf_idx_q), 'pt_0,pt_4,pt_5,pt_6', 'after DETACH: pt_1 and pt_23 left pt_ann');
is($node->safe_psql('postgres', q{
SELECT count(*) FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid JOIN pg_am a ON a.oid = c.relam
 WHERE x.indrelid IN ('pt_1'::regclass, 'pt_23'::regclass) AND a.amname = 'engram_hnsw'
   AND NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = x.indexrelid)}),
	2, 'the detached tables keep their engram_hnsw indexes, now standalone');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pt WHERE space_id IN (1, 2, 3)'), 0,
	'the parent no longer returns the detached spaces');
$node->safe_psql('postgres',
	"INSERT INTO pt_1 SELECT i, 1, vec(i, $DIMS) FROM generate_series(5001, 5300) i; ANALYZE pt_1");
for my $tab ('pt_1', 'pt_23')
{
	my $idx = $node->safe_psql('postgres', "SELECT indexrelid::regclass FROM pg_index WHERE indrelid = '$tab'::regclass");
	like($node->safe_psql('postgres',
			"SET enable_seqscan = off; EXPLAIN (COSTS OFF) SELECT id FROM $tab ORDER BY embedding <-> vec(9, $DIMS) LIMIT 10"),
		qr/Index Scan using $idx on $tab/, "detached $tab: queries use its index $idx");
	my ($ret, $out, $err) = $node->psql('postgres',
		"SELECT elements - deleted_elements = (SELECT count(*) FROM $tab), unreachable FROM engram_hnsw_check('$idx')");
	is("$ret|$out", '0|t|0', "detached $tab: engram_hnsw_check passes, one element per row") or diag($err);
}
exact_answers('detached', 'pt_1', 'true', 'id > 5000');
exact_answers('detached', 'pt_23', 'space_id = 2');

$node->stop;
note sprintf('total %.1f s', time - $t_start);
done_testing();
