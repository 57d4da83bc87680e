/*-------------------------------------------------------------------------
 *
 * hnsw_format.h
 *	  The on-disk format of an engram_hnsw index: constants, page layout and
 *	  tuple structs.  Changing anything here changes the format (see
 *	  HNSW_FORMAT_VERSION).
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
 * VACUUM flags a deleted element's slot FREE (HNSW_ELEMENT_FREE, counted
 * in the page's nfree) and a new element of at most the neighbour tuple's
 * level may take it over in place.
 *
 * Every page ends with HnswPageOpaqueData in the special space, whose last
 * field is HNSW_PAGE_ID.
 *
 *-------------------------------------------------------------------------
 */
#ifndef HNSW_FORMAT_H
#define HNSW_FORMAT_H

#include "storage/bufpage.h"
#include "storage/itemptr.h"

/* ----------------------------------------------------------------
 * Constants
 * ----------------------------------------------------------------
 */
#define HNSW_MAGIC				0x454E4757	/* "ENGW" */
#define HNSW_FORMAT_VERSION		3	/* 1: 0.1.0, no stripes or pending list;
										 * 2: 0.2.0, vectors in element tuples;
										 * 3: codes in element tuples, vectors
										 * in vector pages */
#define HNSW_PAGE_ID			0xE4A7
#define HNSW_METAPAGE_BLKNO		0

#define HNSW_DEFAULT_M			16
#define HNSW_MIN_M				2
#define HNSW_MAX_M				100
#define HNSW_DEFAULT_EF_CONSTRUCTION 64
#define HNSW_MIN_EF_CONSTRUCTION 4
#define HNSW_MAX_EF_CONSTRUCTION 1000
#define HNSW_DEFAULT_EF_SEARCH	40
#define HNSW_DEFAULT_SPACE_READ_PAGES	16	/* engram_hnsw.space_read_pages */
#define HNSW_MIN_EF_SEARCH		1
#define HNSW_MAX_EF_SEARCH		1000
#define HNSW_MAX_DIMS			16000	/* format 3 */
#define HNSW_MAX_DIMS_V2		2000	/* formats 1 and 2: vector and lists on a page */
#define HNSW_MAX_LEVEL			16
#define HNSW_HEAPTIDS			10
#define HNSW_STRIPES			8	/* insert pages and pending lists */
#define HNSW_DEFAULT_PENDING_LIMIT 4096 /* kB, engram_hnsw.pending_list_limit */
#define HNSW_DEFAULT_VECTOR_CACHE 0	/* kB, engram_hnsw.vector_cache_size: off */
#define HNSW_DEFAULT_MAX_MERGE_WORKERS 4	/* engram_hnsw.max_merge_workers */
#define HNSW_MAX_MERGE_WORKER_SLOTS 64
#define HNSW_DEFAULT_HELPER_IDLE_CPUS 0.4	/* engram_hnsw.merge_helper_idle_cpus */
#define HNSW_DEFAULT_PARALLEL_READ_TRIES 64	/* engram_hnsw.parallel_read_tries */

/*
 * What VACUUM records in the free space map for a data page with free
 * element slots: less than the half page GetFreeIndexPage() asks for, so
 * hnsw_new_buffer() never takes such a page for a new one.
 */
#define HNSW_FSM_SLOTS			(BLCKSZ / 4)

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
#define HNSW_PAGE_VECTOR		(1 << 5)	/* format 3: vector chunks */

/* tuple types (first byte of every tuple) */
#define HNSW_TUPLE_ELEMENT		1
#define HNSW_TUPLE_NEIGHBORS	2
#define HNSW_TUPLE_SPACE		3
#define HNSW_TUPLE_PENDING		4
#define HNSW_TUPLE_VECTOR		5

/* element flags */
#define HNSW_ELEMENT_DELETED	(1 << 0)
#define HNSW_ELEMENT_PENDING	(1 << 1)	/* stored, not linked into the graph yet */
#define HNSW_ELEMENT_FREE		(1 << 2)	/* with DELETED: a slot VACUUM freed for
											 * a new element */

/* pending entry flags */
#define HNSW_PENDING_MERGED		(1 << 0)	/* its element is linked */

/* space directory entry flags */
#define HNSW_SPACE_EMPTY		(1 << 0)	/* all its rows were vacuumed away */
#define HNSW_SPACE_LISTED		(1 << 1)	/* a block list follows the key
											 * (format 3) */
#define HNSW_SPACE_SCATTERED	(1 << 2)	/* with LISTED: its elements came to
											 * lie on more blocks than the list
											 * holds; the list is stale */
#define HNSW_SPACE_COLLECTING	(1 << 3)	/* with LISTED: a VACUUM is
											 * collecting the space's blocks
											 * afresh */

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
	uint16		nfree;			/* data pages: elements flagged FREE */
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
								 * deleted or frees slots (0.1.0 left it 0):
								 * backends' vector caches are dropped then */
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
	/* format 3: compact codes, vector pages */
	uint16		code_kind;		/* HNSW_CODE_* (hnsw_codes.h) */
	uint16		code_unused;
	uint32		code_seed;		/* RaBitQ's rotation */
	BlockNumber vector_insert[HNSW_STRIPES];	/* per-stripe vector page */
} HnswMetaPageData;

