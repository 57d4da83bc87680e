
# Copyright: engram_hnsw authors; PostgreSQL licence.
#
# 016_merge_worker.pl: the background merge worker (src/hnsw_worker.c).
#  - Writers over their share of the pending list start a worker, which
#    merges while they insert.
#  - SIGKILL of the worker in the middle of its merges: the postmaster
#    restarts the cluster (crash recovery); afterwards engram_hnsw_check is
#    clean, every acknowledged row is in the table and found by its own
#    vector, and new inserts start a new worker that merges again.
#  - A worker behind on several stripes, with idle CPU, starts a helper (a
#    second worker for the index); together they merge everything, and the
#    index is clean with every row found by its own vector.  With
#    max_merge_workers = 2 no helper starts (it would take the last slot),
#    nor when only one stripe is behind.  One session's big INSERT passing
#    its share spreads its rows over stripes, so a helper joins in.
#  - DROP INDEX while the worker runs returns, and the worker goes away.
#  - No worker can start (max_worker_processes used up by the logical
#    replication launcher, or engram_hnsw.max_merge_workers = 0): writers
#    merge themselves.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep time);
use FindBin;
use lib $FindBin::RealBin;
use EngramTAP qw(start_node vec_function_sql self_find check_index);

my $node = start_node('engram_worker', shared_buffers => '32MB', restart_after_crash => 'on');

my $dims = 8;
$node->safe_psql('postgres', 'CREATE EXTENSION engram_hnsw');
$node->safe_psql('postgres', vec_function_sql());

# share per stripe: 64kB / 8 = 8kB, about 100 rows of 8 dimensions
sub make_table
{
	my ($t) = @_;
	$node->safe_psql(
		'postgres', qq{
DROP TABLE IF EXISTS $t;
CREATE TABLE $t (id int PRIMARY KEY, v real[]);
INSERT INTO $t SELECT i, vec(i, $dims) FROM generate_series(1, 1000) i;
CREATE INDEX ${t}_idx ON $t USING engram_hnsw (v) WITH (m = 16, ef_construction = 64,
                                                      pending_list_limit = 64);
});
	return;
}

sub workers
{
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'engram_hnsw merge worker'");
}

# $n clients, each inserting single rows (ids first, first + n, ...) with
# one INSERT ... RETURNING per statement; returns the handles.  The ids a
# client prints are the inserts it saw committed.  Scripts and output go
# through files: the harness is not pumped while the clients run.
my $nscript = 0;
sub start_writers
{
	my ($t, $n, $first, $count) = @_;
	my @w;
	for my $c (0 .. $n - 1)
	{
		my $base = $PostgreSQL::Test::Utils::tmp_check . '/writer_' . $nscript++;
		open(my $fh, '>', "$base.sql") or die "cannot write $base.sql: $!";
		for (my $i = $first + $c; $i < $first + $count; $i += $n)
		{
			print $fh "INSERT INTO $t VALUES ($i, vec($i, $dims)) RETURNING id;\n";
		}
		close $fh;
		my $h = IPC::Run::start(
			[ 'psql', '-XAtq', '-d', $node->connstr('postgres'), '-f', "$base.sql" ],
			'<', \undef, '>', "$base.out", '2>', "$base.err");
		push @w, [ $h, "$base.out" ];
	}
	return @w;
}

# wait for the writers; returns the ids they saw committed
sub finish_writers
{
	my @ids;
	for my $w (@_)
	{
		my ($h, $out) = @$w;
		$h->finish;
		push @ids, grep { /^\d+$/ } split /\n/, slurp_file($out);
	}
	return @ids;
}

sub poll
{
	my ($what, $timeout) = @_;
	my $deadline = time + $timeout;
	while (time < $deadline)
	{
		return 1 if $what->();
		usleep(50_000);
	}
	return 0;
}

# ---- writers start a worker, which merges while they insert
make_table('t');
my @w = start_writers('t', 4, 1001, 4000);
ok(poll(sub { workers() >= 1 }, 60), 'writers over their share started a merge worker');

