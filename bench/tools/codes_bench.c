/*
 * codes_bench: the compact vector codes of src/hnsw_codes.c against the
 * float4 kernels of src/hnsw_kernels.c, built with the extension's flags
 * (dispatched kernels, see bench/Makefile).
 *
 *   codes_bench speed
 *       ns per estimate of every code kind (L2 and inner product) against
 *       ns per hnsw_l2_squared / hnsw_dot, at 128, 784, 1536 and 4096
 *       dimensions; gaussian vectors visited in random order (as a graph
 *       walk does), sets of 32 MB of float4 (from memory) and of 128 KB
 *       (in the cache); medians of interleaved rounds, in one process.
 *
 *   codes_bench recall --base B.fvecs --queries Q.fvecs --metric l2|ip|cosine
 *                      [--nq 200] [--vary-norms] [--seed S]
 *       recall@10 of "the top R by estimate, reranked by exact distance"
 *       for R = 10, 20, 40, 100 against brute-force truth; bytes per code;
 *       encode time; how often the exact distance of a true top-10
 *       neighbour fell outside estimate +/- bound.  --vary-norms scales
 *       every vector by exp(0.5 N(0,1)) (a fixed stream), for inner product.
 */
#include "common.h"
#include "../../src/hnsw_codes.h"

float		hnsw_l2_squared(const float *a, const float *b, int n);
float		hnsw_dot(const float *a, const float *b, int n);

static const int kinds[] = {HNSW_CODE_INT8, HNSW_CODE_FP16, HNSW_CODE_RABITQ};
#define NKINDS 3

static uint64_t rng = 0x853C49E6748FEA9BULL;

static double
unif(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double) (rng >> 11) * 0x1p-53;
}

static double
gauss(void)
{
	return sqrt(-2 * log(unif() + 1e-300)) * cos(2 * M_PI * unif());
}

static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return x < y ? -1 : x > y;
}

static volatile float sink;

/* encode n vectors of x into one array of codes */
static unsigned char *
encode_all(int kind, int metric, const float *x, int64_t n, int d, size_t *csize)
{
	size_t		cs = hnsw_code_size(kind, d);
	unsigned char *codes = xmalloc(cs * (size_t) n);
	float	   *scratch = xmalloc((hnsw_code_scratch_floats(kind, d) + 1) * sizeof(float));

	for (int64_t i = 0; i < n; i++)
		hnsw_code_encode(kind, 1, metric, x + i * d, d, codes + cs * i, scratch);
	free(scratch);
	*csize = cs;
	return codes;
}

#define ROUNDS 5

/*
 * One table: float4 sets of floats_total floats in all (32 MB: the vectors
 * come from memory; 128 KB: they stay in the cache).  Every round times
 * every function over the whole set; the figure is the median of the
 * rounds, the ratio that of the per-round ratios to the float4 kernel.
 */
