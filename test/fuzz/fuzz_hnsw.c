/*-------------------------------------------------------------------------
 *
 * fuzz_hnsw.c
 *	  libFuzzer driver: feeds fuzzed index pages to engram_hnsw's own
 *	  page-reading code (src/ compiled unchanged, backend replaced by
 *	  pg_stubs.c) through the entry points the server uses.  See
 *	  test/fuzz/README.md.
 *
 * Input: a 32-byte control header, then 1..16 pages of BLCKSZ bytes (the
 * index's blocks 0..n-1; block 0 is the meta page).
 *
 *	  byte 0		operations (bit mask, see FZ_OP_*)
 *	  byte 1		level of an inserted element (pg_prng_double() = b / 256)
 *	  byte 2		engram_hnsw.ef_search = b % 64 + 1
 *	  byte 3		query vector seed
 *	  bytes 4-7		OID of the index (little-endian; pages carry it)
 *	  byte 8		dimension of the vector when the meta page has none
 *	  byte 9		VACUUM: a heap TID is dead if offset % (b % 6 + 1) == 0
 *	  bytes 10-13	space key (int4) for inserts and the space qual
 *	  byte 14		rows fetched per scan = b % 64 + 1
 *	  byte 15		free space map: empty if 0, else a (maybe stale) entry
 *					for block (b - 1) % (pages + 2)
 *	  byte 16		bit 0: fastupdate (inserts go to the pending list);
 *					bit 1: old XIDs not yet removable (no page recycling);
 *					bit 2: memory spaces always searched as graphs (else
 *					those listed on up to 32 blocks are read whole)
 *	  byte 17		MyBackendId = b % 16 + 1 (an insert's stripe)
 *	  byte 18		pending list limit = (b % 8) * 8 kB (0: every pending
 *					insert is over it and merges)
 *	  19-31			reserved
 *
 * Every input first reads the meta page (hnsw_read_meta) and walks every
 * page with the per-page and per-tuple checks (hnsw_pass_page,
 * hnsw_check_page, hnsw_page_element, hnsw_page_neighbors,
 * hnsw_page_space, hnsw_page_pending), lists and reads the space directory (hnsw_space_list,
 * hnsw_space_read); then, as byte 0 says: an ordered index scan
 * (ambeginscan/amrescan/amgettuple: graph search through the page graph,
 * following every link read from the pages), the same with a space qual
 * (directory lookup through the per-backend cache), a NULL-query scan (page
 * order), an insert (aminsert, twice; into the graph, or with fastupdate
 * into the pending list, merging it when over the limit), a merge of the
 * pending list (hnsw_merge_pending, as engram_hnsw_merge_pending() does),
 * VACUUM (ambulkdelete + amvacuumcleanup: pending merge, TID removal, list
 * repair, page recycling, reconnect), and an ordered scan again after a
 * write.
 *
 * Each of these runs inside PG_TRY and must either return normally, with
 * every buffer pin and lock released, or raise ERROR with SQLSTATE XX001
 * (data corrupted) or XX002 (index corrupted).  Also allowed: 0A000 for the
 * meta page's format version (by design: "REINDEX the index").  Anything
 * else is a finding (abort(), libFuzzer saves the input): another SQLSTATE
 * (XX000 internal error, 53200 out of memory, ...), FATAL/PANIC, a failed
 * Assert, a buffer pin/lock error, an ASan/UBSan report, a timeout.
 *
 * FUZZ_SKIP (environment): stages to leave out, e.g. "fullscan vacuum",
 * to keep fuzzing past a known finding until it is fixed.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <stdio.h>
#include <stdlib.h>

#include "access/genam.h"
#include "access/relscan.h"
#include "access/skey.h"
#include "storage/backendid.h"
#include "utils/memutils.h"

#include "engram_hnsw.h"
#include "pg_stubs.h"

#undef fprintf
#undef printf

#define FZ_HEADER			32
#define FZ_MAX_INPUT_PAGES	16

#define FZ_OP_SCAN			(1 << 0)
#define FZ_OP_FULLSCAN		(1 << 1)
#define FZ_OP_INSERT		(1 << 2)
#define FZ_OP_VACUUM		(1 << 3)
#define FZ_OP_SPACE_QUAL	(1 << 4)
#define FZ_OP_MERGE			(1 << 5)

typedef struct FzRun
{
	Relation	rel;
	uint8		ops;
	int			ef;
	int			maxrows;
	int			deadmod;
	int32		spacekey;
	HnswMetaInfo meta;
	FzVector   *query;
	FzVector   *query2;
} FzRun;

static const char *fz_skip = NULL;

static uint32
get_u32(const uint8 *p)
{
	return (uint32) p[0] | ((uint32) p[1] << 8) | ((uint32) p[2] << 16) | ((uint32) p[3] << 24);
}

/* PG_RE_THROW is never used here; PG_END_TRY references it */
void
pg_re_throw(void)
{
	fz_finding("pg_re_throw");
}

