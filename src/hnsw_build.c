/*-------------------------------------------------------------------------
 *
 * hnsw_build.c
 *	  ambuild and ambuildempty: the amortized bulk-build path.
 *
 * Heap tuples are inserted one by one into an in-memory graph (an arena:
 * vectors and neighbour arrays carved out of large chunks, no palloc per
 * node), using the same algorithm as every other insertion
 * (hnsw_insert_element).  The pages are then written once, in order, and
 * WAL-logged in batches with log_newpages() before they enter their
 * buffers, through a bulk-write ring (as COPY writes a table), so a large
 * build neither evicts the whole buffer pool nor touches every buffer.
 *
 * If the arena would grow past maintenance_work_mem, what exists is written
 * out as above and the remaining tuples go through the on-page insertion
 * path (slower, same result), with a NOTICE saying so.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/mman.h>

#include "access/heaptoast.h"
#include "access/tableam.h"
#include "access/xloginsert.h"
#include "commands/progress.h"
#include "miscadmin.h"
#include "optimizer/optimizer.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "storage/proc.h"
#include "storage/smgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "hnsw_build.h"

/* ----------------------------------------------------------------
 * The arena graph (HnswGraphOps)
 * ----------------------------------------------------------------
 */
/*
 * A chunk of the arena.  Where the system has transparent huge pages on
 * request (madvise), a chunk of whole huge pages is asked to be backed by
 * them: a build walks its graph by random access over the whole arena, and
 * with 4 kB pages most node visits miss the TLB as well as the caches (and
 * every 4 kB page faults in on its first touch).  The allocation is padded
 * so that the chunk starts on a huge page boundary.
 */
static char *
arena_chunk(MemoryContext cxt, Size size)
{
#ifdef MADV_HUGEPAGE
	if (size >= HNSW_HUGE_PAGE && size % HNSW_HUGE_PAGE == 0)
	{
		char	   *raw = MemoryContextAllocHuge(cxt, size + HNSW_HUGE_PAGE);
		char	   *chunk = (char *) TYPEALIGN(HNSW_HUGE_PAGE, raw);

		(void) madvise(chunk, size, MADV_HUGEPAGE);
		return chunk;
	}
#endif
	return MemoryContextAllocHuge(cxt, size);
}

static void *
arena_alloc(HnswBuildState *bs, Size size)
{
	void	   *p;

	size = MAXALIGN(size);
	if (bs->chunk == NULL || bs->chunk_used + size > bs->chunk_size)
	{
		/* chunks of 1/16 of the budget, at most 4 MB, never smaller than a node */
		bs->chunk_size = Max(Min(ARENA_CHUNK_SIZE, bs->mem_limit / 16), size);
		bs->chunk = arena_chunk(bs->arena_cxt, bs->chunk_size);
		bs->chunk_used = 0;
		bs->mem_used += bs->chunk_size;
	}
	p = bs->chunk + bs->chunk_used;
	bs->chunk_used += size;
	return p;
}

/*
 * The serial arena keeps each node's layer 0 list and code at an address
 * found from its number alone (node_blocks), so that reaching a neighbour's
 * code, or an expanded node's list, takes no load of its ArenaNode first:
 * a cache miss that the next one waited for.  Vectors stay in the arena's
 * chunks (read for exact distances only; with them in the blocks too the
 * build was no faster).  The parallel build's graph, handed to the writer,
 * has no blocks: its ArenaNodes point into it.
 */
static inline char *
arena_entry(HnswBuildState *bs, HnswNode node)
{
	return bs->node_blocks[node >> bs->block_shift] +
		(node & ((1 << bs->block_shift) - 1)) * bs->block_stride;
}

static inline Size
arena_list0_size(int m)
{
	return MAXALIGN(arena_nbr_size(m, 0));
}

static inline Size
arena_code_space(HnswBuildState *bs)
{
	return bs->graph.code_kind != HNSW_CODE_NONE ? MAXALIGN(bs->code_size) : 0;
}

static inline unsigned char *
arena_code(HnswBuildState *bs, HnswNode node)
{
	if (unlikely(bs->node_blocks == NULL))
		return bs->nodes[node].code;
	return (unsigned char *) arena_entry(bs, node) + arena_list0_size(bs->graph.m);
}

/* node's list on layer (count, then slots); layer <= its level */
static inline uint32 *
arena_list(HnswBuildState *bs, HnswNode node, int layer)
{
	int			m = bs->graph.m;

	if (unlikely(bs->node_blocks == NULL))
		return bs->nodes[node].nbr + arena_layer_start(m, layer);
	if (layer == 0)
		return (uint32 *) arena_entry(bs, node);
	/* nbr holds the upper layers only */
	return bs->nodes[node].nbr + arena_layer_start(m, layer) - arena_layer_start(m, 1);
}

static float
arena_distance(HnswGraph *g, HnswNode node, const float *q, bool *skip)
{
	HnswBuildState *bs = (HnswBuildState *) g;

	*skip = false;
	return g->dist(q, bs->nodes[node].vec, g->dims);
}

static float
arena_estimate(HnswGraph *g, HnswNode node, const HnswCodeQuery *cq, bool *skip)
{
	*skip = false;
	return hnsw_code_estimate(cq, arena_code((HnswBuildState *) g, node));
}

static const float *
arena_vector(HnswGraph *g, HnswNode node)
{
	return ((HnswBuildState *) g)->nodes[node].vec;
}

static int
arena_neighbors(HnswGraph *g, HnswNode node, int layer, HnswNode *out)
{
	HnswBuildState *bs = (HnswBuildState *) g;
	uint32	   *list;
	int			n;

	/* every node has layer 0: its list is read without the ArenaNode */
	if (layer > 0 && layer > bs->nodes[node].level)
		return 0;
	list = arena_list(bs, node, layer);
	n = list[0];
	for (int i = 0; i < n; i++)
		out[i] = list[i + 1];
	return n;
}

/* layer 0 only: an upper layer's list is found through the ArenaNode */
static const void *
arena_peek_neighbors(HnswGraph *g, HnswNode node, int layer)
{
	HnswBuildState *bs = (HnswBuildState *) g;

	if (layer > 0 || bs->node_blocks == NULL)
		return NULL;
	return arena_list(bs, node, 0);
}

static bool
arena_replace_neighbors(HnswGraph *g, HnswNode node, int layer,
						const HnswNode *oldlist, int nold,
						const HnswNode *newlist, int nnew)
{
	HnswBuildState *bs = (HnswBuildState *) g;
	uint32	   *list;

	if (layer > 0 && layer > bs->nodes[node].level)
		return true;
	list = arena_list(bs, node, layer);
	/* single writer: the list cannot have changed since it was read */
	Assert((int) list[0] == nold);
	list[0] = nnew;
	for (int i = 0; i < nnew; i++)
		list[i + 1] = (uint32) newlist[i];
	return true;
}

static void
arena_get_entry(HnswGraph *g, HnswNode *node, int *level)
{
	HnswBuildState *bs = (HnswBuildState *) g;

	if (bs->cur_space)
	{
		*node = bs->cur_space->entry;
		*level = bs->cur_space->entry_level;
		return;
	}
	*node = bs->entry;
	*level = bs->entry_level;
}

