/*-------------------------------------------------------------------------
 *
 * pg_stubs.c
 *	  Stand-ins for the PostgreSQL backend symbols that the extension's
 *	  page-reading code (src/hnsw_pages.c, hnsw_place.c, hnsw_veccache.c,
 *	  hnsw_pagegraph.c, hnsw_graph.c, hnsw_space.c, hnsw_distance.c,
 *	  hnsw_scan.c, hnsw_insert.c, hnsw_vacuum.c, compiled unchanged)
 *	  references, so that it can run inside a libFuzzer process
 *	  without a server.  Written for this harness; see test/fuzz/README.md.
 *
 * Sections (each symbol says what it stands for and how it differs):
 *	  1. findings and error reporting (ereport/elog -> siglongjmp)
 *	  2. memory contexts (palloc -> malloc, one allocation per chunk, so
 *		 AddressSanitizer sees the exact bounds of every palloc'd object)
 *	  3. the fake relation and buffer manager (one malloc'd page per block,
 *		 pins and content locks tracked and checked)
 *	  4. page functions of bufpage.c, GenericXLog (page images, no WAL)
 *	  5. hash tables (dynahash stand-in, emptied per input)
 *	  6. extension functions of files not linked (hnsw_options.c, hnsw_util.c)
 *	  7. symbols that must never be reached by this harness (abort)
 *
 * Adding a symbol: when src/ starts calling a new backend function, the
 * link fails with "undefined reference to `X'".  Add X to the section that
 * fits; if the harness never reaches it, add it to section 7 with
 * FZ_UNREACHABLE.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>

#include "access/generic_xlog.h"
#include "access/genam.h"
#include "access/relscan.h"
#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "access/xloginsert.h"
#include "postmaster/autovacuum.h"
#include "storage/buf_internals.h"
#include "storage/indexfsm.h"
#include "utils/snapmgr.h"
#include "common/pg_prng.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/bufpage.h"
#include "storage/itemptr.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "storage/smgr.h"
#include "utils/array.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "engram_hnsw.h"
#include "pg_stubs.h"

/* port.h maps these to PostgreSQL's own printf; libc's is enough here */
#undef vsnprintf
#undef snprintf
#undef fprintf
#undef vfprintf
#undef qsort

FzError		fz_last_error;
FzStats		fz_stats;
int			fz_max_locks = 1;
double		fz_prng_value = 0.5;
int			fz_nkeyatts = 1;
bool		fz_fastupdate = false;
int64		fz_pending_limit = 64 * 1024;
bool		fz_xids_removable = true;

/* ================================================================
 * 1. Findings and error reporting
 * ================================================================
 */
void
fz_finding(const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "\n==== engram_hnsw fuzz FINDING: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	fflush(stderr);
	abort();
}

/* backend globals the error machinery and CHECK_FOR_INTERRUPTS use */
sigjmp_buf *PG_exception_stack = NULL;
ErrorContextCallback *error_context_stack = NULL;
volatile sig_atomic_t InterruptPending = false;

void
ProcessInterrupts(void)
{
	/* InterruptPending is never set: nothing to do */
}

static FzError fz_cur;

/*
 * errstart: DEBUG..NOTICE are dropped (the extension's DEBUG1 messages);
 * WARNING and above are collected.
 */
bool
errstart(int elevel, const char *domain)
{
	if (elevel < WARNING)
		return false;
	memset(&fz_cur, 0, sizeof(fz_cur));
	fz_cur.elevel = elevel;
	fz_cur.sqlerrcode = elevel >= ERROR ? ERRCODE_INTERNAL_ERROR : ERRCODE_WARNING;
	return true;
}

bool
errstart_cold(int elevel, const char *domain)
{
	return errstart(elevel, domain);
}

/*
 * errfinish: an ERROR jumps to the innermost PG_TRY of the driver, as the
 * backend's does (the driver then cleans up like AbortTransaction would);
 * FATAL and PANIC are findings.
 */
void
errfinish(const char *filename, int lineno, const char *funcname)
{
	fz_cur.filename = filename;
	fz_cur.lineno = lineno;
	fz_cur.funcname = funcname;
	if (fz_cur.elevel < ERROR)
	{
		if (getenv("FUZZ_VERBOSE"))
			fprintf(stderr, "WARNING: %s\n", fz_cur.message);
		return;
	}
	if (fz_cur.elevel >= FATAL)
		fz_finding("%s at %s:%d (%s): %s",
				   fz_cur.elevel == FATAL ? "FATAL" : "PANIC",
				   filename, lineno, funcname, fz_cur.message);
	fz_last_error = fz_cur;
	if (PG_exception_stack == NULL)
		fz_finding("ERROR outside of any PG_TRY: %s", fz_cur.message);
	siglongjmp(*PG_exception_stack, 1);
}

int
errcode(int sqlerrcode)
{
	fz_cur.sqlerrcode = sqlerrcode;
	return 0;
}

#define FZ_FORMAT(buf, fmt) \
	do { \
		va_list		ap_; \
		va_start(ap_, fmt); \
		vsnprintf((buf), sizeof(buf), (fmt), ap_); \
		va_end(ap_); \
	} while (0)

int
errmsg(const char *fmt,...)
{
	FZ_FORMAT(fz_cur.message, fmt);
	return 0;
}

int
errmsg_internal(const char *fmt,...)
{
	FZ_FORMAT(fz_cur.message, fmt);
	return 0;
}

int
errmsg_plural(const char *fmt_singular, const char *fmt_plural, unsigned long n,...)
{
	va_list		ap;

	va_start(ap, n);
	vsnprintf(fz_cur.message, sizeof(fz_cur.message), n == 1 ? fmt_singular : fmt_plural, ap);
	va_end(ap);
	return 0;
}

int
errdetail(const char *fmt,...)
{
	FZ_FORMAT(fz_cur.detail, fmt);
	return 0;
}

int
errdetail_internal(const char *fmt,...)
{
	FZ_FORMAT(fz_cur.detail, fmt);
	return 0;
}

int
errhint(const char *fmt,...)
{
	return 0;
}

/* a failed Assert() (src/ is compiled with USE_ASSERT_CHECKING) */
void
ExceptionalCondition(const char *conditionName, const char *errorType,
					 const char *fileName, int lineNumber)
{
	fz_finding("%s(\"%s\") at %s:%d", errorType, conditionName, fileName, lineNumber);
}

