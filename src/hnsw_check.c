/*-------------------------------------------------------------------------
 *
 * hnsw_check.c
 *	  engram_hnsw_check(regclass): structural verification of an index.
 *
 * Reads every page and every tuple, then checks the graph in memory:
 *	- pages are engram_hnsw pages, tuples lie within them and have valid
 *	  headers (hnsw_check_page, hnsw_page_element, hnsw_page_neighbors);
 *	- every element owns exactly one neighbour tuple with room for its
 *	  level (a reused slot's may have more, left empty);
 *	- lists are contiguous, point at existing elements of a high enough
 *	  level, never at the element itself, never twice, and a live element
 *	  never links to a deleted one (VACUUM repairs such links);
 *	- an element without heap TIDs is marked deleted and vice versa;
 *	- a free slot (an element VACUUM freed for reuse) is deleted, not
 *	  pending, has its neighbour tuple on its own page and empty lists, and
 *	  each data page counts its free slots right;
 *	- the entry point exists and has the level the meta page says;
 *	- the pending chains lead through pending pages of their stripe only,
 *	  every unmerged pending entry is on a chain and points at an element
 *	  of its space, and every pending element has such an entry (else no
 *	  scan or merge would ever find it).
 * Any violation is an ERROR (XX001 for pages, XX002 for the rest) naming
 * the block.  Pending elements are counted apart.  Other elements not
 * reachable from the entry point on layer 0 are counted and reported; they are not an error (a crash between storing an
 * element and linking it leaves such elements behind).
 *
 * Holds ShareLock on the table and the index, so writers wait meanwhile.
 * On a hot standby (where recovery grants nothing stronger) it takes
 * AccessShareLock: replay may then change pages while the check reads them,
 * so run it on a standby that has caught up and has no writes to replay.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/xlog.h"
#include "catalog/index.h"
#include "catalog/pg_class.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "engram_hnsw.h"

typedef struct CheckElement
{
	HnswNode	node;
	ItemPointerData neighbortid;
	uint32		space_no;
	int			level;
	bool		deleted;
	bool		pending;		/* HNSW_ELEMENT_PENDING */
	bool		free;			/* HNSW_ELEMENT_FREE: a slot for reuse */
	bool		reached;
} CheckElement;

typedef struct CheckNeighbors
{
	HnswNode	node;
	int			level;
	bool		owned;
	Size		start;			/* first slot in the flat slot array */
} CheckNeighbors;

static int
elem_cmp(const void *a, const void *b)
{
	HnswNode	x = ((const CheckElement *) a)->node;
	HnswNode	y = ((const CheckElement *) b)->node;

	return x < y ? -1 : (x > y ? 1 : 0);
}

static int
nbr_cmp(const void *a, const void *b)
{
	HnswNode	x = ((const CheckNeighbors *) a)->node;
	HnswNode	y = ((const CheckNeighbors *) b)->node;

	return x < y ? -1 : (x > y ? 1 : 0);
}

static int
uint32_cmp(const void *a, const void *b)
{
	uint32		x = *(const uint32 *) a;
	uint32		y = *(const uint32 *) b;

	return x < y ? -1 : (x > y ? 1 : 0);
}

static CheckElement *
find_element(CheckElement *elems, int64 n, HnswNode node)
{
	CheckElement key;

	key.node = node;
	return bsearch(&key, elems, n, sizeof(CheckElement), elem_cmp);
}

static int
node_cmp_check(const void *a, const void *b)
{
	return hnsw_node_cmp(a, b);
}

/*
 * Walk the pending chains from the meta page: every page on them must be a
 * pending page of that stripe, without cycles.  Returns the chain pages,
 * sorted.
 */
