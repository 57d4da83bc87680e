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
#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
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
	opaque->unused = 0;
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
		 opaque->flags != HNSW_PAGE_DIR))
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
		ItemIdGetOffset(iid) + ItemIdGetLength(iid) > ph->pd_special ||
		ItemIdGetLength(iid) < 4)
		hnsw_corrupt(index, blkno, psprintf("item %u has an invalid line pointer", off));
	*len = ItemIdGetLength(iid);
	return (char *) PageGetItem(page, iid);
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
	if (meta->version != HNSW_FORMAT_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("engram_hnsw index \"%s\" has page format %u, this build reads %u",
						RelationGetRelationName(index), meta->version, HNSW_FORMAT_VERSION),
				 errhint("REINDEX the index.")));
	if (meta->m < HNSW_MIN_M || meta->m > HNSW_MAX_M ||
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
	info->entry = meta->entry;
	info->insert_page = meta->insert_page;
	info->nspacekeys = meta->nspacekeys;
	info->dir_head = meta->dir_head;
	info->dir_count = meta->dir_count;
}

void
hnsw_read_meta(Relation index, HnswMetaInfo *info)
{
	Buffer		buf = ReadBuffer(index, HNSW_METAPAGE_BLKNO);

	LockBuffer(buf, BUFFER_LOCK_SHARE);
	meta_to_info(page_meta(index, BufferGetPage(buf)), info);
	UnlockReleaseBuffer(buf);
}

/* fix the dimension of an index created without one (first vector) */
void
hnsw_set_dims(Relation index, int dims)
{
	Buffer		buf = ReadBuffer(index, HNSW_METAPAGE_BLKNO);
	GenericXLogState *state;
	HnswMetaPage meta;
	uint32		cur;

	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	state = GenericXLogStart(index);
	meta = page_meta(index, GenericXLogRegisterBuffer(state, buf, 0));
	if (meta->dims == 0)
	{
		meta->dims = dims;
		GenericXLogFinish(state);
		UnlockReleaseBuffer(buf);
		return;
	}
	cur = meta->dims;
	GenericXLogAbort(state);
	UnlockReleaseBuffer(buf);
	if (cur != (uint32) dims)
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
	Buffer		buf = ReadBuffer(index, HNSW_METAPAGE_BLKNO);
	GenericXLogState *state;
	HnswMetaPage meta;
	bool		change;

	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	state = GenericXLogStart(index);
	meta = page_meta(index, GenericXLogRegisterBuffer(state, buf, 0));
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
	if (change)
		GenericXLogFinish(state);
	else
		GenericXLogAbort(state);
	UnlockReleaseBuffer(buf);
	return change;
}

/* advance the meta page's insert page (never backwards) */
static void
set_insert_page(Relation index, BlockNumber blkno)
{
	Buffer		buf = ReadBuffer(index, HNSW_METAPAGE_BLKNO);
	GenericXLogState *state;
	HnswMetaPage meta;

	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	state = GenericXLogStart(index);
	meta = page_meta(index, GenericXLogRegisterBuffer(state, buf, 0));
	meta->inserted++;
	if (meta->insert_page == InvalidBlockNumber || meta->insert_page < blkno)
		meta->insert_page = blkno;
	GenericXLogFinish(state);
	UnlockReleaseBuffer(buf);
}

/*
 * Add a page to the relation; returned pinned and exclusively locked.
 * The caller initialises it (and WAL-logs it as a full image).
 */
Buffer
hnsw_new_buffer(Relation index, ForkNumber fork)
{
	Buffer		buf;
	bool		needlock = !RELATION_IS_LOCAL(index);

	if (needlock)
		LockRelationForExtension(index, ExclusiveLock);
	buf = ReadBufferExtended(index, fork, P_NEW, RBM_NORMAL, NULL);
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
 * Store a new element and its neighbour tuple, WAL-logged as one record so
 * that after a crash an element always has its neighbour tuple.  Tries the
 * current insert page first, otherwise adds pages.  The element's TID is
 * returned in *etid.
 */
static void
place_element(Relation index, HnswMetaInfo *meta,
				   HnswElementTuple etup, Size esize,
				   HnswNeighborTuple ntup, Size nsize, ItemPointer etid)
{
	GenericXLogState *state;
	Buffer		buf;
	Buffer		buf2 = InvalidBuffer;
	Page		page;
	Page		page2;
	BlockNumber blkno;
	BlockNumber eblkno;
	OffsetNumber noff;
	OffsetNumber eoff;

	if (meta->insert_page != InvalidBlockNumber)
	{
		blkno = meta->insert_page;
		buf = ReadBuffer(index, blkno);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		page = BufferGetPage(buf);
		if (!PageIsNew(page))
		{
			hnsw_check_page(index, page, blkno);
			if (PageGetFreeSpace(page) >= esize + nsize + sizeof(ItemIdData))
			{
				state = GenericXLogStart(index);
				page = GenericXLogRegisterBuffer(state, buf, 0);
				noff = add_item(index, page, blkno, ntup, nsize);
				ItemPointerSet(&etup->neighbortid, blkno, noff);
				eoff = add_item(index, page, blkno, etup, esize);
				GenericXLogFinish(state);
				UnlockReleaseBuffer(buf);
				ItemPointerSet(etid, blkno, eoff);
				return;
			}
		}
		UnlockReleaseBuffer(buf);
	}

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
		buf2 = hnsw_new_buffer(index, MAIN_FORKNUM);
		eblkno = BufferGetBlockNumber(buf2);
		page2 = GenericXLogRegisterBuffer(state, buf2, GENERIC_XLOG_FULL_IMAGE);
		hnsw_init_page(page2, HNSW_PAGE_DATA, RelationGetRelid(index));
		eoff = add_item(index, page2, eblkno, etup, esize);
	}
	GenericXLogFinish(state);
	UnlockReleaseBuffer(buf);
	if (BufferIsValid(buf2))
		UnlockReleaseBuffer(buf2);
	ItemPointerSet(etid, eblkno, eoff);

	/* later inserts go to the newest page; the meta page is locked alone */
	set_insert_page(index, eblkno);
	meta->insert_page = eblkno;
}