/* ================================================================
 * 2. Memory contexts
 *
 * Every chunk is its own malloc() (header + exactly the requested size),
 * linked into its context, so a context reset frees it and ASan reports an
 * access one byte past the requested size.  The real allocator rounds up
 * to a power of two and packs chunks into blocks; overruns inside that
 * slack would go unnoticed there and are findings here.
 *
 * Live memory is capped (FUZZ_MEM_LIMIT_MB, default 256): an input of at
 * most 16 pages has no business allocating more, so exceeding the cap is
 * raised as ERRCODE_OUT_OF_MEMORY, which the driver treats as a finding.
 * ================================================================
 */
typedef struct FzContext FzContext;

typedef struct FzChunk
{
	struct FzChunk *prev;
	struct FzChunk *next;
	FzContext  *cxt;
	Size		size;
	uint64		magic;
	uint64		pad;			/* keep the user pointer 16-byte aligned */
} FzChunk;

#define FZ_CHUNK_MAGIC	UINT64CONST(0x656e6772616d4658)

struct FzContext
{
	NodeTag		type;			/* so MemoryContextIsValid() holds */
	const char *name;
	FzContext  *parent;
	FzContext  *firstchild;
	FzContext  *nextsibling;
	FzChunk		chunks;			/* list head */
};

static FzContext fz_top = {T_AllocSetContext, "TopMemoryContext"};
MemoryContext TopMemoryContext = NULL;
MemoryContext CurrentMemoryContext = NULL;
MemoryContext fz_input_context = NULL;
static Size fz_live_bytes = 0;
static Size fz_mem_limit = 0;

static void
fz_context_init(FzContext *c, const char *name, FzContext *parent)
{
	c->type = T_AllocSetContext;
	c->name = name;
	c->parent = parent;
	c->firstchild = NULL;
	c->chunks.prev = c->chunks.next = &c->chunks;
	if (parent)
	{
		c->nextsibling = parent->firstchild;
		parent->firstchild = c;
	}
	else
		c->nextsibling = NULL;
}

static void
fz_memory_init(void)
{
	if (TopMemoryContext != NULL)
		return;
	fz_context_init(&fz_top, "TopMemoryContext", NULL);
	TopMemoryContext = (MemoryContext) &fz_top;
	CurrentMemoryContext = TopMemoryContext;
	fz_mem_limit = (Size) (getenv("FUZZ_MEM_LIMIT_MB") ? atoi(getenv("FUZZ_MEM_LIMIT_MB")) : 256)
		* 1024 * 1024;
}

static void *
fz_alloc(MemoryContext context, Size size, int flags)
{
	FzContext  *c = (FzContext *) context;
	FzChunk    *ch;

	if (c == NULL)
		fz_finding("palloc without a memory context");
	if (!(flags & MCXT_ALLOC_HUGE) ? !AllocSizeIsValid(size) : !AllocHugeSizeIsValid(size))
		elog(ERROR, "invalid memory alloc request size %zu", size);
	if (fz_live_bytes + size > fz_mem_limit)
	{
		if (flags & MCXT_ALLOC_NO_OOM)
			return NULL;
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory (fuzz cap: %zu bytes live, %zu more requested)",
						fz_live_bytes, size)));
	}
	ch = malloc(sizeof(FzChunk) + size);
	if (ch == NULL)
		fz_finding("malloc(%zu) failed", size);
	ch->cxt = c;
	ch->size = size;
	ch->magic = FZ_CHUNK_MAGIC;
	ch->next = c->chunks.next;
	ch->prev = &c->chunks;
	c->chunks.next->prev = ch;
	c->chunks.next = ch;
	fz_live_bytes += size;
	if (flags & MCXT_ALLOC_ZERO)
		memset(ch + 1, 0, size);
	return ch + 1;
}

static FzChunk *
fz_chunk(void *pointer, const char *what)
{
	FzChunk    *ch;

	if (pointer == NULL)
		fz_finding("%s(NULL)", what);
	ch = ((FzChunk *) pointer) - 1;
	if (ch->magic != FZ_CHUNK_MAGIC)
		fz_finding("%s of a pointer palloc did not return", what);
	return ch;
}

static void
fz_free_chunk(FzChunk *ch)
{
	ch->prev->next = ch->next;
	ch->next->prev = ch->prev;
	ch->magic = 0;
	fz_live_bytes -= ch->size;
	free(ch);
}

void *
MemoryContextAllocExtended(MemoryContext context, Size size, int flags)
{
	return fz_alloc(context, size, flags);
}

void *
MemoryContextAlloc(MemoryContext context, Size size)
{
	return fz_alloc(context, size, 0);
}

void *
MemoryContextAllocZero(MemoryContext context, Size size)
{
	return fz_alloc(context, size, MCXT_ALLOC_ZERO);
}

void *
MemoryContextAllocHuge(MemoryContext context, Size size)
{
	return fz_alloc(context, size, MCXT_ALLOC_HUGE);
}

void *
palloc(Size size)
{
	return fz_alloc(CurrentMemoryContext, size, 0);
}

void *
palloc0(Size size)
{
	return fz_alloc(CurrentMemoryContext, size, MCXT_ALLOC_ZERO);
}

void *
palloc_extended(Size size, int flags)
{
	return fz_alloc(CurrentMemoryContext, size, flags);
}

static void *
fz_realloc(void *pointer, Size size, int flags, const char *what)
{
	FzChunk    *ch = fz_chunk(pointer, what);
	void	   *n = fz_alloc((MemoryContext) ch->cxt, size, flags);

	memcpy(n, pointer, Min(size, ch->size));
	fz_free_chunk(ch);
	return n;
}

void *
repalloc(void *pointer, Size size)
{
	return fz_realloc(pointer, size, 0, "repalloc");
}

void *
repalloc_huge(void *pointer, Size size)
{
	return fz_realloc(pointer, size, MCXT_ALLOC_HUGE, "repalloc_huge");
}

void
pfree(void *pointer)
{
	fz_free_chunk(fz_chunk(pointer, "pfree"));
}

char *
pstrdup(const char *in)
{
	Size		len = strlen(in) + 1;
	char	   *out = palloc(len);

	memcpy(out, in, len);
	return out;
}

