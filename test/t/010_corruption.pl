
# Copyright: engram_hnsw authors; PostgreSQL licence.
#
# 010_corruption.pl: damaged index pages give a clean ERROR, never a crash
# or an endless loop.
#
# An index t_idx (400 rows, 8 dimensions, m = 8: about a dozen pages) is
# built and the server stopped; the data directory is saved.  Each case
# then restores the saved directory, overwrites one page of t_idx's file
# (found with pg_relation_filepath) and starts the server again:
#  (a) zeros: the meta page, the first, a middle and the last data page;
#  (b) random bytes (srand(ENGRAM_TAP_SEED)): whole pages; pages whose
#      header, line pointers and special space are kept but whose tuples
#      are random; pages whose body (line pointers and tuples) is random;
#  (c) pages copied from other engram_hnsw indexes: with other dimensions,
#      with the same dimensions but another m, and their meta pages;
#  (d) a valid page with one field damaged: line pointer offset / length /
#      flags, a neighbour TID past the end of the relation, an element's
#      neighbour-tuple TID past the end, element level (too high, and one
#      more than its neighbour list), element ntids, element type byte,
#      page_id and pd_special, the meta page magic, dimension (codes
#      larger than a page) and entry point.
# In every case four statements run, each on its own: an index scan that
# walks the whole graph (LIMIT above the row count), an INSERT of the
# vector of an element on the damaged page (t_idx has fastupdate = off, so
# the INSERT searches the graph; a pending insert reads no graph page; and
# ef_construction = 400, at least the row count, so that search visits every
# element it can reach instead of depending on the random graph), VACUUM (INDEX_CLEANUP ON) (the
# table has dead rows, so ambulkdelete runs) and engram_hnsw_check.  Each
# must end in an ERROR whose SQLSTATE is XX001 (data corrupted; the buffer
# manager's "invalid page in block" for a page whose header it rejects is
# XX001 too) or XX002 (index corrupted) and whose message names the damaged
# block.  For a link that points past the end of the relation the message
# may name the block the link points to instead (the detail says "a link
# points to block N"): both identify the damage.  statement_timeout guards
# against endless loops: a timeout fails the case.  After each statement
# the server must still accept connections and its log must show no
# backend crash ("terminated by signal", PANIC).
#
# The cluster has no data checksums (initdb default), so only the page
# checks of the buffer manager and of engram_hnsw stand between the damage
# and the code that reads it.
#
# Known gaps of the C code would be marked TODO (CI stays green while they
# are open, prove reports "TODO passed" once fixed); the "no crash, no
# timeout, server up" assertions are never TODO.  None is open: the two
# former gaps (VACUUM not noticing an entry point or a neighbour link that
# leads to no element) are closed, since VACUUM verifies every link and
# entry point after its page pass.

use strict;
use warnings;

use List::Util qw(max);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $seed = $ENV{ENGRAM_TAP_SEED} // 20240917;
srand($seed);
note "seed $seed";
my $t_start = time;

my $BLCKSZ = 8192;

# layout offsets found from the data (see "Layout discovery")
our ($NTID_AT, $HEAPTIDS_AT, $ENTRY_AT);

my $node = PostgreSQL::Test::Cluster->new('engram_corrupt');
# small WAL segments: each case copies the whole data directory
$node->init(extra => [ "--wal-segsize=1" ]);
$node->append_conf(
	'postgresql.conf', qq{
shared_buffers = 16MB
max_connections = 10
autovacuum = off
log_statement = none
log_min_messages = warning
restart_after_crash = on
});
$node->start;

is($node->safe_psql('postgres', 'SHOW data_checksums'),
	'off', 'the cluster has no data checksums (initdb default)');