/* ----------------------------------------------------------------
 * The page-backed graph
 * ----------------------------------------------------------------
 */
typedef struct HnswVecCacheEntry
{
	uint64		key;
	char		status;
	float	   *vec;
} HnswVecCacheEntry;

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
 * Pin a block reached through a TID, after checking that it exists (a
 * corrupted TID must not make us read past the end of the relation).
 */
Buffer
hnsw_read_buffer(HnswPageGraph *pg, BlockNumber blkno)
{
	if (blkno == HNSW_METAPAGE_BLKNO || blkno >= pg->nblocks)
	{
		pg->nblocks = RelationGetNumberOfBlocks(pg->index);
		if (blkno == HNSW_METAPAGE_BLKNO || blkno >= pg->nblocks)
			hnsw_corrupt(pg->index, blkno,
						 psprintf("a link points to block %u, but the index has %u blocks",
								  blkno, pg->nblocks));
	}
	return ReadBuffer(pg->index, blkno);
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

static float
page_distance(HnswGraph *g, HnswNode node, const float *q, bool *skip)
{
	HnswPageGraph *pg = (HnswPageGraph *) g;
	Buffer		buf;
	HnswElementTuple etup = lock_element(pg, node, &buf);
	float		d = g->dist(q, etup->vec, g->dims);

	*skip = (etup->flags & HNSW_ELEMENT_DELETED) != 0;
	UnlockReleaseBuffer(buf);
	return d;
}

static const float *
page_vector(HnswGraph *g, HnswNode node)
{
	HnswPageGraph *pg = (HnswPageGraph *) g;
	HnswVecCacheEntry *entry;
	bool		found;

	entry = hnswvc_insert((hnswvc_hash *) pg->cache, node, &found);
	if (!found)
	{
		Buffer		buf;
		HnswElementTuple etup;

		entry->vec = NULL;
		etup = lock_element(pg, node, &buf);
		entry->vec = MemoryContextAlloc(pg->cache_cxt, sizeof(float) * g->dims);
		memcpy(entry->vec, etup->vec, sizeof(float) * g->dims);
		UnlockReleaseBuffer(buf);
	}
	return entry->vec;
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

static bool
page_replace_neighbors(HnswGraph *g, HnswNode node, int layer,
					   const HnswNode *oldlist, int nold,
					   const HnswNode *newlist, int nnew)
{
	HnswPageGraph *pg = (HnswPageGraph *) g;
	Buffer		buf;
	int			level;
	HnswNeighborTuple ntup;
	GenericXLogState *state;
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

	state = GenericXLogStart(pg->index);
	page = GenericXLogRegisterBuffer(state, buf, 0);
	ntup = (HnswNeighborTuple)
		PageGetItem(page, PageGetItemId(page, ItemPointerGetOffsetNumber(&ntid)));
	for (int i = 0; i < cap; i++)
	{
		if (i < nnew)
			HnswNodeToTid(newlist[i], &ntup->tids[start + i]);
		else
			ItemPointerSetInvalid(&ntup->tids[start + i]);
	}
	GenericXLogFinish(state);
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

static HnswNode
page_create_node(HnswGraph *g, const float *vec, int level, ItemPointer heaptid,
				 HnswCandidate **selected, int *nselected)
{
	HnswPageGraph *pg = (HnswPageGraph *) g;
	Size		esize = HNSW_ELEMENT_TUPLE_SIZE(g->dims);
	Size		nsize = HNSW_NEIGHBOR_TUPLE_SIZE(g->m, level);
	HnswElementTuple etup = palloc0(esize);
	HnswNeighborTuple ntup = palloc0(nsize);
	ItemPointerData etid;

	etup->type = HNSW_TUPLE_ELEMENT;
	etup->level = level;
	etup->flags = 0;
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
	for (int l = 0; l <= level; l++)
		for (int i = 0; i < nselected[l]; i++)
			HnswNodeToTid(selected[l][i].node,
						  &ntup->tids[HnswLayerOffset(g->m, l) + i]);

	place_element(pg->index, pg->meta, etup, esize, ntup, nsize, &etid);
	pfree(etup);
	pfree(ntup);
	return HnswNodeFromTid(&etid);
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
	pg->nblocks = RelationGetNumberOfBlocks(index);
	pg->cache_cxt = AllocSetContextCreate(CurrentMemoryContext,
										  "engram_hnsw vector cache",
										  ALLOCSET_DEFAULT_SIZES);
	pg->cache = hnswvc_create(pg->cache_cxt, 256, NULL);
}

/* forget cached vectors (they may be stale after this operation) */
void
hnsw_page_graph_reset(HnswPageGraph *pg)
{
	MemoryContextReset(pg->cache_cxt);
	pg->cache = hnswvc_create(pg->cache_cxt, 256, NULL);
}