char *
psprintf(const char *fmt,...)
{
	va_list		ap;
	int			len;
	char	   *out;

	va_start(ap, fmt);
	len = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	out = palloc(len + 1);
	va_start(ap, fmt);
	vsnprintf(out, len + 1, fmt, ap);
	va_end(ap);
	return out;
}

MemoryContext
AllocSetContextCreateInternal(MemoryContext parent, const char *name,
							  Size minContextSize, Size initBlockSize, Size maxBlockSize)
{
	FzContext  *c = malloc(sizeof(FzContext));

	if (parent == NULL)
		fz_finding("AllocSetContextCreate without a parent");
	fz_context_init(c, name, (FzContext *) parent);
	return (MemoryContext) c;
}

static void fz_context_delete(FzContext *c);

static void
fz_context_reset(FzContext *c)
{
	while (c->firstchild)
		fz_context_delete(c->firstchild);
	while (c->chunks.next != &c->chunks)
		fz_free_chunk(c->chunks.next);
}

static void
fz_context_delete(FzContext *c)
{
	FzContext **p;

	fz_context_reset(c);
	if (c == &fz_top)
		return;
	for (p = &c->parent->firstchild; *p != c; p = &(*p)->nextsibling)
		;
	*p = c->nextsibling;
	if ((MemoryContext) c == CurrentMemoryContext)
		CurrentMemoryContext = (MemoryContext) c->parent;
	free(c);
}

void
MemoryContextReset(MemoryContext context)
{
	fz_context_reset((FzContext *) context);
}

void
MemoryContextDelete(MemoryContext context)
{
	if (context == CurrentMemoryContext)
		fz_finding("MemoryContextDelete of the current memory context \"%s\"",
				   ((FzContext *) context)->name);
	fz_context_delete((FzContext *) context);
}

/* ================================================================
 * 3. The fake relation and buffer manager
 *
 * Block b of the fake index is local buffer -(b + 1): BufferGetPage() is a
 * macro reading LocalBufferBlockPointers[], so every page can be its own
 * malloc(BLCKSZ) and an access past the end of a page is an ASan report
 * (in a server, shared buffers are contiguous and such a read silently
 * returns the next buffer's bytes).
 *
 * Like the real ReadBuffer, a block read "from disk" (an input page) is
 * checked the way PageIsVerifiedExtended() does (sane pd_lower/pd_upper/
 * pd_special, known flag bits, an all-zero page if pd_upper is 0) the first
 * time it is read, raising XX001 "invalid page" otherwise.  A block beyond
 * the end raises what md.c raises: XX001 (short read) within the last 1 GB
 * segment, 58P01 (cannot open the segment file) beyond it, so the code must
 * check a block number read from a page before ReadBuffer.  Checksums are
 * not modelled.
 *
 * Checked: pins and locks pair up, no lock without a pin, no self-deadlock
 * (exclusive lock on a buffer we already lock), at most fz_max_locks content
 * locks at a time, the meta page is locked alone (src/README.md, rule 4),
 * GenericXLog registration only under an exclusive lock.
 * ================================================================
 */
static Block fz_pages[FZ_MAX_BLOCKS];
Block	   *LocalBufferBlockPointers = fz_pages;
int			NLocBuffer = FZ_MAX_BLOCKS;
int			NBuffers = 0;
char	   *BufferBlocks = NULL;

/*
 * Every buffer here is local (negative), and the extension's prefetch hints
 * (page_prefetch(), page_peek_shared()) only use shared buffers, so nothing
 * ever indexes this.
 */
BufferDescPadded *BufferDescriptors = NULL;

static BlockNumber fz_nblocks = 0;
static int	fz_pins[FZ_MAX_BLOCKS];
static int	fz_locks[FZ_MAX_BLOCKS];	/* >0 shared holders, -1 exclusive */
static bool fz_verified[FZ_MAX_BLOCKS];
static int	fz_nlocked = 0;

/* utils/adt/name.c */
void
namestrcpy(Name name, const char *str)
{
	memset(NameStr(*name), 0, NAMEDATALEN);
	memcpy(NameStr(*name), str, Min(strlen(str), NAMEDATALEN - 1));
}

static RelationData fz_rel;
static FormData_pg_class fz_relform;
static FormData_pg_index fz_indexform;
static TupleDesc fz_tupdesc;

Relation
fz_relation(Oid relid, int nkeyatts)
{
	fz_memory_init();
	memset(&fz_rel, 0, sizeof(fz_rel));
	memset(&fz_relform, 0, sizeof(fz_relform));
	memset(&fz_indexform, 0, sizeof(fz_indexform));
	namestrcpy(&fz_relform.relname, "fuzz_idx");
	fz_relform.relkind = RELKIND_INDEX;
	fz_relform.relpersistence = RELPERSISTENCE_PERMANENT;
	fz_rel.rd_rel = &fz_relform;
	fz_rel.rd_id = relid;
	fz_rel.rd_node.relNode = relid;
	fz_rel.rd_backend = InvalidBackendId;
	fz_indexform.indnatts = nkeyatts;
	fz_indexform.indnkeyatts = nkeyatts;
	fz_rel.rd_index = &fz_indexform;
	fz_nkeyatts = nkeyatts;

	/* the key columns: an int4 space key (if any), then the real[] vector */
	if (fz_tupdesc == NULL)
	{
		fz_tupdesc = malloc(offsetof(struct TupleDescData, attrs) +
							2 * sizeof(FormData_pg_attribute));
		memset(fz_tupdesc, 0, offsetof(struct TupleDescData, attrs) +
			   2 * sizeof(FormData_pg_attribute));
	}
	fz_tupdesc->natts = nkeyatts;
	fz_tupdesc->tdrefcount = -1;
	for (int i = 0; i < nkeyatts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(fz_tupdesc, i);
		bool		vector = (i == nkeyatts - 1);

		memset(att, 0, sizeof(FormData_pg_attribute));
		att->attnum = i + 1;
		att->atttypid = vector ? FLOAT4ARRAYOID : INT4OID;
		att->attlen = vector ? -1 : 4;
		att->attbyval = !vector;
		att->attalign = vector ? TYPALIGN_INT : TYPALIGN_INT;
		namestrcpy(&att->attname, vector ? "embedding" : "space");
	}
	fz_rel.rd_att = fz_tupdesc;
	return &fz_rel;
}

