/*-------------------------------------------------------------------------
 *
 * hnsw_worker.c
 *	  The merge worker: a background process that merges an index's
 *	  pending list while writers only append.
 *
 * Why a separate process: a merge reads thousands of the graph's pages per
 * row, at random.  A backend touching a shared-buffer page for the first
 * time pays far more than later reads (page-table set-up: with 4 kB pages
 * about 0.3-0.45 s of CPU for a new backend's first merge, against 53-83 ms
 * for the same 200 rows in a backend that has merged before).  When every
 * writer merges inline, every new connection pays that again, and each
 * merges only a stripe's share at a time.  One long-lived merger per index
 * pays it once: with 8 single-row writers it gave 1.56x their rate and
 * 1.35x the sustained rate (bench/writes_analysis.md, measured at 63507df).
 *
 * Life cycle:
 *	- An insert that finds its stripe over its share of the pending list
 *	  calls hnsw_merge_worker_take_over().  If the index has a worker (it
 *	  holds the index's WORKER_LOCK(0), an advisory lock, for its whole
 *	  life), the insert just goes on.  Otherwise it
 *	  registers a dynamic background worker for the index and goes on; if
 *	  none can be registered (max_worker_processes), it merges itself as
 *	  before.  A backend starts at most one worker per index per second.
 *	  A scan that finds a chain over its share starts one the same way (a
 *	  list left by a crash, or by writers that stopped, gets merged without
 *	  waiting for the next insert), but never merges itself.
 *	- The worker takes one of engram_hnsw.max_merge_workers server-wide
 *	  slots (session advisory locks in no database) and the index's worker
 *	  locks (see take_locks()), or exits at once: a second worker of the
 *	  same index, started in a race, never runs.
 *	- It then loops: one transaction per round, which opens the table and
 *	  the index with RowExclusiveLock (as an insert does) and merges every
 *	  stripe over its share (hnsw_merge_over_share(), the inserts' own
 *	  trigger, so it merges what the writers would have merged, no more).
 *	  Between rounds it holds no relation lock, so DROP INDEX, REINDEX or
 *	  ALTER INDEX wait at most for one round; a dropped index ends it.
 *	- Idle (nothing over a share) for HNSW_WORKER_IDLE_MS, it exits.
 *	- While it is behind on several stripes and CPU is idle, it starts a
 *	  helper, a second worker for the index (see HNSW_WORKERS_PER_INDEX).
 *	- Writers still merge themselves once a stripe passes
 *	  HNSW_PENDING_HARD_FACTOR times its share (hnsw_pending.c): a worker
 *	  that cannot keep up slows the writers instead of growing the list.
 *
 * Crash safety is the merge's own (hnsw_pending.c): a worker killed in the
 * middle of a merge leaves elements linked or still pending, never lost.
 * An ERROR in the worker ends it (it is not restarted); the next insert
 * over its share starts another or merges itself.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <unistd.h>

#include "access/relation.h"
#include "access/xlog.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/pg_class.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "tcop/tcopprot.h"
#include "storage/fd.h"
#include "utils/pg_rusage.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "engram_hnsw.h"

/*
 * The worker's locks are advisory locks (the user lock method) with a
 * fourth tag field no SQL function makes (pg_advisory_lock() uses 1 and
 * 2).  Advisory session locks are released when a process exits, whether
 * normally or by an error; session locks of the default lock method are
 * not (they would outlive the worker and block the index for good).
 *
 * Per index and worker number n (database, index oid, WORKER_LOCK(n) or
 * WORKER_CLAIM(n)): worker n holds both exclusively.  Writers probe
 * WORKER_LOCK(n) (in share mode, for an instant) to learn whether there is
 * a worker n; WORKER_CLAIM(n) is only ever tried without waiting, by
 * workers, so that a second worker n of the index exits at once.
 * Server-wide slots: (no database, HNSW_WORKER_SLOT_KEY, slot number).
 */
#define WORKER_LOCK(n) (2 * (n))
#define WORKER_CLAIM(n) (2 * (n) + 1)
#define HNSW_WORKER_INDEX_CLASS 3
#define HNSW_WORKER_SLOT_KEY 0x656E6772 /* "engr" */
#define HNSW_WORKER_SLOT_CLASS 4

