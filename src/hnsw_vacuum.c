/*-------------------------------------------------------------------------
 *
 * hnsw_vacuum.c
 *	  ambulkdelete and amvacuumcleanup.
 *
 * ambulkdelete removes dead heap TIDs from element tuples, one page at a
 * time under an exclusive lock; an element that loses its last TID is
 * marked deleted.  It stays in place and stays traversable, so concurrent
 * searches that reach it still find their way through the graph.
 *
 * amvacuumcleanup then repairs the graph: every live element whose list on
 * some layer points at a deleted element gets a new list, chosen by the
 * usual neighbour heuristic from its live neighbours and the live
 * neighbours of its deleted ones (the two-hop neighbourhood the deleted
 * element used to connect).  Lists are replaced with the same optimistic
 * compare-and-replace that inserts use, so inserts and scans go on
 * meanwhile.  Finally, if the entry point was deleted, the live element
 * with the highest level becomes the entry point.
 *
 * Before that, cleanup merges the pending list (hnsw_pending.c), and its
 * page pass hands pending pages detached long enough ago to the free space
 * map; it also notes every link (as many as fit in half of
 * maintenance_work_mem), and afterwards makes sure each such link and
 * entry point leads to an element (a damaged index fails with XX001/XX002
 * instead of being "repaired" around the damage).  Pending elements
 * inserted meanwhile are neither live nor deleted for this VACUUM: they are
 * not in the graph yet.
 *
 * With memory spaces (format 3), the page pass also notes the blocks of
 * every space's live and pending elements, and each space's directory
 * entry gets them as its list of blocks (hnsw_space_collect_begin/_end():
 * inserts during the pass add theirs), dropping blocks left empty and
 * listing again a space that fits now.
 *
 * Last, cleanup frees the slots of the deleted elements it no longer needs
 * (free_slots()): inserts put new elements there (src/README.md, "Reusing
 * the space of deleted elements").
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/generic_xlog.h"
#include "commands/vacuum.h"
#include "miscadmin.h"
#include "postmaster/autovacuum.h"
#include "storage/bufmgr.h"
#include "storage/freespace.h"
#include "storage/indexfsm.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "engram_hnsw.h"

IndexBulkDeleteResult *
hnsw_bulkdelete(IndexVacuumInfo *info, IndexBulkDeleteResult *stats,
				IndexBulkDeleteCallback callback, void *callback_state)
{
	Relation	index = info->index;
	HnswMetaInfo meta;
	BlockNumber nblocks;
	bool		marked = false;

	if (stats == NULL)
		stats = palloc0(sizeof(IndexBulkDeleteResult));

	hnsw_read_meta(index, &meta);
	nblocks = RelationGetNumberOfBlocks(index);
	for (BlockNumber blkno = HNSW_METAPAGE_BLKNO + 1; blkno < nblocks; blkno++)
	{
		Buffer		buf;
		Page		page;
		GenericXLogState *state = NULL;

		vacuum_delay_point();
		page = hnsw_pass_page(index, blkno, BUFFER_LOCK_EXCLUSIVE, info->strategy, &buf);
		if (page == NULL)
			continue;

		for (OffsetNumber off = FirstOffsetNumber; off <= PageGetMaxOffsetNumber(page); off++)
		{
			HnswElementTuple etup;
			ItemPointerData keep[HNSW_HEAPTIDS];
			int			nkeep = 0;

			if (hnsw_page_item_type(index, page, blkno, off) != HNSW_TUPLE_ELEMENT)
				continue;
			etup = hnsw_page_element(index, page, blkno, off, &meta);
			if (etup->flags & HNSW_ELEMENT_DELETED)
				continue;

			for (int t = 0; t < etup->ntids; t++)
			{
				if (callback(&etup->heaptids[t], callback_state))
					stats->tuples_removed++;
				else
					keep[nkeep++] = etup->heaptids[t];
			}
			stats->num_index_tuples += nkeep;
			if (nkeep == etup->ntids)
				continue;

			/* change the page image GenericXLog gives us */
			if (state == NULL)
			{
				state = GenericXLogStart(index);
				page = GenericXLogRegisterBuffer(state, buf, 0);
			}
			etup = hnsw_page_element(index, page, blkno, off, &meta);
			for (int t = 0; t < HNSW_HEAPTIDS; t++)
			{
				if (t < nkeep)
					etup->heaptids[t] = keep[t];
				else
					ItemPointerSetInvalid(&etup->heaptids[t]);
			}
			etup->ntids = nkeep;
			if (nkeep == 0)
			{
				etup->flags |= HNSW_ELEMENT_DELETED;
				marked = true;
			}
		}

		if (state)
			GenericXLogFinish(state);
		UnlockReleaseBuffer(buf);
	}
	/* after the marks: merges that start later drop cached deleted flags */
	if (marked)
		hnsw_bump_vacuum_gen(index);
	return stats;
}

