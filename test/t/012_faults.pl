
# Copyright: engram_hnsw authors; PostgreSQL licence.
#
# 012_faults.pl: statements of engram_hnsw that are cut short, starved of
# memory or of disk leave a usable table and index.
#
#  1. statement_timeout during CREATE INDEX (plain, CONCURRENTLY, and with
#     maintenance_work_mem = 1MB, where the build spills to on-page
#     inserts): the statement ends with 57014; afterwards the index is
#     absent (plain) or invalid (CONCURRENTLY), and CREATE INDEX / REINDEX
#     gives an index that passes engram_hnsw_check and finds rows.
#  2. pg_cancel_backend during CREATE INDEX, sent from a server-side loop the
#     moment pg_stat_progress_create_index shows each build phase ("loading
#     tuples into the in-memory graph", "writing index pages"): same checks.
#  3. statement_timeout during VACUUM (INDEX_CLEANUP ON) after deleting 20%
#     of the rows, at three fractions of the VACUUM's duration, and
#     pg_cancel_backend when pg_stat_progress_vacuum shows "vacuuming
#     indexes" (ambulkdelete) and "cleaning up indexes" (amvacuumcleanup).
#     Right after the cancel an index scan finds every sampled row by its
#     own vector; engram_hnsw_check passes, after the VACUUM its hint asks
#     for when the cancel fell between the two passes (live elements still
#     linking to deleted ones); a full VACUUM afterwards leaves the check
#     clean with one heap TID per row.
#  3b. statement_timeout during engram_hnsw_merge_pending() (3000 pending
#     rows, at 20% and 60% of a merge's duration): every row is still found
#     by its own vector, the check passes, a later merge empties the list.
#  4. A build of 15000 rows with maintenance_work_mem = 1MB (the minimum)
#     spills and succeeds, and the index is checked.
#  5. Out of disk, only if ENGRAM_SMALL_TABLESPACE names a small (about
#     20 MB) directory owned by the server's OS user (test/run_all.sh mounts
#     a tmpfs there when it runs as root; otherwise the part is skipped with
#     the reason, ENGRAM_SMALL_TABLESPACE_SKIP if set): a tablespace there,
#     a filler table leaving about 2 MB free, then
#       - CREATE INDEX ... TABLESPACE small needing more: ERROR 53100
#         ("could not extend file": No space left on device), server up,
#         no crash; after dropping the filler the build succeeds;
#       - the filler again, then an INSERT of 8000 rows whose index
#         entries do not fit: ERROR 53100, the index still passes the
#         check; after dropping the filler the same INSERT succeeds and
#         every new row is found by its own vector.
# Every statement runs with a statement_timeout guard; a backend crash
# ("terminated by signal", PANIC) in the server log fails the test.

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
srand($seed);
my $t_start = time;

my $node = start_node('engram_faults', shared_buffers => '32MB', log_min_messages => 'warning',
	statement_timeout => "'10min'");

my $opts = 'WITH (m = 16, ef_construction = 64)';
$node->safe_psql('postgres',
	'CREATE EXTENSION engram_hnsw;' . vec_function_sql() . q{
CREATE TABLE f (id int PRIMARY KEY, v real[]);
INSERT INTO f SELECT i, vec(i, 8) FROM generate_series(1, 15000) i;
CREATE TABLE g (id int PRIMARY KEY, v real[]);
INSERT INTO g SELECT i, vec(i, 8) FROM generate_series(1, 10000) i;
VACUUM ANALYZE;
});

my $tmp = PostgreSQL::Test::Utils::tempdir;
my $logpos0 = -s $node->logfile;

# ---------------------------------------------------------------- helpers

