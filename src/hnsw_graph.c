/*-------------------------------------------------------------------------
 *
 * hnsw_graph.c
 *	  The HNSW graph algorithm: layer search, neighbour selection and
 *	  insertion.
 *
 * This is the only implementation of the algorithm.  It works on any
 * storage that implements HnswGraphOps; there are three: the in-memory
 * arena of the bulk build (hnsw_build.c), the shared-memory (DSA) graph of
 * a parallel build (hnsw_build_parallel.c), and the buffer-managed pages
 * used by inserts, merges, scans and vacuum (hnsw_pagegraph.c).
 * Storage-specific concerns (locking, WAL, caching, the highest level a
 * node may have) live behind the ops and in HnswGraph.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "common/hashfn.h"
#include "common/pg_prng.h"
#include "miscadmin.h"

#include "engram_hnsw.h"

/* ----------------------------------------------------------------
 * Binary heaps of candidates
 * ----------------------------------------------------------------
 */
static inline void
heap_clear(HnswHeap *h)
{
	h->n = 0;
	h->nheap = 0;
}

void
hnsw_heap_init(HnswHeap *h, int cap, bool max)
{
	h->cap = Max(cap, 16);
	heap_clear(h);
	h->max = max;
	h->items = palloc(sizeof(HnswCandidate) * h->cap);
}

/* does a belong above b?  (max: a max-heap) */
static pg_attribute_always_inline bool
heap_before(const HnswCandidate *a, const HnswCandidate *b, bool max)
{
	return max ? a->dist > b->dist : a->dist < b->dist;
}

static inline void
heap_grow(HnswHeap *h)
{
	if (h->n == h->cap)
	{
		h->cap *= 2;
		h->items = repalloc_huge(h->items, sizeof(HnswCandidate) * h->cap);
	}
}

/*
 * Sifting moves a hole instead of swapping items, and is specialised for
 * min- and max-heaps (max a constant in each inlined copy), so that the
 * loops compare without testing h->max each time: searches push and pop a
 * candidate for most of the elements they estimate, 15% of a serial build
 * at 128 dimensions.  The heap comes out item for item as with swaps.
 */

/* put x, from hole i, in its place among items[0 .. i] */
static pg_attribute_always_inline void
sift_up_hole(HnswCandidate *items, int i, HnswCandidate x, bool max)
{
	while (i > 0)
	{
		int			parent = (i - 1) / 2;

		if (!heap_before(&x, &items[parent], max))
			break;
		items[i] = items[parent];
		i = parent;
	}
	items[i] = x;
}

/* put x, from hole i, in its place in the heap of the first n items */
static pg_attribute_always_inline void
sift_down_hole(HnswCandidate *items, int i, int n, HnswCandidate x, bool max)
{
	for (;;)
	{
		int			child = 2 * i + 1;

		if (child >= n)
			break;
		if (child + 1 < n && heap_before(&items[child + 1], &items[child], max))
			child++;
		if (!heap_before(&items[child], &x, max))
			break;
		items[i] = items[child];
		i = child;
	}
	items[i] = x;
}

/* move items[i] up to its place among items[0 .. i] */
static inline void
sift_up(HnswHeap *h, int i)
{
	if (h->max)
		sift_up_hole(h->items, i, h->items[i], true);
	else
		sift_up_hole(h->items, i, h->items[i], false);
}

/* move x down from hole i to its place in the heap of the first n items */
static inline void
sift_down(HnswHeap *h, int i, int n, HnswCandidate x)
{
	if (h->max)
		sift_down_hole(h->items, i, n, x, true);
	else
		sift_down_hole(h->items, i, n, x, false);
}

void
hnsw_heap_push(HnswHeap *h, HnswNode node, float dist)
{
	Assert(h->nheap == h->n);
	heap_grow(h);
	h->items[h->n].node = node;
	h->items[h->n].dist = dist;
	sift_up(h, h->n++);
	h->nheap = h->n;
}

/* add an item without ordering it yet (see HnswHeap) */
void
hnsw_heap_append(HnswHeap *h, HnswNode node, float dist)
{
	heap_grow(h);
	h->items[h->n].node = node;
	h->items[h->n].dist = dist;
	h->n++;
}

/*
 * Order the appended items into the heap: a few are sifted up one by one,
 * many are ordered with the heap in one bottom-up pass (linear in n).
 */
void
hnsw_heap_settle(HnswHeap *h)
{
	if (h->n - h->nheap > h->nheap / 4)
	{
		for (int i = h->n / 2 - 1; i >= 0; i--)
			sift_down(h, i, h->n, h->items[i]);
	}
	else
	{
		for (int i = h->nheap; i < h->n; i++)
			sift_up(h, i);
	}
	h->nheap = h->n;
}

HnswCandidate
hnsw_heap_pop(HnswHeap *h)
{
	HnswCandidate top = h->items[0];

	Assert(h->n > 0 && h->nheap == h->n);
	h->n--;
	h->nheap = h->n;
	if (h->n > 0)
		sift_down(h, 0, h->n, h->items[h->n]);
	return top;
}

static inline int
candidate_order(const HnswCandidate *ca, const HnswCandidate *cb)
{
	if (ca->dist < cb->dist)
		return -1;
	if (ca->dist > cb->dist)
		return 1;
	/* deterministic order among ties */
	if (ca->node < cb->node)
		return -1;
	if (ca->node > cb->node)
		return 1;
	return 0;
}

/*
 * Candidates nearest first, ties by node (candidate_order()), by a sort
 * that PostgreSQL's sort template specialises with the comparison inlined.
 * Every insertion sorts its candidates after the rerank and the lists its
 * back-links choose again (33 to 64 candidates a time); through qsort()
 * and a comparison function called per pair, that was 8.5% of a serial
 * build at 128 dimensions.
 */
#define ST_SORT sort_candidates
#define ST_ELEMENT_TYPE HnswCandidate
#define ST_COMPARE(a, b) candidate_order(a, b)
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"

void
hnsw_sort_candidates(HnswCandidate *cands, int n)
{
	if (n > 1)
		sort_candidates(cands, (size_t) n);
}

/* ----------------------------------------------------------------
 * Visited sets
 *
 * Dense graphs (arena indexes) use a bitmap owned by the graph, one bit a
 * node (7.5 kB for 60 000 nodes, which stays in the L1 cache; a 32-bit
 * stamp a node took 240 kB), and a new search clears only the words the
 * last one set.  Page graphs keep the packed TIDs in an open-addressing
 * table owned by the search, epoch-stamped (a slot is taken when its stamp
 * is the current epoch), so moving to the next layer costs nothing.  It
 * starts at a size for an ef_construction-wide search and doubles at half
 * full.
 * ----------------------------------------------------------------
 */
struct HnswVisited
{
	HnswGraph  *g;
	/* page graphs (cxt: the search's; a resumed scan may run in a shorter one) */
	MemoryContext cxt;
	uint64	   *keys;
	uint32	   *stamps;
	uint32		mask;			/* capacity - 1, a power of two minus 1 */
	uint32		count;			/* slots taken in this epoch */
	uint32		epoch;
};

static HnswVisited *
visited_create(HnswGraph *g)
{
	HnswVisited *v = palloc0(sizeof(HnswVisited));

	v->g = g;
	if (!g->dense)
	{
		uint32		want = (uint32) Max(g->ef_construction, 16) * Max(g->m, 2) * 4;
		uint32		cap = 1024;

		while (cap < want && cap < (1U << 20))
			cap <<= 1;
		v->cxt = CurrentMemoryContext;
		v->keys = palloc(sizeof(uint64) * cap);
		v->stamps = palloc0(sizeof(uint32) * cap);
		v->mask = cap - 1;
	}
	return v;
}

