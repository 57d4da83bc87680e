/*-------------------------------------------------------------------------
 *
 * hnsw_codes_kernels.c
 *	  The inner loops of the compact code estimates (hnsw_codes.c): a
 *	  16-bit integer query against one byte per dimension, a float query
 *	  against IEEE half floats, and four query bit planes against the
 *	  one-bit codes of RaBitQ.
 *
 * Built like hnsw_kernels.c: -O3 with reassociation allowed so that the
 * compiler vectorises the sums, once per instruction set (target_clones,
 * or one -march build per variant with prefixed names in test/kernels).
 * The estimators' error bounds allow for the float rounding of these sums
 * in any order (see hnsw_codes.c).  Codes come from index pages at any
 * alignment, so they are read with memcpy.
 *
 *-------------------------------------------------------------------------
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/*
 * As in hnsw_kernels.c.  The RaBitQ kernel also has a build for AVX-512
 * with VPOPCNTDQ (vectorised popcounts), which target_clones cannot select
 * by feature: HNSW_CODES_VPOPCNT dispatches it by hand.
 */
#ifndef HNSW_KERNEL
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__gnu_linux__)
#define HNSW_KERNEL __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define HNSW_CODES_VPOPCNT 1
#else
#define HNSW_KERNEL
#endif
#endif

#include "hnsw_codes_kernels.h"

#define CODES_LANES 32

/*
 * IEEE half (as stored: little-endian 16 bits, never infinite or NaN) to
 * float, exactly, in integer operations that vectorise on every
 * instruction set: a normal half moves its exponent by the bias
 * difference (112); a subnormal one (exponent 0) is built as 2^-14 plus
 * its mantissa and 2^-14 subtracted again, which avoids float subnormal
 * arithmetic.
 */
static inline float
half_to_float(const unsigned char *p)
{
	uint16_t	h;
	uint32_t	em,
				u;
	float		f,
				sub;

	memcpy(&h, p, sizeof(h));
	em = (uint32_t) (h & 0x7fff) << 13;
	u = (h & 0x7c00) ? em + (112u << 23) : em + (113u << 23);
	memcpy(&f, &u, sizeof(f));
	sub = (h & 0x7c00) ? 0.0f : 0x1p-14f;
	f -= sub;
	u = ((uint32_t) (h & 0x8000) << 16);
	{
		uint32_t	fu;

		memcpy(&fu, &f, sizeof(fu));
		fu |= u;
		memcpy(&f, &fu, sizeof(f));
	}
	return f;
}

/*
 * sum over i of q[i] * c[i], q the query quantized to 16-bit integers, c
 * the code's bytes: exact, the caller keeps |q[i]| * 255 * n below 2^31.
 * Compiles to multiply-add of 16-bit pairs (pmaddwd) on every instruction
 * set.
 */
HNSW_KERNEL
int32_t
HNSW_KERNEL_NAME(hnsw_codes_dot_i16_u8) (const int16_t *q, const unsigned char *c, int n)
{
	int32_t		sum = 0;
	size_t		len = n > 0 ? (size_t) n : 0;

	for (size_t i = 0; i < len; i++)
		sum += (int32_t) q[i] * (int32_t) c[i];
	return sum;
}

/* sum over i of (q[i] - h[i])^2, h being n halves (2n bytes) */
HNSW_KERNEL
float
HNSW_KERNEL_NAME(hnsw_codes_l2_f16) (const float *q, const unsigned char *h, int n)
{
	float		acc[CODES_LANES] = {0};
	float		sum = 0.0f;
	size_t		len = n > 0 ? (size_t) n : 0;
	size_t		blocks = len / CODES_LANES;

	for (size_t k = 0; k < blocks; k++)
	{
		const float *x = q + k * CODES_LANES;
		const unsigned char *y = h + 2 * k * CODES_LANES;

		for (size_t j = 0; j < CODES_LANES; j++)
		{
			float		d = x[j] - half_to_float(y + 2 * j);

			acc[j] += d * d;
		}
	}
	for (size_t i = blocks * CODES_LANES; i < len; i++)
	{
		float		d = q[i] - half_to_float(h + 2 * i);

		sum += d * d;
	}
	for (size_t j = 0; j < CODES_LANES; j++)
		sum += acc[j];
	return sum;
}

/* sum over i of q[i] * h[i] */
HNSW_KERNEL
float
HNSW_KERNEL_NAME(hnsw_codes_dot_f16) (const float *q, const unsigned char *h, int n)
{
	float		acc[CODES_LANES] = {0};
	float		sum = 0.0f;
	size_t		len = n > 0 ? (size_t) n : 0;
	size_t		blocks = len / CODES_LANES;

	for (size_t k = 0; k < blocks; k++)
	{
		const float *x = q + k * CODES_LANES;
		const unsigned char *y = h + 2 * k * CODES_LANES;

		for (size_t j = 0; j < CODES_LANES; j++)
			acc[j] += x[j] * half_to_float(y + 2 * j);
	}
	for (size_t i = blocks * CODES_LANES; i < len; i++)
		sum += q[i] * half_to_float(h + 2 * i);
	for (size_t j = 0; j < CODES_LANES; j++)
		sum += acc[j];
	return sum;
}

/*
 * sum over the four bit planes p (query bit p of every dimension, words
 * 64-bit words each, plane after plane) of 2^p * popcount(bits & plane):
 * the integer dot product of the one-bit code with the 4-bit query.
 */
static inline uint64_t
bitdot4(const unsigned char *bits, const uint64_t *planes, int words)
{
	uint64_t	cnt[4] = {0, 0, 0, 0};
	size_t		w = words > 0 ? (size_t) words : 0;

	for (size_t i = 0; i < w; i++)
	{
		uint64_t	b;

		memcpy(&b, bits + 8 * i, sizeof(b));
		for (size_t p = 0; p < 4; p++)
			cnt[p] += (uint64_t) __builtin_popcountll(b & planes[p * w + i]);
	}
	return cnt[0] + 2 * cnt[1] + 4 * cnt[2] + 8 * cnt[3];
}

#ifndef HNSW_CODES_VPOPCNT
uint64_t
HNSW_KERNEL_NAME(hnsw_codes_bitdot4) (const unsigned char *bits,
									  const uint64_t *planes, int words)
{
	return bitdot4(bits, planes, words);
}
#else
uint64_t	hnsw_codes_bitdot4_clones(const unsigned char *bits,
									  const uint64_t *planes, int words);
uint64_t	hnsw_codes_bitdot4_vpopcnt(const unsigned char *bits,
									   const uint64_t *planes, int words);

HNSW_KERNEL
uint64_t
hnsw_codes_bitdot4_clones(const unsigned char *bits, const uint64_t *planes, int words)
{
	return bitdot4(bits, planes, words);
}

__attribute__((target("arch=x86-64-v4,avx512vpopcntdq")))
uint64_t
hnsw_codes_bitdot4_vpopcnt(const unsigned char *bits, const uint64_t *planes, int words)
{
	return bitdot4(bits, planes, words);
}

uint64_t
hnsw_codes_bitdot4(const unsigned char *bits, const uint64_t *planes, int words)
{
	static int	vpopcnt = -1;	/* not known yet */

	if (vpopcnt < 0)
	{
		__builtin_cpu_init();
		vpopcnt = __builtin_cpu_supports("x86-64-v4") &&
			__builtin_cpu_supports("avx512vpopcntdq");
	}
	return vpopcnt ? hnsw_codes_bitdot4_vpopcnt(bits, planes, words) :
		hnsw_codes_bitdot4_clones(bits, planes, words);
}
#endif