# vec(id, dims): pseudo-random values in [-0.5, 0.5) (the sin() hash of 001)
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION engram_hnsw;
CREATE FUNCTION vec(i int, dims int) RETURNS real[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT array_agg((x - floor(x) - 0.5)::real ORDER BY d)
     FROM (SELECT d, sin(i * 12.9898 + d * 78.233) * 43758.5453 AS x
             FROM generate_series(0, dims - 1) d) s $$;
CREATE TABLE t (id int PRIMARY KEY, v real[]);
INSERT INTO t SELECT i, vec(i, 8) FROM generate_series(1, 400) i;
CREATE INDEX t_idx ON t USING engram_hnsw (v real_l2_ops) WITH (m = 8, ef_construction = 400, fastupdate = off);
-- other indexes to copy pages from: other dimensions; same dimensions, other m
CREATE TABLE o (id int PRIMARY KEY, v real[]);
INSERT INTO o SELECT i, vec(i + 5000, 12) FROM generate_series(1, 300) i;
CREATE INDEX o_idx ON o USING engram_hnsw (v real_l2_ops) WITH (m = 6, ef_construction = 24);
CREATE TABLE p (id int PRIMARY KEY, v real[]);
INSERT INTO p SELECT i, vec(i + 9000, 8) FROM generate_series(1, 300) i;
CREATE INDEX p_idx ON p USING engram_hnsw (v real_l2_ops) WITH (m = 12, ef_construction = 24);
-- dead rows, so that VACUUM calls ambulkdelete on t_idx
DELETE FROM t WHERE id % 9 = 0;
CHECKPOINT;
});

my %file;
my %nblocks;
for my $idx ('t_idx', 'o_idx', 'p_idx')
{
	$file{$idx} = $node->data_dir . '/'
	  . $node->safe_psql('postgres', "SELECT pg_relation_filepath('$idx')");
	$nblocks{$idx} = $node->safe_psql('postgres',
		"SELECT pg_relation_size('$idx') / current_setting('block_size')::int");
}
my $tblocks = $nblocks{t_idx};
note "t_idx: $tblocks blocks ($file{t_idx}); o_idx: $nblocks{o_idx}; p_idx: $nblocks{p_idx}";
ok($tblocks >= 6, "t_idx has several pages ($tblocks)");

my ($chk) = $node->safe_psql('postgres',
	"SELECT elements, unreachable FROM engram_hnsw_check('t_idx')");
like($chk, qr/^\d+\|0$/, 'engram_hnsw_check passes on the undamaged index');

# heap ctid -> id, to find the rows whose elements sit on a page
my %id_of_ctid = map { split /\|/ } split /\n/,
  $node->safe_psql('postgres', 'SELECT ctid, id FROM t');

$node->stop;

my $tmp      = PostgreSQL::Test::Utils::tempdir;
my $pristine = "$tmp/pristine";
system('cp', '-a', $node->data_dir, $pristine) == 0
  or die "cannot copy the data directory";

# ---------------------------------------------------------------- pages

sub read_block
{
	my ($path, $blkno) = @_;
	open(my $fh, '<:raw', $path) or die "cannot open $path: $!";
	seek($fh, $blkno * $BLCKSZ, 0) or die "seek: $!";
	my $n = read($fh, my $buf, $BLCKSZ);
	close $fh;
	die "short read of block $blkno of $path" unless defined $n && $n == $BLCKSZ;
	return $buf;
}

sub write_block
{
	my ($path, $blkno, $buf) = @_;
	die "bad page length" unless length($buf) == $BLCKSZ;
	open(my $fh, '+<:raw', $path) or die "cannot open $path: $!";
	seek($fh, $blkno * $BLCKSZ, 0) or die "seek: $!";
	print $fh $buf or die "write: $!";
	close $fh or die "close: $!";
	return;
}

sub u16 { return unpack('v', substr($_[0], $_[1], 2)); }
sub u32 { return unpack('V', substr($_[0], $_[1], 4)); }
sub put16 { substr($_[0], $_[1], 2) = pack('v', $_[2]); return; }
sub put32 { substr($_[0], $_[1], 4) = pack('V', $_[2]); return; }

# ItemPointerData: bi_hi, bi_lo, posid
sub get_tid
{
	my ($page, $at) = @_;
	my ($hi, $lo, $pos) = unpack('vvv', substr($page, $at, 6));
	return (($hi << 16) | $lo, $pos);
}

sub put_tid
{
	my ($page, $at, $blk, $pos) = @_;
	substr($_[0], $at, 6) = pack('vvv', ($blk >> 16) & 0xFFFF, $blk & 0xFFFF, $pos);
	return;
}

