/*
 * truth: exact k-nearest-neighbour ground truth by brute force.
 *
 *   truth compute --base B.fvecs --queries Q.fvecs --metric l2|cosine|ip
 *                 --out T.truth [--k 10] [--nq N] [--spaces] [--threads T] [--force]
 *       For each of the first N queries (default all), the k nearest base
 *       rows (ids = row numbers) and their distances.  With --spaces, a
 *       query only sees the base rows of its own space (B.fvecs.spaces,
 *       Q.fvecs.spaces).  A float pass keeps k+16 candidates per query,
 *       which are then rescored in double precision and sorted by
 *       (distance, id).  The output header carries a checksum of the input
 *       files and parameters: when T.truth already exists with the same
 *       checksum, nothing is computed ("cached").  Threads default to the
 *       number of online CPUs.
 *
 *   truth dump T.truth [--nq N]
 *       COPY text for PostgreSQL: "QID<TAB>{ids}<TAB>{dists}" (ids of -1,
 *       in spaces with fewer than k rows, are left out).
 *
 *   truth info T.truth    prints "nq k metric global|per-space checksum"
 */
#include "common.h"

#include <pthread.h>
#include <unistd.h>

#define QBLOCK 16
#define EXTRA 16

typedef struct
{
	float		d;
	int32_t		id;
} cand;

/* max-heap on d of at most cap entries */
typedef struct
{
	cand	   *c;
	int			n, cap;
} heap;

static inline void
heap_push(heap *h, float d, int32_t id)
{
	int			i, p;

	if (h->n < h->cap)
	{
		i = h->n++;
		while (i > 0 && h->c[p = (i - 1) / 2].d < d)
		{
			h->c[i] = h->c[p];
			i = p;
		}
		h->c[i].d = d;
		h->c[i].id = id;
		return;
	}
	if (d >= h->c[0].d)
		return;
	/* replace the root and sift down */
	i = 0;
	for (;;)
	{
		int			l = 2 * i + 1, r = l + 1, m = i;
		float		md = d;

		if (l < h->n && h->c[l].d > md)
		{
			m = l;
			md = h->c[l].d;
		}
		if (r < h->n && h->c[r].d > md)
			m = r;
		if (m == i)
			break;
		h->c[i] = h->c[m];
		i = m;
	}
	h->c[i].d = d;
	h->c[i].id = id;
}

/* ---------------------------------------------------------------- state */

static fvecs base, queries;
static float *base_inv_norm;	/* cosine: 1/|b| (0 for a zero vector) */
static int32_t *base_space, *query_space;
static int64_t *space_start;	/* CSR of base rows by space */
static int32_t *space_rows;
static int	max_space = -1;
static int	metric, k, kc;
static int64_t nq;
static int32_t *out_ids;
static double *out_dists;
static int64_t next_block;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static inline float
dot_f(const float *restrict a, const float *restrict b, int d)
{
	float		s = 0;
	int			i;

	for (i = 0; i < d; i++)
		s += a[i] * b[i];
	return s;
}

static inline float
l2sq_f(const float *restrict a, const float *restrict b, int d)
{
	float		s = 0;
	int			i;

	for (i = 0; i < d; i++)
	{
		float		t = a[i] - b[i];

		s += t * t;
	}
	return s;
}

/* the float-pass key: same order as the true distance (up to rounding) */
static inline float
key_f(const float *q, int64_t row)
{
	const float *b = base.v + row * base.d;

	switch (metric)
	{
		case METRIC_L2:
			return l2sq_f(q, b, base.d);
		case METRIC_COSINE:
			if (base_inv_norm[row] == 0)
				return INFINITY;
			return -dot_f(q, b, base.d) * base_inv_norm[row];
		default:
			return -dot_f(q, b, base.d);
	}
}

static int
cmp_final(const void *a, const void *b)
{
	const double *x = a, *y = b;

	/* pairs (dist, id) */
	if (x[0] < y[0])
		return -1;
	if (x[0] > y[0])
		return 1;
	return (x[1] > y[1]) - (x[1] < y[1]);
}

static void
finish_query(int64_t qi, heap *h, double *tmp)
{
	const float *q = queries.v + qi * queries.d;
	int			i, n = 0;

	for (i = 0; i < h->n; i++)
	{
		double		d = exact_distance(metric, q, base.v + (int64_t) h->c[i].id * base.d, base.d);

		if (d != d)				/* NaN: zero vector under cosine */
			continue;
		tmp[2 * n] = d;
		tmp[2 * n + 1] = h->c[i].id;
		n++;
	}
	qsort(tmp, n, 2 * sizeof(double), cmp_final);
	for (i = 0; i < k; i++)
	{
		out_ids[qi * k + i] = i < n ? (int32_t) tmp[2 * i + 1] : -1;
		out_dists[qi * k + i] = i < n ? tmp[2 * i] : INFINITY;
	}
}

