/*
 * test/kernels/codes_test.c: the compact vector codes of src/hnsw_codes.c
 * (int8, fp16, RaBitQ), one build per instruction set (AVX-512 with and
 * without VPOPCNTDQ, AVX2+FMA, x86-64 baseline) plus the dispatched build
 * the extension uses.  For
 * every kind, variant and metric, dimensions 1..300 and 16000, several
 * kinds of data (gaussian, pixel-like, unit length, varying norms) and
 * adversarial vectors (zero, constant, one-hot, alternating huge and tiny
 * magnitudes, values near 1e30 and 1e-30, alternating signs):
 *   - int8 and fp16: the exact distance (in double) lies within estimate
 *     +/- bound, every time; the bound is finite for finite-range data and
 *     below half the distance for ordinary data;
 *   - RaBitQ: the fraction of pairs outside estimate +/- bound is at most
 *     the stated probability plus a margin, and the mean error (in units
 *     of the estimator's standard deviation) is near 0;
 *   - every variant's build encodes to the same bytes as the dispatched one;
 * codes at every alignment modulo 8.
 * Prints one "ok - " or "not ok - " line per kind and variant.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/hnsw_codes.h"

#define DECLARE(p) \
	size_t p##hnsw_code_size(int kind, int dims); \
	size_t p##hnsw_code_query_bytes(int kind, int dims); \
	size_t p##hnsw_code_scratch_floats(int kind, int dims); \
	void p##hnsw_code_encode(int kind, uint32_t seed, int metric, const float *x, \
							 int dims, unsigned char *code, float *scratch); \
	void p##hnsw_code_query_prepare(int kind, uint32_t seed, int metric, \
									const float *q, int dims, HnswCodeQuery *cq); \
	float p##hnsw_code_estimate(const HnswCodeQuery *cq, const unsigned char *code); \
	float p##hnsw_code_estimate_bounded(const HnswCodeQuery *cq, const unsigned char *code, \
										float *bound);
DECLARE(v4p_)
DECLARE(v4_)
DECLARE(v3_)
DECLARE(base_)

typedef struct Variant
{
	const char *name;
	const char *cpu;
	void		(*encode) (int, uint32_t, int, const float *, int, unsigned char *, float *);
	void		(*prepare) (int, uint32_t, int, const float *, int, HnswCodeQuery *);
	float		(*estimate) (const HnswCodeQuery *, const unsigned char *);
	float		(*bounded) (const HnswCodeQuery *, const unsigned char *, float *);
} Variant;

#define V(p) p##hnsw_code_encode, p##hnsw_code_query_prepare, p##hnsw_code_estimate, p##hnsw_code_estimate_bounded
static const Variant variants[] = {
	{"x86-64-v4 + VPOPCNTDQ", "vpopcntdq", V(v4p_)},
	{"x86-64-v4 (AVX-512)", "x86-64-v4", V(v4_)},
	{"x86-64-v3 (AVX2+FMA)", "x86-64-v3", V(v3_)},
	{"x86-64 baseline", NULL, V(base_)},
	{"dispatched (as in engram_hnsw.so)", NULL, V()},
};
#define NVARIANTS (int) (sizeof(variants) / sizeof(variants[0]))

#define MAXDIM 16000
#define NDATA 11
static const char *const data_names[NDATA] = {
	"gaussian", "pixels", "unit", "varying norms", "zero", "constant",
	"one-hot", "huge/tiny", "near 1e30", "near 1e-30", "alternating signs"
};
/* kinds of data whose distances fit a float: bounds must be finite */
#define FINITE_RANGE(d) ((d) <= 6 || (d) == 10)
/* kinds of data with ordinary spread: bounds must also be tight */
#define ORDINARY(d) ((d) <= 3)

static uint64_t rng = 0x9E3779B97F4A7C15ULL;

static double
uniform(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double) (rng >> 11) * 0x1p-53;
}

static double
gauss(void)
{
	double		u = uniform() + 1e-300;

	return sqrt(-2 * log(u)) * cos(2 * M_PI * uniform());
}

static void
normalise(float *x, int n)
{
	double		s = 0;

	for (int i = 0; i < n; i++)
		s += (double) x[i] * x[i];
	if (s > 0)
		for (int i = 0; i < n; i++)
			x[i] = (float) (x[i] / sqrt(s));
}