# ---- SIGKILL the worker while it merges: the cluster restarts
my $pid = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'engram_hnsw merge worker' LIMIT 1");
ok($pid =~ /^\d+$/, "worker pid $pid");
usleep(300_000);
kill 'KILL', $pid;
my @acked = finish_writers(@w);
ok(poll(sub { my ($r) = $node->psql('postgres', 'SELECT 1'); $r == 0 }, 120),
	'the server accepts connections after the worker was killed');
note scalar(@acked) . ' inserts acknowledged before the crash';

my $missing = $node->safe_psql('postgres',
	'SELECT count(*) FROM unnest(ARRAY[' . join(',', @acked, 0) . ']::int[]) a(id)'
	  . ' WHERE a.id > 0 AND NOT EXISTS (SELECT 1 FROM t WHERE t.id = a.id)');
is($missing, 0, 'every acknowledged insert is in the table');
my $r = check_index($node, 't_idx', 't');
ok($r->{ok}, 'engram_hnsw_check passes after the crash') or diag $r->{error};
note "unreachable after the crash: " . ($r->{unreachable} // '?') . ", pending: "
  . $node->safe_psql('postgres', "SELECT pending FROM engram_hnsw_check('t_idx')");
my ($rows, $lost, $ids) = self_find($node, 't', exact => 1);
is($lost, 0, "every row ($rows) is found by its own vector after the crash")
  or diag "not found: $ids; with ef_search 1000: "
  . $node->safe_psql('postgres', "SET enable_seqscan = off; SET engram_hnsw.ef_search = 1000; "
	  . "SELECT string_agg(a.id || '->' || (SELECT b.id FROM t b ORDER BY b.v <-> a.v LIMIT 1), ',') "
	  . "FROM t a WHERE a.id IN ($ids)");

# ---- after the restart, new inserts start a new worker that merges them
@w = start_writers('t', 2, 10001, 600);
ok(poll(sub { workers() >= 1 }, 60), 'a new worker runs after the restart');
finish_writers(@w);
ok(poll(sub { $node->safe_psql('postgres',
			"SELECT pending < 400 FROM engram_hnsw_check('t_idx')") eq 't' }, 60),
	'it merged the new rows');
$r = check_index($node, 't_idx', 't');
ok($r->{ok} && $r->{unreachable} == 0, 'the index is clean, nothing unreachable')
  or diag $r->{error};
($rows, $lost, $ids) = self_find($node, 't', exact => 1);
is($lost, 0, "every row ($rows) is found by its own vector") or diag "not found: $ids";
ok(poll(sub { workers() == 0 }, 60), 'an idle worker exits');

# ---- a worker behind on several stripes starts a helper
# merge_helper_idle_cpus = 0: whatever the machine does meanwhile.  A table
# with a space column: its rows go to the stripe of their space, so one
# INSERT fills all 8 stripes.  Left pending under a large limit, then the
# limit is lowered and a scan starts worker 0, which finds every stripe over
# its share; each stripe (4 000 rows of 64 dimensions, ef_construction 200)
# takes it about a second, so it is behind for longer than the 0.5 s after
# which it asks for help.
$node->safe_psql('postgres', "LOAD 'engram_hnsw';\n"
	  . "ALTER SYSTEM SET engram_hnsw.merge_helper_idle_cpus = 0;");
$node->reload;
$node->safe_psql(
	'postgres', q{
CREATE TABLE h (id int PRIMARY KEY, s int, v real[]);
CREATE INDEX h_idx ON h USING engram_hnsw (s, v) WITH (m = 16, ef_construction = 200,
                                                     pending_list_limit = 2000000);
INSERT INTO h SELECT i, i % 8, vec(i, 64) FROM generate_series(1, 32000) i;
ALTER INDEX h_idx SET (pending_list_limit = 64);
});
is($node->safe_psql('postgres', "SELECT pending FROM engram_hnsw_check('h_idx')"), '32000',
	'32 000 rows wait in the pending lists');
$node->safe_psql('postgres',
	'SELECT count(*) FROM (SELECT id FROM h WHERE s = 1 ORDER BY v <-> vec(5, 64) LIMIT 5) x');
ok(poll(sub { workers() >= 2 }, 60), 'the worker started a helper');
ok(poll(sub { workers() == 0 }, 120), 'both finished and exited');
is($node->safe_psql('postgres', "SELECT pending FROM engram_hnsw_check('h_idx')"), '0',
	'everything is merged');
$r = check_index($node, 'h_idx', 'h');
ok($r->{ok} && $r->{unreachable} == 0, 'the index is clean, nothing unreachable')
  or diag $r->{error};
$lost = $node->safe_psql(
	'postgres', q{
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT count(*) FROM h a
 WHERE a.id % 8 < 2
   AND NOT EXISTS (SELECT 1 FROM (SELECT b.id FROM h b WHERE b.s = a.s
                                   ORDER BY b.v <-> a.v LIMIT 1) b WHERE b.id = a.id)});
is($lost, 0, 'every row of two spaces is found first by its own vector');

# the same backlog with max_merge_workers = 2: a helper would leave no slot
# free for another index's worker, so none starts and worker 0 merges alone
$node->safe_psql('postgres', "LOAD 'engram_hnsw';\n"
	  . "ALTER SYSTEM SET engram_hnsw.max_merge_workers = 2;");
$node->reload;
$node->safe_psql(
	'postgres', q{
TRUNCATE h;
ALTER INDEX h_idx SET (pending_list_limit = 2000000);
INSERT INTO h SELECT i, i % 8, vec(i, 64) FROM generate_series(1, 32000) i;
ALTER INDEX h_idx SET (pending_list_limit = 64);
SELECT count(*) FROM (SELECT id FROM h WHERE s = 1 ORDER BY v <-> vec(5, 64) LIMIT 5) x;
});
my $most = 0;
ok(poll(sub { my $w = workers(); $most = $w if $w > $most; $most > 0 && $w == 0 }, 120),
	'max_merge_workers = 2: the worker ran and exited');
is($most, 1, 'and started no helper');
is($node->safe_psql('postgres', "SELECT pending FROM engram_hnsw_check('h_idx')"), '0',
	'it merged everything alone');
$node->safe_psql('postgres', "LOAD 'engram_hnsw';\n"
	  . "ALTER SYSTEM RESET engram_hnsw.max_merge_workers;");
$node->reload;

# one stripe behind (no space column, rows from one session): two mergers
# never merge one stripe, so no helper starts however long worker 0 merges
$node->safe_psql(
	'postgres', q{
CREATE TABLE o (id int PRIMARY KEY, v real[]);
CREATE INDEX o_idx ON o USING engram_hnsw (v) WITH (m = 16, ef_construction = 200,
                                                  pending_list_limit = 2000000);
INSERT INTO o SELECT i, vec(i, 64) FROM generate_series(1, 8000) i;
ALTER INDEX o_idx SET (pending_list_limit = 64);
SELECT count(*) FROM (SELECT id FROM o ORDER BY v <-> vec(5, 64) LIMIT 5) x;
});
$most = 0;
ok(poll(sub { my $w = workers(); $most = $w if $w > $most; $most > 0 && $w == 0 }, 120),
	'one stripe behind: the worker ran and exited');
is($most, 1, 'and started no helper');
is($node->safe_psql('postgres', "SELECT pending FROM engram_hnsw_check('o_idx')"), '0',
	'it merged everything alone');

# one statement from one session, with the limit low from the start: its
# rows pass their stripe's share while it runs, so it moves on to the next
# stripe (move_on() in src/hnsw_pending.c), and a helper merges beside
# worker 0.  The vectors are computed beforehand, so that the statement
# stores rows much faster than worker 0 merges them.
$node->safe_psql(
	'postgres', q{
CREATE TABLE s1_rows AS SELECT i AS id, vec(i, 64) AS v FROM generate_series(1, 16000) i;
CREATE TABLE s1 (id int PRIMARY KEY, v real[]);
CREATE INDEX s1_idx ON s1 USING engram_hnsw (v) WITH (m = 16, ef_construction = 200,
                                                    pending_list_limit = 64);
});
# Whether worker 0 falls behind long enough depends on how the two cores
# are shared at the time (it failed once in a loaded CI run): up to three
# tries, each from an empty table.  With every row in one stripe no try
# can get a helper (see the case above).
my ($tries, $inserted) = (0, 1);
$most = 0;
while ($most < 2 && $tries < 3)
{
	$tries++;
	$node->safe_psql('postgres', 'TRUNCATE s1') if $tries > 1;
	my $base = $PostgreSQL::Test::Utils::tmp_check . "/one_statement_$tries";
	my $h = IPC::Run::start(
		[ 'psql', '-XAtq', '-d', $node->connstr('postgres'), '-c',
		  'INSERT INTO s1 SELECT id, v FROM s1_rows' ],
		'<', \undef, '>', "$base.out", '2>', "$base.err");
	poll(sub { my $w = workers(); $most = $w if $w > $most; $most >= 2 }, 40);
	$h->finish;
	if ($h->result(0) != 0)
	{
		$inserted = 0;
		diag slurp_file("$base.err");
	}
	# the stripes left over their share are merged after the statement
	poll(sub { my $w = workers(); $most = $w if $w > $most; $most >= 2 || $w == 0 }, 60)
	  if $most < 2;
}
ok($inserted, 'one session inserted 16 000 rows in one statement');
is($most, 2, "its rows went to more than one stripe: a helper merged beside worker 0 ($tries tries)");
ok(poll(sub { workers() == 0 }, 120), 'both finished and exited');
$r = check_index($node, 's1_idx', 's1');
ok($r->{ok} && $r->{unreachable} == 0, 'the index is clean, nothing unreachable')
  or diag $r->{error};
# ef_search 400: these random 64-dimension rows are hard to find (a bulk
# build of the same 16 000 rows missed 4 at ef_search 100, none at 200)
($rows, $lost, $ids) = self_find($node, 's1', exact => 1, ef => 400, where => 'a.id % 4 = 0');
is($lost, 0, "every fourth row ($rows) is found first by its own vector")
  or diag "not found: $ids";

$node->safe_psql('postgres', "LOAD 'engram_hnsw';\n"
	  . "ALTER SYSTEM RESET engram_hnsw.merge_helper_idle_cpus;");
$node->reload;

# ---- DROP INDEX while the worker runs
make_table('d');
@w = start_writers('d', 4, 1001, 2000);
ok(poll(sub { workers() >= 1 }, 60), 'a worker runs for the second index');
my ($ret, $out, $err) = $node->psql('postgres',
	"SET statement_timeout = '60s'; DROP INDEX d_idx;");
is($ret, 0, 'DROP INDEX returns while the worker runs') or diag $err;
finish_writers(@w);
ok(poll(sub { workers() == 0 }, 60), 'the worker goes away with its index');
is($node->safe_psql('postgres', 'SELECT count(*) >= 1000 FROM d'), 't', 'the table is intact');

# ---- no worker can start: writers merge themselves
$node->safe_psql('postgres', "LOAD 'engram_hnsw';\nALTER SYSTEM SET engram_hnsw.max_merge_workers = 0;");
$node->reload;
make_table('n');
# 150 rows from one session: over its stripe's share, under the 4 shares at
# which a writer with a worker would pause or merge itself
$node->safe_psql('postgres',
	"INSERT INTO n SELECT i, vec(i, $dims) FROM generate_series(1001, 1150) i");
is($node->safe_psql('postgres', "SELECT pending < 100 FROM engram_hnsw_check('n_idx')"), 't',
	'max_merge_workers = 0: the writer merged itself');
is(workers(), 0, 'and started no worker');

$node->safe_psql('postgres', "LOAD 'engram_hnsw';\nALTER SYSTEM RESET engram_hnsw.max_merge_workers;");
$node->append_conf('postgresql.conf', "max_worker_processes = 1\n");
$node->restart;
make_table('x');
$node->safe_psql('postgres',
	"INSERT INTO x SELECT i, vec(i, $dims) FROM generate_series(1001, 1150) i");
is($node->safe_psql('postgres', "SELECT pending < 100 FROM engram_hnsw_check('x_idx')"), 't',
	'max_worker_processes used up: the writer merged itself');
is(workers(), 0, 'no worker could start');
$r = check_index($node, 'x_idx', 'x');
ok($r->{ok} && $r->{unreachable} == 0, 'that index is clean') or diag $r->{error};

$node->stop;
done_testing();
