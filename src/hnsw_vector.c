/*-------------------------------------------------------------------------
 *
 * hnsw_vector.c
 *	  Format 3: the float4 vectors of elements, kept out of the graph's
 *	  pages.  An element tuple holds the vector's compact code (what graph
 *	  walks read) and the TID of its first chunk on a vector page; the
 *	  exact vector is read only where it decides something (neighbour
 *	  selection, the final order of a scan's results, the check).
 *
 * Chunks (HnswVectorTupleData): a vector that fits a page is one chunk,
 * never split; a longer one fills the rest of the stripe's vector page (if
 * HNSW_MIN_CHUNK components fit) and then whole pages, chained by "next".
 *
 * Writing a new vector holds no other lock: its chunks are written last to
 * first, each in its own WAL record on its own page, so every "next" names
 * a chunk already written; the first chunk goes on the stripe's vector page
 * (or a new one).  Nothing points at the chunks until the element that
 * follows them is stored, so a crash in between leaves unreferenced chunks
 * (space only: no element, no result).  An element that takes over a free
 * slot overwrites the slot's chunks in place instead (same length), while
 * its caller holds the slot's page: graph pages before vector pages, and a
 * vector page is locked by nobody who holds another vector page.
 *
 * Readers lock one chunk's page at a time, share.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/generic_xlog.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/rel.h"

#include "engram_hnsw.h"

/*
 * Components of the next chunk of a vector with "remaining" components
 * still to place, on a page with avail bytes free (one line pointer
 * included, as PageGetFreeSpace() counts): 0 means "start a new page".
 */
int
hnsw_chunk_fit(Size avail, int remaining)
{
	int			fit;

	if (avail <= MAXALIGN(offsetof(HnswVectorTupleData, data)))
		return 0;
	fit = (int) ((avail - offsetof(HnswVectorTupleData, data)) / sizeof(float));
	while (fit > 0 && HNSW_VECTOR_TUPLE_SIZE(fit) > avail)
		fit--;
	if (fit >= remaining)
		return remaining;
	if (remaining <= HNSW_CHUNK_MAX_COMP)
		return 0;				/* it fits a page of its own: keep it whole */
	return fit >= HNSW_MIN_CHUNK ? fit : 0;
}

/* a vector chunk, its header checked against the index's dimension */
HnswVectorTuple
hnsw_page_chunk(Relation index, Page page, BlockNumber blkno, OffsetNumber off, int dims)
{
	Size		len;
	HnswVectorTuple vt;

	if (HnswPageGetOpaque(page)->flags != HNSW_PAGE_VECTOR)
		hnsw_corrupt(index, blkno, psprintf("item %u is not on a vector page", off));
	vt = (HnswVectorTuple) hnsw_page_item(index, page, blkno, off, &len);
	if (vt->type != HNSW_TUPLE_VECTOR || vt->ncomp == 0 ||
		(int64) vt->start + vt->ncomp > dims ||
		len != HNSW_VECTOR_TUPLE_SIZE(vt->ncomp))
		hnsw_corrupt(index, blkno, psprintf("vector chunk %u has an invalid header", off));
	return vt;
}

/* a chunk read from its page, checked against the vector it belongs to */
static HnswVectorTuple
page_chunk(Relation index, Page page, BlockNumber blkno, OffsetNumber off,
		   int done, int dims)
{
	HnswVectorTuple vt = hnsw_page_chunk(index, page, blkno, off, dims);

	if (vt->start != (uint32) done ||
		(done + vt->ncomp < dims) != ItemPointerIsValid(&vt->next))
		hnsw_corrupt(index, blkno, psprintf("vector chunk %u does not fit its vector", off));
	return vt;
}

/*
 * Visit the chunks of the vector starting at first, in order, each under a
 * lock of the given mode on its page (with held, the caller's locked graph
 * page, if valid).  visit gets the locked buffer, the chunk and arg.  With
 * pg, pages are read through its recent-buffer hints (hnsw_read_buffer()).
 */
