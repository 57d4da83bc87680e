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
 *	  pending, has its neighbour tuple on its own page and empty lists, no
 *	  unmerged pending entry points at it, and each data page counts its
 *	  free slots right;
 *	- the entry point exists and has the level the meta page says;
 *	- the pending chains lead through pending pages of their stripe only,
 *	  every unmerged pending entry is on a chain and points at an element
 *	  of its space, and every pending element has such an entry (else no
 *	  scan or merge would ever find it).
 * Any violation is an ERROR (XX001 for pages, XX002 for the rest) naming
 * the block.  Pending elements are counted apart.  Other elements not
 * reachable from the entry point on layer 0 are counted and reported; they
 * are not an error (a crash between storing an element and linking it
 * leaves such elements behind).
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

/*
 * What the passes collect: the elements, the neighbour lists (their slots
 * in one flat array), the unmerged pending entries and the counts the
 * function returns.
 */
typedef struct CheckState
{
	Relation	index;
	HnswMetaInfo meta;
	BlockNumber nblocks;
	BlockNumber *chain;			/* pending chain pages, sorted */
	int			nchain;
	CheckElement *elems;
	int64		nelems;
	int64		maxelems;
	CheckNeighbors *nbrs;
	int64		nnbrs;
	int64		maxnbrs;
	HnswNode   *slots;
	Size		nslots;
	Size		maxslots;
	HnswNode   *pentries;		/* unmerged pending entries: the element */
	uint32	   *pspaces;		/* ... and the entry's space */
	int64		npentries;
	int64		maxpentries;
	int64		ndeleted;
	int64		nheaptids;
	int64		npending;
	int64		unreachable;
	int64		links_to_deleted;
	int64		nfree;			/* free slots */
	int			pagefree;		/* ... on the page being read */
	int			max_level;
	int64		nchunks;		/* format 3: vector chunks */
	HnswGraph	graph;			/* format 3: what encoding a vector needs */
} CheckState;

static void
check_state_init(CheckState *st, Relation index)
{
	memset(st, 0, sizeof(CheckState));
	st->index = index;
	hnsw_read_meta(index, &st->meta);
	st->graph.dims = st->meta.dims;
	st->graph.metric = st->meta.metric;
	st->graph.code_kind = st->meta.code_kind;
	st->graph.code_seed = st->meta.code_seed;
	st->nblocks = RelationGetNumberOfBlocks(index);
	st->maxelems = st->maxnbrs = st->maxpentries = 1024;
	st->maxslots = 16384;
	st->max_level = -1;
	st->elems = palloc_extended(sizeof(CheckElement) * st->maxelems, MCXT_ALLOC_HUGE);
	st->nbrs = palloc_extended(sizeof(CheckNeighbors) * st->maxnbrs, MCXT_ALLOC_HUGE);
	st->slots = palloc_extended(sizeof(HnswNode) * st->maxslots, MCXT_ALLOC_HUGE);
	st->pentries = palloc_extended(sizeof(HnswNode) * st->maxpentries, MCXT_ALLOC_HUGE);
	st->pspaces = palloc_extended(sizeof(uint32) * st->maxpentries, MCXT_ALLOC_HUGE);
	st->chain = check_chains(index, &st->meta, st->nblocks, &st->nchain);
}

/* the neighbour list an element points at, or NULL */
static CheckNeighbors *
find_neighbors(CheckState *st, CheckElement *ce)
{
	CheckNeighbors key;

	key.node = HnswNodeFromTid(&ce->neighbortid);
	return bsearch(&key, st->nbrs, st->nnbrs, sizeof(CheckNeighbors), nbr_cmp);
}

/* pass 1, a pending page's item: an unmerged entry must be on a chain */
static void
collect_pending_entry(CheckState *st, Page page, BlockNumber blkno, OffsetNumber off)
{
	HnswPendingTuple ptup = hnsw_page_pending(st->index, page, blkno, off);

	if (ptup->flags & HNSW_PENDING_MERGED)
		return;
	if (!bsearch(&blkno, st->chain, st->nchain, sizeof(BlockNumber), uint32_cmp))
		hnsw_corrupt(st->index, blkno,
					 psprintf("unmerged pending entry %u is on a page off the pending chains", off));
	if (st->npentries == st->maxpentries)
	{
		st->maxpentries *= 2;
		st->pentries = repalloc_huge(st->pentries, sizeof(HnswNode) * st->maxpentries);
		st->pspaces = repalloc_huge(st->pspaces, sizeof(uint32) * st->maxpentries);
	}
	st->pspaces[st->npentries] = ptup->space_no;
	st->pentries[st->npentries++] = HnswNodeFromTid(&ptup->elem);
}