void
fz_load_pages(const uint8 *data, int npages)
{
	Assert(npages <= FZ_MAX_BLOCKS);
	for (int i = 0; i < npages; i++)
	{
		fz_pages[i] = malloc(BLCKSZ);
		memcpy(fz_pages[i], data + (Size) i * BLCKSZ, BLCKSZ);
		fz_verified[i] = false;
		fz_pins[i] = 0;
		fz_locks[i] = 0;
	}
	fz_nblocks = npages;
	fz_nlocked = 0;
}

void
fz_release_all_buffers(void)
{
	for (BlockNumber b = 0; b < fz_nblocks; b++)
	{
		fz_pins[b] = 0;
		fz_locks[b] = 0;
	}
	fz_nlocked = 0;
}

void
fz_check_no_buffers(const char *stage)
{
	for (BlockNumber b = 0; b < fz_nblocks; b++)
	{
		if (fz_locks[b] != 0)
			fz_finding("%s returned with block %u still locked", stage, b);
		if (fz_pins[b] != 0)
			fz_finding("%s returned with block %u still pinned (%d pins)", stage, b, fz_pins[b]);
	}
}

void
fz_end_input(void)
{
	for (BlockNumber b = 0; b < fz_nblocks; b++)
	{
		free(fz_pages[b]);
		fz_pages[b] = NULL;
	}
	fz_nblocks = 0;
	fz_nlocked = 0;
	if (fz_input_context)
	{
		CurrentMemoryContext = TopMemoryContext;
		MemoryContextDelete(fz_input_context);
		fz_input_context = NULL;
	}
	fz_hash_reset_all();
	if (fz_live_bytes != 0 && fz_top.chunks.next == &fz_top.chunks && fz_top.firstchild == NULL)
		fz_finding("memory accounting is off by %zu bytes", fz_live_bytes);
}

static BlockNumber
fz_block(Buffer buffer, const char *what)
{
	BlockNumber b;

	if (buffer >= 0)
		fz_finding("%s of buffer %d, which ReadBuffer never returned", what, buffer);
	b = (BlockNumber) (-buffer - 1);
	if (b >= fz_nblocks)
		fz_finding("%s of buffer %d (block %u), beyond the relation", what, buffer, b);
	if (fz_pins[b] <= 0)
		fz_finding("%s of block %u, which is not pinned", what, b);
	return b;
}

/* the header checks of PageIsVerifiedExtended() (no checksums) */
static bool
fz_page_verifies(Page page)
{
	PageHeader	p = (PageHeader) page;

	if (!PageIsNew(page))
		return (p->pd_flags & ~PD_VALID_FLAG_BITS) == 0 &&
			p->pd_lower <= p->pd_upper &&
			p->pd_upper <= p->pd_special &&
			p->pd_special <= BLCKSZ &&
			p->pd_special == MAXALIGN(p->pd_special);
	for (int i = 0; i < BLCKSZ; i++)
		if (((char *) page)[i] != 0)
			return false;
	return true;
}

Buffer
ReadBufferExtended(Relation reln, ForkNumber forkNum, BlockNumber blockNum,
				   ReadBufferMode mode, BufferAccessStrategy strategy)
{
	BlockNumber b = blockNum;

	if (reln != &fz_rel)
		fz_finding("ReadBuffer of an unknown relation");
	if (forkNum != MAIN_FORKNUM)
		fz_finding("ReadBuffer of fork %d: this harness only has the main fork", forkNum);
	if (mode != RBM_NORMAL)
		fz_finding("ReadBuffer mode %d not modelled", mode);
	if (blockNum == P_NEW)
	{
		if (fz_nblocks >= FZ_MAX_BLOCKS)
			ereport(ERROR,
					(errcode(FZ_ERRCODE_HARNESS_LIMIT),
					 errmsg("the fuzz relation is full (%d blocks)", FZ_MAX_BLOCKS)));
		b = fz_nblocks++;
		fz_pages[b] = calloc(1, BLCKSZ);
		fz_verified[b] = true;
		fz_pins[b] = 0;
		fz_locks[b] = 0;
		fz_stats.pages_added++;
	}
	else if (blockNum >= fz_nblocks)
	{
		fz_stats.read_past_end++;

		/*
		 * md.c: a block in a 1 GB segment that does not exist fails to open
		 * that segment file (errcode_for_file_access(): 58P01 for ENOENT);
		 * one in the last segment, past its end, is a short read (XX001).
		 */
		if (blockNum / RELSEG_SIZE > (Max(fz_nblocks, 1) - 1) / RELSEG_SIZE)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FILE),
					 errmsg("could not open file \"base/fuzz.%u\" (target block %u): "
							"previous segment is only %u blocks",
							blockNum / RELSEG_SIZE, blockNum, fz_nblocks)));
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("could not read block %u in file \"base/fuzz\": read only 0 of %d bytes",
						blockNum, BLCKSZ)));
	}
	else if (!fz_verified[b])
	{
		if (!fz_page_verifies(fz_pages[b]))
		{
			fz_stats.bad_page_header++;
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("invalid page in block %u of relation base/fuzz", blockNum)));
		}
		fz_verified[b] = true;
	}
	fz_pins[b]++;
	return -(Buffer) (b + 1);
}

Buffer
ReadBuffer(Relation reln, BlockNumber blockNum)
{
	return ReadBufferExtended(reln, MAIN_FORKNUM, blockNum, RBM_NORMAL, NULL);
}

/*
 * Like the real one: pins the block only if the hint is the buffer that
 * holds it and that buffer is valid, i.e. the block was read (and its
 * header verified) since this input was loaded; else false, and the caller
 * goes through ReadBuffer.
 */
bool
ReadRecentBuffer(RelFileNode rnode, ForkNumber forkNum, BlockNumber blockNum,
				 Buffer recent_buffer)
{
	if (forkNum != MAIN_FORKNUM || blockNum >= fz_nblocks ||
		recent_buffer != -(Buffer) (blockNum + 1) || !fz_verified[blockNum])
		return false;
	fz_pins[blockNum]++;
	return true;
}

BlockNumber
BufferGetBlockNumber(Buffer buffer)
{
	return fz_block(buffer, "BufferGetBlockNumber");
}