/* the meta page of format 1 ended before nstripes, format 2 before code_kind */
#define HNSW_META_V1_SIZE offsetof(HnswMetaPageData, nstripes)
#define HNSW_META_V2_SIZE offsetof(HnswMetaPageData, code_kind)

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

/* formats 1 and 2: the vector follows the header */
#define HNSW_ELEMENT_TUPLE_SIZE(dims) \
	MAXALIGN(offsetof(HnswElementTupleData, vec) + sizeof(float) * (dims))

/*
 * Format 3: where vec[] starts, the TID of the vector's first chunk, then
 * (MAXALIGNed) the compact code of the vector.
 */
#define HNSW_ELEMENT3_CODE_OFFSET \
	MAXALIGN(offsetof(HnswElementTupleData, vec) + sizeof(ItemPointerData))
#define HNSW_ELEMENT3_TUPLE_SIZE(codesize) \
	MAXALIGN(HNSW_ELEMENT3_CODE_OFFSET + (codesize))
#define HnswElementVectorTid(etup)	((ItemPointer) (etup)->vec)
#define HnswElementCode(etup)	((unsigned char *) (etup) + HNSW_ELEMENT3_CODE_OFFSET)

typedef struct HnswNeighborTupleData
{
	uint8		type;			/* HNSW_TUPLE_NEIGHBORS */
	uint8		level;			/* layers it has room for: its element's level,
								 * or more in a reused slot (lists above the
								 * element's level stay empty) */
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
 * Format 3: the data blocks holding a space's elements (graph and pending),
 * after the key of its directory entry.  Inserts add blocks as elements
 * land on new ones, so the list is a superset of where the space lives,
 * until it would overflow: then the entry is flagged HNSW_SPACE_SCATTERED
 * and the list is no longer kept.  VACUUM collects every space's blocks
 * afresh (flag HNSW_SPACE_COLLECTING: inserts meanwhile add their blocks to
 * "collected" too) and replaces the list, which drops emptied blocks and
 * lists a scattered space again once it fits.  A scan of a space listed on
 * few blocks reads those blocks whole instead of searching its graph
 * (hnsw_scan.c).
 */
#define HNSW_SPACE_MAX_BLOCKS	32

typedef struct HnswSpaceBlocksData
{
	uint16		nblocks;
	uint16		ncollected;		/* MAX_BLOCKS + 1: more than fit */
	BlockNumber blocks[HNSW_SPACE_MAX_BLOCKS];
	BlockNumber collected[HNSW_SPACE_MAX_BLOCKS];
} HnswSpaceBlocksData;

typedef HnswSpaceBlocksData *HnswSpaceBlocks;

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

/*
 * Format 3: a piece of an element's float4 vector, on a vector page
 * (HNSW_PAGE_VECTOR).  A vector is one chunk or a chain of them (through
 * "next"), components [start, start + ncomp) each; a chunk goes where the
 * page has room for at least HNSW_MIN_CHUNK components (or the rest of the
 * vector), so a long vector fills pages and may span many.  Chunks are
 * written once and later only overwritten in place, by a new element that
 * takes over a free slot (whose vector has the same length).
 */
typedef struct HnswVectorTupleData
{
	uint8		type;			/* HNSW_TUPLE_VECTOR */
	uint8		flags;			/* none yet */
	uint16		ncomp;			/* components in this chunk */
	uint32		start;			/* index of its first component */
	ItemPointerData next;		/* the next chunk, or invalid */
	float		data[FLEXIBLE_ARRAY_MEMBER];
} HnswVectorTupleData;

typedef HnswVectorTupleData *HnswVectorTuple;

#define HNSW_MIN_CHUNK			64
#define HNSW_VECTOR_TUPLE_SIZE(ncomp) \
	MAXALIGN(offsetof(HnswVectorTupleData, data) + sizeof(float) * (ncomp))

#define HNSW_PENDING_TUPLE_SIZE MAXALIGN(sizeof(HnswPendingTupleData))

#define HNSW_SPACE_TUPLE_SIZE(keylen) \
	MAXALIGN(offsetof(HnswSpaceTupleData, key) + (keylen))
/* a format 3 entry, with its block list */
#define HNSW_SPACE_LISTED_SIZE(keylen) \
	(HNSW_SPACE_TUPLE_SIZE(keylen) + MAXALIGN(sizeof(HnswSpaceBlocksData)))
#define HnswSpaceTupleBlocks(stup) \
	((HnswSpaceBlocks) ((char *) (stup) + HNSW_SPACE_TUPLE_SIZE((stup)->keylen)))


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
/* the most components one chunk holds (a chunk alone on a page) */
#define HNSW_CHUNK_MAX_COMP \
	((int) ((HNSW_PAGE_FREE_SPACE - sizeof(ItemIdData) - \
			 offsetof(HnswVectorTupleData, data)) / sizeof(float) - 1))
#define HNSW_PENDING_PER_PAGE \
	((int) (HNSW_PAGE_FREE_SPACE / (HNSW_PENDING_TUPLE_SIZE + sizeof(ItemIdData))))

#endif							/* HNSW_FORMAT_H */
