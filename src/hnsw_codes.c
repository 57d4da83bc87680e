/*-------------------------------------------------------------------------
 *
 * hnsw_codes.c
 *	  Compact vector codes (see hnsw_codes.h): encoding, query preparation,
 *	  and the estimators with their error bounds.  The inner loops are in
 *	  hnsw_codes_kernels.c.
 *
 * Three kinds:
 *
 * int8: x_hat[i] = lo + step * c[i], lo the minimum of x, step its range
 *	 / 255, c[i] the nearest of 0..255.  Code: lo, step, e (floats), the
 *	 sum of c and of c^2 (32-bit integers), then dims bytes.  e bounds
 *	 |x - x_hat| (computed in double, rounded up).  The query is quantized
 *	 to 16-bit integers, q_hat = s * u, with as many bits as keep the
 *	 integer dot product u.c exact in 32 bits (15 up to 257 dimensions, 9
 *	 at 16000), so that the kernel is an integer multiply-add;
 *	 r = |q - q_hat| is kept.  Then q.x_hat = lo sum(q) + step q.c, with
 *	 q.c = s u.c within r |c|, and |q - x_hat|^2 = |q - lo|^2 -
 *	 2 step (q.c - lo sum(c)) + step^2 |c|^2, in double.  The bound is
 *	 deterministic: for L2 the exact distance d^2 lies within
 *	 [(d_hat - e)^2, (d_hat + e)^2], d_hat = |q - x_hat| known within the
 *	 query's quantization error 2 step r |c| and the double rounding; for
 *	 the inner product |q.x - q.x_hat| <= |q| e, plus step r |c|.
 *
 * fp16: x_hat[i] = the IEEE half nearest to x[i], values beyond the half
 *	 range clamped to +-65504 (their error counted in e, so the bound
 *	 holds, only wider).  Code: e, |x_hat| (2 floats) then dims halves.
 *	 The query stays float: the estimate is the float sum |q - x_hat|^2
 *	 or -q.x_hat, its rounding allowed for in the bound, which is
 *	 otherwise that of int8 (with no query quantization).
 *
 * rabitq: RaBitQ (Gao and Long, SIGMOD 2024), centred at the origin.  The
 *	 vector is normalised (o = x / |x|), padded with zeros to D, a power of
 *	 two of at least 64, and rotated by P = (H S3)(H S2)(H S1), H the
 *	 normalised Walsh-Hadamard transform and S1..S3 random sign flips drawn
 *	 from seed.  The code keeps bit i = [(P o)_i > 0]; it stands for the
 *	 unit vector o_bar = P^-1 x_bar, x_bar[i] = (2 bit_i - 1) / sqrt(D).
 *	 Code: D/8 bytes of bits, then |x|, <o_bar, o> = sum |(P o)_i| /
 *	 sqrt(D) and the number of set bits (12 bytes).  The query's unit
 *	 vector is rotated alike and quantized to 4 bits per dimension with
 *	 randomised rounding (q_bar = v_l + delta * u, u in 0..15), so that
 *	 <x_bar, q_bar> comes from four popcounts of ANDed bit planes.  The
 *	 estimator <o, q> ~ <o_bar, q_bar> / <o_bar, o> is unbiased; by the
 *	 paper's analysis its error is about normal with standard deviation at
 *	 most sqrt((1 - <o_bar,o>^2) / (<o_bar,o>^2 (D - 1))), to which the
 *	 randomised rounding adds at most delta / (2 <o_bar, o>) (in
 *	 quadrature).  The bound is epsilon_0 = 1.9 times that: it holds with
 *	 probability about 94% per pair (a normal variable stays within 1.9
 *	 standard deviations with probability 0.943; more when |<o, q>| is
 *	 near 1, since the error scales with sqrt(1 - <o, q>^2)).  Distances
 *	 follow from |x|, |q| and <o, q>: |x|^2 + |q|^2 - 2 |x| |q| <o, q>
 *	 for L2, -|x| |q| <o, q> for the inner product and cosine.
 *
 * Encoding and query preparation are plain scalar C, built without
 * contraction or reassociation (see the Makefile), so codes are the same
 * bytes on every machine and kernel variant.  The int8 kernel sums
 * integers, exactly; the fp16 kernels sum in float in some order: their
 * bounds allow a relative error of gamma(k) = k u / (1 - k u), u = 2^-24,
 * k = dims / 8 + 67, four times the depth of the kernels' 32-lane sums.
 *
 *-------------------------------------------------------------------------
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "hnsw_codes.h"

/*
 * test/kernels builds this file once per instruction set, with the names
 * of its entry points and of the kernels it calls prefixed, to check the
 * variants against each other (as for hnsw_kernels.c).
 */
