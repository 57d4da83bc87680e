
# Copyright: engram_hnsw authors; PostgreSQL licence.
#
# 014_security.pl: security properties of the extension.
#
#  - Every function of the extension (pg_depend, deptype 'e') has the
#    expected volatility, strictness and PARALLEL marking: the list below
#    must be extended, deliberately, for every new function; a function
#    missing from it or marked otherwise fails the test.
#  - No function is SECURITY DEFINER or carries a SET clause.
#  - The extension is not trusted: a non-superuser cannot CREATE EXTENSION.
#  - engram_hnsw_check and engram_hnsw_merge_pending refuse a role that does
#    not own the index, and the owner may run them ("must be
#    owner of index", SQLSTATE 42501), even with SELECT on the table; the
#    owner (not a superuser) and a superuser may run it.
#  - The install script is search_path-safe: CREATE EXTENSION engram_hnsw
#    SCHEMA x, with x not on search_path and decoy functions and operators
#    of the same names in public, works: x.l2_distance, OPERATOR(x.<->),
#    the operator classes x.real_*_ops, index scans, a memory-space index
#    and x.engram_hnsw_check all work with search_path = public; every
#    operator, operator class and support function of the extension refers
#    only to objects of x or pg_catalog; the decoys are never called.
#  - A static check of the install script: every object it creates and
#    every function or operator it refers to is qualified with @extschema@
#    or pg_catalog.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $t_start = time;
my $node = PostgreSQL::Test::Cluster->new('engram_security');
$node->init;
$node->append_conf('postgresql.conf', "autovacuum = off\nlog_min_messages = warning\nstatement_timeout = '10min'\n");
$node->start;

# ---------------------------------------------------------------- markings

# regprocedure => volatility (i/s/v), strict (t/f), parallel (s/r/u)
my %expected = (
	'l2_distance(real[],real[])'            => 'i t s',
	'cosine_distance(real[],real[])'        => 'i t s',
	'inner_product(real[],real[])'          => 'i t s',
	'negative_inner_product(real[],real[])' => 'i t s',
	# an index AM handler: called by the server only, like btree's
	'engram_hnsw_handler(internal)'         => 'v f u',
	'engram_hnsw_l2_support(internal)'      => 'i t s',
	'engram_hnsw_cosine_support(internal)'  => 'i t s',
	'engram_hnsw_ip_support(internal)'      => 'i t s',
	'engram_hnsw_space_support(internal)'   => 'i t s',
	# the distance functions' planner support (cost of a call)
	'engram_hnsw_distance_support(internal)' => 'i t s',
	# reads the whole index under ShareLock: volatile, not in parallel workers
	'engram_hnsw_check(regclass)'           => 'v t r',
	# writes the index: volatile, never in parallel mode
	'engram_hnsw_merge_pending(regclass)'   => 'v t u',
);

$node->safe_psql('postgres', 'CREATE EXTENSION engram_hnsw');
my $ext_funcs = q{
SELECT p.oid::regprocedure::text, p.provolatile, p.proisstrict, p.proparallel,
       p.prosecdef, p.proconfig IS NOT NULL
  FROM pg_proc p
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'engram_hnsw'
 ORDER BY 1};
my %seen;
for my $line (split /\n/, $node->safe_psql('postgres', $ext_funcs))
{
	my ($sig, $vol, $strict, $par, $secdef, $config) = split /\|/, $line;
	my $strict_c = $strict eq 't' ? 't' : 'f';
	$seen{$sig} = 1;
	is("$vol $strict_c $par", $expected{$sig} // 'not in the expected list',
		"$sig: volatility, strictness, parallel marking");
	is($secdef, 'f', "$sig: not SECURITY DEFINER");
	is($config, 'f', "$sig: no SET clause");
}
for my $sig (sort keys %expected)
{
	ok($seen{$sig}, "$sig exists");
}
is($node->safe_psql('postgres', q{
SELECT count(*) FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass
   AND d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'engram_hnsw'
 WHERE p.prosecdef}), 0, 'no SECURITY DEFINER function in the extension');

# ---------------------------------------------------------------- untrusted

$node->safe_psql('postgres', q{
CREATE ROLE alice LOGIN;
CREATE ROLE bob LOGIN;
CREATE DATABASE nosuper OWNER bob;
});
my ($ret, $out, $err) = $node->psql('nosuper', 'CREATE EXTENSION engram_hnsw',
	extra_params => [ '-U', 'bob', '-v', 'VERBOSITY=verbose' ]);