static const char *
sqlstate(int code)
{
	static char buf[6];

	for (int i = 0; i < 5; i++)
	{
		buf[i] = PGUNSIXBIT(code);
		code >>= 6;
	}
	buf[5] = '\0';
	return buf;
}

/* an ERROR ended a stage: is its SQLSTATE one a corrupted page may give? */
static void
check_error(const char *stage)
{
	FzError    *e = &fz_last_error;

	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "%s: ERROR %s: %s [%s] (%s:%d)\n", stage, sqlstate(e->sqlerrcode),
				e->message, e->detail, e->filename, e->lineno);
	if (e->sqlerrcode == ERRCODE_DATA_CORRUPTED)
		fz_stats.errors_xx001++;
	else if (e->sqlerrcode == ERRCODE_INDEX_CORRUPTED)
		fz_stats.errors_xx002++;
	else if (e->sqlerrcode == ERRCODE_FEATURE_NOT_SUPPORTED &&
			 strstr(e->message, "has page format") != NULL)
		fz_stats.errors_other_allowed++;
	else if (e->sqlerrcode == FZ_ERRCODE_HARNESS_LIMIT)
		fz_stats.harness_limit++;
	else
		fz_finding("%s: ERROR with SQLSTATE %s (only XX001/XX002 are expected): %s [%s] "
				   "at %s:%d (%s)", stage, sqlstate(e->sqlerrcode), e->message, e->detail,
				   e->filename, e->lineno, e->funcname);
}

typedef void (*FzStageFn) (FzRun *r);