static BlockNumber *
check_chains(Relation index, HnswMetaInfo *meta, BlockNumber nblocks, int *nout)
{
	BlockNumber *pages = palloc(sizeof(BlockNumber) * 64);
	int			n = 0;
	int			max = 64;

	for (int stripe = 0; stripe < meta->nstripes; stripe++)
	{
		BlockNumber blkno = meta->pending_head[stripe];
		BlockNumber hops = 0;

		while (blkno != InvalidBlockNumber)
		{
			Buffer		buf;
			HnswPageOpaque opaque;

			CHECK_FOR_INTERRUPTS();
			if (blkno == HNSW_METAPAGE_BLKNO || blkno >= nblocks || ++hops > nblocks)
				hnsw_corrupt(index, HNSW_METAPAGE_BLKNO,
							 psprintf("pending chain %d is broken at block %u", stripe, blkno));
			buf = ReadBuffer(index, blkno);
			LockBuffer(buf, BUFFER_LOCK_SHARE);
			hnsw_check_page(index, BufferGetPage(buf), blkno);
			opaque = HnswPageGetOpaque(BufferGetPage(buf));
			if (opaque->flags != HNSW_PAGE_PENDING || opaque->stripe != stripe)
				hnsw_corrupt(index, blkno,
							 psprintf("pending chain %d reaches a page that is not in it", stripe));
			if (n == max)
			{
				max *= 2;
				pages = repalloc_huge(pages, sizeof(BlockNumber) * max);
			}
			pages[n++] = blkno;
			blkno = opaque->next;
			UnlockReleaseBuffer(buf);
		}
	}
	qsort(pages, n, sizeof(BlockNumber), uint32_cmp);
	for (int i = 1; i < n; i++)
		if (pages[i] == pages[i - 1])
			hnsw_corrupt(index, pages[i], "a page is on two pending chains");
	*nout = n;
	return pages;
}

static void
check_fail(Relation index, HnswNode node, const char *fmt, const char *what)
{
	ItemPointerData tid;

	HnswNodeToTid(node, &tid);
	hnsw_corrupt(index, ItemPointerGetBlockNumber(&tid),
				 psprintf(fmt, ItemPointerGetBlockNumber(&tid),
						  ItemPointerGetOffsetNumber(&tid), what));
}

