/*
 * hnswlib_bench: the in-memory reference.  Builds an hnswlib (Debian
 * libhnswlib-dev, 0.6.2) index over an fvecs file with the same M and
 * ef_construction as engram_hnsw, then measures recall@k and single-thread
 * queries/s for a list of ef values against a `truth` file.
 *
 *   hnswlib_bench --base B.fvecs --queries Q.fvecs --truth T.truth
 *                 --metric l2|cosine|ip [--M 16] [--efc 64] [--threads 1]
 *                 [--ef 10,20,40,80,120,200,400] [--k 10] [--nq N]
 *                 [--runs 3] [--build-runs 1] [--build-only]
 *
 * Output (stdout), tab-separated, one record per line; lines starting with
 * '#' are comments:
 *   build   THREADS  SECONDS  INDEX_MB  PEAK_RSS_MB  CPU_SECONDS      (per build run)
 *   search  EF  RECALL  QPS_MEDIAN  QPS_MIN  QPS_MAX  NQ  CPU_QPS_MEDIAN (per ef)
 * Build: wall time of adding every row with THREADS threads (row 0 first,
 * then the rest in parallel, as hnswlib's Python binding does).  INDEX_MB
 * is hnswlib's own allocation (element blocks and upper-layer links).
 * Search: the queries run one after another in one thread (searchKnn), the
 * whole list RUNS times; QPS_* are over those runs (wall clock), recall from
 * the last.  CPU_SECONDS / CPU_QPS use the process's / thread's CPU time
 * instead of the wall clock: steadier on a shared machine, where other
 * jobs take the CPU away (compare both).
 * Recall counts a returned row as a hit when it is one of the true k, or
 * its exact distance is not larger than the k-th true distance (ties).
 * Cosine indexes normalised copies with hnswlib's inner-product space.
 */
#include "common.h"

#include <hnswlib/hnswlib.h>

#include <algorithm>
#include <atomic>
#include <sys/resource.h>
#include <thread>
#include <vector>