static void
walk_chunks(Relation index, HnswPageGraph *pg, ItemPointer first, int dims, BlockNumber held,
			int mode, void (*visit) (Relation, Buffer, HnswVectorTuple, void *), void *arg)
{
	ItemPointerData tid = *first;
	int			done = 0;

	while (done < dims)
	{
		/* a link read from a page: checked before it is followed */
		BlockNumber blkno = ItemPointerGetBlockNumberNoCheck(&tid);
		Buffer		buf;
		Page		page;
		HnswVectorTuple vt;

		/* the caller's page (locked) is a graph page, never a vector page */
		if (!ItemPointerIsValid(&tid) || blkno == held || blkno == HNSW_METAPAGE_BLKNO ||
			!hnsw_block_exists(index, blkno))
			hnsw_corrupt(index, held != InvalidBlockNumber ? held : blkno,
						 "a vector chunk link leads to no vector page");
		buf = pg != NULL ? hnsw_read_buffer(pg, blkno) : ReadBuffer(index, blkno);
		LockBuffer(buf, mode);
		page = BufferGetPage(buf);
		hnsw_check_page(index, page, blkno);
		vt = page_chunk(index, page, blkno, ItemPointerGetOffsetNumber(&tid), done, dims);
		visit(index, buf, vt, arg);
		done += vt->ncomp;
		tid = vt->next;
		UnlockReleaseBuffer(buf);
	}
}

static void
copy_chunk(Relation index, Buffer buf, HnswVectorTuple vt, void *arg)
{
	memcpy((float *) arg + vt->start, vt->data, sizeof(float) * vt->ncomp);
}

/*
 * The whole vector of dims components starting at chunk first, into out;
 * held is the block of a graph page the caller holds locked, or invalid.
 */
void
hnsw_read_vector(Relation index, ItemPointer first, int dims, BlockNumber held, float *out)
{
	walk_chunks(index, NULL, first, dims, held, BUFFER_LOCK_SHARE, copy_chunk, out);
}

/* the same for a page graph's reads, through its recent-buffer hints */
void
hnsw_page_read_vector(HnswPageGraph *pg, ItemPointer first, float *out)
{
	walk_chunks(pg->index, pg, first, pg->graph.dims, InvalidBlockNumber, BUFFER_LOCK_SHARE,
				copy_chunk, out);
}

static void
overwrite_chunk(Relation index, Buffer buf, HnswVectorTuple vt, void *arg)
{
	hnsw_write_fragment(index, buf, (char *) vt->data - (char *) BufferGetPage(buf),
						(float *) arg + vt->start, sizeof(float) * vt->ncomp);
}

/*
 * Overwrite the vector at first with vec (same length) in place: a new
 * element takes over a free slot and its chunks.  Called holding the
 * slot's graph page.
 */
void
hnsw_overwrite_vector(Relation index, ItemPointer first, int dims, BlockNumber held,
					  const float *vec)
{
	walk_chunks(index, NULL, first, dims, held, BUFFER_LOCK_EXCLUSIVE, overwrite_chunk,
				(void *) vec);
}

/* a chunk tuple of components [start, start + n) of vec, next as given */
static HnswVectorTuple
make_chunk(const float *vec, int start, int n, ItemPointer next, Size *size)
{
	HnswVectorTuple vt;

	*size = HNSW_VECTOR_TUPLE_SIZE(n);
	vt = palloc0(*size);
	vt->type = HNSW_TUPLE_VECTOR;
	vt->ncomp = n;
	vt->start = start;
	vt->next = *next;
	memcpy(vt->data, vec + start, sizeof(float) * n);
	return vt;
}

