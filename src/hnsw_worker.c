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
 * 1.35x the sustained rate (bench/writes_analysis.md, session 10).
 *
 * Life cycle:
 *	- An insert that finds its stripe over its share of the pending list
 *	  calls hnsw_merge_worker_take_over().  If the index has a worker (it
 *	  holds the index's HNSW_WORKER_LOCK, an advisory lock, for its whole
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
 * Per index (database, index oid, HNSW_WORKER_LOCK or HNSW_WORKER_CLAIM):
 * the worker holds both exclusively.  Writers probe HNSW_WORKER_LOCK (in
 * share mode, for an instant) to learn whether there is a worker;
 * HNSW_WORKER_CLAIM is only ever tried without waiting, by workers, so
 * that a second worker of the index exits at once.  Server-wide slots:
 * (no database, HNSW_WORKER_SLOT_KEY, slot number).
 */
#define HNSW_WORKER_LOCK 0
#define HNSW_WORKER_CLAIM 1
#define HNSW_WORKER_INDEX_CLASS 3
#define HNSW_WORKER_SLOT_KEY 0x656E6772 /* "engr" */
#define HNSW_WORKER_SLOT_CLASS 4

#define HNSW_WORKER_IDLE_MS 2000	/* exit after this long with nothing to do */
#define HNSW_WORKER_POLL_MS 10	/* look for work this often while idle */
#define HNSW_WORKER_START_MS 1000	/* a backend starts one per index this often */
#define HNSW_WORKER_SEEN_MS 50	/* a worker seen running is believed so this long */
#define HNSW_WORKER_PAUSE_MS 5	/* a writer far over its share pauses this long */

/*
 * Has the index a running worker?  A probe of its worker lock, remembered
 * for HNSW_WORKER_SEEN_MS so that writers over their share do not all
 * queue on the lock manager for every row.
 */
static bool
worker_running(Relation index)
{
	static Oid	seen_index = InvalidOid;
	static TimestampTz seen_at = 0;
	Oid			indexoid = RelationGetRelid(index);
	TimestampTz now = GetCurrentTimestamp();
	LOCKTAG		tag;

	if (seen_index == indexoid &&
		!TimestampDifferenceExceeds(seen_at, now, HNSW_WORKER_SEEN_MS))
		return true;

	/* the worker holds its lock exclusively for its whole life */
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, indexoid, HNSW_WORKER_LOCK,
						 HNSW_WORKER_INDEX_CLASS);
	if (LockAcquire(&tag, ShareLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
	{
		seen_index = indexoid;
		seen_at = now;
		return true;
	}
	LockRelease(&tag, ShareLock, false);
	return false;
}

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
	static Oid	last_index = InvalidOid;
	static TimestampTz last_start = 0;
	static bool last_ok = false;
	Oid			indexoid = RelationGetRelid(index);
	TimestampTz now;
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;

	if (!worker_usable(index))
		return false;
	if (worker_running(index))
		return true;

	now = GetCurrentTimestamp();
	if (last_index == indexoid &&
		!TimestampDifferenceExceeds(last_start, now, HNSW_WORKER_START_MS))
		return last_ok;			/* one is on its way, or none could start */

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "engram_hnsw");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "engram_hnsw_merge_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "engram_hnsw merge worker for index %u",
			 indexoid);
	snprintf(worker.bgw_type, BGW_MAXLEN, "engram_hnsw merge worker");
	worker.bgw_main_arg = ObjectIdGetDatum(indexoid);
	memcpy(worker.bgw_extra, &MyDatabaseId, sizeof(Oid));
	worker.bgw_notify_pid = 0;

	last_index = indexoid;
	last_start = now;
	last_ok = RegisterDynamicBackgroundWorker(&worker, &handle);
	return last_ok;
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
	if (!worker_usable(index) || !worker_running(index))
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
merge_round(Oid indexoid, bool *gone)
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
	merged = hnsw_merge_over_share(index);
	relation_close(index, RowExclusiveLock);
	relation_close(heap, RowExclusiveLock);
	return merged;
}

/*
 * Take a server-wide slot and the index's worker locks, all session locks
 * held until the process exits.  Returns false if there is no free slot or
 * the index has a worker already.  Writers hold HNSW_WORKER_LOCK in share
 * mode only for an instant, so waiting for it is short; and once the
 * worker waits, the writers' probes fail (a request never jumps a waiting
 * one), which is right: the worker is about to run.
 */
static bool
take_locks(Oid indexoid)
{
	LOCKTAG		tag;
	bool		have_slot = false;

	for (int i = 0; i < hnsw_max_merge_workers && !have_slot; i++)
	{
		SET_LOCKTAG_ADVISORY(tag, InvalidOid, HNSW_WORKER_SLOT_KEY, i,
							 HNSW_WORKER_SLOT_CLASS);
		have_slot = (LockAcquire(&tag, ExclusiveLock, true, true) != LOCKACQUIRE_NOT_AVAIL);
	}
	if (!have_slot)
		return false;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, indexoid, HNSW_WORKER_CLAIM,
						 HNSW_WORKER_INDEX_CLASS);
	if (LockAcquire(&tag, ExclusiveLock, true, true) == LOCKACQUIRE_NOT_AVAIL)
		return false;
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, indexoid, HNSW_WORKER_LOCK,
						 HNSW_WORKER_INDEX_CLASS);
	(void) LockAcquire(&tag, ExclusiveLock, true, false);
	return true;
}

/* the worker's entry point (bgw_function_name) */
void
engram_hnsw_merge_worker_main(Datum main_arg)
{
	Oid			indexoid = DatumGetObjectId(main_arg);
	Oid			dboid;
	bool		ok;
	TimestampTz idle_since;
	int64		total = 0;
	int64		rounds = 0;

	memcpy(&dboid, MyBgworkerEntry->bgw_extra, sizeof(Oid));
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);

	StartTransactionCommand();
	ok = take_locks(indexoid);
	CommitTransactionCommand();
	if (!ok)
		proc_exit(0);			/* session locks go with the process */

	idle_since = GetCurrentTimestamp();
	for (;;)
	{
		int64		merged;
		bool		gone;

		CHECK_FOR_INTERRUPTS();
		StartTransactionCommand();
		pgstat_report_activity(STATE_RUNNING, "merging the pending list");
		merged = merge_round(indexoid, &gone);
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
			continue;
		}
		if (TimestampDifferenceExceeds(idle_since, GetCurrentTimestamp(),
									   HNSW_WORKER_IDLE_MS))
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 HNSW_WORKER_POLL_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
	elog(DEBUG1, "engram_hnsw merge worker for index %u: " INT64_FORMAT " rows merged in "
		 INT64_FORMAT " rounds", indexoid, total, rounds);
	proc_exit(0);
}
