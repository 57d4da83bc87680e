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
 * With memory spaces, the scan keys on the space column choose the graphs:
 * "space = value" one, "space = ANY(array)" each listed one, no qual every
 * one.  Each graph gets its own resumable search, and a heap over the
 * searches' next results merges them in distance order.  Searching every
 * graph costs one search per space (and its memory), so queries without a
 * space qual get slower as spaces multiply.
 *
 * Format 3 searches walk on the codes' estimated distances; each search's
 * results are put in exact order before they are returned: the scan keeps
 * engram_hnsw.ef_search results (in estimate order) ahead of what it
 * returns and returns the nearest of them by exact distance, and it goes
 * on as long as the executor asks.  The codes' error bounds decide which of them need
 * their vectors read to be placed (see advance_whole()).
 *
 * Rows still in the pending list (fastupdate, see hnsw_pending.c) are read
 * first, at their exact distances, and form one more sorted stream of the
 * merge; a graph result that is also pending is skipped there.
 *
 * With a NULL query vector the order is undefined; the scan returns every
 * indexed row (of the chosen spaces) in page order.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>

#include "access/relscan.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "engram_hnsw.h"

/* format 3: an element of a space read whole, or a search's result */
typedef struct WholeItem
{
	HnswNode	node;
	float		est;
	float		low;			/* est - the code's bound: no nearer than this */
	float		high;			/* est + the bound: no farther */
	ItemPointerData vtid;		/* its vector's first chunk */
	int			ntids;			/* its heap TIDs when read */
	ItemPointerData tids[HNSW_HEAPTIDS];
} WholeItem;

/*
 * A space read whole: its elements, a heap of those not taken yet by lower
 * bound, and a heap of those taken, at exact distance (both: index into
 * items).  The second's top is returned once no element not taken yet can
 * be nearer.  A graph search's results are such a stream too, fed from the
 * search ef_search results at a time (fed): the places of returned items
 * are reused.
 */
typedef struct HnswWhole
{
	WholeItem  *items;
	int			nitems;
	int			max;			/* items allocated */
	HnswHeap	lows;
	HnswHeap	heap;
	int			peeked;			/* the item in the merge heap */
	bool		fed;			/* the results of search i, read ahead */
	bool		drained;		/* ... and the search has no more */
	int		   *free;			/* ... items returned, to reuse */
	int			nfree;
	bool		alone;			/* the scan's only stream: order is all
								 * that matters, not distances */
	bool		unresolved;		/* in the merge at a lower bound only */
	bool		step;			/* take one more exact distance */
} HnswWhole;

typedef struct HnswScanOpaqueData
{
	MemoryContext cxt;			/* everything of one scan; reset on rescan */
	bool		started;
	bool		done;
	HnswMetaInfo meta;
	HnswPageGraph pg;
	float	   *query;

	/* one search per graph (space), merged by a heap over their next rows */
	HnswSearch **searches;
	HnswCandidate *peeked;		/* each search's next row, in the heap */
	int			nsearches;
	HnswHeap	merge;			/* node = index into searches[] */

	/* format 3: the query prepared for estimates, and exact ordering */
	HnswCodeQuery *cq;
	int			window;			/* results read ahead: ef_search at the start */
	HnswWhole **whole;			/* per stream: a space read whole, a search's
								 * results read ahead, the pending rows */
	HnswWhole  *pendwhole;		/* format 3: the pending rows' stream */
	float	   *vecbuf;			/* their exact distances' vector */

	/*
	 * Pending rows (fastupdate): sorted by exact distance, returned through
	 * the merge heap as stream number nsearches.  pending_nodes (ascending)
	 * lets graph results that are also pending be skipped.
	 */
	HnswCandidate *pend;
	int			npend;
	int			pendpos;
	HnswNode   *pending_nodes;
	int			npending_nodes;

	/* the spaces chosen by the quals (space_no), for the NULL-query walk */
	uint32	   *space_nos;
	int			nspace_nos;
	bool		all_spaces;

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
	so->searches = NULL;
	so->nsearches = 0;
	so->pend = NULL;
	so->cq = NULL;
	so->whole = NULL;
	so->pendwhole = NULL;
	so->vecbuf = NULL;
	so->npend = so->pendpos = 0;
	so->pending_nodes = NULL;
	so->npending_nodes = 0;
	so->space_nos = NULL;
	so->nspace_nos = 0;
	so->all_spaces = true;
	so->query = NULL;
	so->ntids = so->tidpos = 0;
	so->fullscan = false;

	if (keys && scan->numberOfKeys > 0)
		memmove(scan->keyData, keys, scan->numberOfKeys * sizeof(ScanKeyData));
	if (orderbys && scan->numberOfOrderBys > 0)
		memmove(scan->orderByData, orderbys, scan->numberOfOrderBys * sizeof(ScanKeyData));
}

