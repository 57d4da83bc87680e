/*-------------------------------------------------------------------------
 *
 * engram_hnsw.h
 *	  The umbrella header of engram_hnsw: the on-disk format
 *	  (hnsw_format.h), the graph interface (hnsw_graph.h), and the types
 *	  and prototypes shared between the source files, grouped by the file
 *	  that defines them, from the bottom layer up.  Private to the
 *	  extension (not installed).  See src/README.md.
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

#include "hnsw_format.h"
#include "hnsw_graph.h"

/* ----------------------------------------------------------------
 * Retry limits (src/README.md, "Locks")
 *
 * Every loop that retries after a concurrent change, or repeats work
 * until nothing is left, has its bound here.
 * ----------------------------------------------------------------
 */
/* optimistic list replacements (back-link, adoption, VACUUM list repair) */
#define HNSW_LIST_RETRIES 16
/* adding one link to a list with room (relinking a pruned element) */
#define HNSW_ROOM_RETRIES 4
/* neighbours of a pruned element tried at each relink level but the last */
#define HNSW_RELINK_TRIES 4
/* how far hnsw_relink_dropped() follows the elements a forced link pushes out */
#define HNSW_RELINK_DEPTH 4
/* searches of a graph whose reachable elements are all deleted, before an
 * insert stores its element anyway */
#define HNSW_EMPTY_GRAPH_RETRIES 8
/* passes of hnsw_reconnect() while they still relink elements */
#define HNSW_RECONNECT_ROUNDS 4
/* free space map pages tried (stale or locked ones skipped) before the
 * relation is extended */
#define HNSW_FSM_TRIES 8
/* restarts of hnsw_place_element() from a fresh meta page when the pending
 * tail walk fails; one more means the chain is corrupt */
#define HNSW_PLACE_RESTARTS 2
/* looks at the space directory cache (a refresh each) before creating */
#define HNSW_SPACE_LOOKUPS 3

/* ----------------------------------------------------------------
 * hnsw_distance.c: distances and input arrays
 *
 * Inside the index every metric is a "smaller is closer" float:
 *	L2: squared euclidean distance; cosine: negative inner product of
 *	unit-normalised vectors; inner product: negative inner product.
 * ----------------------------------------------------------------
 */
extern float hnsw_l2_squared(const float *a, const float *b, int n);
extern int	hnsw_all_finite(const float *a, int n);
extern float hnsw_dot(const float *a, const float *b, int n);
extern float hnsw_neg_dot(const float *a, const float *b, int n);
extern HnswDistanceFn hnsw_metric_distance(int metric);
extern HnswDistanceFn hnsw_selection_distance(int metric);
extern unsigned char *hnsw_encode_vector(HnswGraph *g, const float *vec);
extern bool hnsw_normalize(float *v, int n);
extern const float *hnsw_array_vector(ArrayType *arr, int *dims, const char *what);

/* ----------------------------------------------------------------
 * hnsw_pages.c: page and meta page primitives
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
	/* format 3 (code_kind HNSW_CODE_NONE before) */
	int			code_kind;
	uint32		code_seed;
	BlockNumber vector_insert[HNSW_STRIPES];
} HnswMetaInfo;

/* bytes of an element tuple of this index (0 while dims is unknown in format 3) */
static inline Size
hnsw_element_size(const HnswMetaInfo *meta)
{
	if (meta->version < 3)
		return HNSW_ELEMENT_TUPLE_SIZE(meta->dims);
	return HNSW_ELEMENT3_TUPLE_SIZE(hnsw_code_size(meta->code_kind, meta->dims));
}

/* a change of the meta page: hnsw_meta_begin() ... hnsw_meta_end() */
typedef struct MetaChange
{
	Buffer		buf;
	GenericXLogState *state;
} MetaChange;

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

extern void hnsw_init_page(Page page, uint16 flags, Oid indexoid);
extern Page hnsw_pass_page(Relation index, BlockNumber blkno, int mode,
						   BufferAccessStrategy strategy, Buffer *buf);
