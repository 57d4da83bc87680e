/*-------------------------------------------------------------------------
 *
 * hnsw_pending.c
 *	  The pending list (fastupdate): cheap inserts, merged in batches.
 *
 * With fastupdate = on (the default), aminsert does no graph search at all.
 * It stores the element as usual (vector, heap TID, a neighbour tuple with
 * empty lists) but flagged HNSW_ELEMENT_PENDING, and appends a pending
 * entry pointing at it to the pending chain of its stripe, in one WAL
 * record.  An insert thus locks two pages briefly: its stripe's insert
 * page and its stripe's chain tail.  There are HNSW_STRIPES stripes; with
 * memory spaces a row's stripe is its space's number modulo HNSW_STRIPES,
 * otherwise the backend's, so concurrent writers mostly touch different
 * pages.
 *
 * Scans read the pending entries of the spaces they search, compute the
 * exact distance of each pending element, and merge that sorted stream
 * with the graph searches (hnsw_scan.c), so a committed row is found at
 * once, at its exact distance.
 *
 * A merge links pending elements into their graphs (hnsw_link_element(),
 * the insertion algorithm minus storing the node), clears their pending
 * flag, marks their entries merged and detaches fully merged pages from
 * the chain.  It runs per stripe under a heavyweight page lock on a
 * pseudo block number (HNSW_MERGE_LOCK(stripe)), so one backend merges a
 * stripe while inserts and scans go on and other stripes merge in other
 * backends.  Merges happen when an insert finds its stripe's share of the
 * pending list (pending_list_limit / HNSW_STRIPES) exceeded: that insert
 * merges its stripe unless another backend is merging it already (then it
 * keeps appending); different stripes merge in parallel.  With
 * engram_hnsw.merge_worker on (the default), that insert instead hands the
 * merging to a background worker of the index, started on demand and kept
 * while there is work (hnsw_worker.c): a long-lived process merges at a
 * fraction of the cost of backends that each touch the graph's pages for
 * the first time; a scan that finds a chain over its share starts that
 * worker too.  Only when a
 * stripe grows to HNSW_PENDING_HARD_FACTOR times its share does every
 * insert into it wait for the merge and do merge work itself
 * (back-pressure, so scans never face an unbounded list).  VACUUM merges everything, as does
 * SELECT engram_hnsw_merge_pending(index).
 *
 * Ordering that keeps every row findable by a concurrent scan: a merge
 * links an element before it marks its entry merged, and a scan reads the
 * pending entries before it searches the graphs.  An entry the scan saw
 * unmerged gives the row; one it saw merged was linked before the scan's
 * graph search began.  Rows reached both ways are returned once.
 *
 * Detached pages keep their "next" link (a scan may still be on them) and
 * record the next transaction id in pd_prune_xid; VACUUM hands them to the
 * free space map once no snapshot from before the detach survives, and new
 * pages are taken from there first.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/generic_xlog.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/index.h"
#include "catalog/pg_class.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "engram_hnsw.h"

/*
 * Heavyweight lock tag of a stripe's merge: a block number no page has.
 */
#define HNSW_MERGE_LOCK(stripe) ((BlockNumber) (0xFFFFFFF0 - (stripe)))

/* a stripe this many times over its share makes every writer merge it */
#define HNSW_PENDING_HARD_FACTOR 4
/* ... and with a merge worker running, only this many times over */
#define HNSW_PENDING_LAST_FACTOR 8

static int64 merge_stripe(Relation index, int stripe, bool wait, bool *busy);
static Buffer lock_chain_page(Relation index, int stripe, BlockNumber blkno,
							  BlockNumber *nblocks);
static void move_on(Relation index, HnswMetaInfo *meta, int stripe, int64 share);

/* the statement whose rows this backend is storing, and how many so far */
static LocalTransactionId statement_lxid = InvalidLocalTransactionId;
static CommandId statement_cid = InvalidCommandId;
static int64 statement_rows = 0;

