/*-------------------------------------------------------------------------
 *
 * hnsw_scan.c
 *	  Ordered index scans (amgettuple).
 *
 * The first call descends greedily from the entry point to layer 0 and runs
 * the bounded layer search with ef = engram_hnsw.ef_search; rows then come
 * back nearest first.  The search state (candidate heaps, visited set)
 * lives in the scan's memory context, so when the executor keeps asking
 * (a filter threw rows away, or LIMIT > ef_search), the same search goes
 * on expanding its frontier instead of stopping: a scan ends only when the
 * executor stops it or the graph is exhausted.
 *
 * With a NULL query vector the order is undefined; the scan returns every
 * indexed row in page order.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relscan.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "engram_hnsw.h"

typedef struct HnswScanOpaqueData
{
	MemoryContext cxt;			/* everything of one scan; reset on rescan */
	bool		started;
	bool		done;
	HnswMetaInfo meta;
	HnswPageGraph pg;
	HnswSearch *search;
	float	   *query;

	/* heap TIDs of the current element, returned one by one */
	ItemPointerData tids[HNSW_HEAPTIDS];
	int			ntids;
	int			tidpos;

	/* NULL query: walk the pages */
	bool		fullscan;
	BlockNumber blkno;
	OffsetNumber offno;
} HnswScanOpaqueData;

typedef HnswScanOpaqueData *HnswScanOpaque;

IndexScanDesc
hnsw_beginscan(Relation index, int nkeys, int norderbys)
{
	IndexScanDesc scan = RelationGetIndexScan(index, nkeys, norderbys);
	HnswScanOpaque so = palloc0(sizeof(HnswScanOpaqueData));

	so->cxt = AllocSetContextCreate(CurrentMemoryContext, "engram_hnsw scan",
									ALLOCSET_DEFAULT_SIZES);
	scan->opaque = so;
	return scan;
}

void
hnsw_rescan(IndexScanDesc scan, ScanKey keys, int nkeys, ScanKey orderbys, int norderbys)
{
	HnswScanOpaque so = (HnswScanOpaque) scan->opaque;

	MemoryContextReset(so->cxt);
	so->started = false;
	so->done = false;
	so->search = NULL;
	so->query = NULL;
	so->ntids = so->tidpos = 0;
	so->fullscan = false;

	if (keys && scan->numberOfKeys > 0)
		memmove(scan->keyData, keys, scan->numberOfKeys * sizeof(ScanKeyData));
	if (orderbys && scan->numberOfOrderBys > 0)
		memmove(scan->orderByData, orderbys, scan->numberOfOrderBys * sizeof(ScanKeyData));
}

/* set up the search; returns false if there is nothing to return */
static bool
start_scan(IndexScanDesc scan)
{
	HnswScanOpaque so = (HnswScanOpaque) scan->opaque;
	Relation	index = scan->indexRelation;
	HnswGraph  *g;
	int			dims;
	bool		skip;

	hnsw_read_meta(index, &so->meta);
	if (so->meta.dims == 0 || !ItemPointerIsValid(&so->meta.entry))
		return false;			/* nothing indexed */

	if (scan->numberOfOrderBys == 0 || (scan->orderByData[0].sk_flags & SK_ISNULL))
	{
		so->fullscan = true;
		so->blkno = HNSW_METAPAGE_BLKNO + 1;
		so->offno = FirstOffsetNumber;
		return true;
	}

	so->query = hnsw_prepare_vector(index, so->meta.metric,
									scan->orderByData[0].sk_argument,
									0, &dims, &skip);
	if (dims != so->meta.dims)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg_plural("query vector has %d dimension, but index \"%s\" has %d",
							   "query vector has %d dimensions, but index \"%s\" has %d",
							   dims, dims, RelationGetRelationName(index), so->meta.dims)));

	hnsw_page_graph_init(&so->pg, index, &so->meta);
	g = &so->pg.graph;
	so->search = hnsw_search_begin(g, so->query, true);
	so->search->layer = so->meta.entry_level;
	hnsw_search_add_entry(so->search, HnswNodeFromTid(&so->meta.entry));
	for (int l = so->meta.entry_level; l > 0; l--)
	{
		if (l != so->meta.entry_level)
			hnsw_search_set_layer(so->search, l, true);
		hnsw_search_run(so->search, 1);
	}
	if (so->meta.entry_level > 0)
		hnsw_search_set_layer(so->search, 0, true);
	hnsw_search_run(so->search, hnsw_ef_search);
	return true;
}