static void *
worker_flat(void *arg)
{
	heap		hs[QBLOCK];
	double	   *tmp = xmalloc(sizeof(double) * 2 * kc);
	int64_t		tile = 65536 / base.d;
	int			i;

	(void) arg;
	if (tile < 16)
		tile = 16;
	for (i = 0; i < QBLOCK; i++)
	{
		hs[i].c = xmalloc(sizeof(cand) * kc);
		hs[i].cap = kc;
	}
	for (;;)
	{
		int64_t		q0, q1, t0, t1, r;

		pthread_mutex_lock(&lock);
		q0 = next_block;
		next_block += QBLOCK;
		pthread_mutex_unlock(&lock);
		if (q0 >= nq)
			break;
		q1 = q0 + QBLOCK < nq ? q0 + QBLOCK : nq;
		for (i = 0; i < q1 - q0; i++)
			hs[i].n = 0;
		for (t0 = 0; t0 < base.n; t0 = t1)
		{
			t1 = t0 + tile < base.n ? t0 + tile : base.n;
			for (i = 0; i < q1 - q0; i++)
			{
				const float *q = queries.v + (q0 + i) * queries.d;

				for (r = t0; r < t1; r++)
					heap_push(&hs[i], key_f(q, r), (int32_t) r);
			}
		}
		for (i = 0; i < q1 - q0; i++)
			finish_query(q0 + i, &hs[i], tmp);
	}
	return NULL;
}

static void *
worker_spaces(void *arg)
{
	heap		h;
	double	   *tmp = xmalloc(sizeof(double) * 2 * kc);

	(void) arg;
	h.c = xmalloc(sizeof(cand) * kc);
	h.cap = kc;
	for (;;)
	{
		int64_t		q0, q1, qi, j;

		pthread_mutex_lock(&lock);
		q0 = next_block;
		next_block += 64;
		pthread_mutex_unlock(&lock);
		if (q0 >= nq)
			break;
		q1 = q0 + 64 < nq ? q0 + 64 : nq;
		for (qi = q0; qi < q1; qi++)
		{
			int			s = query_space[qi];
			const float *q = queries.v + qi * queries.d;

			h.n = 0;
			if (s >= 0 && s <= max_space)
				for (j = space_start[s]; j < space_start[s + 1]; j++)
					heap_push(&h, key_f(q, space_rows[j]), space_rows[j]);
			finish_query(qi, &h, tmp);
		}
	}
	return NULL;
}

static char *
cat(const char *a, const char *b)
{
	char	   *p = xmalloc(strlen(a) + strlen(b) + 1);

	strcpy(p, a);
	strcat(p, b);
	return p;
}