static bool
arena_set_entry(HnswGraph *g, HnswNode node, int level, const HnswNode *expect,
				HnswNode *cur, int *curlevel)
{
	HnswBuildState *bs = (HnswBuildState *) g;
	HnswNode   *entry = bs->cur_space ? &bs->cur_space->entry : &bs->entry;
	int		   *entry_level = bs->cur_space ? &bs->cur_space->entry_level : &bs->entry_level;
	bool		change = expect ? (*entry == *expect) :
		(*entry == HNSW_INVALID_NODE || level > *entry_level);

	if (change)
	{
		*entry = node;
		*entry_level = level;
	}
	*cur = *entry;
	*curlevel = *entry_level;
	return change;
}

/*
 * Bytes of one node's code; the first call (dims is known by then) sizes
 * it and the encoder's scratch space.
 */
static Size
arena_code_size(HnswBuildState *bs)
{
	HnswGraph  *g = &bs->graph;

	Assert(g->dims > 0);
	if (g->code_kind == HNSW_CODE_NONE)
		return 0;
	if (bs->code_size == 0)
	{
		Size		nscratch = hnsw_code_scratch_floats(g->code_kind, g->dims);

		bs->code_size = hnsw_code_size(g->code_kind, g->dims);
		bs->code_scratch = MemoryContextAlloc(bs->arena_cxt,
											  sizeof(float) * Max(nscratch, 1));
		bs->mem_used += sizeof(float) * Max(nscratch, 1);
	}
	return bs->code_size;
}

/*
 * The blocks' layout, fixed by the first node: as many nodes to a block as
 * fit in 8 MB or a sixteenth of the memory budget (a power of two, so that
 * finding an entry takes a shift and a mask), rounded up to whole huge pages
 * once a block is at least one.
 */
static void
arena_block_layout(HnswBuildState *bs)
{
	Size		target;

	if (bs->graph.code_kind != HNSW_CODE_NONE)
		(void) arena_code_size(bs);
	bs->block_stride = arena_list0_size(bs->graph.m) + arena_code_space(bs);
	target = Min(2 * ARENA_CHUNK_SIZE, bs->mem_limit / 16);
	bs->block_shift = 0;
	while (bs->block_shift < 20 && (bs->block_stride << (bs->block_shift + 1)) <= target)
		bs->block_shift++;
	bs->block_bytes = bs->block_stride << bs->block_shift;
	if (bs->block_bytes >= HNSW_HUGE_PAGE)
		bs->block_bytes = TYPEALIGN(HNSW_HUGE_PAGE, bs->block_bytes);
}

/* bytes node id's block entry will newly take: a whole block if it starts one */
static Size
arena_entry_cost(HnswBuildState *bs, uint32 id)
{
	if (bs->block_stride == 0)
		arena_block_layout(bs);
	return (id >> bs->block_shift) < bs->nnode_blocks ? 0 : bs->block_bytes;
}

/* make room for node id's block entry: a new block when it starts one */
static void
arena_new_entry(HnswBuildState *bs, uint32 id)
{
	if (arena_entry_cost(bs, id) == 0)
		return;
	if (bs->nnode_blocks == bs->maxnode_blocks)
	{
		bs->maxnode_blocks = Max(16, bs->maxnode_blocks * 2);
		if (bs->node_blocks == NULL)
			bs->node_blocks = MemoryContextAlloc(bs->arena_cxt,
												 sizeof(char *) * bs->maxnode_blocks);
		else
			bs->node_blocks = repalloc(bs->node_blocks, sizeof(char *) * bs->maxnode_blocks);
	}
	bs->node_blocks[bs->nnode_blocks++] = arena_chunk(bs->arena_cxt, bs->block_bytes);
	bs->mem_used += bs->block_bytes;
}

static HnswNode
arena_create_node(HnswGraph *g, const float *vec, int level, ItemPointer heaptid,
				  HnswCandidate **selected, int *nselected)
{
	HnswBuildState *bs = (HnswBuildState *) g;
	ArenaNode  *an;
	uint32		id;

	if (bs->nnodes == bs->maxnodes)
	{
		Size		oldsize = sizeof(ArenaNode) * bs->maxnodes;

		bs->maxnodes *= 2;
		bs->nodes = repalloc_huge(bs->nodes, sizeof(ArenaNode) * bs->maxnodes);
		bs->mem_used += sizeof(ArenaNode) * bs->maxnodes - oldsize;
	}
	id = bs->nnodes++;
	an = &bs->nodes[id];
	an->space_no = bs->cur_space ? bs->cur_space->space_no : 0;
	an->level = level;
	an->ntids = 1;
	an->tids[0] = *heaptid;
	an->vec = arena_alloc(bs, sizeof(float) * g->dims);
	memcpy(an->vec, vec, sizeof(float) * g->dims);
	arena_new_entry(bs, id);
	an->code = NULL;
	if (g->code_kind != HNSW_CODE_NONE)
	{
		an->code = arena_code(bs, id);
		hnsw_code_encode(g->code_kind, g->code_seed, g->metric, vec, g->dims,
						 an->code, bs->code_scratch);
	}
	an->nbr = NULL;
	if (level > 0)
		an->nbr = arena_alloc(bs, arena_nbr_size(g->m, level) - arena_nbr_size(g->m, 0));
	for (int l = 0; l <= level; l++)
	{
		uint32	   *list = arena_list(bs, id, l);

		list[0] = nselected[l];
		for (int i = 0; i < nselected[l]; i++)
			list[i + 1] = (uint32) selected[l][i].node;
	}
	return id;
}

static bool
arena_add_heaptid(HnswGraph *g, HnswNode node, const float *vec, ItemPointer heaptid)
{
	ArenaNode  *an = &((HnswBuildState *) g)->nodes[node];

	if (an->ntids >= HNSW_HEAPTIDS)
		return false;
	an->tids[an->ntids++] = *heaptid;
	return true;
}

static const float *
arena_peek_vector(HnswGraph *g, HnswNode node)
{
	return ((HnswBuildState *) g)->nodes[node].vec;
}

static const unsigned char *
arena_peek_code(HnswGraph *g, HnswNode node)
{
	return arena_code((HnswBuildState *) g, node);
}

/* a search will read these nodes: their ArenaNodes, which say where their vectors are */
static void
arena_prefetch(HnswGraph *g, const HnswNode *nodes, int n)
{
	HnswBuildState *bs = (HnswBuildState *) g;

	for (int i = 0; i < n; i++)
		hnsw_prefetch(&bs->nodes[nodes[i]]);
}

static const HnswGraphOps arena_graph_ops = {
	.distance = arena_distance,
	.vector = arena_vector,
	.neighbors = arena_neighbors,
	.replace_neighbors = arena_replace_neighbors,
	.get_entry = arena_get_entry,
	.set_entry = arena_set_entry,
	.create_node = arena_create_node,
	.add_heaptid = arena_add_heaptid,
	.peek_vector = arena_peek_vector,
	.peek_bytes = 1024,
	.estimate = arena_estimate,
	.peek_code = arena_peek_code,
	.peek_ahead = 5,
	.peek_neighbors = arena_peek_neighbors,
	.prefetch = arena_prefetch,
};

/* ----------------------------------------------------------------
 * Writing the arena to pages
 * ----------------------------------------------------------------
 */

/*
 * Make the empty relation nblocks long in one step: its last block is
 * written (zeros), leaving a hole before it, as a hash index's bucket
 * allocation does (md.c creates the segments in between).  Each page is
 * then written once into a zeroed buffer, without extending the relation
 * block by block (an extension lock, a size look-up and a write of zeros
 * each).  Every block up to nblocks is written, and WAL-logged, before the
 * build ends.
 */
