/*-------------------------------------------------------------------------
 *
 * hnsw_veccache.c
 *	  Reading elements of the page graph: the vector cache, the recent-buffer
 *	  hints and the graph operations that read elements through them
 *	  (distance, deleted, vector, estimate, peek_vector, peek_code,
 *	  prefetch).
 *
 * Locking: every function here holds at most one buffer content lock at a
 * time (the element's page, share-locked).  See src/README.md.
 *
 * Built on hnsw_pages.c; the page graph (hnsw_pagegraph.c) puts these
 * operations in its HnswGraphOps.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "storage/buf_internals.h"
#include "storage/bufmgr.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "engram_hnsw.h"

typedef struct HnswVecCacheEntry
{
	uint64		key;
	char		status;
	uint32		slot;
} HnswVecCacheEntry;

/*
 * Half full at most: merges look up every neighbour a search meets, and
 * most of them miss in a young cache (simplehash's default 0.9 made a
 * miss walk long runs of slots).
 */
#define SH_FILLFACTOR	(0.5)
#define SH_PREFIX		hnswvc
#define SH_ELEMENT_TYPE	HnswVecCacheEntry
#define SH_KEY_TYPE		uint64
#define SH_KEY			key
#define SH_HASH_KEY(tb, k) HnswNodeHash(k)
#define SH_EQUAL(tb, a, b) ((a) == (b))
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/*
 * The vector cache: element -> a copy of its vector and its deleted flag,
 * in slots allocated a chunk (about HNSW_VC_CHUNK_BYTES) at a time.  The
 * graph code may hold a vector pointer for a whole insertion, so a slot is
 * only ever reused between insertions (hnsw_page_graph_reset()).
 *
 * By default an operation (one merged row, a direct insert, a VACUUM list
 * repair) gets a private cache, dropped by hnsw_page_graph_reset().  With
 * engram_hnsw.vector_cache_size > 0, merges and direct inserts use the
 * backend's cache instead (hnsw_page_graph_keep_vectors()), which outlives
 * them: an element's vector never changes while it lives (only flags,
 * heap TIDs and lists do), so a copy stays right.  Its deleted flag can go
 * stale, and so can the whole entry once VACUUM has freed the slot and an
 * insert has put a new element there (src/README.md, "Reusing the space
 * of deleted elements"): VACUUM bumps the meta page's vacuum_gen after
 * marking elements deleted and again after freeing slots, and the cache is
 * dropped when it sees a new value.  Within one operation a stale entry
 * only costs link quality: a link to a deleted element, which searches
 * walk through and the next VACUUM repairs (as with an insert that runs
 * during VACUUM), or neighbour choices made with the old vector of a
 * reused slot; add_heaptid compares the vector on the page.  It holds one
 * index's vectors, at most engram_hnsw.vector_cache_size of them; between
 * insertions it evicts in CLOCK order (a slot used since the hand last
 * passed is kept).  Measurements: bench/notes_design.md, "Vector cache".
 */
#define HNSW_VC_CHUNK_BYTES	(1024 * 1024)

typedef struct HnswVecCache
{
	MemoryContext cxt;			/* everything below lives here */
	hnswvc_hash *hash;			/* node -> slot */
	int			dims;
	uint32		per_chunk;		/* slots per chunk */
	uint32		nslots;			/* slots handed out so far */
	uint32		cap;			/* length of the slot arrays */
	uint32		nused;			/* slots holding a vector */
	uint32		maxused;		/* trim down from above this (0: never) */
	uint32		hand;			/* CLOCK hand */
	float	  **chunks;			/* cap / per_chunk chunk pointers */
	uint64	   *slot_node;
	bool	   *slot_deleted;
	uint8	   *slot_ref;		/* used since the hand passed */
	uint32	   *free;			/* free slots (evicted) */
	uint32		nfree;
	/* the backend's cache: whose vectors, as of which VACUUM */
	RelFileNode rnode;
	uint16		vacuum_gen;
} HnswVecCache;

static HnswVecCache *backend_vcache = NULL;

