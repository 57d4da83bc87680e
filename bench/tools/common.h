/*
 * common.h: shared helpers of the bench/ tools (C and C++).
 *
 * File formats (all little-endian, as written on x86-64):
 *
 *   NAME.fvecs   the classic "fvecs" layout: for every vector an int32
 *                dimension d followed by d float32 values.  Row i (0-based)
 *                is the vector whose id is i everywhere in the suite.
 *   NAME.spaces  optional side file of a multi-space set: one int32 space id
 *                per row of NAME.fvecs (the file NAME.fvecs.spaces).
 *   NAME.truth   exact k-NN ground truth written by `truth`: a header
 *                (struct truth_header), then nq*k int32 ids (-1 where a
 *                space has fewer than k rows) and nq*k float64 distances,
 *                row-major, each row in ascending (distance, id) order.
 *
 * Distances are the ones of the SQL operators: l2 = Euclidean distance
 * (<->), cosine = 1 - cos (<=>), ip = - inner product (<#>).
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

static inline void
die(const char *fmt, ...)
{
	va_list		ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static inline void *
xmalloc(size_t n)
{
	void	   *p = malloc(n ? n : 1);

	if (p == NULL)
		die("out of memory (%zu bytes)", n);
	return p;
}

static inline double
now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---------------------------------------------------------------- metrics */

enum metric
{
	METRIC_L2 = 1,
	METRIC_COSINE = 2,
	METRIC_IP = 3
};

static inline int
parse_metric(const char *s)
{
	if (strcmp(s, "l2") == 0)
		return METRIC_L2;
	if (strcmp(s, "cosine") == 0)
		return METRIC_COSINE;
	if (strcmp(s, "ip") == 0)
		return METRIC_IP;
	die("unknown metric \"%s\" (l2, cosine or ip)", s);
	return 0;
}

static inline const char *
metric_name(int m)
{
	return m == METRIC_L2 ? "l2" : m == METRIC_COSINE ? "cosine" : m == METRIC_IP ? "ip" : "?";
}

/* exact distance in double precision, as the SQL operator defines it */
static inline double
exact_distance(int metric, const float *a, const float *b, int d)
{
	double		s = 0, na = 0, nb = 0;
	int			i;

	switch (metric)
	{
		case METRIC_L2:
			for (i = 0; i < d; i++)
			{
				double		t = (double) a[i] - (double) b[i];

				s += t * t;
			}
			return sqrt(s);
		case METRIC_COSINE:
			for (i = 0; i < d; i++)
			{
				s += (double) a[i] * b[i];
				na += (double) a[i] * a[i];
				nb += (double) b[i] * b[i];
			}
			if (na == 0 || nb == 0)
				return NAN;
			return 1.0 - s / sqrt(na * nb);
		default:
			for (i = 0; i < d; i++)
				s += (double) a[i] * b[i];
			return -s;
	}
}

/* ---------------------------------------------------------------- fvecs */

typedef struct
{
	int64_t		n;
	int			d;
	float	   *v;				/* n * d floats, row-major */
} fvecs;

static inline FILE *
xfopen(const char *path, const char *mode)
{
	FILE	   *f = fopen(path, mode);

	if (f == NULL)
		die("cannot open %s: %s", path, strerror(errno));
	return f;
}

/* Load rows [offset, offset+limit) of an fvecs file (limit < 0: all). */
static inline fvecs
fvecs_read(const char *path, int64_t offset, int64_t limit)
{
	FILE	   *f = xfopen(path, "rb");
	struct stat st;
	int32_t		d;
	int64_t		total, i;
	fvecs		r;

	if (fstat(fileno(f), &st) != 0)
		die("stat %s: %s", path, strerror(errno));
	if (fread(&d, 4, 1, f) != 1 || d <= 0 || d > 100000)
		die("%s: not an fvecs file", path);
	if (st.st_size % (4 + 4 * (int64_t) d) != 0)
		die("%s: size %lld is not a multiple of the row size for d=%d", path,
			(long long) st.st_size, d);
	total = st.st_size / (4 + 4 * (int64_t) d);
	if (offset > total)
		offset = total;
	if (limit < 0 || offset + limit > total)
		limit = total - offset;
	r.n = limit;
	r.d = d;
	r.v = (float *) xmalloc((size_t) (limit * d) * sizeof(float));
	if (fseeko(f, offset * (4 + 4 * (int64_t) d), SEEK_SET) != 0)
		die("%s: seek failed", path);
	for (i = 0; i < limit; i++)
	{
		int32_t		dd;

		if (fread(&dd, 4, 1, f) != 1 || dd != d)
			die("%s: row %lld has a bad dimension", path, (long long) (offset + i));
		if (fread(r.v + i * d, 4, d, f) != (size_t) d)
			die("%s: truncated at row %lld", path, (long long) (offset + i));
	}
	fclose(f);
	return r;
}

