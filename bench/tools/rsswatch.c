/*
 * rsswatch: peak memory of a PostgreSQL cluster's backends during one step.
 *
 *   rsswatch PPID [INTERVAL_MS]
 *
 * Every INTERVAL_MS (default 50) it sums RssAnon (private anonymous memory:
 * palloc, the in-memory graph of a build; not shared_buffers) over all
 * child processes of PPID (the postmaster: backends and parallel workers)
 * and keeps the maximum.  It also counts the children whose process title
 * says "parallel worker".  On SIGTERM or SIGINT it prints
 * "PEAK_KB FIRST_KB MAX_PARALLEL_WORKERS" and exits.
 */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void
on_signal(int s)
{
	(void) s;
	stop = 1;
}

static long max_workers;

static int
is_parallel_worker(const char *pid)
{
	char		path[300], buf[256];
	FILE	   *f;
	size_t		n;

	snprintf(path, sizeof(path), "/proc/%s/cmdline", pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	return strstr(buf, "parallel worker") != NULL;
}

static long
sample(long ppid)
{
	long		workers = 0;

	DIR		   *d = opendir("/proc");
	struct dirent *e;
	long		total = 0;
	char		path[300], line[256];

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL)
	{
		FILE	   *f;
		long		pp = -1, anon = 0;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/status", e->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		while (fgets(line, sizeof(line), f))
		{
			if (!strncmp(line, "PPid:", 5))
				pp = atol(line + 5);
			else if (!strncmp(line, "RssAnon:", 8))
				anon = atol(line + 8);
		}
		fclose(f);
		if (pp == ppid)
		{
			total += anon;
			workers += is_parallel_worker(e->d_name);
		}
	}
	closedir(d);
	if (workers > max_workers)
		max_workers = workers;
	return total;
}

int
main(int argc, char **argv)
{
	long		ppid, interval = 50, peak = 0, first;

	if (argc < 2 || (ppid = atol(argv[1])) <= 0)
	{
		fprintf(stderr, "usage: rsswatch PPID [INTERVAL_MS]\n");
		return 2;
	}
	if (argc > 2)
		interval = atol(argv[2]);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	first = peak = sample(ppid);
	while (!stop)
	{
		long		s;

		usleep(interval * 1000);
		s = sample(ppid);
		if (s > peak)
			peak = s;
	}
	printf("%ld %ld %ld\n", peak, first, max_workers);
	return 0;
}
