/*-------------------------------------------------------------------------
 *
 * hnsw_build_parallel.c
 *	  Parallel CREATE INDEX.  The leader and its workers scan the heap with
 *	  a parallel table scan and insert every vector into one graph in
 *	  dynamic shared memory, with the insertion algorithm every other path
 *	  uses (hnsw_insert_element).  The leader then plans the pages exactly
 *	  as a serial build does (write_arena() in hnsw_build.c reads the shared
 *	  graph through an array of ArenaNode pointing into it), and the workers,
 *	  which waited for that plan, write ranges of them beside it
 *	  (hnsw_parallel_write()).
 *
 * Shared memory: a DSA area whose control object lives in the parallel
 * context's segment, limited to maintenance_work_mem (the same budget as a
 * serial build's arena).  Nodes are numbered 0, 1, ... by an atomic
 * counter; the node table maps a number to the dsa_pointer of its record:
 * header (spinlock, level, heap TIDs), then the vector, then its code
 * (hnsw_codes.h: the graph is walked on codes, as the serial arena's is),
 * then the neighbour lists in the serial arena's layout.  The vector and
 * the code lie at offsets that do not depend on the level, so reading or
 * prefetching them never touches the header, whose line the other
 * participants write whenever they take the node's spinlock (reading the
 * level there to find the code cost the parallel build most of its
 * second core).  Each participant
 * carves records out of its own chunks and keeps a private cache of local
 * addresses.
 *
 * Locking: a node's spinlock protects its heap TIDs and serialises the
 * writers of its lists.  A writer replaces a list only if it still equals
 * what it read, else the algorithm reads again and retries (the optimistic
 * protocol hnsw_graph.c already follows on pages); it makes the node's
 * version odd while it writes.  Readers take no lock: they copy a list
 * while the version is even and unchanged (par_neighbors()).  The entry
 * point and the counters are under the shared mutex.  No code path holds two
 * spinlocks at once, or calls anything that can fail while holding one.
 * A vector never changes once its node is published: the node table entry
 * is written behind a write barrier, and no one learns a node's number
 * before that (numbers travel only through lists and the entry point,
 * which are written under spinlocks afterwards).
 *
 * Memory spaces: each space is a graph of its own in the shared area, so
 * participants inserting rows of different spaces never meet.  A space
 * (ParSpace: key, spinlock, entry point, smallest heap TID) lives in the
 * space table, an open-addressing table of dsa_pointers with at least twice
 * as many slots as there can be nodes.  A participant finds its row's space
 * by probing; a new one is carved from its own chunk and published by a
 * compare-and-swap of the first empty slot on the key's probe sequence (a
 * participant losing that race finds the winner's space there).  Slots only
 * ever go from empty to set, and a space's key and number never change.
 * The space's spinlock guards its entry point and smallest heap TID, as
 * the shared mutex guards the entry point of an index without spaces; a
 * node records its space's number.  Space numbers are handed out in order
 * of creation, which depends on timing; the leader renumbers the spaces by
 * their smallest heap TID, the order in which a serial build's heap scan
 * meets them, so directory, space numbers and page placement are a serial
 * build's.
 *
 * Running out of memory: before each insertion a participant reserves room
 * for the largest possible node (and a space).  If it cannot, it raises the
 * shared overflow flag; every participant then skips the rest of its scan,
 * and the leader discards the shared graph and builds serially instead (a
 * serial build can continue on disk).
 *
 * The leader takes a share of the heap like a worker unless
 * parallel_leader_participation is off (as in btree's parallel builds).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/mman.h>
#include <unistd.h>

#include "access/parallel.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "commands/progress.h"
#include "miscadmin.h"
#include "optimizer/optimizer.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "port/pg_bitutils.h"
#include "storage/condition_variable.h"
#include "storage/lwlock.h"
#include "storage/spin.h"
#include "utils/dsa.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "hnsw_build.h"

#define PARALLEL_KEY_SHARED		UINT64CONST(0xE4A0000000000001)
#define PARALLEL_KEY_AREA		UINT64CONST(0xE4A0000000000002)

/* the part of the area inside the parallel context's segment */
#define PAR_AREA_INPLACE	(1024 * 1024)
/* the piece of the area a participant carves node records out of */
#define PAR_CHUNK_SIZE		(1024 * 1024)

typedef struct HnswParShared
{
	/* set by the leader before the workers start, read-only afterwards */
	Oid			heaprelid;
	Oid			indexrelid;
	bool		isconcurrent;
	int			m;
	int			ef_construction;
	int			read_tries;		/* engram_hnsw.parallel_read_tries of the leader */
	int			metric;
	int			code_kind;		/* HNSW_CODE_* of the codes, and their seed */
	uint32		code_seed;
	int			tranche_id;
	int			nparticipants;	/* planned: workers + the leader */
	uint32		maxnodes;
	dsa_pointer table;			/* maxnodes dsa_pointers, node -> record */
	int			nspacekeys;		/* 1: every row goes to its space's graph */
	uint32		space_cap;		/* slots of the space table, a power of 2 */
	dsa_pointer spaces;			/* the space table: space_cap slots, each 0
								 * or a ParSpace's dsa_pointer */

	pg_atomic_uint32 dims;		/* 0 until the first vector fixes it */
	pg_atomic_uint32 nnodes;	/* node numbers handed out */
	pg_atomic_uint32 overflow;	/* out of memory: everyone stops */
	pg_atomic_uint32 nspaces;	/* provisional space numbers handed out */
	pg_atomic_uint64 tuples_done;	/* vectors inserted (progress) */

	slock_t		mutex;			/* protects the rest */
	HnswNode	entry;
	int			entry_level;
	double		reltuples;
	double		indtuples;
	int			graph_done;		/* workers done with their share of the graph */
	int			next;			/* PAR_NEXT_*: what the waiting workers do */
	ConditionVariable cv;		/* signalled when either of the two changes */

	/*
	 * The page writing (hnsw_parallel_write()): set by the leader before
	 * next becomes PAR_NEXT_WRITE, read-only afterwards.
	 */
	bool		write_wal;		/* RelationNeedsWAL() in the leader */
	int			dims_final;
	uint32		nnodes_final;
	BlockNumber ndata;
	BlockNumber nblocks;
	int			nparts;
	dsa_pointer ord;			/* the HnswWritePlan's arrays */
	dsa_pointer etids;
	dsa_pointer ntids;
	dsa_pointer vtids;
	dsa_pointer space_map;		/* provisional space number -> final, or
								 * invalid without spaces */

	/* the parallel table scan descriptor follows, MAXALIGNed */
} HnswParShared;