/*
 * Give a stripe its first chain page if it has none.  Pages are created
 * before the meta page is locked (meta page last); if another backend
 * created the chain meanwhile, our page is detached at once and recycled
 * by a later VACUUM.
 */
static void
ensure_chain(Relation index, HnswMetaInfo *meta, int stripe)
{
	Buffer		buf;
	GenericXLogState *state;
	Page		page;
	BlockNumber blkno;

	if (meta->pending_head[stripe] != InvalidBlockNumber)
		return;
	buf = hnsw_new_buffer(index, MAIN_FORKNUM);
	blkno = BufferGetBlockNumber(buf);
	state = GenericXLogStart(index);
	page = GenericXLogRegisterBuffer(state, buf, GENERIC_XLOG_FULL_IMAGE);
	hnsw_init_page(page, HNSW_PAGE_PENDING, RelationGetRelid(index));
	HnswPageGetOpaque(page)->stripe = stripe;
	GenericXLogFinish(state);
	UnlockReleaseBuffer(buf);

	if (!hnsw_init_pending_chain(index, stripe, blkno))
		hnsw_detach_page(index, blkno);
	hnsw_read_meta(index, meta);
}

/*
 * Mark a pending page as detached from its chain: it stays readable (scans
 * that were on the chain may still follow its "next" link) until VACUUM
 * finds every snapshot older than the detach gone and recycles it.
 */
void
hnsw_detach_page(Relation index, BlockNumber blkno)
{
	Buffer		buf = ReadBuffer(index, blkno);
	GenericXLogState *state;
	Page		page;

	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	hnsw_check_page(index, BufferGetPage(buf), blkno);
	state = GenericXLogStart(index);
	page = GenericXLogRegisterBuffer(state, buf, 0);
	HnswPageGetOpaque(page)->flags |= HNSW_PAGE_DETACHED;
	((PageHeader) page)->pd_prune_xid = ReadNextTransactionId();
	GenericXLogFinish(state);
	UnlockReleaseBuffer(buf);
}

/*
 * A stripe's share of the pending list, in entries: pending_list_limit
 * divided among the stripes, over the element size.  A stripe with more
 * unmerged entries than that is over its share and gets merged; inserts
 * (which estimate the count from the chain's length), scans and the merge
 * worker (which count exactly) all test it this way.
 */
static int64
stripe_share(Relation index, HnswMetaInfo *meta)
{
	/* a row's header and vector, in every format (format 3 adds a code) */
	return hnsw_pending_limit_bytes(index) / meta->nstripes /
		(int64) HNSW_ELEMENT_TUPLE_SIZE(meta->dims);
}

/*
 * The merged entries still on stripe's chain.  A merge works along the
 * chain from its head and detaches each page it has fully merged (all but
 * the tail page), so they are all on the head page.
 */
static int
head_merged(Relation index, HnswMetaInfo *meta, int stripe)
{
	BlockNumber nblocks = hnsw_nblocks_seen(index);
	Buffer		buf;
	Page		page;
	int			merged = 0;

	if (meta->pending_head[stripe] == InvalidBlockNumber)
		return 0;
	buf = lock_chain_page(index, stripe, meta->pending_head[stripe], &nblocks);
	page = BufferGetPage(buf);
	for (OffsetNumber off = FirstOffsetNumber; off <= PageGetMaxOffsetNumber(page); off++)
		if (hnsw_page_pending(index, page, meta->pending_head[stripe], off)->flags &
			HNSW_PENDING_MERGED)
			merged++;
	UnlockReleaseBuffer(buf);
	return merged;
}

/*
 * aminsert with fastupdate: store the row as a pending element.  Merges
 * the stripe when its share of the pending list is over the limit (unless
 * another backend is merging it already).
 */