static void
visited_clear(HnswVisited *v)
{
	HnswGraph  *g = v->g;

	if (!g->dense)
	{
		v->count = 0;
		if (++v->epoch == 0)
		{
			memset(v->stamps, 0, sizeof(uint32) * (v->mask + 1));
			v->epoch = 1;
		}
		return;
	}
	for (uint32 i = 0; i < g->ntouched; i++)
		g->marks[g->touched[i]] = 0;
	g->ntouched = 0;
}

/* room for one more word in the list of a dense graph's set words */
static pg_noinline void
touched_grow(HnswGraph *g)
{
	uint32		newcap = g->touched_cap * 2;

	g->touched = repalloc_huge(g->touched, sizeof(uint32) * newcap);
	g->touched_cap = newcap;
}

/* a dense graph's bitmap: room for node, a multiple of 64 bits */
static pg_noinline void
marks_grow(HnswGraph *g, HnswNode node)
{
	uint32		newcap = Max(1024, g->marks_cap);

	while (newcap <= node)
		newcap *= 2;
	if (g->marks == NULL)
	{
		g->marks = MemoryContextAllocExtended(g->cxt, newcap / 8,
											  MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
		g->touched_cap = 64;
		g->touched = MemoryContextAlloc(g->cxt, sizeof(uint32) * g->touched_cap);
	}
	else
	{
		g->marks = repalloc_huge(g->marks, newcap / 8);
		memset(g->marks + g->marks_cap / 64, 0, (newcap - g->marks_cap) / 8);
	}
	g->marks_cap = newcap;
}

/* the page graphs' table is half full: double it, keeping this epoch's keys */
static void
visited_grow(HnswVisited *v)
{
	uint32		oldcap = v->mask + 1;
	uint32		newcap = oldcap * 2;
	MemoryContext cxt = v->cxt;
	uint64	   *keys = MemoryContextAllocHuge(cxt, sizeof(uint64) * newcap);
	uint32	   *stamps = MemoryContextAllocExtended(cxt, sizeof(uint32) * newcap,
													MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);

	for (uint32 i = 0; i < oldcap; i++)
	{
		uint32		j;

		if (v->stamps[i] != v->epoch)
			continue;
		j = HnswNodeHash(v->keys[i]) & (newcap - 1);
		while (stamps[j] == 1)
			j = (j + 1) & (newcap - 1);
		keys[j] = v->keys[i];
		stamps[j] = 1;
	}
	pfree(v->keys);
	pfree(v->stamps);
	v->keys = keys;
	v->stamps = stamps;
	v->mask = newcap - 1;
	v->epoch = 1;
}

/* the page graphs' visited_add() */
static bool
visited_add_hash(HnswVisited *v, HnswNode node)
{
	uint32		i = HnswNodeHash(node) & v->mask;

	while (v->stamps[i] == v->epoch)
	{
		if (v->keys[i] == node)
			return false;
		i = (i + 1) & v->mask;
	}
	v->keys[i] = node;
	v->stamps[i] = v->epoch;
	if (++v->count > (v->mask + 1) / 2)
		visited_grow(v);
	return true;
}

/*
 * Mark node visited; returns true if it was not visited before.  Small
 * enough to be inlined into the walk for dense graphs.
 */
static inline bool
visited_add(HnswVisited *v, HnswNode node)
{
	HnswGraph  *g = v->g;
	uint64		bit = UINT64CONST(1) << (node & 63);
	uint64		word;

	if (!g->dense)
		return visited_add_hash(v, node);
	if (unlikely(node >= g->marks_cap))
		marks_grow(g, node);
	word = g->marks[node / 64];
	if (word & bit)
		return false;
	if (word == 0)
	{
		if (unlikely(g->ntouched == g->touched_cap))
			touched_grow(g);
		g->touched[g->ntouched++] = (uint32) (node / 64);
	}
	g->marks[node / 64] = word | bit;
	return true;
}

/* ----------------------------------------------------------------
 * Layer search
 * ----------------------------------------------------------------
 */
/*
 * Does a search of g walk on codes?  Only storages that keep them say how
 * to estimate (formats 1 and 2 on pages do not).
 */
static inline bool
walks_on_codes(HnswGraph *g)
{
	return g->ops->estimate != NULL && g->code_kind != HNSW_CODE_NONE;
}

/* q prepared for estimates against g's codes, in the current context */
static HnswCodeQuery *
prepare_code_query(HnswGraph *g, const float *q)
{
	HnswCodeQuery *cq;

	StaticAssertStmt(HNSW_CODE_METRIC_L2 == HNSW_METRIC_L2 &&
					 HNSW_CODE_METRIC_COSINE == HNSW_METRIC_COSINE &&
					 HNSW_CODE_METRIC_IP == HNSW_METRIC_IP,
					 "code metrics are the index's metrics");
	cq = palloc(hnsw_code_query_bytes(g->code_kind, g->dims));
	hnsw_code_query_prepare(g->code_kind, g->code_seed, g->metric, q, g->dims, cq);
	return cq;
}

/* the distance a search walks on: an estimate from codes, or exact */
static inline float
search_distance(HnswSearch *s, HnswNode node, bool *skip)
{
	HnswGraph  *g = s->g;

	if (s->cq != NULL)
		return g->ops->estimate(g, node, s->cq, skip);
	return g->ops->distance(g, node, s->q, skip);
}

/*
 * A search for q.  A walk on codes uses cq, q prepared by the caller (the
 * scan prepares it once for all its searches), or NULL: prepare it here.
 */
HnswSearch *
hnsw_search_begin(HnswGraph *g, const float *q, HnswCodeQuery *cq, bool track_pending)
{
	HnswSearch *s = palloc0(sizeof(HnswSearch));

	s->g = g;
	s->q = q;
	s->layer = 0;
	s->track_pending = track_pending;
	hnsw_heap_init(&s->cand, 64, false);
	hnsw_heap_init(&s->w, 64, true);
	if (track_pending)
	{
		hnsw_heap_init(&s->pending, 64, false);
		hnsw_heap_init(&s->far, 64, false);
	}
	s->visited = visited_create(g);
	visited_clear(s->visited);
	s->nbuf = palloc(sizeof(HnswNode) * HnswLayerCapacity(g->m, 0));
	s->nearest_any.node = HNSW_INVALID_NODE;
	if (q != NULL && walks_on_codes(g))
	{
		s->own_cq = (cq == NULL);
		s->cq = cq != NULL ? cq : prepare_code_query(g, q);
		s->code_bytes = hnsw_code_size(g->code_kind, g->dims);
	}
	return s;
}

/*
 * Move the search to another layer.  With keep_best, the best elements found
 * so far become the entry points of the new layer (their distances are
 * known, so they are not recomputed).
 */
void
hnsw_search_set_layer(HnswSearch *s, int layer, bool keep_best)
{
	int			nkeep = keep_best ? s->w.n : 0;
	HnswCandidate *keep = NULL;

	if (nkeep > 0)
	{
		keep = palloc(sizeof(HnswCandidate) * nkeep);
		memcpy(keep, s->w.items, sizeof(HnswCandidate) * nkeep);
	}
	s->layer = layer;
	heap_clear(&s->cand);
	heap_clear(&s->w);
	if (s->track_pending)
	{
		heap_clear(&s->pending);
		heap_clear(&s->far);
	}
	visited_clear(s->visited);
	for (int i = 0; i < nkeep; i++)
	{
		visited_add(s->visited, keep[i].node);
		hnsw_heap_push(&s->cand, keep[i].node, keep[i].dist);
		hnsw_heap_push(&s->w, keep[i].node, keep[i].dist);
		if (s->track_pending)
			hnsw_heap_append(&s->pending, keep[i].node, keep[i].dist);
	}

	/*
	 * The nearest node seen on the layer above leads on too when it is
	 * deleted: deleted elements stay traversable, and with only live ones
	 * kept, a descent through a deleted region would reach the next layer
	 * with nothing to start from.
	 */
	if (keep_best && s->nearest_any.node != HNSW_INVALID_NODE &&
		visited_add(s->visited, s->nearest_any.node))
	{
		HnswCandidate c = s->nearest_any;

		hnsw_heap_push(&s->cand, c.node, c.dist);
		if (!s->nearest_skip)
		{
			/* live: a result like the kept ones (never lost from "pending") */
			hnsw_heap_push(&s->w, c.node, c.dist);
			if (s->track_pending)
				hnsw_heap_append(&s->pending, c.node, c.dist);
		}
	}
	/*
	 * nearest_any stays: distances do not depend on the layer, so the
	 * nearest node seen so far remains the one to carry down until this
	 * layer shows a nearer one.  (Forgetting it here left a descent that
	 * met a deleted entry point alone on two layers with nothing at all to
	 * start the next layer from.)
	 */
	if (keep)
		pfree(keep);
}

/* remember the nearest node visited on this layer, deleted or not */
static inline void
note_nearest(HnswSearch *s, HnswNode node, float dist, bool skip)
{
	if (s->nearest_any.node == HNSW_INVALID_NODE || dist < s->nearest_any.dist)
	{
		s->nearest_any.node = node;
		s->nearest_any.dist = dist;
		s->nearest_skip = skip;
	}
}

void
hnsw_search_add_entry(HnswSearch *s, HnswNode node)
{
	bool		skip = false;
	float		d;

	if (!visited_add(s->visited, node))
		return;
	d = search_distance(s, node, &skip);
	note_nearest(s, node, d, skip);
	hnsw_heap_push(&s->cand, node, d);
	if (skip)
		return;
	hnsw_heap_push(&s->w, node, d);
	if (s->track_pending)
		hnsw_heap_append(&s->pending, node, d);
}

/*
 * Start loading a node's vector into the CPU cache: a search is bound by
 * memory latency, one vector per distance.  How much of it is the storage's
 * call (HnswGraphOps.peek_bytes), measured on Fashion-MNIST (784-d, 3 kB
 * vectors):
 *  - page graphs prefetch the whole vector (up to 8 kB): the hardware
 *    prefetcher does not stream across a 4 kB page boundary and needs a few
 *    misses to start, so with only the first kilobyte most of a vector in
 *    shared buffers was left to demand misses.  With the whole vector: a
 *    lone merge's CPU per row 0.92x (0.85x with huge pages), direct inserts
 *    0.87x the time, searches 1.12x the QPS;
 *  - in-memory builds prefetch the first kilobyte: their vectors lie in one
 *    allocation that the hardware prefetcher streams, and the whole vector
 *    made CREATE INDEX 1.05x slower.
 * See bench/writes_analysis.md, measured at 98bb192.
 */
static inline void
prefetch_vector(HnswGraph *g, HnswNode node)
{
	const char *p = (const char *) g->ops->peek_vector(g, node);
	Size		len = Min(sizeof(float) * g->dims, g->ops->peek_bytes);

	if (p == NULL)
		return;
	for (Size off = 0; off < len; off += 64)
		hnsw_prefetch(p + off);
}

/*
 * The same for a walk on codes: the whole code.  Estimates are as bound by
 * memory latency as distances are (a random int8 code of Fashion-MNIST,
 * 800 bytes, took 7x as long as one in cache).  How far ahead is the
 * storage's call (HnswGraphOps.peek_ahead), measured on Fashion-MNIST:
 *  - in-memory builds, whose codes lie at addresses computed from the node
 *    number, prefetch 5 neighbours ahead: one ahead left an estimate
 *    (about 10 ns of arithmetic) waiting for most of a memory access, and
 *    a serial CREATE INDEX took 0.91x the time with 5 (3 ahead did less,
 *    10 no better; bench/results/build_codes.md);
 *  - page graphs prefetch 1 ahead: finding a code in shared buffers reads
 *    the buffer and page headers that hnsw_page_prefetch() has only just
 *    asked for, and 2 to 6 ahead gave queries 1.00-1.05x.
 */
static inline void
prefetch_code(HnswSearch *s, HnswNode node)
{
	const char *p = (const char *) s->g->ops->peek_code(s->g, node);

	if (p == NULL)
		return;
	for (Size off = 0; off < s->code_bytes; off += 64)
		hnsw_prefetch(p + off);
}

/*
 * Start loading the list of the candidate that will most likely be
 * expanded next (the nearest one left, unless the current expansion finds
 * a nearer one): reading a list was a cache miss in most expansions of an
 * in-memory build.
 */
static inline void
prefetch_list(HnswSearch *s, HnswNode node)
{
	const char *p = (const char *) s->g->ops->peek_neighbors(s->g, node, s->layer);
	Size		len = sizeof(uint32) * (HnswLayerCapacity(s->g->m, s->layer) + 1);

	if (p == NULL)
		return;
	for (Size off = 0; off < len; off += 64)
		hnsw_prefetch(p + off);
}

/*
 * Expand one element: look at its neighbours on the current layer.  With
 * ef > 0 the classic bounded search keeps the best ef in w; with ef == 0
 * (resumed scan) every new neighbour becomes a candidate.  Elements the
 * storage marks "skip" are traversed but never enter w or pending.
 */
static void
search_expand(HnswSearch *s, HnswNode node, int ef)
{
	HnswGraph  *g = s->g;
	int			n = g->ops->neighbors(g, node, s->layer, s->nbuf);
	/* a walk on codes reads codes, no vectors */
	bool		peek = (g->ops->peek_vector != NULL && s->cq == NULL);
	bool		peekc = (g->ops->peek_code != NULL && s->cq != NULL);
	int			ahead = Max(g->ops->peek_ahead, 1);
	int			nnew = 0;

	/* the unvisited neighbours first, so the next one's vector can be prefetched */
	for (int i = 0; i < n; i++)
		if (visited_add(s->visited, s->nbuf[i]))
			s->nbuf[nnew++] = s->nbuf[i];
	if (g->ops->prefetch != NULL && nnew > 0)
		g->ops->prefetch(g, s->nbuf, nnew);
	if (peek && nnew > 0)
		prefetch_vector(g, s->nbuf[0]);
	for (int i = 0; peekc && i < nnew && i < ahead; i++)
		prefetch_code(s, s->nbuf[i]);

	for (int i = 0; i < nnew; i++)
	{
		HnswNode	e = s->nbuf[i];
		bool		skip = false;
		float		d;

		if (peek && i + 1 < nnew)
			prefetch_vector(g, s->nbuf[i + 1]);
		if (peekc && i + ahead < nnew)
			prefetch_code(s, s->nbuf[i + ahead]);
		d = search_distance(s, e, &skip);
		note_nearest(s, e, d, skip);
		if (s->track_pending && !skip)
			hnsw_heap_append(&s->pending, e, d);
		if (ef == 0)
		{
			hnsw_heap_push(&s->cand, e, d);
			continue;
		}
		if (s->w.n < ef || d < hnsw_heap_top(&s->w)->dist)
		{
			/*
			 * A skipped (deleted) element is still a way through the graph,
			 * but never one of the results.
			 */
			hnsw_heap_push(&s->cand, e, d);
			if (skip)
				continue;
			hnsw_heap_push(&s->w, e, d);
			if (s->w.n > ef)
				hnsw_heap_pop(&s->w);
		}
		else if (s->track_pending)
		{
			/* not needed now, but a resumed scan may expand it later */
			hnsw_heap_append(&s->far, e, d);
		}
	}
}

/*
 * A search that tracks what it has not returned yet sets aside the nodes it
 * finds beyond its ef best (s->far): hnsw_search_run() would never expand
 * them, since the ef-th best only gets nearer, and keeping them out of cand
 * keeps its pushes and pops short.  Before the search goes on past ef
 * (hnsw_search_next(), or a run with a larger ef) they join cand.
 */
static void
resume_far(HnswSearch *s)
{
	if (s->far.n == 0)
		return;
	for (int i = 0; i < s->far.n; i++)
		hnsw_heap_append(&s->cand, s->far.items[i].node, s->far.items[i].dist);
	heap_clear(&s->far);
	hnsw_heap_settle(&s->cand);
}

/*
 * The classic bounded search of one layer (SEARCH-LAYER of the HNSW paper):
 * expand the nearest candidate until it is farther than the ef-th best.
 */
void
hnsw_search_run(HnswSearch *s, int ef)
{
	while (s->w.n > ef)
		hnsw_heap_pop(&s->w);
	if (s->track_pending)
		resume_far(s);

	while (s->cand.n > 0)
	{
		HnswCandidate c = *hnsw_heap_top(&s->cand);

		if (s->w.n >= ef && c.dist > hnsw_heap_top(&s->w)->dist)
			break;
		hnsw_heap_pop(&s->cand);
		if (s->cand.n > 0 && s->g->ops->peek_neighbors != NULL)
			prefetch_list(s, hnsw_heap_top(&s->cand)->node);
		search_expand(s, c.node, ef);
		CHECK_FOR_INTERRUPTS();
	}
}

/* the best elements found, nearest first; returns the count */
int
hnsw_search_result(HnswSearch *s, HnswCandidate *out)
{
	int			n = s->w.n;

	memcpy(out, s->w.items, sizeof(HnswCandidate) * n);
	hnsw_sort_candidates(out, n);
	return n;
}

/*
 * Next result of a resumable search, in best-first order: an element is
 * returned once no unexpanded candidate is nearer than it.  After
 * hnsw_search_run() this first yields the ef best in order, then goes on
 * expanding the frontier until the layer is exhausted.
 */
bool
hnsw_search_next(HnswSearch *s, HnswCandidate *result)
{
	Assert(s->track_pending);
	for (;;)
	{
		resume_far(s);
		hnsw_heap_settle(&s->pending);
		if (s->cand.n > 0 &&
			(s->pending.n == 0 ||
			 hnsw_heap_top(&s->cand)->dist < hnsw_heap_top(&s->pending)->dist))
		{
			HnswCandidate c = hnsw_heap_pop(&s->cand);

			search_expand(s, c.node, 0);
			CHECK_FOR_INTERRUPTS();
			continue;
		}
		if (s->pending.n == 0)
			return false;
		*result = hnsw_heap_pop(&s->pending);
		return true;
	}
}

void
hnsw_search_end(HnswSearch *s)
{
	pfree(s->cand.items);
	pfree(s->w.items);
	if (s->track_pending)
	{
		pfree(s->pending.items);
		pfree(s->far.items);
	}
	if (s->visited->keys)
	{
		pfree(s->visited->keys);
		pfree(s->visited->stamps);
	}
	if (s->own_cq)
		pfree(s->cq);
	pfree(s->visited);
	pfree(s->nbuf);
	pfree(s);
}

/*
 * The exact distance from q to each candidate, with the vector two
 * candidates ahead prefetched while the current one is compared: these
 * vectors are cold (a walk on codes never read them), and one distance in
 * the cache takes less time than a vector takes to arrive.  Serial
 * Fashion-MNIST builds took 0.97x the time (median of 16 side-by-side
 * rounds); one or four ahead did no better (bench/results/build_codes.md).
 */
#define EXACT_PREFETCH_AHEAD 2

static void
exact_distances(HnswGraph *g, const float *q, HnswCandidate *cands, int n)
{
	bool		peek = (g->ops->peek_vector != NULL);

	for (int i = 0; peek && i < Min(n, EXACT_PREFETCH_AHEAD); i++)
		prefetch_vector(g, cands[i].node);
	for (int i = 0; i < n; i++)
	{
		if (peek && i + EXACT_PREFETCH_AHEAD < n)
			prefetch_vector(g, cands[i + EXACT_PREFETCH_AHEAD].node);
		cands[i].dist = g->dist(q, g->ops->vector(g, cands[i].node), g->dims);
	}
}

/*
 * Give candidates found by a search their exact distances to q and sort
 * them nearest first.  A search on codes ranks by estimates; whatever it
 * found is reranked here before anything is decided from it.
 */
void
hnsw_rerank_exact(HnswGraph *g, const float *q, HnswCandidate *cands, int n)
{
	exact_distances(g, q, cands, n);
	hnsw_sort_candidates(cands, n);
}

/* ----------------------------------------------------------------
 * Levels and neighbour selection
 * ----------------------------------------------------------------
 */
int
hnsw_random_level(int m, int max_level)
{
	double		ml = 1.0 / log((double) m);
	double		u = pg_prng_double(&pg_global_prng_state);
	int			level;

	/* u is in [0, 1); -log(1 - u) is then finite */
	level = (int) floor(-log(1.0 - u) * ml);
	return Min(level, max_level);
}

/*
 * The neighbour-selection heuristic of the HNSW paper (algorithm 4):
 * walk the candidates nearest first and keep one only if it is nearer to
 * the base than to every neighbour kept so far, which spreads the links in
 * different directions.  With keep_pruned, the candidates it pruned then
 * fill the remaining slots, nearest first ("keepPrunedConnections").
 * "Nearer" is measured by the metric's selection distance
 * (hnsw_selection_distance(): euclidean for inner product, whose own
 * distance would let one large-norm neighbour prune every other candidate);
 * the candidates and their order come from the index's distance.
 *
 * Inserts do not keep pruned candidates: measured on Fashion-MNIST (60k,
 * m=16, efc=64), full lists made the build 3x slower (every back-link then
 * re-runs the heuristic) and searches slower at equal recall (more
 * distances per hop).  VACUUM's repair keeps them, to make up for the
 * links it lost.
 *
 * cands must be sorted nearest first (distances to the base element).
 */
int
hnsw_select_neighbors(HnswGraph *g, const float *base, HnswCandidate *cands,
					  int ncands, int limit, bool keep_pruned, HnswCandidate *out)
{
	int			nout = 0;
	int			npruned = 0;
	HnswCandidate *pruned;
	const float **outvec;
	HnswDistanceFn sel = hnsw_selection_distance(g->metric);

	if (ncands <= limit)
	{
		memcpy(out, cands, sizeof(HnswCandidate) * ncands);
		return ncands;
	}

	pruned = palloc(sizeof(HnswCandidate) * ncands);
	outvec = palloc(sizeof(float *) * limit);
	for (int i = 0; i < ncands && nout < limit; i++)
	{
		const float *cv = g->ops->vector(g, cands[i].node);
		bool		keep = true;
		float		dbase = (sel == g->dist) ? cands[i].dist : sel(cv, base, g->dims);

		for (int j = 0; j < nout; j++)
		{
			/*
			 * Closer to a kept neighbour than to the base: redundant.  So is
			 * an exact copy of a kept neighbour (ties at distance zero would
			 * otherwise let many identical vectors crowd out the rest).
			 */
			if (sel(cv, outvec[j], g->dims) < dbase ||
				memcmp(cv, outvec[j], sizeof(float) * g->dims) == 0)
			{
				keep = false;
				break;
			}
		}
		if (keep)
		{
			outvec[nout] = cv;
			out[nout++] = cands[i];
		}
		else
			pruned[npruned++] = cands[i];
	}
	if (keep_pruned)
		for (int i = 0; i < npruned && nout < limit; i++)
			out[nout++] = pruned[i];

	pfree(pruned);
	pfree(outvec);
	return nout;
}

/*
 * Find the neighbours of a new element with vector q and level "level",
 * starting from the graph's entry point.  For each layer l <= level,
 * selected[l] receives up to m neighbours and nselected[l] their count (0
 * for layers above the entry point's level).  Layer 0 lists hold up to 2m,
 * but a new element picks only m there too, as hnswlib does: its list fills
 * up through later elements' back-links.  On Fashion-MNIST (30 000 rows)
 * picking 2m gave the same recall at ef 20 and 40 (0.005 more at ef 10)
 * for 1.10x the build time and 1.22x the merge time.
 * If nearest is not NULL, it receives the layer-0 search result, nearest
 * first (room for ef_construction candidates), and *nnearest its count.
 * A search on codes walks on estimates; what it found is reranked by exact
 * distance before selection, so selected and nearest carry exact
 * distances either way.  Returns the number of layers searched.
 */
int
hnsw_find_neighbors(HnswGraph *g, const float *q, HnswNode entry, int entry_level,
					int level, HnswCandidate **selected, int *nselected,
					HnswCandidate *nearest, int *nnearest)
{
	HnswSearch *s;
	HnswCandidate *found;
	int			ef = g->ef_construction;
	int			nlayers = 0;

	for (int l = 0; l <= level; l++)
		nselected[l] = 0;
	if (nnearest)
		*nnearest = 0;
	if (entry == HNSW_INVALID_NODE)
		return 0;

	s = hnsw_search_begin(g, q, NULL, false);
	s->layer = entry_level;
	hnsw_search_add_entry(s, entry);

	/* greedy descent through the layers above the new element's level */
	for (int l = entry_level; l > level; l--)
	{
		if (l != entry_level)
			hnsw_search_set_layer(s, l, true);
		hnsw_search_run(s, 1);
	}

	found = palloc(sizeof(HnswCandidate) * (ef + 1));
	for (int l = Min(level, entry_level); l >= 0; l--)
	{
		int			n;

		if (l != entry_level)
			hnsw_search_set_layer(s, l, true);
		hnsw_search_run(s, ef);
		n = hnsw_search_result(s, found);
		if (s->cq != NULL)
			hnsw_rerank_exact(g, q, found, n);
		nselected[l] = hnsw_select_neighbors(g, q, found, n, g->m,
											 false, selected[l]);
		if (l == 0 && nearest != NULL)
		{
			memcpy(nearest, found, sizeof(HnswCandidate) * n);
			*nnearest = n;
		}
		nlayers++;
	}
	pfree(found);
	hnsw_search_end(s);
	return nlayers;
}

/*
 * Add the reverse edge target -> node on a layer.  When the target's list
 * is full, the heuristic chooses among the old list and the new node; with
 * or_force, a new node the heuristic leaves out replaces the target's
 * farthest neighbour instead (from the same distances).  Optimistic: the
 * list is read, the new one computed without any lock, and the replacement
 * only happens if nobody changed the list meanwhile; otherwise start over
 * with the list as it is now.  Returns whether the target links to node
 * afterwards.
 */
static bool
add_backlink(HnswGraph *g, HnswNode target, int layer, HnswNode node, float dist,
			 bool or_force, HnswNode *dropped, int *ndropped)
{
	int			cap = HnswLayerCapacity(g->m, layer);
	HnswNode   *old = palloc(sizeof(HnswNode) * (cap + 1));
	HnswNode   *newlist = palloc(sizeof(HnswNode) * (cap + 1));
	HnswCandidate *cands = palloc(sizeof(HnswCandidate) * (cap + 1));
	HnswCandidate *chosen = palloc(sizeof(HnswCandidate) * (cap + 1));
	bool		linked = false;
	int			attempt;

	for (attempt = 0; attempt < HNSW_LIST_RETRIES; attempt++)
	{
		int			nold = g->ops->neighbors(g, target, layer, old);
		int			nnew;
		bool		present = false;

		for (int i = 0; i < nold; i++)
			if (old[i] == node)
				present = true;
		if (present)
		{
			linked = true;
			break;
		}

		if (nold < cap)
		{
			memcpy(newlist, old, sizeof(HnswNode) * nold);
			newlist[nold] = node;
			nnew = nold + 1;
		}
		else
		{
			const float *tv = g->ops->vector(g, target);
			bool		chosen_new = false;

			for (int i = 0; i < nold; i++)
				cands[i].node = old[i];
			exact_distances(g, tv, cands, nold);
			cands[nold].node = node;
			cands[nold].dist = dist;
			hnsw_sort_candidates(cands, nold + 1);
			nnew = hnsw_select_neighbors(g, tv, cands, nold + 1, cap, false, chosen);
			for (int i = 0; i < nnew; i++)
			{
				newlist[i] = chosen[i].node;
				if (chosen[i].node == node)
					chosen_new = true;
			}
			if (!chosen_new && or_force)
			{
				/* keep the nearest cap, the new node among them */
				nnew = 0;
				for (int i = 0; i < nold + 1 && nnew < cap - 1; i++)
					if (cands[i].node != node)
						newlist[nnew++] = cands[i].node;
				newlist[nnew++] = node;
				chosen_new = true;
			}
			if (!chosen_new)
				break;			/* the list stays as it is */
		}
		if (g->ops->replace_neighbors(g, target, layer, old, nold, newlist, nnew))
		{
			linked = true;
			/* report who lost its link from target */
			for (int i = 0; i < nold; i++)
			{
				bool		kept = false;

				for (int j = 0; j < nnew && !kept; j++)
					kept = (newlist[j] == old[i]);
				if (!kept)
					dropped[(*ndropped)++] = old[i];
			}
			break;
		}
		CHECK_FOR_INTERRUPTS();
	}
	if (attempt == HNSW_LIST_RETRIES)
		elog(DEBUG1, "engram_hnsw: gave up linking back to a busy neighbour list");

	pfree(old);
	pfree(newlist);
	pfree(cands);
	pfree(chosen);
	return linked;
}

/*
 * Does z link to y on layer?  If not and z's list has room, add y to it
 * (optimistic, as add_backlink).  Returns whether z links to y afterwards.
 */
static bool
link_if_room(HnswGraph *g, HnswNode z, HnswNode y, int layer, int cap,
			 HnswNode *zlist, HnswNode *newz)
{
	for (int attempt = 0; attempt < HNSW_ROOM_RETRIES; attempt++)
	{
		int			nz = g->ops->neighbors(g, z, layer, zlist);

		for (int j = 0; j < nz; j++)
			if (zlist[j] == y)
				return true;
		if (nz >= cap)
			return false;
		memcpy(newz, zlist, sizeof(HnswNode) * nz);
		newz[nz] = y;
		if (g->ops->replace_neighbors(g, z, layer, zlist, nz, newz, nz + 1))
			return true;
	}
	return false;
}

static inline bool
list_has(const HnswNode *list, int n, HnswNode x)
{
	for (int i = 0; i < n; i++)
		if (list[i] == x)
			return true;
	return false;
}

/*
 * y was pruned from via's list on layer (via is HNSW_INVALID_NODE for a
 * new element, or for one the new element adopted): it may have lost its
 * last incoming link there, which would leave it unreachable (a row no
 * search finds) until VACUUM reconnects it.  Two things must hold after:
 *
 * - findable: one of y's first few neighbours links to it, or a search for
 *   y's own vector may never get there.  The first of them with room takes
 *   y if none does; if all are full, the nearest takes it by the heuristic,
 *   or failing that by force.
 * - reachable (only with via): via links to y, or one of y's neighbours
 *   that via links to ("anchored") links to y: y is one hop beyond via,
 *   which was reachable.  A back-link from a neighbour via does not link to
 *   proves nothing: two outliers that link only to each other and to a hub
 *   would each count the other's link as enough once the hub pruned them
 *   both, an island no search enters (bulk-building 40 000 Fashion-MNIST
 *   rows and inserting 5 000 more left two such elements in every run).
 *   So an anchored neighbour with room takes y, or else the element of via's
 *   list nearest to y (usually the one that made via prune y) takes it, by
 *   room, heuristic or force.
 *
 * Whoever a forced link pushes out gets the same treatment, with the
 * pusher as its via, up to depth levels deep.  The last level (depth 0)
 * cannot push anyone out: it looks at all of y's neighbours and then at
 * every element of via's list for a free slot.  VACUUM calls this too, for
 * live elements its list repairs leave out.
 */

/* take y into target's list by the heuristic, else by force; relink whoever that pushes out */
static void
force_link(HnswGraph *g, HnswNode target, HnswNode y, int layer, int depth)
{
	int			cap = HnswLayerCapacity(g->m, layer);
	HnswNode   *dropped = palloc(sizeof(HnswNode) * cap);
	int			ndropped = 0;
	float		d = g->dist(g->ops->vector(g, target), g->ops->vector(g, y), g->dims);

	(void) add_backlink(g, target, layer, y, d, true, dropped, &ndropped);
	for (int i = 0; i < ndropped; i++)
		if (dropped[i] != y)
			hnsw_relink_dropped(g, dropped[i], layer, depth - 1, target);
	pfree(dropped);
}

static inline bool
is_deleted(HnswGraph *g, HnswNode node)
{
	return g->ops->deleted != NULL && g->ops->deleted(g, node);
}

/*
 * The cases, in order (why: the comment above force_link()):
 *	0. y is deleted: nothing to do.
 *	1. y's first neighbours (HNSW_RELINK_TRIES of them, all at depth 0),
 *	   skipping y, via and deleted ones, and, once y is findable, those via
 *	   does not link to: the first with room takes y.  The nearest live one
 *	   and the first anchored one are remembered.
 *	2. Not findable yet and depth > 0: the nearest takes y by force.
 *	3. Reachable (no via, via still links to y, or an anchored neighbour
 *	   took y): done.
 *	4. Further anchored neighbours of y, as many tries again, by room.
 *	5. No anchored neighbour at all: the live element of via's list nearest
 *	   to y becomes the anchor and takes y if it has room.
 *	6. Depth 0: any live element of via's list with room takes y.
 *	7. Still unreachable and depth > 0: the anchor takes y by force;
 *	   force_link() relinks whoever that pushes out, one level deeper.
 */
void
hnsw_relink_dropped(HnswGraph *g, HnswNode y, int layer, int depth, HnswNode via)
{
	int			cap = HnswLayerCapacity(g->m, layer);
	HnswNode   *ylist = palloc(sizeof(HnswNode) * cap);
	HnswNode   *vialist = palloc(sizeof(HnswNode) * cap);
	HnswNode   *zlist = palloc(sizeof(HnswNode) * cap);
	HnswNode   *newz = palloc(sizeof(HnswNode) * cap);
	HnswNode	nearest = HNSW_INVALID_NODE;
	HnswNode	anchor = HNSW_INVALID_NODE;
	int			ny = 0;
	int			nvia = 0;
	int			lim;
	int			i;
	bool		findable = false;
	bool		reachable = true;

	/* never link to an element VACUUM has deleted (as in adoption) */
	if (!is_deleted(g, y))
	{
		ny = g->ops->neighbors(g, y, layer, ylist);
		if (via != HNSW_INVALID_NODE)
		{
			nvia = g->ops->neighbors(g, via, layer, vialist);
			reachable = list_has(vialist, nvia, y);
		}
	}
	else
		findable = true;		/* nothing to do */
	lim = (depth == 0) ? ny : Min(ny, HNSW_RELINK_TRIES);

	/* y's first neighbours: a back-link, or room, makes y findable */
	for (i = 0; i < lim && !(findable && reachable); i++)
	{
		HnswNode	z = ylist[i];
		bool		anchored;

		if (z == y || z == via)
			continue;
		anchored = list_has(vialist, nvia, z);
		if (findable && !anchored)
			continue;			/* it could only make y findable again */
		if (is_deleted(g, z))
			continue;
		if (nearest == HNSW_INVALID_NODE)
			nearest = z;
		if (anchored && anchor == HNSW_INVALID_NODE)
			anchor = z;
		if (link_if_room(g, z, y, layer, cap, zlist, newz))
		{
			findable = true;
			reachable |= anchored;
		}
	}
	if (!findable && depth > 0 && nearest != HNSW_INVALID_NODE)
	{
		force_link(g, nearest, y, layer, depth);
		findable = true;
		reachable |= list_has(vialist, nvia, nearest);
	}
	if (reachable)
		goto done;

	/* further anchored neighbours of y */
	for (int tries = 0; i < ny && tries < lim && !reachable; i++)
	{
		HnswNode	z = ylist[i];

		if (z == y || z == via || !list_has(vialist, nvia, z) || is_deleted(g, z))
			continue;
		tries++;
		if (anchor == HNSW_INVALID_NODE)
			anchor = z;
		reachable = link_if_room(g, z, y, layer, cap, zlist, newz);
	}

	/* none: the element of via's list nearest to y */
	if (!reachable && anchor == HNSW_INVALID_NODE)
	{
		/* y's vector, needed only here */
		const float *yv = g->ops->vector(g, y);
		float		best = 0;

		for (int j = 0; j < nvia; j++)
		{
			bool		deleted = false;
			float		d;

			if (vialist[j] == y)
				continue;
			d = g->ops->distance(g, vialist[j], yv, &deleted);
			if (!deleted && (anchor == HNSW_INVALID_NODE || d < best))
			{
				anchor = vialist[j];
				best = d;
			}
		}
		if (anchor != HNSW_INVALID_NODE)
			reachable = link_if_room(g, anchor, y, layer, cap, zlist, newz);
	}

	/* the last level: any element of via's list with a free slot */
	for (int j = 0; j < nvia && !reachable && depth == 0; j++)
		if (vialist[j] != y && !is_deleted(g, vialist[j]))
			reachable = link_if_room(g, vialist[j], y, layer, cap, zlist, newz);

	if (!reachable && depth > 0 && anchor != HNSW_INVALID_NODE)
		force_link(g, anchor, y, layer, depth);

done:
	pfree(ylist);
	pfree(vialist);
	pfree(zlist);
	pfree(newz);
}

/*
 * Second half of an insertion: the new node's own lists are written by the
 * caller; here every selected neighbour gets the reverse edge.  If on some
 * layer no neighbour kept it (the heuristic may prune it from every full
 * list), the nearest neighbour takes it anyway: an element nobody links to
 * could never be found by a search.  Elements that lost a link because a
 * neighbour's list was pruned get one from the new node instead, as far
 * as its list has room, so pruning does not orphan them either.
 */
void
hnsw_link_backwards(HnswGraph *g, HnswNode node, int level,
					HnswCandidate **selected, int *nselected)
{
	for (int l = 0; l <= level; l++)
	{
		int			cap = HnswLayerCapacity(g->m, l);
		bool		linked = false;
		HnswNode   *dropped;
		HnswNode   *droppedby;	/* whose list dropped[i] left */
		int			ndropped = 0;
		HnswNode   *old;
		HnswNode   *newlist;
		int			nnew = 0;

		if (nselected[l] == 0)
			continue;
		dropped = palloc(sizeof(HnswNode) * nselected[l] * cap);
		droppedby = palloc(sizeof(HnswNode) * nselected[l] * cap);
		old = palloc(sizeof(HnswNode) * cap);
		newlist = palloc(sizeof(HnswNode) * cap);
		/*
		 * The nearest comes last: if nobody else kept the new node, it takes
		 * it by the heuristic or else by force, from one reading of its list.
		 */
		for (int k = 1; k <= nselected[l]; k++)
		{
			int			i = k % nselected[l];
			HnswNode	target = selected[l][i].node;
			int			from = ndropped;

			linked |= add_backlink(g, target, l, node, selected[l][i].dist, i == 0 && !linked,
								   dropped, &ndropped);
			while (from < ndropped)
				droppedby[from++] = target;
		}

		/* adopt the dropped ones, while the new node's list has room */
		for (int attempt = 0; ndropped > 0 && attempt < HNSW_LIST_RETRIES; attempt++)
		{
			int			nold = g->ops->neighbors(g, node, l, old);

			nnew = nold;
			memcpy(newlist, old, sizeof(HnswNode) * nold);
			for (int i = 0; i < ndropped && nnew < cap; i++)
			{
				bool		present = (dropped[i] == node);

				for (int j = 0; j < nnew && !present; j++)
					present = (newlist[j] == dropped[i]);
				if (present)
					continue;
				/* never adopt an element VACUUM has deleted */
				if (!is_deleted(g, dropped[i]))
					newlist[nnew++] = dropped[i];
			}
			if (nnew == nold ||
				g->ops->replace_neighbors(g, node, l, old, nold, newlist, nnew))
				break;
		}

		/*
		 * Every element that lost a link here, and the new node itself, must
		 * keep a link from one of its own nearest neighbours: a link from
		 * farther away keeps it reachable, but a search for its own vector
		 * may never get there.  (Concurrent inserts make this matter: two
		 * new neighbours that did not see each other can each be pruned
		 * from lists as "covered" by the other, while neither links to the
		 * other.)
		 */
		nnew = ndropped > 0 ? g->ops->neighbors(g, node, l, newlist) : 0;
		for (int i = 0; i < ndropped; i++)
		{
			bool		seen = (dropped[i] == node);

			for (int j = 0; j < i && !seen; j++)
				seen = (dropped[j] == dropped[i]);
			/*
			 * An element the new node adopted is reachable through it (the
			 * list that dropped it took the new node): it only needs a link
			 * from one of its own nearest neighbours, as a new node does.
			 */
			if (!seen)
				hnsw_relink_dropped(g, dropped[i], l, HNSW_RELINK_DEPTH,
									list_has(newlist, nnew, dropped[i]) ?
									HNSW_INVALID_NODE : droppedby[i]);
		}
		hnsw_relink_dropped(g, node, l, HNSW_RELINK_DEPTH, HNSW_INVALID_NODE);
		pfree(old);
		pfree(newlist);
		pfree(dropped);
		pfree(droppedby);
	}
}

/*
 * A node stored with empty lists (it lost a race for the entry point):
 * find its neighbours from the current entry point and give it its own
 * lists.  The caller then links back as for any insertion.
 */
static void
link_stored_node(HnswGraph *g, HnswNode node, const float *vec, HnswNode entry,
				 int entry_level, int level, HnswCandidate **selected, int *nselected)
{
	hnsw_find_neighbors(g, vec, entry, entry_level, level, selected, nselected, NULL, NULL);
	for (int l = 0; l <= level; l++)
	{
		HnswNode   *list;

		if (nselected[l] == 0)
			continue;
		list = palloc(sizeof(HnswNode) * nselected[l]);
		for (int i = 0; i < nselected[l]; i++)
			list[i] = selected[l][i].node;
		g->ops->replace_neighbors(g, node, l, NULL, 0, list, nselected[l]);
	}
}

/*
 * Insert one element (INSERT of the HNSW paper, algorithm 1), on whatever
 * storage g is.  An identical vector already in the graph takes the heap
 * TID instead of a new element, which keeps the graph connected when many
 * rows share one vector.
 */
void
hnsw_insert_element(HnswGraph *g, const float *vec, ItemPointer heaptid)
{
	int			level = hnsw_random_level(g->m, g->max_level);
	HnswCandidate *selected[HNSW_MAX_LEVEL + 1];
	int			nselected[HNSW_MAX_LEVEL + 1];
	HnswCandidate *nearest = palloc(sizeof(HnswCandidate) * (g->ef_construction + 1));
	int			nnearest;
	HnswNode	entry;
	int			entry_level;
	HnswNode	node;

	for (int l = 0; l <= level; l++)
	{
		selected[l] = palloc(sizeof(HnswCandidate) * HnswLayerCapacity(g->m, l));
		nselected[l] = 0;
	}

	for (int attempt = 0;; attempt++)
	{
		HnswNode	none = HNSW_INVALID_NODE;

		g->ops->get_entry(g, &entry, &entry_level);
		if (entry == HNSW_INVALID_NODE)
		{
			/* first element: the entry point, unless someone else won */
			node = g->ops->create_node(g, vec, level, heaptid, selected, nselected);
			if (g->ops->set_entry(g, node, level, &none, &entry, &entry_level))
				return;

			/* lost the race: link into the graph that now exists */
			link_stored_node(g, node, vec, entry, entry_level, level, selected, nselected);
			break;
		}

		hnsw_find_neighbors(g, vec, entry, entry_level, level, selected,
							nselected, nearest, &nnearest);

		/* an identical vector with room takes the heap TID */
		for (int i = 0; i < nnearest; i++)
		{
			if (nearest[i].dist != nearest[0].dist)
				break;
			if (memcmp(g->ops->vector(g, nearest[i].node), vec, sizeof(float) * g->dims) == 0 &&
				g->ops->add_heaptid(g, nearest[i].node, vec, heaptid))
				return;
		}
		if (nselected[0] > 0 || attempt >= HNSW_EMPTY_GRAPH_RETRIES)
		{
			node = g->ops->create_node(g, vec, level, heaptid, selected, nselected);
			break;
		}

		/*
		 * Nothing live was found: every element reachable from the entry
		 * point is deleted (VACUUM may be emptying this graph right now).
		 * Take over as the entry point, but only from the entry point this
		 * search started at; if that changed meanwhile, start over.
		 */
		node = g->ops->create_node(g, vec, level, heaptid, selected, nselected);
		{
			HnswNode	from = entry;

			if (g->ops->set_entry(g, node, level, &from, &entry, &entry_level))
				return;
		}
		/* the node exists but is unlinked: link it from the new state */
		link_stored_node(g, node, vec, entry, entry_level, level, selected, nselected);
		if (nselected[0] == 0 && entry != HNSW_INVALID_NODE)
		{
			HnswNode	from = entry;

			/* still nothing live: replace the (deleted) entry point */
			g->ops->set_entry(g, node, level, &from, &entry, &entry_level);
			return;
		}
		break;
	}

	hnsw_link_backwards(g, node, level, selected, nselected);
	if (level > entry_level)
		g->ops->set_entry(g, node, level, NULL, &entry, &entry_level);
}

/*
 * Link an element that is already stored but not yet in the graph (a
 * pending element being merged): the same search and linking as an
 * insertion, minus storing the node.  Safe to repeat for a node that was
 * partly linked before a crash: lists it already has are kept.
 */
void
hnsw_link_element(HnswGraph *g, HnswNode node, const float *vec, int level)
{
	HnswCandidate *selected[HNSW_MAX_LEVEL + 1];
	int			nselected[HNSW_MAX_LEVEL + 1];
	HnswNode	entry;
	int			entry_level;
	HnswNode	none = HNSW_INVALID_NODE;

	for (int l = 0; l <= level; l++)
	{
		selected[l] = palloc(sizeof(HnswCandidate) * HnswLayerCapacity(g->m, l));
		nselected[l] = 0;
	}

	g->ops->get_entry(g, &entry, &entry_level);
	if (entry == node)
		return;					/* linked already (a merge repeated after a crash) */
	if (entry == HNSW_INVALID_NODE &&
		g->ops->set_entry(g, node, level, &none, &entry, &entry_level))
		return;					/* the first element of its graph */

	link_stored_node(g, node, vec, entry, entry_level, level, selected, nselected);
	if (nselected[0] == 0)
	{
		HnswNode	from = entry;

		/* nothing live reachable: take over from the (deleted) entry point */
		if (g->ops->set_entry(g, node, level, &from, &entry, &entry_level))
			return;
		link_stored_node(g, node, vec, entry, entry_level, level, selected, nselected);
	}
	/* a node partly linked before a crash can find itself: no self-links */
	for (int l = 0; l <= level; l++)
	{
		int			keep = 0;

		for (int i = 0; i < nselected[l]; i++)
			if (selected[l][i].node != node)
				selected[l][keep++] = selected[l][i];
		nselected[l] = keep;
	}
	hnsw_link_backwards(g, node, level, selected, nselected);
	if (level > entry_level)
		g->ops->set_entry(g, node, level, NULL, &entry, &entry_level);
}

/* position of x in nodes[] (ascending), -1 if absent */
static inline int64
node_index(HnswGraph *g, const HnswNode *nodes, int64 n, HnswNode x)
{
	const HnswNode *p;

	if (g->dense && x < (HnswNode) n && nodes[x] == x)
		return (int64) x;		/* all nodes of a dense graph: no search */
	p = hnsw_node_find(nodes, n, x);
	return p ? (int64) (p - nodes) : -1;
}

/*
 * Make every node of nodes[] (all live nodes, ascending) reachable from the
 * entry point on layer 0.  HNSW pruning can leave a node that no list links
 * to any more; such a node would never be found.  For each one not reached
 * by a breadth-first walk from the entry point, search for its vector and
 * link it from the nearest reachable node found, in place of that node's
 * farthest neighbour among those that other nodes also link to (so the
 * repair never orphans anyone else).  Returns the number of nodes linked.
 */
static int64
reconnect_once(HnswGraph *g, const HnswNode *nodes, int64 n, HnswNode entry, int entry_level)
{
	int			cap = HnswLayerCapacity(g->m, 0);
	int64	   *lists;			/* n * cap indexes into nodes[], -1 = none */
	int		   *counts;
	int32	   *indeg;
	bool	   *reached;
	int64	   *queue;
	int64		head = 0,
				tail = 0;
	int64		fixed = 0;
	HnswNode   *buf = palloc(sizeof(HnswNode) * cap);
	HnswNode   *newlist = palloc(sizeof(HnswNode) * cap);
	HnswCandidate *selected[HNSW_MAX_LEVEL + 1];
	int			nselected[HNSW_MAX_LEVEL + 1];
	bool	   *tried;
	int64		ientry;

#define NODE_INDEX(x) node_index(g, nodes, n, (x))

	if (n == 0 || entry == HNSW_INVALID_NODE)
		return 0;
	ientry = NODE_INDEX(entry);
	if (ientry < 0)
		return 0;

	lists = palloc_extended(sizeof(int64) * n * cap, MCXT_ALLOC_HUGE);
	counts = palloc_extended(sizeof(int) * n, MCXT_ALLOC_HUGE);
	indeg = palloc_extended(sizeof(int32) * n, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	reached = palloc_extended(sizeof(bool) * n, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	tried = palloc_extended(sizeof(bool) * n, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	queue = palloc_extended(sizeof(int64) * n, MCXT_ALLOC_HUGE);
	selected[0] = palloc(sizeof(HnswCandidate) * cap);

	for (int64 i = 0; i < n; i++)
	{
		int			k = g->ops->neighbors(g, nodes[i], 0, buf);

		counts[i] = 0;
		for (int j = 0; j < k; j++)
		{
			int64		t = NODE_INDEX(buf[j]);

			if (t < 0)
				continue;		/* not live: ignore */
			lists[i * cap + counts[i]++] = t;
			indeg[t]++;
		}
		if ((i & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
	}

	reached[ientry] = true;
	queue[tail++] = ientry;
	for (int64 u = 0; u < n || head < tail;)
	{
		/* walk from everything newly reached */
		while (head < tail)
		{
			int64		x = queue[head++];

			for (int j = 0; j < counts[x]; j++)
			{
				int64		t = lists[x * cap + j];

				if (!reached[t])
				{
					reached[t] = true;
					queue[tail++] = t;
				}
			}
		}
		/* the next node still unreached and not yet tried */
		while (u < n && (reached[u] || tried[u]))
			u++;
		if (u >= n)
			break;

		CHECK_FOR_INTERRUPTS();
		{
			const float *uv = g->ops->vector(g, nodes[u]);
			bool		done = false;

			hnsw_find_neighbors(g, uv, entry, entry_level, 0, selected, nselected, NULL, NULL);
			for (int c = 0; c < nselected[0] && !done; c++)
			{
				int64		t = NODE_INDEX(selected[0][c].node);
				const float *tv;
				int			victim = -1;
				float		vdist = 0;
				int			nold;
				bool		present = false;

				if (t < 0 || t == u || !reached[t])
					continue;
				nold = g->ops->neighbors(g, nodes[t], 0, buf);
				for (int j = 0; j < nold && !present; j++)
					present = (buf[j] == nodes[u]);
				if (present)
					continue;	/* cannot be: t is reached; be safe */
				if (nold < cap)
				{
					memcpy(newlist, buf, sizeof(HnswNode) * nold);
					newlist[nold] = nodes[u];
					if (!g->ops->replace_neighbors(g, nodes[t], 0, buf, nold, newlist, nold + 1))
						continue;
					lists[t * cap + counts[t]++] = u;
					done = true;
					break;
				}
				tv = g->ops->vector(g, nodes[t]);
				for (int j = 0; j < nold; j++)
				{
					int64		x = NODE_INDEX(buf[j]);
					float		d;

					if (x >= 0 && indeg[x] <= 1)
						continue;	/* its only link: keep it */
					d = g->dist(tv, g->ops->vector(g, buf[j]), g->dims);
					if (victim < 0 || d > vdist)
					{
						vdist = d;
						victim = j;
					}
				}
				if (victim < 0)
					continue;
				memcpy(newlist, buf, sizeof(HnswNode) * nold);
				newlist[victim] = nodes[u];
				if (!g->ops->replace_neighbors(g, nodes[t], 0, buf, nold, newlist, nold))
					continue;
				{
					int64		x = NODE_INDEX(buf[victim]);

					if (x >= 0)
						indeg[x]--;
					for (int j = 0; j < counts[t]; j++)
						if (lists[t * cap + j] == x)
							lists[t * cap + j] = u;
				}
				done = true;
			}
			/* linked or not, do not try this node again in this pass */
			tried[u] = true;
			if (done)
			{
				indeg[u]++;
				reached[u] = true;
				queue[tail++] = u;
				fixed++;
			}
		}
	}
#undef NODE_INDEX

	pfree(lists);
	pfree(counts);
	pfree(indeg);
	pfree(reached);
	pfree(tried);
	pfree(queue);
	pfree(buf);
	pfree(newlist);
	pfree(selected[0]);
	return fixed;
}

/*
 * Repeat the pass while it still finds work: an eviction in one pass can
 * orphan a node whose other links came only from nodes that were
 * themselves unreachable at the time.
 */
int64
hnsw_reconnect(HnswGraph *g, const HnswNode *nodes, int64 n, HnswNode entry, int entry_level)
{
	int64		total = 0;

	for (int round = 0; round < HNSW_RECONNECT_ROUNDS; round++)
	{
		int64		fixed = reconnect_once(g, nodes, n, entry, entry_level);

		total += fixed;
		if (fixed == 0)
			break;
	}
	return total;
}

int
hnsw_node_cmp(const void *a, const void *b)
{
	HnswNode	x = *(const HnswNode *) a;
	HnswNode	y = *(const HnswNode *) b;

	return x < y ? -1 : (x > y ? 1 : 0);
}

/*
 * x in the sorted nodes[0 .. n-1], or NULL.  An empty list is often still
 * a NULL pointer, which bsearch() must not be given even for 0 elements.
 */
const HnswNode *
hnsw_node_find(const HnswNode *nodes, int64 n, HnswNode x)
{
	if (n <= 0)
		return NULL;
	return bsearch(&x, nodes, n, sizeof(HnswNode), hnsw_node_cmp);
}
