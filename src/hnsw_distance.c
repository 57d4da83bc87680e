/*-------------------------------------------------------------------------
 *
 * hnsw_distance.c
 *	  Distance kernels over float arrays, validation of real[] input, and
 *	  the SQL-callable distance functions.
 *
 * The kernels themselves are in hnsw_kernels.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"

#include "engram_hnsw.h"

float
hnsw_neg_dot(const float *a, const float *b, int n)
{
	return -hnsw_dot(a, b, n);
}

/* the index-internal distance of a metric (smaller is closer) */
HnswDistanceFn
hnsw_metric_distance(int metric)
{
	switch (metric)
	{
		case HNSW_METRIC_L2:
			return hnsw_l2_squared;
		case HNSW_METRIC_COSINE:
		case HNSW_METRIC_IP:
			return hnsw_neg_dot;
	}
	elog(ERROR, "unknown engram_hnsw metric %d", metric);
	return NULL;				/* keep compiler quiet */
}

/*
 * The distance the neighbour-selection heuristic tests redundancy with
 * ("nearer to a kept neighbour than to the base"): a metric, in which a
 * vector is nearest to itself.  For L2 and cosine (unit vectors: the
 * negative inner product orders pairs as the euclidean distance does) that
 * is the index-internal distance.  The negative inner product is no
 * metric: a candidate is "nearer" to any neighbour of larger norm in its
 * direction than to the base, or even to itself, so the first neighbour
 * kept, usually one of the largest vectors, would prune every other
 * candidate.  Inner-product indexes test redundancy by euclidean distance;
 * candidates are still found and ranked by inner product.
 */
HnswDistanceFn
hnsw_selection_distance(int metric)
{
	if (metric == HNSW_METRIC_IP)
		return hnsw_l2_squared;
	return hnsw_metric_distance(metric);
}

/*
 * Scale v to unit length.  Returns false for a zero vector (left as it is).
 */
bool
hnsw_normalize(float *v, int n)
{
	double		norm = 0.0;

	for (int i = 0; i < n; i++)
		norm += (double) v[i] * v[i];
	if (norm <= 0.0)
		return false;
	norm = sqrt(norm);
	for (int i = 0; i < n; i++)
		v[i] = (float) (v[i] / norm);
	return true;
}

/*
 * Check that a real[] has the shape of a vector and return a pointer to its
 * elements (inside the array, no copy); the elements are not looked at.
 */
static const float *
array_shape(ArrayType *arr, int *dims, const char *what)
{
	if (ARR_ELEMTYPE(arr) != FLOAT4OID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("%s must be of type real[]", what)));
	if (ARR_NDIM(arr) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s must not be empty", what)));
	if (ARR_NDIM(arr) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s must be a one-dimensional array, not %d-dimensional",
						what, ARR_NDIM(arr))));
	if (ARR_LBOUND(arr)[0] != 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s must have lower bound 1, not %d",
						what, ARR_LBOUND(arr)[0])));
	if (array_contains_nulls(arr))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not contain NULL elements", what)));
	*dims = ARR_DIMS(arr)[0];
	return (const float *) ARR_DATA_PTR(arr);
}

/* error out on the first NaN or infinite element of data */
static void
check_finite(const float *data, int n, const char *what)
{
	if (hnsw_all_finite(data, n))
		return;
	for (int i = 0; i < n; i++)
	{
		if (isnan(data[i]))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("%s must not contain NaN (element %d)", what, i + 1)));
		if (isinf(data[i]))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("%s must not contain infinite values (element %d)", what, i + 1)));
	}
}

/*
 * Check that a real[] is a usable vector and return a pointer to its
 * elements (inside the array, no copy).  "what" names the argument in
 * error messages.
 */
const float *
hnsw_array_vector(ArrayType *arr, int *dims, const char *what)
{
	const float *data = array_shape(arr, dims, what);

	check_finite(data, *dims, what);
	return data;
}

/*
 * Fetch both arguments of a distance function and check their shapes.  Their
 * elements are checked by distance_done(), after the distance, and only if
 * it is not finite; when the dimensions differ, first, so that a bad
 * element is still named before the mismatch.
 */
