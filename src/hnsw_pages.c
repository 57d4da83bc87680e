/*-------------------------------------------------------------------------
 *
 * hnsw_pages.c
 *	  Page helpers and the buffer-managed implementation of HnswGraphOps.
 *
 * Locking: every function here holds at most one buffer content lock at a
 * time, except hnsw_place_element(), which may hold the current insert page
 * and one or two pages it has just added to the relation (not yet reachable
 * by anyone else).  The meta page is only ever locked alone.  See
 * src/README.md.
 *
 * Every tuple read here is checked against the page and the index's
 * parameters first; anything that does not fit raises ERROR with SQLSTATE
 * XX001 (page) or XX002 (tuple), naming the block.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/generic_xlog.h"
#include "access/rmgr.h"
#include "access/transam.h"
#include "access/xloginsert.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/buf_internals.h"
#include "storage/bufmgr.h"
#include "storage/freespace.h"
#include "storage/indexfsm.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "utils/snapmgr.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "engram_hnsw.h"

/* ----------------------------------------------------------------
 * Pages
 * ----------------------------------------------------------------
 */
void
hnsw_init_page(Page page, uint16 flags, Oid indexoid)
{
	HnswPageOpaque opaque;

	PageInit(page, BLCKSZ, sizeof(HnswPageOpaqueData));
	opaque = HnswPageGetOpaque(page);
	opaque->next = InvalidBlockNumber;
	opaque->indexoid = indexoid;
	opaque->flags = flags;
	opaque->stripe = 0;
	opaque->pad = 0;
	opaque->page_id = HNSW_PAGE_ID;
}

/*
 * Pin and lock one block of a pass over the whole index (vacuum, check,
 * NULL-query scan).  A page never initialised (added to the relation by
 * a backend that crashed before using it) has nothing in it: NULL is
 * returned and the buffer released.  Anything else must be a valid page.
 */
Page
hnsw_pass_page(Relation index, BlockNumber blkno, int mode,
			   BufferAccessStrategy strategy, Buffer *buf)
{
	Page		page;

	*buf = ReadBufferExtended(index, MAIN_FORKNUM, blkno, RBM_NORMAL, strategy);
	LockBuffer(*buf, mode);
	page = BufferGetPage(*buf);
	if (PageIsNew(page))
	{
		UnlockReleaseBuffer(*buf);
		*buf = InvalidBuffer;
		return NULL;
	}
	hnsw_check_page(index, page, blkno);
	return page;
}

void
hnsw_corrupt(Relation index, BlockNumber blkno, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INDEX_CORRUPTED),
			 errmsg("engram_hnsw index \"%s\" is corrupted at block %u",
					RelationGetRelationName(index), blkno),
			 errdetail_internal("%s", detail)));
}

/*
 * Check that a page is an initialised engram_hnsw page.  Called on every page
 * read through a TID; sequential passes skip new (all-zero) pages before
 * calling it, since a page being added to the relation looks like that.
 */
void
hnsw_check_page(Relation index, Page page, BlockNumber blkno)
{
	PageHeader	ph = (PageHeader) page;
	HnswPageOpaque opaque;

	if (PageIsNew(page))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("engram_hnsw index \"%s\" has an uninitialised page at block %u",
						RelationGetRelationName(index), blkno)));
	if (ph->pd_special != BLCKSZ - MAXALIGN(sizeof(HnswPageOpaqueData)) ||
		ph->pd_lower < SizeOfPageHeaderData ||
		ph->pd_lower > ph->pd_upper ||
		ph->pd_upper > ph->pd_special)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("engram_hnsw index \"%s\" has a corrupted page header at block %u",
						RelationGetRelationName(index), blkno)));
	opaque = HnswPageGetOpaque(page);
	if (opaque->page_id == HNSW_PAGE_ID && opaque->indexoid != RelationGetRelid(index))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("engram_hnsw index \"%s\" has a page of another index at block %u",
						RelationGetRelationName(index), blkno)));
	if (opaque->page_id != HNSW_PAGE_ID ||
		(blkno == HNSW_METAPAGE_BLKNO) != (opaque->flags == HNSW_PAGE_META) ||
		(blkno != HNSW_METAPAGE_BLKNO && opaque->flags != HNSW_PAGE_DATA &&
		 opaque->flags != HNSW_PAGE_DIR && opaque->flags != HNSW_PAGE_PENDING &&
		 opaque->flags != (HNSW_PAGE_PENDING | HNSW_PAGE_DETACHED)) ||
		((opaque->flags & HNSW_PAGE_PENDING) && opaque->stripe >= HNSW_STRIPES))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("engram_hnsw index \"%s\" has a page of the wrong kind at block %u",
						RelationGetRelationName(index), blkno)));
}

/* fetch the item at off, checking that it lies within the page */
static char *
page_item(Relation index, Page page, BlockNumber blkno, OffsetNumber off, Size *len)
{
	ItemId		iid;
	PageHeader	ph = (PageHeader) page;

	if (off < FirstOffsetNumber || off > PageGetMaxOffsetNumber(page))
		hnsw_corrupt(index, blkno, psprintf("item %u does not exist", off));
	iid = PageGetItemId(page, off);
	if (!ItemIdIsNormal(iid) ||
		ItemIdGetOffset(iid) < ph->pd_upper ||
		ItemIdGetOffset(iid) != MAXALIGN(ItemIdGetOffset(iid)) ||
		ItemIdGetOffset(iid) + ItemIdGetLength(iid) > ph->pd_special ||
		ItemIdGetLength(iid) < 4)
		hnsw_corrupt(index, blkno, psprintf("item %u has an invalid line pointer", off));
	*len = ItemIdGetLength(iid);
	return (char *) PageGetItem(page, iid);
}

/*
 * The type byte of a page's item, for passes over every item of a page;
 * 0 for an unused or dead line pointer.  The line pointer is checked like
 * every other before anything behind it is read.
 */
uint8
hnsw_page_item_type(Relation index, Page page, BlockNumber blkno, OffsetNumber off)
{
	Size		len;

	if (!ItemIdIsNormal(PageGetItemId(page, off)))
		return 0;
	return *(uint8 *) page_item(index, page, blkno, off, &len);
}

HnswElementTuple
hnsw_page_element(Relation index, Page page, BlockNumber blkno, OffsetNumber off, int dims)
{
	Size		len;
	HnswElementTuple etup = (HnswElementTuple) page_item(index, page, blkno, off, &len);

	if (etup->type != HNSW_TUPLE_ELEMENT)
		hnsw_corrupt(index, blkno, psprintf("item %u is not an element", off));
	if (len != HNSW_ELEMENT_TUPLE_SIZE(dims) ||
		etup->level > HNSW_MAX_LEVEL ||
		etup->ntids > HNSW_HEAPTIDS ||
		!ItemPointerIsValid(&etup->neighbortid))
		hnsw_corrupt(index, blkno, psprintf("element %u has an invalid header", off));
	return etup;
}

HnswNeighborTuple
hnsw_page_neighbors(Relation index, Page page, BlockNumber blkno, OffsetNumber off,
					int m, int level)
{
	Size		len;
	HnswNeighborTuple ntup = (HnswNeighborTuple) page_item(index, page, blkno, off, &len);

	if (ntup->type != HNSW_TUPLE_NEIGHBORS)
		hnsw_corrupt(index, blkno, psprintf("item %u is not a neighbour list", off));
	if (ntup->level != level ||
		ntup->nslots != HnswTotalSlots(m, level) ||
		len != HNSW_NEIGHBOR_TUPLE_SIZE(m, level))
		hnsw_corrupt(index, blkno, psprintf("neighbour list %u does not match its element", off));
	return ntup;
}

/* the highest level whose neighbour tuple still fits on one page */
int
hnsw_max_level(int m)
{
	Size		avail = HNSW_PAGE_FREE_SPACE - sizeof(ItemIdData) -
		MAXALIGN(offsetof(HnswNeighborTupleData, tids)) - MAXIMUM_ALIGNOF;
	int			slots = avail / sizeof(ItemPointerData);
	int			level = (slots - 2 * m) / m;

	return Min(level, HNSW_MAX_LEVEL);
}

/* ----------------------------------------------------------------
 * Meta page
 * ----------------------------------------------------------------
 */