isnt($ret, 0, 'a non-superuser (owner of the database) cannot CREATE EXTENSION engram_hnsw');
like($err, qr/42501: permission denied to create extension "engram_hnsw"/,
	'the extension is not trusted (42501)');

# ---------------------------------------------------------------- check: owners only

$node->safe_psql('postgres', q{
CREATE TABLE t (id int PRIMARY KEY, v real[]);
INSERT INTO t SELECT i, ARRAY[i % 7, i % 11, i % 13]::real[] FROM generate_series(1, 300) i;
CREATE INDEX t_idx ON t USING engram_hnsw (v);
GRANT SELECT ON t TO alice;
GRANT CREATE ON SCHEMA public TO bob;
});
($ret, $out, $err) = $node->psql('postgres', "SELECT * FROM engram_hnsw_check('t_idx')",
	extra_params => [ '-U', 'alice', '-v', 'VERBOSITY=verbose' ]);
isnt($ret, 0, 'engram_hnsw_check refuses a role that does not own the index');
like($err, qr/ERROR:\s+42501: must be owner of index t_idx/,
	'... with "must be owner of index t_idx" (42501)');
is($node->safe_psql('postgres', 'SELECT count(*) FROM t', extra_params => [ '-U', 'alice' ]),
	300, 'alice can read the table (the refusal is about ownership only)');

$node->safe_psql('postgres', q{
CREATE TABLE bob_t (id int, v real[]);
INSERT INTO bob_t SELECT i, ARRAY[i, i + 1]::real[] FROM generate_series(1, 50) i;
CREATE INDEX bob_idx ON bob_t USING engram_hnsw (v);
}, extra_params => [ '-U', 'bob' ]);
($ret, $out, $err) = $node->psql('postgres', "SELECT elements FROM engram_hnsw_check('bob_idx')",
	extra_params => [ '-U', 'bob' ]);
is($ret, 0, 'the owner (not a superuser) may run engram_hnsw_check') or diag($err);
is($out, 50, '... and gets the counts');
($ret, $out, $err) = $node->psql('postgres', "SELECT * FROM engram_hnsw_check('bob_idx')",
	extra_params => [ '-U', 'alice', '-v', 'VERBOSITY=verbose' ]);
like($err, qr/ERROR:\s+42501: must be owner of index bob_idx/,
	'another non-owner is refused on bob\'s index');
is($node->safe_psql('postgres', "SELECT elements FROM engram_hnsw_check('bob_idx')"),
	50, 'a superuser may run engram_hnsw_check on any index');

# engram_hnsw_merge_pending: the same rule
($ret, $out, $err) = $node->psql('postgres', "SELECT engram_hnsw_merge_pending('t_idx')",
	extra_params => [ '-U', 'alice', '-v', 'VERBOSITY=verbose' ]);
like($err, qr/ERROR:\s+42501: must be owner of index t_idx/,
	'engram_hnsw_merge_pending refuses a role that does not own the index (42501)');
$node->safe_psql('postgres', 'INSERT INTO bob_t SELECT i, ARRAY[i, i + 2]::real[] FROM generate_series(51, 60) i',
	extra_params => [ '-U', 'bob' ]);
($ret, $out, $err) = $node->psql('postgres', "SELECT engram_hnsw_merge_pending('bob_idx')",
	extra_params => [ '-U', 'bob' ]);
is($ret, 0, 'the owner (not a superuser) may run engram_hnsw_merge_pending') or diag($err);
is($out, 10, '... and it merges the 10 pending rows');

# ---------------------------------------------------------------- schema-qualified install

$node->safe_psql('postgres', 'CREATE DATABASE sp');
$node->safe_psql('sp', q{
-- decoys in public, before and after the extension exists: nothing of the
-- extension may ever resolve to them
CREATE TABLE decoy_calls (f text);
CREATE FUNCTION public.l2_distance(real[], real[]) RETURNS float8 LANGUAGE plpgsql AS
$$ BEGIN INSERT INTO decoy_calls VALUES ('l2_distance'); RETURN 0; END $$;
CREATE FUNCTION public.cosine_distance(real[], real[]) RETURNS float8 LANGUAGE plpgsql AS
$$ BEGIN INSERT INTO decoy_calls VALUES ('cosine_distance'); RETURN 0; END $$;
CREATE FUNCTION public.negative_inner_product(real[], real[]) RETURNS float8 LANGUAGE plpgsql AS
$$ BEGIN INSERT INTO decoy_calls VALUES ('negative_inner_product'); RETURN 0; END $$;
CREATE OPERATOR public.<-> (LEFTARG = real[], RIGHTARG = real[], FUNCTION = public.l2_distance);
CREATE OPERATOR public.<=> (LEFTARG = real[], RIGHTARG = real[], FUNCTION = public.cosine_distance);
CREATE OPERATOR public.<#> (LEFTARG = real[], RIGHTARG = real[], FUNCTION = public.negative_inner_product);
CREATE SCHEMA x;
CREATE EXTENSION engram_hnsw SCHEMA x;
});
is($node->safe_psql('sp', q{SELECT extnamespace::regnamespace FROM pg_extension WHERE extname = 'engram_hnsw'}),
	'x', 'CREATE EXTENSION engram_hnsw SCHEMA x puts it into x');