# run $sql; returns (ret, sqlstate, message, stderr)
sub run_sql
{
	my ($sql, %o) = @_;
	my ($ret, $out, $err) = $node->psql(
		'postgres', "SET statement_timeout = '" . ($o{guard} // '300s') . "';\n$sql",
		extra_params => [ '-v', 'VERBOSITY=verbose' ],
		timeout      => 600);
	my ($state, $msg) = $err =~ /ERROR:\s+([0-9A-Z]{5}):\s+([^\n]*)/;
	return ($ret, $state // '', $msg // '', $err);
}

sub index_state
{
	my $index = shift;
	return $node->safe_psql('postgres', qq{
SELECT coalesce((SELECT CASE WHEN indisvalid THEN 'valid' ELSE 'invalid' END
                   FROM pg_index WHERE indexrelid = to_regclass('$index')), 'absent')});
}

sub check_ok
{
	my ($index, $table, $what) = @_;
	my $r = check_index($node, $index, $table);
	ok($r->{ok}, "$what: engram_hnsw_check('$index') passes"
		  . ($r->{vacuumed} ? ' (after the VACUUM its hint asks for)' : ''))
	  or diag($r->{error});
	return $r;
}

sub found_ok
{
	my ($table, $where, $what) = @_;
	my ($rows, $missing, $ids) = self_find($node, $table, where => $where);
	ok($rows > 0 && $missing == 0,
		"$what: all $rows sampled rows of $table are found by their own vector")
	  or diag("$missing of $rows not found: $ids; engram_hnsw_check: "
		  . join(' ', $node->psql('postgres', "SELECT * FROM engram_hnsw_check('${table}_idx')")));
	return;
}

sub no_crash_ok
{
	my $what = shift;
	my $log = slurp_file($node->logfile, $logpos0);

	# a parallel build worker whose leader was cancelled ends with exit code
	# 1, as any worker of a failed parallel operation does (no crash: the
	# postmaster does not restart for it)
	$log =~ s/^.*background worker "parallel worker" \(PID \d+\) exited with exit code 1\n//mg;
	ok($node->psql('postgres', 'SELECT 1') == 0
		  && $log !~ /terminated by signal|was terminated by|PANIC:|exited with exit code [1-9]/,
		"$what: the server is up and no backend crashed")
	  or diag(join("\n", grep { /terminated|PANIC|exit code/ } split /\n/, $log));
	return;
}

# Start $sql in the background under application_name $app (and the
# server options $gucs, e.g. "-c vacuum_cost_delay=1"); returns the harness.
sub start_bg
{
	my ($app, $sql, $name, $gucs) = @_;
	my $conn = $node->connstr('postgres') . " application_name=$app";
	$conn .= " options='$gucs'" if $gucs;
	my $h = IPC::Run::start(
		[ 'psql', '-XAtq', '-v', 'VERBOSITY=verbose', '-d', $conn, '-c', $sql ],
		'<', \undef, '>', "$tmp/$name.out", '2>', "$tmp/$name.err");
	return $h;
}

# Run $sql (under application_name $app) and cancel it with
# pg_cancel_backend the moment $view shows it in a phase LIKE $phase.  The
# watcher is a server-side loop started (and seen running) before the
# target, so no phase can pass unseen while psql connects.  Returns
# (watcher's exit status, its stderr, target's stderr).
sub cancel_in_phase
{
	my ($view, $app, $phase, $sql, $gucs) = @_;
	my $watch = qq{
DO \$\$
DECLARE
	p int;
	deadline timestamptz := clock_timestamp() + interval '120 s';
BEGIN
	LOOP
		PERFORM pg_stat_clear_snapshot();
		SELECT v.pid INTO p FROM $view v JOIN pg_stat_activity a USING (pid)
		 WHERE a.application_name = '$app' AND v.phase LIKE '$phase';
		EXIT WHEN p IS NOT NULL;
		IF clock_timestamp() > deadline THEN
			RAISE EXCEPTION 'phase "%" never seen', '$phase';
		END IF;
		PERFORM pg_sleep(0.001);
	END LOOP;
	IF NOT pg_cancel_backend(p) THEN
		RAISE EXCEPTION 'pg_cancel_backend(%) failed', p;
	END IF;
END \$\$;
};
	my $w = start_bg('engram_watcher', $watch, 'watcher');
	$node->poll_query_until('postgres',
		q{SELECT count(*) > 0 FROM pg_stat_activity WHERE application_name = 'engram_watcher'})
	  or die 'the watcher did not start';
	my $h = start_bg($app, $sql, 'target', $gucs);
	$w->finish;
	$h->finish;
	return ($w->result(0), slurp_file("$tmp/watcher.err"), slurp_file("$tmp/target.err"));
}

# ---------------------------------------------------------------- 1. timeouts during CREATE INDEX

my %build = (
	plain      => "CREATE INDEX f_idx ON f USING engram_hnsw (v real_l2_ops) $opts",
	concurrent => "CREATE INDEX CONCURRENTLY f_idx ON f USING engram_hnsw (v real_l2_ops) $opts",
	spill      => "SET maintenance_work_mem = '1MB';\n"
	  . "CREATE INDEX f_idx ON f USING engram_hnsw (v real_l2_ops) $opts");

# how long each build takes (the timeouts are fractions of it); the spilled
# build is part 4: maintenance_work_mem = 1MB succeeds
my %btime;
for my $v (qw(plain concurrent spill))
{
	my $t0 = time;
	my ($ret, $state, $msg, $err) = run_sql($build{$v});
	$btime{$v} = time - $t0;
	is($ret, 0, "$v build succeeds") or diag($err);
	note sprintf("%s build of 15000 rows: %.2f s", $v, $btime{$v});
	if ($v eq 'spill')
	{
		like($err, qr/no longer fits into maintenance_work_mem/,
			'maintenance_work_mem = 1MB: the build spills to on-page inserts');
		check_ok('f_idx', 'f', 'maintenance_work_mem = 1MB build');
		found_ok('f', 'a.id % 10 = 0', 'maintenance_work_mem = 1MB build');
	}
	$node->safe_psql('postgres', 'DROP INDEX f_idx');
}

# after an interrupted build: absent or invalid; make it whole and check it
sub recover_build
{
	my ($v, $what) = @_;
	my $state = index_state('f_idx');
	if ($v eq 'concurrent')
	{
		is($state, 'invalid', "$what: the CONCURRENTLY index is left invalid");
	}
	else
	{
		is($state, 'absent', "$what: the index is absent");
	}
	# the table is usable meanwhile
	is($node->safe_psql('postgres', 'SELECT count(*) FROM f'), 15000,
		"$what: the table is readable");
	my ($ret, $s, $m, $err) =
	  $state eq 'invalid'
	  ? run_sql('REINDEX INDEX f_idx')
	  : run_sql($build{plain});
	is($ret, 0, "$what: " . ($state eq 'invalid' ? 'REINDEX' : 'CREATE INDEX') . ' succeeds')
	  or diag($err);
	check_ok('f_idx', 'f', $what);
	found_ok('f', 'a.id % 20 = 0', $what);
	$node->safe_psql('postgres', 'DROP INDEX IF EXISTS f_idx');
	return;
}

for my $v (qw(plain concurrent spill))
{
	my $ms = int(1000 * $btime{$v} * (0.2 + rand(0.6)));
	my $what = "statement_timeout = ${ms}ms during the $v build";
	my ($ret, $state, $msg, $err) = run_sql($build{$v}, guard => "${ms}ms");
	is($state, '57014', "$what: the build is cancelled (57014)")
	  or diag("ret $ret: $err");
	like($msg, qr/statement timeout/, "$what: by the statement timeout");
	recover_build($v, $what);
}

# ---------------------------------------------------------------- 2. pg_cancel_backend during CREATE INDEX

for my $x (
	[ plain      => 'building index: loading tuples%' ],
	[ plain      => 'building index: writing index pages%' ],
	[ concurrent => 'building index: loading tuples%' ],
	[ spill      => 'building index: loading tuples%' ])
{
	my ($v, $phase) = @$x;
	(my $short = $phase) =~ s/building index: //;
	$short =~ s/%//;
	my $what = "pg_cancel_backend during the $v build ($short)";
	# the spill variant sets maintenance_work_mem through the options
	my ($sql, $gucs) = $v eq 'spill'
	  ? ($build{plain}, '-c maintenance_work_mem=1MB')
	  : ($build{$v}, undef);
	my ($cret, $cerr, $err) = cancel_in_phase('pg_stat_progress_create_index', 'engram_target',
		$phase, $sql, $gucs);
	is($cret, 0, "$what: the phase is seen and the backend signalled") or diag($cerr);
	like($err, qr/ERROR:\s+57014: canceling statement due to user request/,
		"$what: the build is cancelled (57014)") or diag($err);
	recover_build($v, $what);
}
no_crash_ok('interrupted builds');

# ---------------------------------------------------------------- 3. interrupted VACUUM

$node->safe_psql('postgres', "CREATE INDEX g_idx ON g USING engram_hnsw (v real_l2_ops) $opts");
my $next_id = 100_000;

# delete 20% of the rows (the oldest), insert as many new ones
sub churn
{
	my $n = int($node->safe_psql('postgres', 'SELECT count(*) FROM g') / 5);
	$node->safe_psql('postgres', qq{
DELETE FROM g WHERE id IN (SELECT id FROM g ORDER BY id LIMIT $n);
INSERT INTO g SELECT i, vec(i, 8) FROM generate_series($next_id, $next_id + $n - 1) i;
});
	$next_id += $n;
	return;
}

sub after_vacuum_cut
{
	my $what = shift;
	# scans work before any repair
	found_ok('g', 'a.id % 20 = 0', "$what, before any repair");
	check_ok('g_idx', 'g', $what);
	my ($ret, $s, $m, $err) = run_sql('VACUUM (INDEX_CLEANUP ON) g');
	is($ret, 0, "$what: a full VACUUM afterwards succeeds") or diag($err);
	my $r = check_ok('g_idx', 'g', "$what, after a full VACUUM");
	is($r->{heap_tids}, $node->safe_psql('postgres', 'SELECT count(*) FROM g'),
		"$what: one heap TID per row after the full VACUUM");
	found_ok('g', 'a.id % 20 = 0', "$what, after a full VACUUM");
	return;
}

# how long does such a VACUUM take?
churn();
my $t0 = time;
run_sql('VACUUM (INDEX_CLEANUP ON) g');
my $vtime = time - $t0;
note sprintf("VACUUM after deleting 20%%: %.2f s", $vtime);

my $cancelled = 0;
for my $frac (0.15, 0.5, 0.85)
{
	churn();
	my $ms = int(1000 * $vtime * $frac) + 1;
	my $what = "statement_timeout = ${ms}ms during VACUUM";
	my ($ret, $state, $msg, $err) = run_sql('VACUUM (INDEX_CLEANUP ON) g', guard => "${ms}ms");
	if ($state eq '57014')
	{
		$cancelled++;
		note "$what: cancelled ($msg)";
	}
	else
	{
		is($ret, 0, "$what: finished before the timeout without an error") or diag($err);
	}
	after_vacuum_cut($what);
}
cmp_ok($cancelled, '>=', 1, "statement_timeout cancelled at least one VACUUM ($cancelled of 3)");

for my $phase ('vacuuming indexes', 'cleaning up indexes')
{
	churn();
	my $what = "pg_cancel_backend during VACUUM ($phase)";
	# cost-based delay after every page: every phase lasts long enough to
	# be seen (ambulkdelete and amvacuumcleanup call vacuum_delay_point)
	my ($cret, $cerr, $err) = cancel_in_phase('pg_stat_progress_vacuum', 'engram_vacuum', $phase,
		'VACUUM (INDEX_CLEANUP ON) g', '-c vacuum_cost_delay=1 -c vacuum_cost_limit=1');
  SKIP:
	{
		# a phase over before the watcher's next look cannot be interrupted
		# in it; that is timing, not a fault of the index
		skip("$what: the phase ended before the watcher saw it", 2)
		  if $cret != 0 && $cerr =~ /never seen/;
		is($cret, 0, "$what: the phase is seen and the backend signalled") or diag($cerr);
		like($err, qr/ERROR:\s+57014: canceling statement due to user request/,
			"$what: VACUUM is cancelled (57014)") or diag($err);
	}
	after_vacuum_cut($what);
}
no_crash_ok('interrupted VACUUMs');

# ---------------------------------------------------------------- 3b. interrupted merge

# rows wait in the pending list (a limit too large to merge on its own);
# statement_timeout cuts engram_hnsw_merge_pending() short at fractions of
# its duration: every row stays findable, the check stays clean, and a
# later merge finishes the job
$node->safe_psql('postgres', q{
CREATE TABLE mg (id int PRIMARY KEY, v real[]);
INSERT INTO mg SELECT i, vec(i, 8) FROM generate_series(1, 3000) i;
CREATE INDEX mg_idx ON mg USING engram_hnsw (v real_l2_ops)
	WITH (m = 16, ef_construction = 64, pending_list_limit = 1000000);
});
my $mg_next = 10_000;
sub fill_pending
{
	$node->safe_psql('postgres', "INSERT INTO mg SELECT i, vec(i, 8) FROM generate_series($mg_next, "
		  . ($mg_next + 2999) . ") i");
	$mg_next += 3000;
	return $node->safe_psql('postgres', "SELECT pending FROM engram_hnsw_check('mg_idx')");
}
fill_pending();
$t0 = time;
run_sql("SELECT engram_hnsw_merge_pending('mg_idx')");
my $mtime = time - $t0;
note sprintf("merging 3000 pending rows: %.2f s", $mtime);
my $mcancelled = 0;
for my $frac (0.2, 0.6)
{
	my $before = fill_pending();
	my $ms = int(1000 * $mtime * $frac) + 1;
	my $what = "statement_timeout = ${ms}ms during engram_hnsw_merge_pending ($before pending)";
	my ($ret, $state, $msg, $err) = run_sql("SELECT engram_hnsw_merge_pending('mg_idx')",
		guard => "${ms}ms");
	if ($state eq '57014')
	{
		$mcancelled++;
		note "$what: cancelled ($msg)";
	}
	else
	{
		is($ret, 0, "$what: finished before the timeout without an error") or diag($err);
	}
	my $left = $node->safe_psql('postgres', "SELECT pending FROM engram_hnsw_check('mg_idx')");
	note "$what: $left rows still pending";
	check_ok('mg_idx', 'mg', $what);
	found_ok('mg', 'true', "$what, before merging again");
	($ret, $state, $msg, $err) = run_sql("SELECT engram_hnsw_merge_pending('mg_idx')");
	is($ret, 0, "$what: a merge afterwards succeeds") or diag($err);
	is($node->safe_psql('postgres', "SELECT pending FROM engram_hnsw_check('mg_idx')"), '0',
		"$what: nothing pending after it");
	check_ok('mg_idx', 'mg', "$what, merged again");
	found_ok('mg', 'true', "$what, merged again");
}
cmp_ok($mcancelled, '>=', 1, "statement_timeout cancelled at least one merge ($mcancelled of 2)");
no_crash_ok('interrupted merges');

# ---------------------------------------------------------------- 5. out of disk

my $small = $ENV{ENGRAM_SMALL_TABLESPACE};
my $skip_reason = $ENV{ENGRAM_SMALL_TABLESPACE_SKIP}
  // 'ENGRAM_SMALL_TABLESPACE is not set (test/run_all.sh mounts a 20 MB tmpfs for it when run as root)';
$skip_reason = "ENGRAM_SMALL_TABLESPACE=$small is not a writable directory"
  if defined $small && !(-d $small && -w $small);

# free space of the file system holding $dir, in kB
sub avail_kb
{
	my $dir = shift;
	my $out = `df -kP '$dir'`;
	my @l = split /\n/, $out;
	my @f = split ' ', $l[-1];
	return $f[3];
}

# fill table filler (in tablespace small) until less than $target_kb is free
sub fill
{
	my ($dir, $target_kb) = @_;
	$node->safe_psql('postgres', 'CREATE TABLE filler (x int8) TABLESPACE small');
	for (1 .. 50)
	{
		my $avail = avail_kb($dir);
		last if $avail <= $target_kb;
		# about 36 bytes a row; fill half the gap at a time
		my $rows = int(($avail - $target_kb) * 1024 / 36 / 2) + 300;
		my ($ret, $s, $m, $err) = run_sql("INSERT INTO filler SELECT generate_series(1, $rows)");
		last if $ret != 0;    # the filler itself hit the end
	}
	return avail_kb($dir);
}

SKIP:
{
	skip "out-of-disk part: $skip_reason", 1
	  unless defined $small && -d $small && -w $small;

	my $dir = "$small/engram_ts_$$";
	mkdir($dir) or die "cannot mkdir $dir: $!";
	note sprintf("small tablespace %s: %d kB free", $dir, avail_kb($dir));
	$node->safe_psql('postgres', qq{
CREATE TABLESPACE small LOCATION '$dir';
CREATE TABLE src (id int PRIMARY KEY, v real[]);
INSERT INTO src SELECT i, vec(i, 8) FROM generate_series(1, 12000) i;
VACUUM ANALYZE src;
});
	my $build_small = "CREATE INDEX src_idx ON src USING engram_hnsw (v real_l2_ops) $opts TABLESPACE small";

	# the build runs out of disk
	my $free = fill($dir, 2048);
	note "before the build: $free kB free";
	my ($ret, $state, $msg, $err) = run_sql($build_small);
	is($state, '53100', 'out of disk during CREATE INDEX: ERROR 53100') or diag("ret $ret: $err");
	like($msg, qr/could not extend file|No space left on device/,
		'out of disk during CREATE INDEX: "could not extend file" / "No space left on device"');
	no_crash_ok('out of disk during CREATE INDEX');
	is(index_state('src_idx'), 'absent', 'out of disk during CREATE INDEX: no index is left');

	# free the space: the build works
	$node->safe_psql('postgres', 'DROP TABLE filler');
	($ret, $state, $msg, $err) = run_sql($build_small);
	is($ret, 0, 'after freeing space CREATE INDEX succeeds') or diag($err);
	check_ok('src_idx', 'src', 'after freeing space, the build');
	found_ok('src', 'a.id % 20 = 0', 'after freeing space, the build');

	# inserts run out of disk
	$free = fill($dir, 1024);
	note "before the insert: $free kB free";
	my $insert = 'INSERT INTO src SELECT i, vec(i, 8) FROM generate_series(20001, 28000) i';
	($ret, $state, $msg, $err) = run_sql($insert);
	is($state, '53100', 'out of disk during INSERT: ERROR 53100') or diag("ret $ret: $err");
	like($msg, qr/could not extend file|No space left on device/,
		'out of disk during INSERT: "could not extend file" / "No space left on device"');
	no_crash_ok('out of disk during INSERT');
	is($node->safe_psql('postgres', 'SELECT count(*) FROM src WHERE id > 20000'), 0,
		'out of disk during INSERT: the statement was rolled back');
	check_ok('src_idx', 'src', 'out of disk during INSERT');
	found_ok('src', 'a.id % 20 = 0', 'out of disk during INSERT');

	# free the space: the same insert works, the new rows are found
	$node->safe_psql('postgres', 'DROP TABLE filler');
	($ret, $state, $msg, $err) = run_sql($insert);
	is($ret, 0, 'after freeing space the INSERT succeeds') or diag($err);
	check_ok('src_idx', 'src', 'after freeing space, the insert');
	found_ok('src', 'a.id > 20000', 'after freeing space, the insert');

	$node->safe_psql('postgres', 'DROP TABLE src; DROP TABLESPACE small;');
	rmdir($dir);
}

no_crash_ok('the whole test');
diag sprintf("012_faults.pl took %.0f s", time - $t_start);
$node->stop;
done_testing();