void
hnsw_fill_meta(Page page, Oid indexoid, int dims, int m, int efc, int metric,
			   int nspacekeys)
{
	HnswMetaPage meta;

	hnsw_init_page(page, HNSW_PAGE_META, indexoid);
	meta = HnswPageGetMeta(page);
	memset(meta, 0, sizeof(HnswMetaPageData));
	meta->magic = HNSW_MAGIC;
	meta->version = HNSW_FORMAT_VERSION;
	meta->dims = dims;
	meta->m = m;
	meta->ef_construction = efc;
	meta->metric = metric;
	meta->nspacekeys = nspacekeys;
	meta->dir_head = InvalidBlockNumber;
	meta->dir_tail = InvalidBlockNumber;
	meta->dir_count = 0;
	meta->next_space_no = 1;
	meta->entry_level = -1;
	ItemPointerSetInvalid(&meta->entry);
	meta->insert_page = InvalidBlockNumber;
	meta->inserted = 0;
	meta->nstripes = HNSW_STRIPES;
	for (int i = 0; i < HNSW_STRIPES; i++)
	{
		meta->pending_pages[i] = 0;
		meta->stripe_insert[i] = InvalidBlockNumber;
		meta->pending_head[i] = InvalidBlockNumber;
		meta->pending_tail[i] = InvalidBlockNumber;
	}
	((PageHeader) page)->pd_lower =
		((char *) meta + sizeof(HnswMetaPageData)) - (char *) page;
}

static HnswMetaPage
page_meta(Relation index, Page page)
{
	HnswMetaPage meta;

	hnsw_check_page(index, page, HNSW_METAPAGE_BLKNO);
	meta = HnswPageGetMeta(page);
	if (meta->magic != HNSW_MAGIC)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("engram_hnsw index \"%s\" has a bad meta page (block 0)",
						RelationGetRelationName(index))));
	if (meta->version != 1 && meta->version != HNSW_FORMAT_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("engram_hnsw index \"%s\" has page format %u, this build reads 1 to %u",
						RelationGetRelationName(index), meta->version, HNSW_FORMAT_VERSION),
				 errhint("REINDEX the index.")));
	if (meta->version >= 2 && meta->nstripes != HNSW_STRIPES)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("engram_hnsw index \"%s\" has a bad meta page (block 0)",
						RelationGetRelationName(index))));
	if (meta->m < HNSW_MIN_M || meta->m > HNSW_MAX_M ||
		meta->ef_construction < HNSW_MIN_EF_CONSTRUCTION ||
		meta->ef_construction > HNSW_MAX_EF_CONSTRUCTION ||
		meta->dims > HNSW_MAX_DIMS ||
		meta->entry_level < -1 || meta->entry_level > HNSW_MAX_LEVEL ||
		meta->nspacekeys > 1 ||
		(meta->metric != HNSW_METRIC_L2 && meta->metric != HNSW_METRIC_COSINE &&
		 meta->metric != HNSW_METRIC_IP))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("engram_hnsw index \"%s\" has a bad meta page (block 0)",
						RelationGetRelationName(index))));
	return meta;
}

static void
meta_to_info(HnswMetaPage meta, HnswMetaInfo *info)
{
	info->dims = meta->dims;
	info->m = meta->m;
	info->ef_construction = meta->ef_construction;
	info->metric = meta->metric;
	info->entry_level = meta->entry_level;
	info->vacuum_gen = meta->vacuum_gen;
	info->entry = meta->entry;
	info->insert_page = meta->insert_page;
	info->nspacekeys = meta->nspacekeys;
	info->dir_head = meta->dir_head;
	info->dir_count = meta->dir_count;
	info->version = meta->version;
	if (meta->version == 1)
	{
		/* format 1: one insert page, no pending list (fastupdate is off) */
		info->nstripes = 1;
		info->pending_pages[0] = 0;
		info->stripe_insert[0] = meta->insert_page;
		info->pending_head[0] = InvalidBlockNumber;
		info->pending_tail[0] = InvalidBlockNumber;
		return;
	}
	info->nstripes = meta->nstripes;
	memcpy(info->pending_pages, meta->pending_pages, sizeof(meta->pending_pages));
	memcpy(info->stripe_insert, meta->stripe_insert, sizeof(meta->stripe_insert));
	memcpy(info->pending_head, meta->pending_head, sizeof(meta->pending_head));
	memcpy(info->pending_tail, meta->pending_tail, sizeof(meta->pending_tail));
}

/*
 * Added to the backend's own stripe for rows without spaces: a writer whose
 * stripe went over its share of the pending list moves on to another
 * (hnsw_stripe_move(), called from hnsw_pending_insert()).
 */
static int	stripe_shift = 0;

static inline int
own_stripe(HnswMetaInfo *meta)
{
	return (MyBackendId > 0 ? MyBackendId : 0) % meta->nstripes;
}

/*
 * The stripe of an insertion: its space's (spaces spread over the stripes,
 * so writers of different spaces use different insert pages and pending
 * chains), or, without spaces, the backend's.
 */
int
hnsw_stripe_of(HnswMetaInfo *meta, uint32 space_no, bool has_space)
{
	if (meta->nstripes <= 1)
		return 0;
	if (has_space)
		return space_no % meta->nstripes;
	return (own_stripe(meta) + stripe_shift) % meta->nstripes;
}

/* make stripe this backend's stripe for its next rows without spaces */
void
hnsw_stripe_move(HnswMetaInfo *meta, int stripe)
{
	if (meta->nstripes <= 1)
		return;
	stripe_shift = (stripe - own_stripe(meta) + (int) meta->nstripes) % meta->nstripes;
}

void
hnsw_read_meta(Relation index, HnswMetaInfo *info)
{
	Buffer		buf = ReadBuffer(index, HNSW_METAPAGE_BLKNO);

	LockBuffer(buf, BUFFER_LOCK_SHARE);
	meta_to_info(page_meta(index, BufferGetPage(buf)), info);
	UnlockReleaseBuffer(buf);
}

/*
 * A change of the meta page: meta_begin() locks it exclusively (alone, see
 * src/README.md) and returns its WAL-logged image; meta_end() logs the
 * change if there was one and releases the page.
 */
typedef struct MetaChange
{
	Buffer		buf;
	GenericXLogState *state;
} MetaChange;

static HnswMetaPage
meta_begin(Relation index, MetaChange *mc)
{
	mc->buf = ReadBuffer(index, HNSW_METAPAGE_BLKNO);
	LockBuffer(mc->buf, BUFFER_LOCK_EXCLUSIVE);
	mc->state = GenericXLogStart(index);
	return page_meta(index, GenericXLogRegisterBuffer(mc->state, mc->buf, 0));
}

static void
meta_end(MetaChange *mc, bool changed)
{
	if (changed)
		GenericXLogFinish(mc->state);
	else
		GenericXLogAbort(mc->state);
	UnlockReleaseBuffer(mc->buf);
}

/*
 * VACUUM marked elements deleted: backends' vector caches must drop their
 * deleted flags (see HnswVecCache in this file).
 */
void
hnsw_bump_vacuum_gen(Relation index)
{
	MetaChange	mc;
	HnswMetaPage meta = meta_begin(index, &mc);

	meta->vacuum_gen++;
	meta_end(&mc, true);
}

/* fix the dimension of an index created without one (first vector) */
void
hnsw_set_dims(Relation index, int dims)
{
	MetaChange	mc;
	HnswMetaPage meta = meta_begin(index, &mc);
	uint32		cur = meta->dims;

	if (cur == 0)
		meta->dims = dims;
	meta_end(&mc, cur == 0);
	if (cur != 0 && cur != (uint32) dims)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg_plural("vector has %d dimension, but index \"%s\" has %u",
							   "vector has %d dimensions, but index \"%s\" has %u",
							   dims, dims, RelationGetRelationName(index), cur)));
}

/*
 * Compare-and-set of the entry point.  With expect == NULL the entry point
 * becomes tid if the graph has none or level is higher than the current
 * entry's; otherwise only if the current entry is *expect.  Returns whether
 * it changed; cur (if not NULL) receives the meta state afterwards.
 */
bool
hnsw_update_entry(Relation index, ItemPointer tid, int level, ItemPointer expect,
				  HnswMetaInfo *cur)
{
	MetaChange	mc;
	HnswMetaPage meta = meta_begin(index, &mc);
	bool		change;

	change = hnsw_entry_cas(&meta->entry, meta->entry_level, level, expect);
	if (change)
	{
		if (tid != NULL && ItemPointerIsValid(tid))
		{
			meta->entry = *tid;
			meta->entry_level = level;
		}
		else
		{
			ItemPointerSetInvalid(&meta->entry);
			meta->entry_level = -1;
		}
	}
	if (cur)
		meta_to_info(meta, cur);
	meta_end(&mc, change);
	return change;
}