/* HnswParShared.next */
#define PAR_NEXT_WAIT	0		/* the leader has not decided yet */
#define PAR_NEXT_WRITE	1		/* write this worker's part of the plan */
#define PAR_NEXT_EXIT	2		/* nothing to write (or the build failed) */

#define ParallelTableScanFromHnswParShared(sh) \
	((ParallelTableScanDesc) ((char *) (sh) + MAXALIGN(sizeof(HnswParShared))))

typedef struct ParNode
{
	slock_t		lock;			/* serialises writers of the lists; protects
								 * the heap TIDs */
	uint8		level;
	uint8		ntids;
	ItemPointerData tids[HNSW_HEAPTIDS];
	uint32		space_no;		/* its space's provisional number (0: none) */
	/*
	 * then, each MAXALIGNed: the vector, its code, the lists' version (a
	 * pg_atomic_uint32, odd while a writer changes a list) and the lists
	 * (arena_nbr_size bytes)
	 */
} ParNode;

#define PAR_NODE_HDR	MAXALIGN(sizeof(ParNode))

/*
 * A memory space: its own graph in the shared area.  Published once, by a
 * compare-and-swap of an empty slot of the space table; key, hash and
 * space_no never change afterwards.
 */
typedef struct ParSpace
{
	slock_t		lock;			/* protects entry, entry_level and first */
	uint32		space_no;		/* provisional: in order of creation */
	uint32		hash;
	HnswNode	entry;
	int			entry_level;
	ItemPointerData first;		/* the smallest heap TID indexed in it */
	uint16		keylen;
	char		key[FLEXIBLE_ARRAY_MEMBER];
} ParSpace;

#define PAR_SPACE_SIZE(len)	MAXALIGN(offsetof(ParSpace, key) + (len))

StaticAssertDecl(sizeof(dsa_pointer) == sizeof(uint64),
				 "the space table stores dsa_pointers in 64-bit atomics");

/* one participant's view of the shared graph */
typedef struct HnswParGraph
{
	HnswGraph	graph;			/* must be first */
	HnswParShared *sh;
	dsa_area   *area;
	dsa_pointer *table;			/* the node table, local address */
	pg_atomic_uint64 *space_slots;	/* the space table, local address */
	ParSpace   *cur_space;		/* the space of the row being inserted */
	ParNode   **cache;			/* node number -> local address */
	uint8	   *levels;			/* node number -> its level, where cached */
	uint32		cache_cap;
	dsa_pointer chunk;			/* where the next record goes */
	char	   *chunk_addr;
	Size		chunk_left;
	float	   *code_scratch;	/* for encoding (allocated with dims known) */
	Relation	index;
	bool		leader;
	int			read_tries;		/* lock-free attempts at reading a list */
	MemoryContext tmp_cxt;		/* reset after every tuple */
	double		indtuples;
} HnswParGraph;

struct HnswParallelBuild
{
	ParallelContext *pcxt;
	HnswParShared *sh;
	dsa_area   *area;
	Snapshot	snapshot;
	uint32	   *space_map;		/* provisional space number -> final */
	uint32		nspace_map;
	bool		finished;		/* the workers have exited */
};

static inline Size
par_code_size(HnswGraph *g)
{
	return g->code_kind == HNSW_CODE_NONE ? 0 : hnsw_code_size(g->code_kind, g->dims);
}

static inline Size
par_node_size(HnswGraph *g, int level)
{
	return PAR_NODE_HDR + MAXALIGN(sizeof(float) * g->dims) +
		MAXALIGN(par_code_size(g)) + MAXALIGN(sizeof(pg_atomic_uint32)) +
		MAXALIGN(arena_nbr_size(g->m, level));
}

static inline float *
par_vec(ParNode *n)
{
	return (float *) ((char *) n + PAR_NODE_HDR);
}

static inline unsigned char *
par_code(ParNode *n, int dims)
{
	return (unsigned char *) par_vec(n) + MAXALIGN(sizeof(float) * dims);
}

/*
 * The lists' version sits on the cache line of the layer 0 list's start,
 * so reading a list touches no line that holds only the header.
 */
static inline pg_atomic_uint32 *
par_nbr_version(ParNode *n, HnswGraph *g)
{
	return (pg_atomic_uint32 *) (par_code(n, g->dims) + MAXALIGN(par_code_size(g)));
}

static inline uint32 *
par_nbr(ParNode *n, HnswGraph *g)
{
	return (uint32 *) ((char *) par_nbr_version(n, g) +
					   MAXALIGN(sizeof(pg_atomic_uint32)));
}