#define HNSW_WORKER_IDLE_MS 2000	/* exit after this long with nothing to do */
#define HNSW_WORKER_POLL_MS 10	/* look for work this often while idle */
#define HNSW_WORKER_START_MS 1000	/* a backend starts one per index this often */
#define HNSW_WORKER_SEEN_MS 50	/* a worker seen running is believed so this long */
#define HNSW_WORKER_PAUSE_MS 5	/* a writer far over its share pauses this long */

/*
 * Workers per index: worker 0, started by any insert over its share, and
 * worker 1, the helper, which only worker 0 starts, and only while it is
 * behind and the machine has an idle core (helper_wanted()).  One process
 * merges on one core: two writers of 100-row INSERTs on two cores outran
 * it (fastupdate on at 0.73x of fastupdate off, bench/writes_analysis.md,
 * at 8851886), while the writers, far over their share, paused and left
 * the other core idle.  But where the writers themselves need the CPU (8
 * single-row writers), a second merger took it from them (0.41-0.43x the
 * no-index rate against 0.46-0.48x): so the helper runs only on CPU nobody
 * else wants (helper_may_run()).  The two split the stripes: a merge skips
 * a stripe whose merge lock another backend holds, and each starts its
 * round on its own half.
 */
#define HNSW_WORKERS_PER_INDEX 2

#define HNSW_HELPER_BEHIND_MS 500	/* worker 0 merging this long without a
									 * break wants help */
#define HNSW_HELPER_WINDOW_MS 500	/* the helper judges its CPU share over
									 * this long */
#define HNSW_HELPER_MIN_SHARE 0.5	/* with less of a core, it yields */
#define HNSW_HELPER_YIELD_MS 100	/* a yielding helper looks again this often */

/*
 * CPU use, for the helper: the machine's idle time (/proc/stat, Linux;
 * where it cannot be read no helper ever starts) and this process's own
 * CPU time.
 */
typedef struct CpuSample
{
	TimestampTz at;
	bool		have_stat;		/* /proc/stat was read */
	uint64		idle;			/* idle + iowait ticks, all CPUs */
	uint64		total;			/* ticks in every state, all CPUs */
	int64		self_us;		/* this process's user + system time */
} CpuSample;

static void
cpu_sample(CpuSample *s)
{
	FILE	   *f;
	PGRUsage	ru;

	s->at = GetCurrentTimestamp();
	s->have_stat = false;
	f = AllocateFile("/proc/stat", "r");
	if (f != NULL)
	{
		unsigned long long v[8];

		/* user nice system idle iowait irq softirq steal (guest is in user) */
		if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu",
				   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 8)
		{
			s->idle = v[3] + v[4];
			s->total = 0;
			for (int i = 0; i < 8; i++)
				s->total += v[i];
			s->have_stat = true;
		}
		FreeFile(f);
	}
	pg_rusage_init(&ru);
	s->self_us = (int64) ru.ru.ru_utime.tv_sec * 1000000 + ru.ru.ru_utime.tv_usec +
		(int64) ru.ru.ru_stime.tv_sec * 1000000 + ru.ru.ru_stime.tv_usec;
}

/* cores idle on average from a to b; -1 if unknown */
static double
idle_cores(const CpuSample *a, const CpuSample *b)
{
	long		ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	if (!a->have_stat || !b->have_stat || b->total <= a->total || ncpu < 1)
		return -1;
	return (double) (b->idle - a->idle) / (double) (b->total - a->total) * ncpu;
}

/* this process's CPU time over the wall time from a to b */
static double
self_share(const CpuSample *a, const CpuSample *b)
{
	if (b->at <= a->at)
		return 1;
	return (double) (b->self_us - a->self_us) / (double) (b->at - a->at);
}

/*
 * Has the index a running worker?  A probe of its worker lock, remembered
 * for HNSW_WORKER_SEEN_MS so that writers over their share do not all
 * queue on the lock manager for every row.
 */
