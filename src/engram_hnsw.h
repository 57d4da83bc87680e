/*-------------------------------------------------------------------------
 *
 * engram_hnsw.h
 *	  Shared types, page layout and entry points of the engram_hnsw index
 *	  access method.
 *
 * See src/README.md for the full picture: page layout, lock order and the
 * WAL story.  In short:
 *
 * Block 0 is the meta page (HnswMetaPageData after the page header).  Every
 * other block is a data page holding two kinds of tuples:
 *
 *	- element tuples (HnswElementTupleData): level, flags, up to
 *	  HNSW_HEAPTIDS heap TIDs (identical vectors share one element), the TID
 *	  of the element's neighbour tuple, and the vector itself;
 *	- neighbour tuples (HnswNeighborTupleData): one fixed-size array of
 *	  element TIDs, 2*m slots for layer 0 followed by m slots for every layer
 *	  above, up to the element's level.  An unused slot holds an invalid
 *	  ItemPointer; a layer's list ends at the first unused slot.
 *
 * An element and its neighbour tuple are placed on the same page when they
 * fit, so a search reads one page per visited node.  Tuples never change
 * size after creation, so every later change is an in-place overwrite.
 *
 * Every page ends with HnswPageOpaqueData in the special space, whose last
 * field is HNSW_PAGE_ID.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ENGRAM_HNSW_H
#define ENGRAM_HNSW_H

#include "postgres.h"

#include "access/amapi.h"
#include "access/generic_xlog.h"
#include "access/itup.h"
#include "lib/pairingheap.h"
#include "nodes/execnodes.h"
#include "nodes/pathnodes.h"
#include "storage/bufmgr.h"
#include "utils/array.h"
#include "utils/relcache.h"

/* ----------------------------------------------------------------
 * Constants
 * ----------------------------------------------------------------
 */
#define HNSW_MAGIC				0x454E4757	/* "ENGW" */
#define HNSW_FORMAT_VERSION		2	/* 1: 0.1.0, no stripes or pending list */
#define HNSW_PAGE_ID			0xE4A7
#define HNSW_METAPAGE_BLKNO		0

#define HNSW_DEFAULT_M			16
#define HNSW_MIN_M				2
#define HNSW_MAX_M				100
#define HNSW_DEFAULT_EF_CONSTRUCTION 64
#define HNSW_MIN_EF_CONSTRUCTION 4
#define HNSW_MAX_EF_CONSTRUCTION 1000
#define HNSW_DEFAULT_EF_SEARCH	40
#define HNSW_MIN_EF_SEARCH		1
#define HNSW_MAX_EF_SEARCH		1000
#define HNSW_MAX_DIMS			2000
#define HNSW_MAX_LEVEL			16
#define HNSW_HEAPTIDS			10
#define HNSW_STRIPES			8	/* insert pages and pending lists */
#define HNSW_DEFAULT_PENDING_LIMIT 4096 /* kB, engram_hnsw.pending_list_limit */
#define HNSW_DEFAULT_VECTOR_CACHE 0	/* kB, engram_hnsw.vector_cache_size: off */
#define HNSW_DEFAULT_MAX_MERGE_WORKERS 4	/* engram_hnsw.max_merge_workers */
#define HNSW_MAX_MERGE_WORKER_SLOTS 64
#define HNSW_DEFAULT_HELPER_IDLE_CPUS 0.4	/* engram_hnsw.merge_helper_idle_cpus */

/* metrics; the value is what support function 1 of the opclass returns */
#define HNSW_METRIC_NONE		0	/* a space key column */
#define HNSW_METRIC_L2			1
#define HNSW_METRIC_COSINE		2
#define HNSW_METRIC_IP			3

/* support function numbers */
#define HNSW_METRIC_PROC		1
#define HNSW_NPROCS				1

/* strategy numbers: the vector class orders, a space key class searches */
#define HNSW_DISTANCE_STRATEGY	1
#define HNSW_SPACE_EQ_STRATEGY	1
#define HNSW_NSTRATEGIES		1