#include "hnsw_codes_kernels.h"

#define CODES_U			0x1p-24		/* unit roundoff of float */
#define RABITQ_EPS0		1.9
#define RABITQ_ROUNDS	3
#define INT8_HEADER		20
#define FP16_HEADER		8
#define RABITQ_FACTORS	12
#define HALF_MAX		65504.0f

struct HnswCodeQuery
{
	int32_t		kind;
	int32_t		metric;
	int32_t		dims;
	int32_t		pad;			/* rabitq: padded dimension D */
	double		qnorm;			/* |q| */
	double		qnorm2;			/* |q|^2 */
	double		qscale;			/* int8: q_hat = qscale * (int16 query) */
	double		qresid;			/* int8: |q - q_hat| */
	double		qsum;			/* sum of q (int8) */
	double		qabs;			/* sum of |q| (int8) */
	double		rel;			/* gamma(k) of the kernels' float sums */
	double		vlow;			/* rabitq: lowest rotated query value */
	double		delta;			/* rabitq: quantization step of the query */
	double		usum;			/* rabitq: sum of the 4-bit query values */
	double		kbits;			/* rabitq: <x_bar, q_bar> = kbits * bitdot4 */
	double		kones;			/* + kones * set bits */
	double		kconst;			/* + kconst */
	uint64_t	data[];			/* int16 or float q[dims], or rabitq's planes */
};

/* ---------------------------------------------------------------- sizes */

static int
rabitq_pad(int dims)
{
	int			d = 64;

	while (d < dims)
		d *= 2;
	return d;
}

size_t
HNSW_KERNEL_NAME(hnsw_code_size) (int kind, int dims)
{
	switch (kind)
	{
		case HNSW_CODE_INT8:
			return INT8_HEADER + (size_t) dims;
		case HNSW_CODE_FP16:
			return FP16_HEADER + 2 * (size_t) dims;
		case HNSW_CODE_RABITQ:
			return (size_t) rabitq_pad(dims) / 8 + RABITQ_FACTORS;
	}
	return 0;
}

size_t
HNSW_KERNEL_NAME(hnsw_code_query_bytes) (int kind, int dims)
{
	size_t		head = sizeof(struct HnswCodeQuery);

	if (kind == HNSW_CODE_RABITQ)
	{
		size_t		pad = (size_t) rabitq_pad(dims);

		/* four bit planes, then the rotated query as scratch */
		return head + pad / 2 + pad * sizeof(float);
	}
	if (kind == HNSW_CODE_INT8)
		return head + ((size_t) dims * sizeof(int16_t) + 7) / 8 * 8;
	return head + ((size_t) dims * sizeof(float) + 7) / 8 * 8;
}

size_t
HNSW_KERNEL_NAME(hnsw_code_scratch_floats) (int kind, int dims)
{
	return kind == HNSW_CODE_RABITQ ? (size_t) rabitq_pad(dims) : 0;
}

const char *
HNSW_KERNEL_NAME(hnsw_code_name) (int kind)
{
	switch (kind)
	{
		case HNSW_CODE_INT8:
			return "int8";
		case HNSW_CODE_RABITQ:
			return "rabitq";
		case HNSW_CODE_FP16:
			return "fp16";
	}
	return NULL;
}

/* ---------------------------------------------------------------- helpers */

/* v as a float no smaller than v (a stored bound must not shrink) */
static float
round_up(double v)
{
	float		f;

	v *= 1.0 + 0x1p-40;			/* the double arithmetic that produced v */
	f = (float) v;
	if ((double) f < v)
		f = nextafterf(f, INFINITY);
	return f;
}