# page header fields and line pointers
sub pd_lower   { return u16($_[0], 12); }
sub pd_upper   { return u16($_[0], 14); }
sub pd_special { return u16($_[0], 16); }
sub nitems     { return (pd_lower($_[0]) - 24) / 4; }

sub lp
{
	my ($page, $off) = @_;
	my $v = u32($page, 24 + 4 * ($off - 1));
	return ($v & 0x7FFF, ($v >> 15) & 3, $v >> 17);
}

sub put_lp
{
	my ($page, $off, $lpoff, $flags, $len) = @_;
	put32($_[0], 24 + 4 * ($off - 1),
		($lpoff & 0x7FFF) | (($flags & 3) << 15) | (($len & 0x7FFF) << 17));
	return;
}

# items of a data page: [off, type, byte offset]
sub items
{
	my $page = shift;
	my @r;
	for my $off (1 .. nitems($page))
	{
		my ($o, $f, $l) = lp($page, $off);
		push @r, [ $off, ord(substr($page, $o, 1)), $o ] if $f == 1;
	}
	return @r;
}

# An element tuple starts with type (1), level, flags, ntids (one byte each);
# later come its neighbour-list TID and HNSW_HEAPTIDS heap TIDs.  The offset
# of the neighbour-list TID is found from the data (see below), so that the
# test follows layout changes of the header struct.
sub elements_of { return grep { $_->[1] == 1 } items($_[0]); }
sub lists_of    { return grep { $_->[1] == 2 } items($_[0]); }

# the id of a live row whose element is at byte offset $at of $page
sub element_row
{
	my ($page, $at) = @_;
	my $ntids = ord(substr($page, $at + 3, 1));
	for my $i (0 .. $ntids - 1)
	{
		my ($b, $p) = get_tid($page, $at + $HEAPTIDS_AT + 6 * $i);
		my $id = $id_of_ctid{"($b,$p)"};
		return $id if defined $id;
	}
	return undef;
}

my @tpages = map { read_block($file{t_idx}, $_) } 0 .. $tblocks - 1;
my $mid    = int($tblocks / 2);
my $last   = $tblocks - 1;

# Layout discovery.  The neighbour-list TID of an element: the first even
# offset in its header where, for every element of the data pages, a TID
# names an item of type 2 (neighbour list) of the same index.  With small
# vectors an element and its list always share a page.
sub item_type_at
{
	my ($blk, $off) = @_;
	return -1 if $blk < 1 || $blk >= $tblocks;
	my $p = $tpages[$blk];
	return -1 if $off < 1 || $off > nitems($p);
	my ($o, $f) = lp($p, $off);
	return $f == 1 ? ord(substr($p, $o, 1)) : -1;
}
for (my $k = 4; $k <= 32 && !defined $NTID_AT; $k += 2)
{
	my ($all, $n) = (1, 0);
	for my $b (1 .. $last)
	{
		for my $e (elements_of($tpages[$b]))
		{
			my ($nb, $no) = get_tid($tpages[$b], $e->[2] + $k);
			$n++;
			$all = 0 unless $nb == $b && item_type_at($nb, $no) == 2;
		}
	}
	$NTID_AT = $k if $all && $n > 0;
}
die "cannot find the neighbour-list TID in the element header (layout changed?)"
  unless defined $NTID_AT;
$HEAPTIDS_AT = $NTID_AT + 6;
# The meta page's entry point: a TID (after the page header) naming an
# element of the highest level in the index (at least 1), which the int16
# four bytes before it (entry_level, unused, entry) repeats.
my $top_level = 0;
for my $b (1 .. $last)
{
	$top_level = max($top_level, ord(substr($tpages[$b], $_->[2] + 1, 1)))
	  for elements_of($tpages[$b]);
}
die "no element above layer 0" unless $top_level > 0;
for (my $k = 24 + 8; $k <= 24 + 64 && !defined $ENTRY_AT; $k += 2)
{
	my ($b, $o) = get_tid($tpages[0], $k);
	next unless item_type_at($b, $o) == 1;
	my ($lo) = lp($tpages[$b], $o);
	my $level = ord(substr($tpages[$b], $lo + 1, 1));
	$ENTRY_AT = $k
	  if $level == $top_level
	  && unpack('s<', substr($tpages[0], $k - 4, 2)) == $level;
}
die "cannot find the entry point on the meta page (layout changed?)"
  unless defined $ENTRY_AT;