/* page flags */
#define HNSW_PAGE_META			(1 << 0)
#define HNSW_PAGE_DATA			(1 << 1)
#define HNSW_PAGE_DIR			(1 << 2)
#define HNSW_PAGE_PENDING		(1 << 3)
#define HNSW_PAGE_DETACHED		(1 << 4)	/* with PENDING: left the chain */

/* tuple types (first byte of every tuple) */
#define HNSW_TUPLE_ELEMENT		1
#define HNSW_TUPLE_NEIGHBORS	2
#define HNSW_TUPLE_SPACE		3
#define HNSW_TUPLE_PENDING		4

/* element flags */
#define HNSW_ELEMENT_DELETED	(1 << 0)
#define HNSW_ELEMENT_PENDING	(1 << 1)	/* stored, not linked into the graph yet */

/* pending entry flags */
#define HNSW_PENDING_MERGED		(1 << 0)	/* its element is linked */

/* space directory entry flags */
#define HNSW_SPACE_EMPTY		(1 << 0)	/* all its rows were vacuumed away */

#define HNSW_MAX_SPACE_KEY		256 /* bytes of a space key */

/* build phases for pg_stat_progress_create_index */
#define HNSW_PHASE_LOAD			2
#define HNSW_PHASE_WRITE		3

/* ----------------------------------------------------------------
 * On-page structures
 * ----------------------------------------------------------------
 */
typedef struct HnswPageOpaqueData
{
	BlockNumber next;			/* directory pages: the next one in the chain */
	Oid			indexoid;		/* the index this page belongs to */
	uint16		flags;			/* HNSW_PAGE_* */
	uint16		stripe;			/* pending pages: the stripe's chain */
	uint16		pad;
	uint16		page_id;		/* HNSW_PAGE_ID, always last */
} HnswPageOpaqueData;

typedef HnswPageOpaqueData *HnswPageOpaque;

#define HnswPageGetOpaque(page) ((HnswPageOpaque) PageGetSpecialPointer(page))

typedef struct HnswMetaPageData
{
	uint32		magic;
	uint32		version;
	uint32		dims;			/* 0 until the first vector fixes it */
	uint16		m;
	uint16		ef_construction;
	uint16		metric;			/* HNSW_METRIC_* */
	uint16		nspacekeys;		/* number of leading space key columns */
	int16		entry_level;	/* level of the entry point, -1 if none */
	uint16		vacuum_gen;		/* bumped by each VACUUM that marks elements
								 * deleted (0.1.0 left it 0): backends' vector
								 * caches drop their deleted flags then */
	ItemPointerData entry;		/* entry point element, invalid if empty */
	BlockNumber insert_page;	/* page new tuples are appended to */
	uint64		inserted;		/* elements ever created (statistics) */
	/* memory spaces (nspacekeys = 1): the directory chain */
	BlockNumber dir_head;		/* first directory page, or invalid */
	BlockNumber dir_tail;		/* last directory page, or invalid */
	uint32		dir_count;		/* directory entries ever appended */
	uint32		next_space_no;	/* next space number to hand out */
	/* format 2: stripes (insert pages and pending lists) */
	uint32		nstripes;		/* HNSW_STRIPES */
	uint32		pending_pages[HNSW_STRIPES];	/* pages in each chain */
	BlockNumber stripe_insert[HNSW_STRIPES];	/* per-stripe insert page */
	BlockNumber pending_head[HNSW_STRIPES]; /* first page of the chain */
	BlockNumber pending_tail[HNSW_STRIPES]; /* a hint: follow "next" */
} HnswMetaPageData;

/* the meta page of format 1 ended before nstripes */
#define HNSW_META_V1_SIZE offsetof(HnswMetaPageData, nstripes)

typedef HnswMetaPageData *HnswMetaPage;

#define HnswPageGetMeta(page) ((HnswMetaPage) PageGetContents(page))

