/*
 * idx2copy: convert an IDX image file (MNIST / Fashion-MNIST format) into
 * PostgreSQL COPY text format, one row per image:
 *
 *     ID<TAB>{p1,p2,...,pN}
 *
 * where every pixel byte is written as a plain integer (a valid real[]
 * literal).  IDX1 label files are accepted too and give "ID<TAB>label".
 *
 * Usage: idx2copy [--first-id N] [--offset K] [--limit L] [--normalize] [FILE|-]
 *
 *   --first-id N  id of the first row written (default 1)
 *   --offset K    skip the first K images of the file (default 0)
 *   --limit L     write at most L images (default: all remaining)
 *   --normalize   scale every vector to unit L2 length (written with %.9g);
 *                 an all-zero vector is written unchanged
 *
 * The input is read from FILE, or from standard input when FILE is "-" or
 * missing.  The files are usually gzip'd: pipe them through zcat, e.g.
 *
 *     zcat train-images-idx3-ubyte.gz | idx2copy --limit 1000
 *
 * Build: gcc -O2 -Wall -Wextra -o idx2copy idx2copy.c -lm
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *progname = "idx2copy";

static void
usage(FILE *out)
{
	fprintf(out,
			"usage: %s [--first-id N] [--offset K] [--limit L] [--normalize] [FILE|-]\n"
			"Converts an IDX3 ubyte image file (or IDX1 label file) into COPY text lines\n"
			"\"ID<TAB>{v1,v2,...}\".  Pipe .gz files through zcat.\n",
			progname);
}

static void
die(const char *msg)
{
	fprintf(stderr, "%s: %s\n", progname, msg);
	exit(1);
}

static long long
parse_count(const char *opt, const char *val, long long minval)
{
	char	   *end;
	long long	v;

	if (val == NULL)
	{
		fprintf(stderr, "%s: option %s needs a value\n", progname, opt);
		exit(2);
	}
	errno = 0;
	v = strtoll(val, &end, 10);
	if (errno != 0 || end == val || *end != '\0' || v < minval)
	{
		fprintf(stderr, "%s: invalid value for %s: \"%s\"\n", progname, opt, val);
		exit(2);
	}
	return v;
}

static uint32_t
read_be32(FILE *in)
{
	unsigned char b[4];

	if (fread(b, 1, 4, in) != 4)
		die("truncated IDX header");
	return ((uint32_t) b[0] << 24) | ((uint32_t) b[1] << 16) |
		((uint32_t) b[2] << 8) | (uint32_t) b[3];
}

int
main(int argc, char **argv)
{
	long long	first_id = 1;
	long long	offset = 0;
	long long	limit = -1;
	int			normalize = 0;
	const char *path = NULL;
	FILE	   *in;
	unsigned char hdr[4];
	int			ndims;
	uint32_t	count;
	size_t		item_size = 1;
	unsigned char *buf;
	char	   *line;
	size_t		linecap;
	long long	written = 0;
	long long	i;

	for (i = 1; i < argc; i++)
	{
		const char *a = argv[i];

		if (strcmp(a, "--first-id") == 0)
			first_id = parse_count(a, argv[++i], -2147483648LL);
		else if (strcmp(a, "--offset") == 0)
			offset = parse_count(a, argv[++i], 0);
		else if (strcmp(a, "--limit") == 0)
			limit = parse_count(a, argv[++i], 0);
		else if (strcmp(a, "--normalize") == 0)
			normalize = 1;
		else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
		{
			usage(stdout);
			return 0;
		}
		else if (a[0] == '-' && a[1] != '\0')
		{
			fprintf(stderr, "%s: unknown option \"%s\"\n", progname, a);
			usage(stderr);
			return 2;
		}
		else if (path == NULL)
			path = a;
		else
		{
			usage(stderr);
			return 2;
		}
	}

	if (path == NULL || strcmp(path, "-") == 0)
		in = stdin;
	else if ((in = fopen(path, "rb")) == NULL)
	{
		fprintf(stderr, "%s: could not open \"%s\": %s\n", progname, path, strerror(errno));
		return 1;
	}

	/* magic: 0x00 0x00 <type> <ndims>; type 0x08 = unsigned byte */
	if (fread(hdr, 1, 4, in) != 4)
		die("empty or truncated input");
	if (hdr[0] == 0x1f && hdr[1] == 0x8b)
		die("input is gzip-compressed; pipe it through zcat");
	if (hdr[0] != 0 || hdr[1] != 0 || hdr[2] != 0x08)
		die("not an unsigned-byte IDX file (bad magic)");
	ndims = hdr[3];
	if (ndims < 1 || ndims > 3)
		die("unsupported number of IDX dimensions (expected 1 or 3)");
	count = read_be32(in);
	for (i = 1; i < ndims; i++)
	{
		uint32_t	d = read_be32(in);

		if (d == 0 || d > 65536)
			die("implausible IDX dimension");
		item_size *= d;
	}
	if (item_size > 16 * 1024 * 1024)
		die("IDX item too large");

	buf = malloc(item_size);
	linecap = item_size * 16 + 64;
	line = malloc(linecap);
	if (buf == NULL || line == NULL)
		die("out of memory");

	if ((unsigned long long) offset > count)
		offset = count;
	/* skip K items (works on pipes too) */
	for (i = 0; i < offset; i++)
		if (fread(buf, 1, item_size, in) != item_size)
			die("input ended before --offset was reached");

	for (i = offset; i < (long long) count; i++)
	{
		size_t		len = 0;
		size_t		j;

		if (limit >= 0 && written >= limit)
			break;
		if (fread(buf, 1, item_size, in) != item_size)
			die("truncated IDX data (fewer items than the header says)");

		len += (size_t) snprintf(line + len, linecap - len, "%lld\t", first_id + written);
		if (ndims == 1)
			len += (size_t) snprintf(line + len, linecap - len, "%u\n", (unsigned) buf[0]);
		else if (!normalize)
		{
			line[len++] = '{';
			for (j = 0; j < item_size; j++)
			{
				unsigned	v = buf[j];

				if (j > 0)
					line[len++] = ',';
				/* hand-rolled: this loop dominates the run time */
				if (v >= 100)
				{
					line[len++] = (char) ('0' + v / 100);
					line[len++] = (char) ('0' + (v / 10) % 10);
				}
				else if (v >= 10)
					line[len++] = (char) ('0' + v / 10);
				line[len++] = (char) ('0' + v % 10);
			}
			line[len++] = '}';
			line[len++] = '\n';
		}
		else
		{
			double		sum = 0.0;
			double		scale;

			for (j = 0; j < item_size; j++)
				sum += (double) buf[j] * buf[j];
			scale = sum > 0.0 ? 1.0 / sqrt(sum) : 1.0;
			line[len++] = '{';
			for (j = 0; j < item_size; j++)
			{
				if (j > 0)
					line[len++] = ',';
				if (buf[j] == 0)
					line[len++] = '0';
				else
					len += (size_t) snprintf(line + len, linecap - len, "%.9g",
											 (float) (buf[j] * scale));
			}
			line[len++] = '}';
			line[len++] = '\n';
		}
		if (fwrite(line, 1, len, stdout) != len)
			die("write error");
		written++;
	}

	if (fflush(stdout) != 0 || ferror(stdout))
		die("write error");
	free(buf);
	free(line);
	if (in != stdin)
		fclose(in);
	return 0;
}