typedef struct VacElement
{
	HnswNode	node;
	uint32		space_no;
	int			level;
} VacElement;

typedef struct VacState
{
	HnswNode   *dead;			/* deleted elements, ascending */
	int			ndead;
	VacElement *live;			/* live elements, ascending */
	int			nlive;
	VacElement	top;			/* live element of the highest level */
	VacElement *tops;			/* the same per memory space, by space_no */
	uint32		ntops;
	double		ntids;
	BlockNumber nblocks;
	BlockNumber nfree;			/* pages given to the free space map */
	/* deleted elements whose slots may be freed, ascending */
	HnswNode   *tofree;
	int			ntofree;
	int			maxtofree;
	/* elements of unmerged pending entries: their slots stay, ascending */
	HnswNode   *pendrefs;
	int			npendrefs;
	int			maxpendrefs;
	/* data pages with free slots already (re-recorded in the FSM) */
	BlockNumber *slotpages;
	int			nslotpages;
	int			maxslotpages;
	/* every element (any state) and every link, to find dangling links */
	HnswNode   *elems;
	int64		nelems;
	int64		maxelems;
	HnswNode   *links;			/* target << 32 would not fit: pairs */
	BlockNumber *link_from;
	int64		nlinks;
	int64		maxlinks;
	bool		links_dropped;	/* too many to keep in maintenance_work_mem */
	/* format 3 spaces: (space, block) of every live or pending element */
	bool		collect_blocks;
	HnswSpaceBlock *seen;
	int64		nseen;
	int64		maxseen;
} VacState;

/* order by space, then node */
static int
vac_space_cmp(const void *a, const void *b)
{
	const VacElement *x = a;
	const VacElement *y = b;

	if (x->space_no != y->space_no)
		return x->space_no < y->space_no ? -1 : 1;
	return x->node < y->node ? -1 : (x->node > y->node ? 1 : 0);
}

/* bsearch probe: any element of the space */
static int
vac_space_first(const void *a, const void *b)
{
	const VacElement *x = a;
	const VacElement *y = b;

	return x->space_no < y->space_no ? -1 : (x->space_no > y->space_no ? 1 : 0);
}

/* append x to a growing array */
#define VAC_PUSH(arr, n, max, x) \
	do { \
		if ((n) == (max)) \
		{ \
			(max) = Max((max) * 2, 64); \
			(arr) = (arr) ? repalloc_huge((arr), sizeof(*(arr)) * (max)) : \
				palloc_extended(sizeof(*(arr)) * (max), MCXT_ALLOC_HUGE); \
		} \
		(arr)[(n)++] = (x); \
	} while (0)

static inline bool
is_dead(VacState *vs, HnswNode node)
{
	return hnsw_node_find(vs->dead, vs->ndead, node) != NULL;
}

/* remember the links of a neighbour tuple, to be verified after the pass */
static void
record_links(Relation index, Page page, BlockNumber blkno, OffsetNumber off,
			 HnswMetaInfo *meta, VacState *vs)
{
	HnswNeighborTuple ntup = (HnswNeighborTuple) PageGetItem(page, PageGetItemId(page, off));

	if (ItemIdGetLength(PageGetItemId(page, off)) < offsetof(HnswNeighborTupleData, tids) ||
		ntup->level > HNSW_MAX_LEVEL)
		hnsw_corrupt(index, blkno, psprintf("neighbour list %u has an invalid header", off));
	ntup = hnsw_page_neighbors(index, page, blkno, off, meta->m, ntup->level);
	for (int i = 0; i < ntup->nslots; i++)
	{
		if (!ItemPointerIsValid(&ntup->tids[i]))
			continue;
		if (vs->nlinks == vs->maxlinks &&
			(Size) vs->maxlinks * (sizeof(HnswNode) + sizeof(BlockNumber)) * 2 >
			(Size) maintenance_work_mem * 1024)
		{
			/* out of room: the links of the rest of the pass go unverified */
			vs->links_dropped = true;
			return;
		}
		if (vs->nlinks == vs->maxlinks)
		{
			vs->maxlinks *= 2;
			vs->links = repalloc_huge(vs->links, sizeof(HnswNode) * vs->maxlinks);
			vs->link_from = repalloc_huge(vs->link_from, sizeof(BlockNumber) * vs->maxlinks);
		}
		vs->links[vs->nlinks] = HnswNodeFromTid(&ntup->tids[i]);
		vs->link_from[vs->nlinks++] = blkno;
	}
}

/*
 * The element a link (or an entry point) points at must exist: read it,
 * which raises XX001/XX002 if it does not.  A link past the end of the
 * relation names the block holding the link ("from").
 */