BlockNumber
RelationGetNumberOfBlocksInFork(Relation relation, ForkNumber forkNum)
{
	if (relation != &fz_rel)
		fz_finding("RelationGetNumberOfBlocks of an unknown relation");
	return forkNum == MAIN_FORKNUM ? fz_nblocks : 0;
}

/*
 * The fake relation's smgr entry, for RelationGetSmgr().  Its cached size
 * stays unknown, so hnsw_block_exists() always asks
 * RelationGetNumberOfBlocks() above: every block check sees fz_nblocks.
 */
static SMgrRelationData fz_smgr;

SMgrRelation
smgropen(RelFileNode rnode, BackendId backend)
{
	memset(&fz_smgr, 0, sizeof(fz_smgr));
	fz_smgr.smgr_rnode.node = rnode;
	fz_smgr.smgr_rnode.backend = backend;
	for (int i = 0; i <= MAX_FORKNUM; i++)
		fz_smgr.smgr_cached_nblocks[i] = InvalidBlockNumber;
	return &fz_smgr;
}

void
smgrsetowner(SMgrRelation *owner, SMgrRelation reln)
{
	if (reln != &fz_smgr)
		fz_finding("smgrsetowner of an unknown smgr entry");
	reln->smgr_owner = owner;
	*owner = reln;
}

void
LockBuffer(Buffer buffer, int mode)
{
	BlockNumber b = fz_block(buffer, "LockBuffer");

	if (mode == BUFFER_LOCK_UNLOCK)
	{
		if (fz_locks[b] == 0)
			fz_finding("unlock of block %u, which is not locked", b);
		if (fz_locks[b] > 0)
			fz_locks[b]--;
		else
			fz_locks[b] = 0;
		fz_nlocked--;
		return;
	}
	if (fz_locks[b] < 0 || (fz_locks[b] > 0 && mode == BUFFER_LOCK_EXCLUSIVE))
		fz_finding("self-deadlock: %s lock on block %u, which this backend already locks",
				   mode == BUFFER_LOCK_EXCLUSIVE ? "exclusive" : "share", b);
	if (fz_nlocked > 0 && (b == HNSW_METAPAGE_BLKNO || fz_locks[HNSW_METAPAGE_BLKNO] != 0))
		fz_finding("lock of block %u while holding %d other content lock(s), one of them or "
				   "this one the meta page (it must be locked alone)", b, fz_nlocked);
	if (fz_nlocked + 1 > fz_max_locks)
		fz_finding("lock of block %u while holding %d content lock(s) (at most %d here)",
				   b, fz_nlocked, fz_max_locks);
	if (mode == BUFFER_LOCK_EXCLUSIVE)
		fz_locks[b] = -1;
	else if (mode == BUFFER_LOCK_SHARE)
		fz_locks[b]++;
	else
		fz_finding("LockBuffer mode %d", mode);
	fz_nlocked++;
}

/* one backend: the lock is free unless this backend holds it */
bool
ConditionalLockBuffer(Buffer buffer)
{
	BlockNumber b = fz_block(buffer, "ConditionalLockBuffer");

	if (fz_locks[b] != 0)
		return false;
	LockBuffer(buffer, BUFFER_LOCK_EXCLUSIVE);
	return true;
}

void
ReleaseBuffer(Buffer buffer)
{
	BlockNumber b = fz_block(buffer, "ReleaseBuffer");

	fz_pins[b]--;
}

void
UnlockReleaseBuffer(Buffer buffer)
{
	LockBuffer(buffer, BUFFER_LOCK_UNLOCK);
	ReleaseBuffer(buffer);
}

void
MarkBufferDirty(Buffer buffer)
{
	BlockNumber b = fz_block(buffer, "MarkBufferDirty");

	if (fz_locks[b] >= 0)
		fz_finding("MarkBufferDirty of block %u without an exclusive lock", b);
}

/* heavyweight locks: one backend, nothing to wait for */
void
LockRelationForExtension(Relation relation, LOCKMODE lockmode)
{
}

void
UnlockRelationForExtension(Relation relation, LOCKMODE lockmode)
{
}

/* a single backend: the extension lock is always free */
bool
ConditionalLockRelationForExtension(Relation relation, LOCKMODE lockmode)
{
	return true;
}

/* a single backend: nobody ever waits to extend */
int
RelationExtensionLockWaiterCount(Relation relation)
{
	return 0;
}

void
LockPage(Relation relation, BlockNumber blkno, LOCKMODE lockmode)
{
}

void
UnlockPage(Relation relation, BlockNumber blkno, LOCKMODE lockmode)
{
}

bool
ConditionalLockPage(Relation relation, BlockNumber blkno, LOCKMODE lockmode)
{
	return true;
}

/*
 * The free space map of the index (indexfsm.c): a small set of block
 * numbers.  The driver may seed it with a stale entry (a block that is not
 * free, the meta page, or one past the end), as a crash can leave one.
 */
static BlockNumber fz_fsm[FZ_MAX_BLOCKS];
static int	fz_nfsm = 0;

void
fz_fsm_reset(BlockNumber stale)
{
	fz_nfsm = 0;
	if (stale != InvalidBlockNumber)
		fz_fsm[fz_nfsm++] = stale;
}

BlockNumber
GetFreeIndexPage(Relation rel)
{
	if (fz_nfsm == 0)
		return InvalidBlockNumber;
	return fz_fsm[--fz_nfsm];
}

/* the fake free space map has no upper levels to update */
void
FreeSpaceMapVacuumRange(Relation rel, BlockNumber start, BlockNumber end)
{
}

void
RecordFreeIndexPage(Relation rel, BlockNumber freeBlock)
{
	for (int i = 0; i < fz_nfsm; i++)
		if (fz_fsm[i] == freeBlock)
			return;
	if (fz_nfsm < FZ_MAX_BLOCKS)
		fz_fsm[fz_nfsm++] = freeBlock;
}

/*
 * Pages with free element slots: the fake map knows only wholly free pages
 * (a page with free slots is found again by the next VACUUM's pass).
 */
BlockNumber
GetPageWithFreeSpace(Relation rel, Size spaceNeeded)
{
	return InvalidBlockNumber;
}

void
RecordPageWithFreeSpace(Relation rel, BlockNumber heapBlk, Size spaceAvail)
{
}

void
IndexFreeSpaceMapVacuum(Relation rel)
{
}

