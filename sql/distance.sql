--
-- distance: the distance functions and operators on real[], and every
-- input error they raise.
--

-- exact values on small integer vectors
SELECT l2_distance('{1,2,3}', '{4,6,3}') AS l2,
       '{1,2,3}'::real[] <-> '{4,6,3}' AS l2_op,
       inner_product('{1,2,3}', '{4,5,6}') AS ip,
       negative_inner_product('{1,2,3}', '{4,5,6}') AS neg_ip,
       '{1,2,3}'::real[] <#> '{4,5,6}' AS neg_ip_op,
       cosine_distance('{1,0}', '{0,1}') AS cos_orth,
       '{1,0}'::real[] <=> '{-1,0}' AS cos_opposite,
       '{3,4}'::real[] <=> '{6,8}' AS cos_same_dir;

-- a vector against itself
SELECT '{1,2,3}'::real[] <-> '{1,2,3}' AS l2_self,
       '{1,2,3}'::real[] <=> '{1,2,3}' AS cos_self,
       '{1,2,3}'::real[] <#> '{1,2,3}' AS neg_ip_self;

-- one-element vectors, negative and fractional elements
SELECT '{5}'::real[] <-> '{-3}' AS l2_1d,
       '{0.5,-0.25}'::real[] <#> '{2,4}' AS neg_ip_frac,
       inner_product('{-1,-2}', '{3,4}') AS ip_neg;