void
hnsw_pending_insert(Relation index, HnswMetaInfo *meta, const float *vec,
					ItemPointer heaptid, bool has_space, uint32 space_no,
					ItemPointer dirtid)
{
	HnswPageGraph pg;
	int			tailcount = 0;
	int64		entries;
	int64		share;

	/* rows this statement has stored so far, in any index (for move_on()) */
	if (MyProc->lxid == statement_lxid && GetCurrentCommandId(false) == statement_cid)
		statement_rows++;
	else
	{
		statement_lxid = MyProc->lxid;
		statement_cid = GetCurrentCommandId(false);
		statement_rows = 1;
	}

	hnsw_page_graph_init(&pg, index, meta);
	pg.has_space = has_space;
	pg.space_no = space_no;
	if (has_space)
		pg.space_tid = *dirtid;
	pg.stripe = hnsw_stripe_of(meta, space_no, has_space);

	ensure_chain(index, meta, pg.stripe);
	hnsw_store_pending(&pg, vec, hnsw_random_level(meta->m, pg.graph.max_level), heaptid,
					   &tailcount);

	/*
	 * The stripe's unmerged entries: all entries on its pages (known
	 * without reading them) but the merged ones, which only its head page
	 * holds, read only when it matters.
	 */
	entries = ((int64) Max(meta->pending_pages[pg.stripe], 1) - 1) * HNSW_PENDING_PER_PAGE +
		tailcount;
	share = stripe_share(index, meta);
	if (entries <= share)
		return;
	entries -= head_merged(index, meta, pg.stripe);
	if (entries <= share)
		return;
	if (!has_space)
		move_on(index, meta, pg.stripe, share);

	if (entries > HNSW_PENDING_HARD_FACTOR * share)
	{
		/*
		 * Far over: merges cannot keep up.  With a merge worker running,
		 * this writer pauses instead (hnsw_merge_worker_throttle()): the
		 * worker lacks CPU, not help, and merges each row at a fraction of
		 * what this backend would pay.  Without one, or far beyond, the
		 * writer helps: it waits for the stripe's merge lock and merges.
		 */
		if (entries <= HNSW_PENDING_LAST_FACTOR * share &&
			hnsw_merge_worker_throttle(index))
			return;
		hnsw_merge_stripe(index, pg.stripe, true);
		return;
	}

	/*
	 * Over the limit: leave the merge to the index's merge worker if it has
	 * one or can start one (hnsw_worker.c); otherwise merge this stripe,
	 * unless another backend is merging it already (then keep appending).
	 * Stripes merge in parallel: merging is what bounds sustained write
	 * throughput, so it must use every core.
	 */
	if (hnsw_merge_worker_take_over(index))
		return;
	hnsw_merge_stripe(index, pg.stripe, false);
}

/* does the entry belong to one of the spaces (all with nspace_nos < 0)? */
static inline bool
wanted_space(uint32 space_no, const uint32 *space_nos, int nspace_nos)
{
	if (nspace_nos < 0)
		return true;
	for (int i = 0; i < nspace_nos; i++)
		if (space_nos[i] == space_no)
			return true;
	return false;
}

/*
 * Pin and share-lock a page of stripe's pending chain, after checking that
 * the block exists (*nblocks: the index size known so far, refreshed when
 * needed) and that it is a page of that chain.
 */
static Buffer
lock_chain_page(Relation index, int stripe, BlockNumber blkno, BlockNumber *nblocks)
{
	Buffer		buf;
	Page		page;
	HnswPageOpaque opaque;

	if (blkno == HNSW_METAPAGE_BLKNO || blkno >= *nblocks)
	{
		*nblocks = RelationGetNumberOfBlocks(index);
		if (blkno == HNSW_METAPAGE_BLKNO || blkno >= *nblocks)
			hnsw_corrupt(index, blkno,
						 psprintf("pending chain %d leads to block %u, but the index has %u blocks",
								  stripe, blkno, *nblocks));
	}
	buf = ReadBuffer(index, blkno);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	hnsw_check_page(index, page, blkno);
	opaque = HnswPageGetOpaque(page);
	if (!(opaque->flags & HNSW_PAGE_PENDING) || opaque->stripe != stripe)
		hnsw_corrupt(index, blkno,
					 psprintf("pending chain %d reaches a page that is not in it",
							  stripe));
	return buf;
}

