/*-------------------------------------------------------------------------
 *
 * hnsw_pages.c
 *	  Page and meta page primitives: page initialisation and checks, the
 *	  checked readers of every tuple type, the meta page and its changes,
 *	  stripes, new pages and WAL-logged in-place writes.
 *
 * Layering: this file calls no other engram_hnsw file.  Element placement
 * (hnsw_place.c), the vector cache (hnsw_veccache.c), the space directory
 * (hnsw_space.c) and the page graph (hnsw_pagegraph.c) are built on it.
 *
 * Locking: every function here holds at most one buffer content lock at a
 * time.  The meta page is only ever locked alone.  See src/README.md.
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
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/freespace.h"
#include "storage/indexfsm.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "utils/snapmgr.h"
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
	opaque->nfree = 0;
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
		 opaque->flags != HNSW_PAGE_VECTOR &&
		 opaque->flags != (HNSW_PAGE_PENDING | HNSW_PAGE_DETACHED)) ||
		((opaque->flags & HNSW_PAGE_PENDING) && opaque->stripe >= HNSW_STRIPES))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("engram_hnsw index \"%s\" has a page of the wrong kind at block %u",
						RelationGetRelationName(index), blkno)));
}

/* fetch the item at off, checking that it lies within the page */
char *
hnsw_page_item(Relation index, Page page, BlockNumber blkno, OffsetNumber off, Size *len)
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
	return *(uint8 *) hnsw_page_item(index, page, blkno, off, &len);
}

HnswElementTuple
hnsw_page_element(Relation index, Page page, BlockNumber blkno, OffsetNumber off,
				  const HnswMetaInfo *meta)
{
	Size		len;
	HnswElementTuple etup = (HnswElementTuple) hnsw_page_item(index, page, blkno, off, &len);

	if (etup->type != HNSW_TUPLE_ELEMENT)
		hnsw_corrupt(index, blkno, psprintf("item %u is not an element", off));
	if (len != hnsw_element_size(meta) ||
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
	HnswNeighborTuple ntup = (HnswNeighborTuple) hnsw_page_item(index, page, blkno, off, &len);

	if (ntup->type != HNSW_TUPLE_NEIGHBORS)
		hnsw_corrupt(index, blkno, psprintf("item %u is not a neighbour list", off));
	/* a reused slot's tuple may have room for more layers than its element */
	if (ntup->level < level || ntup->level > HNSW_MAX_LEVEL ||
		ntup->nslots != HnswTotalSlots(m, ntup->level) ||
		len != HNSW_NEIGHBOR_TUPLE_SIZE(m, ntup->level))
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

/*
 * Format 3 keeps an element's code in its element tuple, which must fit a
 * page: int8 codes reach that limit near 8 000 dimensions, half precision
 * near 4 000.  Checked where an index's dimension is fixed.
 */
static bool
code_fits(int kind, int dims)
{
	Size		esize = HNSW_ELEMENT3_TUPLE_SIZE(hnsw_code_size(kind, dims));

	return esize + sizeof(ItemIdData) <= HNSW_PAGE_FREE_SPACE;
}

void
hnsw_check_code_fits(Relation index, int kind, int dims)
{
	if (!code_fits(kind, dims))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s codes of %d dimensions do not fit an engram_hnsw page",
						hnsw_code_name(kind), dims),
				 errhint("Create the index WITH (codes = rabitq) for index \"%s\".",
						 RelationGetRelationName(index))));
}

/* ----------------------------------------------------------------
 * Meta page
 * ----------------------------------------------------------------
 */