/* load the heap TIDs of an element; false if it has none (deleted) */
static bool
load_tids(IndexScanDesc scan, HnswNode node)
{
	HnswScanOpaque so = (HnswScanOpaque) scan->opaque;
	ItemPointerData tid;
	Buffer		buf;
	Page		page;
	HnswElementTuple etup;

	HnswNodeToTid(node, &tid);
	buf = hnsw_read_buffer(&so->pg, ItemPointerGetBlockNumber(&tid));
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	hnsw_check_page(scan->indexRelation, page, ItemPointerGetBlockNumber(&tid));
	etup = hnsw_page_element(scan->indexRelation, page, ItemPointerGetBlockNumber(&tid),
							 ItemPointerGetOffsetNumber(&tid), so->meta.dims);
	so->ntids = (etup->flags & HNSW_ELEMENT_DELETED) ? 0 : etup->ntids;
	memcpy(so->tids, etup->heaptids, sizeof(ItemPointerData) * so->ntids);
	so->tidpos = 0;
	UnlockReleaseBuffer(buf);
	return so->ntids > 0;
}

/* NULL query: the next element in page order */
static bool
fullscan_next(IndexScanDesc scan)
{
	HnswScanOpaque so = (HnswScanOpaque) scan->opaque;
	Relation	index = scan->indexRelation;
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);

	while (so->blkno < nblocks)
	{
		Buffer		buf = ReadBuffer(index, so->blkno);
		Page		page;
		bool		found = false;

		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		if (!PageIsNew(page))
		{
			hnsw_check_page(index, page, so->blkno);
			for (; so->offno <= PageGetMaxOffsetNumber(page); so->offno++)
			{
				ItemId		iid = PageGetItemId(page, so->offno);
				HnswElementTuple etup;

				if (!ItemIdIsNormal(iid) ||
					((HnswElementTuple) PageGetItem(page, iid))->type != HNSW_TUPLE_ELEMENT)
					continue;
				etup = hnsw_page_element(index, page, so->blkno, so->offno, so->meta.dims);
				if ((etup->flags & HNSW_ELEMENT_DELETED) || etup->ntids == 0)
					continue;
				so->ntids = etup->ntids;
				memcpy(so->tids, etup->heaptids, sizeof(ItemPointerData) * so->ntids);
				so->tidpos = 0;
				so->offno++;
				found = true;
				break;
			}
		}
		UnlockReleaseBuffer(buf);
		if (found)
			return true;
		so->blkno++;
		so->offno = FirstOffsetNumber;
		CHECK_FOR_INTERRUPTS();
	}
	return false;
}

bool
hnsw_gettuple(IndexScanDesc scan, ScanDirection dir)
{
	HnswScanOpaque so = (HnswScanOpaque) scan->opaque;
	MemoryContext oldcxt;
	bool		found = false;

	if (so->done)
		return false;

	oldcxt = MemoryContextSwitchTo(so->cxt);
	if (!so->started)
	{
		so->started = true;
		pgstat_count_index_scan(scan->indexRelation);
		if (!start_scan(scan))
		{
			so->done = true;
			MemoryContextSwitchTo(oldcxt);
			return false;
		}
	}

	for (;;)
	{
		HnswCandidate c;

		if (so->tidpos < so->ntids)
		{
			scan->xs_heaptid = so->tids[so->tidpos++];
			scan->xs_recheck = false;
			scan->xs_recheckorderby = false;
			found = true;
			break;
		}
		if (so->fullscan)
		{
			if (!fullscan_next(scan))
				break;
			continue;
		}
		if (!hnsw_search_next(so->search, &c))
			break;
		load_tids(scan, c.node);
	}

	if (!found)
		so->done = true;
	MemoryContextSwitchTo(oldcxt);
	return found;
}

void
hnsw_endscan(IndexScanDesc scan)
{
	HnswScanOpaque so = (HnswScanOpaque) scan->opaque;

	MemoryContextDelete(so->cxt);
	pfree(so);
	scan->opaque = NULL;
}