static bool
worker_running(Oid indexoid, int n)
{
	static Oid	seen_index[HNSW_WORKERS_PER_INDEX];
	static TimestampTz seen_at[HNSW_WORKERS_PER_INDEX];
	TimestampTz now = GetCurrentTimestamp();
	LOCKTAG		tag;

	if (seen_index[n] == indexoid &&
		!TimestampDifferenceExceeds(seen_at[n], now, HNSW_WORKER_SEEN_MS))
		return true;

	/* the worker holds its lock exclusively for its whole life */
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, indexoid, WORKER_LOCK(n),
						 HNSW_WORKER_INDEX_CLASS);
	if (LockAcquire(&tag, ShareLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
	{
		seen_index[n] = indexoid;
		seen_at[n] = now;
		return true;
	}
	LockRelease(&tag, ShareLock, false);
	return false;
}

static bool start_worker(Oid indexoid, int n);

static Oid	helper_index = InvalidOid;	/* worker 0: its index */

static void maybe_start_helper(void *arg, int waiting);

/* may this backend leave merging to a worker at all? */
static inline bool
worker_usable(Relation index)
{
	/*
	 * A worker cannot read another backend's temporary index; and a
	 * standby's scans find lists they cannot merge (the primary does).
	 */
	return hnsw_merge_worker && hnsw_max_merge_workers > 0 &&
		!RelationUsesLocalBuffers(index) && IsUnderPostmaster &&
		!RecoveryInProgress();
}

/*
 * An insert's stripe is over its share (or a scan found a chain so): can
 * the merge be left to a worker?  Returns true if the index has a running worker or one was just started
 * for it; false if the caller must merge itself.
 */
bool
hnsw_merge_worker_take_over(Relation index)
{
	if (!worker_usable(index))
		return false;
	if (worker_running(RelationGetRelid(index), 0))
		return true;
	return start_worker(RelationGetRelid(index), 0);
}

/*
 * Register worker n of the index, unless this backend did so less than
 * HNSW_WORKER_START_MS ago (then return what that attempt returned: one is
 * on its way, or none could start).
 */
static bool
start_worker(Oid indexoid, int n)
{
	static Oid	last_index[HNSW_WORKERS_PER_INDEX];
	static TimestampTz last_start[HNSW_WORKERS_PER_INDEX];
	static bool last_ok[HNSW_WORKERS_PER_INDEX];
	TimestampTz now;
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	uint32		extra[2];

	now = GetCurrentTimestamp();
	if (last_index[n] == indexoid &&
		!TimestampDifferenceExceeds(last_start[n], now, HNSW_WORKER_START_MS))
		return last_ok[n];

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "engram_hnsw");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "engram_hnsw_merge_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "engram_hnsw merge worker %d for index %u",
			 n, indexoid);
	snprintf(worker.bgw_type, BGW_MAXLEN, "engram_hnsw merge worker");
	worker.bgw_main_arg = ObjectIdGetDatum(indexoid);
	extra[0] = MyDatabaseId;
	extra[1] = (uint32) n;
	memcpy(worker.bgw_extra, extra, sizeof(extra));
	worker.bgw_notify_pid = 0;

	last_index[n] = indexoid;
	last_start[n] = now;
	last_ok[n] = RegisterDynamicBackgroundWorker(&worker, &handle);
	return last_ok[n];
}

/*
 * An insert's stripe is far over its share (the worker is behind).  If the
 * index has a worker, pause for HNSW_WORKER_PAUSE_MS and return true: on
 * two cores shared by many writers and one worker, the scheduler gives the
 * worker a writer's share of CPU, and a paused writer hands it back.
 * Returns false (the caller merges itself) if there is no worker.
 */
bool
hnsw_merge_worker_throttle(Relation index)
{
	if (!worker_usable(index) || !worker_running(RelationGetRelid(index), 0))
		return false;
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 HNSW_WORKER_PAUSE_MS, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
	return true;
}

/*
 * One round: merge what is over its share.  *gone is set (and nothing
 * done) when the index no longer exists or is not an engram_hnsw index.
 */
static int64
merge_round(Oid indexoid, int n, bool *gone, CpuSample *stretch)
{
	Oid			heapoid = IndexGetRelation(indexoid, true);
	Relation	heap;
	Relation	index;
	int64		merged;

	*gone = true;
	if (!OidIsValid(heapoid))
		return 0;
	/* the table first, as an insert locks them */
	heap = try_relation_open(heapoid, RowExclusiveLock);
	if (heap == NULL)
		return 0;
	index = try_relation_open(indexoid, RowExclusiveLock);
	if (index == NULL)
	{
		relation_close(heap, RowExclusiveLock);
		return 0;
	}
	if (index->rd_rel->relkind != RELKIND_INDEX || index->rd_indam == NULL ||
		index->rd_indam->ambuild != hnsw_build ||
		IndexGetRelation(indexoid, true) != heapoid)
	{
		relation_close(index, RowExclusiveLock);
		relation_close(heap, RowExclusiveLock);
		return 0;
	}
	*gone = false;
	merged = hnsw_merge_over_share(index, n, HNSW_WORKERS_PER_INDEX,
									n == 0 ? maybe_start_helper : NULL, stretch);
	relation_close(index, RowExclusiveLock);
	relation_close(heap, RowExclusiveLock);
	return merged;
}

