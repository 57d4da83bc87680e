
# Copyright: engram_hnsw authors; PostgreSQL licence.
#
# 001_crash_inserts.pl: crash the server with SIGKILL in the middle of a
# stream of committed single-row inserts, restart it, and check that
#  - crash recovery ran and engram_hnsw_check finds no inconsistency
#    (the number of unreachable elements is printed);
#  - every insert the client saw acknowledged is in the table;
#  - every row of the table is found by an index scan for its own vector
#    (first result, distance 0; engram_hnsw.ef_search = 100);
#  - VACUUM removes the elements of the inserts the crash cut off, and the
#    index still passes both checks afterwards;
#  - inserts after the restart work and are found the same way.
# The kill/restart cycle runs ENGRAM_CRASH_ROUNDS times (default 5), each
# after a random delay (srand(ENGRAM_TAP_SEED), default seed fixed).
#
# Three psql clients insert concurrently: two into t (index built on 1000
# rows by CREATE INDEX), one into u (index created on an empty table, so
# its dimension is fixed by the first insert).  A fourth client runs
# CHECKPOINTs at random moments, so recovery replays records on top of
# full-page images as well as after them.  shared_buffers is small, so the
# buffer manager writes index pages while the stream runs.
#
# "Kill -9 the server" means SIGKILL for the postmaster and every process of
# the cluster (found by their working directory, the data directory), like
# a power cut without losing the OS page cache.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep time);
use FindBin;
use lib $FindBin::RealBin;
use EngramTAP qw(start_node crash_server self_find);

my $seed   = $ENV{ENGRAM_TAP_SEED}     // 20240917;
my $rounds = $ENV{ENGRAM_CRASH_ROUNDS} // 5;
srand($seed);
note "seed $seed, $rounds rounds";

my $node = start_node('engram_crash', shared_buffers => '1MB', checkpoint_timeout => '30s');