/*
 * An element's vector: finite, and in format 3 a valid chain of chunks
 * whose vector encodes to the element's code (the graph page is held:
 * vector pages after graph pages).  A free slot's code is not checked: an
 * insert that crashed while taking it over may have left the new vector.
 */
static void
check_vector(CheckState *st, HnswElementTuple etup, BlockNumber blkno, OffsetNumber off)
{
	int			dims = st->meta.dims;
	const float *vec = etup->vec;
	float	   *buf = NULL;

	if (st->meta.version >= 3)
	{
		buf = palloc(sizeof(float) * Max(dims, 1));
		hnsw_read_vector(st->index, HnswElementVectorTid(etup), dims, blkno, buf);
		vec = buf;
	}
	for (int d = 0; d < dims; d++)
		if (isnan(vec[d]) || isinf(vec[d]))
			hnsw_corrupt(st->index, blkno,
						 psprintf("element %u has a vector with NaN or infinity", off));
	if (buf != NULL && !(etup->flags & HNSW_ELEMENT_FREE))
	{
		unsigned char *code = hnsw_encode_vector(&st->graph, vec);

		if (memcmp(code, HnswElementCode(etup), hnsw_code_size(st->meta.code_kind, dims)) != 0)
			hnsw_corrupt(st->index, blkno,
						 psprintf("element %u has a code that does not match its vector", off));
		pfree(code);
	}
	if (buf != NULL)
		pfree(buf);
}

/* pass 1, a vector chunk: its header (chains are checked from elements) */
static void
collect_chunk(CheckState *st, Page page, BlockNumber blkno, OffsetNumber off)
{
	(void) hnsw_page_chunk(st->index, page, blkno, off, st->meta.dims);
	st->nchunks++;
}

/* pass 1, an element tuple: its flags, heap TIDs and vector */
static void
collect_element(CheckState *st, Page page, BlockNumber blkno, OffsetNumber off)
{
	Relation	index = st->index;
	HnswElementTuple etup = hnsw_page_element(index, page, blkno, off, &st->meta);
	ItemPointerData tid;
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
	check_vector(st, etup, blkno, off);

	if (st->nelems == st->maxelems)
	{
		st->maxelems *= 2;
		st->elems = repalloc_huge(st->elems, sizeof(CheckElement) * st->maxelems);
	}
	ce = &st->elems[st->nelems++];
	ItemPointerSet(&tid, blkno, off);
	ce->node = HnswNodeFromTid(&tid);
	ce->neighbortid = etup->neighbortid;
	ce->space_no = etup->space_no;
	if (st->meta.nspacekeys == 0 && etup->space_no != 0)
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
		st->pagefree++;
		st->nfree++;
	}
	if (ce->pending && !ce->deleted)
		st->npending++;
	if (ce->deleted)
		st->ndeleted++;
	st->nheaptids += etup->ntids;
	st->max_level = Max(st->max_level, ce->level);
}

/* pass 1, a neighbour tuple: its header; its slots go to the flat array */
static void
collect_neighbors(CheckState *st, Page page, BlockNumber blkno, OffsetNumber off)
{
	ItemId		iid = PageGetItemId(page, off);
	HnswNeighborTuple ntup = (HnswNeighborTuple) PageGetItem(page, iid);
	ItemPointerData tid;
	CheckNeighbors *cn;

	if (ItemIdGetLength(iid) < offsetof(HnswNeighborTupleData, tids) ||
		ntup->level > HNSW_MAX_LEVEL)
		hnsw_corrupt(st->index, blkno, psprintf("neighbour list %u has an invalid header", off));
	ntup = hnsw_page_neighbors(st->index, page, blkno, off, st->meta.m, ntup->level);
	if (st->nnbrs == st->maxnbrs)
	{
		st->maxnbrs *= 2;
		st->nbrs = repalloc_huge(st->nbrs, sizeof(CheckNeighbors) * st->maxnbrs);
	}
	while (st->nslots + ntup->nslots > st->maxslots)
	{
		st->maxslots *= 2;
		st->slots = repalloc_huge(st->slots, sizeof(HnswNode) * st->maxslots);
	}
	cn = &st->nbrs[st->nnbrs++];
	ItemPointerSet(&tid, blkno, off);
	cn->node = HnswNodeFromTid(&tid);
	cn->level = ntup->level;
	cn->owned = false;
	cn->start = st->nslots;
	for (int s = 0; s < ntup->nslots; s++)
		st->slots[st->nslots++] = ItemPointerIsValid(&ntup->tids[s]) ?
			HnswNodeFromTid(&ntup->tids[s]) : HNSW_INVALID_NODE;
}

