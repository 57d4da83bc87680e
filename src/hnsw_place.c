/*-------------------------------------------------------------------------
 *
 * hnsw_place.c
 *	  Element placement and the pending chains: storing a new element and
 *	  its neighbour tuple on a stripe's insert page (or new pages), appending
 *	  pending entries to a stripe's chain, and the meta page bookkeeping of
 *	  insert pages and chains.
 *
 * Locking: hnsw_place_element() may hold the current insert page and one or
 * two pages it has just added to the relation (not yet reachable by anyone
 * else), then the chain's tail (and a new tail page); every other function
 * here holds at most one buffer content lock at a time.  The meta page is
 * only ever locked alone.  See src/README.md.
 *
 * Built on hnsw_pages.c only.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/generic_xlog.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/freespace.h"
#include "utils/rel.h"

#include "engram_hnsw.h"

/* a stripe's vector page is now blkno (format 3) */
void
hnsw_set_vector_page(Relation index, int stripe, BlockNumber blkno)
{
	MetaChange	mc;
	HnswMetaPage meta = hnsw_meta_begin(index, &mc);

	meta->vector_insert[stripe] = blkno;
	hnsw_meta_end(&mc, true);
}

/* advance a stripe's insert page (never backwards) */
static void
set_insert_page(Relation index, int stripe, BlockNumber blkno)
{
	MetaChange	mc;
	HnswMetaPage meta = hnsw_meta_begin(index, &mc);

	meta->inserted++;
	if (meta->version == 1)
	{
		if (meta->insert_page == InvalidBlockNumber || meta->insert_page < blkno)
			meta->insert_page = blkno;
	}
	else
		meta->stripe_insert[stripe] = blkno;	/* may be a recycled page */
	hnsw_meta_end(&mc, true);
}

OffsetNumber
hnsw_add_item(Relation index, Page page, BlockNumber blkno, void *item, Size size)
{
	OffsetNumber off = PageAddItem(page, (Item) item, size, InvalidOffsetNumber,
								   false, false);

	if (off == InvalidOffsetNumber)
		elog(ERROR, "failed to add tuple of %zu bytes to engram_hnsw index \"%s\" block %u",
			 size, RelationGetRelationName(index), blkno);
	return off;
}

/*
 * A page for new tuples (hnsw_new_buffer()), initialised with flags and
 * registered as a full image in the caller's WAL record.
 */
Page
hnsw_new_page(Relation index, GenericXLogState *state, uint16 flags, Buffer *buf)
{
	Page		page;

	*buf = hnsw_new_buffer(index, MAIN_FORKNUM);
	page = GenericXLogRegisterBuffer(state, *buf, GENERIC_XLOG_FULL_IMAGE);
	hnsw_init_page(page, flags, RelationGetRelid(index));
	return page;
}

/*
 * Lock the last page of a stripe's pending chain exclusively, starting from
 * the meta page's tail hint (from_head: from the head instead).  The hint
 * may lag (follow "next"), or point at a page that has left the chain and
 * been reused since.  Pages that left the chain but are not reused yet
 * still lead on through "next".
 *
 * held[] are the buffers the caller has locked already (the new element's
 * pages).  A lagging hint can lead to one of them: a page that left the
 * chain, was recycled and is now being reused by this very insert (the
 * buffer still shows the detached pending page until the WAL record is
 * finished).  Locking it again would wait for ourselves forever, so it is
 * read under the lock we hold.
 *
 * Returns InvalidBuffer when the walk has to start over from the head of a
 * fresh copy of the meta page: the caller releases its locks first, since
 * the meta page is only ever locked alone (src/README.md, rule 4).
 */
