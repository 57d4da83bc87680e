/*-------------------------------------------------------------------------
 *
 * hnsw_insert.c
 *	  aminsert: single-row insertion.
 *
 * With fastupdate = on (the default) the row becomes a pending element
 * (hnsw_pending.c): no graph search at insert time.  With fastupdate = off,
 * or on an index of page format 1, it goes into the graph at once.  The
 * algorithm is hnsw_insert_element() (hnsw_graph.c) running on the
 * page-backed graph (hnsw_pagegraph.c): search with one buffer lock at a time,
 * store the element and its neighbour tuple in one WAL record, then link it
 * back into each neighbour's list with an optimistic compare-and-replace,
 * and finally move the entry point if the element reached a new top level.
 * No heavyweight lock is taken beyond the relation lock the executor holds.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/memutils.h"
#include "utils/rel.h"

#include "engram_hnsw.h"

bool
hnsw_insert(Relation index, Datum *values, bool *isnull, ItemPointer heap_tid,
			Relation heap, IndexUniqueCheck checkUnique, bool indexUnchanged,
			IndexInfo *indexInfo)
{
	int			attno = hnsw_vector_attno(index);
	MemoryContext cxt;
	MemoryContext oldcxt;
	HnswMetaInfo meta;
	HnswPageGraph pg;
	float	   *vec;
	int			dims;
	bool		skip;

	/* NULL vectors, and rows without a space key, are not indexed */
	if (isnull[attno - 1] || (attno > 1 && isnull[0]))
		return false;

	cxt = AllocSetContextCreate(CurrentMemoryContext, "engram_hnsw insert",
								ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(cxt);

	hnsw_read_meta(index, &meta);
	vec = hnsw_prepare_vector(index, meta.metric, values[attno - 1], meta.dims,
							  &dims, &skip);
	if (!skip)
	{
		bool		has_space = (meta.nspacekeys > 0);
		ItemPointerData space_tid;
		uint32		space_no = 0;

		if (meta.dims == 0)
		{
			/* first vector of an index created without a dimension */
			hnsw_set_dims(index, dims);
			meta.dims = dims;
		}
		ItemPointerSetInvalid(&space_tid);
		if (has_space)
		{
			HnswSpaceKey key = hnsw_space_key(index, values[0]);

			hnsw_space_find(index, &key, true, &space_tid, &space_no);
		}
		if (meta.version >= 2 && hnsw_index_fastupdate(index))
			hnsw_pending_insert(index, &meta, vec, heap_tid, has_space, space_no,
								&space_tid);
		else
		{
			hnsw_page_graph_init(&pg, index, &meta);
			if (has_space)
			{
				pg.has_space = true;
				pg.space_no = space_no;
				pg.space_tid = space_tid;
				pg.stripe = hnsw_stripe_of(&meta, space_no, true);
			}
			hnsw_page_graph_keep_vectors(&pg);
			hnsw_insert_element(&pg.graph, vec, heap_tid);
			hnsw_page_graph_reset(&pg);
		}
	}

	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(cxt);
	return false;
}