static bool
run_stage(const char *name, FzStageFn fn, FzRun *r, int maxlocks)
{
	MemoryContext stagecxt;
	MemoryContext oldcxt = CurrentMemoryContext;
	volatile bool ok = true;

	if (fz_skip && strstr(fz_skip, name))
		return true;
	stagecxt = AllocSetContextCreateInternal(fz_input_context, name, ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(stagecxt);
	fz_max_locks = maxlocks;
	fz_stats.stages++;
	PG_TRY();
	{
		fn(r);
		fz_check_no_buffers(name);
		fz_stats.stages_ok++;
	}
	PG_CATCH();
	{
		ok = false;
		check_error(name);
		/* what AbortTransaction does: drop pins and locks */
		fz_release_all_buffers();
	}
	PG_END_TRY();
	CurrentMemoryContext = oldcxt;
	MemoryContextDelete(stagecxt);
	return ok;
}

/* ---------------------------------------------------------------- stages */

static void
stage_meta(FzRun *r)
{
	hnsw_read_meta(r->rel, &r->meta);
}

/*
 * Format 3: follow the element's vector chunks (the page it is on is
 * locked: vector pages after graph pages, as the server does).
 */
static void
read_chunks(FzRun *r, HnswElementTuple etup, BlockNumber blkno)
{
	float	   *vec = palloc(sizeof(float) * r->meta.dims);

	hnsw_read_vector(r->rel, HnswElementVectorTid(etup), r->meta.dims, blkno, vec);
	pfree(vec);
}

/* every page and every tuple through the checked accessors */
static void
stage_pages(FzRun *r)
{
	BlockNumber nblocks = RelationGetNumberOfBlocks(r->rel);

	for (BlockNumber blkno = 1; blkno < nblocks; blkno++)
	{
		Buffer		buf;
		Page		page = hnsw_pass_page(r->rel, blkno, BUFFER_LOCK_SHARE, NULL, &buf);

		if (page == NULL)
			continue;
		for (OffsetNumber off = FirstOffsetNumber; off <= PageGetMaxOffsetNumber(page); off++)
		{
			ItemId		iid = PageGetItemId(page, off);
			uint8		type = 0;
			uint8		level = 0;

			if (!ItemIdIsNormal(iid))
				continue;
			/* peek at the type only where it is inside the page */
			if (ItemIdGetOffset(iid) + 2 <= BLCKSZ)
			{
				type = ((uint8 *) page)[ItemIdGetOffset(iid)];
				level = ((uint8 *) page)[ItemIdGetOffset(iid) + 1];
			}
			if (type == HNSW_TUPLE_NEIGHBORS)
				(void) hnsw_page_neighbors(r->rel, page, blkno, off, r->meta.m, level);
			else if (type == HNSW_TUPLE_SPACE)
				(void) hnsw_page_space(r->rel, page, blkno, off);
			else if (type == HNSW_TUPLE_PENDING)
				(void) hnsw_page_pending(r->rel, page, blkno, off);
			else if (type == HNSW_TUPLE_VECTOR)
				(void) hnsw_page_chunk(r->rel, page, blkno, off, r->meta.dims);
			else
			{
				HnswElementTuple etup = hnsw_page_element(r->rel, page, blkno, off,
														  &r->meta);

				if (ItemPointerGetBlockNumber(&etup->neighbortid) == blkno)
					(void) hnsw_page_neighbors(r->rel, page, blkno,
											   ItemPointerGetOffsetNumber(&etup->neighbortid),
											   r->meta.m, etup->level);
				if (r->meta.version >= 3 && r->meta.dims > 0)
					read_chunks(r, etup, blkno);
			}
		}
		UnlockReleaseBuffer(buf);
	}
}

static void
stage_spaces(FzRun *r)
{
	HnswSpaceInfo *spaces;
	int			n;

	if (r->meta.nspacekeys == 0)
		return;
	n = hnsw_space_list(r->rel, &spaces);
	for (int i = 0; i < n; i++)
	{
		HnswSpaceInfo info;

		(void) hnsw_space_read(r->rel, &spaces[i].tid, &info);
	}
}

static void
do_scan(FzRun *r, bool ordered, bool qual)
{
	ScanKeyData key;
	ScanKeyData orderby;
	int			nkeys = qual ? 1 : 0;
	IndexScanDesc scan;
	int			nrows;

	memset(&key, 0, sizeof(key));
	key.sk_attno = 1;
	key.sk_strategy = HNSW_SPACE_EQ_STRATEGY;
	key.sk_argument = Int32GetDatum(r->spacekey);
	memset(&orderby, 0, sizeof(orderby));
	orderby.sk_attno = hnsw_vector_attno(r->rel);
	orderby.sk_strategy = HNSW_DISTANCE_STRATEGY;
	if (ordered)
		orderby.sk_argument = PointerGetDatum(r->query);
	else
		orderby.sk_flags = SK_ISNULL;

	hnsw_ef_search = r->ef;
	scan = hnsw_beginscan(r->rel, nkeys, 1);
	hnsw_rescan(scan, qual ? &key : NULL, nkeys, &orderby, 1);
	for (nrows = 0; nrows < r->maxrows; nrows++)
	{
		if (!hnsw_gettuple(scan, ForwardScanDirection))
			break;
		/*
		 * Heap TIDs are not checked by the index (the heap fetch rejects a
		 * bogus TID: no row), so an invalid one is only counted.
		 */
		if (!ItemPointerIsValid(&scan->xs_heaptid))
			fz_stats.invalid_heap_tids++;
	}
	hnsw_endscan(scan);
	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "%s scan%s: %d row(s)\n", ordered ? "ordered" : "NULL-query",
				qual ? " with a space qual" : "", nrows);
}