/* called for each unmerged entry of a chain (see walk_chain) */
typedef void (*HnswPendingVisit) (HnswPendingTuple ptup, void *arg);

/*
 * Visit the unmerged entries of stripe's chain, one page at a time (visit
 * may be NULL).  Returns their number.
 */
static int64
walk_chain(Relation index, HnswMetaInfo *meta, int stripe, HnswPendingVisit visit,
		   void *arg)
{
	BlockNumber nblocks = hnsw_nblocks_seen(index);
	BlockNumber blkno = meta->pending_head[stripe];
	int64		hops = 0;
	int64		unmerged = 0;

	while (blkno != InvalidBlockNumber)
	{
		Buffer		buf = lock_chain_page(index, stripe, blkno, &nblocks);
		Page		page = BufferGetPage(buf);

		for (OffsetNumber off = FirstOffsetNumber; off <= PageGetMaxOffsetNumber(page); off++)
		{
			HnswPendingTuple ptup = hnsw_page_pending(index, page, blkno, off);

			if (ptup->flags & HNSW_PENDING_MERGED)
				continue;
			unmerged++;
			if (visit)
				visit(ptup, arg);
		}
		blkno = HnswPageGetOpaque(page)->next;
		UnlockReleaseBuffer(buf);
		if (++hops > (int64) nblocks)
			hnsw_corrupt(index, blkno, psprintf("pending chain %d has a cycle", stripe));
		CHECK_FOR_INTERRUPTS();
	}
	return unmerged;
}

/*
 * A writer's stripe (rows without memory spaces) went over its share, in a
 * statement that has stored at least HNSW_MOVE_MIN_ROWS rows (a multi-row
 * INSERT, a COPY), and at most one other stripe holds more than half its
 * share: send this backend's next rows to the next stripe holding at most
 * half its share.  A single writer of large statements would otherwise feed
 * one stripe, and a stripe is merged by one merger at a time; spread over
 * stripes, its rows keep the merge worker and its helper (hnsw_worker.c)
 * busy at once.  Where more stripes are that full, other writers feed them
 * and the mergers have work enough; and writers of single rows are never
 * alone for long (8 of them moving freely shared pages and ran at 0.9x).  A
 * writer that stays pauses or merges when its stripe is far over (the
 * caller), and looks again after HNSW_MOVE_BACKOFF more rows, so a long
 * list costs few chain walks.  A space's rows stay in their space's stripe,
 * where its scans look for them.
 */
#define HNSW_MOVE_MIN_ROWS 16
#define HNSW_MOVE_BACKOFF 16

static void
move_on(Relation index, HnswMetaInfo *meta, int stripe, int64 share)
{
	static int	backoff = 0;
	int			busy = 0;
	int			next = -1;

	if (statement_rows < HNSW_MOVE_MIN_ROWS)
		return;
	if (backoff > 0)
	{
		backoff--;
		return;
	}
	for (int i = 1; i < meta->nstripes && busy <= 1; i++)
	{
		int			other = (stripe + i) % meta->nstripes;

		/* a chain of more than two pages is well over half a share */
		if (meta->pending_head[other] != InvalidBlockNumber &&
			(meta->pending_pages[other] > 2 ||
			 walk_chain(index, meta, other, NULL, NULL) > share / 2))
			busy++;
		else if (next < 0)
			next = other;
	}
	if (busy <= 1 && next >= 0)
		hnsw_stripe_move(meta, next);
	else
		backoff = HNSW_MOVE_BACKOFF;
}

