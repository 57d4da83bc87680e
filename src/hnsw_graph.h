/*-------------------------------------------------------------------------
 *
 * hnsw_graph.h
 *	  The graph interface: HnswGraph and HnswGraphOps, through which the one
 *	  graph algorithm (hnsw_graph.c) works on every storage (the in-memory
 *	  arena of a build, the DSA arena of a parallel build, index pages), and
 *	  the search structures.
 *
 *-------------------------------------------------------------------------
 */
#ifndef HNSW_GRAPH_H
#define HNSW_GRAPH_H

#include "storage/itemptr.h"
#include "utils/palloc.h"

#include "hnsw_codes.h"

/*
 * Inside the index every metric is a "smaller is closer" float (see
 * hnsw_distance.c).
 */
typedef float (*HnswDistanceFn) (const float *a, const float *b, int n);

/* a hint to start loading the cache line at p; never faults, reads nothing */
#if defined(__GNUC__) || defined(__clang__)
#define hnsw_prefetch(p)	__builtin_prefetch(p)
#else
#define hnsw_prefetch(p)	((void) (p))
#endif

/*
 * A node is an arena index (in-memory build) or a packed element TID
 * (on pages).  The algorithm never looks inside.
 */
typedef uint64 HnswNode;

#define HNSW_INVALID_NODE PG_UINT64_MAX

static inline HnswNode
HnswNodeFromTid(ItemPointer tid)
{
	return ((uint64) ItemPointerGetBlockNumberNoCheck(tid) << 16) |
		ItemPointerGetOffsetNumberNoCheck(tid);
}

static inline uint32
HnswNodeHash(HnswNode node)
{
	uint64		h = node;

	/* the 64-bit finaliser of MurmurHash3 */
	h ^= h >> 33;
	h *= UINT64CONST(0xff51afd7ed558ccd);
	h ^= h >> 33;
	h *= UINT64CONST(0xc4ceb9fe1a85ec53);
	h ^= h >> 33;
	return (uint32) h;
}

static inline void
HnswNodeToTid(HnswNode node, ItemPointer tid)
{
	ItemPointerSet(tid, (BlockNumber) (node >> 16), (OffsetNumber) (node & 0xFFFF));
}

typedef struct HnswCandidate
{
	HnswNode	node;
	float		dist;
} HnswCandidate;

typedef struct HnswGraph HnswGraph;