typedef struct HnswElementTupleData
{
	uint8		type;			/* HNSW_TUPLE_ELEMENT */
	uint8		level;
	uint8		flags;			/* HNSW_ELEMENT_* */
	uint8		ntids;			/* valid entries in heaptids[] */
	uint32		space_no;		/* its memory space (0 without spaces) */
	ItemPointerData neighbortid;	/* this element's neighbour tuple */
	ItemPointerData heaptids[HNSW_HEAPTIDS];
	float		vec[FLEXIBLE_ARRAY_MEMBER];
} HnswElementTupleData;

typedef HnswElementTupleData *HnswElementTuple;

#define HNSW_ELEMENT_TUPLE_SIZE(dims) \
	MAXALIGN(offsetof(HnswElementTupleData, vec) + sizeof(float) * (dims))

typedef struct HnswNeighborTupleData
{
	uint8		type;			/* HNSW_TUPLE_NEIGHBORS */
	uint8		level;			/* level of the owning element */
	uint16		nslots;			/* total slots over all layers */
	ItemPointerData tids[FLEXIBLE_ARRAY_MEMBER];
} HnswNeighborTupleData;

typedef HnswNeighborTupleData *HnswNeighborTuple;

/*
 * A memory space's directory entry: the key (its bytes: the value of a
 * fixed-length type, the payload of a varlena), the space's number and its
 * graph's entry point.  Entries never move or go away; an emptied space is
 * flagged and revived in place if its key comes back.
 */
typedef struct HnswSpaceTupleData
{
	uint8		type;			/* HNSW_TUPLE_SPACE */
	uint8		flags;			/* HNSW_SPACE_* */
	int16		entry_level;	/* -1: no entry point */
	uint32		space_no;
	uint32		hash;			/* hash of the key bytes */
	ItemPointerData entry;
	uint16		keylen;
	char		key[FLEXIBLE_ARRAY_MEMBER];
} HnswSpaceTupleData;

typedef HnswSpaceTupleData *HnswSpaceTuple;

/*
 * A pending-list entry: an element stored with HNSW_ELEMENT_PENDING and
 * empty neighbour lists, waiting to be linked into its graph by a merge.
 * Pending pages (HNSW_PAGE_PENDING) hold only these, and are chained per
 * stripe through the opaque "next".
 */
typedef struct HnswPendingTupleData
{
	uint8		type;			/* HNSW_TUPLE_PENDING */
	uint8		flags;			/* HNSW_PENDING_* */
	uint16		unused;
	uint32		space_no;		/* its memory space (0 without spaces) */
	ItemPointerData elem;		/* the element */
	ItemPointerData dirtid;		/* its space's directory entry, or invalid */
} HnswPendingTupleData;

typedef HnswPendingTupleData *HnswPendingTuple;

#define HNSW_PENDING_TUPLE_SIZE MAXALIGN(sizeof(HnswPendingTupleData))

#define HNSW_SPACE_TUPLE_SIZE(keylen) \
	MAXALIGN(offsetof(HnswSpaceTupleData, key) + (keylen))

/* a space key, as bytes */
typedef struct HnswSpaceKey
{
	bool		valid;			/* false: the index has no spaces */
	uint32		hash;
	int			len;
	const char *data;
} HnswSpaceKey;

/* slots of layer 0, and of each layer above */
#define HnswLayerCapacity(m, layer) ((layer) == 0 ? 2 * (m) : (m))
#define HnswLayerOffset(m, layer) ((layer) == 0 ? 0 : 2 * (m) + ((layer) - 1) * (m))
#define HnswTotalSlots(m, level) (2 * (m) + (level) * (m))
#define HNSW_NEIGHBOR_TUPLE_SIZE(m, level) \
	MAXALIGN(offsetof(HnswNeighborTupleData, tids) + \
			 sizeof(ItemPointerData) * HnswTotalSlots(m, level))

/* usable space on an empty data page (one line pointer per tuple) */
#define HNSW_PAGE_FREE_SPACE \
	(BLCKSZ - MAXALIGN(SizeOfPageHeaderData) - MAXALIGN(sizeof(HnswPageOpaqueData)))