/* add one space chosen by a qual value (if the index has it) */
static void
add_space_value(IndexScanDesc scan, Datum value, HnswSpaceInfo **spaces, int *n, int *max)
{
	HnswSpaceKey key;
	Form_pg_attribute att = TupleDescAttr(RelationGetDescr(scan->indexRelation), 0);

	/* a key too long to be indexed matches no space (inserting it fails) */
	if (att->attlen == -1 &&
		VARSIZE_ANY_EXHDR(DatumGetPointer(value)) > HNSW_MAX_SPACE_KEY)
		return;
	key = hnsw_space_key(scan->indexRelation, value);
	if (*n == *max)
	{
		*max *= 2;
		*spaces = repalloc(*spaces, sizeof(HnswSpaceInfo) * *max);
	}
	if (hnsw_space_lookup(scan->indexRelation, &key, &(*spaces)[*n]))
		(*n)++;
}

static int
space_info_cmp(const void *a, const void *b)
{
	uint32		x = ((const HnswSpaceInfo *) a)->space_no;
	uint32		y = ((const HnswSpaceInfo *) b)->space_no;

	return (x > y) - (x < y);
}

/* a space listed twice is searched once: sorted by number, duplicates out */
static int
unique_spaces(HnswSpaceInfo *spaces, int n)
{
	int			u = 0;

	qsort(spaces, n, sizeof(HnswSpaceInfo), space_info_cmp);
	for (int i = 0; i < n; i++)
		if (u == 0 || spaces[u - 1].space_no != spaces[i].space_no)
			spaces[u++] = spaces[i];
	return u;
}

/* the spaces one scan key on the space column allows */
static int
key_spaces(IndexScanDesc scan, ScanKey key, HnswSpaceInfo **spaces)
{
	int			n = 0;
	int			max = 8;

	*spaces = palloc(sizeof(HnswSpaceInfo) * max);
	if (key->sk_flags & SK_ISNULL)
		return 0;				/* "= NULL" matches nothing */
	if (key->sk_flags & SK_SEARCHARRAY)
	{
		ArrayType  *arr = DatumGetArrayTypeP(key->sk_argument);
		int16		typlen;
		bool		typbyval;
		char		typalign;
		Datum	   *elems;
		bool	   *nulls;
		int			nelems;

		get_typlenbyvalalign(ARR_ELEMTYPE(arr), &typlen, &typbyval, &typalign);
		deconstruct_array(arr, ARR_ELEMTYPE(arr), typlen, typbyval, typalign,
						  &elems, &nulls, &nelems);
		for (int i = 0; i < nelems; i++)
			if (!nulls[i])
				add_space_value(scan, elems[i], spaces, &n, &max);
		return unique_spaces(*spaces, n);
	}
	add_space_value(scan, key->sk_argument, spaces, &n, &max);
	return n;
}

/*
 * The graphs to search: with spaces, those the quals on the space column
 * allow (all of them without a qual); without, the one graph.
 */
static int
choose_graphs(IndexScanDesc scan, HnswSpaceInfo **out)
{
	HnswScanOpaque so = (HnswScanOpaque) scan->opaque;
	HnswSpaceInfo *chosen = NULL;
	int			nchosen = -1;	/* -1: no qual yet */
	int			n = 0;

	if (so->meta.nspacekeys == 0)
	{
		*out = palloc(sizeof(HnswSpaceInfo));
		(*out)->space_no = 0;
		(*out)->flags = 0;
		(*out)->entry = so->meta.entry;
		(*out)->entry_level = so->meta.entry_level;
		(*out)->nblocks = -1;
		return ItemPointerIsValid(&so->meta.entry) ? 1 : 0;
	}

	for (int k = 0; k < scan->numberOfKeys; k++)
	{
		ScanKey		key = &scan->keyData[k];
		HnswSpaceInfo *these;
		int			nthese;

		if (key->sk_attno != 1)
			continue;
		nthese = key_spaces(scan, key, &these);
		if (nchosen < 0)
		{
			chosen = these;
			nchosen = nthese;
			continue;
		}
		/* several quals: a space must satisfy all of them */
		{
			int			keep = 0;

			for (int i = 0; i < nchosen; i++)
				for (int j = 0; j < nthese; j++)
					if (chosen[i].space_no == these[j].space_no)
					{
						chosen[keep++] = chosen[i];
						break;
					}
			nchosen = keep;
		}
	}
	if (nchosen < 0)
	{
		nchosen = hnsw_space_list(scan->indexRelation, &chosen);
		so->all_spaces = true;
	}
	else
		so->all_spaces = false;

	so->space_nos = palloc(sizeof(uint32) * Max(nchosen, 1));
	so->nspace_nos = 0;
	for (int i = 0; i < nchosen; i++)
	{
		so->space_nos[so->nspace_nos++] = chosen[i].space_no;
		if (ItemPointerIsValid(&chosen[i].entry))
			chosen[n++] = chosen[i];
	}
	*out = chosen;
	return n;
}