static void
extend_build_relation(Relation index, BlockNumber nblocks)
{
	PGAlignedBlock zero;

	if (RelationGetNumberOfBlocks(index) != 0)
		elog(ERROR, "engram_hnsw build: index \"%s\" is not empty",
			 RelationGetRelationName(index));
	memset(zero.data, 0, BLCKSZ);
	smgrextend(RelationGetSmgr(index), MAIN_FORKNUM, nblocks - 1, zero.data, false);
}

/*
 * Put the batched page images into their buffers, WAL-logged first (when
 * the index needs WAL) by one record per batch, which also sets their
 * LSNs: a buffer the ring writes out is already covered by WAL.  A page
 * reaches its buffer only as a whole, finished image.
 */
static void
flush_pages(HnswBuildState *bs)
{
	Page		pages[HNSW_WRITE_BATCH];

	if (bs->write_n == 0)
		return;
	for (int i = 0; i < bs->write_n; i++)
		pages[i] = bs->write_batch[i].data;
	if (bs->write_wal)
		log_newpages(&bs->index->rd_node, MAIN_FORKNUM, bs->write_n, bs->write_blk,
					 pages, true);
	for (int i = 0; i < bs->write_n; i++)
	{
		Buffer		buf = ReadBufferExtended(bs->index, MAIN_FORKNUM, bs->write_blk[i],
											 RBM_ZERO_AND_LOCK, bs->write_strategy);

		memcpy(BufferGetPage(buf), pages[i], BLCKSZ);
		MarkBufferDirty(buf);
		UnlockReleaseBuffer(buf);
	}
	bs->write_n = 0;
}

/*
 * Start block blkno of the relation extend_build_relation() made: the next
 * slot of the batch, not initialised, which the caller fills in place until
 * it starts its next page.  Claiming a slot finishes the page before it, so
 * a full batch goes out here (and the rest at the end of write_arena()).
 */
static Page
batch_slot(HnswBuildState *bs, BlockNumber blkno)
{
	Page		page;

	if (bs->write_n == HNSW_WRITE_BATCH)
		flush_pages(bs);
	page = bs->write_batch[bs->write_n].data;
	bs->write_blk[bs->write_n++] = blkno;
	return page;
}

/* the same, initialised as an empty page of this type */
static Page
new_page(HnswBuildState *bs, BlockNumber blkno, uint16 type)
{
	Page		page = batch_slot(bs, blkno);

	hnsw_init_page(page, type, RelationGetRelid(bs->index));
	return page;
}

/*
 * The order elements are placed on pages: each graph (the whole one, or a
 * space's: "grouped" lists the nodes space by space) breadth first over
 * layer 0 from its entry point, then whatever the walk did not reach.  A
 * search moves between neighbours, and neighbours placed close together
 * share pages, so a search reads fewer distinct pages; a space's elements
 * stay together instead of interleaving with other spaces'.
 */
static uint32 *
placement_order(HnswBuildState *bs, const HnswNode *grouped)
{
	uint32	   *ord = palloc_extended(sizeof(uint32) * bs->nnodes, MCXT_ALLOC_HUGE);
	bool	   *placed = palloc_extended(sizeof(bool) * bs->nnodes, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	uint32		n = 0;
	uint32		from = 0;

	while (from < bs->nnodes)
	{
		uint32		space_no = bs->nodes[grouped[from]].space_no;
		uint32		to = from;
		HnswNode	entry = bs->entry;
		uint32		head = n;

		while (to < bs->nnodes && bs->nodes[grouped[to]].space_no == space_no)
			to++;
		if (bs->nspacekeys > 0)
		{
			/* space numbers are handed out in order: space_list[no - 1] */
			Assert(space_no >= 1 && space_no <= bs->nspaces &&
				   bs->space_list[space_no - 1]->space_no == space_no);
			entry = bs->space_list[space_no - 1]->entry;
		}

		/* breadth first from the entry point; ord[head..n) is the queue */
		if (entry != HNSW_INVALID_NODE && !placed[entry])
		{
			placed[entry] = true;
			ord[n++] = (uint32) entry;
		}
		while (head < n)
		{
			uint32	   *list = arena_list(bs, ord[head++], 0);

			for (uint32 k = 0; k < list[0]; k++)
				if (!placed[list[k + 1]])
				{
					placed[list[k + 1]] = true;
					ord[n++] = list[k + 1];
				}
			CHECK_FOR_INTERRUPTS();
		}
		for (uint32 k = from; k < to; k++)
			if (!placed[grouped[k]])
			{
				placed[grouped[k]] = true;
				ord[n++] = (uint32) grouped[k];
			}
		from = to;
	}
	Assert(n == bs->nnodes);
	pfree(placed);
	return ord;
}

/*
 * The nodes grouped by space (a counting sort, ascending within a space):
 * start[no] .. start[no + 1] are space no's nodes in all[].  Returns start.
 */
static uint32 *
group_by_space(HnswBuildState *bs, HnswNode *all)
{
	uint32	   *start = palloc0(sizeof(uint32) * (bs->nspaces + 2));
	uint32	   *fill = palloc(sizeof(uint32) * (bs->nspaces + 1));

	for (uint32 i = 0; i < bs->nnodes; i++)
		start[bs->nodes[i].space_no + 1]++;
	for (uint32 s = 1; s <= bs->nspaces + 1; s++)
		start[s] += start[s - 1];
	memcpy(fill, start, sizeof(uint32) * (bs->nspaces + 1));
	for (uint32 i = 0; i < bs->nnodes; i++)
		all[fill[bs->nodes[i].space_no]++] = i;
	pfree(fill);
	return start;
}

/*
 * Leave no element without a link to it (per space graph), then return the
 * order the elements are placed on pages in (see placement_order()).
 */
static uint32 *
reconnect_and_order(HnswBuildState *bs)
{
	HnswGraph  *g = &bs->graph;
	HnswNode   *all = palloc_extended(sizeof(HnswNode) * bs->nnodes, MCXT_ALLOC_HUGE);
	int64		fixed = 0;
	uint32	   *ord;

	if (bs->nspacekeys == 0)
	{
		for (uint32 i = 0; i < bs->nnodes; i++)
			all[i] = i;
		fixed = hnsw_reconnect(g, all, bs->nnodes, bs->entry, bs->entry_level);
	}
	else
	{
		uint32	   *start = group_by_space(bs, all);

		for (uint32 s = 0; s < bs->nspaces; s++)
		{
			BuildSpace *sp = bs->space_list[s];
			uint32		from = start[sp->space_no];
			uint32		to = start[sp->space_no + 1];

			CHECK_FOR_INTERRUPTS();
			fixed += hnsw_reconnect(g, all + from, to - from, sp->entry, sp->entry_level);
		}
		pfree(start);
	}
	elog(DEBUG2, "engram_hnsw build relinked " INT64_FORMAT " unreachable elements", fixed);
	ord = placement_order(bs, all);
	pfree(all);
	return ord;
}

/* the dimension is known: can this index's format hold it? */
static void
build_check_dims(HnswBuildState *bs, int dims)
{
	if (bs->graph.code_kind != HNSW_CODE_NONE)
		hnsw_check_code_fits(bs->index, bs->graph.code_kind, dims);
	else if (dims > HNSW_MAX_DIMS_V2)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("vector has %d dimensions, engram_hnsw indexes of format 2 hold at most %d",
						dims, HNSW_MAX_DIMS_V2)));
}

