
# Copyright: engram_hnsw authors; PostgreSQL licence.
#
# EngramTAP.pm: helpers shared by the TAP tests (test/t/*.pl).  Load it with
#
#     use FindBin;
#     use lib $FindBin::RealBin;
#     use EngramTAP;
#
#   start_node($name, [\%init,] %settings)
#                               a new cluster, initialised (with the options
#                               %init) and started with max_connections = 20,
#                               autovacuum = off, log_statement = none, then
#                               %settings (name => value as in postgresql.conf)
#   vec_function_sql()          SQL creating vec(id int, dims int) -> real[]:
#                               dims pseudo-random values in [-0.5, 0.5), the
#                               sin() hash of 001 (deterministic, distinct)
#   crash_server($node)         SIGKILL the postmaster and every process of
#                               the cluster, wait until all are gone
#   self_find($node, $table, %o) every row of $table (WHERE $o{where}) found
#                               by an index scan for its own vector among the
#                               first $o{limit} (5) results, at ef_search
#                               $o{ef} (100); with exact => 1, as the first
#                               result at distance 0; runs in $o{jobs} (2)
#                               parallel sessions; returns (rows, missing,
#                               some ids)
#   check_index($node, $index, $table)
#                               engram_hnsw_check; if it reports live elements
#                               linking to deleted ones (its hint says to
#                               VACUUM: what a crash in the middle of VACUUM
#                               leaves), VACUUM $table and check again: the
#                               links must be gone.
#                               Returns a hash: ok, error, vacuumed, and the
#                               check's columns.
#   ordered_ids($node, $db, $sql, %o)
#                               the ids $sql returns (a query with an "id"
#                               column, e.g. ... ORDER BY v <-> q LIMIT 10),
#                               in its order, joined by commas.  index => 1:
#                               sequential and bitmap scans off, ef_search
#                               $o{ef} (200); otherwise exact: index and
#                               bitmap scans off (a sort over a seq scan)

package EngramTAP;

use strict;
use warnings;

use Exporter 'import';
use IPC::Run;
use PostgreSQL::Test::Cluster;
use Time::HiRes qw(usleep time);

our @EXPORT = qw(start_node vec_function_sql crash_server cluster_pids alive self_find check_index ordered_ids);

sub start_node
{
	my ($name, @settings) = @_;
	my %init = ref $settings[0] eq 'HASH' ? %{ shift @settings } : ();
	my @conf = (max_connections => 20, autovacuum => 'off', log_statement => 'none', @settings);
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(%init);
	my $text = '';
	while (my ($k, $v) = splice(@conf, 0, 2))
	{
		$text .= "$k = $v\n";
	}
	$node->append_conf('postgresql.conf', $text);
	$node->start;
	return $node;
}

sub vec_function_sql
{
	return q{
CREATE FUNCTION vec(i int, dims int) RETURNS real[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT array_agg((x - floor(x) - 0.5)::real ORDER BY d)
     FROM (SELECT d, sin(i * 12.9898 + d * 78.233) * 43758.5453 AS x
             FROM generate_series(0, dims - 1) d) s $$;
};
}

# Processes of the cluster: every process whose working directory is the
# data directory (the postmaster and all its children chdir there).
sub cluster_pids
{
	my $node    = shift;
	my $datadir = $node->data_dir;
	my $real    = readlink($datadir) // $datadir;
	my @pids;
	opendir(my $dh, '/proc') or die "cannot open /proc: $!";
	for my $p (readdir $dh)
	{
		next unless $p =~ /^\d+$/;
		my $cwd = readlink("/proc/$p/cwd");
		next unless defined $cwd;
		push @pids, $p if $cwd eq $datadir || $cwd eq $real;
	}
	closedir $dh;
	return @pids;
}

# true if $pid exists and is not a zombie
sub alive
{
	my $pid = shift;
	open(my $fh, '<', "/proc/$pid/stat") or return 0;
	my $stat = <$fh>;
	close $fh;
	return 0 unless defined $stat;
	my ($state) = $stat =~ /\)\s+(\S)/;
	return defined $state && $state ne 'Z' && $state ne 'X';
}

# SIGKILL the postmaster and every process of the cluster (like a power cut
# that keeps the OS page cache), wait until they are gone.
sub crash_server
{
	my $node = shift;
	open(my $fh, '<', $node->data_dir . '/postmaster.pid')
	  or die "no postmaster.pid: $!";
	chomp(my $pm = <$fh>);
	close $fh;
	my @pids = cluster_pids($node);
	$node->kill9;    # the postmaster first, then the rest at once
	kill 'KILL', grep { $_ != $pm } @pids;

	my $deadline = time + 60;
	while (time < $deadline)
	{
		my @left = grep { alive($_) } ($pm, cluster_pids($node));
		last unless @left;
		kill 'KILL', @left;
		usleep(20_000);
	}
	die "cluster processes survive SIGKILL" if grep { alive($_) } cluster_pids($node);

	# The killed postmaster is an orphan; while its zombie exists its PID in
	# postmaster.pid looks alive to the next postmaster.  Wait for the reaper.
	$deadline = time + 60;
	usleep(50_000) while kill(0, $pm) && time < $deadline;
	unlink($node->data_dir . '/postmaster.pid') if kill(0, $pm);
	return;
}