note "layout: element neighbour-list TID at +$NTID_AT, heap TIDs at +$HEAPTIDS_AT; "
  . "meta entry point at byte $ENTRY_AT";

# the vector an INSERT uses for a case: that of a live row on the damaged
# page (an element at byte offset $at if given), so the insert's search
# heads for it
sub insert_id_for
{
	my ($blk, $at) = @_;
	return 1 if $blk == 0;
	my @e = $at ? ([ 0, 1, $at ]) : elements_of($tpages[$blk]);
	for my $e (@e)
	{
		my $id = element_row($tpages[$blk], $e->[2]);
		return $id if defined $id;
	}
	return 1;
}

sub random_bytes
{
	my $n = shift;
	return pack('C*', map { int(rand(256)) } 1 .. $n);
}

# ---------------------------------------------------------------- cases

my @cases;

sub add_case
{
	my (%c) = @_;
	$c{accept_blocks} //= [ $c{block} ];
	$c{insert_id} //= insert_id_for($c{block}, $c{element_at});
	push @cases, \%c;
	return;
}

# (a) zeros

for my $b (0, 1, $mid, $last)
{
	add_case(name => "zeros in block $b", block => $b, page => "\0" x $BLCKSZ);
}

# (b) random bytes
for my $b (0, 1, $mid, $last)
{
	add_case(name => "random page in block $b", block => $b, page => random_bytes($BLCKSZ));
}
for my $b (1, $mid, $last)
{
	# keep header, line pointers and special space: the tuples are random
	my $p     = $tpages[$b];
	my $upper = pd_upper($p);
	my $spec  = pd_special($p);
	substr($p, $upper, $spec - $upper) = random_bytes($spec - $upper);
	add_case(name => "random tuples in block $b", block => $b, page => $p);
}
for my $b (1, $mid)
{
	# keep the header and the special space: line pointers and tuples random
	my $p    = $tpages[$b];
	my $spec = pd_special($p);
	substr($p, 24, $spec - 24) = random_bytes($spec - 24);
	add_case(name => "random body in block $b", block => $b, page => $p);
}

# (c) pages of other engram_hnsw indexes
for my $src ('o_idx', 'p_idx')
{
	my $ob = $nblocks{$src} > 2 ? 2 : 1;
	add_case(
		name  => "block $ob of $src copied into block $mid",
		block => $mid,
		page  => read_block($file{$src}, $ob));
	add_case(
		name  => "block 1 of $src copied into block $last",
		block => $last,
		page  => read_block($file{$src}, 1));
	add_case(
		name  => "meta page of $src copied into block 0",
		block => 0,
		page  => read_block($file{$src}, 0));
}

