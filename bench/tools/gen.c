/*
 * gen: synthetic vector sets with a fixed seed, and fvecs -> COPY text.
 *
 *   gen gauss  --dim D --n N --nq Q [--seed S] [--clusters C] [--stream K] [--normalize]
 *              [--varnorm] --base BASE.fvecs --queries QUERY.fvecs
 *       Gaussian mixture: C centres (default 64); a row picks a centre
 *       uniformly and adds noise.  Centre and noise coordinates j are scaled
 *       by 1/sqrt(1+j) (a decaying spectrum, like real embeddings: the
 *       intrinsic dimension is far below D), centres by 2 more than the
 *       noise so clusters overlap only partly.  Queries come from the same
 *       mixture, drawn from an independent stream (they are not base rows).
 *       --normalize scales every vector to unit length (for cosine sets).
 *       --varnorm (inner-product sets with widely varying norms): every
 *       base row is offset by 0.5 in each coordinate and multiplied by a
 *       factor uniform in (0, 1] of its own (drawn from a stream of its
 *       own, so the rows before the change are those without it); the
 *       queries are drawn from the mixture as they are.
 *       --stream K (default 1; queries use 2) draws the base rows from
 *       another stream of the same mixture: use 3, 4, ... for extra rows
 *       to insert later (writes, churn); --nq 0 --queries - writes no queries.
 *
 *   gen spaces --dim D --spaces S --rows R --nq Q [--seed S] [--clusters C]
 *              [--per-space P] [--zipf E] [--normalize] --base BASE.fvecs --queries QUERY.fvecs
 *       Multi-space ("memory spaces") set: S*R rows, row i belongs to space
 *       i % S (spaces interleaved, as rows arrive in a real table).  All
 *       spaces share one global mixture of C centres (default 32) and each
 *       space draws from its own P of them (default 8), so spaces overlap
 *       (a centre serves S*P/C spaces): the global nearest neighbours of a
 *       query mostly lie in other spaces, as with tenants of one application.
 *       Q queries, each in a random space, drawn from that space's mixture.
 *       Space ids go to BASE.fvecs.spaces and QUERY.fvecs.spaces (int32).
 *       --zipf E (E > 0; multi-tenant shapes): spaces of skewed sizes instead
 *       of R rows each, still N = S*R rows in all: the space of rank k
 *       (k = 0 .. S-1, space id k) gets max(1, floor(c / (k+1)^E)) rows,
 *       c (the largest space) chosen by bisection so that the sizes add up
 *       to at most N, and the rows left over go one each to the largest
 *       spaces.  E = 0.9 at 200 000 rows / 20 000 spaces: largest space
 *       12 035 rows (6 %), median 3 rows, 17 620 spaces of <= 10 rows;
 *       at 1 000 000 / 100 000: largest 4.7 %, median 2.  The rows' space
 *       ids are shuffled (a stream of their own), so spaces interleave as
 *       rows arrive in a real table.  2Q queries are written: the first Q
 *       in spaces drawn in proportion to their sizes (the space of a random
 *       row: "by rows"), the next Q in spaces drawn uniformly ("by spaces").
 *       Without --zipf the output is that of the uniform layout above.
 *
 *   gen copy --in F.fvecs [--spaces] [--offset O] [--limit L] [--id-base B]
 *       Writes PostgreSQL COPY text to stdout, one row per vector:
 *       "ID<TAB>{f1,...}" or, with --spaces (reads F.fvecs.spaces),
 *       "ID<TAB>SPACE<TAB>{f1,...}".  ID = B + row number (B defaults to
 *       O, so ids are row numbers of the file).  Floats are written with
 *       9 significant digits, which round-trips float4 exactly.
 *
 *   gen info F.fvecs      prints "N D"
 *
 * Everything is deterministic for a given seed.
 */
#include "common.h"

/* ---------------------------------------------------------------- RNG */

typedef struct
{
	uint64_t	s[4];
	int			have_spare;
	double		spare;
} rng;