extern void hnsw_corrupt(Relation index, BlockNumber blkno, const char *detail) pg_attribute_noreturn();
extern void hnsw_check_page(Relation index, Page page, BlockNumber blkno);
extern char *hnsw_page_item(Relation index, Page page, BlockNumber blkno, OffsetNumber off,
							Size *len);
extern uint8 hnsw_page_item_type(Relation index, Page page, BlockNumber blkno,
								 OffsetNumber off);
extern HnswElementTuple hnsw_page_element(Relation index, Page page, BlockNumber blkno,
										  OffsetNumber off, const HnswMetaInfo *meta);
extern HnswNeighborTuple hnsw_page_neighbors(Relation index, Page page, BlockNumber blkno,
											 OffsetNumber off, int m, int level);
extern int	hnsw_max_level(int m);
extern void hnsw_check_code_fits(Relation index, int kind, int dims);
extern void hnsw_fill_meta(Page page, Oid indexoid, int dims, int m, int efc, int metric,
						   int nspacekeys, int code_kind, uint32 code_seed);
extern int	hnsw_stripe_of(HnswMetaInfo *meta, uint32 space_no, bool has_space);
extern void hnsw_stripe_move(HnswMetaInfo *meta, int stripe);
extern void hnsw_read_meta(Relation index, HnswMetaInfo *meta);
extern HnswMetaPage hnsw_meta_begin(Relation index, MetaChange *mc);
extern void hnsw_meta_end(MetaChange *mc, bool changed);
extern void hnsw_bump_vacuum_gen(Relation index);
extern void hnsw_set_dims(Relation index, int dims);
extern bool hnsw_update_entry(Relation index, ItemPointer tid, int level,
							  ItemPointer expect, HnswMetaInfo *cur);
extern bool hnsw_page_recyclable(Page page);
extern BlockNumber hnsw_nblocks_seen(Relation index);
extern bool hnsw_block_exists(Relation index, BlockNumber blkno);
extern Buffer hnsw_new_buffer(Relation index, ForkNumber fork);
extern void hnsw_write_fragment(Relation index, Buffer buf, Size off, const void *data,
								Size len);

/* ----------------------------------------------------------------
 * hnsw_place.c: element placement and the pending chains
 * ----------------------------------------------------------------
 */
extern void hnsw_place_element(Relation index, HnswMetaInfo *meta, int stripe,
							   HnswElementTuple etup, Size esize,
							   HnswNeighborTuple ntup, Size nsize, const float *vec,
							   ItemPointer etid, HnswPendingTuple pend, int *tailcount,
							   ItemPointer dirtid);
extern OffsetNumber hnsw_add_item(Relation index, Page page, BlockNumber blkno, void *item,
								  Size size);
extern Page hnsw_new_page(Relation index, GenericXLogState *state, uint16 flags, Buffer *buf);
extern void hnsw_set_vector_page(Relation index, int stripe, BlockNumber blkno);

/* hnsw_vector.c: format 3 vectors out of line */
extern int	hnsw_chunk_fit(Size avail, int remaining);
extern HnswVectorTuple hnsw_page_chunk(Relation index, Page page, BlockNumber blkno,
									   OffsetNumber off, int dims);
extern void hnsw_read_vector(Relation index, ItemPointer first, int dims,
							 BlockNumber held, float *out);
extern void hnsw_overwrite_vector(Relation index, ItemPointer first, int dims,
								  BlockNumber held, const float *vec);
extern void hnsw_write_vector(Relation index, HnswMetaInfo *meta, int stripe,
							  const float *vec, ItemPointer first);
extern void hnsw_set_pending_tail(Relation index, int stripe, BlockNumber blkno);
extern bool hnsw_init_pending_chain(Relation index, int stripe, BlockNumber blkno);
extern bool hnsw_set_pending_head(Relation index, int stripe, BlockNumber expect,
								  BlockNumber blkno);