static void
verify_element(Relation index, HnswMetaInfo *meta, HnswNode node, BlockNumber from)
{
	ItemPointerData tid;
	BlockNumber blkno;
	Buffer		buf;
	Page		page;

	HnswNodeToTid(node, &tid);
	blkno = ItemPointerGetBlockNumber(&tid);
	if (blkno == HNSW_METAPAGE_BLKNO || blkno >= RelationGetNumberOfBlocks(index))
		hnsw_corrupt(index, from,
					 psprintf("a link points to block %u, but the index has %u blocks",
							  blkno, RelationGetNumberOfBlocks(index)));
	buf = ReadBuffer(index, blkno);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	hnsw_check_page(index, page, blkno);
	(void) hnsw_page_element(index, page, blkno, ItemPointerGetOffsetNumber(&tid), meta);
	UnlockReleaseBuffer(buf);
}

/*
 * After the pass: every link and entry point leads to an element.  Links
 * to elements the pass did not see (added behind it by concurrent inserts)
 * are read to make sure.
 */
static void
verify_links(Relation index, HnswMetaInfo *meta, VacState *vs)
{
	qsort(vs->elems, vs->nelems, sizeof(HnswNode), hnsw_node_cmp);
	for (int64 i = 0; i < vs->nlinks; i++)
	{
		if (hnsw_node_find(vs->elems, vs->nelems, vs->links[i]))
			continue;
		verify_element(index, meta, vs->links[i], vs->link_from[i]);
		vacuum_delay_point();
	}
	if (vs->links_dropped)
		elog(DEBUG1, "engram_hnsw vacuum verified the first " INT64_FORMAT " links only (maintenance_work_mem)",
			 vs->nlinks);
	if (meta->nspacekeys == 0 && ItemPointerIsValid(&meta->entry))
		verify_element(index, meta, HnswNodeFromTid(&meta->entry), HNSW_METAPAGE_BLKNO);
	else if (meta->nspacekeys > 0)
	{
		HnswSpaceInfo *spaces;
		int			nspaces = hnsw_space_list(index, &spaces);

		for (int i = 0; i < nspaces; i++)
			if (ItemPointerIsValid(&spaces[i].entry))
				verify_element(index, meta, HnswNodeFromTid(&spaces[i].entry),
							   ItemPointerGetBlockNumber(&spaces[i].tid));
	}
	pfree(vs->links);
	pfree(vs->link_from);
	vs->links = NULL;
	vs->link_from = NULL;
}

/*
 * A live element reachable from a deleted entry point, found by a search
 * that walks through deleted elements until it meets a live one (the
 * nearest to the old entry); node invalid if there is none.  The page pass
 * cannot be trusted for this: inserts running behind it may have linked
 * live elements it never saw.
 */
static VacElement
live_heir(HnswPageGraph *pg, HnswMetaInfo *meta, HnswNode from)
{
	HnswGraph  *g = &pg->graph;
	HnswSearch *s;
	VacElement	heir;

	heir.node = HNSW_INVALID_NODE;
	heir.level = -1;
	heir.space_no = 0;
	s = hnsw_search_begin(g, g->ops->vector(g, from), NULL, false);
	s->layer = 0;
	hnsw_search_add_entry(s, from);
	hnsw_search_run(s, 1);
	if (s->w.n > 0)
	{
		ItemPointerData tid;
		Buffer		buf;
		HnswElementTuple etup;

		heir.node = s->w.items[0].node;
		HnswNodeToTid(heir.node, &tid);
		buf = hnsw_read_buffer(pg, ItemPointerGetBlockNumber(&tid));
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		hnsw_check_page(pg->index, BufferGetPage(buf), ItemPointerGetBlockNumber(&tid));
		etup = hnsw_page_element(pg->index, BufferGetPage(buf), ItemPointerGetBlockNumber(&tid),
								 ItemPointerGetOffsetNumber(&tid), meta);
		heir.level = etup->level;
		heir.space_no = etup->space_no;
		UnlockReleaseBuffer(buf);
	}
	hnsw_search_end(s);
	return heir;
}

/*
 * The elements of a chain page's unmerged entries.  A merge leaves none
 * behind that point at deleted elements (VACUUM merged the list first),
 * but a crash between linking an element and marking its entry can: such
 * an element keeps its slot, or the entry would lead the next merge and
 * scans to whatever element took the slot.
 */
static void
note_pending_refs(Relation index, Page page, BlockNumber blkno, VacState *vs)
{
	for (OffsetNumber off = FirstOffsetNumber; off <= PageGetMaxOffsetNumber(page); off++)
	{
		HnswPendingTuple ptup = hnsw_page_pending(index, page, blkno, off);

		if (!(ptup->flags & HNSW_PENDING_MERGED))
			VAC_PUSH(vs->pendrefs, vs->npendrefs, vs->maxpendrefs,
					 HnswNodeFromTid(&ptup->elem));
	}
}