typedef struct HnswGraphOps
{
	/*
	 * Distance from q to node.  *skip is set when the node must not be
	 * returned as a result (deleted); it is still traversed.
	 */
	float		(*distance) (HnswGraph *g, HnswNode node, const float *q, bool *skip);

	/*
	 * Optional: whether node is deleted (distance's *skip), learnt without
	 * reading its vector.  NULL: the storage never has deleted nodes (the
	 * in-memory builds).
	 */
	bool		(*deleted) (HnswGraph *g, HnswNode node);

	/* the node's vector; valid until the graph's per-operation reset */
	const float *(*vector) (HnswGraph *g, HnswNode node);

	/* copy node's neighbour list at layer into out[]; returns the count */
	int			(*neighbors) (HnswGraph *g, HnswNode node, int layer, HnswNode *out);

	/*
	 * Replace node's list at layer with newlist, provided it still equals
	 * oldlist; returns false (and changes nothing) if it changed meanwhile.
	 */
	bool		(*replace_neighbors) (HnswGraph *g, HnswNode node, int layer,
									  const HnswNode *oldlist, int nold,
									  const HnswNode *newlist, int nnew);

	/* the current entry point; node invalid and level -1 if empty */
	void		(*get_entry) (HnswGraph *g, HnswNode *node, int *level);

	/*
	 * Compare-and-set of the entry point.  With expect == NULL, node becomes
	 * the entry point if the graph has none or level is above the current
	 * entry's level; otherwise only if the entry point is still *expect
	 * (HNSW_INVALID_NODE: only if the graph has none).  Returns whether it
	 * did; *cur and *curlevel receive the entry afterwards.
	 */
	bool		(*set_entry) (HnswGraph *g, HnswNode node, int level,
							  const HnswNode *expect, HnswNode *cur, int *curlevel);

	/*
	 * Store a new element with its own neighbour lists (selected[l] for
	 * l <= level) and return it.  It is not reachable until linked back.
	 */
	HnswNode	(*create_node) (HnswGraph *g, const float *vec, int level,
								ItemPointer heaptid, HnswCandidate **selected,
								int *nselected);

	/*
	 * Add heaptid to the existing element node if it holds exactly vec and
	 * has room; returns false if not.
	 */
	bool		(*add_heaptid) (HnswGraph *g, HnswNode node, const float *vec,
								ItemPointer heaptid);

	/*
	 * Optional (NULL if the storage cannot): where the node's vector is, or
	 * probably is, when that can be told without I/O or locks, so that a
	 * search prefetches the next neighbour's vector while computing the
	 * current distance.  For a prefetch only: page graphs may return an
	 * address in a shared buffer they hold no pin on, which must never be
	 * read.  May return NULL for a node it cannot tell.
	 */
	const float *(*peek_vector) (HnswGraph *g, HnswNode node);

	/*
	 * With peek_vector: how many bytes of a peeked vector to prefetch (at
	 * most; a shorter vector is prefetched whole).  Measured per storage:
	 * see prefetch_vector() in hnsw_graph.c.
	 */
	Size		peek_bytes;

	/*
	 * Optional (NULL if the storage keeps no compact codes): the estimated
	 * distance from a prepared query (hnsw_codes.h) to node, from node's
	 * code; *skip as for distance.  When set, searches walk on estimates
	 * and the algorithm takes exact distances (vector) only where they
	 * decide something: neighbour selection and the final order.
	 */
	float		(*estimate) (HnswGraph *g, HnswNode node, const HnswCodeQuery *cq,
							 bool *skip);

	/*
	 * Optional, with estimate: where the node's code is, as peek_vector
	 * says where its vector is (for a prefetch only; NULL if it cannot
	 * tell).  A walk on codes prefetches whole codes, peek_ahead
	 * neighbours ahead.
	 */
	const unsigned char *(*peek_code) (HnswGraph *g, HnswNode node);

	/*
	 * With peek_code: how many neighbours ahead of the estimate a walk
	 * prefetches codes (0 counts as 1).  Measured per storage: see
	 * prefetch_code() in hnsw_graph.c.
	 */
	int			peek_ahead;

	/*
	 * Optional: where node's list on layer lies, for a prefetch only (NULL
	 * if the storage cannot tell without reading more than the list).  A
	 * search prefetches the list of the candidate it will most likely
	 * expand next while it expands the current one.
	 */
	const void *(*peek_neighbors) (HnswGraph *g, HnswNode node, int layer);

	/*
	 * Optional: a search is about to compute the distances of these nodes;
	 * start loading into the CPU caches what it can without I/O or locks.
	 */
	void		(*prefetch) (HnswGraph *g, const HnswNode *nodes, int n);
} HnswGraphOps;

struct HnswGraph
{
	const HnswGraphOps *ops;
	int			dims;
	int			m;
	int			max_level;		/* highest level of a new node: the
								 * storage's limit (hnsw_max_level()) */
	int			ef_construction;
	int			metric;
	HnswDistanceFn dist;
	int			code_kind;		/* HNSW_CODE_*: what estimate reads */
	uint32		code_seed;		/* RaBitQ's rotation */
	MemoryContext cxt;			/* for allocations that live as long as g */
	bool		dense;			/* nodes are small integers (arena) */
	/*
	 * Visited marks for dense graphs, reused by successive searches: a
	 * bitmap of marks_cap bits, and the list of its words the current search
	 * has set (ntouched of them, room for touched_cap).
	 */
	uint64	   *marks;
	uint32		marks_cap;
	uint32	   *touched;
	uint32		ntouched;
	uint32		touched_cap;
};

/*
 * Binary heap of candidates; min-heap or max-heap by dist.  Items may also
 * be appended unordered (hnsw_heap_append()): items[0 .. nheap) are the
 * heap, the rest wait for hnsw_heap_settle(), which top, push and pop need
 * first.
 */
typedef struct HnswHeap
{
	HnswCandidate *items;
	int			n;
	int			nheap;
	int			cap;
	bool		max;
} HnswHeap;

/* visited set: dense bitmap for arena graphs, hash set for page graphs */
typedef struct HnswVisited HnswVisited;

