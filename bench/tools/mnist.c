/*
 * mnist: convert an IDX3 ubyte image file (MNIST / Fashion-MNIST) to fvecs,
 * one float per pixel byte (0..255, unscaled, as test/tools/idx2copy does).
 *
 *   mnist --in FILE[.gz] --out OUT.fvecs [--offset K] [--limit L] [--normalize]
 *
 * A .gz input is read through "gzip -dc".  --normalize scales every image
 * to unit length (an all-zero image is left as it is).
 */
#include "common.h"

static uint32_t
be32(const unsigned char *b)
{
	return ((uint32_t) b[0] << 24) | ((uint32_t) b[1] << 16) | ((uint32_t) b[2] << 8) | b[3];
}

int
main(int argc, char **argv)
{
	const char *in = NULL, *out = NULL;
	long long	offset = 0, limit = -1, i;
	int			normalize = 0, is_pipe = 0;
	unsigned char hdr[16], *img;
	uint32_t	n, rows, cols, d, j;
	FILE	   *f, *o;
	float	   *v;
	char	   *tmp;

	for (i = 1; i < argc; i++)
	{
		if (!strcmp(argv[i], "--normalize"))
			normalize = 1;
		else if (i + 1 < argc && !strcmp(argv[i], "--in"))
			in = argv[++i];
		else if (i + 1 < argc && !strcmp(argv[i], "--out"))
			out = argv[++i];
		else if (i + 1 < argc && !strcmp(argv[i], "--offset"))
			offset = atoll(argv[++i]);
		else if (i + 1 < argc && !strcmp(argv[i], "--limit"))
			limit = atoll(argv[++i]);
		else
			die("usage: mnist --in FILE[.gz] --out OUT.fvecs [--offset K] [--limit L] [--normalize]");
	}
	if (!in || !out || offset < 0)
		die("usage: mnist --in FILE[.gz] --out OUT.fvecs [--offset K] [--limit L] [--normalize]");

	if (strlen(in) > 3 && !strcmp(in + strlen(in) - 3, ".gz"))
	{
		char	   *cmd = xmalloc(strlen(in) + 64);

		/* the path comes from our own scripts; quote it anyway */
		if (strchr(in, '\''))
			die("path with a quote: %s", in);
		sprintf(cmd, "gzip -dc '%s'", in);
		f = popen(cmd, "r");
		if (f == NULL)
			die("cannot run %s", cmd);
		is_pipe = 1;
	}
	else
		f = xfopen(in, "rb");

	if (fread(hdr, 1, 16, f) != 16 || be32(hdr) != 0x00000803)
		die("%s: not an IDX3 ubyte file", in);
	n = be32(hdr + 4);
	rows = be32(hdr + 8);
	cols = be32(hdr + 12);
	d = rows * cols;
	if (d == 0 || d > 100000)
		die("%s: bad image size %ux%u", in, rows, cols);
	if (offset > n)
		offset = n;
	if (limit < 0 || offset + limit > n)
		limit = n - offset;

	img = xmalloc(d);
	v = xmalloc(sizeof(float) * d);
	for (i = 0; i < offset; i++)
		if (fread(img, 1, d, f) != d)
			die("%s: truncated", in);

	tmp = xmalloc(strlen(out) + 8);
	sprintf(tmp, "%s.tmp", out);
	o = xfopen(tmp, "wb");
	for (i = 0; i < limit; i++)
	{
		double		s = 0;

		if (fread(img, 1, d, f) != d)
			die("%s: truncated at image %lld", in, offset + i);
		for (j = 0; j < d; j++)
		{
			v[j] = (float) img[j];
			s += (double) v[j] * v[j];
		}
		if (normalize && s > 0)
		{
			s = 1.0 / sqrt(s);
			for (j = 0; j < d; j++)
				v[j] = (float) (v[j] * s);
		}
		fvecs_write_row(o, v, (int) d);
	}
	if (fclose(o) != 0 || rename(tmp, out) != 0)
		die("cannot write %s: %s", out, strerror(errno));
	if (is_pipe)
	{
		/* stop reading early: gzip may die of SIGPIPE, that is fine */
		pclose(f);
	}
	else
		fclose(f);
	fprintf(stderr, "mnist: %lld images of %u floats -> %s\n", limit, d, out);
	return 0;
}