-- non-trivial values, rounded
SELECT round(('{1,2,3}'::real[] <-> '{0,0,0}')::numeric, 6) AS l2_norm,
       round(('{1,2,3}'::real[] <=> '{3,2,1}')::numeric, 6) AS cos,
       round(('{0.1,0.2,0.3}'::real[] <#> '{0.4,0.5,0.6}')::numeric, 6) AS neg_ip;

-- cosine distance of a zero vector is NaN
SELECT '{1,0}'::real[] <=> '{0,0}' AS cos_zero_right,
       cosine_distance('{0,0}', '{1,0}') AS cos_zero_left,
       '{0,0}'::real[] <=> '{0,0}' AS cos_zero_both,
       '{0,0}'::real[] <-> '{0,0}' AS l2_zero,
       '{0,0}'::real[] <#> '{1,1}' AS ip_zero;

-- long vectors (more than one block of the vectorised loop): exact sums
SELECT l2_distance(array_fill(1::real, ARRAY[1000]), array_fill(0::real, ARRAY[1000])) AS l2_1000,
       inner_product(array_fill(2::real, ARRAY[1000]), array_fill(3::real, ARRAY[1000])) AS ip_1000,
       cosine_distance(array_fill(2::real, ARRAY[1000]), array_fill(3::real, ARRAY[1000])) AS cos_1000,
       l2_distance(array_fill(1::real, ARRAY[4000]), array_fill(0::real, ARRAY[4000])) AS l2_4000;

-- the functions and their operators agree, and all are symmetric
CREATE TABLE dist_vec (id int, v real[]);
INSERT INTO dist_vec
SELECT i, ARRAY[sin(i), cos(i), sin(2 * i), cos(3 * i), i % 7 - 3]::real[]
FROM generate_series(1, 20) i;
SELECT count(*) AS pairs,
       bool_and(a.v <-> b.v = b.v <-> a.v) AS l2_symmetric,
       bool_and(a.v <=> b.v = b.v <=> a.v) AS cos_symmetric,
       bool_and(a.v <#> b.v = b.v <#> a.v) AS ip_symmetric,
       bool_and(a.v <-> b.v = l2_distance(a.v, b.v)) AS l2_op_eq_fn,
       bool_and(a.v <=> b.v = cosine_distance(a.v, b.v)) AS cos_op_eq_fn,
       bool_and(a.v <#> b.v = negative_inner_product(a.v, b.v)) AS ip_op_eq_fn,
       bool_and(inner_product(a.v, b.v) = -negative_inner_product(a.v, b.v)) AS ip_neg,
       bool_and(a.v <-> b.v >= 0) AS l2_nonneg,
       bool_and(a.v <=> b.v BETWEEN 0 AND 2) AS cos_range,
       bool_and((a.v <-> b.v = 0) = (a.id = b.id)) AS l2_zero_iff_same
FROM dist_vec a, dist_vec b;

-- the commutator is declared (the planner may swap the arguments)
SELECT oprname, oprcom::regoperator
FROM pg_operator
WHERE oprname IN ('<->', '<=>', '<#>')
  AND oprleft = 'real[]'::regtype AND oprright = 'real[]'::regtype
ORDER BY oprname;

-- strict: NULL arguments give NULL
SELECT '{1,2}'::real[] <-> NULL AS l2_null,
       NULL <=> '{1,2}'::real[] AS cos_null,
       inner_product(NULL, NULL) IS NULL AS ip_null;

--
-- input errors
--
-- different lengths
SELECT '{1,2}'::real[] <-> '{1,2,3}';
SELECT cosine_distance('{1,2,3,4}', '{1}');
SELECT inner_product('{1,2,3}', '{1,2}');
-- NULL elements (in either argument)
SELECT '{1,NULL}'::real[] <-> '{1,2}';
SELECT '{1,2}'::real[] <#> '{NULL,2}';
-- multi-dimensional arrays
SELECT '{{1,2},{3,4}}'::real[] <-> '{1,2}';
SELECT '{1,2,3,4}'::real[] <=> '{{1,2},{3,4}}';
-- NaN
SELECT '{1,NaN}'::real[] <-> '{1,2}';
SELECT inner_product('{1,2,3}', '{1,2,NaN}');
-- infinity
SELECT '{1,2}'::real[] <-> '{Infinity,2}';
SELECT cosine_distance('{-Infinity,1}', '{1,2}');
-- elements are checked once a distance is not finite: cases whose sums could
-- hide a bad element (inf - inf, inf * 0, a zero vector against inf), a bad
-- element beside a dimension mismatch, and finite vectors that overflow
SELECT '{Infinity,1}'::real[] <-> '{Infinity,1}';
SELECT '{-Infinity,1}'::real[] <#> '{0,1}';
SELECT inner_product('{1,1}', '{Infinity,-Infinity}');
SELECT cosine_distance('{0,0}', '{1,NaN}');
SELECT '{NaN,1}'::real[] <-> '{1,2,3}';
SELECT '{3e38}'::real[] <-> '{-3e38}', '{3e38,3e38}'::real[] <#> '{3e38,-3e38}';
-- empty arrays
SELECT '{}'::real[] <-> '{}';
SELECT '{1}'::real[] <#> '{}';
-- lower bound other than 1
SELECT '[0:1]={1,2}'::real[] <-> '{1,2}';
SELECT '{1,2}'::real[] <=> '[2:3]={1,2}';
-- a value that does not even fit into real
SELECT '{1e40}'::real[] <-> '{1}';

-- SQLSTATEs of the errors above
CREATE FUNCTION dist_error(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
SELECT q, dist_error(q) FROM (VALUES
	($$SELECT '{1,2}'::real[] <-> '{1,2,3}'$$),
	($$SELECT '{1,NULL}'::real[] <-> '{1,2}'$$),
	($$SELECT '{{1,2},{3,4}}'::real[] <-> '{1,2}'$$),
	($$SELECT '{1,NaN}'::real[] <=> '{1,2}'$$),
	($$SELECT '{1,2}'::real[] <#> '{1,Infinity}'$$),
	($$SELECT '{}'::real[] <-> '{}'$$),
	($$SELECT '[0:1]={1,2}'::real[] <-> '{1,2}'$$)
) AS t(q);

DROP FUNCTION dist_error(text);
DROP TABLE dist_vec;