/* pass 1, one item of a page: its line pointer, then by page and tuple type */
static void
collect_item(CheckState *st, Page page, BlockNumber blkno, OffsetNumber off)
{
	Relation	index = st->index;
	ItemId		iid = PageGetItemId(page, off);
	uint8		type;

	if (!ItemIdIsNormal(iid))
		hnsw_corrupt(index, blkno, psprintf("item %u is not a normal item", off));
	if (ItemIdGetLength(iid) < 4 ||
		ItemIdGetOffset(iid) + ItemIdGetLength(iid) > BLCKSZ)
		hnsw_corrupt(index, blkno, psprintf("item %u has an invalid line pointer", off));
	type = *(uint8 *) PageGetItem(page, iid);

	if (type == HNSW_TUPLE_SPACE)
		(void) hnsw_page_space(index, page, blkno, off);
	else if (HnswPageGetOpaque(page)->flags & HNSW_PAGE_PENDING)
		collect_pending_entry(st, page, blkno, off);
	else if (HnswPageGetOpaque(page)->flags == HNSW_PAGE_VECTOR)
		collect_chunk(st, page, blkno, off);
	else if (HnswPageGetOpaque(page)->flags != HNSW_PAGE_DATA)
		hnsw_corrupt(index, blkno, psprintf("item %u is not a directory entry", off));
	else if (type == HNSW_TUPLE_ELEMENT)
		collect_element(st, page, blkno, off);
	else if (type == HNSW_TUPLE_NEIGHBORS)
		collect_neighbors(st, page, blkno, off);
	else
		hnsw_corrupt(index, blkno, psprintf("item %u has unknown type %u", off, type));
}

/* pass 1: every page and tuple, collected in TID order */
static void
check_pages(CheckState *st)
{
	for (BlockNumber blkno = HNSW_METAPAGE_BLKNO + 1; blkno < st->nblocks; blkno++)
	{
		Buffer		buf;
		Page		page;

		CHECK_FOR_INTERRUPTS();
		page = hnsw_pass_page(st->index, blkno, BUFFER_LOCK_SHARE, NULL, &buf);
		if (page == NULL)
			continue;			/* added to the relation, never used */
		st->pagefree = 0;
		for (OffsetNumber off = FirstOffsetNumber; off <= PageGetMaxOffsetNumber(page); off++)
			collect_item(st, page, blkno, off);
		if (HnswPageGetOpaque(page)->flags == HNSW_PAGE_DATA &&
			HnswPageGetOpaque(page)->nfree != st->pagefree)
			hnsw_corrupt(st->index, blkno,
						 psprintf("the page counts %u free element slots, but has %d",
								  HnswPageGetOpaque(page)->nfree, st->pagefree));
		UnlockReleaseBuffer(buf);
	}

	/* page order is TID order, but be sure */
	qsort(st->elems, st->nelems, sizeof(CheckElement), elem_cmp);
	qsort(st->nbrs, st->nnbrs, sizeof(CheckNeighbors), nbr_cmp);
}

/* pass 2, one layer's list of an element */
static void
check_list(CheckState *st, CheckElement *ce, HnswNode *list, int layer)
{
	Relation	index = st->index;
	int			cap = HnswLayerCapacity(st->meta.m, layer);
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
		target = find_element(st->elems, st->nelems, list[s]);
		if (target == NULL)
			hnsw_corrupt(index, (BlockNumber) (list[s] >> 16),
						 psprintf("element (%u,%u) links to (%u,%u), which is not an element",
								  (BlockNumber) (ce->node >> 16),
								  (OffsetNumber) (ce->node & 0xFFFF),
								  (BlockNumber) (list[s] >> 16),
								  (OffsetNumber) (list[s] & 0xFFFF)));
		if (target->level < layer)
			check_fail(index, ce->node, "element (%u,%u) %s", "links to an element below the layer");
		if (target->deleted && !ce->deleted)
			st->links_to_deleted++;
		if (target->space_no != ce->space_no)
			check_fail(index, ce->node, "element (%u,%u) %s", "links to an element of another memory space");
	}
}