static double
cpu_sec(int clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double
peak_rss_mb(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss / 1024.0;
}

static std::vector<float>
normalized(const fvecs &f)
{
	std::vector<float> v(f.v, f.v + (size_t) f.n * f.d);

	for (int64_t i = 0; i < f.n; i++)
	{
		double		s = 0;
		float	   *r = v.data() + i * f.d;

		for (int j = 0; j < f.d; j++)
			s += (double) r[j] * r[j];
		if (s > 0)
		{
			s = 1.0 / sqrt(s);
			for (int j = 0; j < f.d; j++)
				r[j] = (float) (r[j] * s);
		}
	}
	return v;
}

int
main(int argc, char **argv)
{
	const char *bpath = NULL, *qpath = NULL, *tpath = NULL;
	int			metric = 0, M = 16, efc = 64, threads = 1, k = 10, runs = 3, build_runs = 1;
	int			build_only = 0;
	long long	incremental = 0;
	long long	want_nq = -1;
	std::vector<int> efs = {10, 20, 40, 80, 120, 200, 400};

	for (int i = 1; i < argc; i++)
	{
		std::string o = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (o == "--build-only")
		{
			build_only = 1;
			continue;
		}
		if (v == NULL)
			die("option %s needs a value", o.c_str());
		i++;
		if (o == "--base")
			bpath = v;
		else if (o == "--queries")
			qpath = v;
		else if (o == "--truth")
			tpath = v;
		else if (o == "--metric")
			metric = parse_metric(v);
		else if (o == "--M")
			M = atoi(v);
		else if (o == "--efc")
			efc = atoi(v);
		else if (o == "--threads")
			threads = atoi(v);
		else if (o == "--k")
			k = atoi(v);
		else if (o == "--nq")
			want_nq = atoll(v);
		else if (o == "--runs")
			runs = atoi(v);
		else if (o == "--build-runs")
			build_runs = atoi(v);
		else if (o == "--incremental")
			incremental = atoll(v);
		else if (o == "--ef")
		{
			efs.clear();
			std::string s = v;
			size_t		p = 0;

			while (p < s.size())
			{
				size_t		q = s.find_first_of(", ", p);

				if (q == std::string::npos)
					q = s.size();
				if (q > p)
					efs.push_back(atoi(s.substr(p, q - p).c_str()));
				p = q + 1;
			}
		}
		else
			die("unknown option %s", o.c_str());
	}
	if (!bpath || !metric || M < 2 || efc < 1 || threads < 1 || runs < 1 || build_runs < 1 ||
		(!build_only && (!qpath || !tpath)))
		die("usage: hnswlib_bench --base B --queries Q --truth T --metric l2|cosine|ip [--M 16] [--efc 64]\n"
			"       [--threads 1] [--ef 10,20,...] [--k 10] [--nq N] [--runs 3] [--build-runs 1] [--build-only]\n"
			"       [--incremental N]");

	fvecs		base = fvecs_read(bpath, 0, -1);
	std::vector<float> bnorm;
	const float *bdata = base.v;

	if (metric == METRIC_COSINE)
	{
		bnorm = normalized(base);
		bdata = bnorm.data();
	}
	hnswlib::SpaceInterface<float> *space;

	if (metric == METRIC_L2)
		space = new hnswlib::L2Space(base.d);
	else
		space = new hnswlib::InnerProductSpace(base.d);

	printf("# hnswlib 0.6.2: n=%lld d=%d metric=%s M=%d ef_construction=%d threads=%d\n",
		   (long long) base.n, base.d, metric_name(metric), M, efc, threads);

	hnswlib::HierarchicalNSW<float> *index = NULL;

	for (int br = 0; br < build_runs; br++)
	{
		delete index;
		index = new hnswlib::HierarchicalNSW<float>(space, base.n, M, efc, 100);
		double		t0 = now_sec();
		double		c0 = cpu_sec(CLOCK_PROCESS_CPUTIME_ID);

		index->addPoint(bdata, 0);
		std::atomic<int64_t> next(1);
		auto		work = [&]() {
			for (;;)
			{
				int64_t		s = next.fetch_add(64);

				if (s >= base.n)
					break;
				int64_t		e = std::min<int64_t>(s + 64, base.n);

				for (int64_t i = s; i < e; i++)
					index->addPoint(bdata + i * base.d, (hnswlib::labeltype) i);
			}
		};
		if (threads == 1)
			work();
		else
		{
			std::vector<std::thread> ts;

			for (int t = 0; t < threads; t++)
				ts.emplace_back(work);
			for (auto &t : ts)
				t.join();
		}
		double		secs = now_sec() - t0;
		double		csecs = cpu_sec(CLOCK_PROCESS_CPUTIME_ID) - c0;
		double		bytes = (double) index->max_elements_ * index->size_data_per_element_;

		for (size_t i = 0; i < index->cur_element_count; i++)
			bytes += (double) index->element_levels_[i] * index->size_links_per_element_;
		printf("build\t%d\t%.3f\t%.1f\t%.1f\t%.3f\n", threads, secs, bytes / 1048576.0, peak_rss_mb(), csecs);
		fflush(stdout);
	}
	if (incremental > 0 && incremental < base.n)
	{
		/*
		 * The per-row cost of inserting into an existing graph (what a
		 * database index pays per new row): build from the first n - N
		 * rows, then time adding the last N one by one, on one thread.
		 */
		int64_t		n0 = base.n - incremental;
		hnswlib::HierarchicalNSW<float> *inc =
			new hnswlib::HierarchicalNSW<float>(space, base.n, M, efc, 100);

		for (int64_t i = 0; i < n0; i++)
			inc->addPoint(bdata + i * base.d, (hnswlib::labeltype) i);
		double		t0 = now_sec();
		double		c0 = cpu_sec(CLOCK_PROCESS_CPUTIME_ID);

		for (int64_t i = n0; i < base.n; i++)
			inc->addPoint(bdata + i * base.d, (hnswlib::labeltype) i);
		printf("incremental\t%lld\t%lld\t%.1f\t%.1f\n", (long long) incremental, (long long) n0,
			   (now_sec() - t0) * 1e6 / incremental,
			   (cpu_sec(CLOCK_PROCESS_CPUTIME_ID) - c0) * 1e6 / incremental);
		fflush(stdout);
		delete inc;
	}
	if (build_only)
		return 0;

	fvecs		qv = fvecs_read(qpath, 0, want_nq);
	truth_set	t;

	if (qv.d != base.d)
		die("dimension mismatch: base %d, queries %d", base.d, qv.d);
	if (!truth_read(tpath, &t, 0))
		die("%s: not a truth file (run truth compute)", tpath);
	if ((int) t.h.metric != metric)
		die("%s was computed for metric %s", tpath, metric_name((int) t.h.metric));
	if (t.h.flags & TRUTH_PER_SPACE)
		die("%s is a per-space truth; hnswlib_bench searches one global index", tpath);
	if ((int) t.h.k < k)
		die("%s has k=%u < %d", tpath, t.h.k, k);
	if (qv.n > (int64_t) t.h.nq)
		qv.n = t.h.nq;

	std::vector<float> qnorm;
	const float *qdata = qv.v;

	if (metric == METRIC_COSINE)
	{
		qnorm = normalized(qv);
		qdata = qnorm.data();
	}
	std::vector<hnswlib::labeltype> res((size_t) qv.n * k);

	for (int ef : efs)
	{
		std::vector<double> qps, cqps;

		index->setEf(ef);
		for (int r = 0; r < runs; r++)
		{
			double		t0 = now_sec();
			double		c0 = cpu_sec(CLOCK_THREAD_CPUTIME_ID);

			for (int64_t q = 0; q < qv.n; q++)
			{
				auto		pq = index->searchKnn(qdata + q * qv.d, k);
				int			n = (int) pq.size();

				for (int j = 0; j < k; j++)
					res[q * k + j] = (hnswlib::labeltype) -1;
				while (!pq.empty())
				{
					res[q * k + --n] = pq.top().second;
					pq.pop();
				}
			}
			qps.push_back(qv.n / (now_sec() - t0));
			cqps.push_back(qv.n / (cpu_sec(CLOCK_THREAD_CPUTIME_ID) - c0));
		}
		/* recall from the results of the last run (all runs are identical) */
		double		hits = 0, want = 0;

		for (int64_t q = 0; q < qv.n; q++)
		{
			const int32_t *tid = t.ids + q * t.h.k;
			int			kk = 0;

			while (kk < k && tid[kk] >= 0)
				kk++;
			if (kk == 0)
				continue;
			double		kd = t.dists[q * t.h.k + kk - 1];
			int			h = 0;

			for (int j = 0; j < k; j++)
			{
				hnswlib::labeltype l = res[q * k + j];

				if (l == (hnswlib::labeltype) -1)
					continue;
				bool		hit = std::find(tid, tid + kk, (int32_t) l) != tid + kk;

				if (!hit)
				{
					double		d = exact_distance(metric, qv.v + q * qv.d, base.v + (int64_t) l * base.d, base.d);

					hit = d <= kd + 1e-9 * std::max(1.0, fabs(kd));
				}
				h += hit;
			}
			hits += std::min(h, kk);
			want += kk;
		}
		std::sort(qps.begin(), qps.end());
		std::sort(cqps.begin(), cqps.end());
		double		med = qps.size() % 2 ? qps[qps.size() / 2] :
			(qps[qps.size() / 2 - 1] + qps[qps.size() / 2]) / 2;
		double		cmed = cqps.size() % 2 ? cqps[cqps.size() / 2] :
			(cqps[cqps.size() / 2 - 1] + cqps[cqps.size() / 2]) / 2;

		printf("search\t%d\t%.4f\t%.0f\t%.0f\t%.0f\t%lld\t%.0f\n", ef, hits / want, med, qps.front(),
			   qps.back(), (long long) qv.n, cmed);
		fflush(stdout);
	}
	delete index;
	return 0;
}