static void
fill(float *x, int n, int data)
{
	double		scale = exp(3 * gauss());
	int			hot = (int) (uniform() * n);

	for (int i = 0; i < n; i++)
	{
		double		v = 0;

		switch (data)
		{
			case 0:
			case 2:
				v = gauss();
				break;
			case 1:
				v = floor(uniform() * 256);
				break;
			case 3:
				v = gauss() * scale;
				break;
			case 4:
				v = 0;
				break;
			case 5:
				v = 3.7;
				break;
			case 6:
				v = i == hot ? 1 : 0;
				break;
			case 7:
				v = gauss() * (i % 2 ? 1e15 : 1e-15);
				break;
			case 8:
				v = 1e30 * (1 + 0.01 * gauss());
				break;
			case 9:
				v = 1e-30 * gauss();
				break;
			case 10:
				v = (i % 2 ? -1 : 1) * (1 + 0.1 * uniform());
				break;
		}
		x[i] = (float) v;
	}
	if (data == 2)
		normalise(x, n);
}

/* the exact internal distance, in double */
static double
exact(int metric, const float *q, const float *x, int n)
{
	double		s = 0;

	for (int i = 0; i < n; i++)
		s += metric == HNSW_CODE_METRIC_L2 ? ((double) q[i] - x[i]) * ((double) q[i] - x[i])
			: -(double) q[i] * x[i];
	return s;
}

static int
cpu_can(const char *level)
{
	if (level == NULL)
		return 1;
	if (strcmp(level, "vpopcntdq") == 0)
		return __builtin_cpu_supports("x86-64-v4") && __builtin_cpu_supports("avx512vpopcntdq");
	if (strcmp(level, "x86-64-v4") == 0)
		return __builtin_cpu_supports("x86-64-v4");
	return __builtin_cpu_supports("x86-64-v3");
}

typedef struct Tally
{
	long		cases;
	long		outside;		/* exact distance outside estimate +/- bound */
	long		infinite;		/* infinite bounds (data beyond float range) */
	long		bad;			/* hard failures: bytes, finiteness, tightness */
	double		zsum;			/* RaBitQ: errors in standard deviations */
	long		zn;
	char		first[400];
} Tally;

static void
note(Tally *t, const char *what, int n, int data, int metric, int qk,
	 double ex, float est, float b)
{
	if (t->first[0] == '\0')
		snprintf(t->first, sizeof(t->first),
				 "%s: dims=%d data=%s metric=%d query=%d exact=%.9g estimate=%.9g bound=%.9g",
				 what, n, data_names[data], metric, qk, ex, est, b);
}

/*
 * One vector and query pair: encode x with this variant, compare the bytes
 * with the dispatched build's, estimate and check.
 */
static void
check_pair(const Variant *var, int kind, int metric, uint32_t seed,
		   const float *x, const float *q, int n, int data, int qk, Tally *t,
		   unsigned char *code, unsigned char *ref, float *scratch, HnswCodeQuery *cq)
{
	size_t		size = hnsw_code_size(kind, n);
	double		ex = exact(metric, q, x, n);
	float		est,
				est_b,
				b;
	int			inside;

	/* codes lie on index pages at any alignment */
	code += seed % 8;
	ref += seed % 8;

	hnsw_code_encode(kind, seed, metric, x, n, ref, scratch);
	var->encode(kind, seed, metric, x, n, code, scratch);
	var->prepare(kind, seed, metric, q, n, cq);
	est = var->estimate(cq, code);
	est_b = var->bounded(cq, code, &b);
	t->cases++;
	/* the scan takes one for the other: the same bits */
	if (memcmp(&est_b, &est, sizeof(float)) != 0)
	{
		t->bad++;
		note(t, "the estimate with a bound differs from the estimate alone", n, data, metric,
			 qk, ex, est, b);
	}
	if (memcmp(code, ref, size) != 0)
	{
		t->bad++;
		note(t, "code bytes differ from the dispatched build's", n, data, metric, qk, ex, est, b);
	}
	if (isnan(est) || isnan(b) || b < 0 || (FINITE_RANGE(data) && !isfinite(b)))
	{
		t->bad++;
		note(t, "NaN, negative or infinite bound", n, data, metric, qk, ex, est, b);
		return;
	}
	if (isinf(b))
	{
		t->infinite++;
		return;
	}
	if (isinf(est))
		inside = fabs(ex) >= FLT_MAX / 4 && (ex > 0) == (est > 0);
	else
		inside = fabs(ex - (double) est) <= (double) b;
	if (!inside)
	{
		t->outside++;
		note(t, "exact distance outside estimate +/- bound", n, data, metric, qk, ex, est, b);
	}
	/* ordinary data, fresh query: the bound says something */
	if (kind != HNSW_CODE_RABITQ && ORDINARY(data) && qk == 0 &&
		metric == HNSW_CODE_METRIC_L2 && n >= 8 && !(b <= 0.5 * ex))
	{
		t->bad++;
		note(t, "bound not below half the distance", n, data, metric, qk, ex, est, b);
	}
	if (kind == HNSW_CODE_RABITQ && ORDINARY(data) && b > 0 && !isinf(est))
	{
		t->zsum += (ex - (double) est) / ((double) b / 1.9);
		t->zn++;
	}
}