/* a row also pending (merged since we read the list) comes from there */
static inline bool
is_pending(HnswScanOpaque so, HnswNode node)
{
	return hnsw_node_find(so->pending_nodes, so->npending_nodes, node) != NULL;
}

/*
 * The next row of stream i in its own order: search i (skipping rows that
 * are also pending), or i == nsearches the pending rows.  Exact distances,
 * or in format 3 estimates.
 */
static bool
stream_next(HnswScanOpaque so, int i, HnswCandidate *c)
{
	if (i == so->nsearches)
	{
		if (so->pendpos >= so->npend)
			return false;
		*c = so->pend[so->pendpos++];
		return true;
	}
	while (hnsw_search_next(so->searches[i], c))
		if (!is_pending(so, c->node))
			return true;
	return false;
}

/* the second smallest key of a min-heap (+infinity if it has one item) */
static float
second_key(HnswHeap *h)
{
	float		k = FLT_MAX;

	if (h->n > 1)
		k = h->items[1].dist;
	if (h->n > 2 && h->items[2].dist < k)
		k = h->items[2].dist;
	return k;
}

static void
emit_whole(HnswWhole *w, HnswCandidate c, HnswCandidate *out)
{
	w->peeked = (int) c.node;
	out->node = w->items[c.node].node;
	out->dist = c.dist;
}

static void add_element(HnswScanOpaque so, HnswWhole *w, HnswNode node);

/*
 * Format 3: keep window results of search i read ahead in its stream (the
 * item returned last gives its place back first).
 */
static void
feed_whole(HnswScanOpaque so, int i)
{
	HnswWhole  *w = so->whole[i];
	HnswCandidate c;

	if (w->peeked >= 0)
	{
		w->free[w->nfree++] = w->peeked;
		w->peeked = -1;
	}
	while (!w->drained && w->lows.n + w->heap.n < so->window)
	{
		if (stream_next(so, i, &c))
			add_element(so, w, c.node);
		else
			w->drained = true;
	}
}

/*
 * Format 3: the next row of a space read whole (stream i), in exact order,
 * into the merge heap.  The estimate's bound holds for every pair with
 * int8 and fp16 codes, so no row is missed or misplaced.  A search's
 * results read ahead are ordered the same way: the nearest of the window
 * is returned.  An element's exact distance (one vector read) is taken
 * only where bounds overlap:
 * - when the scan reads this space alone, an element whose upper bound is
 *   below every other element's lower bound (and every exact distance
 *   taken) is next whatever its exact distance, and goes out at its upper
 *   bound;
 * - with other streams, the stream enters the merge at its lowest lower
 *   bound, "unresolved", and takes one more exact distance only when that
 *   bound reaches the top of the merge (w->step): a scan of many spaces
 *   reads the vectors of the spaces that can hold its nearest rows only.
 * RaBitQ's bound is probabilistic, so its elements' bounds are taken as
 * infinite (read_whole()) and all are reranked.
 */