static HnswVecCache *
vc_create(MemoryContext parent, int dims, uint32 maxused)
{
	MemoryContext cxt = AllocSetContextCreate(parent, "engram_hnsw vector cache",
											  ALLOCSET_DEFAULT_SIZES);
	HnswVecCache *vc = MemoryContextAllocZero(cxt, sizeof(HnswVecCache));

	vc->cxt = cxt;
	vc->hash = hnswvc_create(cxt, 256, NULL);
	vc->dims = dims;
	vc->per_chunk = Max(HNSW_VC_CHUNK_BYTES / (sizeof(float) * (Size) Max(dims, 1)), 1);
	vc->maxused = maxused;
	return vc;
}

static inline float *
vc_slot_vec(HnswVecCache *vc, uint32 slot)
{
	return vc->chunks[slot / vc->per_chunk] + (Size) (slot % vc->per_chunk) * vc->dims;
}

/* a slot to fill: a freed one, else a new one */
static uint32
vc_take_slot(HnswVecCache *vc)
{
	if (vc->nfree > 0)
		return vc->free[--vc->nfree];
	if (vc->nslots == vc->cap)
	{
		uint32		newcap = vc->cap + vc->per_chunk;
		uint32		nchunks = newcap / vc->per_chunk;

		if (vc->cap == 0)
		{
			vc->chunks = MemoryContextAlloc(vc->cxt, sizeof(float *));
			vc->slot_node = MemoryContextAlloc(vc->cxt, sizeof(uint64) * newcap);
			vc->slot_deleted = MemoryContextAlloc(vc->cxt, sizeof(bool) * newcap);
			vc->slot_ref = MemoryContextAlloc(vc->cxt, sizeof(uint8) * newcap);
			vc->free = MemoryContextAlloc(vc->cxt, sizeof(uint32) * newcap);
		}
		else
		{
			vc->chunks = repalloc(vc->chunks, sizeof(float *) * nchunks);
			vc->slot_node = repalloc_huge(vc->slot_node, sizeof(uint64) * newcap);
			vc->slot_deleted = repalloc_huge(vc->slot_deleted, sizeof(bool) * newcap);
			vc->slot_ref = repalloc_huge(vc->slot_ref, sizeof(uint8) * newcap);
			vc->free = repalloc_huge(vc->free, sizeof(uint32) * newcap);
		}
		vc->chunks[nchunks - 1] =
			MemoryContextAllocHuge(vc->cxt, sizeof(float) * vc->per_chunk * (Size) vc->dims);
		vc->cap = newcap;
	}
	return vc->nslots++;
}

/*
 * Between insertions: evict in CLOCK order down to 3/4 of the limit, if
 * over it.
 */
static void
vc_trim(HnswVecCache *vc)
{
	uint32		target;

	if (vc->maxused == 0 || vc->nused <= vc->maxused)
		return;
	target = vc->maxused / 4 * 3;
	while (vc->nused > target)
	{
		uint32		s = vc->hand;

		vc->hand = (vc->hand + 1) % vc->nslots;
		if (vc->slot_node[s] == PG_UINT64_MAX)
			continue;			/* free */
		if (vc->slot_ref[s])
		{
			vc->slot_ref[s] = 0;
			continue;
		}
		hnswvc_delete(vc->hash, vc->slot_node[s]);
		vc->slot_node[s] = PG_UINT64_MAX;
		vc->free[vc->nfree++] = s;
		vc->nused--;
	}
}

/*
 * Where the blocks of the index read last were found in shared buffers, by
 * block number: hints for ReadRecentBuffer(), which pins the buffer without
 * the buffer mapping lookup (a hash probe that misses the CPU caches on
 * every element a search visits) when the block is still there.  It checks
 * the buffer's tag, so a stale hint only costs the ordinary lookup.  One
 * index at a time (the one read last), kept across scans of this backend.
 */
#define HNSW_RECENT_MAX_BLOCKS	(4 * 1024 * 1024)	/* 16 MB of hints at most */

static Buffer *recent_buffers = NULL;
static BlockNumber recent_size = 0;
static RelFileNode recent_node;