/* format 3: the element tuple holds the code; format 2: the vector */
static Size
build_element_size(HnswBuildState *bs)
{
	if (bs->graph.code_kind == HNSW_CODE_NONE)
		return HNSW_ELEMENT_TUPLE_SIZE(bs->dims);
	return HNSW_ELEMENT3_TUPLE_SIZE(hnsw_code_size(bs->graph.code_kind, bs->dims));
}

/* the page being planned: its block, free space and last offset */
typedef struct PagePlan
{
	BlockNumber blkno;
	Size		avail;
	OffsetNumber off;
} PagePlan;

static void
plan_new_page(PagePlan *p)
{
	p->blkno++;
	p->avail = HNSW_PAGE_FREE_SPACE;
	p->off = 0;
}

/* the TID of a tuple of size bytes (line pointer included): here or next page */
static void
plan_tuple(PagePlan *p, Size size, ItemPointer tid)
{
	if (size > p->avail)
		plan_new_page(p);
	ItemPointerSet(tid, p->blkno, ++p->off);
	p->avail -= size;
}

/*
 * Plan where each element and its neighbour tuple go, in the order ord:
 * both on one page whenever they fit together (a new page if the current
 * one is too full), else (very high dimensions) each where it fits.
 * Returns the number of blocks up to the last data page.
 */
static BlockNumber
plan_placement(HnswBuildState *bs, const uint32 *ord, ItemPointerData *etids,
			   ItemPointerData *ntids)
{
	PagePlan	p = {1, HNSW_PAGE_FREE_SPACE, 0};
	Size		es = build_element_size(bs) + sizeof(ItemIdData);

	for (uint32 k = 0; k < bs->nnodes; k++)
	{
		uint32		i = ord[k];
		Size		ns = HNSW_NEIGHBOR_TUPLE_SIZE(bs->graph.m, bs->nodes[i].level) +
			sizeof(ItemIdData);

		if (es + ns <= HNSW_PAGE_FREE_SPACE && es + ns > p.avail)
			plan_new_page(&p);
		plan_tuple(&p, ns, &ntids[i]);
		plan_tuple(&p, es, &etids[i]);
	}
	return bs->nnodes > 0 ? p.blkno + 1 : 1;
}

/*
 * Plan the vector pages from block first on, or write those of them in
 * blocks from .. to - 1 (to > from; vtids NULL): each node's vector in the
 * order ord, chunked as hnsw_write_vector() would (hnsw_chunk_fit()), its
 * first chunk's TID in vtids[].  A chunk that does not end its vector is
 * followed by the first item of the next page.  Returns the block after
 * the last vector page (when planning).
 */
static BlockNumber
vector_pages(HnswBuildState *bs, const uint32 *ord, BlockNumber first,
			 ItemPointerData *vtids, BlockNumber from, BlockNumber to)
{
	PagePlan	p = {first, HNSW_PAGE_FREE_SPACE, 0};
	Page		image = NULL;	/* the page being filled, when writing */
	int			dims = bs->dims;
	bool		write = (to > from);
	HnswVectorTuple vt = palloc0(HNSW_VECTOR_TUPLE_SIZE(Min(dims, HNSW_CHUNK_MAX_COMP)));

	for (uint32 k = 0; k < bs->nnodes && !(write && p.blkno >= to); k++)
	{
		const float *vec = bs->nodes[ord[k]].vec;

		if ((k & 255) == 0)
			CHECK_FOR_INTERRUPTS();
		for (int done = 0; done < dims;)
		{
			int			n = hnsw_chunk_fit(p.avail - sizeof(ItemIdData), dims - done);
			Size		size = HNSW_VECTOR_TUPLE_SIZE(n);
			ItemPointerData tid;

			if (n == 0)
			{
				plan_new_page(&p);
				image = NULL;
				continue;
			}
			plan_tuple(&p, size + sizeof(ItemIdData), &tid);
			if (done == 0 && !write)
				vtids[ord[k]] = tid;
			if (write && p.blkno >= from && p.blkno < to)
			{
				if (image == NULL)
					image = new_page(bs, p.blkno, HNSW_PAGE_VECTOR);
				vt->type = HNSW_TUPLE_VECTOR;
				vt->ncomp = n;
				vt->start = done;
				if (done + n < dims)
					ItemPointerSet(&vt->next, p.blkno + 1, FirstOffsetNumber);
				else
					ItemPointerSetInvalid(&vt->next);
				memcpy(vt->data, vec + done, sizeof(float) * n);
				if (PageAddItem(image, (Item) vt, size, InvalidOffsetNumber,
								false, false) != ItemPointerGetOffsetNumber(&tid))
					elog(ERROR, "engram_hnsw build: vector chunk not placed as planned");
			}
			done += n;
		}
	}
	pfree(vt);
	return bs->nnodes > 0 ? p.blkno + 1 : first;
}

/* a space's directory entry size: with its block list in format 3 */
static Size
space_tuple_size(HnswBuildState *bs, BuildSpace *sp)
{
	return bs->graph.code_kind != HNSW_CODE_NONE ?
		HNSW_SPACE_LISTED_SIZE(sp->key.len) : HNSW_SPACE_TUPLE_SIZE(sp->key.len);
}

/*
 * The meta page: the entry point, insert pages and, with spaces, where the
 * directory pages (after the data and vector pages, from block nblocks)
 * will be.
 */
static void
fill_build_meta(HnswBuildState *bs, Page image, const ItemPointerData *etids,
				BlockNumber ndata, BlockNumber nblocks)
{
	HnswMetaPage meta;

	hnsw_fill_meta(image, RelationGetRelid(bs->index), bs->dims, bs->graph.m,
				   bs->graph.ef_construction, bs->metric, bs->nspacekeys,
				   bs->graph.code_kind, bs->graph.code_seed);
	meta = HnswPageGetMeta(image);
	if (bs->nnodes > 0)
	{
		if (bs->nspacekeys == 0)
		{
			meta->entry = etids[bs->entry];
			meta->entry_level = bs->entry_level;
		}
		meta->insert_page = ndata - 1;
		meta->stripe_insert[0] = ndata - 1;
		if (nblocks > ndata)
			meta->vector_insert[0] = nblocks - 1;
		meta->inserted = bs->nnodes;
	}
	if (bs->nspacekeys > 0)
	{
		BlockNumber dblk = nblocks;
		Size		davail = HNSW_PAGE_FREE_SPACE;

		meta->dir_count = bs->nspaces;
		meta->next_space_no = bs->nspaces + 1;
		for (uint32 s = 0; s < bs->nspaces; s++)
		{
			Size		sz = space_tuple_size(bs, bs->space_list[s]) + sizeof(ItemIdData);

			if (s == 0)
				meta->dir_head = dblk;
			if (sz > davail)
			{
				dblk++;
				davail = HNSW_PAGE_FREE_SPACE;
			}
			davail -= sz;
		}
		if (bs->nspaces > 0)
			meta->dir_tail = dblk;
	}
}