static void
advance_whole(HnswScanOpaque so, int i)
{
	HnswWhole  *w = so->whole[i];
	HnswGraph  *g = &so->pg.graph;

	if (w->fed)
		feed_whole(so, i);
	for (;;)
	{
		HnswCandidate *r = hnsw_heap_top(&w->heap);
		HnswCandidate *u = hnsw_heap_top(&w->lows);
		HnswNode	k;

		w->unresolved = false;
		if (u == NULL || (r != NULL && r->dist <= u->dist))
		{
			/* nothing not taken can be nearer than r */
			if (r == NULL)
				return;
			emit_whole(w, hnsw_heap_pop(&w->heap), &so->peeked[i]);
			break;
		}
		k = u->node;
		if (w->alone && (r == NULL || w->items[k].high <= r->dist) &&
			w->items[k].high <= second_key(&w->lows))
		{
			HnswCandidate c = hnsw_heap_pop(&w->lows);

			c.dist = w->items[k].high;
			emit_whole(w, c, &so->peeked[i]);
			break;
		}
		if (!w->alone && !w->step)
		{
			/* wait in the merge at this lower bound */
			w->unresolved = true;
			so->peeked[i].dist = u->dist;
			break;
		}
		w->step = false;
		(void) hnsw_heap_pop(&w->lows);
		hnsw_page_read_vector(&so->pg, &w->items[k].vtid, so->vecbuf);
		hnsw_heap_push(&w->heap, k, g->dist(so->query, so->vecbuf, g->dims));
	}
	hnsw_heap_push(&so->merge, (HnswNode) i, so->peeked[i].dist);
}

/* the next row of stream i (a search, or the pending rows) into the merge heap */
static void
advance_search(HnswScanOpaque so, int i)
{
	if (so->whole[i] != NULL)
		advance_whole(so, i);
	else if (stream_next(so, i, &so->peeked[i]))
		hnsw_heap_push(&so->merge, (HnswNode) i, so->peeked[i].dist);
}

static void add_whole_item(HnswScanOpaque so, HnswWhole *w, ItemPointer tid,
						   HnswElementTuple etup);

/*
 * Format 3: read the element of node (one page, share-locked) and add it
 * to w if it is live: its code's estimate and bounds, vector TID and heap
 * TIDs, all taken at once.
 */
static void
add_element(HnswScanOpaque so, HnswWhole *w, HnswNode node)
{
	Relation	index = so->pg.index;
	ItemPointerData tid;
	Buffer		buf;
	Page		page;
	HnswElementTuple etup;

	HnswNodeToTid(node, &tid);
	buf = hnsw_read_buffer(&so->pg, ItemPointerGetBlockNumber(&tid));
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	hnsw_check_page(index, page, ItemPointerGetBlockNumber(&tid));
	etup = hnsw_page_element(index, page, ItemPointerGetBlockNumber(&tid),
							 ItemPointerGetOffsetNumber(&tid), &so->meta);
	if (!(etup->flags & HNSW_ELEMENT_DELETED) && etup->ntids > 0)
		add_whole_item(so, w, &tid, etup);
	UnlockReleaseBuffer(buf);
}

/*
 * Format 3: the pending rows as one more stream read whole (their codes'
 * bounds give their exact order, as for a space read whole): each
 * element's page is read once, for its code, vector TID and heap TIDs.
 */
static void
load_pending_whole(IndexScanDesc scan, HnswPendingItem *items, int n)
{
	HnswScanOpaque so = (HnswScanOpaque) scan->opaque;
	HnswWhole  *w = palloc0(sizeof(HnswWhole));

	w->max = Max(n, 1);
	w->items = palloc(sizeof(WholeItem) * w->max);
	hnsw_heap_init(&w->lows, w->max, false);
	for (int i = 0; i < n; i++)
	{
		so->pending_nodes[i] = items[i].node;
		add_element(so, w, items[i].node);
	}
	/* deleted pending rows stay in pending_nodes: the graph skips them too */
	qsort(so->pending_nodes, n, sizeof(HnswNode), hnsw_node_cmp);
	so->npending_nodes = n;
	hnsw_heap_init(&w->heap, w->nitems + 1, false);
	if (so->vecbuf == NULL)
		so->vecbuf = palloc(sizeof(float) * so->meta.dims);
	so->pendwhole = w;
	so->npend = w->nitems;
}

/*
 * Read the pending rows of the chosen spaces and compute their distances:
 * exact, or in format 3 estimated from their codes (one page read each;
 * the stream is reranked as a search's is).  Done before any graph
 * search: see hnsw_pending.c for why that order finds every row.
 */
