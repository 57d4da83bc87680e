/*-------------------------------------------------------------------------
 *
 * hnsw_codes_kernels.h
 *	  The estimate loops of the compact codes (hnsw_codes_kernels.c), as
 *	  hnsw_codes.c calls them.  test/kernels builds both files once per
 *	  instruction set with HNSW_KERNEL_NAME prefixing every entry point.
 *
 *-------------------------------------------------------------------------
 */
#ifndef HNSW_CODES_KERNELS_H
#define HNSW_CODES_KERNELS_H

#include <stdint.h>

#ifndef HNSW_KERNEL_NAME
#define HNSW_KERNEL_NAME(name) name
#endif

int32_t		HNSW_KERNEL_NAME(hnsw_codes_dot_i16_u8) (const int16_t *q, const unsigned char *c,
													 int n);
float		HNSW_KERNEL_NAME(hnsw_codes_l2_f16) (const float *q, const unsigned char *h, int n);
float		HNSW_KERNEL_NAME(hnsw_codes_dot_f16) (const float *q, const unsigned char *h, int n);
uint64_t	HNSW_KERNEL_NAME(hnsw_codes_bitdot4) (const unsigned char *bits,
												  const uint64_t *planes, int words);

#endif							/* HNSW_CODES_KERNELS_H */
