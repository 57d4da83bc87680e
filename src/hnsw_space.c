/*-------------------------------------------------------------------------
 *
 * hnsw_space.c
 *	  The memory-space directory: space key -> that space's graph.
 *
 * An index whose leading column is a space key (int4, int8, text, uuid)
 * holds one independent graph per distinct key.  The directory maps a key
 * to its space number and its graph's entry point.  It is an append-only
 * chain of directory pages (HNSW_PAGE_DIR, linked by the opaque "next"),
 * one HnswSpaceTupleData per key.  Entries never move and never go away:
 * a space whose rows were all vacuumed away is flagged HNSW_SPACE_EMPTY and
 * revived in place when its key comes back, so a key never has two entries.
 *
 * Lookups do not scan the chain: every backend keeps a hash table of
 * key -> directory TID per index, and reads only the entries appended since
 * its last look (the meta page counts them).  A cached TID is confirmed by
 * reading the entry (which the caller needs anyway for the entry point).
 *
 * Creating a space is the rare path: it takes a heavyweight lock on the
 * meta page (LockPage), looks again, and appends.  Lock order while
 * creating: that heavyweight lock, then the meta page buffer alone, then
 * the tail directory page (plus a page just added, unreachable to others).
 * Entry point changes lock only the space's directory page, so inserts
 * into different spaces share nothing but short shared looks at the
 * directory.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/generic_xlog.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "engram_hnsw.h"

/* ----------------------------------------------------------------
 * Keys
 * ----------------------------------------------------------------
 */

/* the bytes of a space key value (the index's first column) */
HnswSpaceKey
hnsw_space_key(Relation index, Datum value)
{
	Form_pg_attribute att = TupleDescAttr(RelationGetDescr(index), 0);
	HnswSpaceKey key;

	key.valid = true;
	if (att->attlen > 0)
	{
		char	   *data = palloc(att->attlen);

		if (att->attbyval)
			store_att_byval(data, value, att->attlen);
		else
			memcpy(data, DatumGetPointer(value), att->attlen);
		key.data = data;
		key.len = att->attlen;
	}
	else if (att->attlen == -1)
	{
		struct varlena *v = PG_DETOAST_DATUM_PACKED(value);

		key.data = VARDATA_ANY(v);
		key.len = VARSIZE_ANY_EXHDR(v);
	}
	else
		elog(ERROR, "engram_hnsw: unsupported space key type");

	if (key.len > HNSW_MAX_SPACE_KEY)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("space key of %d bytes is too long for engram_hnsw index \"%s\"",
						key.len, RelationGetRelationName(index)),
				 errdetail("Space keys may have at most %d bytes.", HNSW_MAX_SPACE_KEY)));
	key.hash = hash_bytes((const unsigned char *) key.data, key.len);
	return key;
}

/* ----------------------------------------------------------------
 * Directory tuples
 * ----------------------------------------------------------------
 */
HnswSpaceTuple
hnsw_page_space(Relation index, Page page, BlockNumber blkno, OffsetNumber off)
{
	ItemId		iid;
	HnswSpaceTuple stup;

	if (HnswPageGetOpaque(page)->flags != HNSW_PAGE_DIR ||
		off < FirstOffsetNumber || off > PageGetMaxOffsetNumber(page))
		hnsw_corrupt(index, blkno, psprintf("item %u is not a space directory entry", off));
	iid = PageGetItemId(page, off);
	if (!ItemIdIsNormal(iid) ||
		ItemIdGetLength(iid) < offsetof(HnswSpaceTupleData, key) ||
		ItemIdGetOffset(iid) < ((PageHeader) page)->pd_upper ||
		ItemIdGetOffset(iid) != MAXALIGN(ItemIdGetOffset(iid)) ||
		ItemIdGetOffset(iid) + ItemIdGetLength(iid) > ((PageHeader) page)->pd_special)
		hnsw_corrupt(index, blkno, psprintf("directory entry %u has an invalid line pointer", off));
	stup = (HnswSpaceTuple) PageGetItem(page, iid);
	if (stup->type != HNSW_TUPLE_SPACE ||
		stup->keylen > HNSW_MAX_SPACE_KEY ||
		ItemIdGetLength(iid) != ((stup->flags & HNSW_SPACE_LISTED) ?
								 HNSW_SPACE_LISTED_SIZE(stup->keylen) :
								 HNSW_SPACE_TUPLE_SIZE(stup->keylen)) ||
		stup->entry_level < -1 || stup->entry_level > HNSW_MAX_LEVEL ||
		((stup->flags & HNSW_SPACE_LISTED) &&
		 (HnswSpaceTupleBlocks(stup)->nblocks > HNSW_SPACE_MAX_BLOCKS ||
		  HnswSpaceTupleBlocks(stup)->ncollected > HNSW_SPACE_MAX_BLOCKS + 1)))
		hnsw_corrupt(index, blkno, psprintf("directory entry %u has an invalid header", off));
	return stup;
}