# every operator, opclass member and support function refers to x or pg_catalog
is($node->safe_psql('sp', q{
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'engram_hnsw'),
members AS (SELECT classid, objid FROM pg_depend, ext WHERE refobjid = ext.oid AND deptype = 'e'),
refs AS (
  -- operators: their function and commutator
  SELECT o.oprname AS what, p.pronamespace AS ns FROM members m
    JOIN pg_operator o ON m.classid = 'pg_operator'::regclass AND o.oid = m.objid
    JOIN pg_proc p ON p.oid = o.oprcode
  UNION ALL
  SELECT o.oprname || ' commutator', c.oprnamespace FROM members m
    JOIN pg_operator o ON m.classid = 'pg_operator'::regclass AND o.oid = m.objid
    JOIN pg_operator c ON c.oid = o.oprcom
  UNION ALL
  -- operator classes: their operators, ordering families and support functions
  SELECT oc.opcname || ' operator', op.oprnamespace FROM members m
    JOIN pg_opclass oc ON m.classid = 'pg_opclass'::regclass AND oc.oid = m.objid
    JOIN pg_amop ao ON ao.amopfamily = oc.opcfamily
    JOIN pg_operator op ON op.oid = ao.amopopr
  UNION ALL
  SELECT oc.opcname || ' sort family', f.opfnamespace FROM members m
    JOIN pg_opclass oc ON m.classid = 'pg_opclass'::regclass AND oc.oid = m.objid
    JOIN pg_amop ao ON ao.amopfamily = oc.opcfamily
    JOIN pg_opfamily f ON f.oid = ao.amopsortfamily
  UNION ALL
  SELECT oc.opcname || ' support', p.pronamespace FROM members m
    JOIN pg_opclass oc ON m.classid = 'pg_opclass'::regclass AND oc.oid = m.objid
    JOIN pg_amproc ap ON ap.amprocfamily = oc.opcfamily
    JOIN pg_proc p ON p.oid = ap.amproc
  UNION ALL
  -- the access method's handler
  SELECT a.amname, p.pronamespace FROM members m
    JOIN pg_am a ON m.classid = 'pg_am'::regclass AND a.oid = m.objid
    JOIN pg_proc p ON p.oid = a.amhandler)
SELECT coalesce(string_agg(DISTINCT what || ' -> ' || ns::regnamespace::text, ', '), 'none')
  FROM refs WHERE ns::regnamespace::text NOT IN ('x', 'pg_catalog')}),
	'none', 'every operator, operator class and handler of the extension refers only to x or pg_catalog');

my $sp = q{
SET search_path = public;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
};
is($node->safe_psql('sp', "$sp SELECT x.l2_distance('{0,0}', '{3,4}')"), 5,
	'x.l2_distance works with search_path = public');
is($node->safe_psql('sp', "$sp SELECT '{0,0}'::real[] OPERATOR(x.<->) '{3,4}'::real[]"), 5,
	'OPERATOR(x.<->) works with search_path = public');
is($node->safe_psql('sp', "$sp SELECT round((x.cosine_distance('{1,0}', '{0,1}'))::numeric, 6)"), '1.000000',
	'x.cosine_distance works');
is($node->safe_psql('sp', "$sp SELECT x.inner_product('{1,2}', '{3,4}')"), 11, 'x.inner_product works');

my ($r, $o, $e) = $node->psql('sp', $sp . q{
CREATE TABLE items (id int PRIMARY KEY, v real[]);
INSERT INTO items SELECT i, ARRAY[sin(i), cos(i), sin(i * 0.37)]::real[] FROM generate_series(1, 500) i;
CREATE INDEX items_l2 ON items USING engram_hnsw (v x.real_l2_ops) WITH (m = 8);
CREATE INDEX items_cos ON items USING engram_hnsw (v x.real_cosine_ops);
CREATE INDEX items_ip ON items USING engram_hnsw (v x.real_ip_ops);
CREATE TABLE mem (id int PRIMARY KEY, space_id int, v real[]);
INSERT INTO mem SELECT i, i % 3, ARRAY[sin(i), cos(i)]::real[] FROM generate_series(1, 300) i;
CREATE INDEX mem_idx ON mem USING engram_hnsw (space_id, v x.real_l2_ops);
INSERT INTO items SELECT i, ARRAY[sin(i), cos(i), sin(i * 0.37)]::real[] FROM generate_series(501, 600) i;
});
is($r, 0, 'indexes with the operator classes x.real_*_ops (and a memory-space index) build and take inserts with search_path = public')
  or diag($e);