/* put chunk [start, start + n) with next on a page of its own; its TID */
static void
chunk_on_new_page(Relation index, const float *vec, int start, int n,
				  ItemPointer next, ItemPointer tid)
{
	GenericXLogState *state = GenericXLogStart(index);
	Buffer		buf;
	Page		page = hnsw_new_page(index, state, HNSW_PAGE_VECTOR, &buf);
	Size		size;
	HnswVectorTuple vt = make_chunk(vec, start, n, next, &size);

	ItemPointerSet(tid, BufferGetBlockNumber(buf),
				   hnsw_add_item(index, page, BufferGetBlockNumber(buf), vt, size));
	GenericXLogFinish(state);
	UnlockReleaseBuffer(buf);
	pfree(vt);
}

/*
 * The first chunk, of n components, on the stripe's vector page if it
 * still has room, else on a new page (which becomes the stripe's vector
 * page).  Its TID goes to *first.
 */
static void
first_chunk(Relation index, HnswMetaInfo *meta, int stripe, const float *vec, int n,
			ItemPointer next, ItemPointer first)
{
	BlockNumber blkno = meta->vector_insert[stripe];
	Size		size;
	HnswVectorTuple vt = make_chunk(vec, 0, n, next, &size);

	if (blkno != InvalidBlockNumber && hnsw_block_exists(index, blkno))
	{
		Buffer		buf = ReadBuffer(index, blkno);
		Page		page;

		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		page = BufferGetPage(buf);
		if (!PageIsNew(page))
			hnsw_check_page(index, page, blkno);
		if (!PageIsNew(page) && HnswPageGetOpaque(page)->flags == HNSW_PAGE_VECTOR &&
			PageGetFreeSpace(page) >= size)
		{
			GenericXLogState *state = GenericXLogStart(index);

			page = GenericXLogRegisterBuffer(state, buf, 0);
			ItemPointerSet(first, blkno, hnsw_add_item(index, page, blkno, vt, size));
			GenericXLogFinish(state);
			UnlockReleaseBuffer(buf);
			pfree(vt);
			return;
		}
		UnlockReleaseBuffer(buf);
	}
	pfree(vt);
	chunk_on_new_page(index, vec, 0, n, next, first);
	/* the meta page alone, after everything else */
	hnsw_set_vector_page(index, stripe, ItemPointerGetBlockNumber(first));
	meta->vector_insert[stripe] = ItemPointerGetBlockNumber(first);
}

/* free bytes of the stripe's vector page, as last seen; 0 if it has none */
static Size
vector_page_room(Relation index, HnswMetaInfo *meta, int stripe)
{
	BlockNumber blkno = meta->vector_insert[stripe];
	Buffer		buf;
	Size		room = 0;

	if (blkno == InvalidBlockNumber || !hnsw_block_exists(index, blkno))
		return 0;
	buf = ReadBuffer(index, blkno);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	if (!PageIsNew(BufferGetPage(buf)))
	{
		hnsw_check_page(index, BufferGetPage(buf), blkno);
		if (HnswPageGetOpaque(BufferGetPage(buf))->flags == HNSW_PAGE_VECTOR)
			room = PageGetFreeSpace(BufferGetPage(buf));
	}
	UnlockReleaseBuffer(buf);
	return room;
}

/*
 * Store a new vector (meta->dims components) and return its first chunk's
 * TID in *first.  Holds no lock on entry or exit.
 */
void
hnsw_write_vector(Relation index, HnswMetaInfo *meta, int stripe, const float *vec,
				  ItemPointer first)
{
	int			dims = meta->dims;
	int			n0 = hnsw_chunk_fit(vector_page_room(index, meta, stripe), dims);
	ItemPointerData next;
	int			end = dims;

	if (n0 == 0)
		n0 = Min(dims, HNSW_CHUNK_MAX_COMP);
	ItemPointerSetInvalid(&next);

	/* the later chunks, whole pages each, last first */
	while (end > n0)
	{
		int			start = n0 + ((end - n0 - 1) / HNSW_CHUNK_MAX_COMP) * HNSW_CHUNK_MAX_COMP;

		chunk_on_new_page(index, vec, start, end - start, &next, &next);
		end = start;
		CHECK_FOR_INTERRUPTS();
	}
	first_chunk(index, meta, stripe, vec, n0, &next, first);
}
