/*-------------------------------------------------------------------------
 *
 * hnsw_pagegraph.c
 *	  The buffer-managed implementation of HnswGraphOps: neighbour lists,
 *	  entry points (meta page or space directory) and new elements, on
 *	  pages; vectors are read through hnsw_veccache.c.
 *
 * Locking: every function here holds at most one buffer content lock at a
 * time, apart from hnsw_place_element() (see hnsw_place.c).  See
 * src/README.md.
 *
 * Built on hnsw_veccache.c, hnsw_place.c, hnsw_space.c and hnsw_pages.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/generic_xlog.h"
#include "storage/bufmgr.h"
#include "utils/rel.h"

#include "engram_hnsw.h"

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
	HnswElementTuple etup = hnsw_lock_element(pg, node, &ebuf);
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
 * Does the element (on a page locked exclusively) hold exactly vec?  In
 * format 3 the code is compared first, then the vector's chunks are read:
 * vector pages after the graph page (src/README.md).
 */
static bool
same_vector(HnswPageGraph *pg, HnswElementTuple etup, BlockNumber blkno, const float *vec)
{
	int			dims = pg->graph.dims;
	Size		csize;
	unsigned char *code;
	float	   *stored;
	bool		same;

	if (pg->meta->version < 3)
		return memcmp(etup->vec, vec, sizeof(float) * dims) == 0;
	csize = hnsw_code_size(pg->meta->code_kind, dims);
	code = hnsw_encode_vector(&pg->graph, vec);
	same = memcmp(code, HnswElementCode(etup), csize) == 0;
	pfree(code);
	if (!same)
		return false;
	stored = palloc(sizeof(float) * dims);
	hnsw_read_vector(pg->index, HnswElementVectorTid(etup), dims, blkno, stored);
	same = memcmp(stored, vec, sizeof(float) * dims) == 0;
	pfree(stored);
	return same;
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
							 ItemPointerGetOffsetNumber(&tid), pg->meta);
	if (!(etup->flags & HNSW_ELEMENT_DELETED) &&
		etup->ntids < HNSW_HEAPTIDS &&
		same_vector(pg, etup, ItemPointerGetBlockNumber(&tid), vec))
	{
		etup->heaptids[etup->ntids++] = *heaptid;
		done = true;
	}
	if (done)
	{
		/* a row stored by a crashed insert may lie on a block not listed yet */
		Buffer		dbuf = InvalidBuffer;

		if (pg->has_space && pg->meta->version >= 3)
			dbuf = hnsw_space_block_buffer(pg->index, &pg->space_tid,
										   ItemPointerGetBlockNumber(&tid));
		if (BufferIsValid(dbuf))
			hnsw_space_add_block(pg->index, GenericXLogRegisterBuffer(state, dbuf, 0),
								 &pg->space_tid, ItemPointerGetBlockNumber(&tid));
		GenericXLogFinish(state);
		if (BufferIsValid(dbuf))
			UnlockReleaseBuffer(dbuf);
	}
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
	Size		esize = hnsw_element_size(pg->meta);
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
	if (pg->meta->version < 3)
		memcpy(etup->vec, vec, sizeof(float) * g->dims);
	else
	{
		unsigned char *code = hnsw_encode_vector(g, vec);

		memcpy(HnswElementCode(etup), code, hnsw_code_size(g->code_kind, g->dims));
		pfree(code);
	}

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
	hnsw_place_element(pg->index, pg->meta, pg->stripe, etup, esize, ntup, nsize,
					   pg->meta->version >= 3 ? vec : NULL, &etid, pend, tailcount,
					   pg->has_space && pg->meta->version >= 3 ? &pg->space_tid : NULL);
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
	.distance = hnsw_page_distance,
	.deleted = hnsw_page_deleted,
	.vector = hnsw_page_vector,
	.neighbors = page_neighbors,
	.replace_neighbors = page_replace_neighbors,
	.get_entry = page_get_entry,
	.set_entry = page_set_entry,
	.create_node = page_create_node,
	.add_heaptid = page_add_heaptid,
	.peek_vector = hnsw_page_peek_vector,
	.peek_bytes = 8192,
	.prefetch = hnsw_page_prefetch,
};

/*
 * Format 3: the same, and walks estimate distances from the codes in the
 * element tuples (prefetching the next one's code); exact vectors come from
 * vector pages.  Made from page_graph_ops on first use.
 */
static const HnswGraphOps *
page_graph_ops_codes(void)
{
	static HnswGraphOps ops;

	if (ops.estimate == NULL)
	{
		ops = page_graph_ops;
		ops.estimate = hnsw_page_estimate;
		ops.peek_code = hnsw_page_peek_code;
		ops.peek_ahead = 1;
	}
	return &ops;
}

void
hnsw_page_graph_init(HnswPageGraph *pg, Relation index, HnswMetaInfo *meta)
{
	memset(pg, 0, sizeof(HnswPageGraph));
	pg->meta = meta;
	pg->graph.ops = meta->version >= 3 ? page_graph_ops_codes() : &page_graph_ops;
	pg->graph.code_kind = meta->code_kind;
	pg->graph.code_seed = meta->code_seed;
	pg->graph.dims = meta->dims;
	pg->graph.m = meta->m;
	pg->graph.max_level = hnsw_max_level(meta->m);
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

