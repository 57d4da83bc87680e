
# Copyright: engram_hnsw authors; PostgreSQL licence.
#
# 011_crash_rounds.pl: kill -9 the server at random moments (seeded) during
# the three kinds of write an engram_hnsw index sees, restart it and check
# that nothing committed is lost:
#
#  build  CREATE INDEX on a 12000-row table (about a second), alternately
#         plain, CONCURRENTLY, and with maintenance_work_mem = 1MB (the
#         build spills from its in-memory graph to on-page inserts).  The
#         table asks for one parallel worker (parallel_workers = 1), so the
#         plain and CONCURRENTLY builds are parallel builds (the kill can
#         land in a worker's insertion into the shared graph or in the
#         leader's page writing), and the 1MB one gives up its parallel
#         attempt before spilling.  After
#         the restart the index must be absent (plain build: its transaction
#         died) or invalid (CONCURRENTLY), or, if the kill came after the
#         build had finished, valid and complete.  DROP + CREATE (absent) or
#         REINDEX (invalid) must give a valid index.
#  insert two streams of single-row INSERTs into one table, plus a CHECKPOINT
#         at a random moment (the kill delay counts from the first
#         acknowledged insert of each stream); every insert the client saw
#         acknowledged must be there afterwards.
#  vacuum a loop of DELETE 10% / INSERT as many / VACUUM (INDEX_CLEANUP ON),
#         killed mostly inside VACUUM; acknowledged inserts must be there,
#         acknowledged deletes gone.
#  merge  2500 rows wait in the pending list (fastupdate, a limit too large
#         to merge on its own); engram_hnsw_merge_pending() runs while a
#         stream of single-row INSERTs goes on, and the kill comes during
#         the merge.  Acknowledged inserts must be there, and after the
#         restart a merge must finish the job: nothing pending, check clean.
#  (The insert rounds go through the pending list too: fastupdate is on by
#  default, and the limit makes inserts merge now and then.)
#
# After every restart: crash recovery ran; engram_hnsw_check passes on every
# index (if it reports live elements linking to deleted ones, which a crash
# between VACUUM's two passes leaves behind, its hint says to VACUUM: the
# test does so and checks again, and counts these repairs); every row of
# the table of the round is found by an index scan for its own vector among
# the first 5 results (8 dimensions, m = 16, ef_construction = 64,
# engram_hnsw.ef_search = 100: this is about durability, not recall).
# "rows lost" adds acknowledged rows missing from the table and rows the
# index cannot find; it must be 0.
#
# Rounds (default 7 + 8 + 7 + 6 = 28): ENGRAM_CRASH_BUILD_ROUNDS,
# ENGRAM_CRASH_INSERT_ROUNDS, ENGRAM_CRASH_VACUUM_ROUNDS,
# ENGRAM_CRASH_MERGE_ROUNDS; seed:
# ENGRAM_TAP_SEED.  The kill delays are seeded; the graph itself is not
# (levels come from the backend's random generator), so a failure is
# reproduced by the seed only in the timing of the kills.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use EngramTAP;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

my $seed = $ENV{ENGRAM_TAP_SEED} // 20240917;
my $nbuild  = $ENV{ENGRAM_CRASH_BUILD_ROUNDS}  // 7;
my $ninsert = $ENV{ENGRAM_CRASH_INSERT_ROUNDS} // 8;
my $nvacuum = $ENV{ENGRAM_CRASH_VACUUM_ROUNDS} // 7;
my $nmerge  = $ENV{ENGRAM_CRASH_MERGE_ROUNDS}  // 6;
srand($seed);
note "seed $seed; rounds: $nbuild build, $ninsert insert, $nvacuum vacuum, $nmerge merge";
my $t_start = time;

my $node = start_node('engram_crash_rounds', shared_buffers => '16MB', checkpoint_timeout => '30s',
	log_min_messages => 'warning', statement_timeout => "'10min'");