static void
put_float(unsigned char *p, float f)
{
	memcpy(p, &f, sizeof(f));
}

static float
get_float(const unsigned char *p)
{
	float		f;

	memcpy(&f, p, sizeof(f));
	return f;
}

/* relative error allowed for a kernel's float sum of n terms */
static double
sum_gamma(int n)
{
	double		k = (double) (n / 8 + 67);

	return k * CODES_U / (1.0 - k * CODES_U);
}

/* splitmix64: the deterministic generator of rotations and rounding */
static uint64_t
splitmix(uint64_t *state)
{
	uint64_t	z = (*state += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/*
 * The nearest IEEE half of f (round to nearest, ties to even), f within
 * +-65504.  Bit arithmetic only, so every machine gives the same bits.
 */
static uint16_t
float_to_half(float f)
{
	uint32_t	u,
				a,
				m,
				q,
				r,
				halfway;
	uint16_t	sign;
	int			e,
				s;

	memcpy(&u, &f, sizeof(u));
	sign = (uint16_t) ((u >> 16) & 0x8000);
	a = u & 0x7fffffff;
	if (a >= 0x477fe000)		/* 65504 (callers clamp) */
		return sign | 0x7bff;
	e = (int) (a >> 23) - 127;
	if (e < -25 || a == 0)		/* below half the least subnormal: 0 */
		return sign;
	m = (a & 0x7fffff) | 0x800000;
	if (e >= -14)
	{
		/* normal: keep 10 of the 23 mantissa bits */
		q = ((uint32_t) (e + 15) << 10) | ((m >> 13) & 0x3ff);
		r = m & 0x1fff;
		halfway = 0x1000;
	}
	else
	{
		/* subnormal: the value in units of 2^-24 is m * 2^(e + 1) */
		s = -e - 1;				/* 14..24 */
		q = m >> s;
		r = m & ((1u << s) - 1);
		halfway = 1u << (s - 1);
	}
	if (r > halfway || (r == halfway && (q & 1)))
		q++;					/* a carry moves into the exponent, as it should */
	return sign | (uint16_t) q;
}

/* the float value of an IEEE half (never infinite or NaN here) */
static double
half_value(uint16_t h)
{
	int			e = (h >> 10) & 0x1f;
	double		m = (double) (h & 0x3ff);
	double		v = e == 0 ? ldexp(m, -24) : ldexp(1024.0 + m, e - 25);

	return (h & 0x8000) ? -v : v;
}

/*
 * The random rotation of RaBitQ, in place on pad floats: RABITQ_ROUNDS
 * times a sign flip drawn from seed and the normalised fast Walsh-Hadamard
 * transform.  An orthogonal map, the same for every vector of an index.
 */
static void
rabitq_rotate(float *v, int pad, uint32_t seed)
{
	uint64_t	state = 0x5851F42D4C957F2DULL ^ seed;
	float		norm = (float) (1.0 / sqrt((double) pad));

	for (int round = 0; round < RABITQ_ROUNDS; round++)
	{
		for (int i = 0; i < pad; i += 64)
		{
			uint64_t	signs = splitmix(&state);

			for (int j = 0; j < 64; j++)
				if ((signs >> j) & 1)
					v[i + j] = -v[i + j];
		}
		for (int len = 1; len < pad; len *= 2)
			for (int i = 0; i < pad; i += 2 * len)
				for (int j = i; j < i + len; j++)
				{
					float		a = v[j];
					float		b = v[j + len];

					v[j] = a + b;
					v[j + len] = a - b;
				}
		for (int i = 0; i < pad; i++)
			v[i] *= norm;
	}
}

/* ---------------------------------------------------------------- encoding */

static void
encode_int8(const float *x, int dims, unsigned char *code)
{
	float		lo = x[0],
				hi = x[0],
				step;
	double		err2 = 0,
				delta;
	uint32_t	csum = 0,
				csq = 0;

	if (dims <= 0)
	{
		memset(code, 0, INT8_HEADER);
		return;
	}

	for (int i = 1; i < dims; i++)
	{
		lo = x[i] < lo ? x[i] : lo;
		hi = x[i] > hi ? x[i] : hi;
	}
	step = (float) (((double) hi - (double) lo) / 255.0);
	for (int i = 0; i < dims; i++)
	{
		double		c = 0;
		double		d;

		if (step > 0)
		{
			c = floor(((double) x[i] - lo) / step + 0.5);
			c = c < 0 ? 0 : (c > 255 ? 255 : c);
		}
		code[INT8_HEADER + i] = (unsigned char) c;
		d = (double) x[i] - ((double) lo + (double) step * c);
		err2 += d * d;
		csum += (uint32_t) c;
		csq += (uint32_t) (c * c);	/* at most 255^2 * 16000 < 2^32 */
	}

	/* lo + step * c rounds in double: at most this much in all */
	delta = 0x1p-50 * (fabs((double) lo) + 255.0 * (double) step) * sqrt((double) dims);
	put_float(code, lo);
	put_float(code + 4, step);
	put_float(code + 8, round_up(sqrt(err2) + delta));
	memcpy(code + 12, &csum, sizeof(csum));
	memcpy(code + 16, &csq, sizeof(csq));
}

static void
encode_fp16(const float *x, int dims, unsigned char *code)
{
	double		err2 = 0,
				n2 = 0;

	for (int i = 0; i < dims; i++)
	{
		float		v = x[i] > HALF_MAX ? HALF_MAX : (x[i] < -HALF_MAX ? -HALF_MAX : x[i]);
		uint16_t	h = float_to_half(v);
		double		hv = half_value(h);
		double		d = (double) x[i] - hv;

		memcpy(code + FP16_HEADER + 2 * i, &h, sizeof(h));
		err2 += d * d;
		n2 += hv * hv;
	}
	put_float(code, round_up(sqrt(err2)));
	put_float(code + 4, round_up(sqrt(n2)));
}

static void
encode_rabitq(uint32_t seed, const float *x, int dims, unsigned char *code,
			  float *v)
{
	int			pad = rabitq_pad(dims);
	int			words = pad / 64;
	double		norm2 = 0,
				abssum = 0,
				vnorm2 = 0,
				norm;
	uint32_t	ones = 0;

	for (int i = 0; i < dims; i++)
		norm2 += (double) x[i] * x[i];
	norm = sqrt(norm2);
	for (int i = 0; i < pad; i++)
		v[i] = (i < dims && norm > 0) ? (float) (x[i] / norm) : 0.0f;
	if (norm > 0)
		rabitq_rotate(v, pad, seed);
	for (int w = 0; w < words; w++)
	{
		uint64_t	bits = 0;

		for (int j = 0; j < 64; j++)
		{
			double		vi = v[w * 64 + j];

			if (vi > 0)
			{
				bits |= (uint64_t) 1 << j;
				ones++;
			}
			abssum += fabs(vi);
			vnorm2 += vi * vi;
		}
		memcpy(code + 8 * w, &bits, sizeof(bits));
	}
	put_float(code + 8 * words, (float) norm);
	/* <o_bar, o>, o being the rotated vector made exactly unit again */
	put_float(code + 8 * words + 4,
			  norm > 0 ? (float) (abssum / sqrt((double) pad * vnorm2)) : 1.0f);
	memcpy(code + 8 * words + 8, &ones, sizeof(ones));
}

void
HNSW_KERNEL_NAME(hnsw_code_encode) (int kind, uint32_t seed, int metric,
									const float *x, int dims,
									unsigned char *code, float *scratch)
{
	(void) metric;				/* the codes do not depend on it */
	switch (kind)
	{
		case HNSW_CODE_INT8:
			encode_int8(x, dims, code);
			break;
		case HNSW_CODE_FP16:
			encode_fp16(x, dims, code);
			break;
		case HNSW_CODE_RABITQ:
			encode_rabitq(seed, x, dims, code, scratch);
			break;
	}
}

/* ---------------------------------------------------------------- queries */

static void
prepare_rabitq(struct HnswCodeQuery *cq, uint32_t seed, const float *q)
{
	int			pad = cq->pad;
	int			words = pad / 64;
	uint64_t   *planes = cq->data;
	float	   *v = (float *) (cq->data + 4 * words);
	uint64_t	state = 0x2545F4914F6CDD1DULL ^ seed;
	float		lo,
				hi;
	double		usum = 0;

	memset(planes, 0, 4 * words * sizeof(uint64_t));
	for (int i = 0; i < pad; i++)
		v[i] = (i < cq->dims && cq->qnorm > 0) ? (float) (q[i] / cq->qnorm) : 0.0f;
	if (cq->qnorm > 0)
		rabitq_rotate(v, pad, seed);
	lo = hi = v[0];
	for (int i = 1; i < pad; i++)
	{
		lo = v[i] < lo ? v[i] : lo;
		hi = v[i] > hi ? v[i] : hi;
	}
	cq->vlow = lo;
	cq->delta = ((double) hi - lo) / 15.0;
	for (int i = 0; i < pad; i++)
	{
		/* randomised rounding: unbiased, error below delta */
		double		r = (double) (splitmix(&state) >> 11) * 0x1p-53;
		double		u = cq->delta > 0 ? floor((v[i] - cq->vlow) / cq->delta + r) : 0;
		/* a NaN (a damaged stored vector used as a query) counts as 0 */
		int			ui = !(u >= 0) ? 0 : (u > 15 ? 15 : (int) u);

		usum += ui;
		for (int p = 0; p < 4; p++)
			if ((ui >> p) & 1)
				planes[p * words + i / 64] |= (uint64_t) 1 << (i % 64);
	}
	cq->usum = usum;
	/* <x_bar, q_bar> = sum (2 b_i - 1) (v_l + delta u_i) / sqrt(D) */
	cq->kbits = 2.0 * cq->delta / sqrt((double) pad);
	cq->kones = 2.0 * cq->vlow / sqrt((double) pad);
	cq->kconst = -(cq->delta * usum + pad * cq->vlow) / sqrt((double) pad);
}

/*
 * The int8 query: q_hat = qscale * u, u 16-bit integers of at most qmax
 * in magnitude, qmax chosen so that |u.c| <= qmax * 255 * dims < 2^31.
 */
static void
prepare_int8(struct HnswCodeQuery *cq, const float *q)
{
	int			n = cq->dims;
	int16_t    *u = (int16_t *) cq->data;
	double		qmax = floor(2147483647.0 / (255.0 * (n > 0 ? n : 1)));
	double		amax = 0,
				r2a = 0,
				r2b = 0,
				r2,
				inv;
	int			i;

	qmax = qmax < 32767 ? qmax : 32767;
	for (i = 0; i < n; i++)
		amax = fabs((double) q[i]) > amax ? fabs((double) q[i]) : amax;
	cq->qscale = amax / qmax;
	inv = cq->qscale > 0 ? 1.0 / cq->qscale : 0;

	/*
	 * u = round(q / qscale), clamped.  Any rounding would do (the residual
	 * below is taken from u as it comes out): a product instead of a
	 * quotient, and floor(v + 0.5) as the truncation of a positive number,
	 * make this a few cycles per component instead of a division and a
	 * library floor.
	 */
	for (i = 0; i < n; i++)
	{
		double		v = q[i] * inv;

		v = v > qmax ? qmax : (v < -qmax ? -qmax : v);
		/* NaN, from a damaged stored vector, counts as 0 */
		v = (v == v) ? v : 0;
		u[i] = (int16_t) ((int32_t) (v + 32768.5) - 32768);
	}
	/* the residual in two independent sums */
	for (i = 0; i + 2 <= n; i += 2)
	{
		double		d0 = (double) q[i] - cq->qscale * u[i];
		double		d1 = (double) q[i + 1] - cq->qscale * u[i + 1];

		r2a += d0 * d0;
		r2b += d1 * d1;
	}
	if (i < n)
	{
		double		d = (double) q[i] - cq->qscale * u[i];

		r2a += d * d;
	}
	r2 = r2a + r2b;
	/* the double arithmetic of r itself */
	cq->qresid = sqrt(r2) * (1.0 + 0x1p-40) + 0x1p-50 * amax * sqrt((double) n);
}

void
HNSW_KERNEL_NAME(hnsw_code_query_prepare) (int kind, uint32_t seed, int metric,
										   const float *q, int dims,
										   HnswCodeQuery *cq)
{
	double		n2a = 0,
				n2b = 0,
				suma = 0,
				sumb = 0,
				absa = 0,
				absb = 0;
	int			i;

	memset(cq, 0, sizeof(*cq));
	cq->kind = kind;
	cq->metric = metric;
	cq->dims = dims;
	cq->pad = rabitq_pad(dims);
	/* two independent sums each: one chain of additions waits on itself */
	for (i = 0; i + 2 <= dims; i += 2)
	{
		double		x0 = q[i],
					x1 = q[i + 1];

		n2a += x0 * x0;
		n2b += x1 * x1;
		suma += x0;
		sumb += x1;
		absa += fabs(x0);
		absb += fabs(x1);
	}
	if (i < dims)
	{
		n2a += (double) q[i] * q[i];
		suma += q[i];
		absa += fabs((double) q[i]);
	}
	cq->qnorm2 = n2a + n2b;
	cq->qnorm = sqrt(cq->qnorm2);
	cq->qsum = suma + sumb;
	cq->qabs = absa + absb;
	cq->rel = sum_gamma(dims);
	if (kind == HNSW_CODE_RABITQ)
		prepare_rabitq(cq, seed, q);
	else if (kind == HNSW_CODE_INT8)
		prepare_int8(cq, q);
	else
		memcpy(cq->data, q, (size_t) dims * sizeof(float));
}

/* ---------------------------------------------------------------- estimates */

/*
 * Bound of an L2 estimate est when |q - x_hat|^2 lies within [lo2, hi2]
 * and |x - x_hat| <= e: the exact distance lies within
 * [(sqrt(lo2) - e)^2, (sqrt(hi2) + e)^2].
 */
static double
l2_bound(double est, double lo2, double hi2, double e, int dims)
{
	double		dlo = sqrt(lo2 > 0 ? lo2 : 0) - e;
	double		dhi = sqrt(hi2 > 0 ? hi2 : 0) + e;
	double		below,
				above;

	dlo = dlo > 0 ? dlo : 0;
	below = est - dlo * dlo;
	above = dhi * dhi - est;
	/* underflowing terms lose at most FLT_MIN each */
	return (below > above ? below : above) + (dims + 4) * (double) FLT_MIN;
}

/* estimate and bound (if bound is not NULL) of int8, see the file header */
static void
estimate_int8(const struct HnswCodeQuery *cq, const unsigned char *code,
			  double *est, double *bound)
{
	int			n = cq->dims;
	double		lo = get_float(code),
				step = get_float(code + 4),
				e = get_float(code + 8);
	uint32_t	csum,
				csq;
	double		qc,
				raw,
				quant,
				mag;
	/* relative rounding of the double sums over n terms and of the rest */
	double		dround = (n + 16) * 0x1p-52;

	memcpy(&csum, code + 12, sizeof(csum));
	memcpy(&csq, code + 16, sizeof(csq));
	qc = cq->qscale *
		HNSW_KERNEL_NAME(hnsw_codes_dot_i16_u8) ((const int16_t *) cq->data,
												 code + INT8_HEADER, n);
	if (cq->metric == HNSW_CODE_METRIC_L2)
	{
		raw = cq->qnorm2 - 2.0 * lo * cq->qsum + n * lo * lo -
			2.0 * step * (qc - lo * csum) + step * step * csq;
		*est = raw > 0 ? raw : 0;
		if (bound == NULL)
			return;
		quant = 2.0 * step * cq->qresid * sqrt((double) csq);
		mag = cq->qnorm2 + 2.0 * fabs(lo) * cq->qabs + n * lo * lo +
			2.0 * step * (fabs(qc) + fabs(lo) * csum) + step * step * csq;
		*bound = l2_bound(*est, raw - quant - dround * mag,
						  raw + quant + dround * mag, e, n);
		return;
	}
	*est = -(lo * cq->qsum + step * qc);
	if (bound)
		*bound = cq->qnorm * e * (1.0 + dround) +
			step * cq->qresid * sqrt((double) csq) +
			dround * (fabs(lo) * cq->qabs + step * fabs(qc)) +
			(n + 4) * (double) FLT_MIN;
}

/* estimate and bound (if bound is not NULL) of fp16: float query */
static void
estimate_fp16(const struct HnswCodeQuery *cq, const unsigned char *code,
			  double *est, double *bound)
{
	const float *q = (const float *) cq->data;
	int			n = cq->dims;
	double		e = get_float(code);
	double		rel = cq->rel + 3 * CODES_U;	/* and each term's rounding */

	if (cq->metric == HNSW_CODE_METRIC_L2)
	{
		*est = HNSW_KERNEL_NAME(hnsw_codes_l2_f16) (q, code + FP16_HEADER, n);
		if (bound)
			*bound = l2_bound(*est, *est / (1.0 + rel), *est / (1.0 - rel), e, n);
		return;
	}
	*est = -HNSW_KERNEL_NAME(hnsw_codes_dot_f16) (q, code + FP16_HEADER, n);
	if (bound)
		*bound = cq->qnorm * e + cq->rel * cq->qnorm * get_float(code + 4) +
			(n + 4) * (double) FLT_MIN;
}

/* estimate and probabilistic bound (if bound is not NULL) of RaBitQ */
static void
estimate_rabitq(const struct HnswCodeQuery *cq, const unsigned char *code,
				double *est, double *bound)
{
	int			pad = cq->pad;
	int			words = pad / 64;
	double		xnorm = get_float(code + 8 * words);
	double		a = get_float(code + 8 * words + 4);
	uint32_t	ones;
	double		xq,
				ip,
				err,
				scale,
				slack;

	memcpy(&ones, code + 8 * words + 8, sizeof(ones));
	xq = cq->kbits * (double) HNSW_KERNEL_NAME(hnsw_codes_bitdot4) (code, cq->data, words) +
		cq->kones * ones + cq->kconst;
	ip = xq / a;
	scale = xnorm * cq->qnorm;
	if (cq->metric == HNSW_CODE_METRIC_L2)
		*est = xnorm * xnorm + cq->qnorm * cq->qnorm - 2.0 * scale * ip;
	else
		*est = -scale * ip;
	if (bound == NULL)
		return;
	err = RABITQ_EPS0 * sqrt((1.0 - a * a) / (a * a * (pad - 1)) +
							 cq->delta * cq->delta / (4.0 * a * a));
	/* float rounding of the stored norm, the rotation and the result */
	slack = 16.0 * CODES_U * (xnorm * xnorm + cq->qnorm * cq->qnorm + scale) +
		4.0 * (double) FLT_MIN;
	*bound = (cq->metric == HNSW_CODE_METRIC_L2 ? 2.0 : 1.0) * scale * err + slack;
}

static void
estimate(const HnswCodeQuery *cq, const unsigned char *code,
		 double *est, double *bound)
{
	if (cq->kind == HNSW_CODE_RABITQ)
		estimate_rabitq(cq, code, est, bound);
	else if (cq->kind == HNSW_CODE_INT8)
		estimate_int8(cq, code, est, bound);
	else
		estimate_fp16(cq, code, est, bound);
}

float
HNSW_KERNEL_NAME(hnsw_code_estimate) (const HnswCodeQuery *cq,
									  const unsigned char *code)
{
	double		est;

	estimate(cq, code, &est, NULL);
	return (float) est;
}

float
HNSW_KERNEL_NAME(hnsw_code_estimate_bounded) (const HnswCodeQuery *cq,
											  const unsigned char *code,
											  float *bound)
{
	double		est,
				b;

	estimate(cq, code, &est, &b);
	if (!isfinite(est) || !isfinite(b))
		*bound = INFINITY;
	else
	{
		/* and the rounding of the estimate and of the bound to float */
		*bound = round_up(b + CODES_U * fabs(est));
	}
	return (float) est;
}