/* pass 2: each element owns one list of its level; the lists' links */
static void
check_links(CheckState *st)
{
	for (int64 i = 0; i < st->nelems; i++)
	{
		CheckElement *ce = &st->elems[i];
		CheckNeighbors *cn;

		CHECK_FOR_INTERRUPTS();
		cn = find_neighbors(st, ce);
		if (cn == NULL)
			check_fail(st->index, ce->node, "element (%u,%u) %s", "points to a missing neighbour list");
		if (cn->owned)
			check_fail(st->index, ce->node, "element (%u,%u) %s", "shares its neighbour list with another element");
		if (cn->level < ce->level)
			check_fail(st->index, ce->node, "element (%u,%u) %s", "has a neighbour list of a lower level");
		cn->owned = true;
		/* no links above the element's level (a reused slot's extra room), none in a free slot */
		for (int s = ce->free ? 0 : HnswTotalSlots(st->meta.m, ce->level);
			 s < HnswTotalSlots(st->meta.m, cn->level); s++)
			if (st->slots[cn->start + s] != HNSW_INVALID_NODE)
				check_fail(st->index, ce->node, "element (%u,%u) %s",
						   ce->free ? "is a free slot with links" : "has links above its level");

		for (int l = 0; l <= ce->level; l++)
			check_list(st, ce, st->slots + cn->start + HnswLayerOffset(st->meta.m, l), l);
	}
}

/*
 * Pending entries lead to elements of their space; pending elements have
 * one.  Then: every neighbour list belongs to an element.
 */
static void
check_pending_and_lists(CheckState *st)
{
	Relation	index = st->index;

	for (int64 i = 0; i < st->npentries; i++)
	{
		HnswNode	node = st->pentries[i];
		CheckElement *target = find_element(st->elems, st->nelems, node);

		if (target == NULL)
			hnsw_corrupt(index, (BlockNumber) (node >> 16),
						 psprintf("a pending entry points to (%u,%u), which is not an element",
								  (BlockNumber) (node >> 16),
								  (OffsetNumber) (node & 0xFFFF)));
		if (target->free)
			check_fail(index, node, "pending entry for (%u,%u) %s",
					   "points at a free element slot");
		if (target->space_no != st->pspaces[i])
			check_fail(index, node, "pending element (%u,%u) %s",
					   "belongs to another memory space than its pending entry");
	}
	qsort(st->pentries, st->npentries, sizeof(HnswNode), node_cmp_check);
	for (int64 i = 0; i < st->nelems; i++)
		if (st->elems[i].pending && !st->elems[i].deleted &&
			!bsearch(&st->elems[i].node, st->pentries, st->npentries, sizeof(HnswNode),
					 node_cmp_check))
			check_fail(index, st->elems[i].node, "pending element (%u,%u) %s",
					   "has no unmerged pending entry");

	for (int64 i = 0; i < st->nnbrs; i++)
		if (!st->nbrs[i].owned)
			check_fail(index, st->nbrs[i].node, "neighbour list (%u,%u) %s", "belongs to no element");
}

/* the entry points: the meta page's, or the space directory's entries */
static HnswSpaceInfo *
check_entry_list(CheckState *st, int *nspaces)
{
	HnswSpaceInfo *spaces;
	uint32	   *nos;

	if (st->meta.nspacekeys == 0)
	{
		spaces = palloc(sizeof(HnswSpaceInfo));
		spaces[0].space_no = 0;
		spaces[0].flags = 0;
		spaces[0].entry = st->meta.entry;
		spaces[0].entry_level = st->meta.entry_level;
		ItemPointerSet(&spaces[0].tid, HNSW_METAPAGE_BLKNO, 0);
		*nspaces = 1;
		return spaces;
	}
	*nspaces = hnsw_space_list(st->index, &spaces);

	/* every element's space is in the directory, once */
	nos = palloc(sizeof(uint32) * Max(*nspaces, 1));
	for (int a = 0; a < *nspaces; a++)
		nos[a] = spaces[a].space_no;
	qsort(nos, *nspaces, sizeof(uint32), uint32_cmp);
	for (int a = 1; a < *nspaces; a++)
		if (nos[a] == nos[a - 1])
			hnsw_corrupt(st->index, HNSW_METAPAGE_BLKNO,
						 psprintf("memory space %u has two directory entries", nos[a]));
	for (int64 i = 0; i < st->nelems; i++)
		if (!bsearch(&st->elems[i].space_no, nos, *nspaces, sizeof(uint32), uint32_cmp))
			check_fail(st->index, st->elems[i].node, "element (%u,%u) %s",
					   "belongs to a memory space missing from the directory");
	pfree(nos);
	return spaces;
}