/* advance a stripe's insert page (never backwards) */
static void
set_insert_page(Relation index, int stripe, BlockNumber blkno)
{
	MetaChange	mc;
	HnswMetaPage meta = meta_begin(index, &mc);

	meta->inserted++;
	if (meta->version == 1)
	{
		if (meta->insert_page == InvalidBlockNumber || meta->insert_page < blkno)
			meta->insert_page = blkno;
	}
	else
		meta->stripe_insert[stripe] = blkno;	/* may be a recycled page */
	meta_end(&mc, true);
}

/*
 * Is this page free for reuse?  Only a pending page that left its chain
 * (HNSW_PAGE_DETACHED) before every snapshot still running was taken: a
 * scan that read the chain earlier may still follow its "next" link.  The
 * detaching transaction horizon is kept in pd_prune_xid.
 */
bool
hnsw_page_recyclable(Page page)
{
	HnswPageOpaque opaque;

	if (PageIsNew(page))
		return true;
	if (PageGetSpecialSize(page) != MAXALIGN(sizeof(HnswPageOpaqueData)))
		return false;
	opaque = HnswPageGetOpaque(page);
	return opaque->page_id == HNSW_PAGE_ID &&
		opaque->flags == (HNSW_PAGE_PENDING | HNSW_PAGE_DETACHED) &&
		GlobalVisCheckRemovableXid(NULL, ((PageHeader) page)->pd_prune_xid);
}

/*
 * The index's size in blocks as this backend last saw it, asking the kernel
 * (an lseek) only if it has not seen it yet.  PostgreSQL 15 keeps that size
 * up to date through this backend's own extensions and truncations but
 * trusts it only in recovery, since other backends may have extended the
 * relation since: so it may be too small, never too large (an engram_hnsw
 * index is truncated only when rebuilt in place, by smgrtruncate(), which
 * updates it).  hnsw_block_exists() asks the kernel again only for a block
 * past it.  These replace RelationGetNumberOfBlocks() where a block is
 * checked before every read of an insert, a scan or a merge.
 */
BlockNumber
hnsw_nblocks_seen(Relation index)
{
	BlockNumber seen = RelationGetSmgr(index)->smgr_cached_nblocks[MAIN_FORKNUM];

	return seen != InvalidBlockNumber ? seen : RelationGetNumberOfBlocks(index);
}

bool
hnsw_block_exists(Relation index, BlockNumber blkno)
{
	BlockNumber seen = RelationGetSmgr(index)->smgr_cached_nblocks[MAIN_FORKNUM];

	if (seen != InvalidBlockNumber && blkno < seen)
		return true;
	return blkno < RelationGetNumberOfBlocks(index);
}

/*
 * Get a page for new tuples: a recycled one from the free space map (VACUUM
 * records detached pending pages there), else a new one at the end of the
 * relation.  Returned pinned and exclusively locked; the caller initialises
 * it (and WAL-logs it as a full image).
 */
Buffer
hnsw_new_buffer(Relation index, ForkNumber fork)
{
	Buffer		buf;
	bool		needlock = !RELATION_IS_LOCAL(index);

	for (int tries = 0; fork == MAIN_FORKNUM && tries < 8; tries++)
	{
		BlockNumber blkno = GetFreeIndexPage(index);

		if (blkno == InvalidBlockNumber)
			break;
		if (blkno == HNSW_METAPAGE_BLKNO || !hnsw_block_exists(index, blkno))
			continue;			/* a stale map entry */
		buf = ReadBuffer(index, blkno);
		if (ConditionalLockBuffer(buf))
		{
			if (hnsw_page_recyclable(BufferGetPage(buf)))
				return buf;
			LockBuffer(buf, BUFFER_LOCK_UNLOCK);
		}
		ReleaseBuffer(buf);
	}

	if (needlock)
		LockRelationForExtension(index, ExclusiveLock);
	buf = ReadBufferExtended(index, fork, P_NEW, RBM_NORMAL, NULL);

	/*
	 * Others are waiting to extend too (concurrent inserts need a page every
	 * few rows): add pages for them while we hold the lock, and leave them in
	 * the free space map, where the waiters look first (as hio.c does for
	 * heaps).  The pages stay all-zero until used, which every page pass
	 * skips; after a crash they are just free.
	 */
	if (needlock && fork == MAIN_FORKNUM)
	{
		int			waiters = RelationExtensionLockWaiterCount(index);

		if (waiters > 0)
		{
			BlockNumber first = InvalidBlockNumber;
			BlockNumber last = InvalidBlockNumber;
			int			extra = Min(waiters * 4, 64);

			for (int i = 0; i < extra; i++)
			{
				Buffer		xbuf = ReadBufferExtended(index, fork, P_NEW, RBM_NORMAL, NULL);

				last = BufferGetBlockNumber(xbuf);
				if (first == InvalidBlockNumber)
					first = last;
				ReleaseBuffer(xbuf);
				RecordFreeIndexPage(index, last);
			}
			FreeSpaceMapVacuumRange(index, first, last + 1);
		}
	}
	if (needlock)
		UnlockRelationForExtension(index, ExclusiveLock);
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	return buf;
}

static OffsetNumber
add_item(Relation index, Page page, BlockNumber blkno, void *item, Size size)
{
	OffsetNumber off = PageAddItem(page, (Item) item, size, InvalidOffsetNumber,
								   false, false);

	if (off == InvalidOffsetNumber)
		elog(ERROR, "failed to add tuple of %zu bytes to engram_hnsw index \"%s\" block %u",
			 size, RelationGetRelationName(index), blkno);
	return off;
}

/*
 * Lock the last page of a stripe's pending chain exclusively, starting from
 * the meta page's tail hint (from_head: from the head instead).  The hint
 * may lag (follow "next"), or point at a page that has left the chain and
 * been reused since.  Pages that left the chain but are not reused yet
 * still lead on through "next".
 *
 * held[] are the buffers the caller has locked already (the new element's
 * pages).  A lagging hint can lead to one of them: a page that left the
 * chain, was recycled and is now being reused by this very insert (the
 * buffer still shows the detached pending page until the WAL record is
 * finished).  Locking it again would wait for ourselves forever, so it is
 * read under the lock we hold.
 *
 * Returns InvalidBuffer when the walk has to start over from the head of a
 * fresh copy of the meta page: the caller releases its locks first, since
 * the meta page is only ever locked alone (src/README.md, rule 4).
 */