static Buffer
lock_pending_tail(Relation index, HnswMetaInfo *meta, int stripe, bool from_head,
				  const Buffer *held, int nheld)
{
	BlockNumber blkno = meta->pending_tail[stripe];
	int			hops = 0;

	if (blkno == InvalidBlockNumber || from_head)
		blkno = meta->pending_head[stripe];
	for (;;)
	{
		Buffer		buf = InvalidBuffer;
		Page		page;
		HnswPageOpaque opaque;
		bool		mine = false;

		if (blkno == InvalidBlockNumber || blkno == HNSW_METAPAGE_BLKNO ||
			!hnsw_block_exists(index, blkno))
			hnsw_corrupt(index, HNSW_METAPAGE_BLKNO,
						 psprintf("pending chain %d leads to block %u", stripe, blkno));
		for (int i = 0; i < nheld && !mine; i++)
		{
			if (BufferIsValid(held[i]) && BufferGetBlockNumber(held[i]) == blkno)
			{
				buf = held[i];
				mine = true;
			}
		}
		if (!mine)
		{
			buf = ReadBuffer(index, blkno);
			LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		}
		page = BufferGetPage(buf);
		/* checked before its special space is read (unless it is new) */
		opaque = NULL;
		if (!PageIsNew(page))
		{
			hnsw_check_page(index, page, blkno);
			opaque = HnswPageGetOpaque(page);
		}
		if (opaque == NULL || !(opaque->flags & HNSW_PAGE_PENDING) ||
			opaque->stripe != stripe)
		{
			/* not (any more) a page of this chain */
			if (!mine)
				UnlockReleaseBuffer(buf);
			return InvalidBuffer;
		}
		if (opaque->next == InvalidBlockNumber && !(opaque->flags & HNSW_PAGE_DETACHED))
		{
			/* the tail; one of our own pages only in a corrupt chain */
			if (mine)
				hnsw_corrupt(index, blkno,
							 psprintf("pending chain %d ends at a page in use for data", stripe));
			return buf;
		}
		blkno = opaque->next;
		if (!mine)
			UnlockReleaseBuffer(buf);
		if (++hops > 10000000)
			hnsw_corrupt(index, blkno, "pending chain has a cycle");
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Reusing free element slots (src/README.md, "Reusing the space of deleted
 * elements").  VACUUM records the data pages holding free slots in the
 * free space map (HNSW_FSM_SLOTS); a backend keeps, per stripe, the page
 * it takes slots from, so concurrent writers mostly use different pages
 * (the map hands pages out round robin).  A level 0 element that found no
 * slot makes the next HNSW_REUSE_SKIP ones skip the map, so an index
 * without free slots pays one look-up in that many (one that finds the map
 * empty costs a read of its root page).  All of it is reset when the meta
 * page's vacuum_gen changes (a VACUUM freed slots) or another index is
 * written.
 */
#define HNSW_REUSE_TRIES	8
#define HNSW_REUSE_SKIP		16
#define HNSW_REUSE_OTHERS	64	/* wholly free pages passed over per look-up */

typedef struct HnswReuseState
{
	bool		valid;
	RelFileNode rnode;
	uint16		vacuum_gen;
	BlockNumber page[HNSW_STRIPES];
	uint32		skip;			/* level 0 inserts that skip the map */
} HnswReuseState;

static HnswReuseState reuse_state;

/*
 * The best free slot on an exclusively locked data page for an element of
 * etup's level and space: the one whose neighbour tuple (on the same page)
 * has the least room at or above that level.  Returns that room (the
 * neighbour tuple's level), or -1 if there is none; the element's offset
 * goes to *eoff, its neighbour tuple's to *noff.
 */
static int
find_free_slot(Relation index, Page page, BlockNumber blkno, HnswElementTuple etup,
			   Size esize, OffsetNumber *eoff, OffsetNumber *noff)
{
	int			best = HNSW_MAX_LEVEL + 1;

	if (HnswPageGetOpaque(page)->flags != HNSW_PAGE_DATA || HnswPageGetOpaque(page)->nfree == 0)
		return -1;
	for (OffsetNumber off = FirstOffsetNumber; off <= PageGetMaxOffsetNumber(page); off++)
	{
		HnswElementTuple slot;
		HnswNeighborTuple ntup;
		OffsetNumber nofs;

		if (hnsw_page_item_type(index, page, blkno, off) != HNSW_TUPLE_ELEMENT ||
			ItemIdGetLength(PageGetItemId(page, off)) != esize)
			continue;
		slot = (HnswElementTuple) PageGetItem(page, PageGetItemId(page, off));
		if (!(slot->flags & HNSW_ELEMENT_FREE) || slot->space_no != etup->space_no ||
			ItemPointerGetBlockNumber(&slot->neighbortid) != blkno)
			continue;
		nofs = ItemPointerGetOffsetNumber(&slot->neighbortid);
		if (hnsw_page_item_type(index, page, blkno, nofs) != HNSW_TUPLE_NEIGHBORS)
			hnsw_corrupt(index, blkno, psprintf("free element slot %u has no neighbour list", off));
		ntup = (HnswNeighborTuple) PageGetItem(page, PageGetItemId(page, nofs));
		if (ntup->level < etup->level || ntup->level >= best)
			continue;
		best = ntup->level;
		*eoff = off;
		*noff = nofs;
		if (best == etup->level)
			break;
	}
	return best <= HNSW_MAX_LEVEL ? best : -1;
}

/*
 * A data page with a free slot that fits etup, exclusively locked, or
 * InvalidBuffer: the backend's page for the stripe, else one from the free
 * space map.  Called holding no buffer lock; the map is only written with
 * no lock held either.
 */
static Buffer
lock_slot_page(Relation index, HnswMetaInfo *meta, int stripe, HnswElementTuple etup,
			   Size esize, OffsetNumber *eoff, OffsetNumber *noff)
{
	HnswReuseState *rs = &reuse_state;
	BlockNumber blkno;
	BlockNumber spent = InvalidBlockNumber;
	BlockNumber first = InvalidBlockNumber;
	BlockNumber roomier = InvalidBlockNumber;
	int			others = 0;
	bool		skipped = false;

	if (!rs->valid || !RelFileNodeEquals(rs->rnode, index->rd_node) ||
		rs->vacuum_gen != meta->vacuum_gen)
	{
		memset(rs, 0, sizeof(HnswReuseState));
		rs->valid = true;
		rs->rnode = index->rd_node;
		rs->vacuum_gen = meta->vacuum_gen;
		for (int i = 0; i < HNSW_STRIPES; i++)
			rs->page[i] = InvalidBlockNumber;
	}
	blkno = rs->page[stripe];
	/* higher levels are rare and need a slot with room: look harder */
	for (int tries = 0; tries <= HNSW_REUSE_TRIES * (etup->level > 0 ? 4 : 1); tries++)
	{
		Buffer		buf;
		Page		page;

		if (spent != InvalidBlockNumber)
			RecordPageWithFreeSpace(index, spent, 0);	/* no free slot left */
		spent = InvalidBlockNumber;
		if (tries > 0)
		{
			if (rs->skip > 0)
			{
				rs->skip--;
				skipped = true;
				break;
			}
			blkno = GetPageWithFreeSpace(index, HNSW_FSM_SLOTS);
			if (blkno == InvalidBlockNumber || blkno == first)
				break;			/* none at all, or round the map once */
			if (first == InvalidBlockNumber)
				first = blkno;
		}
		if (blkno == InvalidBlockNumber)
			continue;
		if (blkno == HNSW_METAPAGE_BLKNO || !hnsw_block_exists(index, blkno))
		{
			spent = blkno == HNSW_METAPAGE_BLKNO ? InvalidBlockNumber : blkno;
			continue;
		}
		buf = ReadBuffer(index, blkno);
		if (tries == 0)
			LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		else if (!ConditionalLockBuffer(buf))
		{
			ReleaseBuffer(buf);
			continue;
		}
		page = BufferGetPage(buf);
		if (!PageIsNew(page))
		{
			int			room;

			hnsw_check_page(index, page, blkno);
			room = find_free_slot(index, page, blkno, etup, esize, eoff, noff);
			if (room == etup->level)
			{
				/* higher levels are rarer: they do not move level 0 on */
				if (etup->level == 0 || rs->page[stripe] == InvalidBlockNumber)
					rs->page[stripe] = blkno;
				return buf;
			}
			/* a slot with more room is kept for an element that needs it */
			if (room > etup->level && roomier == InvalidBlockNumber)
				roomier = blkno;
			if (HnswPageGetOpaque(page)->flags == HNSW_PAGE_DATA &&
				HnswPageGetOpaque(page)->nfree == 0)
				spent = blkno;
		}
		/*
		 * Wholly free pages (recycled pending pages, spare new ones) are in
		 * the map too, often in runs: they do not count as tries.
		 */
		if ((PageIsNew(page) || HnswPageGetOpaque(page)->flags != HNSW_PAGE_DATA) &&
			tries > 0 && ++others < HNSW_REUSE_OTHERS)
			tries--;
		UnlockReleaseBuffer(buf);
	}
	if (spent != InvalidBlockNumber)
		RecordPageWithFreeSpace(index, spent, 0);
	if (roomier != InvalidBlockNumber)
	{
		/* no exact fit anywhere we looked: take the roomier slot after all */
		Buffer		buf = ReadBuffer(index, roomier);

		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		hnsw_check_page(index, BufferGetPage(buf), roomier);
		if (find_free_slot(index, BufferGetPage(buf), roomier, etup, esize, eoff, noff) >= 0)
		{
			if (etup->level == 0 || rs->page[stripe] == InvalidBlockNumber)
				rs->page[stripe] = roomier;
			return buf;
		}
		UnlockReleaseBuffer(buf);
	}
	/* level 0 is most inserts; an element of a higher level just looks again */
	if (etup->level == 0 && !skipped)
		rs->skip = HNSW_REUSE_SKIP;
	return InvalidBuffer;
}

/*
 * Format 3: the new element takes over the free slot's vector chunks (the
 * same length) and writes its vector into them, before the slot itself is
 * filled: a crash in between leaves a free slot whose old chunks hold the
 * new vector, which nothing reads as a result.  Graph page (held) before
 * vector pages, see src/README.md.
 */
static void
take_slot_vector(Relation index, HnswMetaInfo *meta, Buffer buf, OffsetNumber eoff,
				 HnswElementTuple etup, const float *vec)
{
	BlockNumber blkno = BufferGetBlockNumber(buf);
	HnswElementTuple old = hnsw_page_element(index, BufferGetPage(buf), blkno, eoff, meta);

	*HnswElementVectorTid(etup) = *HnswElementVectorTid(old);
	hnsw_overwrite_vector(index, HnswElementVectorTid(etup), meta->dims, blkno, vec);
}

/*
 * Put the new element and its lists into the free slot at eoff (neighbour
 * tuple at noff) of a page registered with GenericXLog, in place.  The
 * neighbour tuple keeps its size and level (its room): the new element's
 * layers are its first slots, the rest stays empty.
 */
static void
fill_slot(Page page, BlockNumber blkno, HnswElementTuple etup, Size esize,
		  HnswNeighborTuple ntup, OffsetNumber eoff, OffsetNumber noff)
{
	HnswNeighborTuple room = (HnswNeighborTuple) PageGetItem(page, PageGetItemId(page, noff));

	ItemPointerSet(&etup->neighbortid, blkno, noff);
	memcpy(PageGetItem(page, PageGetItemId(page, eoff)), etup, esize);
	for (int i = 0; i < room->nslots; i++)
	{
		if (i < ntup->nslots)
			room->tids[i] = ntup->tids[i];
		else
			ItemPointerSetInvalid(&room->tids[i]);
	}
	HnswPageGetOpaque(page)->nfree--;
}

/*
 * Store a new element and its neighbour tuple, WAL-logged as one record so
 * that after a crash an element always has its neighbour tuple.  In format
 * 3 (vec not NULL) the vector goes first: into the chunks of the free slot
 * taken, else onto vector pages (hnsw_write_vector(), before any lock is
 * taken here; a restart keeps those chunks and takes no free slot).  Tries a
 * free slot first (lock_slot_page()), then the stripe's insert page,
 * otherwise adds pages.  The element's TID is returned in *etid.
 *
 * With pend, the element is pending: its pending entry is appended to the
 * stripe's pending chain in the same WAL record, so an element is never
 * pending without an entry that leads a scan or a merge to it.  With dirtid
 * (format 3, memory spaces), the element's block is added to its space's
 * block list, in the same record too unless that already holds the most
 * pages a record may (then in one of its own, right after).  Lock order:
 * the data page(s), then the chain's tail (and a new tail page), then the
 * space's directory page; the meta page is only locked after all of these
 * are released.
 */
void
hnsw_place_element(Relation index, HnswMetaInfo *meta, int stripe,
				   HnswElementTuple etup, Size esize,
				   HnswNeighborTuple ntup, Size nsize, const float *vec,
				   ItemPointer etid, HnswPendingTuple pend, int *tailcount,
				   ItemPointer dirtid)
{
	GenericXLogState *state = NULL;
	Buffer		buf = InvalidBuffer;
	Buffer		buf2 = InvalidBuffer;
	Buffer		tbuf = InvalidBuffer;
	Buffer		tbuf2 = InvalidBuffer;
	Buffer		dbuf = InvalidBuffer;
	bool		note_later = false;
	Page		page;
	BlockNumber blkno;
	BlockNumber eblkno;
	BlockNumber newtail = InvalidBlockNumber;
	OffsetNumber noff;
	OffsetNumber eoff;
	bool		newpage;
	bool		wrote_vector = false;
	int			restarts = 0;

restart:
	blkno = meta->stripe_insert[stripe];
	newpage = true;
	buf2 = InvalidBuffer;
	buf = InvalidBuffer;
	if (!wrote_vector)
		buf = lock_slot_page(index, meta, stripe, etup, esize, &eoff, &noff);
	if (!BufferIsValid(buf) && vec != NULL && !wrote_vector)
	{
		/* format 3: the vector's chunks first, holding nothing */
		hnsw_write_vector(index, meta, stripe, vec, HnswElementVectorTid(etup));
		wrote_vector = true;
	}

	if (BufferIsValid(buf))
	{
		/* a free slot: no new page, no meta page change */
		eblkno = BufferGetBlockNumber(buf);
		if (vec != NULL)
			take_slot_vector(index, meta, buf, eoff, etup, vec);
		state = GenericXLogStart(index);
		page = GenericXLogRegisterBuffer(state, buf, 0);
		fill_slot(page, eblkno, etup, esize, ntup, eoff, noff);
		newpage = false;
	}
	else if (blkno != InvalidBlockNumber && hnsw_block_exists(index, blkno))
	{
		buf = ReadBuffer(index, blkno);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		page = BufferGetPage(buf);
		if (!PageIsNew(page))
		{
			hnsw_check_page(index, page, blkno);
			if (HnswPageGetOpaque(page)->flags == HNSW_PAGE_DATA &&
				PageGetFreeSpace(page) >= esize + nsize + sizeof(ItemIdData))
			{
				state = GenericXLogStart(index);
				page = GenericXLogRegisterBuffer(state, buf, 0);
				noff = hnsw_add_item(index, page, blkno, ntup, nsize);
				ItemPointerSet(&etup->neighbortid, blkno, noff);
				eoff = hnsw_add_item(index, page, blkno, etup, esize);
				eblkno = blkno;
				newpage = false;
			}
		}
		if (newpage)
		{
			UnlockReleaseBuffer(buf);
			buf = InvalidBuffer;
		}
	}

	if (newpage)
	{
		/* a fresh page; a second one if the pair does not fit on one */
		state = GenericXLogStart(index);
		page = hnsw_new_page(index, state, HNSW_PAGE_DATA, &buf);
		blkno = BufferGetBlockNumber(buf);
		noff = hnsw_add_item(index, page, blkno, ntup, nsize);
		ItemPointerSet(&etup->neighbortid, blkno, noff);
		if (PageGetFreeSpace(page) >= esize)
		{
			eblkno = blkno;
			eoff = hnsw_add_item(index, page, blkno, etup, esize);
		}
		else
		{
			Page		page2 = hnsw_new_page(index, state, HNSW_PAGE_DATA, &buf2);

			eblkno = BufferGetBlockNumber(buf2);
			eoff = hnsw_add_item(index, page2, eblkno, etup, esize);
		}
	}
	ItemPointerSet(etid, eblkno, eoff);

	if (pend)
	{
		Page		tpage;
		BlockNumber tblkno;

		Buffer		held[2];

		pend->elem = *etid;
		held[0] = buf;
		held[1] = buf2;
		tbuf = lock_pending_tail(index, meta, stripe, restarts > 0, held, 2);
		if (!BufferIsValid(tbuf))
		{
			/* let go of everything, read the meta page, start over */
			GenericXLogAbort(state);
			UnlockReleaseBuffer(buf);
			if (BufferIsValid(buf2))
				UnlockReleaseBuffer(buf2);
			if (++restarts > HNSW_PLACE_RESTARTS)
				hnsw_corrupt(index, HNSW_METAPAGE_BLKNO,
							 psprintf("pending chain %d reaches a page that is not in it",
									  stripe));
			hnsw_read_meta(index, meta);
			CHECK_FOR_INTERRUPTS();
			goto restart;
		}
		tblkno = BufferGetBlockNumber(tbuf);
		tpage = GenericXLogRegisterBuffer(state, tbuf, 0);
		if (PageGetFreeSpace(tpage) >= HNSW_PENDING_TUPLE_SIZE)
		{
			OffsetNumber last = hnsw_add_item(index, tpage, tblkno, pend, HNSW_PENDING_TUPLE_SIZE);

			/* entries a merge has not taken yet (merges mark them on the tail too) */
			*tailcount = 0;
			for (OffsetNumber o = FirstOffsetNumber; o <= last; o++)
				if (!(hnsw_page_pending(index, tpage, tblkno, o)->flags & HNSW_PENDING_MERGED))
					(*tailcount)++;
		}
		else
		{
			/* the tail is full: a new tail page */
			Page		tpage2 = hnsw_new_page(index, state, HNSW_PAGE_PENDING, &tbuf2);

			newtail = BufferGetBlockNumber(tbuf2);
			HnswPageGetOpaque(tpage2)->stripe = stripe;
			*tailcount = hnsw_add_item(index, tpage2, newtail, pend, HNSW_PENDING_TUPLE_SIZE);
			HnswPageGetOpaque(tpage)->next = newtail;
		}
	}

	if (dirtid != NULL)
	{
		int			used = 1 + BufferIsValid(buf2) + BufferIsValid(tbuf) + BufferIsValid(tbuf2);

		if (used < MAX_GENERIC_XLOG_PAGES)
			dbuf = hnsw_space_block_buffer(index, dirtid, eblkno);
		else
			note_later = true;
		if (BufferIsValid(dbuf))
			hnsw_space_add_block(index, GenericXLogRegisterBuffer(state, dbuf, 0),
								 dirtid, eblkno);
	}

	GenericXLogFinish(state);
	UnlockReleaseBuffer(buf);
	if (BufferIsValid(buf2))
		UnlockReleaseBuffer(buf2);
	if (BufferIsValid(tbuf))
		UnlockReleaseBuffer(tbuf);
	if (BufferIsValid(tbuf2))
		UnlockReleaseBuffer(tbuf2);
	if (BufferIsValid(dbuf))
		UnlockReleaseBuffer(dbuf);
	if (note_later)
		hnsw_space_note_block(index, dirtid, eblkno);

	/* the meta page is locked alone, after everything else */
	if (newpage)
	{
		set_insert_page(index, stripe, eblkno);
		meta->stripe_insert[stripe] = eblkno;
		if (meta->version == 1)
			meta->insert_page = eblkno;
	}
	if (newtail != InvalidBlockNumber)
	{
		hnsw_set_pending_tail(index, stripe, newtail);
		meta->pending_tail[stripe] = newtail;
		meta->pending_pages[stripe]++;
	}
}

/*
 * Meta page bookkeeping of the pending chains.  hnsw_set_pending_tail: a
 * page was added at the end of the stripe's chain.  hnsw_set_pending_head: a merge detached the first
 * page; the head moves on to blkno, if it still is "expect".
 */
void
hnsw_set_pending_tail(Relation index, int stripe, BlockNumber blkno)
{
	MetaChange	mc;
	HnswMetaPage meta = hnsw_meta_begin(index, &mc);

	meta->pending_tail[stripe] = blkno;
	meta->pending_pages[stripe]++;
	hnsw_meta_end(&mc, true);
}

/* a stripe's first chain page; false if the stripe has a chain already */
bool
hnsw_init_pending_chain(Relation index, int stripe, BlockNumber blkno)
{
	MetaChange	mc;
	HnswMetaPage meta = hnsw_meta_begin(index, &mc);
	bool		done = (meta->pending_head[stripe] == InvalidBlockNumber);

	if (done)
	{
		meta->pending_head[stripe] = blkno;
		meta->pending_tail[stripe] = blkno;
		meta->pending_pages[stripe] = 1;
	}
	hnsw_meta_end(&mc, done);
	return done;
}

bool
hnsw_set_pending_head(Relation index, int stripe, BlockNumber expect, BlockNumber blkno)
{
	MetaChange	mc;
	HnswMetaPage meta = hnsw_meta_begin(index, &mc);
	bool		done = (meta->pending_head[stripe] == expect);

	if (done)
	{
		meta->pending_head[stripe] = blkno;
		if (meta->pending_tail[stripe] == expect || blkno == InvalidBlockNumber)
			meta->pending_tail[stripe] = blkno;
		if (meta->pending_pages[stripe] > 0)
			meta->pending_pages[stripe]--;
	}
	hnsw_meta_end(&mc, done);
	return done;
}

/* a pending entry, checked like every other tuple */
HnswPendingTuple
hnsw_page_pending(Relation index, Page page, BlockNumber blkno, OffsetNumber off)
{
	Size		len;
	HnswPendingTuple ptup = (HnswPendingTuple) hnsw_page_item(index, page, blkno, off, &len);

	if (len != HNSW_PENDING_TUPLE_SIZE || ptup->type != HNSW_TUPLE_PENDING ||
		!ItemPointerIsValid(&ptup->elem))
		hnsw_corrupt(index, blkno, psprintf("item %u is not a valid pending entry", off));
	return ptup;
}