static void
space_to_info(HnswSpaceTuple stup, BlockNumber blkno, OffsetNumber off, HnswSpaceInfo *info)
{
	ItemPointerSet(&info->tid, blkno, off);
	info->space_no = stup->space_no;
	info->flags = stup->flags;
	info->entry_level = stup->entry_level;
	info->entry = stup->entry;
	info->nblocks = -1;
	if ((stup->flags & HNSW_SPACE_LISTED) && !(stup->flags & HNSW_SPACE_SCATTERED))
	{
		HnswSpaceBlocks sb = HnswSpaceTupleBlocks(stup);

		info->nblocks = sb->nblocks;
		memcpy(info->blocks, sb->blocks, sizeof(BlockNumber) * sb->nblocks);
	}
}

/*
 * Give a format 3 entry its block list (the tuple has the room of
 * HNSW_SPACE_LISTED_SIZE()): blocks[0 .. n), or flagged scattered if n is
 * more than a list holds.
 */
void
hnsw_space_fill_blocks(HnswSpaceTuple stup, const BlockNumber *blocks, int n)
{
	HnswSpaceBlocks sb = HnswSpaceTupleBlocks(stup);

	stup->flags |= HNSW_SPACE_LISTED;
	memset(sb, 0, sizeof(HnswSpaceBlocksData));
	if (n > HNSW_SPACE_MAX_BLOCKS)
	{
		stup->flags |= HNSW_SPACE_SCATTERED;
		return;
	}
	sb->nblocks = n;
	if (n > 0)
		memcpy(sb->blocks, blocks, sizeof(BlockNumber) * n);
}

static bool
block_in(const BlockNumber *blocks, int n, BlockNumber blkno)
{
	for (int i = 0; i < n; i++)
		if (blocks[i] == blkno)
			return true;
	return false;
}

/*
 * Does the entry need blkno added to its list, or (while a VACUUM collects)
 * to its collected blocks?
 */
static bool
needs_block(HnswSpaceTuple stup, BlockNumber blkno)
{
	HnswSpaceBlocks sb = HnswSpaceTupleBlocks(stup);

	if (!(stup->flags & HNSW_SPACE_LISTED))
		return false;
	if (!(stup->flags & HNSW_SPACE_SCATTERED) && !block_in(sb->blocks, sb->nblocks, blkno))
		return true;
	return (stup->flags & HNSW_SPACE_COLLECTING) &&
		sb->ncollected <= HNSW_SPACE_MAX_BLOCKS &&
		!block_in(sb->collected, sb->ncollected, blkno);
}

static Buffer
read_dir_buffer(Relation index, BlockNumber blkno)
{
	if (blkno == HNSW_METAPAGE_BLKNO || !hnsw_block_exists(index, blkno))
		hnsw_corrupt(index, blkno,
					 psprintf("the space directory points to block %u, outside the index", blkno));
	return ReadBuffer(index, blkno);
}