/* mark what layer 0 reaches from entry, breadth first */
static void
mark_reached(CheckState *st, CheckElement *entry)
{
	int64	   *queue = palloc_extended(sizeof(int64) * Max(st->nelems, 1), MCXT_ALLOC_HUGE);
	int64		head = 0,
				tail = 0;

	entry->reached = true;
	queue[tail++] = entry - st->elems;
	while (head < tail)
	{
		CheckElement *ce = &st->elems[queue[head++]];
		HnswNode   *list = st->slots + find_neighbors(st, ce)->start;

		for (int s = 0; s < HnswLayerCapacity(st->meta.m, 0) && list[s] != HNSW_INVALID_NODE; s++)
		{
			CheckElement *target = find_element(st->elems, st->nelems, list[s]);

			if (!target->reached)
			{
				target->reached = true;
				queue[tail++] = target - st->elems;
			}
		}
	}
	pfree(queue);
}

static int
space_info_cmp(const void *a, const void *b)
{
	uint32		x = (*(HnswSpaceInfo *const *) a)->space_no;
	uint32		y = (*(HnswSpaceInfo *const *) b)->space_no;

	return (x > y) - (x < y);
}

/*
 * Format 3: every live element of a space whose directory entry lists its
 * blocks lies on a listed block (scans read such a space by its list).
 */
static void
check_space_blocks(CheckState *st, HnswSpaceInfo *spaces, int nspaces)
{
	HnswSpaceInfo **byno = palloc(sizeof(HnswSpaceInfo *) * Max(nspaces, 1));

	for (int a = 0; a < nspaces; a++)
		byno[a] = &spaces[a];
	qsort(byno, nspaces, sizeof(HnswSpaceInfo *), space_info_cmp);
	for (int64 i = 0; i < st->nelems; i++)
	{
		CheckElement *ce = &st->elems[i];
		HnswSpaceInfo key;
		HnswSpaceInfo *keyp = &key;
		HnswSpaceInfo **sp;
		ItemPointerData tid;
		bool		listed = false;

		if (ce->deleted)
			continue;
		key.space_no = ce->space_no;
		sp = bsearch(&keyp, byno, nspaces, sizeof(HnswSpaceInfo *), space_info_cmp);
		if (sp == NULL || (*sp)->nblocks < 0)
			continue;
		HnswNodeToTid(ce->node, &tid);
		for (int b = 0; b < (*sp)->nblocks && !listed; b++)
			listed = ((*sp)->blocks[b] == ItemPointerGetBlockNumber(&tid));
		if (!listed)
			check_fail(st->index, ce->node, "element (%u,%u) %s",
					   "lies on a block its memory space's directory entry does not list");
	}
	pfree(byno);
}

/* pass 3: each entry point is an element of its level and space; reachability */
static void
check_entry_points(CheckState *st)
{
	int			nspaces;
	HnswSpaceInfo *spaces = check_entry_list(st, &nspaces);

	if (st->meta.nspacekeys > 0)
		check_space_blocks(st, spaces, nspaces);

	for (int a = 0; a < nspaces; a++)
	{
		CheckElement *entry;
		BlockNumber where = ItemPointerGetBlockNumber(&spaces[a].tid);

		if (!ItemPointerIsValid(&spaces[a].entry))
			continue;
		entry = find_element(st->elems, st->nelems, HnswNodeFromTid(&spaces[a].entry));
		if (entry == NULL)
			hnsw_corrupt(st->index, where, "an entry point is not an element");
		if (entry->level != spaces[a].entry_level)
			hnsw_corrupt(st->index, where,
						 psprintf("an entry point has level %d, the index says %d",
								  entry->level, spaces[a].entry_level));
		if (entry->space_no != spaces[a].space_no)
			hnsw_corrupt(st->index, where, "an entry point belongs to another memory space");
		mark_reached(st, entry);
	}
	if (st->meta.nspacekeys == 0 && !ItemPointerIsValid(&st->meta.entry) &&
		st->nelems - st->ndeleted - st->npending > 0)
		hnsw_corrupt(st->index, HNSW_METAPAGE_BLKNO,
					 "the index has live elements but no entry point");
}