/* ----------------------------------------------------------------
 * Options
 * ----------------------------------------------------------------
 */
typedef struct HnswOptions
{
	int32		vl_len_;		/* varlena header (do not touch directly!) */
	int			m;
	int			ef_construction;
	int			dims;			/* 0: taken from the first vector */
	bool		fastupdate;		/* inserts go to the pending list */
	int			pending_list_limit; /* kB; -1: the GUC */
} HnswOptions;

extern int	hnsw_ef_search;
extern int	hnsw_pending_list_limit;
extern int	hnsw_vector_cache_kb;
extern bool hnsw_merge_worker;
extern int	hnsw_max_merge_workers;
extern double hnsw_merge_helper_idle_cpus;

/* ----------------------------------------------------------------
 * Distances (hnsw_distance.c)
 *
 * Inside the index every metric is a "smaller is closer" float:
 *	L2: squared euclidean distance; cosine: negative inner product of
 *	unit-normalised vectors; inner product: negative inner product.
 * ----------------------------------------------------------------
 */
typedef float (*HnswDistanceFn) (const float *a, const float *b, int n);

extern float hnsw_l2_squared(const float *a, const float *b, int n);
extern int	hnsw_all_finite(const float *a, int n);
extern float hnsw_dot(const float *a, const float *b, int n);
extern float hnsw_neg_dot(const float *a, const float *b, int n);
extern HnswDistanceFn hnsw_metric_distance(int metric);
extern HnswDistanceFn hnsw_selection_distance(int metric);
extern bool hnsw_normalize(float *v, int n);
extern const float *hnsw_array_vector(ArrayType *arr, int *dims, const char *what);

/* ----------------------------------------------------------------
 * Graph algorithm (hnsw_graph.c), generic over a storage implementation
 * ----------------------------------------------------------------
 */

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
	int			ef_construction;
	int			metric;
	HnswDistanceFn dist;
	MemoryContext cxt;			/* for allocations that live as long as g */
	bool		dense;			/* nodes are small integers (arena) */
	/* visited marks for dense graphs, reused by successive searches */
	uint32	   *marks;
	uint32		marks_cap;
	uint32		epoch;
};

/* binary heap of candidates; min-heap or max-heap by dist */
typedef struct HnswHeap
{
	HnswCandidate *items;
	int			n;
	int			cap;
	bool		max;
} HnswHeap;

/* visited set: dense bitmap for arena graphs, hash set for page graphs */
typedef struct HnswVisited HnswVisited;

/*
 * State of one search on one layer.  A search can be resumed: after
 * hnsw_search_run() the scan keeps calling hnsw_search_next(), which goes on
 * expanding the frontier in best-first order and never stops early.
 */
typedef struct HnswSearch
{
	HnswGraph  *g;
	const float *q;
	int			layer;
	HnswHeap	cand;			/* min-heap: discovered, not yet expanded */
	HnswHeap	w;				/* max-heap: best ef found so far */
	HnswHeap	pending;		/* min-heap: discovered, not yet returned */
	bool		track_pending;
	HnswVisited *visited;
	HnswNode   *nbuf;			/* scratch for neighbour lists */
	HnswCandidate nearest_any;	/* nearest visited node on this layer,
								 * deleted or not (node invalid if none) */
	bool		nearest_skip;	/* ... and whether it is deleted */
} HnswSearch;

extern void hnsw_heap_init(HnswHeap *h, int cap, bool max);
extern void hnsw_heap_push(HnswHeap *h, HnswNode node, float dist);
extern HnswCandidate hnsw_heap_pop(HnswHeap *h);

static inline HnswCandidate *
hnsw_heap_top(HnswHeap *h)
{
	return h->n > 0 ? &h->items[0] : NULL;
}