/* an arena node's neighbour tuple, its lists as the planned TIDs */
static Size
fill_neighbor_tuple(HnswBuildState *bs, ArenaNode *an, HnswNeighborTuple ntup,
					const ItemPointerData *etids)
{
	int			m = bs->graph.m;
	Size		nsize = HNSW_NEIGHBOR_TUPLE_SIZE(m, an->level);

	memset(ntup, 0, nsize);
	ntup->type = HNSW_TUPLE_NEIGHBORS;
	ntup->level = an->level;
	ntup->nslots = HnswTotalSlots(m, an->level);
	for (int s = 0; s < ntup->nslots; s++)
		ItemPointerSetInvalid(&ntup->tids[s]);
	for (int l = 0; l <= an->level; l++)
	{
		uint32	   *list = arena_list(bs, (HnswNode) (an - bs->nodes), l);

		for (uint32 k = 0; k < list[0]; k++)
			ntup->tids[HnswLayerOffset(m, l) + k] = etids[list[k + 1]];
	}
	return nsize;
}

/* an arena node's element tuple, its vector's first chunk at vtid */
static void
fill_element_tuple(HnswBuildState *bs, ArenaNode *an, HnswElementTuple etup, Size esize,
				   const ItemPointerData *ntid, const ItemPointerData *vtid)
{
	memset(etup, 0, esize);
	etup->type = HNSW_TUPLE_ELEMENT;
	etup->level = an->level;
	etup->ntids = an->ntids;
	etup->space_no = an->space_no;
	for (int t = 0; t < HNSW_HEAPTIDS; t++)
	{
		if (t < an->ntids)
			etup->heaptids[t] = an->tids[t];
		else
			ItemPointerSetInvalid(&etup->heaptids[t]);
	}
	etup->neighbortid = *ntid;
	if (bs->graph.code_kind == HNSW_CODE_NONE)
	{
		memcpy(etup->vec, an->vec, sizeof(float) * bs->dims);
		return;
	}
	*HnswElementVectorTid(etup) = *vtid;
	memcpy(HnswElementCode(etup), an->code, hnsw_code_size(bs->graph.code_kind, bs->dims));
}

/*
 * Add a tuple where the plan put it: on the page being filled (*image,
 * block *curblk; NULL before the first), else on a new page after it.
 */
static void
add_planned(HnswBuildState *bs, Page *image, BlockNumber *curblk,
			const ItemPointerData *tid, Item item, Size size)
{
	OffsetNumber got;

	while (ItemPointerGetBlockNumber(tid) != *curblk)
	{
		if (*image == NULL)
			(void) new_page(bs, *curblk, HNSW_PAGE_DATA);
		(*curblk)++;
		*image = NULL;
	}
	if (*image == NULL)
		*image = new_page(bs, *curblk, HNSW_PAGE_DATA);
	got = PageAddItem(*image, item, size, InvalidOffsetNumber, false, false);
	if (got != ItemPointerGetOffsetNumber(tid))
		elog(ERROR, "engram_hnsw build: tuple placed at offset %u, planned %u",
			 got, ItemPointerGetOffsetNumber(tid));
}

/*
 * The data pages of blocks from .. to - 1, in order, each filled and
 * written once.  Placement follows ord, so the blocks of the nodes' tuples
 * never decrease along it (a node's element tuple comes after its neighbour
 * tuple).
 */
static void
write_data_pages(HnswBuildState *bs, const HnswWritePlan *plan, BlockNumber from,
				 BlockNumber to)
{
	int			m = bs->graph.m;
	Size		esize = build_element_size(bs);
	HnswElementTuple etup = palloc0(esize);
	HnswNeighborTuple ntup = palloc0(HNSW_NEIGHBOR_TUPLE_SIZE(m, hnsw_max_level(m)));
	Page		image = NULL;
	BlockNumber curblk = from;

	for (uint32 k = 0; k < bs->nnodes; k++)
	{
		uint32		i = plan->ord[k];
		ArenaNode  *an = &bs->nodes[i];
		const ItemPointerData *ntid = &plan->ntids[i];
		const ItemPointerData *etid = &plan->etids[i];

		if ((k & 255) == 0)
			CHECK_FOR_INTERRUPTS();
		if (ItemPointerGetBlockNumber(etid) < from)
			continue;
		if (ItemPointerGetBlockNumber(ntid) >= to)
			break;
		if (ItemPointerGetBlockNumber(ntid) >= from)
		{
			Size		nsize = fill_neighbor_tuple(bs, an, ntup, plan->etids);

			add_planned(bs, &image, &curblk, ntid, (Item) ntup, nsize);
		}
		if (ItemPointerGetBlockNumber(etid) < to)
		{
			fill_element_tuple(bs, an, etup, esize, ntid, &plan->vtids[i]);
			add_planned(bs, &image, &curblk, etid, (Item) etup, esize);
		}
	}
	Assert(to <= from || curblk == to - 1);
	pfree(etup);
	pfree(ntup);
}

/* the blocks of one of a kind's nparts ranges: [first, end) cut evenly */
static void
part_range(BlockNumber first, BlockNumber end, int part, int nparts,
		   BlockNumber *from, BlockNumber *to)
{
	uint64		n = end - first;

	*from = first + (BlockNumber) (n * part / nparts);
	*to = first + (BlockNumber) (n * (part + 1) / nparts);
}

/*
 * Write one part of the plan: a range of data pages (parts below nparts)
 * or of vector pages.  Between hnsw_write_begin() and hnsw_write_end(); the
 * relation already has every block (extend_build_relation()), and each
 * part's pages are whole, so participants may write parts in any order.
 */
void
hnsw_write_part(HnswBuildState *bs, const HnswWritePlan *plan, int part)
{
	BlockNumber from;
	BlockNumber to;

	if (part < plan->nparts)
	{
		part_range(1, plan->ndata, part, plan->nparts, &from, &to);
		if (to > from)
			write_data_pages(bs, plan, from, to);
	}
	else
	{
		part_range(plan->ndata, plan->nblocks, part - plan->nparts, plan->nparts,
				   &from, &to);
		if (to > from)
			(void) vector_pages(bs, plan->ord, plan->ndata, NULL, from, to);
	}
	flush_pages(bs);
}

/* the page writer's batch and buffer ring, for one participant */
void
hnsw_write_begin(HnswBuildState *bs)
{
	bs->write_strategy = GetAccessStrategy(BAS_BULKWRITE);
	bs->write_batch = palloc(sizeof(PGAlignedBlock) * HNSW_WRITE_BATCH);
	bs->write_n = 0;
	bs->write_wal = RelationNeedsWAL(bs->index);
}

void
hnsw_write_end(HnswBuildState *bs)
{
	flush_pages(bs);
	FreeAccessStrategy(bs->write_strategy);
	pfree(bs->write_batch);
	bs->write_strategy = NULL;
	bs->write_batch = NULL;
}

/* a space's directory entry */
static HnswSpaceTuple
make_space_tuple(BuildSpace *sp, const ItemPointerData *etids, Size sz)
{
	HnswSpaceTuple stup = palloc0(sz);

	stup->type = HNSW_TUPLE_SPACE;
	stup->flags = 0;
	stup->space_no = sp->space_no;
	stup->hash = sp->hash;
	if (sp->entry != HNSW_INVALID_NODE)
	{
		stup->entry = etids[sp->entry];
		stup->entry_level = sp->entry_level;
	}
	else
	{
		ItemPointerSetInvalid(&stup->entry);
		stup->entry_level = -1;
	}
	stup->keylen = sp->key.len;
	memcpy(stup->key, sp->key.bytes, sp->key.len);
	return stup;
}