my $opts = 'WITH (m = 16, ef_construction = 64)';
my $build_rows = 12000;
$node->safe_psql('postgres',
	'CREATE EXTENSION engram_hnsw;' . vec_function_sql() . qq{
CREATE TABLE b (id int PRIMARY KEY, v real[]);
INSERT INTO b SELECT i, vec(i, 8) FROM generate_series(1, $build_rows) i;
ALTER TABLE b SET (parallel_workers = 1);
CREATE TABLE s (id int PRIMARY KEY, v real[]);
INSERT INTO s SELECT i, vec(i, 8) FROM generate_series(1, 2000) i;
CREATE INDEX s_idx ON s USING engram_hnsw (v real_l2_ops) $opts;
CREATE TABLE d (id int PRIMARY KEY, v real[]);
INSERT INTO d SELECT i, vec(i, 8) FROM generate_series(1, 6000) i;
CREATE INDEX d_idx ON d USING engram_hnsw (v real_l2_ops) $opts;
CREATE TABLE m (id int PRIMARY KEY, v real[]);
INSERT INTO m SELECT i, vec(i, 8) FROM generate_series(1, 4000) i;
CREATE INDEX m_idx ON m USING engram_hnsw (v real_l2_ops)
	WITH (m = 16, ef_construction = 64, pending_list_limit = 1000000);
VACUUM ANALYZE;
});

my $tmp = PostgreSQL::Test::Utils::tempdir;
my %counts = (rounds => 0, lost => 0, acked => 0, vacuum_repairs => 0,
	absent => 0, invalid => 0, finished => 0);

# ---------------------------------------------------------------- helpers