static void
stage_scan(FzRun *r)
{
	do_scan(r, true, false);
}

static void
stage_qualscan(FzRun *r)
{
	if (r->meta.nspacekeys > 0)
		do_scan(r, true, true);
}

static void
stage_fullscan(FzRun *r)
{
	do_scan(r, false, false);
}

static void
stage_insert(FzRun *r)
{
	Datum		values[2];
	bool		isnull[2] = {false, false};
	ItemPointerData htid;
	int			attno = hnsw_vector_attno(r->rel);

	values[0] = Int32GetDatum(r->spacekey);
	values[attno - 1] = PointerGetDatum(r->query);
	ItemPointerSet(&htid, 4000, 1);
	hnsw_insert(r->rel, values, isnull, &htid, NULL, UNIQUE_CHECK_NO, false, NULL);
	values[attno - 1] = PointerGetDatum(r->query2);
	ItemPointerSet(&htid, 4000, 2);
	hnsw_insert(r->rel, values, isnull, &htid, NULL, UNIQUE_CHECK_NO, false, NULL);
}

static bool
dead_tid(ItemPointer itemptr, void *state)
{
	FzRun	   *r = (FzRun *) state;

	return ItemPointerGetOffsetNumberNoCheck(itemptr) % r->deadmod == 0;
}

static void
stage_merge(FzRun *r)
{
	int64		merged = hnsw_merge_pending(r->rel, true);

	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "merge: " INT64_FORMAT " row(s)\n", merged);
}

static void
stage_vacuum(FzRun *r)
{
	IndexVacuumInfo info;
	IndexBulkDeleteResult *stats;

	memset(&info, 0, sizeof(info));
	info.index = r->rel;
	info.analyze_only = false;
	info.report_progress = false;
	info.estimated_count = true;
	info.message_level = DEBUG2;
	info.num_heap_tuples = 1000;
	info.strategy = NULL;
	stats = hnsw_bulkdelete(&info, NULL, dead_tid, r);
	stats = hnsw_vacuumcleanup(&info, stats);
	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "vacuum: %.0f tuples removed, %.0f left\n",
				stats->tuples_removed, stats->num_index_tuples);
}

/* ---------------------------------------------------------------- driver */