/*
 * Format 3: the data blocks of each space's elements (space_list order),
 * up to one more than a list holds (that many means scattered).  Elements
 * are placed in node order within a space, so a space's blocks come in
 * runs: only the last block seen needs comparing before the list.
 */
static HnswSpaceBlocksData *
space_blocks(HnswBuildState *bs, const ItemPointerData *etids, int **counts)
{
	HnswSpaceBlocksData *lists = palloc_extended(sizeof(HnswSpaceBlocksData) *
												 Max(bs->nspaces, 1),
												 MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);

	*counts = palloc_extended(sizeof(int) * Max(bs->nspaces, 1),
							  MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	for (uint32 i = 0; i < bs->nnodes; i++)
	{
		uint32		s = bs->nodes[i].space_no - 1;
		BlockNumber blk = ItemPointerGetBlockNumber(&etids[i]);
		HnswSpaceBlocksData *sb = &lists[s];
		int		   *n = &(*counts)[s];
		bool		seen = false;

		for (int b = Min(*n, HNSW_SPACE_MAX_BLOCKS) - 1; b >= 0 && !seen; b--)
			seen = (sb->blocks[b] == blk);
		if (seen || *n > HNSW_SPACE_MAX_BLOCKS)
			continue;
		if (*n < HNSW_SPACE_MAX_BLOCKS)
			sb->blocks[*n] = blk;
		(*n)++;
	}
	return lists;
}

/*
 * The space directory, chained in order from block dblk (where the meta
 * page says it is).  Returns the number of blocks of the index.
 */
static BlockNumber
write_directory(HnswBuildState *bs, const ItemPointerData *etids, BlockNumber dblk)
{
	Page		image;
	int		   *counts = NULL;
	HnswSpaceBlocksData *lists = NULL;

	if (bs->graph.code_kind != HNSW_CODE_NONE)
		lists = space_blocks(bs, etids, &counts);
	image = new_page(bs, dblk, HNSW_PAGE_DIR);
	for (uint32 s = 0; s < bs->nspaces; s++)
	{
		BuildSpace *sp = bs->space_list[s];
		Size		sz = space_tuple_size(bs, sp);
		HnswSpaceTuple stup = make_space_tuple(sp, etids, sz);

		Assert(sp->space_no == s + 1);
		if (lists != NULL)
			hnsw_space_fill_blocks(stup, lists[s].blocks, counts[s]);

		if (PageGetFreeSpace(image) < sz)
		{
			HnswPageGetOpaque(image)->next = dblk + 1;
			dblk++;
			image = new_page(bs, dblk, HNSW_PAGE_DIR);
		}
		if (PageAddItem(image, (Item) stup, sz, InvalidOffsetNumber,
						false, false) == InvalidOffsetNumber)
			elog(ERROR, "engram_hnsw build: failed to add a space directory entry");
		pfree(stup);
	}
	if (lists != NULL)
	{
		pfree(lists);
		pfree(counts);
	}
	return dblk + 1;
}

/*
 * Write the meta page and every element of the arena, each page WAL-logged
 * before it enters its buffer (new_page()).  Placement is planned first
 * (neighbour lists need the final TIDs of elements on later pages), then
 * each page is filled and written once.  With pb (a parallel build), its
 * workers, waiting since they finished the graph, write parts of the plan
 * beside the leader.
 */
static void
write_arena(HnswBuildState *bs, HnswParallelBuild *pb)
{
	ItemPointerData *etids = palloc_extended(sizeof(ItemPointerData) * Max(bs->nnodes, 1),
											 MCXT_ALLOC_HUGE);
	ItemPointerData *ntids = palloc_extended(sizeof(ItemPointerData) * Max(bs->nnodes, 1),
											 MCXT_ALLOC_HUGE);
	ItemPointerData *vtids = palloc_extended(sizeof(ItemPointerData) * Max(bs->nnodes, 1),
											 MCXT_ALLOC_HUGE);
	HnswWritePlan plan;
	Page		meta_page;
	BlockNumber dir_tail;
	uint32	   *ord = NULL;

	pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, HNSW_PHASE_WRITE);

	if (bs->nnodes > 0)
		ord = reconnect_and_order(bs);
	plan.ord = ord;
	plan.etids = etids;
	plan.ntids = ntids;
	plan.vtids = vtids;
	plan.ndata = plan_placement(bs, ord, etids, ntids);
	plan.nblocks = plan.ndata;
	if (bs->graph.code_kind != HNSW_CODE_NONE)
		plan.nblocks = vector_pages(bs, ord, plan.ndata, vtids, 0, 0);
	plan.nparts = pb != NULL ? hnsw_parallel_write_parts(pb) : 1;

	hnsw_write_begin(bs);
	/* filled in place (hnsw_fill_meta() initialises the page) */
	meta_page = batch_slot(bs, HNSW_METAPAGE_BLKNO);
	fill_build_meta(bs, meta_page, etids, plan.ndata, plan.nblocks);
	dir_tail = HnswPageGetMeta(meta_page)->dir_tail;
	extend_build_relation(bs->index, bs->nspacekeys > 0 && bs->nspaces > 0 ?
						  dir_tail + 1 : plan.nblocks);
	if (pb != NULL && bs->nnodes > 0)
		hnsw_parallel_write(pb, bs, &plan);
	else
		for (int part = 0; part < 2 * plan.nparts; part++)
			hnsw_write_part(bs, &plan, part);
	if (bs->nspacekeys > 0 && bs->nspaces > 0)
	{
		BlockNumber nblocks PG_USED_FOR_ASSERTS_ONLY =
			write_directory(bs, etids, plan.nblocks);

		Assert(nblocks - 1 == dir_tail);
	}
	hnsw_write_end(bs);

	pfree(etids);
	pfree(ntids);
	pfree(vtids);
	if (ord)
		pfree(ord);
}

/*
 * The build's space for a key (len bytes, hashing to hash), created on
 * first sight with the next space number.
 */
BuildSpace *
hnsw_build_space(HnswBuildState *bs, const char *key, int len, uint32 hash)
{
	BuildSpaceKey bk;
	BuildSpace *sp;
	bool		found;

	memset(&bk, 0, sizeof(bk));
	bk.len = len;
	memcpy(bk.bytes, key, len);
	sp = hash_search(bs->spaces, &bk, HASH_ENTER, &found);
	if (!found)
	{
		if (bs->nspaces == bs->maxspaces)
		{
			bs->maxspaces *= 2;
			bs->space_list = repalloc_huge(bs->space_list,
										   sizeof(BuildSpace *) * bs->maxspaces);
		}
		bs->space_list[bs->nspaces++] = sp;
		sp->space_no = bs->nspaces;
		sp->hash = hash;
		sp->entry = HNSW_INVALID_NODE;
		sp->entry_level = -1;
		bs->mem_used += sizeof(BuildSpace) + 64;
	}
	return sp;
}

/* the build's space for a key value */
static BuildSpace *
build_space(HnswBuildState *bs, Datum value)
{
	HnswSpaceKey key = hnsw_space_key(bs->index, value);

	return hnsw_build_space(bs, key.data, key.len, key.hash);
}