/* one pass over the pages: who is live, who is deleted */
/* a live or pending element of space_no lies on blkno (once per pair and page) */
static void
note_space_block(VacState *vs, uint32 space_no, BlockNumber blkno)
{
	HnswSpaceBlock sb;

	for (int64 i = vs->nseen - 1; i >= 0 && vs->seen[i].blkno == blkno; i--)
		if (vs->seen[i].space_no == space_no)
			return;
	sb.space_no = space_no;
	sb.blkno = blkno;
	VAC_PUSH(vs->seen, vs->nseen, vs->maxseen, sb);
}

static void
collect_elements(IndexVacuumInfo *info, HnswMetaInfo *meta, VacState *vs)
{
	Relation	index = info->index;
	int			maxdead = 1024;
	int			maxlive = 1024;
	uint64		tops_limit;

	memset(vs, 0, sizeof(VacState));
	vs->collect_blocks = (meta->version >= 3 && meta->nspacekeys > 0);
	vs->dead = palloc_extended(sizeof(HnswNode) * maxdead, MCXT_ALLOC_HUGE);
	vs->live = palloc_extended(sizeof(VacElement) * maxlive, MCXT_ALLOC_HUGE);
	vs->top.node = HNSW_INVALID_NODE;
	vs->top.level = -1;
	vs->nblocks = RelationGetNumberOfBlocks(index);
	tops_limit = Min((uint64) meta->dir_count + 1, (uint64) vs->nblocks * MaxIndexTuplesPerPage);
	vs->maxelems = 1024;
	vs->elems = palloc_extended(sizeof(HnswNode) * vs->maxelems, MCXT_ALLOC_HUGE);
	vs->maxlinks = 4096;
	vs->links = palloc_extended(sizeof(HnswNode) * vs->maxlinks, MCXT_ALLOC_HUGE);
	vs->link_from = palloc_extended(sizeof(BlockNumber) * vs->maxlinks, MCXT_ALLOC_HUGE);

	for (BlockNumber blkno = HNSW_METAPAGE_BLKNO + 1; blkno < vs->nblocks; blkno++)
	{
		Buffer		buf;
		Page		page;

		vacuum_delay_point();
		page = hnsw_pass_page(index, blkno, BUFFER_LOCK_SHARE, info->strategy, &buf);
		if (page == NULL)
			continue;
		if (HnswPageGetOpaque(page)->flags & HNSW_PAGE_PENDING)
		{
			/* a pending page that left its chain long enough ago is free */
			if (hnsw_page_recyclable(page))
			{
				RecordFreeIndexPage(index, blkno);
				vs->nfree++;
			}
			else if (!(HnswPageGetOpaque(page)->flags & HNSW_PAGE_DETACHED))
				note_pending_refs(index, page, blkno, vs);
			UnlockReleaseBuffer(buf);
			continue;
		}
		if (HnswPageGetOpaque(page)->nfree > 0)
			VAC_PUSH(vs->slotpages, vs->nslotpages, vs->maxslotpages, blkno);
		for (OffsetNumber off = FirstOffsetNumber; off <= PageGetMaxOffsetNumber(page); off++)
		{
			HnswElementTuple etup;
			ItemPointerData tid;
			uint8		type = hnsw_page_item_type(index, page, blkno, off);

			if (type == HNSW_TUPLE_NEIGHBORS)
			{
				record_links(index, page, blkno, off, meta, vs);
				continue;
			}
			if (type != HNSW_TUPLE_ELEMENT)
				continue;
			etup = hnsw_page_element(index, page, blkno, off, meta);
			if ((meta->nspacekeys == 0) != (etup->space_no == 0))
				hnsw_corrupt(index, blkno,
							 psprintf("element %u has an invalid memory space number %u",
									  off, etup->space_no));
			ItemPointerSet(&tid, blkno, off);
			if (vs->nelems == vs->maxelems)
			{
				vs->maxelems *= 2;
				vs->elems = repalloc_huge(vs->elems, sizeof(HnswNode) * vs->maxelems);
			}
			vs->elems[vs->nelems++] = HnswNodeFromTid(&tid);
			if (vs->collect_blocks && !(etup->flags & HNSW_ELEMENT_DELETED))
				note_space_block(vs, etup->space_no, blkno);
			if ((etup->flags & HNSW_ELEMENT_PENDING) &&
				!(etup->flags & HNSW_ELEMENT_DELETED))
			{
				/* not in the graph yet (inserted during this VACUUM) */
				vs->ntids += etup->ntids;
				continue;
			}
			/*
			 * A free slot is no repair target: an insert may take it while
			 * this VACUUM runs, and dropping the links to it would then cut
			 * the new element off (the live set above does not know it, so
			 * the reconnect pass would not relink it either).  A link left
			 * to a free slot leads to an element without neighbours, walked
			 * through and never returned, and to the new element once the
			 * slot is taken.
			 */
			if (etup->flags & HNSW_ELEMENT_FREE)
				continue;
			if (etup->flags & HNSW_ELEMENT_DELETED)
			{
				if (vs->ndead == maxdead)
				{
					maxdead *= 2;
					vs->dead = repalloc_huge(vs->dead, sizeof(HnswNode) * maxdead);
				}
				vs->dead[vs->ndead++] = HnswNodeFromTid(&tid);
				/* only a slot with its neighbour tuple beside it is reused */
				if (!(etup->flags & HNSW_ELEMENT_PENDING) &&
					ItemPointerGetBlockNumber(&etup->neighbortid) == blkno)
					VAC_PUSH(vs->tofree, vs->ntofree, vs->maxtofree, HnswNodeFromTid(&tid));
				continue;
			}
			if (vs->nlive == maxlive)
			{
				maxlive *= 2;
				vs->live = repalloc_huge(vs->live, sizeof(VacElement) * maxlive);
			}
			vs->live[vs->nlive].node = HnswNodeFromTid(&tid);
			vs->live[vs->nlive].space_no = etup->space_no;
			vs->live[vs->nlive].level = etup->level;
			if (etup->level > vs->top.level)
				vs->top = vs->live[vs->nlive];
			/*
			 * The highest element per space, for spaces the meta page knew
			 * when VACUUM began (a space created since has a fresh entry
			 * point and needs no hand-over).  The array is bounded by the
			 * directory entries the index can hold, so a corrupted count
			 * (up to UINT32_MAX) cannot make it huge or wrap around.
			 */
			if ((uint64) etup->space_no < tops_limit)
			{
				if (etup->space_no >= vs->ntops)
				{
					uint32		newn = (uint32) Min(Max((uint64) etup->space_no + 1,
														(uint64) vs->ntops * 2),
													tops_limit);

					vs->tops = vs->tops ?
						repalloc_huge(vs->tops, sizeof(VacElement) * newn) :
						palloc_extended(sizeof(VacElement) * newn, MCXT_ALLOC_HUGE);
					for (uint32 k = vs->ntops; k < newn; k++)
					{
						vs->tops[k].node = HNSW_INVALID_NODE;
						vs->tops[k].level = -1;
					}
					vs->ntops = newn;
				}
				if (etup->level > vs->tops[etup->space_no].level)
					vs->tops[etup->space_no] = vs->live[vs->nlive];
			}
			vs->nlive++;
			vs->ntids += etup->ntids;
		}
		UnlockReleaseBuffer(buf);
	}
}