/* DEBUG1, for whoever hunts the cause: who the unreachable elements are */
static void
log_unreachable(CheckState *st)
{
	int		   *indeg = palloc_extended(sizeof(int) * Max(st->nelems, 1),
										MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	int			shown = 0;

	for (int64 i = 0; i < st->nelems; i++)
	{
		CheckNeighbors *cn = find_neighbors(st, &st->elems[i]);

		if (cn == NULL)
			continue;
		for (int k = 0; k < HnswLayerCapacity(st->meta.m, 0) &&
			 st->slots[cn->start + k] != HNSW_INVALID_NODE; k++)
			indeg[find_element(st->elems, st->nelems, st->slots[cn->start + k]) - st->elems]++;
	}
	for (int64 i = 0; i < st->nelems && shown < 20; i++)
	{
		CheckElement *ce = &st->elems[i];
		ItemPointerData tid;

		if (ce->deleted || ce->reached || ce->pending)
			continue;
		HnswNodeToTid(ce->node, &tid);
		elog(DEBUG1, "engram_hnsw check: unreachable element (%u,%u), level %d, linked to from %d element(s) on layer 0",
			 ItemPointerGetBlockNumber(&tid), ItemPointerGetOffsetNumber(&tid),
			 ce->level, indeg[i]);
		shown++;
	}
	pfree(indeg);
}

/* the notices: links to deleted elements, unreachable elements */
static void
report_findings(CheckState *st)
{
	if (st->links_to_deleted > 0)
		ereport(NOTICE,
				(errmsg("engram_hnsw index \"%s\" has " INT64_FORMAT " links to deleted elements",
						RelationGetRelationName(st->index), st->links_to_deleted),
				 errdetail("Inserts that ran during VACUUM, or a VACUUM that was interrupted, leave such links behind; searches walk through them."),
				 errhint("The next VACUUM repairs them.")));

	for (int64 i = 0; i < st->nelems; i++)
		if (!st->elems[i].deleted && !st->elems[i].reached && !st->elems[i].pending)
			st->unreachable++;
	if (st->unreachable > 0 && message_level_is_interesting(DEBUG1))
		log_unreachable(st);
	if (st->nchunks > 0)
		elog(DEBUG1, "engram_hnsw check: " INT64_FORMAT " vector chunks",
			 st->nchunks);
	if (st->nfree > 0)
		elog(DEBUG1, "engram_hnsw check: " INT64_FORMAT " of the " INT64_FORMAT " deleted elements are free slots",
			 st->nfree, st->ndeleted);
	if (st->unreachable > 0)
		ereport(NOTICE,
				(errmsg("engram_hnsw index \"%s\" has " INT64_FORMAT " elements not reachable from its entry point",
						RelationGetRelationName(st->index), st->unreachable)));
}

PG_FUNCTION_INFO_V1(engram_hnsw_check);
Datum
engram_hnsw_check(PG_FUNCTION_ARGS)
{
	Oid			indexoid = PG_GETARG_OID(0);
	Relation	heap;
	Relation	index;
	CheckState	st;
	TupleDesc	tupdesc;
	Datum		values[9];
	bool		nulls[9] = {false};
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

	check_state_init(&st, index);
	check_pages(&st);
	check_links(&st);
	check_pending_and_lists(&st);
	check_entry_points(&st);
	report_findings(&st);

	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(cxt);

	values[0] = Int64GetDatum((int64) st.nblocks);
	values[1] = Int64GetDatum(st.nelems);
	values[2] = Int64GetDatum(st.ndeleted);
	values[3] = Int64GetDatum(st.nheaptids);
	values[4] = Int32GetDatum(st.max_level);
	values[5] = Int64GetDatum(st.unreachable);
	values[6] = Int64GetDatum(st.npending);
	values[7] = Int32GetDatum(st.meta.version);
	if (st.meta.version >= 3)
		values[8] = CStringGetTextDatum(hnsw_code_name(st.meta.code_kind));
	else
		nulls[8] = true;

	hnsw_close_maintenance(index, heap, lockmode);

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
