/*-------------------------------------------------------------------------
 *
 * hnsw_codes.h
 *	  Compact vector codes: a quantized copy of each element's vector from
 *	  which the distance to a query is estimated far more cheaply than from
 *	  the float4 vector.  Graph walks compare codes; the exact distance is
 *	  taken only where it decides something (neighbour selection, the final
 *	  order of results).
 *
 * No PostgreSQL dependency (like hnsw_kernels.c), so that test/kernels can
 * build and check them on their own.  Distances follow the index's
 * internal convention (hnsw_distance.c): "smaller is closer", squared
 * euclidean for L2, the negative inner product for inner product and for
 * cosine (whose vectors are stored unit-normalised).
 *
 * Encoding is deterministic: the same vector gives the same bytes on every
 * machine and with every kernel variant (engram_hnsw_check re-encodes each
 * vector and compares), so it is plain scalar code without contraction or
 * reassociation.  Estimates may use SIMD kernels chosen at load time.
 *
 *-------------------------------------------------------------------------
 */
#ifndef HNSW_CODES_H
#define HNSW_CODES_H

#include <stddef.h>
#include <stdint.h>

/* code kinds (stored in the meta page of format 3 indexes) */
#define HNSW_CODE_NONE		0	/* formats 1 and 2: walks on float4 vectors */
#define HNSW_CODE_INT8		1	/* one byte per dimension, per-vector scale */
#define HNSW_CODE_RABITQ	2	/* one bit per rotated dimension (RaBitQ) */
#define HNSW_CODE_FP16		3	/* IEEE half precision per dimension */

/*
 * What the kinds promise (details in hnsw_codes.c):
 *	int8	dims + 20 bytes; the bound is deterministic: the exact distance
 *			always lies within estimate +/- bound.
 *	fp16	2 dims + 8 bytes; deterministic bound as int8.  Components beyond
 *			the half range (+-65504) are clamped, their error counted in the
 *			bound.
 *	rabitq	D / 8 + 12 bytes, D the power of two >= max(dims, 64); the
 *			estimate is unbiased and the bound probabilistic: 1.9 standard
 *			deviations of the estimator, so it fails for at most about 6%
 *			of pairs (a normal variable leaves +-1.9 sd with probability
 *			0.057); test/kernels sees about 1%.
 * The deterministic bounds are infinite where float cannot represent them
 * (components near 1e30); an estimate beyond the float range is +-inf.
 */

/* metrics, as HNSW_METRIC_* in hnsw_format.h */
#define HNSW_CODE_METRIC_L2		1
#define HNSW_CODE_METRIC_COSINE	2
#define HNSW_CODE_METRIC_IP		3

/*
 * A query prepared for estimating distances to codes of one kind: the
 * query in the code's space (rotated for RaBitQ) and whatever per-query
 * sums and quantized forms the estimator needs.  The caller allocates
 * hnsw_code_query_bytes() bytes (any alignment of 8 or more) and
 * hnsw_code_query_prepare() fills them; nothing else is allocated.
 */
typedef struct HnswCodeQuery HnswCodeQuery;

/* bytes of one code of this kind for dims dimensions */
extern size_t hnsw_code_size(int kind, int dims);

/* bytes to allocate for a prepared query */
extern size_t hnsw_code_query_bytes(int kind, int dims);

/* floats of scratch space hnsw_code_encode() needs */
extern size_t hnsw_code_scratch_floats(int kind, int dims);

/*
 * Encode x (dims floats, finite; unit-normalised already for cosine) into
 * code (hnsw_code_size() bytes).  seed chooses the random rotation of
 * RaBitQ (ignored by the other kinds).  Deterministic.
 */
extern void hnsw_code_encode(int kind, uint32_t seed, int metric,
							 const float *x, int dims,
							 unsigned char *code, float *scratch);

/* prepare q (dims floats) for estimates against codes of this kind */
extern void hnsw_code_query_prepare(int kind, uint32_t seed, int metric,
									const float *q, int dims,
									HnswCodeQuery *cq);

/* the estimated internal distance between the prepared query and a code */
extern float hnsw_code_estimate(const HnswCodeQuery *cq,
								const unsigned char *code);

/*
 * The same estimate (bit for bit) and, in *bound, an error bound of it,
 * from one pass over the code: the exact distance lies within estimate
 * +/- bound (for RaBitQ, with the probability the kind's documentation
 * states).
 */
extern float hnsw_code_estimate_bounded(const HnswCodeQuery *cq,
										const unsigned char *code,
										float *bound);

/* the name of a kind ("int8", "rabitq", "fp16"), or NULL if unknown */
extern const char *hnsw_code_name(int kind);

#endif							/* HNSW_CODES_H */