static void
distance_args(FunctionCallInfo fcinfo, const float **a, const float **b, int *n)
{
	ArrayType  *x = PG_GETARG_ARRAYTYPE_P(0);
	ArrayType  *y = PG_GETARG_ARRAYTYPE_P(1);
	int			na,
				nb;

	*a = array_shape(x, &na, "first vector");
	*b = array_shape(y, &nb, "second vector");
	if (na != nb)
	{
		check_finite(*a, na, "first vector");
		check_finite(*b, nb, "second vector");
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("vectors have different dimensions: %d and %d", na, nb)));
	}
	*n = na;
}

/*
 * After a distance whose sums came to sum: a NaN or infinite element of
 * either vector makes some term of every sum here NaN or infinite (inf -
 * inf, inf * 0 and NaN give NaN, other terms with inf are infinite), and
 * such a term leaves the sum NaN or infinite: nothing cancels an infinity
 * but another, which gives NaN.  So the elements are only looked at when
 * the sum is not finite (finite vectors whose sum overflows pass, as they
 * always have); this saves a second pass over both vectors on every row an
 * ORDER BY computes the distance of.
 */
static void
distance_done(const float *a, const float *b, int n, double sum)
{
	if (isfinite(sum))
		return;
	check_finite(a, n, "first vector");
	check_finite(b, n, "second vector");
}

PG_FUNCTION_INFO_V1(engram_l2_distance);
Datum
engram_l2_distance(PG_FUNCTION_ARGS)
{
	const float *a,
			   *b;
	int			n;
	double		d2;

	distance_args(fcinfo, &a, &b, &n);
	d2 = hnsw_l2_squared(a, b, n);
	distance_done(a, b, n, d2);
	PG_RETURN_FLOAT8(sqrt(d2));
}

PG_FUNCTION_INFO_V1(engram_inner_product);
Datum
engram_inner_product(PG_FUNCTION_ARGS)
{
	const float *a,
			   *b;
	int			n;
	double		dot;

	distance_args(fcinfo, &a, &b, &n);
	dot = hnsw_dot(a, b, n);
	distance_done(a, b, n, dot);
	PG_RETURN_FLOAT8(dot);
}

PG_FUNCTION_INFO_V1(engram_negative_inner_product);
Datum
engram_negative_inner_product(PG_FUNCTION_ARGS)
{
	const float *a,
			   *b;
	int			n;
	double		dot;

	distance_args(fcinfo, &a, &b, &n);
	dot = hnsw_dot(a, b, n);
	distance_done(a, b, n, dot);
	/* + 0.0 turns -0 into 0 */
	PG_RETURN_FLOAT8(-dot + 0.0);
}

/*
 * The compact code of vec (prepared: unit-normalised for cosine) in the
 * graph's code kind, palloc'd.
 */
unsigned char *
hnsw_encode_vector(HnswGraph *g, const float *vec)
{
	unsigned char *code = palloc(Max(hnsw_code_size(g->code_kind, g->dims), 1));
	float	   *scratch = palloc(sizeof(float) *
								 Max(hnsw_code_scratch_floats(g->code_kind, g->dims), 1));

	hnsw_code_encode(g->code_kind, g->code_seed, g->metric, vec, g->dims, code, scratch);
	pfree(scratch);
	return code;
}

/*
 * 1 - cos(a, b).  A zero vector has no direction: the result is NaN, as in
 * IEEE arithmetic (and such vectors are not indexed by real_cosine_ops).
 */
PG_FUNCTION_INFO_V1(engram_cosine_distance);
Datum
engram_cosine_distance(PG_FUNCTION_ARGS)
{
	const float *a,
			   *b;
	int			n;
	double		dot,
				na,
				nb,
				sim;

	distance_args(fcinfo, &a, &b, &n);
	dot = hnsw_dot(a, b, n);
	na = hnsw_dot(a, a, n);
	nb = hnsw_dot(b, b, n);
	distance_done(a, b, n, dot + na + nb);
	if (na == 0.0 || nb == 0.0)
		PG_RETURN_FLOAT8(get_float8_nan());
	sim = dot / sqrt(na * nb);
	/* rounding can push |sim| slightly past 1 */
	if (sim > 1.0)
		sim = 1.0;
	else if (sim < -1.0)
		sim = -1.0;
	PG_RETURN_FLOAT8(1.0 - sim);
}