static Buffer *
recent_buffer_slot(Relation index, BlockNumber blkno, BlockNumber nblocks)
{
	if (blkno >= HNSW_RECENT_MAX_BLOCKS)
		return NULL;
	if (recent_buffers == NULL || !RelFileNodeEquals(recent_node, index->rd_node))
	{
		if (recent_buffers != NULL)
			memset(recent_buffers, 0, sizeof(Buffer) * recent_size);
		recent_node = index->rd_node;
	}
	if (blkno >= recent_size)
	{
		BlockNumber newsize = Max(Min(nblocks, HNSW_RECENT_MAX_BLOCKS), blkno + 1);

		newsize = Max(newsize, Min(recent_size * 2, HNSW_RECENT_MAX_BLOCKS));
		if (recent_buffers == NULL)
			recent_buffers = MemoryContextAllocZero(TopMemoryContext,
													sizeof(Buffer) * newsize);
		else
		{
			recent_buffers = repalloc(recent_buffers, sizeof(Buffer) * newsize);
			memset(recent_buffers + recent_size, 0,
				   sizeof(Buffer) * (newsize - recent_size));
		}
		recent_size = newsize;
	}
	return &recent_buffers[blkno];
}

/*
 * Pin a block reached through a TID, after checking that it exists (a
 * corrupted TID must not make us read past the end of the relation).
 */
Buffer
hnsw_read_buffer(HnswPageGraph *pg, BlockNumber blkno)
{
	Relation	index = pg->index;
	Buffer	   *slot;
	Buffer		buf;

	if (blkno == HNSW_METAPAGE_BLKNO || blkno >= pg->nblocks)
	{
		pg->nblocks = RelationGetNumberOfBlocks(index);
		if (blkno == HNSW_METAPAGE_BLKNO || blkno >= pg->nblocks)
			hnsw_corrupt(index, blkno,
						 psprintf("a link points to block %u, but the index has %u blocks",
								  blkno, pg->nblocks));
	}
	if (RelationUsesLocalBuffers(index))
		return ReadBuffer(index, blkno);
	slot = recent_buffer_slot(index, blkno, pg->nblocks);
	if (slot == NULL)
		return ReadBuffer(index, blkno);
	if (BufferIsValid(*slot) &&
		ReadRecentBuffer(index->rd_node, MAIN_FORKNUM, blkno, *slot))
	{
		/* the statistics ReadBuffer() would have counted */
		pgstat_count_buffer_read(index);
		pgstat_count_buffer_hit(index);
		return *slot;
	}
	buf = ReadBuffer(index, blkno);
	*slot = buf;
	return buf;
}