/* transaction state: no recovery, old XIDs removable as the driver says */
bool
RecoveryInProgress(void)
{
	return false;
}

bool
GlobalVisCheckRemovableXid(Relation rel, TransactionId xid)
{
	return fz_xids_removable;
}

FullTransactionId
ReadNextFullTransactionId(void)
{
	return FullTransactionIdFromEpochAndXid(0, 100000);
}

bool
IsAutoVacuumWorkerProcess(void)
{
	return false;
}

/* the backend id picks the stripe of an insert (set by the driver) */
BackendId	MyBackendId = 1;

/*
 * A pending insert counts the rows of its statement (hnsw_pending.c,
 * move_on()): one transaction and one command for the whole run.
 */
static PGPROC fz_proc;
PGPROC	   *MyProc = &fz_proc;

CommandId
GetCurrentCommandId(bool used)
{
	return FirstCommandId;
}

/* GUC */
int			maintenance_work_mem = 65536;

/* vacuum's cost-based delay and the stats collector */
void
vacuum_delay_point(void)
{
}

void
pgstat_assoc_relation(Relation rel)
{
}

/* genam.c: the scan descriptor ambeginscan gets from the core */
IndexScanDesc
RelationGetIndexScan(Relation indexRelation, int nkeys, int norderbys)
{
	IndexScanDesc scan = palloc0(sizeof(IndexScanDescData));

	scan->indexRelation = indexRelation;
	scan->numberOfKeys = nkeys;
	scan->numberOfOrderBys = norderbys;
	scan->keyData = nkeys > 0 ? palloc0(sizeof(ScanKeyData) * nkeys) : NULL;
	scan->orderByData = norderbys > 0 ? palloc0(sizeof(ScanKeyData) * norderbys) : NULL;
	return scan;
}

/* ================================================================
 * 4. Page functions (bufpage.c, itemptr.c) and GenericXLog
 *
 * PageInit/PageAddItemExtended/PageGetFreeSpace follow the documented
 * behaviour of bufpage.c (including its PANIC on corrupted page pointers,
 * a finding here).  GenericXLog works on page images as the real one does
 * (registering returns a copy, Finish copies it back, Abort drops it), but
 * writes no WAL.
 * ================================================================
 */
void
PageInit(Page page, Size pageSize, Size specialSize)
{
	PageHeader	p = (PageHeader) page;

	specialSize = MAXALIGN(specialSize);
	if (pageSize != BLCKSZ || specialSize + SizeOfPageHeaderData > pageSize)
		fz_finding("PageInit(%zu, %zu)", pageSize, specialSize);
	memset(p, 0, pageSize);
	p->pd_lower = SizeOfPageHeaderData;
	p->pd_upper = pageSize - specialSize;
	p->pd_special = pageSize - specialSize;
	PageSetPageSizeAndVersion(page, pageSize, PG_PAGE_LAYOUT_VERSION);
}

Size
PageGetFreeSpace(Page page)
{
	int			space = (int) ((PageHeader) page)->pd_upper -
		(int) ((PageHeader) page)->pd_lower;

	if (space < (int) sizeof(ItemIdData))
		return 0;
	return space - sizeof(ItemIdData);
}

OffsetNumber
PageAddItemExtended(Page page, Item item, Size size, OffsetNumber offsetNumber, int flags)
{
	PageHeader	p = (PageHeader) page;
	OffsetNumber limit;
	OffsetNumber off = InvalidOffsetNumber;
	ItemId		iid;
	int			lower;
	int			upper;

	if (p->pd_lower < SizeOfPageHeaderData || p->pd_lower > p->pd_upper ||
		p->pd_upper > p->pd_special || p->pd_special > BLCKSZ)
		fz_finding("PANIC in PageAddItemExtended: corrupted page pointers: lower = %u, "
				   "upper = %u, special = %u", p->pd_lower, p->pd_upper, p->pd_special);
	if (offsetNumber != InvalidOffsetNumber || (flags & (PAI_OVERWRITE | PAI_IS_HEAP)))
		fz_finding("PageAddItemExtended with offset %u / flags %d: not modelled",
				   offsetNumber, flags);
	limit = OffsetNumberNext(PageGetMaxOffsetNumber(page));
	if (PageHasFreeLinePointers(page))
	{
		/* reuse an unused line pointer, as the real one does */
		for (OffsetNumber o = FirstOffsetNumber; o < limit; o++)
		{
			iid = PageGetItemId(page, o);
			if (!ItemIdIsUsed(iid) && !ItemIdHasStorage(iid))
			{
				off = o;
				break;
			}
		}
		if (off == InvalidOffsetNumber)
			PageClearHasFreeLinePointers(page);
	}
	if (off == InvalidOffsetNumber)
		off = limit;
	lower = p->pd_lower + (off == limit ? sizeof(ItemIdData) : 0);
	upper = (int) p->pd_upper - (int) MAXALIGN(size);
	if (lower > upper)
		return InvalidOffsetNumber;
	iid = PageGetItemId(page, off);
	ItemIdSetNormal(iid, upper, size);
	memcpy((char *) page + upper, item, size);
	p->pd_lower = lower;
	p->pd_upper = upper;
	return off;
}

bool
ItemPointerEquals(ItemPointer pointer1, ItemPointer pointer2)
{
	return ItemPointerGetBlockNumberNoCheck(pointer1) ==
		ItemPointerGetBlockNumberNoCheck(pointer2) &&
		ItemPointerGetOffsetNumberNoCheck(pointer1) ==
		ItemPointerGetOffsetNumberNoCheck(pointer2);
}

struct GenericXLogState
{
	Relation	rel;
	int			n;
	Buffer		buffers[MAX_GENERIC_XLOG_PAGES];
	Page		images[MAX_GENERIC_XLOG_PAGES];
};

GenericXLogState *
GenericXLogStart(Relation relation)
{
	GenericXLogState *state = palloc0(sizeof(GenericXLogState));

	state->rel = relation;
	return state;
}