sub self_find
{
	my ($node, $table, %o) = @_;
	my $where = $o{where} // 'true';
	my $limit = $o{limit} // 5;
	my $ef    = $o{ef}    // 100;
	my $jobs  = $o{jobs}  // 2;
	my $col   = $o{column} // 'v';
	# exact: the first result is the row itself, at distance 0
	my $found = $o{exact}
	  ? qq{coalesce(bool_and(b.id = a.id AND b.dist = 0), false)
                       FROM (SELECT b.id, b.$col <-> a.$col AS dist FROM $table b
                              ORDER BY b.$col <-> a.$col LIMIT 1) b}
	  : qq{coalesce(bool_or(b.id = a.id), false)
                       FROM (SELECT b.id FROM $table b
                              ORDER BY b.$col <-> a.$col LIMIT $limit) b};
	my @h;
	for my $j (0 .. $jobs - 1)
	{
		my $sql = qq{
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SET engram_hnsw.ef_search = $ef;
SELECT count(*),
       count(*) FILTER (WHERE NOT x.found),
       coalesce(string_agg(a.id::text, ',') FILTER (WHERE NOT x.found), '')
  FROM $table a
 CROSS JOIN LATERAL (SELECT $found) x(found)
 WHERE ($where) AND a.$col IS NOT NULL AND (hashint4(a.id) & 1023) % $jobs = $j;
};
		my ($out, $err) = ('', '');
		my $run = IPC::Run::start(
			[ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'), '-c', $sql ],
			'<', \undef, '>', \$out, '2>', \$err);
		push @h, [ $run, \$out, \$err ];
	}
	my ($rows, $missing, @ids) = (0, 0);
	for my $x (@h)
	{
		my ($run, $out, $err) = @$x;
		$run->finish;
		die "self_find on $table failed: $$err" if $run->result(0) != 0;
		chomp(my $line = $$out);
		my ($r, $m, $i) = split /\|/, $line, 3;
		$rows    += $r;
		$missing += $m;
		push @ids, $i if defined $i && $i ne '';
	}
	my $ids = join(',', @ids);
	$ids = substr($ids, 0, 200) . '...' if length($ids) > 200;
	return ($rows, $missing, $ids);
}

sub check_index
{
	my ($node, $index, $table) = @_;
	my $q = "SELECT pages, elements, deleted_elements, heap_tids, max_level, unreachable "
	  . "FROM engram_hnsw_check('$index')";
	my ($ret, $out, $err) = $node->psql('postgres', $q);
	my %r = (vacuumed => 0);
	# Live elements linking to deleted ones: what a crash or a cancel
	# between VACUUM's two passes leaves.  Older builds fail the check with
	# the hint "VACUUM the table to repair the links.", newer ones pass it
	# with a NOTICE "... links to deleted elements" and the hint "The next
	# VACUUM repairs them.".  Either way: VACUUM, and the second check must
	# pass without reporting such links.
	if ($err =~ /links to deleted element/ && $err =~ /VACUUM/)
	{
		$r{first_error} = $err;
		$node->safe_psql('postgres', "VACUUM (INDEX_CLEANUP ON) $table");
		$r{vacuumed} = 1;
		($ret, $out, $err) = $node->psql('postgres', $q);
		if ($ret == 0 && $err =~ /links to deleted element/)
		{
			$ret = 1;
			$err = "the VACUUM the check asked for did not repair the links: $err";
		}
	}
	$r{ok}    = $ret == 0;
	$r{error} = $err;
	@r{qw(pages elements deleted heap_tids max_level unreachable)} = split /\|/, $out
	  if $ret == 0;
	return \%r;
}

sub ordered_ids
{
	my ($node, $db, $sql, %o) = @_;
	my $ef  = $o{ef} // 200;
	my $set = $o{index}
	  ? "SET enable_seqscan = off; SET enable_bitmapscan = off; SET engram_hnsw.ef_search = $ef;"
	  : 'SET enable_indexscan = off; SET enable_bitmapscan = off;';
	return $node->safe_psql($db, "$set SELECT coalesce(string_agg(id::text, ','), '') FROM ($sql) s");
}

1;