static void
speed_table(int64_t floats_total)
{
	static const int dims[] = {128, 784, 1536, 4096};

	printf("float4 set of %lld KB or at least 8 vectors, median of %d interleaved rounds; "
		   "ns per call (ratio to the float4 kernel of the same metric)\n\n",
		   (long long) (floats_total * 4 >> 10), ROUNDS);
	printf("| dims | vectors | float4 L2 ns | float4 dot ns |");
	for (int k = 0; k < NKINDS; k++)
		printf(" %s L2 | %s IP |", hnsw_code_name(kinds[k]), hnsw_code_name(kinds[k]));
	printf("\n|---|---|---|---|");
	for (int k = 0; k < NKINDS; k++)
		printf("---|---|");
	printf("\n");
	for (size_t di = 0; di < sizeof(dims) / sizeof(dims[0]); di++)
	{
		int			d = dims[di];
		int64_t		n = floats_total / d > 8 ? floats_total / d : 8;
		float	   *x = xmalloc(sizeof(float) * n * d);
		float	   *q = xmalloc(sizeof(float) * d);
		int64_t    *order = xmalloc(sizeof(int64_t) * n);
		unsigned char *codes[NKINDS][2];
		size_t		cs[NKINDS];
		HnswCodeQuery *cq[NKINDS][2];
		double		t[2 + 2 * NKINDS][ROUNDS];
		double		ratio[2 + 2 * NKINDS][ROUNDS];

		for (int64_t i = 0; i < n * d; i++)
			x[i] = (float) gauss();
		for (int i = 0; i < d; i++)
			q[i] = (float) gauss();
		for (int64_t i = 0; i < n; i++)
			order[i] = i;
		for (int64_t i = n - 1; i > 0; i--)
		{
			int64_t		j = (int64_t) (unif() * (i + 1)),
						tmp = order[i];

			order[i] = order[j];
			order[j] = tmp;
		}
		for (int k = 0; k < NKINDS; k++)
			for (int m = 0; m < 2; m++)
			{
				int			metric = m == 0 ? HNSW_CODE_METRIC_L2 : HNSW_CODE_METRIC_IP;

				codes[k][m] = encode_all(kinds[k], metric, x, n, d, &cs[k]);
				cq[k][m] = xmalloc(hnsw_code_query_bytes(kinds[k], d));
				hnsw_code_query_prepare(kinds[k], 1, metric, q, d, cq[k][m]);
			}
		for (int r = 0; r < ROUNDS; r++)
		{
			for (int f = 0; f < 2 + 2 * NKINDS; f++)
			{
				double		t0 = now_sec();
				float		acc = 0;

				for (int64_t i = 0; i < n; i++)
				{
					int64_t		j = order[i];

					if (f == 0)
						acc += hnsw_l2_squared(q, x + j * d, d);
					else if (f == 1)
						acc += hnsw_dot(q, x + j * d, d);
					else
					{
						int			k = (f - 2) / 2,
									m = (f - 2) % 2;

						acc += hnsw_code_estimate(cq[k][m], codes[k][m] + cs[k] * j);
					}
				}
				sink = acc;
				t[f][r] = (now_sec() - t0) * 1e9 / n;
			}
			for (int f = 0; f < 2 + 2 * NKINDS; f++)
				ratio[f][r] = t[f][r] / t[f < 2 ? f : (f - 2) % 2][r];
		}
		printf("| %d | %lld |", d, (long long) n);
		for (int f = 0; f < 2 + 2 * NKINDS; f++)
		{
			qsort(t[f], ROUNDS, sizeof(double), cmp_double);
			qsort(ratio[f], ROUNDS, sizeof(double), cmp_double);
			if (f < 2)
				printf(" %.1f |", t[f][ROUNDS / 2]);
			else
				printf(" %.1f (%.2f) |", t[f][ROUNDS / 2], ratio[f][ROUNDS / 2]);
		}
		printf("\n");
		fflush(stdout);
		for (int k = 0; k < NKINDS; k++)
			for (int m = 0; m < 2; m++)
			{
				free(codes[k][m]);
				free(cq[k][m]);
			}
		free(x);
		free(q);
		free(order);
	}
}

typedef struct
{
	double		dist;
	int64_t		id;
} Cand;