static int
cmd_compute(int argc, char **argv)
{
	const char *bpath = NULL, *qpath = NULL, *out = NULL;
	int			use_spaces = 0, force = 0, threads = (int) sysconf(_SC_NPROCESSORS_ONLN);
	long long	want_nq = -1;
	uint64_t	h = 0xcbf29ce484222325ULL;
	truth_set	old;
	truth_header hdr;
	pthread_t  *tids;
	double		t0;
	int			i;
	FILE	   *f;
	char	   *tmp;
	int64_t		r;

	k = 10;
	metric = 0;
	for (i = 2; i < argc; i++)
	{
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(o, "--spaces"))
			use_spaces = 1;
		else if (!strcmp(o, "--force"))
			force = 1;
		else if (v == NULL)
			die("option %s needs a value", o);
		else
		{
			i++;
			if (!strcmp(o, "--base"))
				bpath = v;
			else if (!strcmp(o, "--queries"))
				qpath = v;
			else if (!strcmp(o, "--out"))
				out = v;
			else if (!strcmp(o, "--metric"))
				metric = parse_metric(v);
			else if (!strcmp(o, "--k"))
				k = atoi(v);
			else if (!strcmp(o, "--nq"))
				want_nq = atoll(v);
			else if (!strcmp(o, "--threads"))
				threads = atoi(v);
			else
				die("unknown option %s", o);
		}
	}
	if (!bpath || !qpath || !out || !metric || k <= 0 || threads <= 0)
		die("usage: truth compute --base B --queries Q --metric l2|cosine|ip --out T [--k K] [--nq N] [--spaces] [--threads T] [--force]");

	/* checksum of everything the result depends on */
	h = hash_bytes(h, "truth-v2", 8);
	h = hash_file(h, bpath);
	h = hash_file(h, qpath);
	if (use_spaces)
	{
		h = hash_file(h, cat(bpath, ".spaces"));
		h = hash_file(h, cat(qpath, ".spaces"));
	}
	h = hash_bytes(h, &metric, sizeof(metric));
	h = hash_bytes(h, &k, sizeof(k));
	h = hash_bytes(h, &want_nq, sizeof(want_nq));
	h = hash_bytes(h, &use_spaces, sizeof(use_spaces));

	if (!force && truth_read(out, &old, 1) && old.h.checksum == h)
	{
		fprintf(stderr, "truth: %s is up to date (checksum %016llx), cached\n", out,
				(unsigned long long) h);
		return 0;
	}

	base = fvecs_read(bpath, 0, -1);
	queries = fvecs_read(qpath, 0, want_nq);
	if (base.d != queries.d)
		die("dimension mismatch: base %d, queries %d", base.d, queries.d);
	nq = queries.n;
	kc = k + EXTRA;
	if (metric == METRIC_COSINE)
	{
		base_inv_norm = xmalloc(sizeof(float) * base.n);
		for (r = 0; r < base.n; r++)
		{
			double		s = 0;
			const float *b = base.v + r * base.d;

			for (i = 0; i < base.d; i++)
				s += (double) b[i] * b[i];
			base_inv_norm[r] = s > 0 ? (float) (1.0 / sqrt(s)) : 0.0f;
		}
	}
	if (use_spaces)
	{
		int64_t		nb, nqs, *fill;

		base_space = ints_read(cat(bpath, ".spaces"), 0, -1, &nb);
		query_space = ints_read(cat(qpath, ".spaces"), 0, nq, &nqs);
		if (nb != base.n || nqs != nq)
			die("space files do not match the vector files");
		for (r = 0; r < nb; r++)
		{
			if (base_space[r] < 0)
				die("negative space id at base row %lld", (long long) r);
			if (base_space[r] > max_space)
				max_space = base_space[r];
		}
		space_start = calloc(max_space + 2, sizeof(int64_t));
		fill = calloc(max_space + 2, sizeof(int64_t));
		space_rows = xmalloc(sizeof(int32_t) * nb);
		for (r = 0; r < nb; r++)
			space_start[base_space[r] + 1]++;
		for (i = 0; i <= max_space; i++)
			space_start[i + 1] += space_start[i];
		for (r = 0; r < nb; r++)
			space_rows[space_start[base_space[r]] + fill[base_space[r]]++] = (int32_t) r;
	}

	out_ids = xmalloc(sizeof(int32_t) * nq * k);
	out_dists = xmalloc(sizeof(double) * nq * k);
	t0 = now_sec();
	tids = xmalloc(sizeof(pthread_t) * threads);
	for (i = 0; i < threads; i++)
		pthread_create(&tids[i], NULL, use_spaces ? worker_spaces : worker_flat, NULL);
	for (i = 0; i < threads; i++)
		pthread_join(tids[i], NULL);

	memset(&hdr, 0, sizeof(hdr));
	memcpy(hdr.magic, TRUTH_MAGIC, 8);
	hdr.version = TRUTH_VERSION;
	hdr.nq = (uint32_t) nq;
	hdr.k = (uint32_t) k;
	hdr.metric = (uint32_t) metric;
	hdr.flags = use_spaces ? TRUTH_PER_SPACE : 0;
	hdr.checksum = h;
	tmp = cat(out, ".tmp");
	f = xfopen(tmp, "wb");
	if (fwrite(&hdr, sizeof(hdr), 1, f) != 1 ||
		fwrite(out_ids, 4, nq * k, f) != (size_t) (nq * k) ||
		fwrite(out_dists, 8, nq * k, f) != (size_t) (nq * k) ||
		fclose(f) != 0 || rename(tmp, out) != 0)
		die("cannot write %s: %s", out, strerror(errno));
	fprintf(stderr, "truth: %lld queries x %lld rows (%d-d, %s%s), k=%d, %d threads: %.2f s -> %s\n",
			(long long) nq, (long long) base.n, base.d, metric_name(metric),
			use_spaces ? ", per space" : "", k, threads, now_sec() - t0, out);
	return 0;
}

static int
cmd_dump(int argc, char **argv)
{
	truth_set	t;
	long long	want = -1, q;
	uint32_t	i;

	if (argc < 3)
		die("usage: truth dump T.truth [--nq N]");
	if (argc == 5 && !strcmp(argv[3], "--nq"))
		want = atoll(argv[4]);
	if (!truth_read(argv[2], &t, 0))
		die("%s: not a truth file", argv[2]);
	if (want < 0 || want > t.h.nq)
		want = t.h.nq;
	for (q = 0; q < want; q++)
	{
		int			first = 1;

		printf("%lld\t{", q);
		for (i = 0; i < t.h.k; i++)
			if (t.ids[q * t.h.k + i] >= 0)
			{
				printf(first ? "%d" : ",%d", t.ids[q * t.h.k + i]);
				first = 0;
			}
		printf("}\t{");
		first = 1;
		for (i = 0; i < t.h.k; i++)
			if (t.ids[q * t.h.k + i] >= 0)
			{
				printf(first ? "%.17g" : ",%.17g", t.dists[q * t.h.k + i]);
				first = 0;
			}
		printf("}\n");
	}
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "compute"))
		return cmd_compute(argc, argv);
	if (argc >= 3 && !strcmp(argv[1], "dump"))
		return cmd_dump(argc, argv);
	if (argc == 3 && !strcmp(argv[1], "info"))
	{
		truth_set	t;

		if (!truth_read(argv[2], &t, 1))
			die("%s: not a truth file", argv[2]);
		printf("%u %u %s %s %016llx\n", t.h.nq, t.h.k, metric_name((int) t.h.metric),
			   (t.h.flags & TRUTH_PER_SPACE) ? "per-space" : "global",
			   (unsigned long long) t.h.checksum);
		return 0;
	}
	fprintf(stderr, "usage: truth compute ... | truth dump T [--nq N] | truth info T\n");
	return 2;
}
