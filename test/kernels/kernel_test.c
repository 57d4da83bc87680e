/*
 * test/kernels/kernel_test.c: the distance kernels of src/hnsw_kernels.c,
 * one build per instruction set (AVX-512, AVX2+FMA, x86-64 baseline) plus
 * the dispatched build the extension uses, against a double-precision sum
 * and against each other: squared L2 and dot product, every length from 0
 * to 300 and lengths around powers of two and common dimensions, aligned
 * and unaligned starts, and several kinds of data; and the finiteness
 * check, with a NaN or an infinity at every position of those lengths.  Prints one "ok - " or
 * "not ok - " line per variant and kernel (TAP style, as run_all counts).
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef float (*kernel_fn) (const float *a, const float *b, int n);

#define DECLARE(prefix) \
	float prefix##_hnsw_l2_squared(const float *a, const float *b, int n); \
	float prefix##_hnsw_dot(const float *a, const float *b, int n); \
	int prefix##_hnsw_all_finite(const float *a, int n);
DECLARE(v4)
DECLARE(v3)
DECLARE(base)
/* the build the extension ships: target_clones, resolved by an ifunc */
float		hnsw_l2_squared(const float *a, const float *b, int n);
float		hnsw_dot(const float *a, const float *b, int n);
int			hnsw_all_finite(const float *a, int n);

typedef struct Variant
{
	const char *name;
	const char *cpu;			/* __builtin_cpu_supports name, or NULL */
	kernel_fn	l2;
	kernel_fn	dot;
	int			(*finite) (const float *a, int n);
} Variant;

static const Variant variants[] = {
	{"x86-64-v4 (AVX-512)", "x86-64-v4", v4_hnsw_l2_squared, v4_hnsw_dot, v4_hnsw_all_finite},
	{"x86-64-v3 (AVX2+FMA)", "x86-64-v3", v3_hnsw_l2_squared, v3_hnsw_dot, v3_hnsw_all_finite},
	{"x86-64 baseline", NULL, base_hnsw_l2_squared, base_hnsw_dot, base_hnsw_all_finite},
	{"dispatched (as in engram_hnsw.so)", NULL, hnsw_l2_squared, hnsw_dot, hnsw_all_finite},
};
#define NVARIANTS (sizeof(variants) / sizeof(variants[0]))

#define MAXLEN 2100
#define MAXOFF 3

static unsigned long long rng = 88172645463325252ULL;

static double
uniform(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double) (rng >> 11) / (double) (1ULL << 53);
}

/* kinds of data: spread, large, tiny, unit length, identical vectors */
static void
fill(float *a, float *b, int n, int kind)
{
	double		na = 0,
				nb = 0;

	for (int i = 0; i < n; i++)
	{
		double		x = uniform() * 2 - 1;
		double		y = uniform() * 2 - 1;

		switch (kind)
		{
			case 1:
				x *= 1000;
				y *= 1000;
				break;
			case 2:
				x *= 1e-3;
				y *= 1e-3;
				break;
			case 4:
				y = x;
				break;
		}
		a[i] = (float) x;
		b[i] = (float) y;
		na += x * x;
		nb += y * y;
	}
	if (kind == 3 && n > 0)
	{
		for (int i = 0; i < n; i++)
		{
			a[i] = (float) (a[i] / sqrt(na));
			b[i] = (float) (b[i] / sqrt(nb));
		}
	}
}

#define NKINDS 5

/* __builtin_cpu_supports wants a literal */
static int
cpu_can(const char *level)
{
	if (strcmp(level, "x86-64-v4") == 0)
		return __builtin_cpu_supports("x86-64-v4");
	if (strcmp(level, "x86-64-v3") == 0)
		return __builtin_cpu_supports("x86-64-v3");
	return 1;
}