static int
cmp_cand(const void *a, const void *b)
{
	const Cand *x = a,
			   *y = b;

	if (x->dist != y->dist)
		return x->dist < y->dist ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

static double
exact_dist(int metric, const float *q, const float *x, int d)
{
	return metric == HNSW_CODE_METRIC_L2 ? hnsw_l2_squared(q, x, d) : -hnsw_dot(q, x, d);
}

static void
recall(const char *base, const char *queries, const char *mname, int nq, int vary)
{
	static const int rs[] = {10, 20, 40, 100};
	fvecs		b = fvecs_read(base, 0, -1);
	fvecs		qs = fvecs_read(queries, 0, nq);
	int			d = b.d;
	int64_t		n = b.n;
	int			metric;
	int64_t    *truth;
	Cand	   *cand = xmalloc(sizeof(Cand) * n);

	if (!strcmp(mname, "l2"))
		metric = HNSW_CODE_METRIC_L2;
	else if (!strcmp(mname, "ip"))
		metric = HNSW_CODE_METRIC_IP;
	else if (!strcmp(mname, "cosine"))
		metric = HNSW_CODE_METRIC_COSINE;
	else
		die("metric must be l2, ip or cosine");
	if (qs.d != d)
		die("dimensions of base and queries differ");
	nq = (int) qs.n;
	if (vary)
	{
		for (int64_t i = 0; i < n; i++)
		{
			float		s = (float) exp(0.5 * gauss());

			for (int j = 0; j < d; j++)
				b.v[i * d + j] *= s;
		}
	}
	truth = xmalloc(sizeof(int64_t) * 10 * nq);
	for (int qi = 0; qi < nq; qi++)
	{
		for (int64_t i = 0; i < n; i++)
		{
			cand[i].dist = exact_dist(metric, qs.v + (int64_t) qi * d, b.v + i * d, d);
			cand[i].id = i;
		}
		qsort(cand, n, sizeof(Cand), cmp_cand);
		for (int j = 0; j < 10; j++)
			truth[qi * 10 + j] = cand[j].id;
	}
	printf("%s: %lld x %d, %d queries, metric %s%s\n\n", base, (long long) n, d, nq, mname,
		   vary ? ", norms varied" : "");
	printf("| kind | bytes/code | float4 bytes | encode us/vector | recall@10 R=10 | R=20 | R=40 | R=100 | true top-10 outside bound |\n");
	printf("|---|---|---|---|---|---|---|---|---|\n");
	for (int k = 0; k < NKINDS; k++)
	{
		size_t		cs;
		double		t0 = now_sec();
		unsigned char *codes = encode_all(kinds[k], metric, b.v, n, d, &cs);
		double		enc = (now_sec() - t0) * 1e6 / n;
		HnswCodeQuery *cq = xmalloc(hnsw_code_query_bytes(kinds[k], d));
		long		hits[4] = {0, 0, 0, 0},
					outside = 0;

		for (int qi = 0; qi < nq; qi++)
		{
			const float *q = qs.v + (int64_t) qi * d;

			hnsw_code_query_prepare(kinds[k], 1, metric, q, d, cq);
			for (int64_t i = 0; i < n; i++)
			{
				cand[i].dist = hnsw_code_estimate(cq, codes + cs * i);
				cand[i].id = i;
			}
			for (int j = 0; j < 10; j++)
			{
				int64_t		id = truth[qi * 10 + j];
				double		ex = exact_dist(metric, q, b.v + id * d, d);
				float		bound;
				double		est = hnsw_code_estimate_bounded(cq, codes + cs * id, &bound);

				outside += fabs(ex - est) > bound;
			}
			qsort(cand, n, sizeof(Cand), cmp_cand);
			for (int ri = 0; ri < 4; ri++)
			{
				int			r = rs[ri] < n ? rs[ri] : (int) n;
				Cand		top[100];

				for (int j = 0; j < r; j++)
				{
					top[j].id = cand[j].id;
					top[j].dist = exact_dist(metric, q, b.v + cand[j].id * d, d);
				}
				qsort(top, r, sizeof(Cand), cmp_cand);
				for (int j = 0; j < 10 && j < r; j++)
					for (int t = 0; t < 10; t++)
						hits[ri] += top[j].id == truth[qi * 10 + t];
			}
		}
		printf("| %s | %zu | %zu | %.1f |", hnsw_code_name(kinds[k]), cs, (size_t) d * 4, enc);
		for (int ri = 0; ri < 4; ri++)
			printf(" %.4f |", (double) hits[ri] / (10.0 * nq));
		printf(" %.2f%% |\n", 100.0 * outside / (10.0 * nq));
		fflush(stdout);
		free(codes);
		free(cq);
	}
	printf("\n");
}

int
main(int argc, char **argv)
{
	const char *base = NULL,
			   *queries = NULL,
			   *metric = "l2";
	int			nq = 200,
				vary = 0;

	if (argc >= 2 && !strcmp(argv[1], "speed"))
	{
		speed_table((int64_t) 8 << 20);
		printf("\n");
		speed_table((int64_t) 32 << 10);
		return 0;
	}
	if (argc < 2 || strcmp(argv[1], "recall"))
		die("usage: codes_bench speed | recall --base B --queries Q --metric l2|ip|cosine [--nq N] [--vary-norms]");
	for (int i = 2; i < argc; i++)
	{
		if (!strcmp(argv[i], "--vary-norms"))
			vary = 1;
		else if (i + 1 < argc && !strcmp(argv[i], "--base"))
			base = argv[++i];
		else if (i + 1 < argc && !strcmp(argv[i], "--queries"))
			queries = argv[++i];
		else if (i + 1 < argc && !strcmp(argv[i], "--metric"))
			metric = argv[++i];
		else if (i + 1 < argc && !strcmp(argv[i], "--nq"))
			nq = atoi(argv[++i]);
		else
			die("unknown argument %s", argv[i]);
	}
	if (!base || !queries)
		die("recall needs --base and --queries");
	recall(base, queries, metric, nq, vary);
	return 0;
}