static Buffer
lock_pending_tail(Relation index, HnswMetaInfo *meta, int stripe, bool from_head,
				  const Buffer *held, int nheld)
{
	BlockNumber blkno = meta->pending_tail[stripe];
	int			hops = 0;

	if (blkno == InvalidBlockNumber || from_head)
		blkno = meta->pending_head[stripe];
	for (;;)
	{
		Buffer		buf = InvalidBuffer;
		Page		page;
		HnswPageOpaque opaque;
		bool		mine = false;

		if (blkno == InvalidBlockNumber || blkno == HNSW_METAPAGE_BLKNO ||
			!hnsw_block_exists(index, blkno))
			hnsw_corrupt(index, HNSW_METAPAGE_BLKNO,
						 psprintf("pending chain %d leads to block %u", stripe, blkno));
		for (int i = 0; i < nheld && !mine; i++)
		{
			if (BufferIsValid(held[i]) && BufferGetBlockNumber(held[i]) == blkno)
			{
				buf = held[i];
				mine = true;
			}
		}
		if (!mine)
		{
			buf = ReadBuffer(index, blkno);
			LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		}
		page = BufferGetPage(buf);
		if (PageIsNew(page) || !(HnswPageGetOpaque(page)->flags & HNSW_PAGE_PENDING) ||
			HnswPageGetOpaque(page)->stripe != stripe)
		{
			/* not (any more) a page of this chain */
			if (!mine)
				UnlockReleaseBuffer(buf);
			return InvalidBuffer;
		}
		hnsw_check_page(index, page, blkno);
		opaque = HnswPageGetOpaque(page);
		if (opaque->next == InvalidBlockNumber && !(opaque->flags & HNSW_PAGE_DETACHED))
		{
			/* the tail; one of our own pages only in a corrupt chain */
			if (mine)
				hnsw_corrupt(index, blkno,
							 psprintf("pending chain %d ends at a page in use for data", stripe));
			return buf;
		}
		blkno = opaque->next;
		if (!mine)
			UnlockReleaseBuffer(buf);
		if (++hops > 10000000)
			hnsw_corrupt(index, blkno, "pending chain has a cycle");
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Store a new element and its neighbour tuple, WAL-logged as one record so
 * that after a crash an element always has its neighbour tuple.  Tries the
 * stripe's insert page first, otherwise adds pages.  The element's TID is
 * returned in *etid.
 *
 * With pend, the element is pending: its pending entry is appended to the
 * stripe's pending chain in the same WAL record, so an element is never
 * pending without an entry that leads a scan or a merge to it.  Lock
 * order: the data page(s), then the chain's tail (and a new tail page);
 * the meta page is only locked after all of these are released.
 */
static void
place_element(Relation index, HnswMetaInfo *meta, int stripe,
			  HnswElementTuple etup, Size esize,
			  HnswNeighborTuple ntup, Size nsize, ItemPointer etid,
			  HnswPendingTuple pend, int *tailcount)
{
	GenericXLogState *state = NULL;
	Buffer		buf = InvalidBuffer;
	Buffer		buf2 = InvalidBuffer;
	Buffer		tbuf = InvalidBuffer;
	Buffer		tbuf2 = InvalidBuffer;
	Page		page;
	BlockNumber blkno;
	BlockNumber eblkno;
	BlockNumber newtail = InvalidBlockNumber;
	OffsetNumber noff;
	OffsetNumber eoff;
	bool		newpage;
	int			restarts = 0;

restart:
	blkno = meta->stripe_insert[stripe];
	newpage = true;
	buf = InvalidBuffer;
	buf2 = InvalidBuffer;

	if (blkno != InvalidBlockNumber && hnsw_block_exists(index, blkno))
	{
		buf = ReadBuffer(index, blkno);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		page = BufferGetPage(buf);
		if (!PageIsNew(page))
		{
			hnsw_check_page(index, page, blkno);
			if (HnswPageGetOpaque(page)->flags == HNSW_PAGE_DATA &&
				PageGetFreeSpace(page) >= esize + nsize + sizeof(ItemIdData))
			{
				state = GenericXLogStart(index);
				page = GenericXLogRegisterBuffer(state, buf, 0);
				noff = add_item(index, page, blkno, ntup, nsize);
				ItemPointerSet(&etup->neighbortid, blkno, noff);
				eoff = add_item(index, page, blkno, etup, esize);
				eblkno = blkno;
				newpage = false;
			}
		}
		if (newpage)
		{
			UnlockReleaseBuffer(buf);
			buf = InvalidBuffer;
		}
	}

	if (newpage)
	{
		/* a fresh page; a second one if the pair does not fit on one */
		buf = hnsw_new_buffer(index, MAIN_FORKNUM);
		blkno = BufferGetBlockNumber(buf);
		state = GenericXLogStart(index);
		page = GenericXLogRegisterBuffer(state, buf, GENERIC_XLOG_FULL_IMAGE);
		hnsw_init_page(page, HNSW_PAGE_DATA, RelationGetRelid(index));
		noff = add_item(index, page, blkno, ntup, nsize);
		ItemPointerSet(&etup->neighbortid, blkno, noff);
		if (PageGetFreeSpace(page) >= esize)
		{
			eblkno = blkno;
			eoff = add_item(index, page, blkno, etup, esize);
		}
		else
		{
			Page		page2;

			buf2 = hnsw_new_buffer(index, MAIN_FORKNUM);
			eblkno = BufferGetBlockNumber(buf2);
			page2 = GenericXLogRegisterBuffer(state, buf2, GENERIC_XLOG_FULL_IMAGE);
			hnsw_init_page(page2, HNSW_PAGE_DATA, RelationGetRelid(index));
			eoff = add_item(index, page2, eblkno, etup, esize);
		}
	}
	ItemPointerSet(etid, eblkno, eoff);

	if (pend)
	{
		Page		tpage;
		BlockNumber tblkno;

		Buffer		held[2];

		pend->elem = *etid;
		held[0] = buf;
		held[1] = buf2;
		tbuf = lock_pending_tail(index, meta, stripe, restarts > 0, held, 2);
		if (!BufferIsValid(tbuf))
		{
			/* let go of everything, read the meta page, start over */
			GenericXLogAbort(state);
			UnlockReleaseBuffer(buf);
			if (BufferIsValid(buf2))
				UnlockReleaseBuffer(buf2);
			if (++restarts > 2)
				hnsw_corrupt(index, HNSW_METAPAGE_BLKNO,
							 psprintf("pending chain %d reaches a page that is not in it",
									  stripe));
			hnsw_read_meta(index, meta);
			CHECK_FOR_INTERRUPTS();
			goto restart;
		}
		tblkno = BufferGetBlockNumber(tbuf);
		tpage = GenericXLogRegisterBuffer(state, tbuf, 0);
		if (PageGetFreeSpace(tpage) >= HNSW_PENDING_TUPLE_SIZE)
		{
			OffsetNumber last = add_item(index, tpage, tblkno, pend, HNSW_PENDING_TUPLE_SIZE);

			/* entries a merge has not taken yet (merges mark them on the tail too) */
			*tailcount = 0;
			for (OffsetNumber o = FirstOffsetNumber; o <= last; o++)
				if (!(hnsw_page_pending(index, tpage, tblkno, o)->flags & HNSW_PENDING_MERGED))
					(*tailcount)++;
		}
		else
		{
			Page		tpage2;

			/* the tail is full: a new tail page */
			tbuf2 = hnsw_new_buffer(index, MAIN_FORKNUM);
			newtail = BufferGetBlockNumber(tbuf2);
			tpage2 = GenericXLogRegisterBuffer(state, tbuf2, GENERIC_XLOG_FULL_IMAGE);
			hnsw_init_page(tpage2, HNSW_PAGE_PENDING, RelationGetRelid(index));
			HnswPageGetOpaque(tpage2)->stripe = stripe;
			*tailcount = add_item(index, tpage2, newtail, pend, HNSW_PENDING_TUPLE_SIZE);
			HnswPageGetOpaque(tpage)->next = newtail;
		}
	}

	GenericXLogFinish(state);
	UnlockReleaseBuffer(buf);
	if (BufferIsValid(buf2))
		UnlockReleaseBuffer(buf2);
	if (BufferIsValid(tbuf))
		UnlockReleaseBuffer(tbuf);
	if (BufferIsValid(tbuf2))
		UnlockReleaseBuffer(tbuf2);

	/* the meta page is locked alone, after everything else */
	if (newpage)
	{
		set_insert_page(index, stripe, eblkno);
		meta->stripe_insert[stripe] = eblkno;
		if (meta->version == 1)
			meta->insert_page = eblkno;
	}
	if (newtail != InvalidBlockNumber)
	{
		hnsw_set_pending_tail(index, stripe, newtail);
		meta->pending_tail[stripe] = newtail;
		meta->pending_pages[stripe]++;
	}
}

/*
 * Meta page bookkeeping of the pending chains.  hnsw_set_pending_tail: a
 * page was added at the end of the stripe's chain.  hnsw_set_pending_head: a merge detached the first
 * page; the head moves on to blkno, if it still is "expect".
 */
void
hnsw_set_pending_tail(Relation index, int stripe, BlockNumber blkno)
{
	MetaChange	mc;
	HnswMetaPage meta = meta_begin(index, &mc);

	meta->pending_tail[stripe] = blkno;
	meta->pending_pages[stripe]++;
	meta_end(&mc, true);
}

/* a stripe's first chain page; false if the stripe has a chain already */
bool
hnsw_init_pending_chain(Relation index, int stripe, BlockNumber blkno)
{
	MetaChange	mc;
	HnswMetaPage meta = meta_begin(index, &mc);
	bool		done = (meta->pending_head[stripe] == InvalidBlockNumber);

	if (done)
	{
		meta->pending_head[stripe] = blkno;
		meta->pending_tail[stripe] = blkno;
		meta->pending_pages[stripe] = 1;
	}
	meta_end(&mc, done);
	return done;
}

bool
hnsw_set_pending_head(Relation index, int stripe, BlockNumber expect, BlockNumber blkno)
{
	MetaChange	mc;
	HnswMetaPage meta = meta_begin(index, &mc);
	bool		done = (meta->pending_head[stripe] == expect);

	if (done)
	{
		meta->pending_head[stripe] = blkno;
		if (meta->pending_tail[stripe] == expect || blkno == InvalidBlockNumber)
			meta->pending_tail[stripe] = blkno;
		if (meta->pending_pages[stripe] > 0)
			meta->pending_pages[stripe]--;
	}
	meta_end(&mc, done);
	return done;
}

/* a pending entry, checked like every other tuple */
HnswPendingTuple
hnsw_page_pending(Relation index, Page page, BlockNumber blkno, OffsetNumber off)
{
	Size		len;
	HnswPendingTuple ptup = (HnswPendingTuple) page_item(index, page, blkno, off, &len);

	if (len != HNSW_PENDING_TUPLE_SIZE || ptup->type != HNSW_TUPLE_PENDING ||
		!ItemPointerIsValid(&ptup->elem))
		hnsw_corrupt(index, blkno, psprintf("item %u is not a valid pending entry", off));
	return ptup;
}

/* ----------------------------------------------------------------
 * The page-backed graph
 * ----------------------------------------------------------------
 */
typedef struct HnswVecCacheEntry
{
	uint64		key;
	char		status;
	uint32		slot;
} HnswVecCacheEntry;

/*
 * Half full at most: merges look up every neighbour a search meets, and
 * most of them miss in a young cache (simplehash's default 0.9 made a
 * miss walk long runs of slots).
 */
#define SH_FILLFACTOR	(0.5)
#define SH_PREFIX		hnswvc
#define SH_ELEMENT_TYPE	HnswVecCacheEntry
#define SH_KEY_TYPE		uint64
#define SH_KEY			key
#define SH_HASH_KEY(tb, k) HnswNodeHash(k)
#define SH_EQUAL(tb, a, b) ((a) == (b))
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/*
 * The vector cache: element -> a copy of its vector and its deleted flag,
 * in slots allocated a chunk (about HNSW_VC_CHUNK_BYTES) at a time.  The
 * graph code may hold a vector pointer for a whole insertion, so a slot is
 * only ever reused between insertions (hnsw_page_graph_reset()).
 *
 * By default an operation (one merged row, a direct insert, a VACUUM list
 * repair) gets a private cache, dropped by hnsw_page_graph_reset().  With
 * engram_hnsw.vector_cache_size > 0, merges and direct inserts use the
 * backend's cache instead (hnsw_page_graph_keep_vectors()), which outlives
 * them: elements never move and their vectors never change while the
 * index keeps its relfilenode (only flags, heap TIDs and lists do), so a
 * copy stays right.  Its deleted flags can go stale: the cache is dropped
 * when the meta page's vacuum_gen shows a VACUUM marked elements deleted
 * since, and within one operation a stale flag only costs a link to a
 * deleted element, which searches walk through and the next VACUUM
 * repairs (as with an insert that runs during VACUUM).  It holds one
 * index's vectors, at most engram_hnsw.vector_cache_size of them; between
 * insertions it evicts in CLOCK order (a slot used since the hand last
 * passed is kept).  Measurements: src/README.md, "Vector cache".
 */
#define HNSW_VC_CHUNK_BYTES	(1024 * 1024)

typedef struct HnswVecCache
{
	MemoryContext cxt;			/* everything below lives here */
	hnswvc_hash *hash;			/* node -> slot */
	int			dims;
	uint32		per_chunk;		/* slots per chunk */
	uint32		nslots;			/* slots handed out so far */
	uint32		cap;			/* length of the slot arrays */
	uint32		nused;			/* slots holding a vector */
	uint32		maxused;		/* trim down from above this (0: never) */
	uint32		hand;			/* CLOCK hand */
	float	  **chunks;			/* cap / per_chunk chunk pointers */
	uint64	   *slot_node;
	bool	   *slot_deleted;
	uint8	   *slot_ref;		/* used since the hand passed */
	uint32	   *free;			/* free slots (evicted) */
	uint32		nfree;
	/* the backend's cache: whose vectors, as of which VACUUM */
	RelFileNode rnode;
	uint16		vacuum_gen;
} HnswVecCache;

static HnswVecCache *backend_vcache = NULL;

static HnswVecCache *
vc_create(MemoryContext parent, int dims, uint32 maxused)
{
	MemoryContext cxt = AllocSetContextCreate(parent, "engram_hnsw vector cache",
											  ALLOCSET_DEFAULT_SIZES);
	HnswVecCache *vc = MemoryContextAllocZero(cxt, sizeof(HnswVecCache));

	vc->cxt = cxt;
	vc->hash = hnswvc_create(cxt, 256, NULL);
	vc->dims = dims;
	vc->per_chunk = Max(HNSW_VC_CHUNK_BYTES / (sizeof(float) * (Size) Max(dims, 1)), 1);
	vc->maxused = maxused;
	return vc;
}

static inline float *
vc_slot_vec(HnswVecCache *vc, uint32 slot)
{
	return vc->chunks[slot / vc->per_chunk] + (Size) (slot % vc->per_chunk) * vc->dims;
}

/* a slot to fill: a freed one, else a new one */
static uint32
vc_take_slot(HnswVecCache *vc)
{
	if (vc->nfree > 0)
		return vc->free[--vc->nfree];
	if (vc->nslots == vc->cap)
	{
		uint32		newcap = vc->cap + vc->per_chunk;
		uint32		nchunks = newcap / vc->per_chunk;

		if (vc->cap == 0)
		{
			vc->chunks = MemoryContextAlloc(vc->cxt, sizeof(float *));
			vc->slot_node = MemoryContextAlloc(vc->cxt, sizeof(uint64) * newcap);
			vc->slot_deleted = MemoryContextAlloc(vc->cxt, sizeof(bool) * newcap);
			vc->slot_ref = MemoryContextAlloc(vc->cxt, sizeof(uint8) * newcap);
			vc->free = MemoryContextAlloc(vc->cxt, sizeof(uint32) * newcap);
		}
		else
		{
			vc->chunks = repalloc(vc->chunks, sizeof(float *) * nchunks);
			vc->slot_node = repalloc_huge(vc->slot_node, sizeof(uint64) * newcap);
			vc->slot_deleted = repalloc_huge(vc->slot_deleted, sizeof(bool) * newcap);
			vc->slot_ref = repalloc_huge(vc->slot_ref, sizeof(uint8) * newcap);
			vc->free = repalloc_huge(vc->free, sizeof(uint32) * newcap);
		}
		vc->chunks[nchunks - 1] =
			MemoryContextAllocHuge(vc->cxt, sizeof(float) * vc->per_chunk * (Size) vc->dims);
		vc->cap = newcap;
	}
	return vc->nslots++;
}

/*
 * Between insertions: evict in CLOCK order down to 3/4 of the limit, if
 * over it.
 */
static void
vc_trim(HnswVecCache *vc)
{
	uint32		target;

	if (vc->maxused == 0 || vc->nused <= vc->maxused)
		return;
	target = vc->maxused / 4 * 3;
	while (vc->nused > target)
	{
		uint32		s = vc->hand;

		vc->hand = (vc->hand + 1) % vc->nslots;
		if (vc->slot_node[s] == PG_UINT64_MAX)
			continue;			/* free */
		if (vc->slot_ref[s])
		{
			vc->slot_ref[s] = 0;
			continue;
		}
		hnswvc_delete(vc->hash, vc->slot_node[s]);
		vc->slot_node[s] = PG_UINT64_MAX;
		vc->free[vc->nfree++] = s;
		vc->nused--;
	}
}

/*
 * Where the blocks of the index read last were found in shared buffers, by
 * block number: hints for ReadRecentBuffer(), which pins the buffer without
 * the buffer mapping lookup (a hash probe that misses the CPU caches on
 * every element a search visits) when the block is still there.  It checks
 * the buffer's tag, so a stale hint only costs the ordinary lookup.  One
 * index at a time (the one read last), kept across scans of this backend.
 */
#define HNSW_RECENT_MAX_BLOCKS	(4 * 1024 * 1024)	/* 16 MB of hints at most */

static Buffer *recent_buffers = NULL;
static BlockNumber recent_size = 0;
static RelFileNode recent_node;

static Buffer *
recent_buffer_slot(Relation index, BlockNumber blkno, BlockNumber nblocks)
{
	if (blkno >= HNSW_RECENT_MAX_BLOCKS)
		return NULL;
	if (recent_buffers == NULL || !RelFileNodeEquals(recent_node, index->rd_node))
	{
		if (recent_buffers != NULL)
			memset(recent_buffers, 0, sizeof(Buffer) * recent_size);
		recent_node = index->rd_node;
	}
	if (blkno >= recent_size)
	{
		BlockNumber newsize = Max(Min(nblocks, HNSW_RECENT_MAX_BLOCKS), blkno + 1);

		newsize = Max(newsize, Min(recent_size * 2, HNSW_RECENT_MAX_BLOCKS));
		if (recent_buffers == NULL)
			recent_buffers = MemoryContextAllocZero(TopMemoryContext,
													sizeof(Buffer) * newsize);
		else
		{
			recent_buffers = repalloc(recent_buffers, sizeof(Buffer) * newsize);
			memset(recent_buffers + recent_size, 0,
				   sizeof(Buffer) * (newsize - recent_size));
		}
		recent_size = newsize;
	}
	return &recent_buffers[blkno];
}

/*
 * Pin a block reached through a TID, after checking that it exists (a
 * corrupted TID must not make us read past the end of the relation).
 */
Buffer
hnsw_read_buffer(HnswPageGraph *pg, BlockNumber blkno)
{
	Relation	index = pg->index;
	Buffer	   *slot;
	Buffer		buf;

	if (blkno == HNSW_METAPAGE_BLKNO || blkno >= pg->nblocks)
	{
		pg->nblocks = RelationGetNumberOfBlocks(index);
		if (blkno == HNSW_METAPAGE_BLKNO || blkno >= pg->nblocks)
			hnsw_corrupt(index, blkno,
						 psprintf("a link points to block %u, but the index has %u blocks",
								  blkno, pg->nblocks));
	}
	if (RelationUsesLocalBuffers(index))
		return ReadBuffer(index, blkno);
	slot = recent_buffer_slot(index, blkno, pg->nblocks);
	if (slot == NULL)
		return ReadBuffer(index, blkno);
	if (BufferIsValid(*slot) &&
		ReadRecentBuffer(index->rd_node, MAIN_FORKNUM, blkno, *slot))
	{
		/* the statistics ReadBuffer() would have counted */
		pgstat_count_buffer_read(index);
		pgstat_count_buffer_hit(index);
		return *slot;
	}
	buf = ReadBuffer(index, blkno);
	*slot = buf;
	return buf;
}

/* pin and share-lock the element of node; returns the tuple */
static HnswElementTuple
lock_element(HnswPageGraph *pg, HnswNode node, Buffer *buf)
{
	ItemPointerData tid;
	Page		page;

	HnswNodeToTid(node, &tid);
	*buf = hnsw_read_buffer(pg, ItemPointerGetBlockNumber(&tid));
	LockBuffer(*buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(*buf);
	hnsw_check_page(pg->index, page, ItemPointerGetBlockNumber(&tid));
	return hnsw_page_element(pg->index, page, ItemPointerGetBlockNumber(&tid),
							 ItemPointerGetOffsetNumber(&tid), pg->graph.dims);
}

/*
 * The slot of node's vector in the graph's cache, read from its page on a
 * miss.  The cache is changed only once the page has been read, so an
 * error (a corrupt page) leaves it consistent.
 */
static uint32
cached_vector(HnswPageGraph *pg, HnswNode node)
{
	HnswVecCache *vc = (HnswVecCache *) pg->cache;
	HnswVecCacheEntry *entry;
	Buffer		buf;
	HnswElementTuple etup;
	uint32		slot;
	bool		found;

	if (vc == NULL)
		pg->cache = vc = vc_create(pg->graph.cxt, pg->graph.dims, 0);

	/* a search peeks at the next neighbour before its distance: no second probe */
	if (node == pg->peek_node[0] || node == pg->peek_node[1])
		slot = pg->peek_slot[node == pg->peek_node[0] ? 0 : 1];
	else
	{
		entry = hnswvc_lookup(vc->hash, node);
		slot = entry ? entry->slot : PG_UINT32_MAX;
	}
	if (slot != PG_UINT32_MAX)
	{
		vc->slot_ref[slot] = 1;
		return slot;
	}

	slot = vc_take_slot(vc);
	vc->slot_node[slot] = PG_UINT64_MAX;	/* not in use until filled */
	etup = lock_element(pg, node, &buf);
	memcpy(vc_slot_vec(vc, slot), etup->vec, sizeof(float) * vc->dims);
	vc->slot_deleted[slot] = (etup->flags & HNSW_ELEMENT_DELETED) != 0;
	UnlockReleaseBuffer(buf);
	entry = hnswvc_insert(vc->hash, node, &found);
	Assert(!found);
	entry->slot = slot;
	vc->slot_node[slot] = node;
	vc->slot_ref[slot] = 1;
	vc->nused++;
	return slot;
}

static float
page_distance(HnswGraph *g, HnswNode node, const float *q, bool *skip)
{
	HnswPageGraph *pg = (HnswPageGraph *) g;
	Buffer		buf;
	HnswElementTuple etup;
	float		d;

	if (pg->keep_vectors)
	{
		HnswVecCache *vc;
		uint32		slot = cached_vector(pg, node);

		vc = (HnswVecCache *) pg->cache;
		*skip = vc->slot_deleted[slot];
		return g->dist(q, vc_slot_vec(vc, slot), g->dims);
	}
	etup = lock_element(pg, node, &buf);
	d = g->dist(q, etup->vec, g->dims);
	*skip = (etup->flags & HNSW_ELEMENT_DELETED) != 0;
	UnlockReleaseBuffer(buf);
	return d;
}

static const float *
page_vector(HnswGraph *g, HnswNode node)
{
	HnswPageGraph *pg = (HnswPageGraph *) g;
	uint32		slot = cached_vector(pg, node);

	return vc_slot_vec((HnswVecCache *) pg->cache, slot);
}

/*
 * The recent-buffer hints of pg's index for a prefetch, or NULL if there are
 * none.  A hint is only that: the buffer may hold another block by now.
 */
static inline Buffer *
prefetch_hints(HnswPageGraph *pg)
{
	if (recent_buffers == NULL || RelationUsesLocalBuffers(pg->index) ||
		!RelFileNodeEquals(recent_node, pg->index->rd_node))
		return NULL;
	return recent_buffers;
}

/*
 * The page of the shared buffer hinted for node's block, and node's line
 * pointer in it (NULL for an offset beyond the page); NULL if no shared
 * buffer is hinted.  Shared buffers only: their memory stays mapped for the
 * life of the server, so it may be read without a pin, while a local
 * buffer's may not be allocated.
 */
static inline char *
hinted_page(Buffer *hints, HnswNode node, Buffer *buf, ItemId *lp)
{
	BlockNumber blkno = (BlockNumber) (node >> 16);
	OffsetNumber off = (OffsetNumber) (node & 0xFFFF);
	char	   *page;

	if (blkno >= recent_size)
		return NULL;
	*buf = hints[blkno];
	if (*buf <= 0 || *buf > NBuffers)
		return NULL;
	page = (char *) BufferGetBlock(*buf);
	*lp = NULL;
	if (off >= FirstOffsetNumber && SizeOfPageHeaderData + sizeof(ItemIdData) * off <= BLCKSZ)
		*lp = (ItemId) (page + SizeOfPageHeaderData) + (off - 1);
	return page;
}

/*
 * Where node's vector probably lies in shared buffers, for a prefetch only
 * (see HnswGraphOps.peek_vector).  The line pointer is read without a pin
 * or a lock, so it may be stale or belong to another block: the address is
 * kept inside the buffer's page, and the caller never reads through it.
 */
static const float *
page_peek_shared(HnswPageGraph *pg, HnswNode node)
{
	Buffer	   *hints = prefetch_hints(pg);
	Buffer		buf;
	ItemId		lp;
	char	   *page;
	uint32		itemoff;

	if (hints == NULL || (page = hinted_page(hints, node, &buf, &lp)) == NULL || lp == NULL)
		return NULL;
	itemoff = ((volatile ItemIdData *) lp)->lp_off;
	if (itemoff < SizeOfPageHeaderData || itemoff > BLCKSZ - sizeof(HnswElementTupleData))
		return NULL;
	hnsw_prefetch(page + itemoff);	/* the tuple's header */
	return (const float *) (page + itemoff + offsetof(HnswElementTupleData, vec));
}

/*
 * A search is about to read these nodes (see HnswGraphOps.prefetch): start
 * loading, for each one whose buffer this backend knows, the lines every
 * read touches first: the buffer header (the pin), the page header, the
 * line pointer and the special space (the page checks).  Addresses only:
 * nothing is read, no pin or lock is taken.
 */
static void
page_prefetch(HnswGraph *g, const HnswNode *nodes, int n)
{
	Buffer	   *hints = prefetch_hints((HnswPageGraph *) g);

	if (hints == NULL)
		return;
	for (int i = 0; i < n; i++)
	{
		Buffer		buf;
		ItemId		lp;
		char	   *page = hinted_page(hints, nodes[i], &buf, &lp);

		if (page == NULL)
			continue;
		hnsw_prefetch(GetBufferDescriptor(buf - 1));
		hnsw_prefetch(page);
		if (lp != NULL)
			hnsw_prefetch(lp);
		hnsw_prefetch(page + BLCKSZ - sizeof(HnswPageOpaqueData));
	}
}

/*
 * The vector if the batch's cache has it (merges), else where it probably
 * lies in shared buffers (see HnswGraphOps.peek_vector).
 */
static const float *
page_peek_vector(HnswGraph *g, HnswNode node)
{
	HnswPageGraph *pg = (HnswPageGraph *) g;
	HnswVecCache *vc = (HnswVecCache *) pg->cache;
	HnswVecCacheEntry *entry;

	if (!pg->keep_vectors)
		return page_peek_shared(pg, node);
	entry = hnswvc_lookup(vc->hash, node);
	if (entry == NULL)
		return page_peek_shared(pg, node);
	/* remember hits only: a remembered miss would go stale when filled */
	pg->peek_node[pg->peek_next] = node;
	pg->peek_slot[pg->peek_next] = entry->slot;
	pg->peek_next ^= 1;
	return vc_slot_vec(vc, entry->slot);
}

/* copy one layer's list out of a neighbour tuple */
static int
copy_layer(HnswNeighborTuple ntup, int m, int layer, HnswNode *out)
{
	int			start = HnswLayerOffset(m, layer);
	int			cap = HnswLayerCapacity(m, layer);
	int			n = 0;

	for (int i = 0; i < cap; i++)
	{
		ItemPointer tid = &ntup->tids[start + i];

		if (!ItemPointerIsValid(tid))
			break;
		out[n++] = HnswNodeFromTid(tid);
	}
	return n;
}

/*
 * Lock the neighbour tuple of node (in mode); returns it, with *buf the
 * locked buffer and *level the element's level.
 */
static HnswNeighborTuple
lock_neighbors(HnswPageGraph *pg, HnswNode node, int mode, Buffer *buf, int *level,
			   ItemPointer ntidout)
{
	Buffer		ebuf;
	HnswElementTuple etup = lock_element(pg, node, &ebuf);
	ItemPointerData ntid = etup->neighbortid;
	BlockNumber nblkno = ItemPointerGetBlockNumber(&ntid);

	*level = etup->level;
	*ntidout = ntid;
	if (mode == BUFFER_LOCK_SHARE && nblkno == BufferGetBlockNumber(ebuf))
		*buf = ebuf;			/* usual case: same page, keep the lock */
	else
	{
		UnlockReleaseBuffer(ebuf);
		*buf = hnsw_read_buffer(pg, nblkno);
		LockBuffer(*buf, mode);
		hnsw_check_page(pg->index, BufferGetPage(*buf), nblkno);
	}
	return hnsw_page_neighbors(pg->index, BufferGetPage(*buf), nblkno,
							   ItemPointerGetOffsetNumber(&ntid), pg->graph.m, *level);
}

static int
page_neighbors(HnswGraph *g, HnswNode node, int layer, HnswNode *out)
{
	HnswPageGraph *pg = (HnswPageGraph *) g;
	Buffer		buf;
	int			level;
	ItemPointerData ntid;
	HnswNeighborTuple ntup;
	int			n = 0;

	ntup = lock_neighbors(pg, node, BUFFER_LOCK_SHARE, &buf, &level, &ntid);
	if (layer <= level)
		n = copy_layer(ntup, g->m, layer, out);
	UnlockReleaseBuffer(buf);
	return n;
}

/*
 * Overwrite len bytes at off of an exclusively locked page with data and
 * WAL-log the change as a generic WAL record holding exactly that one
 * fragment: the record format generic_xlog.c writes and generic_redo()
 * replays (per block: offset, length, the bytes).  GenericXLogFinish would
 * find the same fragment by comparing a copy of the whole page with the
 * original, byte by byte, which costs far more than a list change (about a
 * seventh of a merge's time went there).  The page's hole is left alone: it
 * is zero already (every page is written by a generic record, which zeroes
 * it, or initialised), and replay zeroes it too, so primary and standby
 * pages stay identical.
 */
void
hnsw_write_fragment(Relation index, Buffer buf, Size off, const void *data, Size len)
{
	Page		page = BufferGetPage(buf);
	bool		logged = RelationNeedsWAL(index);

	Assert(off >= SizeOfPageHeaderData && off + len <= BLCKSZ && len > 0);
	if (logged)
		XLogBeginInsert();
	START_CRIT_SECTION();
	memcpy((char *) page + off, data, len);
	MarkBufferDirty(buf);
	if (logged)
	{
		OffsetNumber frag[2];
		XLogRecPtr	recptr;

		frag[0] = (OffsetNumber) off;
		frag[1] = (OffsetNumber) len;
		XLogRegisterBuffer(0, buf, REGBUF_STANDARD);
		XLogRegisterBufData(0, (char *) frag, sizeof(frag));
		XLogRegisterBufData(0, (char *) page + off, len);
		recptr = XLogInsert(RM_GENERIC_ID, 0);
		PageSetLSN(page, recptr);
	}
	END_CRIT_SECTION();
}

static bool
page_replace_neighbors(HnswGraph *g, HnswNode node, int layer,
					   const HnswNode *oldlist, int nold,
					   const HnswNode *newlist, int nnew)
{
	HnswPageGraph *pg = (HnswPageGraph *) g;
	Buffer		buf;
	int			level;
	HnswNeighborTuple ntup;
	ItemPointerData *slots;
	HnswNode   *cur;
	int			ncur;
	int			start = HnswLayerOffset(g->m, layer);
	int			cap = HnswLayerCapacity(g->m, layer);
	ItemPointerData ntid;
	Page		page;
	bool		same;

	Assert(nnew <= cap);
	ntup = lock_neighbors(pg, node, BUFFER_LOCK_EXCLUSIVE, &buf, &level, &ntid);
	if (layer > level)
	{
		UnlockReleaseBuffer(buf);
		return true;			/* nothing to link on this layer */
	}

	/* has the list changed since the caller read it? */
	cur = palloc(sizeof(HnswNode) * cap);
	ncur = copy_layer(ntup, g->m, layer, cur);
	same = (ncur == nold &&
			(nold == 0 || memcmp(cur, oldlist, sizeof(HnswNode) * nold) == 0));
	pfree(cur);
	if (!same)
	{
		UnlockReleaseBuffer(buf);
		return false;
	}

	/* the layer's slots, written and logged as one fragment */
	slots = palloc(sizeof(ItemPointerData) * cap);
	for (int i = 0; i < cap; i++)
	{
		if (i < nnew)
			HnswNodeToTid(newlist[i], &slots[i]);
		else
			ItemPointerSetInvalid(&slots[i]);
	}
	page = BufferGetPage(buf);
	hnsw_write_fragment(pg->index, buf, (char *) &ntup->tids[start] - (char *) page,
				   slots, sizeof(ItemPointerData) * cap);
	pfree(slots);
	UnlockReleaseBuffer(buf);
	return true;
}

/*
 * Add a heap TID to an existing element holding exactly vec, if it has room
 * and is not deleted.  This is how identical vectors share one element.
 */
static bool
page_add_heaptid(HnswGraph *g, HnswNode node, const float *vec, ItemPointer heaptid)
{
	HnswPageGraph *pg = (HnswPageGraph *) g;
	ItemPointerData tid;
	Buffer		buf;
	GenericXLogState *state;
	Page		page;
	HnswElementTuple etup;
	bool		done = false;

	HnswNodeToTid(node, &tid);
	buf = hnsw_read_buffer(pg, ItemPointerGetBlockNumber(&tid));
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	hnsw_check_page(pg->index, BufferGetPage(buf), ItemPointerGetBlockNumber(&tid));
	state = GenericXLogStart(pg->index);
	page = GenericXLogRegisterBuffer(state, buf, 0);
	etup = hnsw_page_element(pg->index, page, ItemPointerGetBlockNumber(&tid),
							 ItemPointerGetOffsetNumber(&tid), pg->graph.dims);
	if (!(etup->flags & HNSW_ELEMENT_DELETED) &&
		etup->ntids < HNSW_HEAPTIDS &&
		memcmp(etup->vec, vec, sizeof(float) * pg->graph.dims) == 0)
	{
		etup->heaptids[etup->ntids++] = *heaptid;
		done = true;
	}
	if (done)
		GenericXLogFinish(state);
	else
		GenericXLogAbort(state);
	UnlockReleaseBuffer(buf);
	return done;
}

static void
page_get_entry(HnswGraph *g, HnswNode *node, int *level)
{
	HnswPageGraph *pg = (HnswPageGraph *) g;

	if (pg->has_space)
	{
		HnswSpaceInfo info;

		hnsw_space_read(pg->index, &pg->space_tid, &info);
		*node = ItemPointerIsValid(&info.entry) ?
			HnswNodeFromTid(&info.entry) : HNSW_INVALID_NODE;
		*level = info.entry_level;
		return;
	}
	hnsw_read_meta(pg->index, pg->meta);
	*node = ItemPointerIsValid(&pg->meta->entry) ?
		HnswNodeFromTid(&pg->meta->entry) : HNSW_INVALID_NODE;
	*level = pg->meta->entry_level;
}

static bool
page_set_entry(HnswGraph *g, HnswNode node, int level, const HnswNode *expect,
			   HnswNode *cur, int *curlevel)
{
	HnswPageGraph *pg = (HnswPageGraph *) g;
	ItemPointerData tid;
	ItemPointerData exptid;
	ItemPointer expp = NULL;
	bool		changed;

	HnswNodeToTid(node, &tid);
	if (expect != NULL)
	{
		if (*expect == HNSW_INVALID_NODE)
			ItemPointerSetInvalid(&exptid);
		else
			HnswNodeToTid(*expect, &exptid);
		expp = &exptid;
	}
	if (pg->has_space)
	{
		HnswSpaceInfo info;

		changed = hnsw_space_update_entry(pg->index, &pg->space_tid, &tid, level,
										  expp, false, &info);
		*cur = HnswNodeFromTid(&info.entry);
		*curlevel = info.entry_level;
		return changed;
	}
	changed = hnsw_update_entry(pg->index, &tid, level, expp, pg->meta);
	*cur = HnswNodeFromTid(&pg->meta->entry);
	*curlevel = pg->meta->entry_level;
	return changed;
}

/*
 * Build an element tuple and its neighbour tuple (lists from selected[],
 * empty without) and store them on the graph's stripe; with pending, as a
 * pending element with its pending entry.
 */
static HnswNode
store_element(HnswPageGraph *pg, const float *vec, int level, ItemPointer heaptid,
			  HnswCandidate **selected, int *nselected, bool pending, int *tailcount)
{
	HnswGraph  *g = &pg->graph;
	Size		esize = HNSW_ELEMENT_TUPLE_SIZE(g->dims);
	Size		nsize = HNSW_NEIGHBOR_TUPLE_SIZE(g->m, level);
	HnswElementTuple etup = palloc0(esize);
	HnswNeighborTuple ntup = palloc0(nsize);
	HnswPendingTuple pend = NULL;
	ItemPointerData etid;

	etup->type = HNSW_TUPLE_ELEMENT;
	etup->level = level;
	etup->flags = pending ? HNSW_ELEMENT_PENDING : 0;
	etup->ntids = 1;
	etup->space_no = pg->has_space ? pg->space_no : 0;
	etup->heaptids[0] = *heaptid;
	for (int i = 1; i < HNSW_HEAPTIDS; i++)
		ItemPointerSetInvalid(&etup->heaptids[i]);
	memcpy(etup->vec, vec, sizeof(float) * g->dims);

	ntup->type = HNSW_TUPLE_NEIGHBORS;
	ntup->level = level;
	ntup->nslots = HnswTotalSlots(g->m, level);
	for (int i = 0; i < ntup->nslots; i++)
		ItemPointerSetInvalid(&ntup->tids[i]);
	for (int l = 0; selected != NULL && l <= level; l++)
		for (int i = 0; i < nselected[l]; i++)
			HnswNodeToTid(selected[l][i].node,
						  &ntup->tids[HnswLayerOffset(g->m, l) + i]);

	if (pending)
	{
		/* the whole MAXALIGNed tuple is copied to the page: no stack struct */
		pend = palloc0(HNSW_PENDING_TUPLE_SIZE);
		pend->type = HNSW_TUPLE_PENDING;
		pend->space_no = etup->space_no;
		if (pg->has_space)
			pend->dirtid = pg->space_tid;
		else
			ItemPointerSetInvalid(&pend->dirtid);
	}
	place_element(pg->index, pg->meta, pg->stripe, etup, esize, ntup, nsize, &etid,
				  pend, tailcount);
	pfree(etup);
	pfree(ntup);
	if (pend)
		pfree(pend);
	return HnswNodeFromTid(&etid);
}

static HnswNode
page_create_node(HnswGraph *g, const float *vec, int level, ItemPointer heaptid,
				 HnswCandidate **selected, int *nselected)
{
	return store_element((HnswPageGraph *) g, vec, level, heaptid, selected, nselected,
						 false, NULL);
}

/*
 * Store a pending element: not linked, found by scans through its entry.
 * *tailcount receives the number of unmerged entries on the last page.
 */
HnswNode
hnsw_store_pending(HnswPageGraph *pg, const float *vec, int level, ItemPointer heaptid,
				   int *tailcount)
{
	return store_element(pg, vec, level, heaptid, NULL, NULL, true, tailcount);
}

static const HnswGraphOps page_graph_ops = {
	.distance = page_distance,
	.vector = page_vector,
	.neighbors = page_neighbors,
	.replace_neighbors = page_replace_neighbors,
	.get_entry = page_get_entry,
	.set_entry = page_set_entry,
	.create_node = page_create_node,
	.add_heaptid = page_add_heaptid,
	.peek_vector = page_peek_vector,
	.peek_bytes = 8192,
	.prefetch = page_prefetch,
};

void
hnsw_page_graph_init(HnswPageGraph *pg, Relation index, HnswMetaInfo *meta)
{
	memset(pg, 0, sizeof(HnswPageGraph));
	pg->meta = meta;
	pg->graph.ops = &page_graph_ops;
	pg->graph.dims = meta->dims;
	pg->graph.m = meta->m;
	pg->graph.ef_construction = meta->ef_construction;
	pg->graph.metric = meta->metric;
	pg->graph.dist = hnsw_metric_distance(meta->metric);
	pg->graph.dense = false;
	pg->graph.cxt = CurrentMemoryContext;
	pg->index = index;
	pg->nblocks = hnsw_nblocks_seen(index);	/* hnsw_read_buffer() asks again */
	pg->stripe = hnsw_stripe_of(meta, 0, false);
	pg->cache = NULL;			/* made on first use */
}

/*
 * Done with one operation (one insertion): a private vector cache is
 * dropped (its vectors' flags may be stale after the operation); the
 * backend's cache is trimmed to its limit.
 */
void
hnsw_page_graph_reset(HnswPageGraph *pg)
{
	HnswVecCache *vc = (HnswVecCache *) pg->cache;

	pg->peek_node[0] = pg->peek_node[1] = 0;	/* (0,0) is never an element */
	if (vc == NULL)
		return;
	if (pg->keep_vectors)
		vc_trim(vc);
	else
	{
		MemoryContextDelete(vc->cxt);
		pg->cache = NULL;
	}
}

/*
 * Merges: take vectors and deleted flags from the backend's vector cache,
 * kept from earlier merges of this index unless a VACUUM has marked
 * elements deleted since (see HnswVecCache).  Without a cache
 * (engram_hnsw.vector_cache_size = 0) every insertion reads its own.
 */
void
hnsw_page_graph_keep_vectors(HnswPageGraph *pg)
{
	HnswVecCache *vc = backend_vcache;
	Size		slotbytes = sizeof(float) * (Size) Max(pg->graph.dims, 1) + 32;
	Size		limit = (Size) hnsw_vector_cache_kb * 1024;
	uint32		maxused = (uint32) Min(limit / slotbytes, (Size) PG_INT32_MAX);

	if (vc != NULL &&
		(!RelFileNodeEquals(vc->rnode, pg->index->rd_node) ||
		 vc->dims != pg->graph.dims || vc->vacuum_gen != pg->meta->vacuum_gen ||
		 maxused != vc->maxused))
	{
		backend_vcache = NULL;
		MemoryContextDelete(vc->cxt);
		vc = NULL;
	}
	if (maxused < 1 || pg->graph.dims <= 0)
		return;
	if (vc == NULL)
	{
		vc = vc_create(TopMemoryContext, pg->graph.dims, maxused);
		vc->rnode = pg->index->rd_node;
		vc->vacuum_gen = pg->meta->vacuum_gen;
		backend_vcache = vc;
	}
	if (pg->cache != NULL && !pg->keep_vectors)
		MemoryContextDelete(((HnswVecCache *) pg->cache)->cxt);
	pg->cache = vc;
	pg->keep_vectors = true;
}