static inline void
fvecs_write_row(FILE *f, const float *v, int d)
{
	int32_t		dd = d;

	if (fwrite(&dd, 4, 1, f) != 1 || fwrite(v, 4, d, f) != (size_t) d)
		die("write failed: %s", strerror(errno));
}

/* int32 side file (space ids); returns the number of entries */
static inline int32_t *
ints_read(const char *path, int64_t offset, int64_t limit, int64_t *n_out)
{
	FILE	   *f = xfopen(path, "rb");
	struct stat st;
	int64_t		total;
	int32_t    *r;

	if (fstat(fileno(f), &st) != 0 || st.st_size % 4 != 0)
		die("%s: bad int32 file", path);
	total = st.st_size / 4;
	if (offset > total)
		offset = total;
	if (limit < 0 || offset + limit > total)
		limit = total - offset;
	r = (int32_t *) xmalloc((size_t) limit * 4);
	if (fseeko(f, offset * 4, SEEK_SET) != 0 ||
		fread(r, 4, (size_t) limit, f) != (size_t) limit)
		die("%s: read failed", path);
	fclose(f);
	*n_out = limit;
	return r;
}

/* ---------------------------------------------------------------- hashing */

/* FNV-1a style 64-bit hash, 8 bytes at a time (fast enough for GBs) */
static inline uint64_t
hash_bytes(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = (const unsigned char *) p;
	size_t		i = 0;

	for (; i + 8 <= n; i += 8)
	{
		uint64_t	w;

		memcpy(&w, b + i, 8);
		h ^= w;
		h *= 0x100000001b3ULL;
		h ^= h >> 29;
	}
	for (; i < n; i++)
	{
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static inline uint64_t
hash_file(uint64_t h, const char *path)
{
	FILE	   *f = xfopen(path, "rb");
	size_t		bufsz = 1 << 20,
				got;
	char	   *buf = (char *) xmalloc(bufsz);

	while ((got = fread(buf, 1, bufsz, f)) > 0)
		h = hash_bytes(h, buf, got);
	fclose(f);
	free(buf);
	return h;
}

/* ---------------------------------------------------------------- truth */

#define TRUTH_MAGIC "ENGTRUTH"
#define TRUTH_VERSION 2
#define TRUTH_PER_SPACE 1		/* flags: neighbours searched within the query's space */

typedef struct
{
	char		magic[8];
	uint32_t	version;
	uint32_t	nq;
	uint32_t	k;
	uint32_t	metric;
	uint32_t	flags;			/* TRUTH_PER_SPACE */
	uint32_t	pad;
	uint64_t	checksum;		/* of the inputs and parameters */
} truth_header;

typedef struct
{
	truth_header h;
	int32_t    *ids;			/* nq * k */
	double	   *dists;			/* nq * k */
} truth_set;

/* returns 0 when the file is missing or unreadable */
static inline int
truth_read(const char *path, truth_set *t, int header_only)
{
	FILE	   *f = fopen(path, "rb");
	size_t		n;

	if (f == NULL)
		return 0;
	if (fread(&t->h, sizeof(t->h), 1, f) != 1 ||
		memcmp(t->h.magic, TRUTH_MAGIC, 8) != 0 || t->h.version != TRUTH_VERSION)
	{
		fclose(f);
		return 0;
	}
	t->ids = NULL;
	t->dists = NULL;
	if (!header_only)
	{
		n = (size_t) t->h.nq * t->h.k;
		t->ids = (int32_t *) xmalloc(n * 4);
		t->dists = (double *) xmalloc(n * 8);
		if (fread(t->ids, 4, n, f) != n || fread(t->dists, 8, n, f) != n)
		{
			fclose(f);
			return 0;
		}
	}
	fclose(f);
	return 1;
}

#ifdef __cplusplus
}
#endif

#endif							/* BENCH_COMMON_H */