static void
load_pending(IndexScanDesc scan)
{
	HnswScanOpaque so = (HnswScanOpaque) scan->opaque;
	HnswPendingItem *items;
	int			n;
	HnswGraph  *g = &so->pg.graph;

	n = hnsw_pending_collect(scan->indexRelation, &so->meta, so->space_nos,
							 so->all_spaces ? -1 : so->nspace_nos, &items);
	so->pending_nodes = palloc(sizeof(HnswNode) * Max(n, 1));
	so->npend = 0;
	if (so->cq != NULL)
	{
		load_pending_whole(scan, items, n);
		pfree(items);
		return;
	}
	so->pend = palloc(sizeof(HnswCandidate) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		bool		deleted;
		float		d = so->cq != NULL ?
			g->ops->estimate(g, items[i].node, so->cq, &deleted) :
			g->ops->distance(g, items[i].node, so->query, &deleted);

		so->pending_nodes[i] = items[i].node;
		if (deleted)
			continue;
		so->pend[so->npend].node = items[i].node;
		so->pend[so->npend].dist = d;
		so->npend++;
	}
	hnsw_sort_candidates(so->pend, so->npend);
	/* deleted pending rows stay in pending_nodes: the graph skips them too */
	qsort(so->pending_nodes, n, sizeof(HnswNode), hnsw_node_cmp);
	so->npending_nodes = n;
	so->pendpos = 0;
	pfree(items);
}

/*
 * Element etup at tid, its code's estimate and bounds, and heap TIDs, into
 * w: in the place of an item returned, else a new one.
 */
static void
add_whole_item(HnswScanOpaque so, HnswWhole *w, ItemPointer tid, HnswElementTuple etup)
{
	WholeItem  *it;
	int			k;
	float		bound;

	if (w->nfree > 0)
		k = w->free[--w->nfree];
	else
	{
		if (w->nitems == w->max)
		{
			w->max *= 2;
			w->items = repalloc_huge(w->items, sizeof(WholeItem) * w->max);
		}
		k = w->nitems++;
	}
	it = &w->items[k];
	it->node = HnswNodeFromTid(tid);
	it->vtid = *HnswElementVectorTid(etup);
	it->ntids = etup->ntids;
	memcpy(it->tids, etup->heaptids, sizeof(ItemPointerData) * etup->ntids);
	if (so->meta.code_kind != HNSW_CODE_RABITQ)
	{
		it->est = hnsw_code_estimate_bounded(so->cq, HnswElementCode(etup), &bound);
		it->low = it->est - bound;
		it->high = it->est + bound;
	}
	else
	{
		/* a probabilistic bound orders nothing: every element is reranked */
		it->est = hnsw_code_estimate(so->cq, HnswElementCode(etup));
		it->low = -FLT_MAX;
		it->high = FLT_MAX;
	}
	hnsw_heap_push(&w->lows, (HnswNode) k, it->low);
}

/* the elements of space_no on one listed block, added to w */
static void
read_whole_block(IndexScanDesc scan, HnswWhole *w, uint32 space_no, BlockNumber blkno)
{
	HnswScanOpaque so = (HnswScanOpaque) scan->opaque;
	Relation	index = scan->indexRelation;
	Size		esize = hnsw_element_size(&so->meta);
	Buffer		buf = hnsw_read_buffer(&so->pg, blkno);
	Page		page;

	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	hnsw_check_page(index, page, blkno);
	if (HnswPageGetOpaque(page)->flags != HNSW_PAGE_DATA)
		hnsw_corrupt(index, blkno, psprintf("memory space %u lists block %u, which is not a data page",
											space_no, blkno));
	for (OffsetNumber off = FirstOffsetNumber; off <= PageGetMaxOffsetNumber(page); off++)
	{
		HnswElementTuple etup;
		ItemPointerData tid;
		ItemId		iid = PageGetItemId(page, off);

		/* elements have one size: other tuples are skipped unread */
		if (!ItemIdIsNormal(iid) || ItemIdGetLength(iid) != esize ||
			hnsw_page_item_type(index, page, blkno, off) != HNSW_TUPLE_ELEMENT)
			continue;
		etup = hnsw_page_element(index, page, blkno, off, &so->meta);
		ItemPointerSet(&tid, blkno, off);
		if (etup->space_no != space_no || (etup->flags & HNSW_ELEMENT_DELETED) ||
			etup->ntids == 0 || is_pending(so, HnswNodeFromTid(&tid)))
			continue;
		add_whole_item(so, w, &tid, etup);
	}
	UnlockReleaseBuffer(buf);
}

/*
 * Format 3: read a space listed on few blocks whole (its pending rows come
 * through the pending stream, as always).
 */