typedef struct CollectState
{
	const uint32 *space_nos;
	int			nspace_nos;
	HnswPendingItem *items;
	int			n;
	int			max;
} CollectState;

static void
collect_visit(HnswPendingTuple ptup, void *arg)
{
	CollectState *cs = (CollectState *) arg;

	if (!wanted_space(ptup->space_no, cs->space_nos, cs->nspace_nos))
		return;
	if (cs->n == cs->max)
	{
		cs->max *= 2;
		cs->items = repalloc_huge(cs->items, sizeof(HnswPendingItem) * cs->max);
	}
	cs->items[cs->n].node = HnswNodeFromTid(&ptup->elem);
	cs->items[cs->n].space_no = ptup->space_no;
	cs->items[cs->n].dirtid = ptup->dirtid;
	cs->n++;
}

/*
 * The unmerged pending entries of the given spaces (every space with
 * nspace_nos < 0), read chain by chain.  Returns their count; *out is
 * palloc'd.
 *
 * A chain found over its share (left so by a crash, or with no insert
 * since) gets the index's merge worker started, so that a list nobody
 * writes to does not stay long for every scan to read exactly.  Scans do
 * not merge themselves.
 */
int
hnsw_pending_collect(Relation index, HnswMetaInfo *meta,
					 const uint32 *space_nos, int nspace_nos, HnswPendingItem **out)
{
	CollectState cs;
	int64		share = stripe_share(index, meta);
	bool		over = false;

	cs.space_nos = space_nos;
	cs.nspace_nos = nspace_nos;
	cs.n = 0;
	cs.max = 64;
	cs.items = palloc(sizeof(HnswPendingItem) * cs.max);
	for (int stripe = 0; stripe < meta->nstripes; stripe++)
	{
		bool		useful = (nspace_nos < 0 || meta->nspacekeys == 0);

		/* with spaces, a space's entries are all in its stripe */
		for (int i = 0; !useful && i < nspace_nos; i++)
			useful = (hnsw_stripe_of(meta, space_nos[i], true) == stripe);
		if (useful &&
			walk_chain(index, meta, stripe, collect_visit, &cs) > share)
			over = true;
	}
	if (over)
		(void) hnsw_merge_worker_take_over(index);
	*out = cs.items;
	return cs.n;
}

/*
 * Merge the stripes whose unmerged entries are over their share of the
 * pending list, the same trigger as an insert's (a stripe another backend
 * is merging is left to it).  The merge worker's round (hnsw_worker.c):
 * worker part of nparts starts at its own fraction of the stripes, so that
 * two workers mostly merge different ones.  After each stripe it merged,
 * after_stripe (if given) learns how many of the stripes found over their
 * share at the start of the round are still to come.  Returns the number
 * of rows linked.
 */
int64
hnsw_merge_over_share(Relation index, int part, int nparts,
					  void (*after_stripe) (void *arg, int waiting), void *arg)
{
	HnswMetaInfo meta;
	int64		merged = 0;
	int64		share;
	int			first;
	bool		over[HNSW_STRIPES];
	int			waiting = 0;

	hnsw_read_meta(index, &meta);
	share = stripe_share(index, &meta);
	first = (int) ((int64) part * meta.nstripes / Max(nparts, 1));
	Assert(meta.nstripes <= HNSW_STRIPES);
	for (int stripe = 0; stripe < meta.nstripes; stripe++)
	{
		over[stripe] = (meta.pending_head[stripe] != InvalidBlockNumber &&
						walk_chain(index, &meta, stripe, NULL, NULL) > share);
		waiting += over[stripe] ? 1 : 0;
	}
	for (int i = 0; i < meta.nstripes && waiting > 0; i++)
	{
		int			stripe = (first + i) % meta.nstripes;
		int64		n;

		if (!over[stripe])
			continue;
		waiting--;
		/* another merger may have taken it meanwhile */
		hnsw_read_meta(index, &meta);
		if (meta.pending_head[stripe] == InvalidBlockNumber ||
			walk_chain(index, &meta, stripe, NULL, NULL) <= share)
			continue;
		n = merge_stripe(index, stripe, false, NULL);
		merged += n;
		if (n > 0 && after_stripe != NULL)
			after_stripe(arg, waiting);
	}
	return merged;
}