/* bytes the arena will need for one more node of the given level */
static Size
node_cost(HnswBuildState *bs, int level)
{
	return sizeof(ArenaNode) * 2 + MAXALIGN(sizeof(float) * bs->dims) +
		arena_entry_cost(bs, bs->nnodes) +
		MAXALIGN(arena_nbr_size(bs->graph.m, level) - arena_nbr_size(bs->graph.m, 0)) +
		sizeof(uint32);
}

/* out of maintenance_work_mem: write what exists, continue on pages */
static void
spill_to_pages(HnswBuildState *bs)
{
	ereport(NOTICE,
			(errmsg_plural("engram_hnsw graph no longer fits into maintenance_work_mem after %lu row",
						   "engram_hnsw graph no longer fits into maintenance_work_mem after %lu rows",
						   (unsigned long) bs->indtuples, (unsigned long) bs->indtuples),
			 errdetail("Building continues with on-disk inserts, which is slower."),
			 errhint("Increase maintenance_work_mem to build the whole graph in memory.")));
	write_arena(bs, NULL);
	pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, HNSW_PHASE_LOAD);

	/* the arena is no longer needed */
	MemoryContextDelete(bs->arena_cxt);
	bs->arena_cxt = NULL;
	bs->nodes = NULL;
	bs->graph.marks = NULL;
	bs->graph.marks_cap = 0;
	bs->graph.touched = NULL;
	bs->graph.ntouched = 0;
	bs->graph.touched_cap = 0;

	bs->spilled = true;
	hnsw_read_meta(bs->index, &bs->meta);
	hnsw_page_graph_init(&bs->pg, bs->index, &bs->meta);
}

static void
build_callback(Relation index, ItemPointer tid, Datum *values, bool *isnull,
			   bool tupleIsAlive, void *state)
{
	HnswBuildState *bs = (HnswBuildState *) state;
	int			attno = hnsw_vector_attno(index);
	MemoryContext oldcxt;
	float	   *vec;
	int			dims;
	bool		skip;

	if (isnull[attno - 1] || (bs->nspacekeys > 0 && isnull[0]))
		return;

	oldcxt = MemoryContextSwitchTo(bs->tmp_cxt);
	vec = hnsw_prepare_vector(index, bs->metric, values[attno - 1], bs->dims,
							  &dims, &skip);
	if (!skip)
	{
		if (bs->dims == 0)
		{
			build_check_dims(bs, dims);
			bs->dims = dims;
			bs->graph.dims = dims;
		}

		if (!bs->spilled &&
			bs->mem_used + node_cost(bs, hnsw_max_level(bs->graph.m)) > bs->mem_limit)
		{
			MemoryContextSwitchTo(oldcxt);
			spill_to_pages(bs);
			MemoryContextSwitchTo(bs->tmp_cxt);
		}

		if (bs->spilled)
		{
			if (bs->nspacekeys > 0)
			{
				HnswSpaceKey key = hnsw_space_key(index, values[0]);

				hnsw_space_find(index, &key, true, &bs->pg.space_tid, &bs->pg.space_no);
				bs->pg.has_space = true;
			}
			hnsw_insert_element(&bs->pg.graph, vec, tid);
			hnsw_page_graph_reset(&bs->pg);
		}
		else
		{
			/* the visited bitmap grows with the graph: count it */
			Size		marks_before = bs->graph.marks_cap;

			if (bs->nspacekeys > 0)
				bs->cur_space = build_space(bs, values[0]);
			hnsw_insert_element(&bs->graph, vec, tid);
			bs->mem_used += (bs->graph.marks_cap - marks_before) / 8;
		}
		bs->indtuples++;
		if (((uint64) bs->indtuples & 255) == 0)
			pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, bs->indtuples);
	}
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(bs->tmp_cxt);
}

/*
 * After a spilled build: the rows inserted on pages may have left elements
 * that no list links to (pruning does that, as after any insert).  VACUUM
 * would relink them; a fresh index should not need it, so the reconnect
 * pass of the in-memory build runs on the pages too.  (With memory spaces,
 * VACUUM does it per space.)
 */
static void
relink_spilled(HnswBuildState *bs)
{
	Relation	index = bs->index;
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);
	int64		n = 0;
	int64		max = 1024;
	HnswNode   *nodes = palloc_extended(sizeof(HnswNode) * max, MCXT_ALLOC_HUGE);
	HnswMetaInfo meta;

	/* every element, in TID order (ascending, as hnsw_reconnect wants) */
	for (BlockNumber blkno = HNSW_METAPAGE_BLKNO + 1; blkno < nblocks; blkno++)
	{
		Buffer		buf;
		Page		page = hnsw_pass_page(index, blkno, BUFFER_LOCK_SHARE, NULL, &buf);

		if (page == NULL)
			continue;
		for (OffsetNumber off = FirstOffsetNumber; off <= PageGetMaxOffsetNumber(page); off++)
		{
			ItemPointerData tid;

			if (hnsw_page_item_type(index, page, blkno, off) != HNSW_TUPLE_ELEMENT)
				continue;
			if (n == max)
			{
				max *= 2;
				nodes = repalloc_huge(nodes, sizeof(HnswNode) * max);
			}
			ItemPointerSet(&tid, blkno, off);
			nodes[n++] = HnswNodeFromTid(&tid);
		}
		UnlockReleaseBuffer(buf);
		CHECK_FOR_INTERRUPTS();
	}
	hnsw_read_meta(index, &meta);
	if (n > 0 && ItemPointerIsValid(&meta.entry))
	{
		HnswPageGraph pg;
		int64		fixed;

		hnsw_page_graph_init(&pg, index, &meta);
		fixed = hnsw_reconnect(&pg.graph, nodes, n, HnswNodeFromTid(&meta.entry),
							   meta.entry_level);
		elog(DEBUG2, "engram_hnsw build relinked " INT64_FORMAT " unreachable elements on pages",
			 fixed);
	}
	pfree(nodes);
}

/*
 * How many parallel workers the build asks for.  PostgreSQL 15's index.c
 * plans workers for btree only, so the build decides itself.  The
 * planner's rule (plan_create_index_workers) sizes the team by heap pages
 * and shares maintenance_work_mem between participants; neither fits here:
 * an HNSW build costs per row, vectors mostly live in TOAST (the heap
 * proper stays small), and the participants share one graph and one
 * memory budget.  So: the table's parallel_workers setting if it has one;
 * else one worker from HNSW_PARALLEL_MIN_ROWS estimated rows, one more each
 * time the rows triple; capped by max_parallel_maintenance_workers.  Index
 * expressions and predicates go to the planner, which judges their
 * parallel safety.  Indexes with memory spaces are planned the same way.
 */
#define HNSW_PARALLEL_MIN_ROWS	10000

static int
build_workers(Relation heap, Relation index)
{
	int			n;
	BlockNumber pages;
	double		tuples;
	double		allvisfrac;
	double		threshold;

	if (!IsUnderPostmaster || !IsNormalProcessingMode() || IsInParallelMode() ||
		max_parallel_maintenance_workers == 0 || RelationUsesLocalBuffers(heap))
		return 0;
	if (RelationGetIndexExpressions(index) != NIL || RelationGetIndexPredicate(index) != NIL)
		return plan_create_index_workers(RelationGetRelid(heap), RelationGetRelid(index));
	n = RelationGetParallelWorkers(heap, -1);
	if (n >= 0)
		return Min(n, max_parallel_maintenance_workers);
	table_relation_estimate_size(heap, NULL, &pages, &tuples, &allvisfrac);
	if (tuples < HNSW_PARALLEL_MIN_ROWS)
		return 0;
	n = 1;
	for (threshold = HNSW_PARALLEL_MIN_ROWS * 3.0; tuples >= threshold; threshold *= 3)
		n++;
	return Min(n, max_parallel_maintenance_workers);
}

