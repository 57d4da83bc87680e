/*-------------------------------------------------------------------------
 *
 * hnsw_build.h
 *	  Private to the bulk build (hnsw_build.c, hnsw_build_parallel.c): the
 *	  in-memory arena graph and the build state.
 *
 *-------------------------------------------------------------------------
 */
#ifndef HNSW_BUILD_H
#define HNSW_BUILD_H

#include "nodes/execnodes.h"
#include "storage/dsm.h"
#include "storage/shm_toc.h"
#include "utils/hsearch.h"

#include "engram_hnsw.h"

#define ARENA_CHUNK_SIZE	(4 * 1024 * 1024)
#define HNSW_HUGE_PAGE		(2 * 1024 * 1024)	/* x86-64 and arm64 (4 kB base pages) */

/*
 * The seed of the codes a build encodes (RaBitQ's rotation): the same for
 * every index, so that a build is repeatable.  Kept in the build state
 * (graph.code_seed, with graph.code_kind) for the meta page.
 */
#define HNSW_BUILD_CODE_SEED	((uint32) 0x2545F491)

typedef struct ArenaNode
{
	float	   *vec;
	unsigned char *code;		/* graph.code_kind's code of vec (NULL:
								 * none) */
	uint32	   *nbr;			/* per layer: count, then the slots */
	uint32		space_no;
	uint8		level;
	uint8		ntids;
	ItemPointerData tids[HNSW_HEAPTIDS];
} ArenaNode;

/* one memory space of the build: its own graph in the shared arena */
typedef struct BuildSpaceKey
{
	uint16		len;
	char		bytes[HNSW_MAX_SPACE_KEY];
} BuildSpaceKey;

typedef struct BuildSpace
{
	BuildSpaceKey key;
	uint32		space_no;
	uint32		hash;
	HnswNode	entry;
	int			entry_level;
} BuildSpace;

/* pages the build's writer WAL-logs in one record (XLR_MAX_BLOCK_ID) */
#define HNSW_WRITE_BATCH 32

typedef struct HnswBuildState
{
	HnswGraph	graph;			/* must be first: the arena graph */

	Relation	heap;
	Relation	index;
	int			metric;
	int			dims;			/* 0 until known */
	int			nspacekeys;

	/* memory spaces: key -> BuildSpace, and the one being inserted into */
	HTAB	   *spaces;
	BuildSpace **space_list;	/* by space_no - 1 */
	uint32		nspaces;
	uint32		maxspaces;
	BuildSpace *cur_space;

	/* the arena */
	MemoryContext arena_cxt;
	ArenaNode  *nodes;
	uint32		nnodes;
	uint32		maxnodes;
	char	   *chunk;
	Size		chunk_size;
	Size		chunk_used;
	Size		mem_used;
	Size		mem_limit;
	HnswNode	entry;
	int			entry_level;

	/* codes: the bytes of one (0 until dims is known), encoding scratch */
	Size		code_size;
	float	   *code_scratch;
	/*
	 * Serial arena: each node's layer 0 list and code, in blocks of
	 * 2^block_shift nodes in node order (block_stride bytes a node,
	 * block_bytes a block; 0 until the first node)
	 */
	char	  **node_blocks;
	uint32		nnode_blocks;
	uint32		maxnode_blocks;
	int			block_shift;
	Size		block_stride;
	Size		block_bytes;

	/* after running out of memory: the on-page graph */
	bool		spilled;
	HnswMetaInfo meta;
	HnswPageGraph pg;

	/* the page writer (new_page()): pages filled in place, WAL-logged a batch at a time */
	BufferAccessStrategy write_strategy;
	PGAlignedBlock *write_batch;	/* HNSW_WRITE_BATCH page images */
	BlockNumber write_blk[HNSW_WRITE_BATCH];
	int			write_n;
	bool		write_wal;		/* WAL-log the pages (RelationNeedsWAL()) */

	MemoryContext tmp_cxt;		/* reset after every tuple */
	double		indtuples;
} HnswBuildState;

/* where layer's list starts in a node's nbr array: count, then the slots */
static inline int
arena_layer_start(int m, int layer)
{
	return layer == 0 ? 0 : (2 * m + 1) + (layer - 1) * (m + 1);
}

static inline Size
arena_nbr_size(int m, int level)
{
	return sizeof(uint32) * ((2 * m + 1) + level * (m + 1));
}

/*
 * The pages a build writes, as planned by write_arena(): the placement
 * order and every tuple's TID.  Data pages are blocks 1 .. ndata - 1, vector
 * pages ndata .. nblocks - 1; each kind is written in nparts ranges of
 * blocks (parts 0 .. nparts - 1 data, nparts .. 2 nparts - 1 vectors), which
 * the participants of a parallel build share out (hnsw_write_part()).
 */
typedef struct HnswWritePlan
{
	const uint32 *ord;
	const ItemPointerData *etids;
	const ItemPointerData *ntids;
	const ItemPointerData *vtids;
	BlockNumber ndata;
	BlockNumber nblocks;
	int			nparts;
} HnswWritePlan;

/* hnsw_build.c */
extern BuildSpace *hnsw_build_space(HnswBuildState *bs, const char *key, int len,
									uint32 hash);
extern void hnsw_write_part(HnswBuildState *bs, const HnswWritePlan *plan, int part);
extern void hnsw_write_begin(HnswBuildState *bs);
extern void hnsw_write_end(HnswBuildState *bs);

/* hnsw_build_parallel.c */
typedef struct HnswParallelBuild HnswParallelBuild;

extern HnswParallelBuild *hnsw_parallel_build(HnswBuildState *bs, IndexInfo *indexInfo,
											  int nworkers, double *reltuples);
extern int	hnsw_parallel_write_parts(HnswParallelBuild *pb);
extern void hnsw_parallel_write(HnswParallelBuild *pb, HnswBuildState *bs,
								const HnswWritePlan *plan);
extern void hnsw_parallel_build_end(HnswParallelBuild *pb);
extern PGDLLEXPORT void hnsw_parallel_build_main(dsm_segment *seg, shm_toc *toc);

#endif							/* HNSW_BUILD_H */