extern HnswSearch *hnsw_search_begin(HnswGraph *g, const float *q, bool track_pending);
extern void hnsw_search_set_layer(HnswSearch *s, int layer, bool keep_best);
extern void hnsw_search_add_entry(HnswSearch *s, HnswNode node);
extern void hnsw_search_run(HnswSearch *s, int ef);
extern int	hnsw_search_result(HnswSearch *s, HnswCandidate *out);
extern bool hnsw_search_next(HnswSearch *s, HnswCandidate *result);
extern void hnsw_search_end(HnswSearch *s);

extern int	hnsw_random_level(int m);
extern int	hnsw_select_neighbors(HnswGraph *g, const float *base,
								  HnswCandidate *cands, int ncands, int limit,
								  bool keep_pruned, HnswCandidate *out);
extern int	hnsw_find_neighbors(HnswGraph *g, const float *q,
								HnswNode entry, int entry_level, int level,
								HnswCandidate **selected, int *nselected,
								HnswCandidate *nearest, int *nnearest);
extern void hnsw_link_backwards(HnswGraph *g, HnswNode node, int level,
								HnswCandidate **selected, int *nselected);
/* how far hnsw_relink_dropped() follows the elements a forced link pushes out */
#define HNSW_RELINK_DEPTH 4
extern void hnsw_relink_dropped(HnswGraph *g, HnswNode y, int layer, int depth,
								HnswNode via);
extern void hnsw_insert_element(HnswGraph *g, const float *vec, ItemPointer heaptid);
extern void hnsw_link_element(HnswGraph *g, HnswNode node, const float *vec, int level);
extern int	hnsw_candidate_cmp(const void *a, const void *b);
extern int	hnsw_node_cmp(const void *a, const void *b);
extern int64 hnsw_reconnect(HnswGraph *g, const HnswNode *nodes, int64 n,
							HnswNode entry, int entry_level);

/* ----------------------------------------------------------------
 * Page-backed graph and page helpers (hnsw_pages.c)
 * ----------------------------------------------------------------
 */
/* a copy of the meta page fields the code needs */
typedef struct HnswMetaInfo
{
	int			dims;
	int			m;
	int			ef_construction;
	int			metric;
	int			entry_level;
	ItemPointerData entry;
	BlockNumber insert_page;
	int			nspacekeys;
	BlockNumber dir_head;
	uint32		dir_count;
	int			version;
	int			nstripes;		/* 1 for format 1 */
	uint16		vacuum_gen;
	uint32		pending_pages[HNSW_STRIPES];
	BlockNumber stripe_insert[HNSW_STRIPES];
	BlockNumber pending_head[HNSW_STRIPES];
	BlockNumber pending_tail[HNSW_STRIPES];
} HnswMetaInfo;

typedef struct HnswPageGraph
{
	HnswGraph	graph;			/* must be first */
	Relation	index;
	void	   *cache;			/* merges: the backend's vector cache */
	BlockNumber nblocks;		/* known size of the index, refreshed lazily */
	HnswMetaInfo *meta;			/* caller's copy of the meta page */
	/* with memory spaces: the space this graph is, and its directory entry */
	bool		has_space;
	uint32		space_no;
	ItemPointerData space_tid;
	int			stripe;			/* whose insert page new elements go to */
	/*
	 * Merges: distances come from the backend's vector cache (see
	 * hnsw_page_graph_keep_vectors() in hnsw_pages.c).
	 */
	bool		keep_vectors;
	/* the last two peek_vector() hits and their slots */
	HnswNode	peek_node[2];
	uint32		peek_slot[2];
	int			peek_next;
} HnswPageGraph;


extern void hnsw_init_page(Page page, uint16 flags, Oid indexoid);
extern Page hnsw_pass_page(Relation index, BlockNumber blkno, int mode,
						   BufferAccessStrategy strategy, Buffer *buf);

/*
 * The compare-and-set rule of every entry point (meta page or space
 * directory): with expect == NULL, a new entry wins over none or a lower
 * level; otherwise the change happens only if the entry is still *expect.
 */