int
main(void)
{
	static float abuf[MAXLEN + MAXOFF + 16];
	static float bbuf[MAXLEN + MAXOFF + 16];
	int			lengths[400];
	int			nlengths = 0;
	static const int extra[] = {311, 383, 384, 385, 511, 512, 513, 767, 768, 769, 784,
	1000, 1023, 1024, 1025, 1535, 1536, 1537, 2000, 2047, 2048, 2049};
	int			failed = 0;
	int			passed = 0;

	for (int n = 0; n <= 300; n++)
		lengths[nlengths++] = n;
	for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++)
		lengths[nlengths++] = extra[i];

	__builtin_cpu_init();
	for (size_t v = 0; v < NVARIANTS; v++)
	{
		const Variant *var = &variants[v];

		for (int k = 0; k < 2; k++)
		{
			const char *kname = k == 0 ? "squared L2" : "dot product";
			kernel_fn	fn = k == 0 ? var->l2 : var->dot;
			kernel_fn	basefn = k == 0 ? base_hnsw_l2_squared : base_hnsw_dot;
			long		cases = 0;
			char		first[300] = "";
			int			bad = 0;

			if (var->cpu && !cpu_can(var->cpu))
			{
				printf("ok - kernels %s %s # SKIP this CPU cannot run %s\n",
					   var->name, kname, var->cpu);
				passed++;
				continue;
			}
			for (int li = 0; li < nlengths; li++)
			{
				int			n = lengths[li];

				for (int kind = 0; kind < NKINDS; kind++)
				{
					for (int off = 0; off <= MAXOFF; off++)
					{
						float	   *a = abuf + off;
						float	   *b = bbuf + (MAXOFF - off);
						double		ref = 0,
									mag = 0;
						float		got,
									other;
						double		tol;

						fill(a, b, n, kind);
						for (int i = 0; i < n; i++)
						{
							double		t = k == 0 ? ((double) a[i] - b[i]) * ((double) a[i] - b[i])
							: (double) a[i] * b[i];

							ref += t;
							mag += fabs(t);
						}
						got = fn(a, b, n);
						other = basefn(a, b, n);
						/* float sums in 32 lanes: error well below 1e-5 of the magnitude */
						tol = 1e-5 * mag + 1e-30;
						cases++;
						if (!(fabs((double) got - ref) <= tol) ||
							!(fabs((double) got - (double) other) <= 2 * tol) ||
							(k == 0 && kind == 4 && got != 0.0f))
						{
							if (bad++ == 0)
								snprintf(first, sizeof(first),
										 "n=%d kind=%d offset=%d: got %.9g, double sum %.9g, baseline %.9g",
										 n, kind, off, got, ref, other);
						}
					}
				}
			}
			if (bad == 0)
			{
				printf("ok - kernels %s %s (%ld cases: lengths 0..300 and 22 more up to 2049, 5 kinds of data, 4 alignments)\n",
					   var->name, kname, cases);
				passed++;
			}
			else
			{
				printf("not ok - kernels %s %s: %d of %ld cases off; first: %s\n",
					   var->name, kname, bad, cases, first);
				failed++;
			}
		}
	}
	for (size_t v = 0; v < NVARIANTS; v++)
	{
		const Variant *var = &variants[v];
		/* one element set to value: what the check must answer */
		static const struct
		{
			float		value;
			int			expect;
		}			probes[] = {
			{NAN, 0}, {-NAN, 0}, {INFINITY, 0}, {-INFINITY, 0},
			{FLT_MAX, 1}, {-FLT_MAX, 1}, {FLT_MIN, 1}, {1e-45f, 1}, {-0.0f, 1},
		};
		long		cases = 0;
		char		first[300] = "";
		int			bad = 0;

		if (var->cpu && !cpu_can(var->cpu))
		{
			printf("ok - kernels %s finiteness check # SKIP this CPU cannot run %s\n",
				   var->name, var->cpu);
			passed++;
			continue;
		}
		for (int li = 0; li < nlengths; li++)
		{
			int			n = lengths[li];

			for (int off = 0; off <= MAXOFF; off++)
			{
				float	   *a = abuf + off;

				fill(a, bbuf, n, li % NKINDS);
				cases++;
				if (var->finite(a, n) != 1 && bad++ == 0)
					snprintf(first, sizeof(first), "n=%d offset=%d: finite data reported bad", n, off);
				for (int p = 0; p < n; p++)
				{
					float		saved = a[p];

					for (size_t s = 0; s < sizeof(probes) / sizeof(probes[0]); s++)
					{
						/* the extreme finite values at a few positions only */
						if (probes[s].expect == 1 && p >= 2 && p < n - 2)
							continue;
						a[p] = probes[s].value;
						cases++;
						if (var->finite(a, n) != probes[s].expect && bad++ == 0)
							snprintf(first, sizeof(first), "n=%d offset=%d: %g at %d reported %s",
									 n, off, (double) probes[s].value, p,
									 probes[s].expect ? "bad" : "finite");
					}
					a[p] = saved;
				}
			}
		}
		if (bad == 0)
		{
			printf("ok - kernels %s finiteness check (%ld cases: NaN and infinities at every position of the same lengths, 4 alignments)\n",
				   var->name, cases);
			passed++;
		}
		else
		{
			printf("not ok - kernels %s finiteness check: %d of %ld cases wrong; first: %s\n",
				   var->name, bad, cases, first);
			failed++;
		}
	}
	printf("# kernels: %d passed, %d failed\n", passed, failed);
	return failed > 0;
}