/*
 * Give node a list on layer without deleted elements.  Returns whether the
 * list had to change.
 */
static bool
repair_layer(HnswGraph *g, VacState *vs, HnswNode node, int layer)
{
	int			cap = HnswLayerCapacity(g->m, layer);
	HnswNode   *old = palloc(sizeof(HnswNode) * cap);
	HnswNode   *hop = palloc(sizeof(HnswNode) * HnswLayerCapacity(g->m, 0));
	HnswNode   *pool = palloc(sizeof(HnswNode) * (cap + cap * HnswLayerCapacity(g->m, 0)));
	HnswCandidate *cands = palloc(sizeof(HnswCandidate) * (cap + cap * HnswLayerCapacity(g->m, 0)));
	HnswCandidate *chosen = palloc(sizeof(HnswCandidate) * cap);
	HnswNode   *newlist = palloc(sizeof(HnswNode) * cap);
	bool		changed = false;

	for (int attempt = 0; attempt < HNSW_LIST_RETRIES; attempt++)
	{
		int			nold = g->ops->neighbors(g, node, layer, old);
		int			npool = 0;
		int			ncands = 0;
		int			nnew;
		bool		anydead = false;
		const float *vec;

		for (int i = 0; i < nold; i++)
		{
			if (!is_dead(vs, old[i]))
			{
				pool[npool++] = old[i];
				continue;
			}
			anydead = true;
			/* the deleted element's own neighbours stand in for it */
			{
				int			nhop = g->ops->neighbors(g, old[i], layer, hop);

				for (int j = 0; j < nhop; j++)
					pool[npool++] = hop[j];
			}
		}
		if (!anydead)
			break;

		/* unique, live, not the node itself */
		qsort(pool, npool, sizeof(HnswNode), hnsw_node_cmp);
		vec = g->ops->vector(g, node);
		for (int i = 0; i < npool; i++)
		{
			if ((i > 0 && pool[i] == pool[i - 1]) || pool[i] == node || is_dead(vs, pool[i]))
				continue;
			cands[ncands].node = pool[i];
			cands[ncands].dist = g->dist(vec, g->ops->vector(g, pool[i]), g->dims);
			ncands++;
		}
		hnsw_sort_candidates(cands, ncands);
		ncands = Min(ncands, Max(g->ef_construction, cap));
		nnew = hnsw_select_neighbors(g, vec, cands, ncands, cap, true, chosen);
		for (int i = 0; i < nnew; i++)
			newlist[i] = chosen[i].node;
		if (g->ops->replace_neighbors(g, node, layer, old, nold, newlist, nnew))
		{
			changed = true;
			/* live elements the new list leaves out must not be orphaned */
			for (int i = 0; i < nold; i++)
			{
				bool		kept = is_dead(vs, old[i]);

				for (int j = 0; j < nnew && !kept; j++)
					kept = (newlist[j] == old[i]);
				for (int j = 0; j < i && !kept; j++)
					kept = (old[j] == old[i]);
				if (!kept)
					hnsw_relink_dropped(g, old[i], layer, HNSW_RELINK_DEPTH, node);
			}
			break;
		}
	}
	pfree(old);
	pfree(hop);
	pfree(pool);
	pfree(cands);
	pfree(chosen);
	pfree(newlist);
	return changed;
}