static inline bool
hnsw_entry_cas(ItemPointer cur, int curlevel, int level, ItemPointer expect)
{
	if (expect != NULL)
		return ItemPointerEquals(cur, expect) ||
			(!ItemPointerIsValid(expect) && !ItemPointerIsValid(cur));
	return !ItemPointerIsValid(cur) || level > curlevel;
}
extern void hnsw_check_page(Relation index, Page page, BlockNumber blkno);
extern void hnsw_write_fragment(Relation index, Buffer buf, Size off, const void *data,
								Size len);
extern uint8 hnsw_page_item_type(Relation index, Page page, BlockNumber blkno,
								 OffsetNumber off);
extern void hnsw_read_meta(Relation index, HnswMetaInfo *meta);
extern void hnsw_fill_meta(Page page, Oid indexoid, int dims, int m, int efc, int metric,
						   int nspacekeys);
extern Buffer hnsw_new_buffer(Relation index, ForkNumber fork);
extern bool hnsw_page_recyclable(Page page);
extern HnswElementTuple hnsw_page_element(Relation index, Page page, BlockNumber blkno,
										  OffsetNumber off, int dims);
extern HnswNeighborTuple hnsw_page_neighbors(Relation index, Page page, BlockNumber blkno,
											 OffsetNumber off, int m, int level);
extern void hnsw_page_graph_init(HnswPageGraph *pg, Relation index, HnswMetaInfo *meta);
extern void hnsw_page_graph_reset(HnswPageGraph *pg);
extern void hnsw_page_graph_keep_vectors(HnswPageGraph *pg);
extern void hnsw_bump_vacuum_gen(Relation index);
extern void hnsw_set_dims(Relation index, int dims);
extern bool hnsw_update_entry(Relation index, ItemPointer tid, int level,
							  ItemPointer expect, HnswMetaInfo *cur);
extern Buffer hnsw_read_buffer(HnswPageGraph *pg, BlockNumber blkno);
extern int	hnsw_max_level(int m);
extern BlockNumber hnsw_nblocks_seen(Relation index);
extern bool hnsw_block_exists(Relation index, BlockNumber blkno);
extern int	hnsw_stripe_of(HnswMetaInfo *meta, uint32 space_no, bool has_space);
extern void hnsw_stripe_move(HnswMetaInfo *meta, int stripe);
extern HnswPendingTuple hnsw_page_pending(Relation index, Page page, BlockNumber blkno,
										  OffsetNumber off);
extern HnswNode hnsw_store_pending(HnswPageGraph *pg, const float *vec, int level,
								   ItemPointer heaptid, int *tailcount);
extern void hnsw_set_pending_tail(Relation index, int stripe, BlockNumber blkno);
extern bool hnsw_init_pending_chain(Relation index, int stripe, BlockNumber blkno);
extern bool hnsw_set_pending_head(Relation index, int stripe, BlockNumber expect,
								  BlockNumber blkno);

/* hnsw_pending.c: the pending list */
typedef struct HnswPendingItem
{
	HnswNode	node;			/* the element */
	uint32		space_no;
	ItemPointerData dirtid;
} HnswPendingItem;

extern bool hnsw_index_fastupdate(Relation index);
extern int64 hnsw_pending_limit_bytes(Relation index);
extern void hnsw_pending_insert(Relation index, HnswMetaInfo *meta, const float *vec,
								ItemPointer heaptid, bool has_space, uint32 space_no,
								ItemPointer dirtid);
extern int	hnsw_pending_collect(Relation index, HnswMetaInfo *meta,
								 const uint32 *space_nos, int nspace_nos,
								 HnswPendingItem **out);
extern int64 hnsw_merge_pending(Relation index, bool wait);
extern int64 hnsw_merge_over_share(Relation index, int part, int nparts,
								   void (*after_stripe) (void *arg, int waiting),
								   void *arg);
extern int64 hnsw_merge_stripe(Relation index, int stripe, bool wait);
extern void hnsw_detach_page(Relation index, BlockNumber blkno);

/* hnsw_worker.c: the background merge worker */
extern bool hnsw_merge_worker_take_over(Relation index);
extern bool hnsw_merge_worker_throttle(Relation index);
extern PGDLLEXPORT void engram_hnsw_merge_worker_main(Datum main_arg);