# engram_hnsw_check on every index of the tables
sub check_all
{
	my ($what) = @_;
	for my $x ([ 's_idx', 's' ], [ 'd_idx', 'd' ], [ 'b_idx', 'b' ], [ 'm_idx', 'm' ])
	{
		my ($index, $table) = @$x;
		my $exists = $node->safe_psql('postgres',
			"SELECT count(*) FROM pg_index WHERE indexrelid = to_regclass('$index') AND indisvalid");
		next unless $exists;
		my $r = check_index($node, $index, $table);
		$counts{vacuum_repairs}++ if $r->{vacuumed};
		ok($r->{ok}, "$what: engram_hnsw_check('$index') passes"
			  . ($r->{vacuumed} ? ' after the VACUUM its hint asks for' : ''))
		  or diag($r->{error});
		note sprintf("%s: %s elements=%s deleted=%s heap_tids=%s unreachable=%s%s",
			$what, $index, map({ $_ // '?' } @$r{qw(elements deleted heap_tids unreachable)}),
			$r->{vacuumed} ? " (VACUUM was needed: $r->{first_error})" : '');
	}
	return;
}

sub check_self_find
{
	my ($table, $what) = @_;
	my ($rows, $missing, $ids) = self_find($node, $table);
	$counts{lost} += $missing;
	ok($rows > 0 && $missing == 0,
		"$what: every row of $table is among the 5 nearest to its own vector")
	  or diag("$table: $missing of $rows rows not found: $ids");
	return;
}

# kill, restart, check that crash recovery ran
sub crash_and_restart
{
	my ($what) = @_;
	crash_server($node);
	my $logpos = -s $node->logfile;
	$node->start;
	$counts{rounds}++;
	ok($node->log_contains(qr/database system was interrupted|redo starts at/, $logpos),
		"$what: restart ran crash recovery");
	return;
}

sub start_psql
{
	my ($name, @args) = @_;
	my $h = IPC::Run::start(
		[ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'), @args ],
		'<', \undef, '>', "$tmp/$name.out", '2>', "$tmp/$name.err");
	return $h;
}

sub lines_of
{
	my $file = shift;
	return () unless -e $file;
	return grep { /^-?\d+$/ } split /\n/, slurp_file($file);
}

# ids of $table among @ids
sub present
{
	my ($table, @ids) = @_;
	return {} unless @ids;
	my %h = map { $_ => 1 } split /\n/,
	  $node->safe_psql('postgres',
		"SELECT id FROM $table WHERE id = ANY ('{" . join(',', @ids) . "}'::int[])");
	return \%h;
}

# the acknowledged inserts @ids into $table all survived the crash (counted
# in %counts)
sub acked_survived
{
	my ($what, $table, @ids) = @_;
	my $have = present($table, @ids);
	my $lost = grep { !$have->{$_} } @ids;
	$counts{acked} += @ids;
	$counts{lost}  += $lost;
	ok($lost == 0, sprintf("%s: all %d acknowledged inserts survived", $what, scalar @ids))
	  or diag("$lost acknowledged inserts lost");
	return;
}

# ---------------------------------------------------------------- baseline

# the self-find query uses the index for the inner scan
my $plan = $node->safe_psql(
	'postgres', q{
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT a.id FROM s a CROSS JOIN LATERAL
  (SELECT b.id FROM s b ORDER BY b.v <-> a.v LIMIT 5) x;
});
like($plan, qr/Index Scan using s_idx on s b/, 'the self-find query scans the engram_hnsw index');

# build times of the three variants (the kill delays are drawn below them)
my %variant = (
	plain      => { sql => "CREATE INDEX b_idx ON b USING engram_hnsw (v real_l2_ops) $opts" },
	concurrent => { sql => "CREATE INDEX CONCURRENTLY b_idx ON b USING engram_hnsw (v real_l2_ops) $opts" },
	spill      => { sql => "SET maintenance_work_mem = '1MB'; CREATE INDEX b_idx ON b USING engram_hnsw (v real_l2_ops) $opts",
		mwm => 1 });
for my $name (qw(plain concurrent spill))
{
	my $t0 = time;
	my ($ret, $out, $err) = $node->psql('postgres', $variant{$name}{sql});
	$variant{$name}{time} = time - $t0;
	is($ret, 0, "baseline: $name build succeeds") or diag($err);
	like($err, qr/no longer fits into maintenance_work_mem/, 'baseline: the 1MB build spills')
	  if $name eq 'spill';
	note sprintf("baseline: %s build of %d rows takes %.2f s", $name, $build_rows,
		$variant{$name}{time});
	if ($name eq 'plain')
	{
		check_all('baseline');
		check_self_find('b', 'baseline (fresh build)');
	}
	$node->safe_psql('postgres', 'DROP INDEX b_idx');
}

# ---------------------------------------------------------------- build rounds

my @vorder = qw(plain concurrent spill);
for my $round (1 .. $nbuild)
{
	my $name  = $vorder[ ($round - 1) % 3 ];
	my $v     = $variant{$name};
	my $delay = 0.05 + rand(0.9 * $v->{time});
	my $what  = "build round $round ($name, kill after ${\ sprintf('%.2f', $delay)} s)";
	my $h     = start_psql("build$round", '-c', $v->{sql});
	usleep(int($delay * 1_000_000));
	crash_and_restart($what);
	$h->finish;

	my $state = $node->safe_psql('postgres', q{
SELECT coalesce((SELECT CASE WHEN indisvalid THEN 'valid' ELSE 'invalid' END
                   FROM pg_index WHERE indexrelid = to_regclass('b_idx')), 'absent')});
	note "$what: after the restart b_idx is $state";
	$counts{$state eq 'valid' ? 'finished' : $state}++;
	if ($name eq 'concurrent')
	{
		ok($state eq 'invalid' || $state eq 'valid' || $state eq 'absent',
			"$what: b_idx is invalid, absent or finished ($state)");
	}
	else
	{
		ok($state eq 'absent' || $state eq 'valid',
			"$what: b_idx is absent or finished ($state)");
	}
	if ($state eq 'invalid')
	{
		# an invalid index must not be used by queries
		my $p = $node->safe_psql('postgres', q{
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM b ORDER BY v <-> vec(1, 8) LIMIT 5});
		unlike($p, qr/b_idx/, "$what: the planner does not use the invalid index");
		my ($ret, $out, $err) = $node->psql('postgres', 'REINDEX INDEX b_idx');
		is($ret, 0, "$what: REINDEX of the invalid index succeeds") or diag($err);
	}
	elsif ($state eq 'absent')
	{
		my ($ret, $out, $err) = $node->psql('postgres',
			"CREATE INDEX b_idx ON b USING engram_hnsw (v real_l2_ops) $opts");
		is($ret, 0, "$what: CREATE INDEX again succeeds") or diag($err);
	}
	is($node->safe_psql('postgres',
			"SELECT indisvalid FROM pg_index WHERE indexrelid = 'b_idx'::regclass"),
		't', "$what: b_idx is valid now");
	check_all($what);
	check_self_find('b', $what);
	$node->safe_psql('postgres', 'DROP INDEX b_idx') if $round < $nbuild;
}

# ---------------------------------------------------------------- insert rounds

my $per_stream = 4000;
for my $round (1 .. $ninsert)
{
	my $delay = 0.3 + rand(1.7);
	my $ckpt  = rand($delay);
	my $what  = sprintf("insert round %d (kill after %.2f s, CHECKPOINT at %.2f s)",
		$round, $delay, $ckpt);
	my @streams;
	for my $k (0, 1)
	{
		my $base = 100_000 * $round + 10_000 * $k;
		my $file = "$tmp/ins${round}_$k.sql";
		open(my $fh, '>', $file) or die "cannot write $file: $!";
		print $fh "INSERT INTO s VALUES ($_, vec($_, 8)) RETURNING id;\n"
		  for $base .. $base + $per_stream - 1;
		close $fh;
		push @streams, { base => $base, name => "ins${round}_$k",
			h => start_psql("ins${round}_$k", '-f', $file) };
	}
	# the kill delay counts from the first acknowledged insert of each
	# stream (on a loaded machine, or behind a merge, the first insert may
	# take a while, and a round with nothing acknowledged tests nothing)
	my $wait_until = time + 120;
	for my $st (@streams)
	{
		usleep(20_000) while time < $wait_until && !lines_of("$tmp/$st->{name}.out");
	}
	my $ck = start_psql("ckpt$round", '-c', sprintf('SELECT pg_sleep(%.3f)', $ckpt),
		'-c', 'CHECKPOINT');
	usleep(int($delay * 1_000_000));
	crash_and_restart($what);
	$_->{h}->finish for @streams;
	$ck->finish;

	my ($acked, $lost) = (0, 0);
	for my $st (@streams)
	{
		my @ids = lines_of("$tmp/$st->{name}.out");
		my $have = present('s', @ids);
		$acked += @ids;
		$lost  += grep { !$have->{$_} } @ids;
		my $finished = $st->{h}->result(0) == 0;
		note "$what: a stream had finished its script before the kill" if $finished;
	}
	$counts{acked} += $acked;
	$counts{lost}  += $lost;
	ok($acked > 0 && $lost == 0, "$what: all $acked acknowledged inserts survived")
	  or diag("$lost of $acked acknowledged inserts lost");
	check_all($what);
	check_self_find('s', $what);
}

# ---------------------------------------------------------------- vacuum rounds

my $next_id = 1_000_000;
for my $round (1 .. $nvacuum)
{
	my $delay = 0.3 + rand(1.7);
	my $what  = sprintf("vacuum round %d (kill after %.2f s)", $round, $delay);
	my @cur = split /\n/, $node->safe_psql('postgres', 'SELECT id FROM d ORDER BY id');
	my $batch = int(@cur / 10);
	my $file = "$tmp/vac$round.sql";
	open(my $fh, '>', $file) or die "cannot write $file: $!";
	# delete the oldest 10%, insert as many, VACUUM; ten times
	for my $k (0 .. 9)
	{
		my @del = @cur[ $k * $batch .. ($k + 1) * $batch - 1 ];
		last unless @del && defined $del[-1];
		printf $fh "DELETE FROM d WHERE id BETWEEN %d AND %d RETURNING -id;\n", $del[0], $del[-1];
		printf $fh "INSERT INTO d SELECT i, vec(i, 8) FROM generate_series(%d, %d) i RETURNING id;\n",
		  $next_id, $next_id + $batch - 1;
		print $fh "VACUUM (INDEX_CLEANUP ON) d;\n";
		$next_id += $batch;
	}
	close $fh;
	my $h = start_psql("vac$round", '-f', $file);
	usleep(int($delay * 1_000_000));
	crash_and_restart($what);
	$h->finish;

	my @acks = lines_of("$tmp/vac$round.out");
	my @ins  = grep { $_ > 0 } @acks;
	my @del  = map { -$_ } grep { $_ < 0 } @acks;
	acked_survived($what, 'd', @ins);
	my $have_del = present('d', @del);
	is(scalar(keys %$have_del), 0,
		sprintf("%s: all %d acknowledged deletes stay deleted", $what, scalar @del));
	note sprintf("%s: %d rows inserted, %d deleted before the kill", $what, scalar @ins, scalar @del);
	check_all($what);
	check_self_find('d', $what);
}

# ---------------------------------------------------------------- merge rounds

my $merge_id = 5_000_000;
my $merge_time;
for my $round (0 .. $nmerge)
{
	# 2500 rows into the pending list
	$node->safe_psql('postgres', sprintf(
		'INSERT INTO m SELECT i, vec(i, 8) FROM generate_series(%d, %d) i',
		$merge_id, $merge_id + 2499));
	$merge_id += 2500;
	my $pending = $node->safe_psql('postgres', "SELECT pending FROM engram_hnsw_check('m_idx')");
	if ($round == 0)
	{
		# baseline: how long a merge of that many takes (kills fall inside it)
		my $t0 = time;
		my $merged = $node->safe_psql('postgres', "SELECT engram_hnsw_merge_pending('m_idx')");
		$merge_time = time - $t0;
		cmp_ok($merged, '>=', 2500, "baseline: the merge links the $pending pending rows ($merged)");
		is($node->safe_psql('postgres', "SELECT pending FROM engram_hnsw_check('m_idx')"), '0',
			'baseline: nothing pending after the merge');
		note sprintf("baseline: merging %d pending rows takes %.2f s", $pending, $merge_time);
		next;
	}
	my $delay = 0.05 + rand(0.9 * $merge_time);
	my $what  = sprintf("merge round %d (%d pending, kill after %.2f s)", $round, $pending, $delay);
	my $file  = "$tmp/mins$round.sql";
	open(my $fh, '>', $file) or die "cannot write $file: $!";
	print $fh "INSERT INTO m VALUES ($_, vec($_, 8)) RETURNING id;\n"
	  for $merge_id .. $merge_id + 1999;
	close $fh;
	$merge_id += 2000;
	my $mh = start_psql("merge$round", '-c', "SELECT engram_hnsw_merge_pending('m_idx')");
	my $ih = start_psql("mins$round", '-f', $file);
	usleep(int($delay * 1_000_000));
	crash_and_restart($what);
	$mh->finish;
	$ih->finish;

	my @ids = lines_of("$tmp/mins$round.out");
	acked_survived($what, 'm', @ids);
	my $left = $node->safe_psql('postgres', "SELECT pending FROM engram_hnsw_check('m_idx')");
	note "$what: $left rows still pending after the restart";
	check_all($what);
	check_self_find('m', "$what, before merging again");
	my ($ret, $out, $err) = $node->psql('postgres', "SELECT engram_hnsw_merge_pending('m_idx')");
	is($ret, 0, "$what: a merge after the restart succeeds") or diag($err);
	is($node->safe_psql('postgres', "SELECT pending FROM engram_hnsw_check('m_idx')"), '0',
		"$what: nothing pending after it");
	check_all("$what, merged again");
	check_self_find('m', "$what, merged again");
}

# ---------------------------------------------------------------- the end

$node->restart;
check_all('after a clean restart');
check_self_find($_, 'after a clean restart') for qw(b s d m);

is($counts{lost}, 0, "rows lost over $counts{rounds} crash rounds: $counts{lost}");
cmp_ok($counts{rounds}, '>=', 20, "at least 20 crash rounds ($counts{rounds})")
  unless defined $ENV{ENGRAM_CRASH_BUILD_ROUNDS}
  || defined $ENV{ENGRAM_CRASH_INSERT_ROUNDS}
  || defined $ENV{ENGRAM_CRASH_VACUUM_ROUNDS}
  || defined $ENV{ENGRAM_CRASH_MERGE_ROUNDS};
diag sprintf(
	"crash rounds survived: %d (build %d: %d absent, %d invalid, %d finished; insert %d; vacuum %d; merge %d); "
	  . "acknowledged rows checked: %d; VACUUM repairs after the check's hint: %d; rows lost: %d; %.0f s",
	$counts{rounds}, $nbuild, $counts{absent}, $counts{invalid}, $counts{finished},
	$ninsert, $nvacuum, $nmerge, $counts{acked}, $counts{vacuum_repairs}, $counts{lost}, time - $t_start);

$node->stop;
done_testing();