PG_FUNCTION_INFO_V1(engram_hnsw_check);
Datum
engram_hnsw_check(PG_FUNCTION_ARGS)
{
	Oid			indexoid = PG_GETARG_OID(0);
	Relation	heap;
	Relation	index;
	HnswMetaInfo meta;
	BlockNumber nblocks;
	CheckElement *elems;
	CheckNeighbors *nbrs;
	HnswNode   *slots;
	int64		nelems = 0,
				maxelems = 1024,
				nnbrs = 0,
				maxnbrs = 1024;
	Size		nslots = 0,
				maxslots = 16384;
	int64		ndeleted = 0,
				nheaptids = 0,
				unreachable = 0,
				links_to_deleted = 0,
				nfree = 0;
	HnswSpaceInfo *spaces = NULL;
	int			nspaces = 0;
	int			max_level = -1;
	TupleDesc	tupdesc;
	Datum		values[7];
	bool		nulls[7] = {false};
	BlockNumber *chain;
	int			nchain = 0;
	HnswNode   *pentries;
	uint32	   *pspaces;
	int64		npentries = 0,
				maxpentries = 1024,
				npending = 0;
	MemoryContext cxt;
	MemoryContext oldcxt;
	LOCKMODE	lockmode;

	lockmode = RecoveryInProgress() ? AccessShareLock : ShareLock;
	index = hnsw_open_maintenance(indexoid, lockmode, &heap);

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	cxt = AllocSetContextCreate(CurrentMemoryContext, "engram_hnsw check",
								ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(cxt);

	hnsw_read_meta(index, &meta);
	nblocks = RelationGetNumberOfBlocks(index);
	elems = palloc_extended(sizeof(CheckElement) * maxelems, MCXT_ALLOC_HUGE);
	nbrs = palloc_extended(sizeof(CheckNeighbors) * maxnbrs, MCXT_ALLOC_HUGE);
	slots = palloc_extended(sizeof(HnswNode) * maxslots, MCXT_ALLOC_HUGE);
	pentries = palloc_extended(sizeof(HnswNode) * maxpentries, MCXT_ALLOC_HUGE);
	pspaces = palloc_extended(sizeof(uint32) * maxpentries, MCXT_ALLOC_HUGE);
	chain = check_chains(index, &meta, nblocks, &nchain);

	/* pass 1: every page and tuple */
	for (BlockNumber blkno = HNSW_METAPAGE_BLKNO + 1; blkno < nblocks; blkno++)
	{
		Buffer		buf;
		Page		page;
		int			pagefree = 0;

		CHECK_FOR_INTERRUPTS();
		page = hnsw_pass_page(index, blkno, BUFFER_LOCK_SHARE, NULL, &buf);
		if (page == NULL)
			continue;			/* added to the relation, never used */
		for (OffsetNumber off = FirstOffsetNumber; off <= PageGetMaxOffsetNumber(page); off++)
		{
			ItemId		iid = PageGetItemId(page, off);
			ItemPointerData tid;
			uint8		type;

			if (!ItemIdIsNormal(iid))
				hnsw_corrupt(index, blkno, psprintf("item %u is not a normal item", off));
			if (ItemIdGetLength(iid) < 4 ||
				ItemIdGetOffset(iid) + ItemIdGetLength(iid) > BLCKSZ)
				hnsw_corrupt(index, blkno, psprintf("item %u has an invalid line pointer", off));
			type = *(uint8 *) PageGetItem(page, iid);
			ItemPointerSet(&tid, blkno, off);

			if (type == HNSW_TUPLE_SPACE)
			{
				(void) hnsw_page_space(index, page, blkno, off);
				continue;
			}
			if (HnswPageGetOpaque(page)->flags & HNSW_PAGE_PENDING)
			{
				HnswPendingTuple ptup = hnsw_page_pending(index, page, blkno, off);

				if (ptup->flags & HNSW_PENDING_MERGED)
					continue;
				if (!bsearch(&blkno, chain, nchain, sizeof(BlockNumber), uint32_cmp))
					hnsw_corrupt(index, blkno,
								 psprintf("unmerged pending entry %u is on a page off the pending chains", off));
				if (npentries == maxpentries)
				{
					maxpentries *= 2;
					pentries = repalloc_huge(pentries, sizeof(HnswNode) * maxpentries);
					pspaces = repalloc_huge(pspaces, sizeof(uint32) * maxpentries);
				}
				pspaces[npentries] = ptup->space_no;
				pentries[npentries++] = HnswNodeFromTid(&ptup->elem);
				continue;
			}
			if (HnswPageGetOpaque(page)->flags != HNSW_PAGE_DATA)
				hnsw_corrupt(index, blkno, psprintf("item %u is not a directory entry", off));
			if (type == HNSW_TUPLE_ELEMENT)
			{
				HnswElementTuple etup = hnsw_page_element(index, page, blkno, off, meta.dims);
				CheckElement *ce;

				if (etup->ntids == 0 && !(etup->flags & HNSW_ELEMENT_DELETED))
					hnsw_corrupt(index, blkno,
								 psprintf("element %u has no heap TIDs but is not marked deleted", off));
				if (etup->ntids > 0 && (etup->flags & HNSW_ELEMENT_DELETED))
					hnsw_corrupt(index, blkno,
								 psprintf("element %u is marked deleted but has heap TIDs", off));
				for (int t = 0; t < etup->ntids; t++)
					if (!ItemPointerIsValid(&etup->heaptids[t]) ||
						ItemPointerGetOffsetNumberNoCheck(&etup->heaptids[t]) == 0)
						hnsw_corrupt(index, blkno,
									 psprintf("element %u has an invalid heap TID", off));
				for (int d = 0; d < meta.dims; d++)
					if (isnan(etup->vec[d]) || isinf(etup->vec[d]))
						hnsw_corrupt(index, blkno,
									 psprintf("element %u has a vector with NaN or infinity", off));

				if (nelems == maxelems)
				{
					maxelems *= 2;
					elems = repalloc_huge(elems, sizeof(CheckElement) * maxelems);
				}
				ce = &elems[nelems++];
				ce->node = HnswNodeFromTid(&tid);
				ce->neighbortid = etup->neighbortid;
				ce->space_no = etup->space_no;
				if (meta.nspacekeys == 0 && etup->space_no != 0)
					hnsw_corrupt(index, blkno,
								 psprintf("element %u has a memory space, but the index has none", off));
				ce->level = etup->level;
				ce->deleted = (etup->flags & HNSW_ELEMENT_DELETED) != 0;
				ce->pending = (etup->flags & HNSW_ELEMENT_PENDING) != 0;
				ce->free = (etup->flags & HNSW_ELEMENT_FREE) != 0;
				ce->reached = false;
				if (ce->free)
				{
					if (!ce->deleted || ce->pending ||
						ItemPointerGetBlockNumber(&etup->neighbortid) != blkno)
						hnsw_corrupt(index, blkno,
									 psprintf("free element slot %u is not a deleted element with its neighbour list beside it", off));
					pagefree++;
					nfree++;
				}
				if (ce->pending && !ce->deleted)
					npending++;
				if (ce->deleted)
					ndeleted++;
				nheaptids += etup->ntids;
				max_level = Max(max_level, ce->level);
			}
			else if (type == HNSW_TUPLE_NEIGHBORS)
			{
				HnswNeighborTuple ntup = (HnswNeighborTuple) PageGetItem(page, iid);
				CheckNeighbors *cn;

				if (ItemIdGetLength(iid) < offsetof(HnswNeighborTupleData, tids) ||
					ntup->level > HNSW_MAX_LEVEL)
					hnsw_corrupt(index, blkno, psprintf("neighbour list %u has an invalid header", off));
				ntup = hnsw_page_neighbors(index, page, blkno, off, meta.m, ntup->level);
				if (nnbrs == maxnbrs)
				{
					maxnbrs *= 2;
					nbrs = repalloc_huge(nbrs, sizeof(CheckNeighbors) * maxnbrs);
				}
				while (nslots + ntup->nslots > maxslots)
				{
					maxslots *= 2;
					slots = repalloc_huge(slots, sizeof(HnswNode) * maxslots);
				}
				cn = &nbrs[nnbrs++];
				cn->node = HnswNodeFromTid(&tid);
				cn->level = ntup->level;
				cn->owned = false;
				cn->start = nslots;
				for (int s = 0; s < ntup->nslots; s++)
					slots[nslots++] = ItemPointerIsValid(&ntup->tids[s]) ?
						HnswNodeFromTid(&ntup->tids[s]) : HNSW_INVALID_NODE;
			}
			else
				hnsw_corrupt(index, blkno, psprintf("item %u has unknown type %u", off, type));
		}
		if (HnswPageGetOpaque(page)->flags == HNSW_PAGE_DATA &&
			HnswPageGetOpaque(page)->nfree != pagefree)
			hnsw_corrupt(index, blkno,
						 psprintf("the page counts %u free element slots, but has %d",
								  HnswPageGetOpaque(page)->nfree, pagefree));
		UnlockReleaseBuffer(buf);
	}

	/* page order is TID order, but be sure */
	qsort(elems, nelems, sizeof(CheckElement), elem_cmp);
	qsort(nbrs, nnbrs, sizeof(CheckNeighbors), nbr_cmp);

	/* pass 2: links */
	for (int64 i = 0; i < nelems; i++)
	{
		CheckElement *ce = &elems[i];
		CheckNeighbors key;
		CheckNeighbors *cn;

		CHECK_FOR_INTERRUPTS();
		key.node = HnswNodeFromTid(&ce->neighbortid);
		cn = bsearch(&key, nbrs, nnbrs, sizeof(CheckNeighbors), nbr_cmp);
		if (cn == NULL)
			check_fail(index, ce->node, "element (%u,%u) %s", "points to a missing neighbour list");
		if (cn->owned)
			check_fail(index, ce->node, "element (%u,%u) %s", "shares its neighbour list with another element");
		if (cn->level < ce->level)
			check_fail(index, ce->node, "element (%u,%u) %s", "has a neighbour list of a lower level");
		cn->owned = true;
		/* no links above the element's level (a reused slot's extra room), none in a free slot */
		for (int s = ce->free ? 0 : HnswTotalSlots(meta.m, ce->level);
			 s < HnswTotalSlots(meta.m, cn->level); s++)
			if (slots[cn->start + s] != HNSW_INVALID_NODE)
				check_fail(index, ce->node, "element (%u,%u) %s",
						   ce->free ? "is a free slot with links" : "has links above its level");

		for (int l = 0; l <= ce->level; l++)
		{
			HnswNode   *list = slots + cn->start + HnswLayerOffset(meta.m, l);
			int			cap = HnswLayerCapacity(meta.m, l);
			bool		ended = false;

			for (int s = 0; s < cap; s++)
			{
				CheckElement *target;

				if (list[s] == HNSW_INVALID_NODE)
				{
					ended = true;
					continue;
				}
				if (ended)
					check_fail(index, ce->node, "element (%u,%u) %s", "has a gap in a neighbour list");
				if (list[s] == ce->node)
					check_fail(index, ce->node, "element (%u,%u) %s", "links to itself");
				for (int t = 0; t < s; t++)
					if (list[t] == list[s])
						check_fail(index, ce->node, "element (%u,%u) %s", "links to one element twice");
				target = find_element(elems, nelems, list[s]);
				if (target == NULL)
					hnsw_corrupt(index, (BlockNumber) (list[s] >> 16),
								 psprintf("element (%u,%u) links to (%u,%u), which is not an element",
										  (BlockNumber) (ce->node >> 16),
										  (OffsetNumber) (ce->node & 0xFFFF),
										  (BlockNumber) (list[s] >> 16),
										  (OffsetNumber) (list[s] & 0xFFFF)));
				if (target->level < l)
					check_fail(index, ce->node, "element (%u,%u) %s", "links to an element below the layer");
				if (target->deleted && !ce->deleted)
					links_to_deleted++;
				if (target->space_no != ce->space_no)
					check_fail(index, ce->node, "element (%u,%u) %s", "links to an element of another memory space");
			}
		}
	}
	/* pending entries lead to elements of their space; pending elements have one */
	for (int64 i = 0; i < npentries; i++)
	{
		CheckElement *target = find_element(elems, nelems, pentries[i]);

		if (target == NULL)
			hnsw_corrupt(index, (BlockNumber) (pentries[i] >> 16),
						 psprintf("a pending entry points to (%u,%u), which is not an element",
								  (BlockNumber) (pentries[i] >> 16),
								  (OffsetNumber) (pentries[i] & 0xFFFF)));
		if (target->free)
			check_fail(index, pentries[i], "pending entry for (%u,%u) %s",
					   "points at a free element slot");
		if (target->space_no != pspaces[i])
			check_fail(index, pentries[i], "pending element (%u,%u) %s",
					   "belongs to another memory space than its pending entry");
	}
	qsort(pentries, npentries, sizeof(HnswNode), node_cmp_check);
	for (int64 i = 0; i < nelems; i++)
		if (elems[i].pending && !elems[i].deleted &&
			!bsearch(&elems[i].node, pentries, npentries, sizeof(HnswNode), node_cmp_check))
			check_fail(index, elems[i].node, "pending element (%u,%u) %s",
					   "has no unmerged pending entry");

	for (int64 i = 0; i < nnbrs; i++)
		if (!nbrs[i].owned)
			check_fail(index, nbrs[i].node, "neighbour list (%u,%u) %s", "belongs to no element");

	/* entry points: the meta page's, or one per memory space */
	if (meta.nspacekeys > 0)
		nspaces = hnsw_space_list(index, &spaces);
	else
	{
		spaces = palloc(sizeof(HnswSpaceInfo));
		spaces[0].space_no = 0;
		spaces[0].flags = 0;
		spaces[0].entry = meta.entry;
		spaces[0].entry_level = meta.entry_level;
		ItemPointerSet(&spaces[0].tid, HNSW_METAPAGE_BLKNO, 0);
		nspaces = 1;
	}
	if (meta.nspacekeys > 0)
	{
		/* every element's space is in the directory, once */
		uint32	   *nos = palloc(sizeof(uint32) * Max(nspaces, 1));

		for (int a = 0; a < nspaces; a++)
			nos[a] = spaces[a].space_no;
		qsort(nos, nspaces, sizeof(uint32), uint32_cmp);
		for (int a = 1; a < nspaces; a++)
			if (nos[a] == nos[a - 1])
				hnsw_corrupt(index, HNSW_METAPAGE_BLKNO,
							 psprintf("memory space %u has two directory entries", nos[a]));
		for (int64 i = 0; i < nelems; i++)
			if (!bsearch(&elems[i].space_no, nos, nspaces, sizeof(uint32), uint32_cmp))
				check_fail(index, elems[i].node, "element (%u,%u) %s",
						   "belongs to a memory space missing from the directory");
		pfree(nos);
	}
	for (int a = 0; a < nspaces; a++)
	{
		CheckElement *entry;
		int64	   *queue;
		int64		head = 0,
					tail = 0;
		BlockNumber where = ItemPointerGetBlockNumber(&spaces[a].tid);

		if (!ItemPointerIsValid(&spaces[a].entry))
			continue;
		entry = find_element(elems, nelems, HnswNodeFromTid(&spaces[a].entry));
		if (entry == NULL)
			hnsw_corrupt(index, where, "an entry point is not an element");
		if (entry->level != spaces[a].entry_level)
			hnsw_corrupt(index, where,
						 psprintf("an entry point has level %d, the index says %d",
								  entry->level, spaces[a].entry_level));
		if (entry->space_no != spaces[a].space_no)
			hnsw_corrupt(index, where, "an entry point belongs to another memory space");

		/* reachability on layer 0, breadth first */
		queue = palloc_extended(sizeof(int64) * Max(nelems, 1), MCXT_ALLOC_HUGE);
		entry->reached = true;
		queue[tail++] = entry - elems;
		while (head < tail)
		{
			CheckElement *ce = &elems[queue[head++]];
			CheckNeighbors key;
			CheckNeighbors *cn;
			HnswNode   *list;

			key.node = HnswNodeFromTid(&ce->neighbortid);
			cn = bsearch(&key, nbrs, nnbrs, sizeof(CheckNeighbors), nbr_cmp);
			list = slots + cn->start;
			for (int s = 0; s < HnswLayerCapacity(meta.m, 0) && list[s] != HNSW_INVALID_NODE; s++)
			{
				CheckElement *target = find_element(elems, nelems, list[s]);

				if (!target->reached)
				{
					target->reached = true;
					queue[tail++] = target - elems;
				}
			}
		}
		pfree(queue);
	}
	if (meta.nspacekeys == 0 && !ItemPointerIsValid(&meta.entry) && nelems - ndeleted - npending > 0)
		hnsw_corrupt(index, HNSW_METAPAGE_BLKNO, "the index has live elements but no entry point");

	if (links_to_deleted > 0)
		ereport(NOTICE,
				(errmsg("engram_hnsw index \"%s\" has " INT64_FORMAT " links to deleted elements",
						RelationGetRelationName(index), links_to_deleted),
				 errdetail("Inserts that ran during VACUUM, or a VACUUM that was interrupted, leave such links behind; searches walk through them."),
				 errhint("The next VACUUM repairs them.")));

	for (int64 i = 0; i < nelems; i++)
		if (!elems[i].deleted && !elems[i].reached && !elems[i].pending)
			unreachable++;
	if (unreachable > 0 && message_level_is_interesting(DEBUG1))
	{
		/* for whoever hunts the cause: who the unreachable ones are */
		int		   *indeg = palloc_extended(sizeof(int) * Max(nelems, 1), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
		int			shown = 0;

		for (int64 i = 0; i < nelems; i++)
		{
			CheckNeighbors key;
			CheckNeighbors *cn;

			key.node = HnswNodeFromTid(&elems[i].neighbortid);
			cn = bsearch(&key, nbrs, nnbrs, sizeof(CheckNeighbors), nbr_cmp);
			if (cn == NULL)
				continue;
			for (int k = 0; k < HnswLayerCapacity(meta.m, 0) &&
				 slots[cn->start + k] != HNSW_INVALID_NODE; k++)
				indeg[find_element(elems, nelems, slots[cn->start + k]) - elems]++;
		}
		for (int64 i = 0; i < nelems && shown < 20; i++)
		{
			ItemPointerData tid;

			if (elems[i].deleted || elems[i].reached || elems[i].pending)
				continue;
			HnswNodeToTid(elems[i].node, &tid);
			elog(DEBUG1, "engram_hnsw check: unreachable element (%u,%u), level %d, linked to from %d element(s) on layer 0",
				 ItemPointerGetBlockNumber(&tid), ItemPointerGetOffsetNumber(&tid),
				 elems[i].level, indeg[i]);
			shown++;
		}
		pfree(indeg);
	}
	if (nfree > 0)
		elog(DEBUG1, "engram_hnsw check: " INT64_FORMAT " of the " INT64_FORMAT " deleted elements are free slots",
			 nfree, ndeleted);
	if (unreachable > 0)
		ereport(NOTICE,
				(errmsg("engram_hnsw index \"%s\" has " INT64_FORMAT " elements not reachable from its entry point",
						RelationGetRelationName(index), unreachable)));

	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(cxt);

	values[0] = Int64GetDatum((int64) nblocks);
	values[1] = Int64GetDatum(nelems);
	values[2] = Int64GetDatum(ndeleted);
	values[3] = Int64GetDatum(nheaptids);
	values[4] = Int32GetDatum(max_level);
	values[5] = Int64GetDatum(unreachable);
	values[6] = Int64GetDatum(npending);

	hnsw_close_maintenance(index, heap, lockmode);

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