# vec(id): 8 pseudo-random values in [-0.5, 0.5), a sin() hash of id and
# position: deterministic, distinct, and spread like random data.  (Smooth
# formulas such as sin(id * w_d + d) put all points on one closed curve;
# on such data HNSW searches miss a few per cent of the rows even on a
# fresh build, which is a property of the data, not of a crash.)
my $dims = 8;
$node->safe_psql(
	'postgres', qq{
CREATE EXTENSION engram_hnsw;
CREATE FUNCTION vec(i int) RETURNS real[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
\$\$ SELECT array_agg((x - floor(x) - 0.5)::real ORDER BY d)
     FROM (SELECT d, sin(i * 12.9898 + d * 78.233) * 43758.5453 AS x
             FROM generate_series(0, $dims - 1) d) s \$\$;
CREATE TABLE t (id int PRIMARY KEY, embedding real[]);
INSERT INTO t SELECT i, vec(i) FROM generate_series(1, 1000) i;
CREATE INDEX t_idx ON t USING engram_hnsw (embedding real_l2_ops)
	WITH (m = 8, ef_construction = 32);
CREATE TABLE u (id int PRIMARY KEY, embedding real[]);
CREATE INDEX u_idx ON u USING engram_hnsw (embedding real_l2_ops)
	WITH (m = 8, ef_construction = 32);
});

my $tmp = PostgreSQL::Test::Utils::tempdir;

# ef_search of the self-find scans: above the default 40 so that the check
# is about lost or unlinked elements, not about the recall of the search.
my $self_find_ef = 100;

# ---------------------------------------------------------------- helpers

# For every row of $table (optionally only WHERE $where): is the first
# result of an index scan for its own vector that row, at distance 0?
# Returns (rows, failures, some failing ids).
sub self_find_exact
{
	my ($table, $where) = @_;
	return self_find($node, $table,
		where => $where, column => 'embedding', ef => $self_find_ef, exact => 1);
}

# engram_hnsw_check on $index: ok() if no error; returns the result row.
sub check_index
{
	my ($index, $what) = @_;
	my ($ret, $out, $err) = $node->psql('postgres',
		"SELECT pages, elements, deleted_elements, heap_tids, max_level, unreachable "
		  . "FROM engram_hnsw_check('$index')");
	ok($ret == 0, "$what: engram_hnsw_check('$index') passes")
	  or diag("engram_hnsw_check('$index') failed: $err");
	my %r;
	@r{qw(pages elements deleted heap_tids max_level unreachable)} =
	  split /\|/, $out;
	note sprintf(
		"%s: %s pages=%s elements=%s deleted=%s heap_tids=%s max_level=%s unreachable=%s",
		$what, $index, map { $_ // '?' }
		  @r{qw(pages elements deleted heap_tids max_level unreachable)});
	return \%r;
}

sub check_self_find
{
	my ($table, $what, $where) = @_;
	my ($rows, $fail, $ids) = self_find_exact($table, $where);
	ok($rows > 0 && $fail == 0,
		"$what: every row of $table is found by its own vector")
	  or diag("$table: $fail of $rows rows not found by their own vector: $ids");
	return $rows;
}

# shared_buffers: $small for the insert streams and crash recovery, 32MB
# for the checks; ALTER SYSTEM, then a clean restart
sub set_shared_buffers
{
	my ($value) = @_;
	$node->safe_psql('postgres', "ALTER SYSTEM SET shared_buffers = '$value'");
	$node->restart;
	return;
}

sub write_script
{
	my ($file, $table, $first, $count) = @_;
	open(my $fh, '>', $file) or die "cannot write $file: $!";
	for my $id ($first .. $first + $count - 1)
	{
		print $fh "INSERT INTO $table (id, embedding) VALUES ($id, vec($id)) RETURNING id;\n";
	}
	close $fh;
	return;
}

sub ids_of
{
	my ($table, $lo, $hi) = @_;
	my %h = map { $_ => 1 } split /\n/,
	  $node->safe_psql('postgres',
		"SELECT id FROM $table WHERE id >= $lo AND id < $hi");
	return \%h;
}

# the self-find query uses the index for the inner scan
my $plan = $node->safe_psql(
	'postgres', qq{
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM t a
  LEFT JOIN LATERAL (SELECT b.id FROM t b ORDER BY b.embedding <-> a.embedding LIMIT 1) n ON true;
});
like($plan, qr/Index Scan using t_idx on t b/, 'self-find query scans the engram_hnsw index');

check_index('t_idx', 'before the stream');
check_self_find('t', 'before the stream');

# ---------------------------------------------------------------- rounds

# per round and stream, ids in [base, base + per_stream)
my $per_stream = 30000;
my @streams = (
	{ table => 't', offset => 0 },
	{ table => 't', offset => 1 },
	{ table => 'u', offset => 2 });
my $total_acked = 0;
my %deleted_before;

for my $round (1 .. $rounds)
{
	my $delay = 0.5 + rand(2.0);
	my $ckpt  = rand($delay);
	my $connstr = $node->connstr('postgres');

	set_shared_buffers('1MB') if $round > 1;
	for my $s (@streams)
	{
		$s->{base} = 100000 * $round + $per_stream * $s->{offset};
		$s->{script} = "$tmp/r${round}_$s->{offset}.sql";
		$s->{out}    = "$tmp/r${round}_$s->{offset}.out";
		$s->{err}    = "$tmp/r${round}_$s->{offset}.err";
		write_script($s->{script}, $s->{table}, $s->{base}, $per_stream);
		$s->{h} = IPC::Run::start(
			[ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $connstr, '-f', $s->{script} ],
			'<', \undef, '>', $s->{out}, '2>', $s->{err});
	}
	my $ck = IPC::Run::start(
		[
			'psql', '-XAtq', '-d', $connstr,
			'-c', sprintf('SELECT pg_sleep(%.3f)', $ckpt),
			'-c', 'CHECKPOINT'
		],
		'<', \undef, '>', "$tmp/ckpt$round.out", '2>', "$tmp/ckpt$round.err");

	usleep(int($delay * 1_000_000));
	crash_server($node);
	$_->{h}->finish for @streams;
	$ck->finish;
	note sprintf("round %d: killed after %.2f s (checkpoint at %.2f s)", $round, $delay, $ckpt);
	# psql exits with 0 only if it ran its whole script: then the kill did
	# not hit that stream
	my $finished_early = grep { $_->{h}->result(0) == 0 } @streams;
	note "round $round: $finished_early stream(s) had finished before the kill"
	  if $finished_early;

	# restart: crash recovery must run
	my $logpos = -s $node->logfile;
	$node->start;
	ok($node->log_contains(qr/database system was interrupted|redo starts at/, $logpos),
		"round $round: restart ran crash recovery");
	set_shared_buffers('32MB');

	# acknowledged inserts survived
	for my $s (@streams)
	{
		my @acked = grep { /^\d+$/ } split /\n/, slurp_file($s->{out});
		my $have = ids_of($s->{table}, $s->{base}, $s->{base} + $per_stream);
		my @lost = grep { !$have->{$_} } @acked;
		$total_acked += @acked;
		note sprintf("round %d stream %d (%s): %d acknowledged, %d rows present",
			$round, $s->{offset}, $s->{table}, scalar(@acked), scalar(keys %$have));
		ok(@acked > 0 && @lost == 0,
			"round $round stream $s->{offset}: every acknowledged insert into $s->{table} survived")
		  or diag(scalar(@acked) . " acknowledged, lost: @lost[0 .. ($#lost < 9 ? $#lost : 9)]");
	}

	for my $tab ('t', 'u')
	{
		check_index("${tab}_idx", "round $round after restart");
		check_self_find($tab, "round $round after restart");
	}

	# the elements of the inserts the crash cut off (if their WAL reached
	# the disk) point at aborted rows: VACUUM removes them.  INDEX_CLEANUP ON:
	# with only a few dead rows a plain VACUUM may skip the indexes (the
	# "bypass index vacuuming" optimisation) and leave their TIDs behind.
	$node->safe_psql('postgres',
		'VACUUM (INDEX_CLEANUP ON) t; VACUUM (INDEX_CLEANUP ON) u;');
	for my $tab ('t', 'u')
	{
		my $r = check_index("${tab}_idx", "round $round after VACUUM");
		my $rows = $node->safe_psql('postgres', "SELECT count(*) FROM $tab");
		is($r->{heap_tids}, $rows,
			"round $round after VACUUM: ${tab}_idx holds one heap TID per row");
		is($r->{unreachable}, 0,
			"round $round after VACUUM: ${tab}_idx has no unreachable live element");
		# the graph changed only if VACUUM deleted elements
		check_self_find($tab, "round $round after VACUUM")
		  if ($r->{deleted} // 0) > ($deleted_before{$tab} // 0);
		$deleted_before{$tab} = $r->{deleted};
	}

	# inserts after the restart work
	my $lo = 100000 * $round + 90000;
	$node->safe_psql('postgres',
		"INSERT INTO t SELECT i, vec(i) FROM generate_series($lo, $lo + 19) i;"
		  . "INSERT INTO u SELECT i, vec(i) FROM generate_series($lo, $lo + 19) i;");
	for my $tab ('t', 'u')
	{
		my ($rows, $fail, $ids) =
		  self_find_exact($tab, "a.id BETWEEN $lo AND $lo + 19");
		ok($rows == 20 && $fail == 0,
			"round $round: rows inserted into $tab after the restart are found")
		  or diag("$tab: $rows rows, $fail not found: $ids");
	}
}

note "$total_acked acknowledged inserts in $rounds rounds";

# a last clean restart: the index is still consistent
$node->restart;
check_index('t_idx', 'after a clean restart');
check_index('u_idx', 'after a clean restart');
check_self_find('t', 'after a clean restart');
check_self_find('u', 'after a clean restart');

$node->stop;
done_testing();