/* sorted, without the nodes of sorted out[] */
static int
remove_nodes(HnswNode *nodes, int n, const HnswNode *out, int nout)
{
	int			keep = 0;

	for (int i = 0; i < n; i++)
		if (!hnsw_node_find(out, nout, nodes[i]))
			nodes[keep++] = nodes[i];
	return keep;
}

/*
 * Free the slots of one page's deleted elements (nodes[], all on blkno):
 * flag them free, empty their lists, count them on the page, one WAL
 * record.  Returns how many it freed.
 */
static int
free_page_slots(Relation index, HnswMetaInfo *meta, BlockNumber blkno,
				const HnswNode *nodes, int n, BufferAccessStrategy strategy)
{
	Buffer		buf;
	Page		page;
	GenericXLogState *state;
	int			freed = 0;

	buf = ReadBufferExtended(index, MAIN_FORKNUM, blkno, RBM_NORMAL, strategy);
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	hnsw_check_page(index, BufferGetPage(buf), blkno);
	state = GenericXLogStart(index);
	page = GenericXLogRegisterBuffer(state, buf, 0);
	for (int i = 0; i < n; i++)
	{
		OffsetNumber off = (OffsetNumber) (nodes[i] & 0xFFFF);
		HnswElementTuple etup = hnsw_page_element(index, page, blkno, off, meta);
		HnswNeighborTuple ntup;

		/* deleted stays deleted; nobody else frees or reuses it meanwhile */
		if ((etup->flags & (HNSW_ELEMENT_DELETED | HNSW_ELEMENT_FREE | HNSW_ELEMENT_PENDING)) !=
			HNSW_ELEMENT_DELETED ||
			ItemPointerGetBlockNumber(&etup->neighbortid) != blkno)
			continue;
		ntup = hnsw_page_neighbors(index, page, blkno,
								   ItemPointerGetOffsetNumber(&etup->neighbortid),
								   meta->m, etup->level);
		for (int t = 0; t < ntup->nslots; t++)
			ItemPointerSetInvalid(&ntup->tids[t]);
		etup->flags |= HNSW_ELEMENT_FREE;
		HnswPageGetOpaque(page)->nfree++;
		freed++;
	}
	if (freed > 0)
		GenericXLogFinish(state);
	else
		GenericXLogAbort(state);
	UnlockReleaseBuffer(buf);
	return freed;
}

/*
 * Make the slots of the deleted elements this VACUUM found reusable.  By
 * now the repair pass has replaced the links to them and deleted entry
 * points have been handed over; an entry point (still) on one of them, or
 * an unmerged pending entry pointing at one, keeps it.  Links that
 * inserts added behind the repair pass may still lead to a freed slot:
 * readers take it for a deleted element without neighbours, or, once
 * reused, for the new element, and scans check that an element they
 * return is the one they saw (src/README.md).  Every page with free slots
 * goes to the free space map, where inserts look for them.
 */