extern HnswPendingTuple hnsw_page_pending(Relation index, Page page, BlockNumber blkno,
										  OffsetNumber off);

/* ----------------------------------------------------------------
 * hnsw_space.c: the space directory
 * ----------------------------------------------------------------
 */
/* a space key, as bytes */
typedef struct HnswSpaceKey
{
	bool		valid;			/* false: the index has no spaces */
	uint32		hash;
	int			len;
	const char *data;
} HnswSpaceKey;

typedef struct HnswSpaceInfo
{
	ItemPointerData tid;		/* of the directory entry */
	uint32		space_no;
	uint8		flags;
	int			entry_level;
	ItemPointerData entry;
	int			nblocks;		/* the blocks holding its elements; -1: not
								 * known (no list, or scattered) */
	BlockNumber blocks[HNSW_SPACE_MAX_BLOCKS];
} HnswSpaceInfo;

extern HnswSpaceKey hnsw_space_key(Relation index, Datum value);
extern bool hnsw_space_find(Relation index, HnswSpaceKey *key, bool create,
							ItemPointer tid, uint32 *space_no);
extern bool hnsw_space_read(Relation index, ItemPointer tid, HnswSpaceInfo *info);
extern bool hnsw_space_lookup(Relation index, HnswSpaceKey *key, HnswSpaceInfo *info);
extern bool hnsw_space_update_entry(Relation index, ItemPointer dirtid, ItemPointer tid,
									int level, ItemPointer expect, bool mark_empty,
									HnswSpaceInfo *cur);
extern int	hnsw_space_list(Relation index, HnswSpaceInfo **out);
extern Buffer hnsw_space_block_buffer(Relation index, ItemPointer dirtid, BlockNumber blkno);
extern void hnsw_space_add_block(Relation index, Page page, ItemPointer dirtid,
								 BlockNumber blkno);
extern void hnsw_space_note_block(Relation index, ItemPointer dirtid, BlockNumber blkno);

/* a block holding an element of a space, as VACUUM's pass saw it */
typedef struct HnswSpaceBlock
{
	uint32		space_no;
	BlockNumber blkno;
} HnswSpaceBlock;

extern void hnsw_space_collect_begin(Relation index);
extern void hnsw_space_collect_end(Relation index, HnswSpaceBlock *seen, int64 nseen);
extern void hnsw_space_fill_blocks(HnswSpaceTuple stup, const BlockNumber *blocks, int n);
extern HnswSpaceTuple hnsw_page_space(Relation index, Page page, BlockNumber blkno,
									  OffsetNumber off);

/* ----------------------------------------------------------------
 * The page graph: hnsw_pagegraph.c (HnswGraphOps on pages) and
 * hnsw_veccache.c (reading elements: vector cache, prefetch hints)
 * ----------------------------------------------------------------
 */
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
	 * hnsw_page_graph_keep_vectors() in hnsw_veccache.c).
	 */
	bool		keep_vectors;
	/* the last two peek_vector() hits and their slots */
	HnswNode	peek_node[2];
	uint32		peek_slot[2];
	int			peek_next;
	float	   *vecbuf;			/* format 3: a vector read for one distance */
} HnswPageGraph;

/* hnsw_veccache.c */
extern Buffer hnsw_read_buffer(HnswPageGraph *pg, BlockNumber blkno);
extern HnswElementTuple hnsw_lock_element(HnswPageGraph *pg, HnswNode node, Buffer *buf);
extern float hnsw_page_distance(HnswGraph *g, HnswNode node, const float *q, bool *skip);
extern bool hnsw_page_deleted(HnswGraph *g, HnswNode node);
extern const float *hnsw_page_vector(HnswGraph *g, HnswNode node);
extern float hnsw_page_estimate(HnswGraph *g, HnswNode node, const HnswCodeQuery *cq,
								bool *skip);