#define HNSW_PENDING_PER_PAGE \
	((int) (HNSW_PAGE_FREE_SPACE / (HNSW_PENDING_TUPLE_SIZE + sizeof(ItemIdData))))

/* hnsw_space.c: the space directory */
typedef struct HnswSpaceInfo
{
	ItemPointerData tid;		/* of the directory entry */
	uint32		space_no;
	uint8		flags;
	int			entry_level;
	ItemPointerData entry;
} HnswSpaceInfo;

extern HnswSpaceKey hnsw_space_key(Relation index, Datum value);
extern bool hnsw_space_find(Relation index, HnswSpaceKey *key, bool create,
							ItemPointer tid, uint32 *space_no);
extern bool hnsw_space_read(Relation index, ItemPointer tid, HnswSpaceInfo *info);
extern bool hnsw_space_update_entry(Relation index, ItemPointer dirtid, ItemPointer tid,
									int level, ItemPointer expect, bool mark_empty,
									HnswSpaceInfo *cur);
extern int	hnsw_space_list(Relation index, HnswSpaceInfo **out);
extern HnswSpaceTuple hnsw_page_space(Relation index, Page page, BlockNumber blkno,
									  OffsetNumber off);
extern void hnsw_corrupt(Relation index, BlockNumber blkno, const char *detail) pg_attribute_noreturn();

/* ----------------------------------------------------------------
 * Index access method entry points
 * ----------------------------------------------------------------
 */
/* hnsw_options.c */
extern int	hnsw_index_metric(Relation index);
extern int	hnsw_index_m(Relation index);
extern int	hnsw_index_ef_construction(Relation index);
extern int	hnsw_index_dims_option(Relation index);
extern int	hnsw_vector_attno(Relation index);
extern int	hnsw_index_nspacekeys(Relation index);
extern Relation hnsw_open_maintenance(Oid indexoid, LOCKMODE lockmode, Relation *heap);
extern void hnsw_close_maintenance(Relation index, Relation heap, LOCKMODE lockmode);
extern float *hnsw_prepare_vector(Relation index, int metric, Datum value,
								  int expect_dims, int *dims, bool *skip);

/* hnsw_build.c */
extern IndexBuildResult *hnsw_build(Relation heap, Relation index, IndexInfo *indexInfo);
extern void hnsw_buildempty(Relation index);
extern char *hnsw_buildphasename(int64 phasenum);

/* hnsw_insert.c */
extern bool hnsw_insert(Relation index, Datum *values, bool *isnull, ItemPointer heap_tid,
						Relation heap, IndexUniqueCheck checkUnique, bool indexUnchanged,
						IndexInfo *indexInfo);

/* hnsw_scan.c */
extern IndexScanDesc hnsw_beginscan(Relation index, int nkeys, int norderbys);
extern void hnsw_rescan(IndexScanDesc scan, ScanKey keys, int nkeys, ScanKey orderbys, int norderbys);
extern bool hnsw_gettuple(IndexScanDesc scan, ScanDirection dir);
extern void hnsw_endscan(IndexScanDesc scan);

/* hnsw_vacuum.c */
extern IndexBulkDeleteResult *hnsw_bulkdelete(IndexVacuumInfo *info, IndexBulkDeleteResult *stats,
											  IndexBulkDeleteCallback callback, void *callback_state);
extern IndexBulkDeleteResult *hnsw_vacuumcleanup(IndexVacuumInfo *info, IndexBulkDeleteResult *stats);

/* hnsw_options.c */
extern bytea *hnsw_options(Datum reloptions, bool validate);
extern bool hnsw_validate(Oid opclassoid);
extern void hnsw_costestimate(PlannerInfo *root, IndexPath *path, double loop_count,
							  Cost *indexStartupCost, Cost *indexTotalCost,
							  Selectivity *indexSelectivity, double *indexCorrelation,
							  double *indexPages);

#endif							/* ENGRAM_HNSW_H */