/* pin and share-lock the element of node; returns the tuple */
HnswElementTuple
hnsw_lock_element(HnswPageGraph *pg, HnswNode node, Buffer *buf)
{
	ItemPointerData tid;
	Page		page;

	HnswNodeToTid(node, &tid);
	*buf = hnsw_read_buffer(pg, ItemPointerGetBlockNumber(&tid));
	LockBuffer(*buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(*buf);
	hnsw_check_page(pg->index, page, ItemPointerGetBlockNumber(&tid));
	return hnsw_page_element(pg->index, page, ItemPointerGetBlockNumber(&tid),
							 ItemPointerGetOffsetNumber(&tid), pg->meta);
}

/*
 * Copy node's vector into out (from its element tuple, or in format 3 from
 * its vector's chunks, read after the element's page is released);
 * returns whether the element is deleted.
 */
static bool
read_element_vector(HnswPageGraph *pg, HnswNode node, float *out)
{
	Buffer		buf;
	HnswElementTuple etup = hnsw_lock_element(pg, node, &buf);
	bool		deleted = (etup->flags & HNSW_ELEMENT_DELETED) != 0;
	ItemPointerData first;

	if (pg->meta->version < 3)
	{
		memcpy(out, etup->vec, sizeof(float) * pg->graph.dims);
		UnlockReleaseBuffer(buf);
		return deleted;
	}
	first = *HnswElementVectorTid(etup);
	UnlockReleaseBuffer(buf);
	hnsw_page_read_vector(pg, &first, out);
	return deleted;
}

/*
 * The slot of node's vector in the graph's cache, read from its page on a
 * miss.  The cache is changed only once the page has been read, so an
 * error (a corrupt page) leaves it consistent.
 */
static uint32
cached_vector(HnswPageGraph *pg, HnswNode node)
{
	HnswVecCache *vc = (HnswVecCache *) pg->cache;
	HnswVecCacheEntry *entry;
	uint32		slot;
	bool		found;

	if (vc == NULL)
		pg->cache = vc = vc_create(pg->graph.cxt, pg->graph.dims, 0);

	/* a search peeks at the next neighbour before its distance: no second probe */
	if (node == pg->peek_node[0] || node == pg->peek_node[1])
		slot = pg->peek_slot[node == pg->peek_node[0] ? 0 : 1];
	else
	{
		entry = hnswvc_lookup(vc->hash, node);
		slot = entry ? entry->slot : PG_UINT32_MAX;
	}
	if (slot != PG_UINT32_MAX)
	{
		vc->slot_ref[slot] = 1;
		return slot;
	}

	slot = vc_take_slot(vc);
	vc->slot_node[slot] = PG_UINT64_MAX;	/* not in use until filled */
	vc->slot_deleted[slot] = read_element_vector(pg, node, vc_slot_vec(vc, slot));
	entry = hnswvc_insert(vc->hash, node, &found);
	Assert(!found);
	entry->slot = slot;
	vc->slot_node[slot] = node;
	vc->slot_ref[slot] = 1;
	vc->nused++;
	return slot;
}

float
hnsw_page_distance(HnswGraph *g, HnswNode node, const float *q, bool *skip)
{
	HnswPageGraph *pg = (HnswPageGraph *) g;
	Buffer		buf;
	HnswElementTuple etup;
	float		d;

	if (pg->keep_vectors)
	{
		HnswVecCache *vc;
		uint32		slot = cached_vector(pg, node);

		vc = (HnswVecCache *) pg->cache;
		*skip = vc->slot_deleted[slot];
		return g->dist(q, vc_slot_vec(vc, slot), g->dims);
	}
	if (pg->meta->version >= 3)
	{
		if (pg->vecbuf == NULL)
			pg->vecbuf = MemoryContextAlloc(g->cxt, sizeof(float) * g->dims);
		*skip = read_element_vector(pg, node, pg->vecbuf);
		return g->dist(q, pg->vecbuf, g->dims);
	}
	etup = hnsw_lock_element(pg, node, &buf);
	d = g->dist(q, etup->vec, g->dims);
	*skip = (etup->flags & HNSW_ELEMENT_DELETED) != 0;
	UnlockReleaseBuffer(buf);
	return d;
}

/*
 * Format 3: the distance from a prepared query to node estimated from the
 * code in its element tuple (HnswGraphOps.estimate); one page, share-locked.
 */
float
hnsw_page_estimate(HnswGraph *g, HnswNode node, const HnswCodeQuery *cq, bool *skip)
{
	HnswPageGraph *pg = (HnswPageGraph *) g;
	Buffer		buf;
	HnswElementTuple etup = hnsw_lock_element(pg, node, &buf);
	float		d = hnsw_code_estimate(cq, HnswElementCode(etup));

	*skip = (etup->flags & HNSW_ELEMENT_DELETED) != 0;
	UnlockReleaseBuffer(buf);
	return d;
}

/*
 * Whether node is deleted (HnswGraphOps.deleted): its element's flags, one
 * page share-locked, no vector read.
 */
bool
hnsw_page_deleted(HnswGraph *g, HnswNode node)
{
	Buffer		buf;
	HnswElementTuple etup = hnsw_lock_element((HnswPageGraph *) g, node, &buf);
	bool		deleted = (etup->flags & HNSW_ELEMENT_DELETED) != 0;

	UnlockReleaseBuffer(buf);
	return deleted;
}

const float *
hnsw_page_vector(HnswGraph *g, HnswNode node)
{
	HnswPageGraph *pg = (HnswPageGraph *) g;
	uint32		slot = cached_vector(pg, node);

	return vc_slot_vec((HnswVecCache *) pg->cache, slot);
}

/*
 * The recent-buffer hints of pg's index for a prefetch, or NULL if there are
 * none.  A hint is only that: the buffer may hold another block by now.
 */
static inline Buffer *
prefetch_hints(HnswPageGraph *pg)
{
	if (recent_buffers == NULL || RelationUsesLocalBuffers(pg->index) ||
		!RelFileNodeEquals(recent_node, pg->index->rd_node))
		return NULL;
	return recent_buffers;
}

/*
 * The page of the shared buffer hinted for node's block, and node's line
 * pointer in it (NULL for an offset beyond the page); NULL if no shared
 * buffer is hinted.  Shared buffers only: their memory stays mapped for the
 * life of the server, so it may be read without a pin, while a local
 * buffer's may not be allocated.
 */
static inline char *
hinted_page(Buffer *hints, HnswNode node, Buffer *buf, ItemId *lp)
{
	BlockNumber blkno = (BlockNumber) (node >> 16);
	OffsetNumber off = (OffsetNumber) (node & 0xFFFF);
	char	   *page;

	if (blkno >= recent_size)
		return NULL;
	*buf = hints[blkno];
	if (*buf <= 0 || *buf > NBuffers)
		return NULL;
	page = (char *) BufferGetBlock(*buf);
	*lp = NULL;
	if (off >= FirstOffsetNumber && SizeOfPageHeaderData + sizeof(ItemIdData) * off <= BLCKSZ)
		*lp = (ItemId) (page + SizeOfPageHeaderData) + (off - 1);
	return page;
}

/*
 * Where node's vector probably lies in shared buffers, for a prefetch only
 * (see HnswGraphOps.peek_vector).  The line pointer is read without a pin
 * or a lock, so it may be stale or belong to another block: the address is
 * kept inside the buffer's page, and the caller never reads through it.
 */
static const float *
page_peek_shared(HnswPageGraph *pg, HnswNode node)
{
	Buffer	   *hints = prefetch_hints(pg);
	Buffer		buf;
	ItemId		lp;
	char	   *page;
	uint32		itemoff;

	if (hints == NULL || (page = hinted_page(hints, node, &buf, &lp)) == NULL || lp == NULL)
		return NULL;
	itemoff = ((volatile ItemIdData *) lp)->lp_off;
	if (itemoff < SizeOfPageHeaderData || itemoff > BLCKSZ - sizeof(HnswElementTupleData))
		return NULL;
	hnsw_prefetch(page + itemoff);	/* the tuple's header */
	return (const float *) (page + itemoff + offsetof(HnswElementTupleData, vec));
}

/*
 * Format 3: where node's code probably lies in shared buffers, for a
 * prefetch only (see HnswGraphOps.peek_code and page_peek_shared()).
 */
const unsigned char *
hnsw_page_peek_code(HnswGraph *g, HnswNode node)
{
	const char *p = (const char *) page_peek_shared((HnswPageGraph *) g, node);

	if (p == NULL)
		return NULL;
	return (const unsigned char *) p - offsetof(HnswElementTupleData, vec) +
		HNSW_ELEMENT3_CODE_OFFSET;
}

/*
 * A search is about to read these nodes (see HnswGraphOps.prefetch): start
 * loading, for each one whose buffer this backend knows, the lines every
 * read touches first: the buffer header (the pin), the page header, the
 * line pointer and the special space (the page checks).  Addresses only:
 * nothing is read, no pin or lock is taken.
 */
void
hnsw_page_prefetch(HnswGraph *g, const HnswNode *nodes, int n)
{
	Buffer	   *hints = prefetch_hints((HnswPageGraph *) g);

	if (hints == NULL)
		return;
	for (int i = 0; i < n; i++)
	{
		Buffer		buf;
		ItemId		lp;
		char	   *page = hinted_page(hints, nodes[i], &buf, &lp);

		if (page == NULL)
			continue;
		hnsw_prefetch(GetBufferDescriptor(buf - 1));
		hnsw_prefetch(page);
		if (lp != NULL)
			hnsw_prefetch(lp);
		hnsw_prefetch(page + BLCKSZ - sizeof(HnswPageOpaqueData));
	}
}

/*
 * Format 3: where the first chunk of a vector probably lies in shared
 * buffers, given tidp, where page_peek_shared() found the element's vector
 * TID.  The TID, the vector page's hint and its line pointer are read
 * without a pin or a lock, like the element's line pointer there: a stale
 * or torn TID only leads to a prefetch of the wrong lines, and the address
 * is kept inside the hinted buffer's page.  The lines the read will touch
 * first (buffer header, page header, special space) are prefetched on the
 * way.
 */
static const float *
page_peek_chunk(HnswPageGraph *pg, const float *tidp)
{
	ItemPointerData tid;
	Buffer	   *hints = prefetch_hints(pg);
	Buffer		buf;
	ItemId		lp;
	char	   *page;
	uint32		itemoff;

	memcpy(&tid, (const void *) tidp, sizeof(tid));
	if (hints == NULL ||
		(page = hinted_page(hints, HnswNodeFromTid(&tid), &buf, &lp)) == NULL || lp == NULL)
		return NULL;
	hnsw_prefetch(GetBufferDescriptor(buf - 1));
	hnsw_prefetch(page);
	hnsw_prefetch(page + BLCKSZ - sizeof(HnswPageOpaqueData));
	itemoff = ((volatile ItemIdData *) lp)->lp_off;
	if (itemoff < SizeOfPageHeaderData || itemoff > BLCKSZ - sizeof(HnswVectorTupleData))
		return NULL;
	return (const float *) (page + itemoff + offsetof(HnswVectorTupleData, data));
}

/*
 * The vector if the batch's cache has it (merges), else where it probably
 * lies in shared buffers (see HnswGraphOps.peek_vector): in the element
 * tuple (formats 1 and 2) or in the first chunk its TID names (format 3).
 */
const float *
hnsw_page_peek_vector(HnswGraph *g, HnswNode node)
{
	HnswPageGraph *pg = (HnswPageGraph *) g;
	HnswVecCache *vc = (HnswVecCache *) pg->cache;
	HnswVecCacheEntry *entry;

	if (!pg->keep_vectors || (entry = hnswvc_lookup(vc->hash, node)) == NULL)
	{
		const float *p = page_peek_shared(pg, node);

		if (p == NULL || g->code_kind == HNSW_CODE_NONE)
			return p;
		return page_peek_chunk(pg, p);	/* p: the element's vector TID */
	}
	/* remember hits only: a remembered miss would go stale when filled */
	pg->peek_node[pg->peek_next] = node;
	pg->peek_slot[pg->peek_next] = entry->slot;
	pg->peek_next ^= 1;
	return vc_slot_vec(vc, entry->slot);
}

/*
 * Done with one operation (one insertion): a private vector cache is
 * dropped (its vectors' flags may be stale after the operation); the
 * backend's cache is trimmed to its limit.
 */
void
hnsw_page_graph_reset(HnswPageGraph *pg)
{
	HnswVecCache *vc = (HnswVecCache *) pg->cache;

	pg->peek_node[0] = pg->peek_node[1] = 0;	/* (0,0) is never an element */
	if (vc == NULL)
		return;
	if (pg->keep_vectors)
		vc_trim(vc);
	else
	{
		MemoryContextDelete(vc->cxt);
		pg->cache = NULL;
	}
}

/*
 * Merges: take vectors and deleted flags from the backend's vector cache,
 * kept from earlier merges of this index unless a VACUUM has marked
 * elements deleted since (see HnswVecCache).  Without a cache
 * (engram_hnsw.vector_cache_size = 0) every insertion reads its own.
 */
void
hnsw_page_graph_keep_vectors(HnswPageGraph *pg)
{
	HnswVecCache *vc = backend_vcache;
	Size		slotbytes = sizeof(float) * (Size) Max(pg->graph.dims, 1) + 32;
	Size		limit = (Size) hnsw_vector_cache_kb * 1024;
	uint32		maxused = (uint32) Min(limit / slotbytes, (Size) PG_INT32_MAX);

	if (vc != NULL &&
		(!RelFileNodeEquals(vc->rnode, pg->index->rd_node) ||
		 vc->dims != pg->graph.dims || vc->vacuum_gen != pg->meta->vacuum_gen ||
		 maxused != vc->maxused))
	{
		backend_vcache = NULL;
		MemoryContextDelete(vc->cxt);
		vc = NULL;
	}
	if (maxused < 1 || pg->graph.dims <= 0)
		return;
	if (vc == NULL)
	{
		vc = vc_create(TopMemoryContext, pg->graph.dims, maxused);
		vc->rnode = pg->index->rd_node;
		vc->vacuum_gen = pg->meta->vacuum_gen;
		backend_vcache = vc;
	}
	if (pg->cache != NULL && !pg->keep_vectors)
		MemoryContextDelete(((HnswVecCache *) pg->cache)->cxt);
	pg->cache = vc;
	pg->keep_vectors = true;
}
