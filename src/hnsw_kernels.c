/*-------------------------------------------------------------------------
 *
 * hnsw_kernels.c
 *	  Distance kernels over float arrays: squared L2 and the dot product,
 *	  and the check that an array holds no NaN or infinity.
 *
 * Pure functions over (const float *, const float *, n), with no
 * PostgreSQL dependency, so that test/kernels can build them on their own.
 * They keep several independent partial sums so that the compiler turns
 * them into SIMD code (this file is built with -O3 and reassociation
 * allowed, see the Makefile).
 *
 *-------------------------------------------------------------------------
 */
#include <stddef.h>
#include <string.h>

/*
 * Kernels are compiled once per instruction set (AVX-512, AVX2+FMA, and the
 * portable x86-64 baseline) and the dynamic loader picks the best one the
 * CPU supports (GCC function multiversioning, resolved once by an ifunc).
 * Each keeps HNSW_LANES partial sums so that the vectorised loop has
 * several independent accumulators instead of one long dependency chain.
 */
#ifndef HNSW_KERNEL
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__gnu_linux__)
#define HNSW_KERNEL __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define HNSW_KERNEL
#endif
#endif

/*
 * test/kernels builds this file once per instruction set with
 * HNSW_KERNEL defined empty, -march=..., and the names prefixed, to check
 * the variants against each other and against a double-precision sum.
 */
#ifndef HNSW_KERNEL_NAME
#define HNSW_KERNEL_NAME(name) name
#endif

float		HNSW_KERNEL_NAME(hnsw_l2_squared) (const float *a, const float *b, int n);
float		HNSW_KERNEL_NAME(hnsw_dot) (const float *a, const float *b, int n);
int			HNSW_KERNEL_NAME(hnsw_all_finite) (const float *a, int n);

#define HNSW_LANES 32

/*
 * Index with size_t and pointers: PostgreSQL builds with -fwrapv, under
 * which "a[i + j]" with int i, j need not be contiguous and the compiler
 * falls back to scalar loads.
 */
HNSW_KERNEL
float
HNSW_KERNEL_NAME(hnsw_l2_squared) (const float *a, const float *b, int n)
{
	float		acc[HNSW_LANES] = {0};
	float		sum = 0.0f;
	size_t		len = n > 0 ? (size_t) n : 0;
	size_t		blocks = len / HNSW_LANES;

	for (size_t k = 0; k < blocks; k++)
	{
		const float *x = a + k * HNSW_LANES;
		const float *y = b + k * HNSW_LANES;

		for (size_t j = 0; j < HNSW_LANES; j++)
		{
			float		d = x[j] - y[j];

			acc[j] += d * d;
		}
	}
	for (size_t i = blocks * HNSW_LANES; i < len; i++)
	{
		float		d = a[i] - b[i];

		sum += d * d;
	}
	for (size_t j = 0; j < HNSW_LANES; j++)
		sum += acc[j];
	return sum;
}

HNSW_KERNEL
float
HNSW_KERNEL_NAME(hnsw_dot) (const float *a, const float *b, int n)
{
	float		acc[HNSW_LANES] = {0};
	float		sum = 0.0f;
	size_t		len = n > 0 ? (size_t) n : 0;
	size_t		blocks = len / HNSW_LANES;

	for (size_t k = 0; k < blocks; k++)
	{
		const float *x = a + k * HNSW_LANES;
		const float *y = b + k * HNSW_LANES;

		for (size_t j = 0; j < HNSW_LANES; j++)
			acc[j] += x[j] * y[j];
	}
	for (size_t i = blocks * HNSW_LANES; i < len; i++)
		sum += a[i] * b[i];
	for (size_t j = 0; j < HNSW_LANES; j++)
		sum += acc[j];
	return sum;
}

/*
 * 1 if none of the n floats is a NaN or an infinity, else 0.  A float is one
 * of them exactly when its exponent bits are all ones; testing the bits (not
 * isnan/isinf, which -ffast-math-style flags may fold away) and or-ing the
 * results over the whole array, without stopping at the first bad element,
 * lets the loop vectorise.  Every call of a distance function checks both of
 * its arrays; the caller looks for the first bad element only on failure.
 */
HNSW_KERNEL
int
HNSW_KERNEL_NAME(hnsw_all_finite) (const float *a, int n)
{
	unsigned int bad[HNSW_LANES] = {0};
	unsigned int any = 0;
	size_t		len = n > 0 ? (size_t) n : 0;
	size_t		blocks = len / HNSW_LANES;

	for (size_t k = 0; k < blocks; k++)
	{
		const float *x = a + k * HNSW_LANES;

		for (size_t j = 0; j < HNSW_LANES; j++)
		{
			unsigned int u;

			memcpy(&u, &x[j], sizeof(u));
			bad[j] |= (u & 0x7F800000u) == 0x7F800000u;
		}
	}
	for (size_t i = blocks * HNSW_LANES; i < len; i++)
	{
		unsigned int u;

		memcpy(&u, &a[i], sizeof(u));
		any |= (u & 0x7F800000u) == 0x7F800000u;
	}
	for (size_t j = 0; j < HNSW_LANES; j++)
		any |= bad[j];
	return any == 0;
}