static ParNode *
par_node_slow(HnswParGraph *pg, HnswNode node)
{
	dsa_pointer dp;

	if (node >= pg->sh->maxnodes)
		elog(ERROR, "engram_hnsw parallel build: node %llu out of range",
			 (unsigned long long) node);
	if (node >= pg->cache_cap)
	{
		uint32		newcap = Max(1024, pg->cache_cap);

		while (newcap <= node)
			newcap *= 2;
		newcap = Min(newcap, pg->sh->maxnodes);
		if (pg->cache == NULL)
		{
			pg->cache = MemoryContextAllocExtended(pg->graph.cxt, sizeof(ParNode *) * newcap,
												   MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
			pg->levels = MemoryContextAllocExtended(pg->graph.cxt, newcap, MCXT_ALLOC_HUGE);
		}
		else
		{
			pg->cache = repalloc_huge(pg->cache, sizeof(ParNode *) * newcap);
			memset(pg->cache + pg->cache_cap, 0, sizeof(ParNode *) * (newcap - pg->cache_cap));
			pg->levels = repalloc_huge(pg->levels, newcap);
		}
		pg->cache_cap = newcap;
	}
	pg_read_barrier();
	dp = pg->table[node];
	if (!DsaPointerIsValid(dp))
		elog(ERROR, "engram_hnsw parallel build: node %llu is not published",
			 (unsigned long long) node);
	pg->cache[node] = dsa_get_address(pg->area, dp);
	pg->levels[node] = pg->cache[node]->level;
	return pg->cache[node];
}

static inline ParNode *
par_node(HnswParGraph *pg, HnswNode node)
{
	if (likely(node < pg->cache_cap && pg->cache[node] != NULL))
		return pg->cache[node];
	return par_node_slow(pg, node);
}

/* ----------------------------------------------------------------
 * The shared graph (HnswGraphOps)
 * ----------------------------------------------------------------
 */
static float
par_distance(HnswGraph *g, HnswNode node, const float *q, bool *skip)
{
	*skip = false;
	return g->dist(q, par_vec(par_node((HnswParGraph *) g, node)), g->dims);
}

static float
par_estimate(HnswGraph *g, HnswNode node, const HnswCodeQuery *cq, bool *skip)
{
	*skip = false;
	return hnsw_code_estimate(cq, par_code(par_node((HnswParGraph *) g, node), g->dims));
}

static const unsigned char *
par_peek_code(HnswGraph *g, HnswNode node)
{
	return par_code(par_node((HnswParGraph *) g, node), g->dims);
}

static const float *
par_vector(HnswGraph *g, HnswNode node)
{
	return par_vec(par_node((HnswParGraph *) g, node));
}

/* layer 0, from the lists' version word, which par_neighbors() reads first */
static const void *
par_peek_neighbors(HnswGraph *g, HnswNode node, int layer)
{
	if (layer > 0)
		return NULL;
	return par_nbr_version(par_node((HnswParGraph *) g, node), g);
}

/*
 * Readers of a list do not take the node's spinlock: they copy the list
 * between two reads of the lists' version and start again if a writer was
 * at work (the version was odd) or has been since (it changed).  A reader
 * thus never writes a line of the node, which the other participants would
 * otherwise have to fetch back for every list they read (taking the
 * spinlock for each read cost 8% of a parallel build's CPU).  After
 * engram_hnsw.parallel_read_tries attempts (64; 0 in the regression test
 * of this path) it waits for the writer on the spinlock, which has the
 * stuck-spinlock check.
 */

static int
par_neighbors(HnswGraph *g, HnswNode node, int layer, HnswNode *out)
{
	HnswParGraph *pg = (HnswParGraph *) g;
	ParNode    *n = par_node(pg, node);
	pg_atomic_uint32 *version = par_nbr_version(n, g);
	const volatile uint32 *list;
	int			cnt;

	/* par_node() cached the level: the header's line stays untouched */
	if (layer > pg->levels[node])
		return 0;
	list = par_nbr(n, g) + arena_layer_start(g->m, layer);
	for (int tries = 0; tries < pg->read_tries; tries++)
	{
		uint32		v = pg_atomic_read_u32(version);

		if (v & 1)
		{
			pg_spin_delay();
			continue;
		}
		pg_read_barrier();
		cnt = list[0];
		for (int i = 0; i < cnt; i++)
			out[i] = list[i + 1];
		pg_read_barrier();
		if (pg_atomic_read_u32(version) == v)
			return cnt;
	}
	SpinLockAcquire(&n->lock);
	cnt = list[0];
	for (int i = 0; i < cnt; i++)
		out[i] = list[i + 1];
	SpinLockRelease(&n->lock);
	return cnt;
}

static bool
par_replace_neighbors(HnswGraph *g, HnswNode node, int layer,
					  const HnswNode *oldlist, int nold,
					  const HnswNode *newlist, int nnew)
{
	HnswParGraph *pg = (HnswParGraph *) g;
	ParNode    *n = par_node(pg, node);
	uint32	   *list;
	bool		same;

	if (layer > pg->levels[node])
		return true;
	list = par_nbr(n, g) + arena_layer_start(g->m, layer);
	SpinLockAcquire(&n->lock);
	same = ((int) list[0] == nold);
	for (int i = 0; same && i < nold; i++)
		same = (list[i + 1] == (uint32) oldlist[i]);
	if (same)
	{
		pg_atomic_uint32 *version = par_nbr_version(n, g);
		uint32		v = pg_atomic_read_u32(version);

		pg_atomic_write_u32(version, v + 1);
		pg_write_barrier();
		list[0] = nnew;
		for (int i = 0; i < nnew; i++)
			list[i + 1] = (uint32) newlist[i];
		pg_write_barrier();
		pg_atomic_write_u32(version, v + 2);
	}
	SpinLockRelease(&n->lock);
	return same;
}

/* the entry point of the graph being inserted into, and its spinlock */
static void
par_entry_of(HnswParGraph *pg, slock_t **lock, HnswNode **entry, int **level)
{
	if (pg->cur_space)
	{
		*lock = &pg->cur_space->lock;
		*entry = &pg->cur_space->entry;
		*level = &pg->cur_space->entry_level;
		return;
	}
	*lock = &pg->sh->mutex;
	*entry = &pg->sh->entry;
	*level = &pg->sh->entry_level;
}

static void
par_get_entry(HnswGraph *g, HnswNode *node, int *level)
{
	slock_t    *lock;
	HnswNode   *entry;
	int		   *entry_level;

	par_entry_of((HnswParGraph *) g, &lock, &entry, &entry_level);
	SpinLockAcquire(lock);
	*node = *entry;
	*level = *entry_level;
	SpinLockRelease(lock);
}

static bool
par_set_entry(HnswGraph *g, HnswNode node, int level, const HnswNode *expect,
			  HnswNode *cur, int *curlevel)
{
	slock_t    *lock;
	HnswNode   *entry;
	int		   *entry_level;
	bool		change;

	par_entry_of((HnswParGraph *) g, &lock, &entry, &entry_level);
	SpinLockAcquire(lock);
	change = expect ? (*entry == *expect) :
		(*entry == HNSW_INVALID_NODE || level > *entry_level);
	if (change)
	{
		*entry = node;
		*entry_level = level;
	}
	*cur = *entry;
	*curlevel = *entry_level;
	SpinLockRelease(lock);
	return change;
}

/* the encoder's scratch space, allocated once dims is known */
static float *
par_code_scratch(HnswParGraph *pg)
{
	HnswGraph  *g = &pg->graph;

	if (pg->code_scratch == NULL)
		pg->code_scratch = MemoryContextAlloc(g->cxt, sizeof(float) *
											  Max(hnsw_code_scratch_floats(g->code_kind,
																		   g->dims), 1));
	return pg->code_scratch;
}

static HnswNode
par_create_node(HnswGraph *g, const float *vec, int level, ItemPointer heaptid,
				HnswCandidate **selected, int *nselected)
{
	HnswParGraph *pg = (HnswParGraph *) g;
	Size		size = par_node_size(g, level);
	uint32		id = pg_atomic_fetch_add_u32(&pg->sh->nnodes, 1);
	dsa_pointer dp = pg->chunk;
	ParNode    *n = (ParNode *) pg->chunk_addr;
	uint32	   *nbr;

	/* par_reserve() made room for this before the insertion began */
	if (id >= pg->sh->maxnodes || size > pg->chunk_left)
		elog(ERROR, "engram_hnsw parallel build: no room reserved for node %u", id);
	pg->chunk += size;
	pg->chunk_addr += size;
	pg->chunk_left -= size;

	SpinLockInit(&n->lock);
	n->level = level;
	n->ntids = 1;
	n->tids[0] = *heaptid;
	n->space_no = pg->cur_space ? pg->cur_space->space_no : 0;
	pg_atomic_init_u32(par_nbr_version(n, g), 0);
	nbr = par_nbr(n, g);
	for (int l = 0; l <= level; l++)
	{
		uint32	   *list = nbr + arena_layer_start(g->m, l);

		list[0] = nselected[l];
		for (int i = 0; i < nselected[l]; i++)
			list[i + 1] = (uint32) selected[l][i].node;
	}
	memcpy(par_vec(n), vec, sizeof(float) * g->dims);
	if (g->code_kind != HNSW_CODE_NONE)
		hnsw_code_encode(g->code_kind, g->code_seed, g->metric, vec, g->dims,
						 par_code(n, g->dims), par_code_scratch(pg));

	/* publish: the record is complete before anyone can find its number */
	pg_write_barrier();
	pg->table[id] = dp;
	if (id < pg->cache_cap)
	{
		pg->cache[id] = n;
		pg->levels[id] = level;
	}
	return id;
}

static bool
par_add_heaptid(HnswGraph *g, HnswNode node, const float *vec, ItemPointer heaptid)
{
	ParNode    *n = par_node((HnswParGraph *) g, node);
	bool		added = false;

	SpinLockAcquire(&n->lock);
	if (n->ntids < HNSW_HEAPTIDS)
	{
		n->tids[n->ntids++] = *heaptid;
		added = true;
	}
	SpinLockRelease(&n->lock);
	return added;
}

static const HnswGraphOps par_graph_ops = {
	.distance = par_distance,
	.vector = par_vector,
	.neighbors = par_neighbors,
	.replace_neighbors = par_replace_neighbors,
	.get_entry = par_get_entry,
	.set_entry = par_set_entry,
	.create_node = par_create_node,
	.add_heaptid = par_add_heaptid,
	.peek_vector = par_vector,
	.peek_bytes = 1024,
	.estimate = par_estimate,
	.peek_code = par_peek_code,
	.peek_ahead = 5,
	.peek_neighbors = par_peek_neighbors,
};

/* ----------------------------------------------------------------
 * Scanning and inserting (leader and workers alike)
 * ----------------------------------------------------------------
 */

/*
 * Map the whole pages of a new chunk into this process at once.  Left to
 * page faults, the first write to each 4 kB page of shared memory traps
 * into the kernel; on a virtual machine the trap itself dominated, and the
 * faults took 4% of a parallel build's CPU.  The other participants still
 * fault on the pages they read, a group of pages at a time.  Kernels
 * without MADV_POPULATE_WRITE (before Linux 5.14) refuse the advice, and
 * the pages fault in as before.
 */
static void
par_populate(char *addr, Size len)
{
#ifdef MADV_POPULATE_WRITE
	uintptr_t	page = (uintptr_t) sysconf(_SC_PAGESIZE);
	uintptr_t	start = TYPEALIGN(page, (uintptr_t) addr);
	uintptr_t	end = TYPEALIGN_DOWN(page, (uintptr_t) addr + len);

	if (end > start)
		(void) madvise((void *) start, end - start, MADV_POPULATE_WRITE);
#endif
}

/* room for one more node of any level; false if memory is exhausted */
static bool
par_reserve(HnswParGraph *pg)
{
	HnswParShared *sh = pg->sh;
	Size		need = par_node_size(&pg->graph, hnsw_max_level(pg->graph.m)) +
		(sh->nspacekeys > 0 ? PAR_SPACE_SIZE(HNSW_MAX_SPACE_KEY) : 0);
	dsa_pointer dp;

	/* each participant creates at most one node per insertion */
	if ((uint64) pg_atomic_read_u32(&sh->nnodes) + sh->nparticipants >= sh->maxnodes)
		return false;
	if (pg->chunk_left >= need)
		return true;
	dp = dsa_allocate_extended(pg->area, Max(PAR_CHUNK_SIZE, need),
							   DSA_ALLOC_HUGE | DSA_ALLOC_NO_OOM);
	if (!DsaPointerIsValid(dp))
		return false;
	pg->chunk = dp;
	pg->chunk_addr = dsa_get_address(pg->area, dp);
	pg->chunk_left = Max(PAR_CHUNK_SIZE, need);
	par_populate(pg->chunk_addr, pg->chunk_left);
	return true;
}

/*
 * A new space for key, written at the start of the participant's chunk
 * (par_reserve() made room) but not yet taken from it.  NULL if the space
 * table is half full.
 */
static ParSpace *
par_new_space(HnswParGraph *pg, const HnswSpaceKey *key, ItemPointer tid)
{
	ParSpace   *sp = (ParSpace *) pg->chunk_addr;
	uint32		no = pg_atomic_fetch_add_u32(&pg->sh->nspaces, 1);

	if (no >= pg->sh->space_cap / 2 || PAR_SPACE_SIZE(key->len) > pg->chunk_left)
		return NULL;
	SpinLockInit(&sp->lock);
	sp->space_no = no + 1;
	sp->hash = key->hash;
	sp->entry = HNSW_INVALID_NODE;
	sp->entry_level = -1;
	sp->first = *tid;
	sp->keylen = key->len;
	memcpy(sp->key, key->data, key->len);
	return sp;
}

/*
 * The space of a row's key, found in the space table (open addressing,
 * linear probing) or created: a new space is published by swapping its
 * address into the first empty slot of its probe sequence; a participant
 * that loses that race finds the winner's space in the slot.  Slots only
 * ever go from empty to set, so every participant's probe for a key stops
 * at the same space.  The space's smallest heap TID is kept up to date.
 * NULL if the table is full.
 */
static ParSpace *
par_space(HnswParGraph *pg, Datum value, ItemPointer tid)
{
	HnswSpaceKey key = hnsw_space_key(pg->index, value);
	uint32		mask = pg->sh->space_cap - 1;
	uint32		i = key.hash & mask;

	for (uint32 probes = 0; probes < pg->sh->space_cap; probes++, i = (i + 1) & mask)
	{
		uint64		dp = pg_atomic_read_u64(&pg->space_slots[i]);
		ParSpace   *sp;

		if (dp == 0)
		{
			if ((sp = par_new_space(pg, &key, tid)) == NULL)
				return NULL;
			/* the swap is a full barrier: the space is complete before */
			if (pg_atomic_compare_exchange_u64(&pg->space_slots[i], &dp, (uint64) pg->chunk))
			{
				pg->chunk += PAR_SPACE_SIZE(key.len);
				pg->chunk_addr += PAR_SPACE_SIZE(key.len);
				pg->chunk_left -= PAR_SPACE_SIZE(key.len);
				return sp;
			}
			/* another participant filled the slot first: dp is its space */
		}
		pg_read_barrier();
		sp = dsa_get_address(pg->area, (dsa_pointer) dp);
		if (sp->hash == key.hash && sp->keylen == key.len &&
			memcmp(sp->key, key.data, key.len) == 0)
		{
			SpinLockAcquire(&sp->lock);
			if (ItemPointerCompare(tid, &sp->first) < 0)
				sp->first = *tid;
			SpinLockRelease(&sp->lock);
			return sp;
		}
	}
	return NULL;
}

static void
par_build_callback(Relation index, ItemPointer tid, Datum *values, bool *isnull,
				   bool tupleIsAlive, void *state)
{
	HnswParGraph *pg = (HnswParGraph *) state;
	HnswParShared *sh = pg->sh;
	int			attno = hnsw_vector_attno(index);
	MemoryContext oldcxt;
	float	   *vec;
	int			dims;
	bool		skip;

	if (isnull[attno - 1] || (sh->nspacekeys > 0 && isnull[0]) ||
		pg_atomic_read_u32(&sh->overflow) != 0)
		return;

	oldcxt = MemoryContextSwitchTo(pg->tmp_cxt);
	if (pg->graph.dims == 0)
		pg->graph.dims = pg_atomic_read_u32(&sh->dims);
	vec = hnsw_prepare_vector(index, sh->metric, values[attno - 1], pg->graph.dims,
							  &dims, &skip);
	if (!skip)
	{
		if (pg->graph.dims == 0)
		{
			/* the first vector of the build fixes the dimension */
			uint32		expect = 0;

			if (!pg_atomic_compare_exchange_u32(&sh->dims, &expect, (uint32) dims))
				(void) hnsw_prepare_vector(index, sh->metric, values[attno - 1],
										   (int) expect, &dims, &skip);
			pg->graph.dims = dims;
		}
		if (!par_reserve(pg) ||
			(sh->nspacekeys > 0 && (pg->cur_space = par_space(pg, values[0], tid)) == NULL))
			pg_atomic_write_u32(&sh->overflow, 1);
		else
		{
			uint64		done;

			hnsw_insert_element(&pg->graph, vec, tid);
			pg->indtuples++;
			done = pg_atomic_add_fetch_u64(&sh->tuples_done, 1);
			if (pg->leader && (done & 255) == 0)
				pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, (int64) done);
		}
	}
	pg->cur_space = NULL;
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(pg->tmp_cxt);
}