/*
 * State of one search on one layer.  A search can be resumed: after
 * hnsw_search_run() the scan keeps calling hnsw_search_next(), which goes on
 * expanding the frontier in best-first order and never stops early.
 *
 * On a storage with codes (ops->estimate set, code_kind not
 * HNSW_CODE_NONE) a search walks on estimates: every dist it holds or
 * returns is one.  Whoever decides something from its results (selection,
 * links, the order rows are returned in) takes exact distances first:
 * hnsw_rerank_exact().
 */
typedef struct HnswSearch
{
	HnswGraph  *g;
	const float *q;
	int			layer;
	HnswHeap	cand;			/* min-heap: discovered, not yet expanded */
	HnswHeap	w;				/* max-heap: best ef found so far */
	HnswHeap	pending;		/* min-heap: discovered, not yet returned
								 * (appended, settled when read) */
	HnswHeap	far;			/* discovered beyond the ef best: for cand
								 * once the search resumes (appended) */
	bool		track_pending;
	HnswVisited *visited;
	HnswNode   *nbuf;			/* scratch for neighbour lists */
	HnswCandidate nearest_any;	/* nearest visited node on this layer,
								 * deleted or not (node invalid if none) */
	bool		nearest_skip;	/* ... and whether it is deleted */
	HnswCodeQuery *cq;			/* walking on codes: q prepared for
								 * estimates (NULL: exact distances) */
	bool		own_cq;			/* ... by the search, which frees it */
	Size		code_bytes;		/* ... and the size of one code */
} HnswSearch;

extern void hnsw_heap_init(HnswHeap *h, int cap, bool max);
extern void hnsw_heap_push(HnswHeap *h, HnswNode node, float dist);
extern void hnsw_heap_append(HnswHeap *h, HnswNode node, float dist);
extern void hnsw_heap_settle(HnswHeap *h);
extern HnswCandidate hnsw_heap_pop(HnswHeap *h);

static inline HnswCandidate *
hnsw_heap_top(HnswHeap *h)
{
	Assert(h->nheap == h->n);
	return h->n > 0 ? &h->items[0] : NULL;
}

extern HnswSearch *hnsw_search_begin(HnswGraph *g, const float *q, HnswCodeQuery *cq,
									 bool track_pending);
extern void hnsw_search_set_layer(HnswSearch *s, int layer, bool keep_best);
extern void hnsw_search_add_entry(HnswSearch *s, HnswNode node);
extern void hnsw_search_run(HnswSearch *s, int ef);
extern int	hnsw_search_result(HnswSearch *s, HnswCandidate *out);
extern bool hnsw_search_next(HnswSearch *s, HnswCandidate *result);
extern void hnsw_search_end(HnswSearch *s);

extern void hnsw_rerank_exact(HnswGraph *g, const float *q, HnswCandidate *cands, int n);

extern int	hnsw_random_level(int m, int max_level);
extern int	hnsw_select_neighbors(HnswGraph *g, const float *base,
								  HnswCandidate *cands, int ncands, int limit,
								  bool keep_pruned, HnswCandidate *out);
extern int	hnsw_find_neighbors(HnswGraph *g, const float *q,
								HnswNode entry, int entry_level, int level,
								HnswCandidate **selected, int *nselected,
								HnswCandidate *nearest, int *nnearest);
extern void hnsw_link_backwards(HnswGraph *g, HnswNode node, int level,
								HnswCandidate **selected, int *nselected);
extern void hnsw_relink_dropped(HnswGraph *g, HnswNode y, int layer, int depth,
								HnswNode via);
extern void hnsw_insert_element(HnswGraph *g, const float *vec, ItemPointer heaptid);
extern void hnsw_link_element(HnswGraph *g, HnswNode node, const float *vec, int level);
extern void hnsw_sort_candidates(HnswCandidate *cands, int n);
extern int	hnsw_node_cmp(const void *a, const void *b);
extern const HnswNode *hnsw_node_find(const HnswNode *nodes, int64 n, HnswNode x);
extern int64 hnsw_reconnect(HnswGraph *g, const HnswNode *nodes, int64 n,
							HnswNode entry, int entry_level);


#endif							/* HNSW_GRAPH_H */