static FzVector *
make_vector(int dims, int seed)
{
	FzVector   *v = palloc(offsetof(FzVector, v) + sizeof(float) * Max(dims, 1));

	v->dims = dims;
	for (int i = 0; i < dims; i++)
		v->v[i] = seed == 0 ? 0.0f :
			(float) ((int) ((seed * 131 + i * 71) % 29) - 14) / 7.0f;
	return v;
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FzRun		r;
	int			npages;
	int			nkeyatts;
	const uint8 *pages = data + FZ_HEADER;
	int			dims;

	if (size < FZ_HEADER + BLCKSZ)
		return 0;
	npages = Min((size - FZ_HEADER) / BLCKSZ, FZ_MAX_INPUT_PAGES);
	fz_stats.inputs++;
	if (fz_skip == NULL)
		fz_skip = getenv("FUZZ_SKIP") ? getenv("FUZZ_SKIP") : "";

	memset(&r, 0, sizeof(r));
	r.ops = data[0];
	fz_prng_value = data[1] / 256.0;
	r.ef = data[2] % 64 + 1;
	r.deadmod = data[9] % 6 + 1;
	r.spacekey = (int32) get_u32(data + 10);
	r.maxrows = data[14] % 64 + 1;
	fz_fsm_reset(data[15] == 0 ? InvalidBlockNumber :
				 (BlockNumber) ((data[15] - 1) % (npages + 2)));
	fz_fastupdate = (data[16] & 1) != 0;
	fz_xids_removable = (data[16] & 2) == 0;
	hnsw_space_read_pages = (data[16] & 4) ? 0 : HNSW_SPACE_MAX_BLOCKS;
	MyBackendId = data[17] % 16 + 1;
	fz_pending_limit = (int64) (data[18] % 8) * 8192;

	/*
	 * The catalog's key columns: a space key column exactly when the meta
	 * page says so (the catalog is not what is being fuzzed).
	 */
	{
		const HnswMetaPageData *m = (const HnswMetaPageData *)
			(pages + MAXALIGN(SizeOfPageHeaderData));

		nkeyatts = (m->nspacekeys == 1) ? 2 : 1;
	}
	r.rel = fz_relation(get_u32(data + 4), nkeyatts);
	fz_load_pages(pages, npages);
	fz_input_context = AllocSetContextCreate(TopMemoryContext, "fuzz input",
											 ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(fz_input_context);

	if (run_stage("meta", stage_meta, &r, 1))
	{
		dims = r.meta.dims > 0 ? r.meta.dims : data[8] % 16 + 1;
		r.query = make_vector(dims, data[3]);
		r.query2 = make_vector(dims, data[3] + 1);

		/* 2: an element's page and, in format 3, one of its vector's chunk pages */
		run_stage("pages", stage_pages, &r, 2);
		run_stage("spaces", stage_spaces, &r, 1);
		if (r.ops & FZ_OP_SCAN)
			run_stage("scan", stage_scan, &r, 1);
		if (r.ops & FZ_OP_SPACE_QUAL)
			run_stage("qualscan", stage_qualscan, &r, 1);
		if (r.ops & FZ_OP_FULLSCAN)
			run_stage("fullscan", stage_fullscan, &r, 1);
		if (r.ops & FZ_OP_INSERT)
			run_stage("insert", stage_insert, &r, 3);
		if (r.ops & FZ_OP_MERGE)
			run_stage("merge", stage_merge, &r, 3);
		if (r.ops & FZ_OP_VACUUM)
			run_stage("vacuum", stage_vacuum, &r, 3);
		if (r.ops & (FZ_OP_INSERT | FZ_OP_MERGE | FZ_OP_VACUUM))
			run_stage("rescan", stage_scan, &r, 1);
	}

	fz_end_input();
	return 0;
}

/* FUZZ_STATS=1: counters at exit */
static void
print_stats(void)
{
	if (!getenv("FUZZ_STATS"))
		return;
	fprintf(stderr,
			"fuzz stats: inputs=%llu stages=%llu ok=%llu XX001=%llu XX002=%llu "
			"other-allowed=%llu read-past-end=%llu invalid-page=%llu pages-added=%llu "
			"harness-limit=%llu invalid-heap-tids=%llu\n",
			(unsigned long long) fz_stats.inputs, (unsigned long long) fz_stats.stages,
			(unsigned long long) fz_stats.stages_ok,
			(unsigned long long) fz_stats.errors_xx001,
			(unsigned long long) fz_stats.errors_xx002,
			(unsigned long long) fz_stats.errors_other_allowed,
			(unsigned long long) fz_stats.read_past_end,
			(unsigned long long) fz_stats.bad_page_header,
			(unsigned long long) fz_stats.pages_added,
			(unsigned long long) fz_stats.harness_limit,
			(unsigned long long) fz_stats.invalid_heap_tids);
}

int			LLVMFuzzerInitialize(int *argc, char ***argv);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	atexit(print_stats);
	return 0;
}