Page
GenericXLogRegisterBuffer(GenericXLogState *state, Buffer buffer, int flags)
{
	BlockNumber b = fz_block(buffer, "GenericXLogRegisterBuffer");

	if (fz_locks[b] >= 0)
		fz_finding("GenericXLogRegisterBuffer of block %u without an exclusive lock", b);
	for (int i = 0; i < state->n; i++)
		if (state->buffers[i] == buffer)
			return state->images[i];
	if (state->n == MAX_GENERIC_XLOG_PAGES)
		elog(ERROR, "maximum number %d of generic xlog buffers is exceeded",
			 MAX_GENERIC_XLOG_PAGES);
	state->buffers[state->n] = buffer;
	state->images[state->n] = palloc(BLCKSZ);
	memcpy(state->images[state->n], BufferGetPage(buffer), BLCKSZ);
	return state->images[state->n++];
}

XLogRecPtr
GenericXLogFinish(GenericXLogState *state)
{
	for (int i = 0; i < state->n; i++)
	{
		BlockNumber b = fz_block(state->buffers[i], "GenericXLogFinish");

		if (fz_locks[b] >= 0)
			fz_finding("GenericXLogFinish: block %u is no longer exclusively locked", b);
		if (b == HNSW_METAPAGE_BLKNO &&
			(((PageHeader) state->images[i])->pd_lower !=
			 ((PageHeader) BufferGetPage(state->buffers[i]))->pd_lower ||
			 ((PageHeader) state->images[i])->pd_upper !=
			 ((PageHeader) BufferGetPage(state->buffers[i]))->pd_upper))
			fz_finding("GenericXLogFinish: a tuple was added to the meta page");
		memcpy(BufferGetPage(state->buffers[i]), state->images[i], BLCKSZ);
		pfree(state->images[i]);
	}
	pfree(state);
	return InvalidXLogRecPtr;
}

void
GenericXLogAbort(GenericXLogState *state)
{
	for (int i = 0; i < state->n; i++)
		pfree(state->images[i]);
	pfree(state);
}

/*
 * The WAL insertion calls of hnsw_write_fragment() (a hand-built generic
 * record): no WAL is written, but the protocol is checked -- registered
 * buffers exclusively locked, data readable (ASan sees the copy), the
 * insert inside a critical section.
 */
int			wal_level = WAL_LEVEL_REPLICA;
volatile uint32 CritSectionCount = 0;
static bool fz_xlog_open = false;
static char fz_xlog_scratch[BLCKSZ];

void
XLogBeginInsert(void)
{
	fz_xlog_open = true;
}

void
XLogRegisterBuffer(uint8 block_id, Buffer buffer, uint8 flags)
{
	BlockNumber b = fz_block(buffer, "XLogRegisterBuffer");

	if (!fz_xlog_open)
		fz_finding("XLogRegisterBuffer without XLogBeginInsert");
	if (fz_locks[b] >= 0)
		fz_finding("XLogRegisterBuffer of block %u without an exclusive lock", b);
}

void
XLogRegisterBufData(uint8 block_id, char *data, int len)
{
	if (!fz_xlog_open)
		fz_finding("XLogRegisterBufData without XLogBeginInsert");
	if (len < 0 || len > BLCKSZ)
		fz_finding("XLogRegisterBufData of %d bytes", len);
	memcpy(fz_xlog_scratch, data, len);
}

XLogRecPtr
XLogInsert(RmgrId rmid, uint8 info)
{
	if (!fz_xlog_open)
		fz_finding("XLogInsert without XLogBeginInsert");
	if (CritSectionCount == 0)
		fz_finding("XLogInsert outside a critical section");
	fz_xlog_open = false;
	return (XLogRecPtr) 1;
}

/* ================================================================
 * 5. Hash tables (dynahash stand-in)
 *
 * Only what hnsw_space.c's per-backend cache uses: HASH_ELEM | HASH_BLOBS
 * tables, HASH_FIND / HASH_ENTER / HASH_REMOVE, sequential scans that may
 * remove the entry just returned.  Chained buckets of HASHELEMENT headers
 * followed by the entry (key first), like dynahash.  Entries are malloc'd
 * and every table is emptied between inputs (fz_hash_reset_all), so each
 * input starts like a fresh backend.
 * ================================================================
 */
#define FZ_HASH_BUCKETS 1024
#define FZ_ELEMENTKEY(e) ((char *) (e) + MAXALIGN(sizeof(HASHELEMENT)))

struct HTAB
{
	struct HTAB *next_table;
	Size		keysize;
	Size		entrysize;
	HASHELEMENT *buckets[FZ_HASH_BUCKETS];
	HASHELEMENT *removed;		/* freed at the next reset */
};

static HTAB *fz_tables = NULL;

HTAB *
hash_create(const char *tabname, long nelem, const HASHCTL *info, int flags)
{
	HTAB	   *t;

	if ((flags & ~(HASH_ELEM | HASH_BLOBS | HASH_CONTEXT)) != 0 ||
		!(flags & HASH_ELEM) || !(flags & HASH_BLOBS))
		fz_finding("hash_create flags 0x%x not modelled", flags);
	t = calloc(1, sizeof(HTAB));
	t->keysize = info->keysize;
	t->entrysize = info->entrysize;
	t->next_table = fz_tables;
	fz_tables = t;
	return t;
}

static uint32
fz_hash_key(HTAB *t, const void *key)
{
	const unsigned char *k = key;
	uint32		h = 2166136261u;

	for (Size i = 0; i < t->keysize; i++)
		h = (h ^ k[i]) * 16777619u;
	return h;
}

void *
hash_search(HTAB *hashp, const void *keyPtr, HASHACTION action, bool *foundPtr)
{
	uint32		h = fz_hash_key(hashp, keyPtr);
	HASHELEMENT **p = &hashp->buckets[h % FZ_HASH_BUCKETS];
	HASHELEMENT *e;

	for (; *p; p = &(*p)->link)
		if ((*p)->hashvalue == h && memcmp(FZ_ELEMENTKEY(*p), keyPtr, hashp->keysize) == 0)
			break;
	e = *p;
	if (foundPtr)
		*foundPtr = (e != NULL);
	switch (action)
	{
		case HASH_FIND:
			return e ? FZ_ELEMENTKEY(e) : NULL;
		case HASH_ENTER:
		case HASH_ENTER_NULL:
			if (e == NULL)
			{
				e = malloc(MAXALIGN(sizeof(HASHELEMENT)) + hashp->entrysize);
				e->link = NULL;
				e->hashvalue = h;
				memcpy(FZ_ELEMENTKEY(e), keyPtr, hashp->keysize);
				*p = e;
			}
			return FZ_ELEMENTKEY(e);
		case HASH_REMOVE:
			if (e == NULL)
				return NULL;
			*p = e->link;
			e->link = hashp->removed;
			hashp->removed = e;
			return FZ_ELEMENTKEY(e);
	}
	return NULL;
}