/* every dimension, data, metric and query for one kind and variant */
static void
run_kind(const Variant *var, int kind, Tally *t)
{
	static float x[MAXDIM],
				q[MAXDIM];
	static unsigned char code[2 * MAXDIM + 72],
				ref[2 * MAXDIM + 72];
	static float scratch[16384];
	static uint64_t cqbuf[(sizeof(float) * 16384 * 2 + 4096) / 8];
	HnswCodeQuery *cq = (HnswCodeQuery *) cqbuf;
	uint32_t	seed = 1;

	for (int n = 1; n <= 301; n++)
	{
		int			dims = n <= 300 ? n : MAXDIM;

		for (int data = 0; data < NDATA; data++)
			for (int metric = 1; metric <= 3; metric++)
				for (int qk = 0; qk < 3; qk++)
				{
					fill(x, dims, data);
					if (qk == 0)
						fill(q, dims, data);	/* a fresh vector of that kind */
					else
						for (int i = 0; i < dims; i++)	/* x itself, x perturbed */
							q[i] = (float) (x[i] * (qk == 1 ? 1.0 : 1.0 + 0.3 * gauss()));
					if (metric == HNSW_CODE_METRIC_COSINE)
					{
						normalise(x, dims);
						normalise(q, dims);
					}
					check_pair(var, kind, metric, seed++, x, q, dims, data, qk, t,
							   code, ref, scratch, cq);
				}
	}
}

int
main(void)
{
	static const int kinds[] = {HNSW_CODE_INT8, HNSW_CODE_FP16, HNSW_CODE_RABITQ};
	int			failed = 0,
				passed = 0;

	if (hnsw_code_query_bytes(HNSW_CODE_RABITQ, MAXDIM) > sizeof(float) * 16384 * 2 + 4096 ||
		hnsw_code_scratch_floats(HNSW_CODE_RABITQ, MAXDIM) > 16384)
	{
		printf("not ok - codes: buffers of the test too small\n");
		return 1;
	}
	__builtin_cpu_init();
	for (int k = 0; k < 3; k++)
		for (int v = 0; v < NVARIANTS; v++)
		{
			const Variant *var = &variants[v];
			const char *kname = hnsw_code_name(kinds[k]);
			Tally		t;
			int			ok;
			double		frac,
						zmean;

			if (!cpu_can(var->cpu))
			{
				printf("ok - codes %s %s # SKIP this CPU cannot run %s\n", kname, var->name, var->cpu);
				passed++;
				continue;
			}
			memset(&t, 0, sizeof(t));
			rng = 0x9E3779B97F4A7C15ULL + (uint64_t) k;	/* same data for every variant */
			run_kind(var, kinds[k], &t);
			frac = (double) t.outside / (double) t.cases;
			zmean = t.zn ? t.zsum / t.zn : 0;
			if (kinds[k] == HNSW_CODE_RABITQ)
				/* stated: outside with probability at most 0.057 per pair */
				ok = t.bad == 0 && frac <= 0.057 + 0.02 && t.zn > 1000 &&
					fabs(zmean) <= 5.0 / sqrt((double) t.zn) + 0.02;
			else
				ok = t.bad == 0 && t.outside == 0;
			if (ok)
			{
				printf("ok - codes %s %s (%ld pairs: dims 1..300 and 16000, %d kinds of data, 3 metrics; "
					   "%ld outside the bound (%.2f%%), %ld infinite bounds on data beyond float range",
					   kname, var->name, t.cases, NDATA, t.outside, 100 * frac, t.infinite);
				if (kinds[k] == HNSW_CODE_RABITQ)
					printf("; mean error %.4f sd over %ld pairs", zmean, t.zn);
				printf("; bytes as dispatched)\n");
				passed++;
			}
			else
			{
				printf("not ok - codes %s %s: %ld of %ld pairs outside the bound (%.2f%%), %ld failures, "
					   "mean error %.4f sd; first: %s\n",
					   kname, var->name, t.outside, t.cases, 100 * frac, t.bad, zmean, t.first);
				failed++;
			}
		}
	printf("# codes: %d passed, %d failed\n", passed, failed);
	return failed > 0;
}