# (d) one field damaged on a valid page
{
	my $b = $mid;
	my $p = $tpages[$b];
	my @e = elements_of($p);
	my @n = lists_of($p);
	die "block $b has no element or no neighbour list" unless @e && @n;
	# the first element whose neighbour list is on its page
	my ($eoff, $eat, $noff);
	for my $x (@e)
	{
		my ($nb, $no) = get_tid($p, $x->[2] + $NTID_AT);
		next unless $nb == $b;
		($eoff, $eat, $noff) = ($x->[0], $x->[2], $no);
		last;
	}
	die "block $b: no element with its list on the page" unless defined $eat;
	my ($lo, $lf, $ll) = lp($p, $eoff);

	my $q = $p;
	put_lp($q, $eoff, 0x7FF0, $lf, $ll);
	add_case(name => "element line pointer offset past the page (block $b)",
		block => $b, page => $q, element_at => $eat);

	$q = $p;
	put_lp($q, $eoff, pd_special($p) - 8, $lf, $ll);
	add_case(name => "element line pointer into the special space (block $b)",
		block => $b, page => $q, element_at => $eat);

	$q = $p;
	put_lp($q, $eoff, 4, $lf, $ll);
	add_case(name => "element line pointer into the page header (block $b)",
		block => $b, page => $q, element_at => $eat);

	$q = $p;
	put_lp($q, $eoff, $lo, $lf, 0x7FFF);
	add_case(name => "element line pointer length 32767 (block $b)",
		block => $b, page => $q, element_at => $eat);

	$q = $p;
	put_lp($q, $eoff, $lo, 0, $ll);
	add_case(name => "element line pointer marked unused (block $b)",
		block => $b, page => $q, element_at => $eat);

	# point the neighbour-list line pointer at the element (wrong type)
	$q = $p;
	my ($nlo, $nlf, $nll) = lp($p, $noff);
	put_lp($q, $noff, $lo, $nlf, $nll);
	add_case(name => "neighbour-list line pointer aimed at an element (block $b)",
		block => $b, page => $q, element_at => $eat);

	# neighbour TID past the end: the list of the element at $eat
	my ($nlist_at) = map { $_->[2] } grep { $_->[0] == $noff } items($p);
	$q = $p;
	put_tid($q, $nlist_at + 4, $tblocks + 1000, 1);
	add_case(name => "neighbour TID past the end of the relation (block $b)",
		block => $b, page => $q, element_at => $eat,
		accept_blocks => [ $b, $tblocks + 1000 ]);

	$q = $p;
	put_tid($q, $nlist_at + 4, $b, 0x7FF);
	add_case(name => "neighbour TID to a missing item (block $b)",
		block => $b, page => $q, element_at => $eat);

	$q = $p;
	put_tid($q, $eat + $NTID_AT, $tblocks + 50, 1);
	add_case(name => "element's neighbour-list TID past the end (block $b)",
		block => $b, page => $q, element_at => $eat,
		accept_blocks => [ $b, $tblocks + 50 ]);

	$q = $p;
	substr($q, $eat + 1, 1) = chr(200);
	add_case(name => "element level 200 (block $b)",
		block => $b, page => $q, element_at => $eat);

	$q = $p;
	substr($q, $eat + 1, 1) = chr(ord(substr($p, $eat + 1, 1)) + 1);
	add_case(name => "element level one above its neighbour list (block $b)",
		block => $b, page => $q, element_at => $eat);

	$q = $p;
	substr($q, $eat + 3, 1) = chr(200);
	add_case(name => "element ntids 200 (block $b)",
		block => $b, page => $q, element_at => $eat);

	$q = $p;
	substr($q, $eat, 1) = chr(7);
	add_case(name => "element type byte 7 (block $b)",
		block => $b, page => $q, element_at => $eat);

	$q = $p;
	put16($q, $BLCKSZ - 2, 0x1234);
	add_case(name => "page_id of block $b", block => $b, page => $q);

	$q = $p;
	put16($q, 16, pd_special($p) - 8);
	add_case(name => "pd_special of block $b", block => $b, page => $q);

	# the meta page: magic right after the page header
	my $m = $tpages[0];
	$q = $m;
	die "no magic on the meta page" unless u32($m, 24) == 0x454E4757;
	put32($q, 24, 0xDEADBEEF);
	add_case(name => 'meta page magic', block => 0, page => $q);

	# dims within the format's limit, but int8 codes of 9 000 dimensions make
	# element tuples larger than a page
	$q = $m;
	die "t_idx has not 8 dimensions (meta layout changed?)" unless u32($m, 32) == 8;
	put32($q, 32, 9000);
	add_case(name => 'meta page dims whose codes do not fit a page', block => 0, page => $q);

	$q = $m;
	put_tid($q, $ENTRY_AT, $tblocks + 7, 1);
	add_case(name => 'meta page entry point past the end', block => 0, page => $q,
		accept_blocks => [ 0, $tblocks + 7 ]);
}

# ---------------------------------------------------------------- run

# The check runs first: VACUUM's first pass changes pages before it reaches
# the damaged one (each page is WAL-logged on its own), which would show up
# in a later check.
my @ops = (
	[ check  => sub { return "SELECT * FROM engram_hnsw_check('t_idx');"; } ],
	[ scan => sub {
		my $id = shift;
		return "SET enable_seqscan = off; SET enable_bitmapscan = off;\n"
		  . "SELECT count(*) FROM (SELECT id FROM t ORDER BY v <-> vec($id, 8) LIMIT 100000) s;";
	  } ],
	[ insert => sub {
		my $id = shift;
		return "INSERT INTO t VALUES (100000, vec($id, 8));";
	  } ],
	[ vacuum => sub { return 'VACUUM (INDEX_CLEANUP ON) t;'; } ]);