void
hnsw_fill_meta(Page page, Oid indexoid, int dims, int m, int efc, int metric,
			   int nspacekeys, int code_kind, uint32 code_seed)
{
	HnswMetaPage meta;

	hnsw_init_page(page, HNSW_PAGE_META, indexoid);
	meta = HnswPageGetMeta(page);
	memset(meta, 0, sizeof(HnswMetaPageData));
	meta->magic = HNSW_MAGIC;
	/* format 2 (engram_hnsw.build_format) has no codes */
	meta->version = code_kind == HNSW_CODE_NONE ? 2 : HNSW_FORMAT_VERSION;
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
		meta->vector_insert[i] = InvalidBlockNumber;
	}
	meta->code_kind = code_kind;
	meta->code_seed = code_seed;
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
	if (meta->version < 1 || meta->version > HNSW_FORMAT_VERSION)
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
		meta->dims > (meta->version >= 3 ? HNSW_MAX_DIMS : HNSW_MAX_DIMS_V2) ||
		(meta->version >= 3 && hnsw_code_name(meta->code_kind) == NULL) ||
		(meta->version >= 3 && !code_fits(meta->code_kind, meta->dims)) ||
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
	info->code_kind = HNSW_CODE_NONE;
	info->code_seed = 0;
	for (int i = 0; i < HNSW_STRIPES; i++)
		info->vector_insert[i] = InvalidBlockNumber;
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
	if (meta->version < 3)
		return;
	info->code_kind = meta->code_kind;
	info->code_seed = meta->code_seed;
	memcpy(info->vector_insert, meta->vector_insert, sizeof(meta->vector_insert));
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
 * A change of the meta page: hnsw_meta_begin() locks it exclusively (alone,
 * see src/README.md) and returns its WAL-logged image; hnsw_meta_end() logs
 * the change if there was one and releases the page.
 */
HnswMetaPage
hnsw_meta_begin(Relation index, MetaChange *mc)
{
	mc->buf = ReadBuffer(index, HNSW_METAPAGE_BLKNO);
	LockBuffer(mc->buf, BUFFER_LOCK_EXCLUSIVE);
	mc->state = GenericXLogStart(index);
	return page_meta(index, GenericXLogRegisterBuffer(mc->state, mc->buf, 0));
}

void
hnsw_meta_end(MetaChange *mc, bool changed)
{
	if (changed)
		GenericXLogFinish(mc->state);
	else
		GenericXLogAbort(mc->state);
	UnlockReleaseBuffer(mc->buf);
}

/*
 * VACUUM marked elements deleted: backends' vector caches must drop their
 * deleted flags (see HnswVecCache in hnsw_veccache.c).
 */
void
hnsw_bump_vacuum_gen(Relation index)
{
	MetaChange	mc;
	HnswMetaPage meta = hnsw_meta_begin(index, &mc);

	meta->vacuum_gen++;
	hnsw_meta_end(&mc, true);
}

/* fix the dimension of an index created without one (first vector) */
void
hnsw_set_dims(Relation index, int dims)
{
	MetaChange	mc;
	HnswMetaPage meta = hnsw_meta_begin(index, &mc);
	uint32		cur = meta->dims;

	if (cur == 0 && meta->version >= 3)
	{
		int			kind = meta->code_kind;

		hnsw_meta_end(&mc, false);
		hnsw_check_code_fits(index, kind, dims);
		meta = hnsw_meta_begin(index, &mc);
		cur = meta->dims;
	}
	if (cur == 0 && meta->version < 3 && dims > HNSW_MAX_DIMS_V2)
	{
		uint32		version = meta->version;

		hnsw_meta_end(&mc, false);
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("vector has %d dimensions, engram_hnsw indexes of format %u hold at most %d",
						dims, version, HNSW_MAX_DIMS_V2),
				 errhint("REINDEX index \"%s\" to move it to the current format.",
						 RelationGetRelationName(index))));
	}
	if (cur == 0)
		meta->dims = dims;
	hnsw_meta_end(&mc, cur == 0);
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
	HnswMetaPage meta = hnsw_meta_begin(index, &mc);
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
	hnsw_meta_end(&mc, change);
	return change;
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
	bool		contended = false;

	for (int tries = 0; fork == MAIN_FORKNUM && tries < HNSW_FSM_TRIES; tries++)
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

	if (needlock && !ConditionalLockRelationForExtension(index, ExclusiveLock))
	{
		LockRelationForExtension(index, ExclusiveLock);
		contended = true;
	}
	buf = ReadBufferExtended(index, fork, P_NEW, RBM_NORMAL, NULL);

	/*
	 * Others are waiting to extend too (concurrent inserts need a page every
	 * few rows): add pages for them while we hold the lock, and leave them in
	 * the free space map, where the waiters look first (as hio.c does for
	 * heaps).  The pages stay all-zero until used, which every page pass
	 * skips; after a crash they are just free.  Only when we had to wait:
	 * the lock's count of requests includes its holder, so a lone writer
	 * added four spare pages every time.
	 */
	if (contended && fork == MAIN_FORKNUM)
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