static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t	z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void
rng_seed(rng *r, uint64_t seed, uint64_t stream)
{
	uint64_t	x = seed * 0x9e3779b97f4a7c15ULL ^ (stream + 1) * 0xd1b54a32d192ed03ULL;
	int			i;

	for (i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
	r->have_spare = 0;
}

static inline uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline uint64_t
rng_next(rng *r)
{
	uint64_t   *s = r->s;
	uint64_t	result = rotl(s[1] * 5, 7) * 9;
	uint64_t	t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

/* uniform in (0, 1) */
static inline double
rng_uniform(rng *r)
{
	return ((rng_next(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static inline uint64_t
rng_below(rng *r, uint64_t n)
{
	return (uint64_t) (rng_uniform(r) * (double) n) % n;
}

static inline double
rng_gauss(rng *r)
{
	double		u, v, m;

	if (r->have_spare)
	{
		r->have_spare = 0;
		return r->spare;
	}
	u = rng_uniform(r);
	v = rng_uniform(r);
	m = sqrt(-2.0 * log(u));
	r->spare = m * sin(2 * M_PI * v);
	r->have_spare = 1;
	return m * cos(2 * M_PI * v);
}

/* ---------------------------------------------------------------- model */

typedef struct
{
	int			d;
	int			c;
	float	   *scale;			/* d */
	float	   *centres;		/* c * d */
} mixture;

static void
mixture_init(mixture *m, int d, int c, uint64_t seed)
{
	rng			r;
	int			i, j;

	m->d = d;
	m->c = c;
	m->scale = xmalloc(sizeof(float) * d);
	m->centres = xmalloc(sizeof(float) * (size_t) c * d);
	for (j = 0; j < d; j++)
		m->scale[j] = (float) (1.0 / sqrt(1.0 + j));
	rng_seed(&r, seed, 0);
	for (i = 0; i < c; i++)
		for (j = 0; j < d; j++)
			m->centres[(size_t) i * d + j] = (float) (2.0 * m->scale[j] * rng_gauss(&r));
}

static void
mixture_draw(const mixture *m, rng *r, int centre, int normalize, float *out)
{
	const float *c = m->centres + (size_t) centre * m->d;
	int			j;

	for (j = 0; j < m->d; j++)
		out[j] = c[j] + (float) (m->scale[j] * rng_gauss(r));
	if (normalize)
	{
		double		s = 0;

		for (j = 0; j < m->d; j++)
			s += (double) out[j] * out[j];
		if (s > 0)
		{
			s = 1.0 / sqrt(s);
			for (j = 0; j < m->d; j++)
				out[j] = (float) (out[j] * s);
		}
	}
}

/* ---------------------------------------------------------------- args */

typedef struct
{
	int			dim, n, nq, clusters, per_space, spaces, rows, normalize, with_spaces, stream,
				varnorm;
	uint64_t	seed;
	long long	offset, limit, id_base;
	int			id_base_set;
	double		zipf;
	const char *base, *queries, *in;
} args;

static long long
num(const char *opt, const char *v)
{
	char	   *end;
	long long	x;

	if (v == NULL)
		die("option %s needs a value", opt);
	errno = 0;
	x = strtoll(v, &end, 10);
	if (errno || end == v || *end)
		die("bad value for %s: %s", opt, v);
	return x;
}

static void
parse(int argc, char **argv, args *a)
{
	int			i;

	memset(a, 0, sizeof(*a));
	a->seed = 42;
	a->clusters = 0;			/* default: 64 (gauss), 32 (spaces) */
	a->per_space = 8;
	a->limit = -1;
	a->stream = 1;
	for (i = 2; i < argc; i++)
	{
		const char *o = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(o, "--normalize"))
			a->normalize = 1;
		else if (!strcmp(o, "--varnorm"))
			a->varnorm = 1;
		else if (!strcmp(o, "--spaces") && (v == NULL || v[0] == '-' || !strcmp(argv[1], "copy")))
			a->with_spaces = 1;
		else
		{
			if (v == NULL)
				die("option %s needs a value", o);
			i++;
			if (!strcmp(o, "--dim"))
				a->dim = (int) num(o, v);
			else if (!strcmp(o, "--n"))
				a->n = (int) num(o, v);
			else if (!strcmp(o, "--nq"))
				a->nq = (int) num(o, v);
			else if (!strcmp(o, "--seed"))
				a->seed = (uint64_t) num(o, v);
			else if (!strcmp(o, "--stream"))
				a->stream = (int) num(o, v);
			else if (!strcmp(o, "--clusters"))
				a->clusters = (int) num(o, v);
			else if (!strcmp(o, "--per-space"))
				a->per_space = (int) num(o, v);
			else if (!strcmp(o, "--spaces"))
				a->spaces = (int) num(o, v);
			else if (!strcmp(o, "--rows"))
				a->rows = (int) num(o, v);
			else if (!strcmp(o, "--offset"))
				a->offset = num(o, v);
			else if (!strcmp(o, "--limit"))
				a->limit = num(o, v);
			else if (!strcmp(o, "--zipf"))
			{
				char	   *end;

				errno = 0;
				a->zipf = strtod(v, &end);
				if (errno || end == v || *end || !(a->zipf > 0 && a->zipf <= 10))
					die("bad value for --zipf: %s (an exponent in (0, 10])", v);
			}
			else if (!strcmp(o, "--id-base"))
			{
				a->id_base = num(o, v);
				a->id_base_set = 1;
			}
			else if (!strcmp(o, "--base"))
				a->base = v;
			else if (!strcmp(o, "--queries"))
				a->queries = v;
			else if (!strcmp(o, "--in"))
				a->in = v;
			else
				die("unknown option %s", o);
		}
	}
}

static char *
spaces_path(const char *fvecs_path)
{
	char	   *p = xmalloc(strlen(fvecs_path) + 8);

	sprintf(p, "%s.spaces", fvecs_path);
	return p;
}

static void
write_ints(const char *path, const int32_t *v, size_t n)
{
	FILE	   *f = xfopen(path, "wb");

	if (fwrite(v, 4, n, f) != n || fclose(f) != 0)
		die("write %s failed", path);
}

/* write to PATH.tmp then rename, so an interrupted run leaves no half file */
static FILE *
open_out(const char *path, char **tmp)
{
	*tmp = xmalloc(strlen(path) + 8);
	sprintf(*tmp, "%s.tmp", path);
	return xfopen(*tmp, "wb");
}

static void
close_out(FILE *f, const char *tmp, const char *path)
{
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		die("cannot write %s: %s", path, strerror(errno));
}

static int
cmd_gauss(args *a)
{
	mixture		m;
	rng			r, rf;
	float	   *v;
	int			i, j;
	FILE	   *f;
	char	   *tmp;

	if (a->clusters == 0)
		a->clusters = 64;
	if (a->varnorm && a->normalize)
		die("gen gauss: --varnorm and --normalize exclude each other");
	if (a->dim <= 0 || a->n <= 0 || a->nq < 0 || !a->base || !a->queries || a->clusters <= 0)
		die("gen gauss: need --dim, --n, --nq, --base, --queries");
	mixture_init(&m, a->dim, a->clusters, a->seed);
	v = xmalloc(sizeof(float) * a->dim);

	f = open_out(a->base, &tmp);
	rng_seed(&r, a->seed, a->stream);
	rng_seed(&rf, a->seed, 1000 + (uint64_t) a->stream);
	for (i = 0; i < a->n; i++)
	{
		mixture_draw(&m, &r, (int) rng_below(&r, a->clusters), a->normalize, v);
		if (a->varnorm)
		{
			/* uniform in (0, 1]: 1 - uniform (0, 1) */
			double		factor = 1.0 - rng_uniform(&rf);

			for (j = 0; j < a->dim; j++)
				v[j] = (float) ((v[j] + 0.5) * factor);
		}
		fvecs_write_row(f, v, a->dim);
	}
	close_out(f, tmp, a->base);

	if (a->nq == 0 && !strcmp(a->queries, "-"))
		return 0;
	f = open_out(a->queries, &tmp);
	rng_seed(&r, a->seed, 2);
	for (i = 0; i < a->nq; i++)
	{
		mixture_draw(&m, &r, (int) rng_below(&r, a->clusters), a->normalize, v);
		fvecs_write_row(f, v, a->dim);
	}
	close_out(f, tmp, a->queries);
	return 0;
}

/* rows of the space of rank k: max(1, floor(c / (k+1)^e)) */
static int64_t
zipf_total(const double *w, int spaces, double c, int64_t *sizes)
{
	int64_t		t = 0;
	int			k;

	for (k = 0; k < spaces; k++)
	{
		double		x = floor(c * w[k]);
		int64_t		z = x < 1 ? 1 : (int64_t) x;

		if (sizes)
			sizes[k] = z;
		t += z;
	}
	return t;
}

/*
 * Space id of each of the N rows for --zipf E: sizes by rank as in the usage
 * comment (c by bisection, the remainder one row each to the largest), then
 * the ids shuffled (Fisher-Yates, stream 3) so that spaces interleave.
 */
static void
zipf_space_ids(const args *a, int64_t n, int32_t *sid)
{
	double	   *w = xmalloc(sizeof(double) * a->spaces);
	int64_t    *sizes = xmalloc(sizeof(int64_t) * a->spaces);
	double		lo = 0, hi = (double) n;
	int64_t		left, i, pos = 0;
	int			k, it;
	rng			r;

	for (k = 0; k < a->spaces; k++)
		w[k] = pow(k + 1.0, -a->zipf);
	for (it = 0; it < 200; it++)
	{
		double		c = (lo + hi) / 2;

		if (zipf_total(w, a->spaces, c, NULL) <= n)
			lo = c;
		else
			hi = c;
	}
	left = n - zipf_total(w, a->spaces, lo, sizes);
	for (k = 0; left > 0; k = (k + 1) % a->spaces, left--)
		sizes[k]++;
	for (k = 0; k < a->spaces; k++)
		for (i = 0; i < sizes[k]; i++)
			sid[pos++] = k;
	rng_seed(&r, a->seed, 3);
	for (i = n - 1; i > 0; i--)
	{
		int64_t		j = (int64_t) rng_below(&r, (uint64_t) i + 1);
		int32_t		t = sid[i];

		sid[i] = sid[j];
		sid[j] = t;
	}
	fprintf(stderr, "gen spaces --zipf %g: %lld rows, %d spaces, largest %lld rows, smallest %lld\n",
			a->zipf, (long long) n, a->spaces, (long long) sizes[0],
			(long long) sizes[a->spaces - 1]);
	free(w);
	free(sizes);
}

static int
cmd_spaces(args *a)
{
	mixture		m;
	rng			r, rs;
	float	   *v;
	int		   *pick;
	int32_t    *sid, *qsid;
	int64_t		n, nq, i;
	int			s, j;
	FILE	   *f;
	char	   *tmp;

	if (a->clusters == 0)
		a->clusters = 32;
	if (a->dim <= 0 || a->spaces <= 0 || a->rows <= 0 || a->nq < 0 || !a->base || !a->queries ||
		a->per_space <= 0 || a->clusters <= 0)
		die("gen spaces: need --dim, --spaces, --rows, --nq, --base, --queries");
	if (a->zipf > 0 && a->rows < 1)
		die("gen spaces --zipf: every space needs a row (--rows >= 1)");
	mixture_init(&m, a->dim, a->clusters, a->seed);
	v = xmalloc(sizeof(float) * a->dim);
	/* each space's own P centres out of the global C */
	pick = xmalloc(sizeof(int) * (size_t) a->spaces * a->per_space);
	for (s = 0; s < a->spaces; s++)
	{
		rng_seed(&rs, a->seed, 1000000 + (uint64_t) s);
		for (j = 0; j < a->per_space; j++)
			pick[(size_t) s * a->per_space + j] = (int) rng_below(&rs, a->clusters);
	}

	n = (int64_t) a->spaces * a->rows;
	nq = a->zipf > 0 ? 2 * (int64_t) a->nq : a->nq;
	sid = xmalloc(sizeof(int32_t) * (size_t) n);
	qsid = xmalloc(sizeof(int32_t) * (size_t) (nq > 0 ? nq : 1));
	if (a->zipf > 0)
		zipf_space_ids(a, n, sid);
	f = open_out(a->base, &tmp);
	rng_seed(&r, a->seed, 1);
	for (i = 0; i < n; i++)
	{
		if (a->zipf > 0)
			s = sid[i];
		else
		{
			s = (int) (i % a->spaces);
			sid[i] = s;
		}
		mixture_draw(&m, &r, pick[(size_t) s * a->per_space + rng_below(&r, a->per_space)],
					 a->normalize, v);
		fvecs_write_row(f, v, a->dim);
	}
	close_out(f, tmp, a->base);
	write_ints(spaces_path(a->base), sid, (size_t) n);

	f = open_out(a->queries, &tmp);
	rng_seed(&r, a->seed, 2);
	for (i = 0; i < nq; i++)
	{
		/* --zipf: the first Q by rows (a random row's space), then by spaces */
		if (a->zipf > 0 && i < a->nq)
			s = sid[rng_below(&r, (uint64_t) n)];
		else
			s = (int) rng_below(&r, a->spaces);
		qsid[i] = s;
		mixture_draw(&m, &r, pick[(size_t) s * a->per_space + rng_below(&r, a->per_space)],
					 a->normalize, v);
		fvecs_write_row(f, v, a->dim);
	}
	close_out(f, tmp, a->queries);
	write_ints(spaces_path(a->queries), qsid, (size_t) nq);
	return 0;
}

/* fast enough float -> text: integers (pixel data) take a short path */
static inline char *
put_float(char *p, float x)
{
	if (x == (float) (int) x && x > -1e6f && x < 1e6f)
		return p + sprintf(p, "%d", (int) x);
	return p + sprintf(p, "%.9g", x);
}

static int
cmd_copy(args *a)
{
	fvecs		fv;
	int32_t    *sid = NULL;
	int64_t		nsp = 0, i;
	char	   *line;
	int			j;

	if (!a->in)
		die("gen copy: need --in");
	fv = fvecs_read(a->in, a->offset, a->limit);
	if (a->with_spaces)
	{
		sid = ints_read(spaces_path(a->in), a->offset, a->limit, &nsp);
		if (nsp != fv.n)
			die("%s.spaces has %lld rows, the vectors %lld", a->in, (long long) nsp, (long long) fv.n);
	}
	if (!a->id_base_set)
		a->id_base = a->offset;
	line = xmalloc((size_t) fv.d * 20 + 64);
	for (i = 0; i < fv.n; i++)
	{
		char	   *p = line;
		const float *v = fv.v + i * fv.d;

		p += sprintf(p, "%lld\t", (long long) (a->id_base + i));
		if (sid)
			p += sprintf(p, "%d\t", sid[i]);
		*p++ = '{';
		for (j = 0; j < fv.d; j++)
		{
			if (j)
				*p++ = ',';
			p = put_float(p, v[j]);
		}
		*p++ = '}';
		*p++ = '\n';
		if (fwrite(line, 1, p - line, stdout) != (size_t) (p - line))
			die("write failed: %s", strerror(errno));
	}
	if (fflush(stdout) != 0)
		die("write failed: %s", strerror(errno));
	return 0;
}

static void
usage(void)
{
	fprintf(stderr,
			"usage: gen gauss  --dim D --n N --nq Q [--seed S] [--clusters C] [--stream K] [--normalize] [--varnorm] --base F --queries F\n"
			"       gen spaces --dim D --spaces S --rows R --nq Q [--seed S] [--clusters C] [--per-space P]\n"
			"                  [--zipf E] [--normalize] --base F --queries F\n"
			"       gen copy   --in F [--spaces] [--offset O] [--limit L] [--id-base B]\n"
			"       gen info   F\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	args		a;

	if (argc < 2)
		usage();
	if (!strcmp(argv[1], "info"))
	{
		fvecs		f;

		if (argc != 3)
			usage();
		f = fvecs_read(argv[2], 0, 0);
		{
			struct stat st;

			stat(argv[2], &st);
			printf("%lld %d\n", (long long) (st.st_size / (4 + 4 * (int64_t) f.d)), f.d);
		}
		return 0;
	}
	parse(argc, argv, &a);
	if (!strcmp(argv[1], "gauss"))
		return cmd_gauss(&a);
	if (!strcmp(argv[1], "spaces"))
		return cmd_spaces(&a);
	if (!strcmp(argv[1], "copy"))
		return cmd_copy(&a);
	usage();
	return 2;
}