void
hash_seq_init(HASH_SEQ_STATUS *status, HTAB *hashp)
{
	status->hashp = hashp;
	status->curBucket = 0;
	status->curEntry = hashp->buckets[0];
}

void *
hash_seq_search(HASH_SEQ_STATUS *status)
{
	HTAB	   *t = status->hashp;

	while (status->curEntry == NULL)
	{
		if (++status->curBucket >= FZ_HASH_BUCKETS)
			return NULL;
		status->curEntry = t->buckets[status->curBucket];
	}
	{
		HASHELEMENT *e = status->curEntry;

		status->curEntry = e->link; /* the caller may remove e */
		return FZ_ELEMENTKEY(e);
	}
}

void
hash_seq_term(HASH_SEQ_STATUS *status)
{
}

void
fz_hash_reset_all(void)
{
	for (HTAB *t = fz_tables; t; t = t->next_table)
	{
		for (int i = 0; i < FZ_HASH_BUCKETS; i++)
			while (t->buckets[i])
			{
				HASHELEMENT *e = t->buckets[i];

				t->buckets[i] = e->link;
				free(e);
			}
		while (t->removed)
		{
			HASHELEMENT *e = t->removed;

			t->removed = e->link;
			free(e);
		}
	}
}

/* ================================================================
 * 6. Functions of extension files this harness does not link
 * ================================================================
 */

/* hnsw_options.c: the GUC engram_hnsw.ef_search (the driver sets it) */
int			hnsw_ef_search = HNSW_DEFAULT_EF_SEARCH;

/* hnsw_options.c: the GUC engram_hnsw.space_read_pages (the driver sets it) */
int			hnsw_space_read_pages = HNSW_DEFAULT_SPACE_READ_PAGES;

/*
 * hnsw_options.c: the GUC engram_hnsw.vector_cache_size; small, so that
 * merges also evict (the cache outlives one input, as in a backend)
 */
int			hnsw_vector_cache_kb = 256;

/* hnsw_util.c: the fastupdate reloption and the pending list limit */
bool
hnsw_index_fastupdate(Relation index)
{
	return fz_fastupdate;
}

int64
hnsw_pending_limit_bytes(Relation index)
{
	return fz_pending_limit;
}

/* hnsw_util.c: the vector column is the last key column */
int
hnsw_vector_attno(Relation index)
{
	return fz_nkeyatts;
}

/*
 * hnsw_util.c: the real one parses a real[] Datum; here the Datum points
 * to an FzVector built by the driver.  Same checks and results otherwise.
 */
float *
hnsw_prepare_vector(Relation index, int metric, Datum value, int expect_dims,
					int *dims, bool *skip)
{
	FzVector   *in = (FzVector *) DatumGetPointer(value);
	float	   *vec;
	int			n = in->dims;

	*skip = false;
	if (n > HNSW_MAX_DIMS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("vector has %d dimensions, engram_hnsw indexes at most %d",
						n, HNSW_MAX_DIMS)));
	if (expect_dims > 0 && n != expect_dims)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("vector has %d dimensions, but index \"%s\" has %d",
						n, RelationGetRelationName(index), expect_dims)));
	vec = palloc(sizeof(float) * Max(n, 1));
	memcpy(vec, in->v, sizeof(float) * n);
	if (metric == HNSW_METRIC_COSINE && !hnsw_normalize(vec, n))
		*skip = true;
	*dims = n;
	return vec;
}

/* common/pg_prng.c: the driver chooses the "random" level */
pg_prng_state pg_global_prng_state;

double
pg_prng_double(pg_prng_state *state)
{
	return fz_prng_value;
}

/*
 * port/qsort.c.  PostgreSQL's own sort takes any base with no elements
 * (callers pass an unallocated array and a count of 0), where the C
 * library's qsort() is declared to need a valid pointer.
 */
void
pg_qsort(void *base, size_t nel, size_t elsize, int (*cmp) (const void *, const void *))
{
	if (nel > 0)
		qsort(base, nel, elsize, cmp);
}

/* ================================================================
 * 7. Referenced, but never reached by this harness
 *
 * SQL-callable functions (distance operators, array input) and the
 * space-key array quals (= ANY) are not driven; reaching one of these is a
 * harness bug, reported as a finding.
 * ================================================================
 */
#define FZ_UNREACHABLE(name) fz_finding("%s() reached: not modelled by the fuzz harness", name)

struct varlena *
pg_detoast_datum(struct varlena *datum)
{
	FZ_UNREACHABLE("pg_detoast_datum");
}

struct varlena *
pg_detoast_datum_packed(struct varlena *datum)
{
	FZ_UNREACHABLE("pg_detoast_datum_packed");
}

bool
array_contains_nulls(ArrayType *array)
{
	FZ_UNREACHABLE("array_contains_nulls");
}

void
deconstruct_array(ArrayType *array, Oid elmtype, int elmlen, bool elmbyval, char elmalign,
				  Datum **elemsp, bool **nullsp, int *nelemsp)
{
	FZ_UNREACHABLE("deconstruct_array");
}

void
get_typlenbyvalalign(Oid typid, int16 *typlen, bool *typbyval, char *typalign)
{
	FZ_UNREACHABLE("get_typlenbyvalalign");
}

/* hnsw_util.c: opening an index for a SQL-callable maintenance function */
Relation
hnsw_open_maintenance(Oid indexoid, LOCKMODE lockmode, Relation *heap)
{
	FZ_UNREACHABLE("hnsw_open_maintenance");
}

void
hnsw_close_maintenance(Relation index, Relation heap, LOCKMODE lockmode)
{
	FZ_UNREACHABLE("hnsw_close_maintenance");
}

/*
 * hnsw_worker.c: no background merge worker in this process, so a pending
 * insert over its share merges itself, as with engram_hnsw.merge_worker =
 * off (which keeps the merge code under the fuzzer)
 */
bool
hnsw_merge_worker_take_over(Relation index)
{
	return false;
}

bool
hnsw_merge_worker_throttle(Relation index)
{
	return false;
}