extern const float *hnsw_page_peek_vector(HnswGraph *g, HnswNode node);
extern const unsigned char *hnsw_page_peek_code(HnswGraph *g, HnswNode node);
extern void hnsw_page_read_vector(HnswPageGraph *pg, ItemPointer first, float *out);
extern void hnsw_page_prefetch(HnswGraph *g, const HnswNode *nodes, int n);
extern void hnsw_page_graph_reset(HnswPageGraph *pg);
extern void hnsw_page_graph_keep_vectors(HnswPageGraph *pg);

/* hnsw_pagegraph.c */
extern void hnsw_page_graph_init(HnswPageGraph *pg, Relation index, HnswMetaInfo *meta);
extern HnswNode hnsw_store_pending(HnswPageGraph *pg, const float *vec, int level,
								   ItemPointer heaptid, int *tailcount);

/* ----------------------------------------------------------------
 * hnsw_util.c: index options, input vectors, maintenance functions
 * ----------------------------------------------------------------
 */
extern int	hnsw_index_m(Relation index);
extern int	hnsw_index_ef_construction(Relation index);
extern int	hnsw_index_dims_option(Relation index);
extern bool hnsw_index_fastupdate(Relation index);
extern int64 hnsw_pending_limit_bytes(Relation index);
extern int	hnsw_vector_attno(Relation index);
extern int	hnsw_index_metric(Relation index);
extern int	hnsw_index_nspacekeys(Relation index);
extern int	hnsw_index_code_kind(Relation index);
extern float *hnsw_prepare_vector(Relation index, int metric, Datum value,
								  int expect_dims, int *dims, bool *skip);
extern Relation hnsw_open_maintenance(Oid indexoid, LOCKMODE lockmode, Relation *heap);
extern void hnsw_close_maintenance(Relation index, Relation heap, LOCKMODE lockmode);

/* ----------------------------------------------------------------
 * hnsw_pending.c: the pending list
 * ----------------------------------------------------------------
 */
typedef struct HnswPendingItem
{
	HnswNode	node;			/* the element */
	uint32		space_no;
	ItemPointerData dirtid;
} HnswPendingItem;

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

/* ----------------------------------------------------------------
 * hnsw_worker.c: the background merge worker
 * ----------------------------------------------------------------
 */
extern bool hnsw_merge_worker_take_over(Relation index);
extern bool hnsw_merge_worker_throttle(Relation index);
extern PGDLLEXPORT void engram_hnsw_merge_worker_main(Datum main_arg);

/* ----------------------------------------------------------------
 * hnsw_options.c: handler, reloptions, GUCs, amvalidate
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
	int			codes;			/* offset of the code kind's name; 0: none */
} HnswOptions;

extern int	hnsw_ef_search;
extern int	hnsw_space_read_pages;
extern int	hnsw_build_format;
extern int	hnsw_parallel_read_tries;
extern int	hnsw_pending_list_limit;
extern int	hnsw_vector_cache_kb;
extern bool hnsw_merge_worker;
extern int	hnsw_max_merge_workers;
extern double hnsw_merge_helper_idle_cpus;

extern bytea *hnsw_options(Datum reloptions, bool validate);
extern int	hnsw_code_kind_by_name(const char *name);
extern bool hnsw_validate(Oid opclassoid);
extern char *hnsw_buildphasename(int64 phasenum);

/* ----------------------------------------------------------------
 * Index access method callbacks, by file
 * ----------------------------------------------------------------
 */
/* hnsw_cost.c */
extern void hnsw_costestimate(PlannerInfo *root, IndexPath *path, double loop_count,
							  Cost *indexStartupCost, Cost *indexTotalCost,
							  Selectivity *indexSelectivity, double *indexCorrelation,
							  double *indexPages);

/* hnsw_build.c */
extern IndexBuildResult *hnsw_build(Relation heap, Relation index, IndexInfo *indexInfo);
extern void hnsw_buildempty(Relation index);

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

#endif							/* ENGRAM_HNSW_H */