static HnswWhole *
read_whole(IndexScanDesc scan, HnswSpaceInfo *sp)
{
	HnswScanOpaque so = (HnswScanOpaque) scan->opaque;
	HnswWhole  *w = palloc0(sizeof(HnswWhole));

	w->max = 8;					/* grows: most spaces read whole are small */
	w->items = palloc(sizeof(WholeItem) * w->max);
	hnsw_heap_init(&w->lows, w->max, false);
	for (int b = 0; b < sp->nblocks; b++)
	{
		read_whole_block(scan, w, sp->space_no, sp->blocks[b]);
		CHECK_FOR_INTERRUPTS();
	}
	hnsw_heap_init(&w->heap, w->nitems + 1, false);
	if (so->vecbuf == NULL)
		so->vecbuf = palloc(sizeof(float) * so->meta.dims);
	return w;
}

/* is this space read whole rather than searched (format 3)? */
static bool
reads_whole(HnswScanOpaque so, HnswSpaceInfo *sp)
{
	return so->cq != NULL && so->meta.nspacekeys > 0 &&
		sp->nblocks >= 0 && sp->nblocks <= hnsw_space_read_pages;
}

/* format 3: the stream of a graph search's results, read ahead when advanced */
static HnswWhole *
fed_whole(HnswScanOpaque so, bool alone)
{
	HnswWhole  *w = palloc0(sizeof(HnswWhole));

	w->fed = true;
	w->alone = alone;
	w->peeked = -1;
	w->max = so->window + 1;
	w->items = palloc(sizeof(WholeItem) * w->max);
	w->free = palloc(sizeof(int) * w->max);
	hnsw_heap_init(&w->lows, w->max, false);
	hnsw_heap_init(&w->heap, w->max, false);
	if (so->vecbuf == NULL)
		so->vecbuf = palloc(sizeof(float) * so->meta.dims);
	return w;
}

/* begin the graph search of stream i, from its space's entry point */
static HnswSearch *
begin_search(HnswScanOpaque so, HnswSpaceInfo *sp)
{
	HnswSearch *s = hnsw_search_begin(&so->pg.graph, so->query, so->cq, true);
	int			top = sp->entry_level;

	s->layer = top;
	hnsw_search_add_entry(s, HnswNodeFromTid(&sp->entry));
	for (int l = top; l > 0; l--)
	{
		if (l != top)
			hnsw_search_set_layer(s, l, true);
		hnsw_search_run(s, 1);
	}
	if (top > 0)
		hnsw_search_set_layer(s, 0, true);
	hnsw_search_run(s, hnsw_ef_search);
	return s;
}

/* set up the searches; returns false if there is nothing to return */
static bool
start_scan(IndexScanDesc scan)
{
	HnswScanOpaque so = (HnswScanOpaque) scan->opaque;
	Relation	index = scan->indexRelation;
	HnswGraph  *g;
	HnswSpaceInfo *graphs;
	int			ngraphs;
	int			dims;
	bool		skip;
	bool		has_pending = false;

	hnsw_read_meta(index, &so->meta);
	if (so->meta.dims == 0)
		return false;			/* nothing indexed */

	ngraphs = choose_graphs(scan, &graphs);
	for (int i = 0; i < so->meta.nstripes; i++)
		if (so->meta.pending_head[i] != InvalidBlockNumber)
			has_pending = true;
	if (ngraphs == 0 && !has_pending)
		return false;

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
	if (g->ops->estimate != NULL)
	{
		so->cq = palloc(hnsw_code_query_bytes(g->code_kind, g->dims));
		hnsw_code_query_prepare(g->code_kind, g->code_seed, g->metric, so->query,
								g->dims, so->cq);
		/* each search's results read ahead */
		so->window = hnsw_ef_search;
	}
	so->whole = palloc0(sizeof(HnswWhole *) * (ngraphs + 1));
	if (has_pending)
		load_pending(scan);
	so->searches = palloc0(sizeof(HnswSearch *) * Max(ngraphs, 1));
	so->whole[ngraphs] = so->pendwhole;
	so->peeked = palloc(sizeof(HnswCandidate) * (ngraphs + 1));
	so->nsearches = ngraphs;
	hnsw_heap_init(&so->merge, ngraphs + 1, false);
	advance_search(so, ngraphs);	/* the pending rows' stream */
	for (int i = 0; i < ngraphs; i++)
	{
		if (reads_whole(so, &graphs[i]))
		{
			so->whole[i] = read_whole(scan, &graphs[i]);
			so->whole[i]->alone = (ngraphs == 1 && so->npend == 0);
		}
		else
		{
			so->searches[i] = begin_search(so, &graphs[i]);
			if (so->cq != NULL)
				so->whole[i] = fed_whole(so, ngraphs == 1 && so->npend == 0);
		}
		advance_search(so, i);
	}
	return true;
}