/* pin and share-lock a page the directory chain leads to, which must be one */
static Page
lock_chain_page(Relation index, BlockNumber blkno, Buffer *buf)
{
	Page		page;

	*buf = read_dir_buffer(index, blkno);
	LockBuffer(*buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(*buf);
	hnsw_check_page(index, page, blkno);
	if (HnswPageGetOpaque(page)->flags != HNSW_PAGE_DIR)
		hnsw_corrupt(index, blkno, "the space directory chain leads to a page that is not a directory page");
	return page;
}

/* read a directory entry; false if it is not the given key (stale cache) */
static bool
read_space(Relation index, ItemPointer tid, HnswSpaceKey *key, HnswSpaceInfo *info)
{
	Buffer		buf;
	HnswSpaceTuple stup;
	bool		match;

	/* a cached TID can be stale (the index was rebuilt in place) */
	if (key != NULL &&
		(ItemPointerGetBlockNumber(tid) == HNSW_METAPAGE_BLKNO ||
		 !hnsw_block_exists(index, ItemPointerGetBlockNumber(tid))))
		return false;
	buf = read_dir_buffer(index, ItemPointerGetBlockNumber(tid));

	LockBuffer(buf, BUFFER_LOCK_SHARE);
	hnsw_check_page(index, BufferGetPage(buf), ItemPointerGetBlockNumber(tid));
	if (HnswPageGetOpaque(BufferGetPage(buf))->flags != HNSW_PAGE_DIR ||
		ItemPointerGetOffsetNumber(tid) > PageGetMaxOffsetNumber(BufferGetPage(buf)))
	{
		UnlockReleaseBuffer(buf);
		if (key == NULL)
			hnsw_corrupt(index, ItemPointerGetBlockNumber(tid),
						 "a space directory entry is missing");
		return false;
	}
	stup = hnsw_page_space(index, BufferGetPage(buf), ItemPointerGetBlockNumber(tid),
						   ItemPointerGetOffsetNumber(tid));
	match = (key == NULL ||
			 (stup->hash == key->hash && stup->keylen == key->len &&
			  memcmp(stup->key, key->data, key->len) == 0));
	if (match && info)
		space_to_info(stup, ItemPointerGetBlockNumber(tid), ItemPointerGetOffsetNumber(tid), info);
	UnlockReleaseBuffer(buf);
	return match;
}

bool
hnsw_space_read(Relation index, ItemPointer tid, HnswSpaceInfo *info)
{
	return read_space(index, tid, NULL, info);
}

/* ----------------------------------------------------------------
 * The per-backend cache
 * ----------------------------------------------------------------
 */
typedef struct SpaceCacheKey
{
	Oid			relnode;
	uint16		len;
	char		bytes[HNSW_MAX_SPACE_KEY];
} SpaceCacheKey;

typedef struct SpaceCacheEntry
{
	SpaceCacheKey key;
	ItemPointerData tid;
	uint32		space_no;
} SpaceCacheEntry;

typedef struct SpaceCacheState
{
	Oid			relnode;		/* hash key */
	uint32		seen;			/* meta dir_count when last refreshed */
	BlockNumber next_blk;		/* where to read on: page ... */
	OffsetNumber next_off;		/* ... and offset */
} SpaceCacheState;

static HTAB *space_cache = NULL;
static HTAB *space_states = NULL;

static void
make_cache_key(SpaceCacheKey *ck, Relation index, HnswSpaceKey *key)
{
	memset(ck, 0, sizeof(SpaceCacheKey));
	ck->relnode = index->rd_node.relNode;
	ck->len = key->len;
	memcpy(ck->bytes, key->data, key->len);
}

static SpaceCacheState *
cache_state(Relation index)
{
	Oid			relnode = index->rd_node.relNode;
	SpaceCacheState *st;
	bool		found;

	if (space_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(SpaceCacheKey);
		ctl.entrysize = sizeof(SpaceCacheEntry);
		ctl.hcxt = TopMemoryContext;
		space_cache = hash_create("engram_hnsw space cache", 1024, &ctl,
								  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(SpaceCacheState);
		space_states = hash_create("engram_hnsw space cache states", 16, &ctl,
								   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	st = hash_search(space_states, &relnode, HASH_ENTER, &found);
	if (!found)
	{
		st->seen = 0;
		st->next_blk = InvalidBlockNumber;
		st->next_off = FirstOffsetNumber;
	}
	return st;
}

/* forget everything cached for this index (a cached TID did not match) */
static void
cache_reset(Relation index, SpaceCacheState *st)
{
	HASH_SEQ_STATUS status;
	SpaceCacheEntry *e;

	hash_seq_init(&status, space_cache);
	while ((e = hash_seq_search(&status)) != NULL)
		if (e->key.relnode == index->rd_node.relNode)
			hash_search(space_cache, &e->key, HASH_REMOVE, NULL);
	st->seen = 0;
	st->next_blk = InvalidBlockNumber;
	st->next_off = FirstOffsetNumber;
}

/*
 * Read the directory entries appended since the last refresh.  The meta
 * page's count is only a hint (a creator counts its entry before writing
 * it): with force, the chain is read on from the last position anyway, as
 * a lookup that missed must do before it may conclude the key is absent.
 */
static void
cache_refresh(Relation index, SpaceCacheState *st, bool force)
{
	HnswMetaInfo meta;
	BlockNumber blkno;
	int			pages = 0;

	hnsw_read_meta(index, &meta);
	if (meta.dir_count < st->seen ||
		(st->next_blk != InvalidBlockNumber &&
		 !hnsw_block_exists(index, st->next_blk)))
		cache_reset(index, st); /* rebuilt in place (TRUNCATE, REINDEX) */
	if (!force && st->seen == meta.dir_count && st->next_blk != InvalidBlockNumber)
		return;
	if (st->next_blk == InvalidBlockNumber)
	{
		st->next_blk = meta.dir_head;
		st->next_off = FirstOffsetNumber;
	}
	blkno = st->next_blk;
	while (blkno != InvalidBlockNumber)
	{
		Buffer		buf;
		Page		page = lock_chain_page(index, blkno, &buf);
		OffsetNumber maxoff;
		BlockNumber next;

		maxoff = PageGetMaxOffsetNumber(page);
		for (OffsetNumber off = st->next_off; off <= maxoff; off++)
		{
			HnswSpaceTuple stup = hnsw_page_space(index, page, blkno, off);
			HnswSpaceKey key;
			SpaceCacheKey ck;
			SpaceCacheEntry *e;

			key.data = stup->key;
			key.len = stup->keylen;
			make_cache_key(&ck, index, &key);
			e = hash_search(space_cache, &ck, HASH_ENTER, NULL);
			ItemPointerSet(&e->tid, blkno, off);
			e->space_no = stup->space_no;
		}
		next = HnswPageGetOpaque(page)->next;
		UnlockReleaseBuffer(buf);
		st->next_blk = blkno;
		st->next_off = maxoff + 1;
		if (next == InvalidBlockNumber)
			break;
		if (++pages > 1000000)
			hnsw_corrupt(index, blkno, "the space directory chain has a cycle");
		blkno = next;
		st->next_blk = blkno;
		st->next_off = FirstOffsetNumber;
	}
	st->seen = meta.dir_count;
}

static SpaceCacheEntry *
cache_lookup(Relation index, HnswSpaceKey *key)
{
	SpaceCacheKey ck;

	make_cache_key(&ck, index, key);
	return hash_search(space_cache, &ck, HASH_FIND, NULL);
}

/* ----------------------------------------------------------------
 * Find or create a space
 * ----------------------------------------------------------------
 */

/* append a directory entry for key; called with the creation lock held */
static void
append_space(Relation index, HnswSpaceKey *key, ItemPointer tid, uint32 *space_no)
{
	Buffer		metabuf;
	GenericXLogState *state;
	HnswMetaPage meta;
	BlockNumber tail;
	Size		size;
	HnswSpaceTuple stup;
	bool		listed;
	Buffer		buf = InvalidBuffer;
	Buffer		newbuf = InvalidBuffer;
	OffsetNumber off;
	BlockNumber blkno;

	/* number the space, count the entry (meta page locked alone) */
	metabuf = ReadBuffer(index, HNSW_METAPAGE_BLKNO);
	LockBuffer(metabuf, BUFFER_LOCK_EXCLUSIVE);
	state = GenericXLogStart(index);
	meta = HnswPageGetMeta(GenericXLogRegisterBuffer(state, metabuf, 0));
	*space_no = meta->next_space_no++;
	meta->dir_count++;
	tail = meta->dir_tail;
	listed = (meta->version >= 3);
	GenericXLogFinish(state);
	UnlockReleaseBuffer(metabuf);

	size = listed ? HNSW_SPACE_LISTED_SIZE(key->len) : HNSW_SPACE_TUPLE_SIZE(key->len);
	stup = palloc0(size);
	stup->type = HNSW_TUPLE_SPACE;
	stup->flags = 0;
	stup->entry_level = -1;
	stup->space_no = *space_no;
	stup->hash = key->hash;
	ItemPointerSetInvalid(&stup->entry);
	stup->keylen = key->len;
	memcpy(stup->key, key->data, key->len);
	if (listed)
		hnsw_space_fill_blocks(stup, NULL, 0);

	state = GenericXLogStart(index);
	if (tail != InvalidBlockNumber)
	{
		Page		page;

		buf = read_dir_buffer(index, tail);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		hnsw_check_page(index, BufferGetPage(buf), tail);
		page = GenericXLogRegisterBuffer(state, buf, 0);
		if (PageGetFreeSpace(page) >= size)
		{
			off = PageAddItem(page, (Item) stup, size, InvalidOffsetNumber, false, false);
			if (off == InvalidOffsetNumber)
				elog(ERROR, "failed to add space directory entry to block %u", tail);
			GenericXLogFinish(state);
			UnlockReleaseBuffer(buf);
			ItemPointerSet(tid, tail, off);
			return;
		}
	}

	/* a new directory page, linked from the old tail in the same record */
	newbuf = hnsw_new_buffer(index, MAIN_FORKNUM);
	blkno = BufferGetBlockNumber(newbuf);
	{
		Page		newpage = GenericXLogRegisterBuffer(state, newbuf, GENERIC_XLOG_FULL_IMAGE);

		hnsw_init_page(newpage, HNSW_PAGE_DIR, RelationGetRelid(index));
		off = PageAddItem(newpage, (Item) stup, size, InvalidOffsetNumber, false, false);
		if (off == InvalidOffsetNumber)
			elog(ERROR, "failed to add space directory entry to block %u", blkno);
	}
	if (BufferIsValid(buf))
	{
		/* the tail page was registered above; its copy is still ours */
		HnswPageGetOpaque(GenericXLogRegisterBuffer(state, buf, 0))->next = blkno;
	}
	GenericXLogFinish(state);
	if (BufferIsValid(buf))
		UnlockReleaseBuffer(buf);
	UnlockReleaseBuffer(newbuf);
	ItemPointerSet(tid, blkno, off);

	metabuf = ReadBuffer(index, HNSW_METAPAGE_BLKNO);
	LockBuffer(metabuf, BUFFER_LOCK_EXCLUSIVE);
	state = GenericXLogStart(index);
	meta = HnswPageGetMeta(GenericXLogRegisterBuffer(state, metabuf, 0));
	if (meta->dir_head == InvalidBlockNumber)
		meta->dir_head = blkno;
	meta->dir_tail = blkno;
	GenericXLogFinish(state);
	UnlockReleaseBuffer(metabuf);
}

/*
 * Find the directory entry of key; with create, make it if it does not
 * exist.  Returns false if there is none (and create is false).
 */
static bool
find_space(Relation index, HnswSpaceKey *key, bool create,
		   ItemPointer tid, uint32 *space_no, HnswSpaceInfo *info)
{
	SpaceCacheState *st = cache_state(index);
	SpaceCacheEntry *e;

	for (int attempt = 0; attempt < HNSW_SPACE_LOOKUPS; attempt++)
	{
		cache_refresh(index, st, attempt > 0);
		e = cache_lookup(index, key);
		if (e == NULL)
		{
			if (attempt == 0)
				continue;		/* look at the tail of the chain first */
			break;
		}
		if (read_space(index, &e->tid, key, info))
		{
			*tid = e->tid;
			*space_no = e->space_no;
			return true;
		}
		/* stale (the relfilenode was reused): start over */
		cache_reset(index, st);
	}
	if (!create)
		return false;

	LockPage(index, HNSW_METAPAGE_BLKNO, ExclusiveLock);
	cache_refresh(index, st, true);
	e = cache_lookup(index, key);
	if (e != NULL)
	{
		*tid = e->tid;
		*space_no = e->space_no;
	}
	else
	{
		SpaceCacheKey ck;

		append_space(index, key, tid, space_no);
		make_cache_key(&ck, index, key);
		e = hash_search(space_cache, &ck, HASH_ENTER, NULL);
		e->tid = *tid;
		e->space_no = *space_no;
	}
	UnlockPage(index, HNSW_METAPAGE_BLKNO, ExclusiveLock);
	return true;
}

bool
hnsw_space_find(Relation index, HnswSpaceKey *key, bool create,
				ItemPointer tid, uint32 *space_no)
{
	return find_space(index, key, create, tid, space_no, NULL);
}

/* an existing space's directory entry, read once; false if there is none */
bool
hnsw_space_lookup(Relation index, HnswSpaceKey *key, HnswSpaceInfo *info)
{
	ItemPointerData tid;
	uint32		space_no;

	return find_space(index, key, false, &tid, &space_no, info);
}

/*
 * Compare-and-set of a space's entry point, like hnsw_update_entry() for
 * the meta page: with expect == NULL, tid becomes the entry point if the
 * space has none or level is higher (this also revives an emptied space);
 * otherwise only if the entry point is still *expect.  mark_empty (with
 * expect) flags the space as emptied instead.  cur receives the state
 * afterwards.
 */
bool
hnsw_space_update_entry(Relation index, ItemPointer dirtid, ItemPointer tid, int level,
						ItemPointer expect, bool mark_empty, HnswSpaceInfo *cur)
{
	Buffer		buf = read_dir_buffer(index, ItemPointerGetBlockNumber(dirtid));
	GenericXLogState *state;
	HnswSpaceTuple stup;
	bool		change;

	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	hnsw_check_page(index, BufferGetPage(buf), ItemPointerGetBlockNumber(dirtid));
	state = GenericXLogStart(index);
	stup = hnsw_page_space(index, GenericXLogRegisterBuffer(state, buf, 0),
						   ItemPointerGetBlockNumber(dirtid),
						   ItemPointerGetOffsetNumber(dirtid));
	change = hnsw_entry_cas(&stup->entry, stup->entry_level, level, expect);
	if (change)
	{
		if (mark_empty || tid == NULL || !ItemPointerIsValid(tid))
		{
			ItemPointerSetInvalid(&stup->entry);
			stup->entry_level = -1;
			if (mark_empty)
				stup->flags |= HNSW_SPACE_EMPTY;
		}
		else
		{
			stup->entry = *tid;
			stup->entry_level = level;
			stup->flags &= ~HNSW_SPACE_EMPTY;
		}
	}
	if (cur)
		space_to_info(stup, ItemPointerGetBlockNumber(dirtid),
					  ItemPointerGetOffsetNumber(dirtid), cur);
	if (change)
		GenericXLogFinish(state);
	else
		GenericXLogAbort(state);
	UnlockReleaseBuffer(buf);
	return change;
}

/*
 * Format 3: an element of the space whose directory entry is at dirtid now
 * lies on blkno.  If the entry's list lacks the block, returns the entry's
 * page locked exclusively for hnsw_space_add_block() (the caller WAL-logs
 * it, in the record that stores the element where it can); else
 * InvalidBuffer.  The common case, a block listed already, takes only a
 * share lock.  Directory pages come last in the lock order: the caller may
 * hold data and pending pages (src/README.md, "Locks").
 */
Buffer
hnsw_space_block_buffer(Relation index, ItemPointer dirtid, BlockNumber blkno)
{
	BlockNumber dblk = ItemPointerGetBlockNumber(dirtid);
	OffsetNumber doff = ItemPointerGetOffsetNumber(dirtid);
	Buffer		buf = read_dir_buffer(index, dblk);

	for (int mode = BUFFER_LOCK_SHARE;; mode = BUFFER_LOCK_EXCLUSIVE)
	{
		LockBuffer(buf, mode);
		hnsw_check_page(index, BufferGetPage(buf), dblk);
		if (!needs_block(hnsw_page_space(index, BufferGetPage(buf), dblk, doff), blkno))
		{
			UnlockReleaseBuffer(buf);
			return InvalidBuffer;
		}
		if (mode == BUFFER_LOCK_EXCLUSIVE)
			return buf;
		LockBuffer(buf, BUFFER_LOCK_UNLOCK);
	}
}

/*
 * Add blkno to the list of the entry at dirtid on page (the caller's WAL
 * copy of the page hnsw_space_block_buffer() returned), or flag the space
 * scattered when the list is full.
 */
void
hnsw_space_add_block(Relation index, Page page, ItemPointer dirtid, BlockNumber blkno)
{
	HnswSpaceTuple stup = hnsw_page_space(index, page, ItemPointerGetBlockNumber(dirtid),
										  ItemPointerGetOffsetNumber(dirtid));
	HnswSpaceBlocks sb = HnswSpaceTupleBlocks(stup);

	if (!needs_block(stup, blkno))
		return;
	if (!(stup->flags & HNSW_SPACE_SCATTERED) && !block_in(sb->blocks, sb->nblocks, blkno))
	{
		if (sb->nblocks < HNSW_SPACE_MAX_BLOCKS)
			sb->blocks[sb->nblocks++] = blkno;
		else
			stup->flags |= HNSW_SPACE_SCATTERED;
	}
	if ((stup->flags & HNSW_SPACE_COLLECTING) && sb->ncollected <= HNSW_SPACE_MAX_BLOCKS &&
		!block_in(sb->collected, sb->ncollected, blkno))
	{
		if (sb->ncollected < HNSW_SPACE_MAX_BLOCKS)
			sb->collected[sb->ncollected] = blkno;
		sb->ncollected++;
	}
}

/* the same in a WAL record of its own, holding nothing else */
void
hnsw_space_note_block(Relation index, ItemPointer dirtid, BlockNumber blkno)
{
	Buffer		buf = hnsw_space_block_buffer(index, dirtid, blkno);
	GenericXLogState *state;

	if (!BufferIsValid(buf))
		return;
	state = GenericXLogStart(index);
	hnsw_space_add_block(index, GenericXLogRegisterBuffer(state, buf, 0), dirtid, blkno);
	GenericXLogFinish(state);
	UnlockReleaseBuffer(buf);
}

/*
 * VACUUM's collection of the spaces' blocks (format 3).  Each function
 * walks the directory one page at a time under its exclusive lock (rule 5
 * of "Locks": nothing else held), changing the listed entries through fn,
 * one WAL record per page changed.
 */
typedef bool (*ListedEntryFn) (HnswSpaceTuple stup, void *arg);

static void
update_listed_entries(Relation index, ListedEntryFn fn, void *arg)
{
	HnswMetaInfo meta;
	BlockNumber blkno;
	int			pages = 0;

	hnsw_read_meta(index, &meta);
	blkno = meta.dir_head;
	while (blkno != InvalidBlockNumber)
	{
		Buffer		buf = read_dir_buffer(index, blkno);
		GenericXLogState *state;
		Page		page;
		bool		changed = false;

		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		hnsw_check_page(index, BufferGetPage(buf), blkno);
		if (HnswPageGetOpaque(BufferGetPage(buf))->flags != HNSW_PAGE_DIR)
			hnsw_corrupt(index, blkno, "the space directory chain leads to a page that is not a directory page");
		state = GenericXLogStart(index);
		page = GenericXLogRegisterBuffer(state, buf, 0);
		for (OffsetNumber off = FirstOffsetNumber; off <= PageGetMaxOffsetNumber(page); off++)
		{
			HnswSpaceTuple stup = hnsw_page_space(index, page, blkno, off);

			if (stup->flags & HNSW_SPACE_LISTED)
				changed |= fn(stup, arg);
		}
		blkno = HnswPageGetOpaque(page)->next;
		if (changed)
			GenericXLogFinish(state);
		else
			GenericXLogAbort(state);
		UnlockReleaseBuffer(buf);
		if (++pages > 1000000)
			hnsw_corrupt(index, blkno, "the space directory chain has a cycle");
		CHECK_FOR_INTERRUPTS();
	}
}

static bool
begin_collecting(HnswSpaceTuple stup, void *arg)
{
	stup->flags |= HNSW_SPACE_COLLECTING;
	HnswSpaceTupleBlocks(stup)->ncollected = 0;
	return true;
}

/*
 * Before VACUUM's pass over the pages: from now on inserts also add their
 * element's block to each space's "collected" blocks.
 */
void
hnsw_space_collect_begin(Relation index)
{
	update_listed_entries(index, begin_collecting, NULL);
}

typedef struct CollectEnd
{
	const HnswSpaceBlock *seen;	/* sorted by space, then block; unique */
	int64		nseen;
} CollectEnd;

static int
space_block_cmp(const void *a, const void *b)
{
	const HnswSpaceBlock *x = a;
	const HnswSpaceBlock *y = b;

	if (x->space_no != y->space_no)
		return x->space_no < y->space_no ? -1 : 1;
	return x->blkno < y->blkno ? -1 : (x->blkno > y->blkno ? 1 : 0);
}

/* the list becomes what the pass saw plus what inserts collected meanwhile */
static bool
end_collecting(HnswSpaceTuple stup, void *arg)
{
	CollectEnd *ce = arg;
	HnswSpaceBlocks sb = HnswSpaceTupleBlocks(stup);
	BlockNumber merged[HNSW_SPACE_MAX_BLOCKS];
	int			n = 0;
	bool		fits = (sb->ncollected <= HNSW_SPACE_MAX_BLOCKS);
	int64		lo = 0,
				hi = ce->nseen;

	if (!(stup->flags & HNSW_SPACE_COLLECTING))
		return false;			/* created since the collection began */
	if (fits)
	{
		n = sb->ncollected;
		memcpy(merged, sb->collected, sizeof(BlockNumber) * n);
	}
	/* the first block the pass saw of this space */
	while (lo < hi)
	{
		int64		mid = lo + (hi - lo) / 2;

		if (ce->seen[mid].space_no < stup->space_no)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; fits && lo < ce->nseen && ce->seen[lo].space_no == stup->space_no; lo++)
	{
		if (block_in(merged, n, ce->seen[lo].blkno))
			continue;
		if (n == HNSW_SPACE_MAX_BLOCKS)
			fits = false;
		else
			merged[n++] = ce->seen[lo].blkno;
	}
	if (fits)
	{
		stup->flags &= ~HNSW_SPACE_SCATTERED;
		sb->nblocks = n;
		memcpy(sb->blocks, merged, sizeof(BlockNumber) * n);
	}
	else
		stup->flags |= HNSW_SPACE_SCATTERED;
	stup->flags &= ~HNSW_SPACE_COLLECTING;
	sb->ncollected = 0;
	return true;
}

/*
 * After the pass: seen[] holds (space, block) of every element the pass
 * saw that a scan may return (live or pending); sorted here.  Each listed
 * space's list becomes those blocks and the ones inserts collected since
 * the beginning, or the space is flagged scattered if they do not fit.
 */
void
hnsw_space_collect_end(Relation index, HnswSpaceBlock *seen, int64 nseen)
{
	CollectEnd	ce;
	int64		u = 0;

	qsort(seen, nseen, sizeof(HnswSpaceBlock), space_block_cmp);
	for (int64 i = 0; i < nseen; i++)
		if (u == 0 || space_block_cmp(&seen[u - 1], &seen[i]) != 0)
			seen[u++] = seen[i];
	ce.seen = seen;
	ce.nseen = u;
	update_listed_entries(index, end_collecting, &ce);
}

/* every directory entry, in chain order; returns the count */
int
hnsw_space_list(Relation index, HnswSpaceInfo **out)
{
	HnswMetaInfo meta;
	int			n = 0;
	int			max = 64;
	BlockNumber blkno;
	int			pages = 0;

	hnsw_read_meta(index, &meta);
	*out = palloc(sizeof(HnswSpaceInfo) * max);
	blkno = meta.dir_head;
	while (blkno != InvalidBlockNumber)
	{
		Buffer		buf;
		Page		page = lock_chain_page(index, blkno, &buf);

		for (OffsetNumber off = FirstOffsetNumber; off <= PageGetMaxOffsetNumber(page); off++)
		{
			if (n == max)
			{
				max *= 2;
				*out = repalloc_huge(*out, sizeof(HnswSpaceInfo) * max);
			}
			space_to_info(hnsw_page_space(index, page, blkno, off), blkno, off, &(*out)[n++]);
		}
		blkno = HnswPageGetOpaque(page)->next;
		UnlockReleaseBuffer(buf);
		if (++pages > 1000000)
			hnsw_corrupt(index, blkno, "the space directory chain has a cycle");
	}
	return n;
}