for my $q (
	[ 'l2',     'items', 'items_l2',  'OPERATOR(x.<->)', 'x.l2_distance' ],
	[ 'cosine', 'items', 'items_cos', 'OPERATOR(x.<=>)', 'x.cosine_distance' ],
	[ 'ip',     'items', 'items_ip',  'OPERATOR(x.<#>)', 'x.negative_inner_product' ],
	[ 'space',  'mem WHERE space_id = 1', 'mem_idx', 'OPERATOR(x.<->)', 'x.l2_distance' ])
{
	my ($name, $from, $index, $op, $fn) = @$q;
	my $qv = $name eq 'space' ? q{'{0.5,0.5}'::real[]} : q{'{0.5,0.5,0.1}'::real[]};
	my $sql = "SELECT id FROM $from ORDER BY v $op $qv LIMIT 5";
	like($node->safe_psql('sp', "$sp EXPLAIN (COSTS OFF) $sql"), qr/Index Scan using $index/,
		"$name: ORDER BY v $op uses $index with search_path = public");
	my $idx   = $node->safe_psql('sp', "$sp SET engram_hnsw.ef_search = 400; SELECT string_agg(id::text, ',') FROM ($sql) s");
	my $exact = $node->safe_psql('sp', "SET search_path = public; SELECT string_agg(id::text, ',') FROM "
		  . "(SELECT id FROM $from ORDER BY $fn(v, $qv) LIMIT 5) s");
	is($idx, $exact, "$name: the index scan returns the exact answer ($idx)");
}
for my $index ('items_l2', 'items_cos', 'items_ip', 'mem_idx')
{
	($r, $o, $e) = $node->psql('sp', "$sp SELECT unreachable FROM x.engram_hnsw_check('$index')");
	is($r, 0, "x.engram_hnsw_check('$index') works with search_path = public") or diag($e);
}
is($node->safe_psql('sp', 'SELECT count(*) FROM decoy_calls'), 0,
	'the decoy functions in public were never called');

# ---------------------------------------------------------------- static check of the install script

my $sharedir = `pg_config --sharedir`;
chomp $sharedir;
my @scripts = glob("$sharedir/extension/engram_hnsw--*.sql");
ok(@scripts > 0, 'the install script(s) are installed') or diag("none in $sharedir/extension");
for my $script (@scripts)
{
	my $text = slurp_file($script);
	$text =~ s/--[^\n]*//g;            # comments
	$text =~ s{/\*.*?\*/}{}gs;
	$text =~ s/\$\$.*?\$\$//gs;        # function bodies
	my @bad;
	# objects created: CREATE FUNCTION / OPERATOR / OPERATOR CLASS / FAMILY / TYPE / AGGREGATE / CAST? / VIEW / TABLE
	while ($text =~ /CREATE\s+(?:OR\s+REPLACE\s+)?(FUNCTION|OPERATOR\s+CLASS|OPERATOR\s+FAMILY|OPERATOR|TYPE|AGGREGATE|VIEW|TABLE|SEQUENCE|DOMAIN)\s+([^\s(]+)/gi)
	{
		my ($kind, $name) = ($1, $2);
		push @bad, "CREATE $kind $name" unless $name =~ /^\@extschema\@\./;
	}
	# references: FUNCTION = f, HANDLER f, FUNCTION n f(, OPERATOR n op, COMMUTATOR/NEGATOR = OPERATOR(...)
	while ($text =~ /\b(FUNCTION\s*=\s*|HANDLER\s+|FUNCTION\s+\d+\s+|OPERATOR\s+\d+\s+|(?:COMMUTATOR|NEGATOR)\s*=\s*OPERATOR\s*\(\s*|FOR\s+ORDER\s+BY\s+)([^\s(,;]+)/gi)
	{
		my ($ctx, $ref) = ($1, $2);
		push @bad, "$ctx$ref" unless $ref =~ /^(\@extschema\@|pg_catalog)\./;
	}
	is(join('; ', @bad), '', "$script: every object and reference is schema-qualified");
}

diag sprintf("014_security.pl took %.0f s", time - $t_start);
$node->stop;
done_testing();