/*
 * A NOTICE when the indexed column will keep its vectors compressed or out
 * of line: storage EXTENDED (the default) and a vector long enough that a
 * row holding little else crosses TOAST_TUPLE_THRESHOLD (497 dims and up).
 * The executor computes the distance of every row an index scan returns
 * from the heap's copy, which is then decompressed or fetched from the
 * TOAST table each time (bench/results/storage.md).  Longer vectors
 * than a heap page holds stay out of line whatever the storage.  Only for
 * a plain column (not an
 * expression), and once per transaction (not once per partition).
 */
static void
storage_notice(Relation heap, Relation index, IndexInfo *indexInfo, int dims)
{
	static LocalTransactionId noticed_lxid = InvalidLocalTransactionId;
	AttrNumber	heapattno = indexInfo->ii_IndexAttrNumbers[hnsw_vector_attno(index) - 1];
	Size		rowsize = MAXALIGN(SizeofHeapTupleHeader) + ARR_OVERHEAD_NONULLS(1) +
		sizeof(float4) * (Size) dims;
	Form_pg_attribute att;

	/* PLAIN is the advice only where the row fits a heap page (about 2 000 dims) */
	if (heapattno <= 0 || rowsize <= TOAST_TUPLE_THRESHOLD || rowsize > MaxHeapTupleSize ||
		noticed_lxid == MyProc->lxid)
		return;
	att = TupleDescAttr(RelationGetDescr(heap), heapattno - 1);
	if (att->attstorage != TYPSTORAGE_EXTENDED)
		return;
	noticed_lxid = MyProc->lxid;
	ereport(NOTICE,
			(errmsg("column \"%s\" will store vectors of %d dimensions compressed or out of line",
					NameStr(att->attname), dims),
			 errdetail("Its storage is EXTENDED: a row over %d bytes has its vector compressed, or moved to the TOAST table, and an index scan reads every row it returns back from there to compute its distance.",
					   (int) TOAST_TUPLE_THRESHOLD),
			 errhint("Before loading the table, ALTER TABLE %s ALTER COLUMN %s SET STORAGE PLAIN keeps the vectors inline and uncompressed.",
					 quote_identifier(RelationGetRelationName(heap)),
					 quote_identifier(NameStr(att->attname)))));
}

IndexBuildResult *
hnsw_build(Relation heap, Relation index, IndexInfo *indexInfo)
{
	IndexBuildResult *result;
	HnswBuildState *bs;
	HnswParallelBuild *pb = NULL;
	double		reltuples = 0;
	int			nworkers;

	if (RelationGetNumberOfBlocks(index) != 0)
		elog(ERROR, "index \"%s\" already contains data", RelationGetRelationName(index));

	bs = palloc0(sizeof(HnswBuildState));
	bs->heap = heap;
	bs->index = index;
	bs->nspacekeys = hnsw_index_nspacekeys(index);
	bs->metric = hnsw_index_metric(index);
	if (bs->nspacekeys > 0)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(BuildSpaceKey);
		ctl.entrysize = sizeof(BuildSpace);
		ctl.hcxt = CurrentMemoryContext;
		bs->spaces = hash_create("engram_hnsw build spaces", 256, &ctl,
								 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		bs->maxspaces = 256;
		bs->space_list = palloc(sizeof(BuildSpace *) * bs->maxspaces);
	}
	bs->dims = hnsw_index_dims_option(index);
	bs->graph.ops = &arena_graph_ops;
	bs->graph.dims = bs->dims;
	bs->graph.m = hnsw_index_m(index);
	bs->graph.max_level = hnsw_max_level(bs->graph.m);
	bs->graph.ef_construction = hnsw_index_ef_construction(index);
	bs->graph.metric = bs->metric;
	bs->graph.dist = hnsw_metric_distance(bs->metric);
	bs->graph.code_kind = hnsw_build_format >= 3 ? hnsw_index_code_kind(index) : HNSW_CODE_NONE;
	bs->graph.code_seed = HNSW_BUILD_CODE_SEED;
	if (bs->dims > 0)
		build_check_dims(bs, bs->dims);
	bs->graph.dense = true;
	bs->arena_cxt = AllocSetContextCreate(CurrentMemoryContext, "engram_hnsw build arena",
										  ALLOCSET_DEFAULT_SIZES);
	bs->graph.cxt = bs->arena_cxt;
	bs->tmp_cxt = AllocSetContextCreate(CurrentMemoryContext, "engram_hnsw build tuple",
										ALLOCSET_DEFAULT_SIZES);
	bs->maxnodes = 64;
	bs->nodes = MemoryContextAllocHuge(bs->arena_cxt, sizeof(ArenaNode) * bs->maxnodes);
	bs->mem_used = sizeof(ArenaNode) * bs->maxnodes;
	bs->mem_limit = (Size) maintenance_work_mem * 1024;
	bs->entry = HNSW_INVALID_NODE;
	bs->entry_level = -1;

	pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, HNSW_PHASE_LOAD);
	if (heap->rd_rel->reltuples > 0)
		pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_TOTAL,
									 (int64) heap->rd_rel->reltuples);

	nworkers = build_workers(heap, index);
	if (nworkers > 0)
		pb = hnsw_parallel_build(bs, indexInfo, nworkers, &reltuples);
	if (pb == NULL)
	{
		reltuples = table_index_build_scan(heap, index, indexInfo, true, true,
										   build_callback, bs, NULL);
		pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, bs->indtuples);
	}

	if (!bs->spilled)
	{
		write_arena(bs, pb);
		if (pb != NULL)
			hnsw_parallel_build_end(pb);
		MemoryContextDelete(bs->arena_cxt);
	}
	else if (bs->nspacekeys == 0)
		relink_spilled(bs);
	MemoryContextDelete(bs->tmp_cxt);
	storage_notice(heap, index, indexInfo, bs->dims);

	result = palloc(sizeof(IndexBuildResult));
	result->heap_tuples = reltuples;
	result->index_tuples = bs->indtuples;
	return result;
}

/* the init fork of an unlogged index: just the meta page */
void
hnsw_buildempty(Relation index)
{
	Buffer		buf;
	int			dims = hnsw_index_dims_option(index);
	int			m = hnsw_index_m(index);
	int			efc = hnsw_index_ef_construction(index);
	int			metric = hnsw_index_metric(index);
	int			nspacekeys = hnsw_index_nspacekeys(index);

	buf = ReadBufferExtended(index, INIT_FORKNUM, P_NEW, RBM_NORMAL, NULL);
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	START_CRIT_SECTION();
	hnsw_fill_meta(BufferGetPage(buf), RelationGetRelid(index), dims, m, efc, metric, nspacekeys,
				   hnsw_build_format >= 3 ? hnsw_index_code_kind(index) : HNSW_CODE_NONE,
				   HNSW_BUILD_CODE_SEED);
	MarkBufferDirty(buf);
	log_newpage_buffer(buf, true);
	END_CRIT_SECTION();
	UnlockReleaseBuffer(buf);
}