/*
 * Read a pending element for merging: its vector and level, if it still
 * needs linking (pending and not deleted).
 */
static bool
read_pending_element(Relation index, HnswMetaInfo *meta, ItemPointer tid, float *vec,
					 int *level, uint32 *space_no)
{
	BlockNumber blkno = ItemPointerGetBlockNumber(tid);
	Buffer		buf;
	Page		page;
	HnswElementTuple etup;
	ItemPointerData first;
	bool		todo;

	if (blkno == HNSW_METAPAGE_BLKNO || !hnsw_block_exists(index, blkno))
		hnsw_corrupt(index, blkno, "a pending entry points past the end of the index");
	buf = ReadBuffer(index, blkno);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	hnsw_check_page(index, page, blkno);
	etup = hnsw_page_element(index, page, blkno, ItemPointerGetOffsetNumber(tid), meta);
	todo = (etup->flags & HNSW_ELEMENT_PENDING) && !(etup->flags & HNSW_ELEMENT_DELETED);
	if (meta->version < 3)
		memcpy(vec, etup->vec, sizeof(float) * meta->dims);
	*level = etup->level;
	*space_no = etup->space_no;
	first = *HnswElementVectorTid(etup);
	UnlockReleaseBuffer(buf);
	if (meta->version >= 3 && todo)
		hnsw_read_vector(index, &first, meta->dims, InvalidBlockNumber, vec);
	/* inserts store finite vectors only: anything else is damage */
	if (todo && !hnsw_all_finite(vec, meta->dims))
		hnsw_corrupt(index, blkno,
					 psprintf("pending element %u has a vector that is not finite",
							  ItemPointerGetOffsetNumber(tid)));
	return todo;
}

/* the element is in its graph now (or deleted): clear its pending flag */
static void
clear_pending_flag(Relation index, HnswMetaInfo *meta, ItemPointer tid)
{
	BlockNumber blkno = ItemPointerGetBlockNumber(tid);
	Buffer		buf = ReadBuffer(index, blkno);
	Page		page;
	HnswElementTuple etup;

	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	page = BufferGetPage(buf);
	hnsw_check_page(index, page, blkno);
	etup = hnsw_page_element(index, page, blkno, ItemPointerGetOffsetNumber(tid), meta);
	if (etup->flags & HNSW_ELEMENT_PENDING)
	{
		uint8		flags = etup->flags & ~HNSW_ELEMENT_PENDING;

		/* one byte: a generic record of just that fragment */
		hnsw_write_fragment(index, buf, (char *) &etup->flags - (char *) page,
							&flags, sizeof(flags));
	}
	UnlockReleaseBuffer(buf);
}

/*
 * Mark the entries at offs[] merged; if every entry of the page is merged
 * and it is not the chain's last page, returns its successor (the caller
 * detaches the page), else InvalidBlockNumber.
 */
static BlockNumber
mark_merged(Relation index, BlockNumber blkno, int stripe, OffsetNumber *offs, int noffs)
{
	Buffer		buf = ReadBuffer(index, blkno);
	GenericXLogState *state;
	Page		page;
	HnswPageOpaque opaque;
	bool		all = true;
	BlockNumber next;

	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	hnsw_check_page(index, BufferGetPage(buf), blkno);
	state = GenericXLogStart(index);
	page = GenericXLogRegisterBuffer(state, buf, 0);
	opaque = HnswPageGetOpaque(page);
	if (opaque->flags != HNSW_PAGE_PENDING || opaque->stripe != stripe)
		hnsw_corrupt(index, blkno, "a pending page changed kind during a merge");
	for (int i = 0; i < noffs; i++)
		hnsw_page_pending(index, page, blkno, offs[i])->flags |= HNSW_PENDING_MERGED;
	for (OffsetNumber off = FirstOffsetNumber; off <= PageGetMaxOffsetNumber(page); off++)
		if (!(hnsw_page_pending(index, page, blkno, off)->flags & HNSW_PENDING_MERGED))
			all = false;
	next = opaque->next;
	if (noffs > 0)
		GenericXLogFinish(state);
	else
		GenericXLogAbort(state);
	UnlockReleaseBuffer(buf);
	return all ? next : InvalidBlockNumber;
}