static void
free_slots(IndexVacuumInfo *info, HnswMetaInfo *meta, VacState *vs)
{
	Relation	index = info->index;
	HnswNode   *keep = NULL;
	int			nkeep = 0;
	int			maxkeep = 0;
	int64		freed = 0;
	int			i = 0;

	/* the entry points as they are now */
	hnsw_read_meta(index, meta);
	if (meta->nspacekeys == 0 && ItemPointerIsValid(&meta->entry))
		VAC_PUSH(keep, nkeep, maxkeep, HnswNodeFromTid(&meta->entry));
	else if (meta->nspacekeys > 0)
	{
		HnswSpaceInfo *spaces;
		int			nspaces = hnsw_space_list(index, &spaces);

		for (int k = 0; k < nspaces; k++)
			if (ItemPointerIsValid(&spaces[k].entry))
				VAC_PUSH(keep, nkeep, maxkeep, HnswNodeFromTid(&spaces[k].entry));
	}
	for (int k = 0; k < vs->npendrefs; k++)
		VAC_PUSH(keep, nkeep, maxkeep, vs->pendrefs[k]);
	if (nkeep > 0)
		qsort(keep, nkeep, sizeof(HnswNode), hnsw_node_cmp);
	qsort(vs->tofree, vs->ntofree, sizeof(HnswNode), hnsw_node_cmp);
	vs->ntofree = remove_nodes(vs->tofree, vs->ntofree, keep, nkeep);

	while (i < vs->ntofree)
	{
		BlockNumber blkno = (BlockNumber) (vs->tofree[i] >> 16);
		int			n = 1;
		int			done;

		while (i + n < vs->ntofree && (BlockNumber) (vs->tofree[i + n] >> 16) == blkno)
			n++;
		vacuum_delay_point();
		done = free_page_slots(index, meta, blkno, vs->tofree + i, n, info->strategy);
		if (done > 0)
		{
			freed += done;
			VAC_PUSH(vs->slotpages, vs->nslotpages, vs->maxslotpages, blkno);
		}
		i += n;
	}
	/* pages of earlier VACUUMs too: an insert that took one may have left it */
	for (int k = 0; k < vs->nslotpages; k++)
		RecordPageWithFreeSpace(index, vs->slotpages[k], HNSW_FSM_SLOTS);
	if (vs->nslotpages > 0)
		IndexFreeSpaceMapVacuum(index);
	/* after the marks: backends drop their vector caches (a slot's vector changes) */
	if (freed > 0)
	{
		hnsw_bump_vacuum_gen(index);
		elog(DEBUG1, "engram_hnsw vacuum freed " INT64_FORMAT " element slots", freed);
	}
}