my $timeout = 60;    # statement_timeout, seconds
my %tally = (cases => 0, statements => 0, clean_errors => 0, todo => 0);

for my $c (@cases)
{
	my $t0 = time;
	$tally{cases}++;
	system('rm', '-rf', $node->data_dir) == 0 or die "rm failed";
	system('cp', '-a', $pristine, $node->data_dir) == 0 or die "cp failed";
	write_block($file{t_idx}, $c->{block}, $c->{page});

	my $logpos = -s $node->logfile;
	$node->start;
	my $blocks_re = join('|', @{ $c->{accept_blocks} });

	for my $op (@ops)
	{
		my ($opname, $sqlf) = @$op;
		my $sql = "SET statement_timeout = '${timeout}s';\n" . $sqlf->($c->{insert_id});
		my ($ret, $out, $err) = $node->psql(
			'postgres', $sql,
			extra_params => [ '-v', 'VERBOSITY=verbose' ],
			timeout      => 3 * $timeout);
		$tally{statements}++;
		my ($state, $msg) = $err =~ /ERROR:\s+([0-9A-Z]{5}):\s+([^\n]*)/;
		$state //= '';
		$msg   //= '';

		my $alive = $node->psql('postgres', 'SELECT 1') == 0;
		my $log = slurp_file($node->logfile, $logpos);
		# a worker of a failed parallel operation exits with code 1: no crash
		$log =~ s/^.*background worker "parallel worker" \(PID \d+\) exited with exit code 1\n//mg;
		my $crashed = $log =~ /terminated by signal|was terminated by|PANIC:|exited with exit code [1-9]/;

		# never a crash, a hang or a dead server (no TODO here, ever)
		ok($alive && !$crashed && $state ne '57014' && $err !~ /timed out|connection/,
			"$c->{name}: $opname: no crash, no timeout, server up")
		  or diag(sprintf("ret=%s sqlstate=%s%s%s\nstderr: %s",
			$ret, $state || '-',
			$alive ? '' : ' SERVER DOWN', $crashed ? ' BACKEND CRASHED' : '',
			substr($err, 0, 600)));

		# a clean ERROR naming the block
		my $good =
		     $ret != 0
		  && ($state eq 'XX001' || $state eq 'XX002')
		  && $msg =~ /\bblock ($blocks_re)\b/;
		$tally{clean_errors}++ if $good;
		my $todo = $c->{todo} && $c->{todo}{$opname};
		$tally{todo}++ if $todo && !$good;
		TODO:
		{
			local $TODO = $todo if $todo;
			ok($good, "$c->{name}: $opname ends in XX001/XX002 naming block "
				  . join(' or ', @{ $c->{accept_blocks} }))
			  or diag(sprintf("ret=%s sqlstate=%s message=%s\nstderr: %s",
				$ret, $state || '-', $msg || '-', substr($err, 0, 600)));
		}
		note "$c->{name}: $opname -> " . ($ret ? "$state $msg" : "no error: $out");
		if (!$alive)
		{
			# restart_after_crash should have brought it back
			$node->_update_pid(0);
			$node->start(fail_ok => 1);
		}
	}
	$node->stop('immediate');
	note sprintf("case %d (%s) took %.1f s", $tally{cases}, $c->{name}, time - $t0);
}

diag "corrupt pages tried: $tally{cases}, statements: $tally{statements}, "
  . "clean XX001/XX002 errors naming the block: $tally{clean_errors}, "
  . "known gaps (TODO): $tally{todo}";

# the undamaged index still works (the directory copy is sound)
system('rm', '-rf', $node->data_dir) == 0 or die "rm failed";
system('cp', '-a', $pristine, $node->data_dir) == 0 or die "cp failed";
$node->start;
($chk) = $node->safe_psql('postgres',
	"SELECT elements, unreachable FROM engram_hnsw_check('t_idx')");
like($chk, qr/^\d+\|0$/, 'the restored undamaged index passes engram_hnsw_check');
$node->stop;

diag sprintf("010_corruption.pl took %.0f s", time - $t_start);
done_testing();