/*
 * Merge one stripe's pending elements into their graphs.  With wait, waits
 * for a merge of the stripe already running elsewhere (and then merges
 * what is left); without, returns 0 at once in that case, and sets *busy
 * if given.  Returns the number of elements linked.
 */
static int64
merge_stripe(Relation index, int stripe, bool wait, bool *busy)
{
	MemoryContext cxt;
	MemoryContext oldcxt;
	HnswMetaInfo meta;
	BlockNumber blkno;
	int64		merged = 0;
	int64		pages = 0;
	int64		maxpages;
	float	   *vec;
	HnswPageGraph pg;
	MemoryContext itemcxt;
	MemoryContext oldcxt2;

	if (wait)
		LockPage(index, HNSW_MERGE_LOCK(stripe), ExclusiveLock);
	else if (!ConditionalLockPage(index, HNSW_MERGE_LOCK(stripe), ExclusiveLock))
	{
		if (busy)
			*busy = true;
		return 0;
	}

	cxt = AllocSetContextCreate(CurrentMemoryContext, "engram_hnsw merge",
								ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(cxt);
	hnsw_read_meta(index, &meta);
	vec = palloc(sizeof(float) * Max(meta.dims, 1));
	blkno = meta.pending_head[stripe];

	/* one graph for the batch: vectors read once stay cached */
	hnsw_page_graph_init(&pg, index, &meta);
	hnsw_page_graph_keep_vectors(&pg);
	itemcxt = AllocSetContextCreate(cxt, "engram_hnsw merge item", ALLOCSET_DEFAULT_SIZES);
	maxpages = meta.pending_pages[stripe];	/* meta is refreshed as we go */

	/* pages added while we merge wait for the next merge */
	while (blkno != InvalidBlockNumber && pages++ <= maxpages)
	{
		Buffer		buf;
		Page		page;
		HnswPageOpaque opaque;
		HnswPendingTupleData *items;
		OffsetNumber *offs;
		int			nitems = 0;
		BlockNumber next;

		CHECK_FOR_INTERRUPTS();
		if (blkno == HNSW_METAPAGE_BLKNO || !hnsw_block_exists(index, blkno))
			hnsw_corrupt(index, blkno,
						 psprintf("pending chain %d leads past the end of the index", stripe));

		/* copy the page's unmerged entries */
		buf = ReadBuffer(index, blkno);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		hnsw_check_page(index, page, blkno);
		opaque = HnswPageGetOpaque(page);
		if (opaque->flags != HNSW_PAGE_PENDING || opaque->stripe != stripe)
			hnsw_corrupt(index, blkno,
						 psprintf("pending chain %d reaches a page that is not in it", stripe));
		items = palloc(sizeof(HnswPendingTupleData) * Max(PageGetMaxOffsetNumber(page), 1));
		offs = palloc(sizeof(OffsetNumber) * Max(PageGetMaxOffsetNumber(page), 1));
		for (OffsetNumber off = FirstOffsetNumber; off <= PageGetMaxOffsetNumber(page); off++)
		{
			HnswPendingTuple ptup = hnsw_page_pending(index, page, blkno, off);

			if (ptup->flags & HNSW_PENDING_MERGED)
				continue;
			items[nitems] = *ptup;
			offs[nitems] = off;
			nitems++;
		}
		UnlockReleaseBuffer(buf);

		/* link each element into its graph */
		for (int i = 0; i < nitems; i++)
		{
			int			level;
			uint32		space_no;

			CHECK_FOR_INTERRUPTS();
			if (read_pending_element(index, &meta, &items[i].elem, vec, &level, &space_no))
			{
				if (meta.nspacekeys > 0)
				{
					if (!ItemPointerIsValid(&items[i].dirtid) || space_no != items[i].space_no)
						hnsw_corrupt(index, blkno,
									 "a pending entry does not match its element's space");
					pg.has_space = true;
					pg.space_no = space_no;
					pg.space_tid = items[i].dirtid;
				}
				oldcxt2 = MemoryContextSwitchTo(itemcxt);
				hnsw_link_element(&pg.graph, HnswNodeFromTid(&items[i].elem), vec, level);
				MemoryContextSwitchTo(oldcxt2);
				MemoryContextReset(itemcxt);
				hnsw_page_graph_reset(&pg);
				merged++;
			}
			clear_pending_flag(index, &meta, &items[i].elem);
		}

		next = mark_merged(index, blkno, stripe, offs, nitems);
		if (next != InvalidBlockNumber)
		{
			/* fully merged and not the last page: it leaves the chain */
			if (hnsw_set_pending_head(index, stripe, blkno, next))
				hnsw_detach_page(index, blkno);
			blkno = next;
		}
		else
		{
			/* keep going along the chain (a page may still take entries) */
			buf = ReadBuffer(index, blkno);
			LockBuffer(buf, BUFFER_LOCK_SHARE);
			hnsw_check_page(index, BufferGetPage(buf), blkno);
			blkno = HnswPageGetOpaque(BufferGetPage(buf))->next;
			UnlockReleaseBuffer(buf);
		}
		pfree(items);
		pfree(offs);
	}

	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(cxt);
	UnlockPage(index, HNSW_MERGE_LOCK(stripe), ExclusiveLock);
	return merged;
}

int64
hnsw_merge_stripe(Relation index, int stripe, bool wait)
{
	return merge_stripe(index, stripe, wait, NULL);
}

/*
 * Merge every stripe; see hnsw_merge_stripe().  With wait, stripes that
 * another backend is merging are left for a second pass, so that backends
 * merging at once (VACUUM, engram_hnsw_merge_pending() in several
 * sessions) take different stripes instead of queueing on the same one.
 */
int64
hnsw_merge_pending(Relation index, bool wait)
{
	HnswMetaInfo meta;
	int64		merged = 0;
	bool		busy[HNSW_STRIPES] = {false};

	hnsw_read_meta(index, &meta);
	for (int stripe = 0; stripe < meta.nstripes; stripe++)
		if (meta.pending_head[stripe] != InvalidBlockNumber)
			merged += merge_stripe(index, stripe, false, &busy[stripe]);
	if (wait)
		for (int stripe = 0; stripe < meta.nstripes; stripe++)
			if (busy[stripe])
				merged += hnsw_merge_stripe(index, stripe, true);
	return merged;
}

/*
 * engram_hnsw_merge_pending(regclass) returns bigint: merge the whole
 * pending list now; returns the number of rows linked into the graph.
 */
PG_FUNCTION_INFO_V1(engram_hnsw_merge_pending);
Datum
engram_hnsw_merge_pending(PG_FUNCTION_ARGS)
{
	Oid			indexoid = PG_GETARG_OID(0);
	Relation	heap;
	Relation	index;
	int64		merged;

	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("recovery is in progress"),
				 errhint("Pending lists cannot be merged during recovery.")));
	index = hnsw_open_maintenance(indexoid, RowExclusiveLock, &heap);
	merged = hnsw_merge_pending(index, true);
	hnsw_close_maintenance(index, heap, RowExclusiveLock);
	PG_RETURN_INT64(merged);
}