IndexBulkDeleteResult *
hnsw_vacuumcleanup(IndexVacuumInfo *info, IndexBulkDeleteResult *stats)
{
	Relation	index = info->index;
	HnswMetaInfo meta;
	VacState	vs;
	bool		counted = (stats != NULL);
	MemoryContext cxt;
	MemoryContext oldcxt;

	if (info->analyze_only)
	{
		/* like GIN: autovacuum's ANALYZE still merges the pending list */
		if (IsAutoVacuumWorkerProcess())
			hnsw_merge_pending(index, true);
		return stats;
	}
	if (stats == NULL)
		stats = palloc0(sizeof(IndexBulkDeleteResult));

	cxt = AllocSetContextCreate(CurrentMemoryContext, "engram_hnsw vacuum",
								ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(cxt);

	/* the pending list goes into the graph first */
	hnsw_read_meta(index, &meta);
	if (meta.version >= 2)
	{
		int64		merged = hnsw_merge_pending(index, true);

		if (merged > 0)
			elog(DEBUG1, "engram_hnsw vacuum merged " INT64_FORMAT " pending rows", merged);
		hnsw_read_meta(index, &meta);
	}
	/* format 3 spaces: lists of blocks afresh (hnsw_space.c) */
	if (meta.version >= 3 && meta.nspacekeys > 0)
		hnsw_space_collect_begin(index);
	collect_elements(info, &meta, &vs);
	verify_links(index, &meta, &vs);
	if (vs.collect_blocks)
		hnsw_space_collect_end(index, vs.seen, vs.nseen);
	if (vs.nfree > 0)
		IndexFreeSpaceMapVacuum(index);

	if (vs.ndead > 0)
	{
		HnswPageGraph pg;
		ItemPointerData entry = meta.entry;

		hnsw_page_graph_init(&pg, index, &meta);
		for (int i = 0; i < vs.nlive; i++)
		{
			for (int l = 0; l <= vs.live[i].level; l++)
				repair_layer(&pg.graph, &vs, vs.live[i].node, l);
			hnsw_page_graph_reset(&pg);
			vacuum_delay_point();
		}

		/* a deleted entry point hands over to the highest live element */
		if (meta.nspacekeys == 0 &&
			ItemPointerIsValid(&entry) && is_dead(&vs, HnswNodeFromTid(&entry)))
		{
			ItemPointerData top;

			VacElement	heir = vs.top;

			if (heir.node == HNSW_INVALID_NODE)
				heir = live_heir(&pg, &meta, HnswNodeFromTid(&entry));
			if (heir.node != HNSW_INVALID_NODE)
			{
				HnswNodeToTid(heir.node, &top);
				hnsw_update_entry(index, &top, heir.level, &entry, NULL);
			}
			else
				hnsw_update_entry(index, NULL, -1, &entry, NULL);
		}
	}

	/* memory spaces: hand over deleted entry points, flag emptied spaces */
	if (meta.nspacekeys > 0)
	{
		HnswSpaceInfo *spaces;
		int			nspaces = hnsw_space_list(index, &spaces);

		for (int i = 0; i < nspaces; i++)
		{
			HnswSpaceInfo *sp = &spaces[i];
			VacElement *top = sp->space_no < vs.ntops ? &vs.tops[sp->space_no] : NULL;
			bool		has_live = (top != NULL && top->node != HNSW_INVALID_NODE);

			if (ItemPointerIsValid(&sp->entry) && is_dead(&vs, HnswNodeFromTid(&sp->entry)))
			{
				ItemPointerData toptid;

				VacElement	heir;

				if (has_live)
					heir = *top;
				else
				{
					/*
					 * None live when the pass saw the pages, but inserts may
					 * have linked live elements behind it: look from the
					 * entry point before calling the space empty.
					 */
					HnswPageGraph pg;

					hnsw_page_graph_init(&pg, index, &meta);
					heir = live_heir(&pg, &meta, HnswNodeFromTid(&sp->entry));
				}
				if (heir.node != HNSW_INVALID_NODE)
				{
					HnswNodeToTid(heir.node, &toptid);
					hnsw_space_update_entry(index, &sp->tid, &toptid, heir.level,
											&sp->entry, false, NULL);
				}
				else
					hnsw_space_update_entry(index, &sp->tid, NULL, -1, &sp->entry, true, NULL);
			}
			else if (!ItemPointerIsValid(&sp->entry) && !has_live &&
					 !(sp->flags & HNSW_SPACE_EMPTY))
				hnsw_space_update_entry(index, &sp->tid, NULL, -1, &sp->entry, true, NULL);
		}
	}

	if (vs.ntofree > 0 || vs.nslotpages > 0)
		free_slots(info, &meta, &vs);

	/* relink live elements that pruning or deletion left unreachable */
	if (vs.nlive > 0)
	{
		HnswPageGraph pg;
		int64		fixed = 0;

		hnsw_read_meta(index, &meta);
		hnsw_page_graph_init(&pg, index, &meta);
		if (meta.nspacekeys == 0)
		{
			HnswNode   *live = palloc_extended(sizeof(HnswNode) * vs.nlive, MCXT_ALLOC_HUGE);

			for (int i = 0; i < vs.nlive; i++)
				live[i] = vs.live[i].node;
			if (ItemPointerIsValid(&meta.entry))
				fixed = hnsw_reconnect(&pg.graph, live, vs.nlive,
									   HnswNodeFromTid(&meta.entry), meta.entry_level);
		}
		else
		{
			HnswSpaceInfo *spaces;
			int			nspaces = hnsw_space_list(index, &spaces);
			VacElement *bysp = palloc_extended(sizeof(VacElement) * vs.nlive, MCXT_ALLOC_HUGE);
			HnswNode   *group = palloc_extended(sizeof(HnswNode) * vs.nlive, MCXT_ALLOC_HUGE);

			memcpy(bysp, vs.live, sizeof(VacElement) * vs.nlive);
			qsort(bysp, vs.nlive, sizeof(VacElement), vac_space_cmp);
			for (int i = 0; i < nspaces; i++)
			{
				VacElement	key;
				VacElement *first;
				int			n = 0;

				if (!ItemPointerIsValid(&spaces[i].entry))
					continue;
				key.space_no = spaces[i].space_no;
				key.node = 0;
				first = bsearch(&key, bysp, vs.nlive, sizeof(VacElement), vac_space_first);
				if (first == NULL)
					continue;
				while (first > bysp && first[-1].space_no == key.space_no)
					first--;
				while (first + n < bysp + vs.nlive && first[n].space_no == key.space_no)
				{
					group[n] = first[n].node;
					n++;
				}
				fixed += hnsw_reconnect(&pg.graph, group, n,
										HnswNodeFromTid(&spaces[i].entry),
										spaces[i].entry_level);
				vacuum_delay_point();
			}
		}
		if (fixed > 0)
			elog(DEBUG1, "engram_hnsw vacuum relinked " INT64_FORMAT " unreachable elements",
				 fixed);
	}

	if (!counted)
		stats->num_index_tuples = vs.ntids;
	stats->num_pages = RelationGetNumberOfBlocks(index);
	stats->estimated_count = false;

	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(cxt);
	return stats;
}