/*
 * Is etup still the element the scan saw at this slot, at distance dist?
 * VACUUM may have freed the slot since and an insert reused it for a new
 * element (src/README.md, "Reusing the space of deleted elements"): that
 * one is no result of this scan, at least not at this place in its
 * order.  An element of the same space at exactly the same distance is as
 * good an answer here as the old one was.  (Formats 1 and 2: format 3
 * streams take the heap TIDs with the element's code.)
 */
static bool
same_element(HnswScanOpaque so, HnswElementTuple etup, float dist)
{
	HnswGraph  *g = &so->pg.graph;
	bool		wanted = so->all_spaces;

	for (int i = 0; i < so->nspace_nos && !wanted; i++)
		wanted = (so->space_nos[i] == etup->space_no);
	if (so->meta.nspacekeys > 0 && !wanted)
		return false;
	return g->dist(so->query, etup->vec, g->dims) == dist;
}

/*
 * Load the heap TIDs of a result c; false if it has none (deleted, or its
 * slot holds another element by now).
 */
static bool
load_tids(IndexScanDesc scan, HnswCandidate c)
{
	HnswScanOpaque so = (HnswScanOpaque) scan->opaque;
	ItemPointerData tid;
	Buffer		buf;
	Page		page;
	HnswElementTuple etup;

	HnswNodeToTid(c.node, &tid);
	buf = hnsw_read_buffer(&so->pg, ItemPointerGetBlockNumber(&tid));
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	hnsw_check_page(scan->indexRelation, page, ItemPointerGetBlockNumber(&tid));
	etup = hnsw_page_element(scan->indexRelation, page, ItemPointerGetBlockNumber(&tid),
							 ItemPointerGetOffsetNumber(&tid), &so->meta);
	so->ntids = (etup->flags & HNSW_ELEMENT_DELETED) || !same_element(so, etup, c.dist) ?
		0 : etup->ntids;
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
		Buffer		buf;
		Page		page = hnsw_pass_page(index, so->blkno, BUFFER_LOCK_SHARE, NULL, &buf);
		bool		found = false;

		if (page != NULL)
		{
			for (; so->offno <= PageGetMaxOffsetNumber(page); so->offno++)
			{
				HnswElementTuple etup;

				if (hnsw_page_item_type(index, page, so->blkno, so->offno) != HNSW_TUPLE_ELEMENT)
					continue;
				etup = hnsw_page_element(index, page, so->blkno, so->offno, &so->meta);
				if ((etup->flags & HNSW_ELEMENT_DELETED) || etup->ntids == 0)
					continue;
				if (!so->all_spaces)
				{
					bool		wanted = false;

					for (int i = 0; i < so->nspace_nos && !wanted; i++)
						wanted = (so->space_nos[i] == etup->space_no);
					if (!wanted)
						continue;
				}
				so->ntids = etup->ntids;
				memcpy(so->tids, etup->heaptids, sizeof(ItemPointerData) * so->ntids);
				so->tidpos = 0;
				so->offno++;
				found = true;
				break;
			}
			UnlockReleaseBuffer(buf);
		}
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
		if (so->merge.n == 0)
			break;
		{
			HnswCandidate top = hnsw_heap_pop(&so->merge);
			int			i = (int) top.node;

			if (so->whole[i] != NULL && so->whole[i]->unresolved)
			{
				/* a space's lower bound came first: look closer */
				so->whole[i]->step = true;
				advance_whole(so, i);
				continue;
			}
			c = so->peeked[i];
			if (so->whole[i] != NULL)
			{
				/* format 3: the heap TIDs were read with the element */
				WholeItem  *it = &so->whole[i]->items[so->whole[i]->peeked];

				so->ntids = it->ntids;
				memcpy(so->tids, it->tids, sizeof(ItemPointerData) * it->ntids);
				so->tidpos = 0;
				advance_search(so, i);
				continue;
			}
			advance_search(so, i);
		}
		load_tids(scan, c);
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