/* one participant's share: scan heap blocks and insert their vectors */
static void
par_participate(HnswParShared *sh, dsa_area *area, Relation heap, Relation index,
				IndexInfo *indexInfo, bool leader)
{
	HnswParGraph pg;
	TableScanDesc scan;
	double		reltuples;
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "engram_hnsw parallel build",
											  ALLOCSET_DEFAULT_SIZES);

	memset(&pg, 0, sizeof(pg));
	pg.graph.ops = &par_graph_ops;
	pg.graph.dims = pg_atomic_read_u32(&sh->dims);
	pg.graph.m = sh->m;
	pg.graph.max_level = hnsw_max_level(sh->m);
	pg.graph.ef_construction = sh->ef_construction;
	pg.graph.metric = sh->metric;
	pg.graph.dist = hnsw_metric_distance(sh->metric);
	pg.graph.code_kind = sh->code_kind;
	pg.graph.code_seed = sh->code_seed;
	pg.graph.cxt = cxt;
	pg.graph.dense = true;
	pg.sh = sh;
	pg.area = area;
	pg.table = dsa_get_address(area, sh->table);
	if (sh->nspacekeys > 0)
		pg.space_slots = dsa_get_address(area, sh->spaces);
	pg.chunk = InvalidDsaPointer;
	pg.index = index;
	pg.leader = leader;
	pg.read_tries = sh->read_tries;
	pg.tmp_cxt = AllocSetContextCreate(cxt, "engram_hnsw parallel build tuple",
									   ALLOCSET_DEFAULT_SIZES);

	scan = table_beginscan_parallel(heap, ParallelTableScanFromHnswParShared(sh));
	reltuples = table_index_build_scan(heap, index, indexInfo, true, leader,
									   par_build_callback, &pg, scan);

	SpinLockAcquire(&sh->mutex);
	sh->reltuples += reltuples;
	sh->indtuples += pg.indtuples;
	SpinLockRelease(&sh->mutex);

	MemoryContextDelete(cxt);
}