static int	my_slot = -1;		/* the slot this worker holds */

/*
 * How many of the server-wide worker slots are free, counting up to want
 * (each is taken and given back at once).  A helper runs only if it
 * leaves one free (take_locks()); worker 0 asks for two before starting
 * one, or else, with max_merge_workers below 3 or the slots taken by other
 * indexes' workers, it would start one, in vain, every second.
 */
static int
free_slots(int want)
{
	LOCKTAG		tag;
	int			n = 0;

	for (int i = 0; i < hnsw_max_merge_workers && n < want; i++)
	{
		if (i == my_slot)
			continue;			/* ours: a lock we hold would be granted again */
		SET_LOCKTAG_ADVISORY(tag, InvalidOid, HNSW_WORKER_SLOT_KEY, i,
							 HNSW_WORKER_SLOT_CLASS);
		if (LockAcquire(&tag, ExclusiveLock, true, true) == LOCKACQUIRE_NOT_AVAIL)
			continue;
		LockRelease(&tag, ExclusiveLock, true);
		n++;
	}
	return n;
}

/*
 * Take a server-wide slot and the index's worker locks, all session locks
 * held until the process exits.  Returns false if there is no free slot or
 * the index has a worker n already.  Writers hold WORKER_LOCK(n) in share
 * mode only for an instant, so waiting for it is short; and once the
 * worker waits, the writers' probes fail (a request never jumps a waiting
 * one), which is right: the worker is about to run.  A helper (n > 0)
 * runs only if it leaves a slot free, for another index's first worker.
 */
static bool
take_locks(Oid indexoid, int n)
{
	LOCKTAG		tag;
	bool		have_slot = false;

	for (int i = 0; i < hnsw_max_merge_workers && !have_slot; i++)
	{
		SET_LOCKTAG_ADVISORY(tag, InvalidOid, HNSW_WORKER_SLOT_KEY, i,
							 HNSW_WORKER_SLOT_CLASS);
		have_slot = (LockAcquire(&tag, ExclusiveLock, true, true) != LOCKACQUIRE_NOT_AVAIL);
		if (have_slot)
			my_slot = i;
	}
	if (!have_slot || (n > 0 && free_slots(1) < 1))
		return false;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, indexoid, WORKER_CLAIM(n),
						 HNSW_WORKER_INDEX_CLASS);
	if (LockAcquire(&tag, ExclusiveLock, true, true) == LOCKACQUIRE_NOT_AVAIL)
		return false;
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, indexoid, WORKER_LOCK(n),
						 HNSW_WORKER_INDEX_CLASS);
	(void) LockAcquire(&tag, ExclusiveLock, true, false);
	return true;
}

/*
 * Worker 0, after each stripe it merged (hnsw_merge_over_share()): start
 * the helper if it has been merging without a break for
 * HNSW_HELPER_BEHIND_MS while at least engram_hnsw.merge_helper_idle_cpus
 * of CPU stayed idle (the writers, far over their share, pause and wait
 * for it), and more stripes over their share wait in this round.  Two
 * mergers never merge one stripe: with one writer, whose rows all go to
 * one stripe, a helper only took turns with worker 0, in smaller batches,
 * and cost 1-client 100-row INSERTs 0.86x.  arg is the CpuSample at which
 * the stretch of merging began (at == 0: none yet).  In a transaction (the
 * probe of the helper's lock takes a lock).
 */
