/*-------------------------------------------------------------------------
 *
 * pg_stubs.h
 *	  Interface between the fuzz driver (fuzz_hnsw.c) and the stand-ins for
 *	  the PostgreSQL backend (pg_stubs.c) that the extension's page-reading
 *	  code is linked against.  See test/fuzz/README.md.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ENGRAM_FUZZ_PG_STUBS_H
#define ENGRAM_FUZZ_PG_STUBS_H

#include "postgres.h"

#include "utils/rel.h"

/* most blocks the fake relation may have (input pages plus extensions) */
#define FZ_MAX_BLOCKS	64

/*
 * SQLSTATE of the harness's own limit (the fake relation is full): not a
 * finding, the operation is just abandoned.
 */
#define FZ_ERRCODE_HARNESS_LIMIT MAKE_SQLSTATE('F','Z','0','0','1')

/* what the last ERROR was */
typedef struct FzError
{
	int			sqlerrcode;
	int			elevel;
	char		message[512];
	char		detail[512];
	const char *filename;
	int			lineno;
	const char *funcname;
} FzError;

extern FzError fz_last_error;

/* counters printed at exit (FUZZ_STATS=1) */
typedef struct FzStats
{
	uint64		inputs;
	uint64		stages;
	uint64		stages_ok;
	uint64		errors_xx001;
	uint64		errors_xx002;
	uint64		errors_other_allowed;
	uint64		read_past_end;	/* ReadBuffer of a block >= nblocks */
	uint64		bad_page_header;	/* rejected as the server's bufmgr would */
	uint64		pages_added;
	uint64		harness_limit;
	uint64		invalid_heap_tids;	/* returned by amgettuple */
} FzStats;

extern FzStats fz_stats;

/* the relation the extension sees: set up per input */
extern Relation fz_relation(Oid relid, int nkeyatts);

/* load the input's pages (copied; each page its own allocation) */
extern void fz_load_pages(const uint8 *data, int npages);

/* free every page, buffer state and palloc chunk of this input */
extern void fz_end_input(void);

/* after an operation that returned normally: pins and locks must be 0 */
extern void fz_check_no_buffers(const char *stage);

/* after an ERROR: drop pins and locks as the resource owner would */
extern void fz_release_all_buffers(void);

/*
 * Most buffer content locks the code may hold at once during the current
 * stage (src/README.md, "Locks": a search holds at most one; an insert's
 * page placement up to three).
 */
extern int	fz_max_locks;

/* value pg_prng_double() returns (the new element's level) */
extern double fz_prng_value;

/* the vector hnsw_prepare_vector() returns, passed as a Datum pointer */
typedef struct FzVector
{
	int			dims;
	float		v[FLEXIBLE_ARRAY_MEMBER];
} FzVector;

/* hnsw_index_fastupdate(), hnsw_pending_limit_bytes() of the fake index */
extern bool fz_fastupdate;
extern int64 fz_pending_limit;

/* GlobalVisCheckRemovableXid() answer (recycling detached pending pages) */
extern bool fz_xids_removable;

/* empty the fake free space map; with a block number, seed a stale entry */
extern void fz_fsm_reset(BlockNumber stale);

/* hnsw_vector_attno() of the fake relation */
extern int	fz_nkeyatts;

/* a finding: print it and abort() so libFuzzer saves the input */
extern void fz_finding(const char *fmt,...) pg_attribute_printf(1, 2) pg_attribute_noreturn();

/* the per-input memory context (reset by fz_end_input) */
extern MemoryContext fz_input_context;

/* forget every entry of every hash table (a fresh backend per input) */
extern void fz_hash_reset_all(void);

#endif							/* ENGRAM_FUZZ_PG_STUBS_H */