/*
 * The shared graph as the serial writer reads it: an ArenaNode per node,
 * pointing into the shared records (space numbers through space_map, the
 * final numbers, when there are spaces).
 */
static void
par_arena_nodes(HnswParShared *sh, dsa_area *area, HnswGraph *g, uint32 nnodes,
				const uint32 *space_map, ArenaNode *out)
{
	dsa_pointer *table = dsa_get_address(area, sh->table);

	for (uint32 i = 0; i < nnodes; i++)
	{
		ParNode    *n = dsa_get_address(area, table[i]);
		ArenaNode  *an = &out[i];

		an->vec = par_vec(n);
		an->code = g->code_kind != HNSW_CODE_NONE ? par_code(n, g->dims) : NULL;
		an->nbr = par_nbr(n, g);
		an->space_no = space_map ? space_map[n->space_no] : 0;
		an->level = n->level;
		an->ntids = n->ntids;
		memcpy(an->tids, n->tids, sizeof(ItemPointerData) * n->ntids);
		if ((i & 4095) == 0)
			CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Write this participant's parts of the plan: the data and the vector
 * pages of range "first" (a worker's ParallelWorkerNumber; the leader's is
 * the last), up to "last".  The leader passes the number of workers
 * launched as first, and so also writes the ranges of workers that were
 * planned but not launched.
 */
static void
par_write_parts(HnswBuildState *bs, const HnswWritePlan *plan, int first, int last)
{
	for (int r = first; r <= last && r < plan->nparts; r++)
	{
		hnsw_write_part(bs, plan, r);
		hnsw_write_part(bs, plan, plan->nparts + r);
	}
}

/*
 * A worker writing pages: the leader's plan and the shared graph, read
 * through a writer's state of its own.
 */
static void
par_write_main(HnswParShared *sh, dsa_area *area, Relation index)
{
	HnswBuildState *bs = palloc0(sizeof(HnswBuildState));
	HnswWritePlan plan;

	bs->index = index;
	bs->dims = sh->dims_final;
	bs->nspacekeys = sh->nspacekeys;
	bs->graph.dims = sh->dims_final;
	bs->graph.m = sh->m;
	bs->graph.max_level = hnsw_max_level(sh->m);
	bs->graph.metric = sh->metric;
	bs->graph.code_kind = sh->code_kind;
	bs->graph.code_seed = sh->code_seed;
	bs->nnodes = sh->nnodes_final;
	bs->nodes = palloc_extended(sizeof(ArenaNode) * Max(bs->nnodes, 1), MCXT_ALLOC_HUGE);
	par_arena_nodes(sh, area, &bs->graph, bs->nnodes,
					DsaPointerIsValid(sh->space_map) ?
					dsa_get_address(area, sh->space_map) : NULL, bs->nodes);

	plan.ord = dsa_get_address(area, sh->ord);
	plan.etids = dsa_get_address(area, sh->etids);
	plan.ntids = dsa_get_address(area, sh->ntids);
	plan.vtids = dsa_get_address(area, sh->vtids);
	plan.ndata = sh->ndata;
	plan.nblocks = sh->nblocks;
	plan.nparts = sh->nparts;

	hnsw_write_begin(bs);
	bs->write_wal = sh->write_wal;
	par_write_parts(bs, &plan, ParallelWorkerNumber, ParallelWorkerNumber);
	hnsw_write_end(bs);
	pfree(bs->nodes);
	pfree(bs);
}

/* tell the workers waiting in par_worker_next() what to do */
static void
par_tell_workers(HnswParShared *sh, int next)
{
	SpinLockAcquire(&sh->mutex);
	sh->next = next;
	SpinLockRelease(&sh->mutex);
	ConditionVariableBroadcast(&sh->cv);
}

/*
 * A worker done with its share of the graph: report it to the leader and
 * wait for its plan of the pages (PAR_NEXT_WRITE) or its word that there
 * is nothing to write.  Waiting, rather than exiting and being started
 * again, keeps this process's mappings of the shared area: a new process
 * maps each 4 kB page of it on first touch, which on a virtual machine
 * costs microseconds a page (0.5 s for 60 000 nodes of 784 dimensions).
 */
static int
par_worker_next(HnswParShared *sh)
{
	int			next;

	SpinLockAcquire(&sh->mutex);
	sh->graph_done++;
	SpinLockRelease(&sh->mutex);
	ConditionVariableBroadcast(&sh->cv);

	ConditionVariablePrepareToSleep(&sh->cv);
	for (;;)
	{
		SpinLockAcquire(&sh->mutex);
		next = sh->next;
		SpinLockRelease(&sh->mutex);
		if (next != PAR_NEXT_WAIT)
			break;
		ConditionVariableSleep(&sh->cv, PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
	return next;
}

/* entry point of a parallel worker (CreateParallelContext names it) */
void
hnsw_parallel_build_main(dsm_segment *seg, shm_toc *toc)
{
	HnswParShared *sh = shm_toc_lookup(toc, PARALLEL_KEY_SHARED, false);
	void	   *place = shm_toc_lookup(toc, PARALLEL_KEY_AREA, false);
	LOCKMODE	heap_lockmode;
	LOCKMODE	index_lockmode;
	Relation	heap;
	Relation	index;
	IndexInfo  *indexInfo;
	dsa_area   *area;

	/* the lock modes index.c took in the leader (we are in its lock group) */
	if (!sh->isconcurrent)
	{
		heap_lockmode = ShareLock;
		index_lockmode = AccessExclusiveLock;
	}
	else
	{
		heap_lockmode = ShareUpdateExclusiveLock;
		index_lockmode = RowExclusiveLock;
	}
	heap = table_open(sh->heaprelid, heap_lockmode);
	index = index_open(sh->indexrelid, index_lockmode);
	indexInfo = BuildIndexInfo(index);
	indexInfo->ii_Concurrent = sh->isconcurrent;

	LWLockRegisterTranche(sh->tranche_id, "engram_hnsw_build");
	area = dsa_attach_in_place(place, seg);
	par_participate(sh, area, heap, index, indexInfo, false);
	if (par_worker_next(sh) == PAR_NEXT_WRITE)
		par_write_main(sh, area, index);
	dsa_detach(area);

	index_close(index, index_lockmode);
	table_close(heap, heap_lockmode);
}

/* ----------------------------------------------------------------
 * The leader
 * ----------------------------------------------------------------
 */

/*
 * Wait until every worker launched has done its share of the graph (and
 * waits in par_worker_next()).  A worker that failed to start would never
 * report: WaitForParallelWorkersToAttach() raises that error first, and a
 * worker's own error reaches us while we sleep.
 */
static void
par_wait_graph(HnswParallelBuild *pb)
{
	ParallelContext *pcxt = pb->pcxt;
	HnswParShared *sh = pb->sh;

	if (pcxt->nworkers_launched == 0)
		return;
	WaitForParallelWorkersToAttach(pcxt);
	ConditionVariablePrepareToSleep(&sh->cv);
	for (;;)
	{
		int			done;

		SpinLockAcquire(&sh->mutex);
		done = sh->graph_done;
		SpinLockRelease(&sh->mutex);
		if (done >= pcxt->nworkers_launched)
			break;
		ConditionVariableSleep(&sh->cv, PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
}

/*
 * With memory spaces: the space table, at least twice as many slots as
 * there can be nodes (every space holds one), so that it is at most half
 * full.  False if the memory is not there.
 */
static bool
par_space_table(HnswParShared *sh, dsa_area *area)
{
	if (sh->nspacekeys == 0)
		return true;
	sh->maxnodes = Min(sh->maxnodes, (uint32) 1 << 30);
	sh->space_cap = pg_nextpower2_32(Max(sh->maxnodes, 512) * 2);
	sh->spaces = dsa_allocate_extended(area, sizeof(pg_atomic_uint64) * sh->space_cap,
									   DSA_ALLOC_HUGE | DSA_ALLOC_NO_OOM | DSA_ALLOC_ZERO);
	return DsaPointerIsValid(sh->spaces);
}

static int
par_space_cmp(const void *a, const void *b)
{
	return ItemPointerCompare(&(*(ParSpace *const *) a)->first,
							  &(*(ParSpace *const *) b)->first);
}

/*
 * Hand the shared spaces to the serial writer: numbered 1, 2, ... by their
 * smallest heap TID, which is the order a serial build's heap scan meets
 * them in, so the numbers, the directory and the placement are a serial
 * build's.  Returns provisional number -> final number.
 */
static uint32 *
par_take_spaces(HnswBuildState *bs, HnswParShared *sh, dsa_area *area)
{
	pg_atomic_uint64 *slots = dsa_get_address(area, sh->spaces);
	uint32		nprov = pg_atomic_read_u32(&sh->nspaces);
	ParSpace  **list = palloc_extended(sizeof(ParSpace *) * Max(nprov, 1), MCXT_ALLOC_HUGE);
	uint32	   *map = palloc_extended(sizeof(uint32) * (nprov + 1),
									  MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	uint32		n = 0;

	for (uint32 i = 0; i < sh->space_cap; i++)
	{
		uint64		dp = pg_atomic_read_u64(&slots[i]);

		if (dp != 0)
			list[n++] = dsa_get_address(area, (dsa_pointer) dp);
	}
	qsort(list, n, sizeof(ParSpace *), par_space_cmp);
	for (uint32 k = 0; k < n; k++)
	{
		BuildSpace *b = hnsw_build_space(bs, list[k]->key, list[k]->keylen, list[k]->hash);

		if (b->space_no != k + 1)
			elog(ERROR, "engram_hnsw parallel build: space key found twice");
		b->entry = list[k]->entry;
		b->entry_level = list[k]->entry_level;
		map[list[k]->space_no] = b->space_no;
		if ((k & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	pfree(list);
	return map;
}

/*
 * Build bs's graph in parallel with up to nworkers workers.  On success the
 * arena of bs describes the shared graph (its nodes point into shared
 * memory) and the caller writes it, then calls hnsw_parallel_build_end().
 * Returns NULL if the build must be done serially instead: no dynamic
 * shared memory, or maintenance_work_mem ran out (a NOTICE says so).
 */
HnswParallelBuild *
hnsw_parallel_build(HnswBuildState *bs, IndexInfo *indexInfo, int nworkers,
					double *reltuples)
{
	Relation	heap = bs->heap;
	Relation	index = bs->index;
	int			m = bs->graph.m;
	ParallelContext *pcxt;
	Snapshot	snapshot;
	Size		estshared;
	Size		estarea = dsa_minimum_size() + PAR_AREA_INPLACE;
	HnswParShared *sh;
	void	   *place;
	dsa_area   *area;
	HnswParallelBuild *pb;
	uint32	   *space_map = NULL;
	BlockNumber pages;
	double		tuples;
	double		allvisfrac;
	double		maxnodes;
	uint32		nnodes;

	/*
	 * Node numbers: the estimated row count with room to spare, as many as
	 * the memory could hold at most.
	 */
	table_relation_estimate_size(heap, NULL, &pages, &tuples, &allvisfrac);
	maxnodes = Min(tuples * 1.5 + 10000,
				   (double) bs->mem_limit /
				   (PAR_NODE_HDR + MAXALIGN(arena_nbr_size(m, 0)) + sizeof(dsa_pointer) +
					(bs->nspacekeys > 0 ? 4 * sizeof(dsa_pointer) : 0)));
	maxnodes = Min(maxnodes, (double) (MaxAllocHugeSize / sizeof(dsa_pointer)));
	maxnodes = Min(maxnodes, (double) PG_INT32_MAX);
	if (maxnodes < 1024)
		return NULL;

	EnterParallelMode();
	pcxt = CreateParallelContext("engram_hnsw", "hnsw_parallel_build_main", nworkers);
	snapshot = indexInfo->ii_Concurrent ? RegisterSnapshot(GetTransactionSnapshot()) : SnapshotAny;

	estshared = add_size(MAXALIGN(sizeof(HnswParShared)),
						 table_parallelscan_estimate(heap, snapshot));
	shm_toc_estimate_chunk(&pcxt->estimator, estshared);
	shm_toc_estimate_chunk(&pcxt->estimator, estarea);
	shm_toc_estimate_keys(&pcxt->estimator, 2);
	InitializeParallelDSM(pcxt);

	pb = palloc0(sizeof(HnswParallelBuild));
	pb->pcxt = pcxt;
	pb->snapshot = snapshot;
	if (pcxt->seg == NULL)
	{
		/* no dynamic shared memory to be had */
		hnsw_parallel_build_end(pb);
		return NULL;
	}

	sh = shm_toc_allocate(pcxt->toc, estshared);
	memset(sh, 0, sizeof(HnswParShared));
	sh->heaprelid = RelationGetRelid(heap);
	sh->indexrelid = RelationGetRelid(index);
	sh->isconcurrent = indexInfo->ii_Concurrent;
	sh->m = m;
	sh->ef_construction = bs->graph.ef_construction;
	sh->read_tries = hnsw_parallel_read_tries;
	sh->metric = bs->metric;
	sh->code_kind = bs->graph.code_kind;
	sh->code_seed = bs->graph.code_seed;
	sh->nparticipants = nworkers + 1;
	sh->maxnodes = (uint32) maxnodes;
	pg_atomic_init_u32(&sh->dims, (uint32) bs->dims);
	pg_atomic_init_u32(&sh->nnodes, 0);
	pg_atomic_init_u32(&sh->overflow, 0);
	pg_atomic_init_u32(&sh->nspaces, 0);
	sh->nspacekeys = bs->nspacekeys;
	pg_atomic_init_u64(&sh->tuples_done, 0);
	SpinLockInit(&sh->mutex);
	ConditionVariableInit(&sh->cv);
	sh->next = PAR_NEXT_WAIT;
	sh->entry = HNSW_INVALID_NODE;
	sh->entry_level = -1;
	table_parallelscan_initialize(heap, ParallelTableScanFromHnswParShared(sh), snapshot);

	place = shm_toc_allocate(pcxt->toc, estarea);
	sh->tranche_id = LWLockNewTrancheId();
	LWLockRegisterTranche(sh->tranche_id, "engram_hnsw_build");
	area = dsa_create_in_place(place, estarea, sh->tranche_id, pcxt->seg);
	pb->area = area;
	pb->sh = sh;
	dsa_set_size_limit(area, Max(bs->mem_limit, estarea));
	sh->table = dsa_allocate_extended(area, sizeof(dsa_pointer) * sh->maxnodes,
									  DSA_ALLOC_HUGE | DSA_ALLOC_NO_OOM | DSA_ALLOC_ZERO);
	if (!DsaPointerIsValid(sh->table) || !par_space_table(sh, area))
	{
		hnsw_parallel_build_end(pb);
		return NULL;
	}

	shm_toc_insert(pcxt->toc, PARALLEL_KEY_SHARED, sh);
	shm_toc_insert(pcxt->toc, PARALLEL_KEY_AREA, place);
	LaunchParallelWorkers(pcxt);
	ereport(DEBUG1,
			(errmsg_internal("engram_hnsw parallel build of \"%s\" with %d workers",
							 RelationGetRelationName(index), nworkers)));
	ereport(DEBUG2,
			(errmsg_internal("engram_hnsw parallel build of \"%s\": %d workers launched",
							 RelationGetRelationName(index), pcxt->nworkers_launched)));

	/* the leader takes its share too, unless told not to (as btree's builds) */
	if (parallel_leader_participation || pcxt->nworkers_launched == 0)
		par_participate(sh, area, heap, index, indexInfo, true);
	par_wait_graph(pb);

	if (pg_atomic_read_u32(&sh->overflow) != 0)
	{
		ereport(NOTICE,
				(errmsg("engram_hnsw parallel build of \"%s\" ran out of maintenance_work_mem after %llu rows",
						RelationGetRelationName(index),
						(unsigned long long) pg_atomic_read_u64(&sh->tuples_done)),
				 errdetail("The index is built again serially, which can continue on disk."),
				 errhint("Increase maintenance_work_mem to build the whole graph in memory.")));
		hnsw_parallel_build_end(pb);
		return NULL;
	}

	/* hand the graph to the serial writer: ArenaNodes over the records */
	nnodes = pg_atomic_read_u32(&sh->nnodes);
	bs->dims = pg_atomic_read_u32(&sh->dims);
	bs->graph.dims = bs->dims;
	bs->maxnodes = Max(nnodes, 1);
	bs->nodes = repalloc_huge(bs->nodes, sizeof(ArenaNode) * bs->maxnodes);
	if (bs->nspacekeys > 0)
		space_map = par_take_spaces(bs, sh, area);
	par_arena_nodes(sh, area, &bs->graph, nnodes, space_map, bs->nodes);
	bs->nnodes = nnodes;
	bs->entry = sh->entry;
	bs->entry_level = sh->entry_level;
	bs->indtuples = sh->indtuples;
	*reltuples = sh->reltuples;
	pb->space_map = space_map;
	pb->nspace_map = bs->nspacekeys > 0 ? pg_atomic_read_u32(&sh->nspaces) + 1 : 0;
	pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, (int64) bs->indtuples);
	return pb;
}

/*
 * How many ranges each kind of page is cut into: one per planned
 * participant, so that each knows its own without asking the others.
 */
int
hnsw_parallel_write_parts(HnswParallelBuild *pb)
{
	return pb->pcxt->nworkers + 1;
}

/* a copy of len bytes in the area */
static dsa_pointer
par_share(dsa_area *area, const void *src, Size len)
{
	dsa_pointer dp = dsa_allocate_extended(area, Max(len, 1), DSA_ALLOC_HUGE);

	memcpy(dsa_get_address(area, dp), src, len);
	return dp;
}

/*
 * Write the planned pages with the workers, which wait for the plan in
 * par_worker_next(): the plan is copied into the area, and each
 * participant writes its own range of data pages and of vector pages
 * (par_write_parts()).  The relation must have all its blocks already.
 * Workers write WAL like the leader;
 * WaitForParallelWorkersToFinish() makes the leader's commit cover their
 * records.  The area's limit, maintenance_work_mem, bounded the graph; the
 * plan (about 22 bytes a node, as much again as the leader's own copy) is
 * allowed beyond it.  The leader writes the ranges of workers that did not
 * start.
 */
void
hnsw_parallel_write(HnswParallelBuild *pb, HnswBuildState *bs, const HnswWritePlan *plan)
{
	HnswParShared *sh = pb->sh;
	dsa_area   *area = pb->area;
	Size		tids = sizeof(ItemPointerData) * bs->nnodes;

	dsa_set_size_limit(area, SIZE_MAX);
	sh->write_wal = bs->write_wal;
	sh->dims_final = bs->dims;
	sh->nnodes_final = bs->nnodes;
	sh->ndata = plan->ndata;
	sh->nblocks = plan->nblocks;
	sh->nparts = plan->nparts;
	sh->ord = par_share(area, plan->ord, sizeof(uint32) * bs->nnodes);
	sh->etids = par_share(area, plan->etids, tids);
	sh->ntids = par_share(area, plan->ntids, tids);
	sh->vtids = par_share(area, plan->vtids, tids);
	sh->space_map = pb->space_map != NULL ?
		par_share(area, pb->space_map, sizeof(uint32) * pb->nspace_map) : InvalidDsaPointer;

	par_tell_workers(sh, PAR_NEXT_WRITE);
	par_write_parts(bs, plan, pb->pcxt->nworkers_launched, plan->nparts - 1);
	WaitForParallelWorkersToFinish(pb->pcxt);
	pb->finished = true;
}

/* release the shared memory and the workers' state */
void
hnsw_parallel_build_end(HnswParallelBuild *pb)
{
	/* workers waiting for pages to write: there are none */
	if (pb->sh != NULL && !pb->finished && pb->pcxt->nworkers_launched > 0)
	{
		par_tell_workers(pb->sh, PAR_NEXT_EXIT);
		WaitForParallelWorkersToFinish(pb->pcxt);
	}
	if (pb->area)
		dsa_detach(pb->area);
	if (IsMVCCSnapshot(pb->snapshot))
		UnregisterSnapshot(pb->snapshot);
	DestroyParallelContext(pb->pcxt);
	ExitParallelMode();
	pfree(pb);
}
