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
 * As in hnsw_kernels.c.  Two kernels also have a build that the extension
 * dispatches by hand (HNSW_CODES_DISPATCH), because target_clones cannot
 * express it: RaBitQ's for AVX-512 with VPOPCNTDQ (vectorised popcounts,
 * selected by feature), and int8's for AVX-512 written with intrinsics
 * (see hnsw_codes_dot_i16_u8).  test/kernels builds each file once per
 * -march instead, HNSW_KERNEL empty: there the intrinsics are compiled
 * wherever the compiler targets AVX-512BW.
 */
#ifndef HNSW_KERNEL
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__gnu_linux__)
#define HNSW_KERNEL __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define HNSW_CODES_DISPATCH 1
#else
#define HNSW_KERNEL
#endif
#endif

#if defined(HNSW_CODES_DISPATCH)
#define HNSW_CODES_AVX512 1
#define HNSW_AVX512_TARGET __attribute__((target("arch=x86-64-v4")))
#elif defined(__x86_64__) && defined(__GNUC__) && defined(__AVX512BW__)
#define HNSW_CODES_AVX512 1
#define HNSW_AVX512_TARGET
#endif

#ifdef HNSW_CODES_AVX512
#include <immintrin.h>
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
static inline int32_t
dot_i16_u8(const int16_t *q, const unsigned char *c, int n)
{
	int32_t		sum = 0;
	size_t		len = n > 0 ? (size_t) n : 0;

	for (size_t i = 0; i < len; i++)
		sum += (int32_t) q[i] * (int32_t) c[i];
	return sum;
}

#ifdef HNSW_CODES_AVX512
/*
 * The same sum with AVX-512BW intrinsics.  GCC vectorises the loop above
 * with a single accumulator, one dependent add after another, and leaves
 * the last n mod 32 products to a scalar loop (16 of 784); here two
 * accumulators take 64 products per round and one masked round takes the
 * rest.  An estimate at 784 dimensions took about 16 ns from the first
 * level cache against 10 ns here.  Integer sums: the result is exactly
 * the loop's.
 */
HNSW_AVX512_TARGET
static int32_t
dot_i16_u8_avx512(const int16_t *q, const unsigned char *c, int n)
{
	__m512i		acc0 = _mm512_setzero_si512();
	__m512i		acc1 = _mm512_setzero_si512();
	size_t		len = n > 0 ? (size_t) n : 0;
	size_t		i = 0;

	for (; i + 64 <= len; i += 64)
	{
		__m512i		c0 = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *) (c + i)));
		__m512i		c1 = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *) (c + i + 32)));

		acc0 = _mm512_add_epi32(acc0, _mm512_madd_epi16(c0, _mm512_loadu_si512(q + i)));
		acc1 = _mm512_add_epi32(acc1, _mm512_madd_epi16(c1, _mm512_loadu_si512(q + i + 32)));
	}
	for (; i < len; i += 32)
	{
		size_t		left = len - i;
		__mmask32	m = left >= 32 ? 0xFFFFFFFFu : (((__mmask32) 1 << left) - 1);
		__m512i		c0 = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, c + i));

		acc0 = _mm512_add_epi32(acc0, _mm512_madd_epi16(c0, _mm512_maskz_loadu_epi16(m, q + i)));
	}
	return _mm512_reduce_add_epi32(_mm512_add_epi32(acc0, acc1));
}
#endif

#ifndef HNSW_CODES_DISPATCH
int32_t
HNSW_KERNEL_NAME(hnsw_codes_dot_i16_u8) (const int16_t *q, const unsigned char *c, int n)
{
#ifdef HNSW_CODES_AVX512
	return dot_i16_u8_avx512(q, c, n);
#else
	return dot_i16_u8(q, c, n);
#endif
}
#else
int32_t		hnsw_codes_dot_i16_u8_clones(const int16_t *q, const unsigned char *c, int n);

HNSW_KERNEL
int32_t
hnsw_codes_dot_i16_u8_clones(const int16_t *q, const unsigned char *c, int n)
{
	return dot_i16_u8(q, c, n);
}

int32_t
hnsw_codes_dot_i16_u8(const int16_t *q, const unsigned char *c, int n)
{
	static int	avx512 = -1;	/* not known yet */

	if (avx512 < 0)
	{
		__builtin_cpu_init();
		avx512 = __builtin_cpu_supports("x86-64-v4");
	}
	return avx512 ? dot_i16_u8_avx512(q, c, n) :
		hnsw_codes_dot_i16_u8_clones(q, c, n);
}
#endif

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

#ifndef HNSW_CODES_DISPATCH
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