static void
maybe_start_helper(void *arg, int waiting)
{
	CpuSample  *from = (CpuSample *) arg;
	CpuSample	now;
	double		idle;

	if (from->at == 0)
	{
		cpu_sample(from);
		return;
	}
	cpu_sample(&now);
	if (!TimestampDifferenceExceeds(from->at, now.at, HNSW_HELPER_BEHIND_MS))
		return;
	idle = idle_cores(from, &now);
	if (waiting > 0 && idle >= 0 && idle >= hnsw_merge_helper_idle_cpus &&
		!worker_running(helper_index, 1) && free_slots(2) == 2 &&
		start_worker(helper_index, 1))
		elog(DEBUG1, "engram_hnsw merge worker for index %u: started a helper "
			 "(%.2f CPUs idle, %d stripes waiting)", helper_index, idle, waiting);
	*from = now;				/* judge the next stretch afresh */
}

/*
 * The helper, before a round: may it merge now?  It yields (pauses) once it
 * got less than HNSW_HELPER_MIN_SHARE of a core over a window of merging
 * (writers or other processes want the CPU), and resumes once at least
 * engram_hnsw.merge_helper_idle_cpus were idle over a pause.  *win is the
 * window's start (at == 0: none yet; the main loop starts one after a round
 * that merged, so that a helper polling for work reads no /proc/stat).
 */
static bool
helper_may_run(bool *yielding, CpuSample *win)
{
	CpuSample	now;

	if (*yielding)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 HNSW_HELPER_YIELD_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		cpu_sample(&now);
		*yielding = !(idle_cores(win, &now) >= hnsw_merge_helper_idle_cpus);
		*win = now;
		return !*yielding;
	}
	if (win->at == 0)
		return true;			/* the window starts after a round that merged */
	cpu_sample(&now);
	if (!TimestampDifferenceExceeds(win->at, now.at, HNSW_HELPER_WINDOW_MS))
		return true;
	*yielding = self_share(win, &now) < HNSW_HELPER_MIN_SHARE;
	*win = now;
	return !*yielding;
}

/* the worker's entry point (bgw_function_name) */
void
engram_hnsw_merge_worker_main(Datum main_arg)
{
	Oid			indexoid = DatumGetObjectId(main_arg);
	Oid			dboid;
	uint32		extra[2];
	int			n;
	bool		ok;
	TimestampTz idle_since;
	int64		total = 0;
	int64		rounds = 0;
	CpuSample	cpu = {0};		/* worker 0: the stretch of merging; helper:
								 * the window */
	bool		yielding = false;	/* helper only */

	memcpy(extra, MyBgworkerEntry->bgw_extra, sizeof(extra));
	dboid = extra[0];
	n = (int) extra[1];
	if (n < 0 || n >= HNSW_WORKERS_PER_INDEX)
		elog(ERROR, "engram_hnsw merge worker: bad worker number %d", n);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);

	StartTransactionCommand();
	ok = take_locks(indexoid, n);
	CommitTransactionCommand();
	if (!ok)
		proc_exit(0);			/* session locks go with the process */
	helper_index = indexoid;

	idle_since = GetCurrentTimestamp();
	for (;;)
	{
		int64		merged;
		bool		gone;

		CHECK_FOR_INTERRUPTS();
		if (n > 0 && !helper_may_run(&yielding, &cpu))
		{
			if (TimestampDifferenceExceeds(idle_since, GetCurrentTimestamp(),
										   HNSW_WORKER_IDLE_MS))
				break;
			continue;
		}
		StartTransactionCommand();
		pgstat_report_activity(STATE_RUNNING, "merging the pending list");
		merged = merge_round(indexoid, n, &gone, &cpu);
		CommitTransactionCommand();
		total += merged;
		rounds++;
		pgstat_report_activity(STATE_IDLE, NULL);
		pgstat_report_stat(false);
		if (gone)
			break;
		if (merged > 0)
		{
			idle_since = GetCurrentTimestamp();
			if (n > 0 && cpu.at == 0)
				cpu_sample(&cpu);	/* the helper's window starts */
			continue;
		}
		cpu.at = 0;				/* a break: a new stretch or window later */
		if (TimestampDifferenceExceeds(idle_since, GetCurrentTimestamp(),
									   HNSW_WORKER_IDLE_MS))
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 HNSW_WORKER_POLL_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
	elog(DEBUG1, "engram_hnsw merge worker %d for index %u: " INT64_FORMAT " rows merged in "
		 INT64_FORMAT " rounds", n, indexoid, total, rounds);
	proc_exit(0);
}
