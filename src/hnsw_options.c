/*-------------------------------------------------------------------------
 *
 * hnsw_options.c
 *	  The access method handler, the reloptions and GUCs, the operator
 *	  class support functions and their validation (amvalidate), and the
 *	  build phase names.  Cost estimation is in hnsw_cost.c; the helpers
 *	  lower layers call (option reads, input vectors, opening an index for
 *	  maintenance) are in hnsw_util.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "access/amvalidate.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/reloptions.h"
#include "access/table.h"
#include "catalog/index.h"
#include "catalog/pg_class.h"
#include "catalog/pg_am.h"
#include "catalog/pg_amop.h"
#include "catalog/pg_amproc.h"
#include "catalog/pg_opclass.h"
#include "catalog/pg_type.h"
#include "commands/progress.h"
#include "commands/vacuum.h"
#include "fmgr.h"
#include "optimizer/optimizer.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/regproc.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/selfuncs.h"
#include "utils/syscache.h"

#include "engram_hnsw.h"

PG_MODULE_MAGIC;

int			hnsw_ef_search = HNSW_DEFAULT_EF_SEARCH;
int			hnsw_space_read_pages = HNSW_DEFAULT_SPACE_READ_PAGES;
int			hnsw_build_format = HNSW_FORMAT_VERSION;
int			hnsw_parallel_read_tries = HNSW_DEFAULT_PARALLEL_READ_TRIES;
int			hnsw_pending_list_limit = HNSW_DEFAULT_PENDING_LIMIT;
int			hnsw_vector_cache_kb = HNSW_DEFAULT_VECTOR_CACHE;
bool		hnsw_merge_worker = true;
int			hnsw_max_merge_workers = HNSW_DEFAULT_MAX_MERGE_WORKERS;
double		hnsw_merge_helper_idle_cpus = HNSW_DEFAULT_HELPER_IDLE_CPUS;

static relopt_kind hnsw_relopt_kind;

/* the values of the "codes" option */
static const struct
{
	const char *name;
	int			kind;
}			code_kinds[] =
{
	{"int8", HNSW_CODE_INT8},
	{"rabitq", HNSW_CODE_RABITQ},
	{"fp16", HNSW_CODE_FP16},
};

void		_PG_init(void);

/* the code kind (HNSW_CODE_*) the "codes" option names; HNSW_CODE_NONE if none */
int
hnsw_code_kind_by_name(const char *name)
{
	for (int i = 0; i < lengthof(code_kinds); i++)
		if (pg_strcasecmp(name, code_kinds[i].name) == 0)
			return code_kinds[i].kind;
	return HNSW_CODE_NONE;
}

static void
validate_codes(const char *value)
{
	if (value != NULL && hnsw_code_kind_by_name(value) == HNSW_CODE_NONE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for engram_hnsw option \"codes\": \"%s\" (allowed: int8, rabitq, fp16)",
						value)));
}

void
_PG_init(void)
{
	hnsw_relopt_kind = add_reloption_kind();
	add_int_reloption(hnsw_relopt_kind, "m",
					  "Neighbours per element on upper layers (twice as many on layer 0)",
					  HNSW_DEFAULT_M, HNSW_MIN_M, HNSW_MAX_M, AccessExclusiveLock);
	add_int_reloption(hnsw_relopt_kind, "ef_construction",
					  "Candidate list size while building the graph (at least 2 * m)",
					  HNSW_DEFAULT_EF_CONSTRUCTION, HNSW_MIN_EF_CONSTRUCTION,
					  HNSW_MAX_EF_CONSTRUCTION, AccessExclusiveLock);
	add_int_reloption(hnsw_relopt_kind, "dims",
					  "Number of dimensions of every vector (0: taken from the first vector)",
					  0, 0, HNSW_MAX_DIMS, AccessExclusiveLock);
	add_bool_reloption(hnsw_relopt_kind, "fastupdate",
					   "Inserts go to a pending list that is merged into the graph in batches",
					   true, ShareUpdateExclusiveLock);
	add_int_reloption(hnsw_relopt_kind, "pending_list_limit",
					  "Pending list size (kB) that makes an insert merge it (-1: engram_hnsw.pending_list_limit)",
					  -1, 64, MAX_KILOBYTES, ShareUpdateExclusiveLock);
	add_string_reloption(hnsw_relopt_kind, "codes",
						 "Compact codes the graph is walked on: int8, rabitq or fp16",
						 "int8", validate_codes, AccessExclusiveLock);

	DefineCustomIntVariable("engram_hnsw.ef_search",
							"Candidate list size of an index scan before the first row is returned.",
							"Larger values find more of the true nearest neighbours, more slowly. "
							"A scan goes on searching past this many rows when asked for more.",
							&hnsw_ef_search, HNSW_DEFAULT_EF_SEARCH,
							HNSW_MIN_EF_SEARCH, HNSW_MAX_EF_SEARCH,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("engram_hnsw.space_read_pages",
							"Memory spaces on at most this many pages are read whole by scans.",
							"A scan of such a space reads its elements and returns them in "
							"exact distance order instead of searching its graph (format 3 "
							"indexes).  0 always searches the graph.",
							&hnsw_space_read_pages, HNSW_DEFAULT_SPACE_READ_PAGES,
							0, HNSW_SPACE_MAX_BLOCKS,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("engram_hnsw.build_format",
							"Page format of the indexes CREATE INDEX and REINDEX build.",
							"3 (the default) walks the graph on compact codes and indexes up "
							"to 16000 dimensions; 2 is the format of release 0.2.0, for testing "
							"how indexes of that release keep working.",
							&hnsw_build_format, HNSW_FORMAT_VERSION, 2, HNSW_FORMAT_VERSION,
							PGC_SUSET, GUC_NOT_IN_SAMPLE, NULL, NULL, NULL);
	DefineCustomIntVariable("engram_hnsw.parallel_read_tries",
							"Lock-free attempts at reading a neighbour list in a parallel build.",
							"A participant of a parallel build reads a list without its lock "
							"while no writer is at work, and takes the lock after this many "
							"attempts that met one.  0 always takes the lock: a developer "
							"option, for testing that path.",
							&hnsw_parallel_read_tries, HNSW_DEFAULT_PARALLEL_READ_TRIES,
							0, 1000000,
							PGC_SUSET, GUC_NOT_IN_SAMPLE, NULL, NULL, NULL);
	DefineCustomIntVariable("engram_hnsw.pending_list_limit",
							"Pending list size at which an insert merges it into the graph.",
							"Applies to engram_hnsw indexes with fastupdate = on that do not "
							"set their own pending_list_limit.  Scans read every pending row, "
							"so a larger list makes inserts cheaper and scans slower.",
							&hnsw_pending_list_limit, HNSW_DEFAULT_PENDING_LIMIT,
							64, MAX_KILOBYTES,
							PGC_USERSET, GUC_UNIT_KB, NULL, NULL, NULL);
	DefineCustomIntVariable("engram_hnsw.vector_cache_size",
							"Memory a backend keeps for vectors read by pending-list merges.",
							"Merges copy the vectors their graph searches read; the copies are "
							"kept for the backend's next merge of the same index, up to this "
							"size.  0 turns the cache off.",
							&hnsw_vector_cache_kb, HNSW_DEFAULT_VECTOR_CACHE,
							0, MAX_KILOBYTES,
							PGC_USERSET, GUC_UNIT_KB, NULL, NULL, NULL);
	DefineCustomBoolVariable("engram_hnsw.merge_worker",
							 "Inserts hand pending-list merges to a background worker.",
							 "An insert that finds its share of the pending list over the "
							 "limit starts a merge worker for the index (or leaves the work "
							 "to the running one) instead of merging itself.  Off: it merges "
							 "itself.",
							 &hnsw_merge_worker, true,
							 PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("engram_hnsw.max_merge_workers",
							"Most merge workers running at once, across the server.",
							"Each index being written to has one, and a helper while it is "
							"behind and CPU is idle (only if that leaves a slot free); they "
							"take their slots from max_worker_processes.  0 starts none.",
							&hnsw_max_merge_workers, HNSW_DEFAULT_MAX_MERGE_WORKERS,
							0, HNSW_MAX_MERGE_WORKER_SLOTS,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomRealVariable("engram_hnsw.merge_helper_idle_cpus",
							 "Idle CPU, in cores, a merge worker must see to start a helper.",
							 "A merge worker that has merged without a break for half a second, "
							 "with more stripes of the pending list waiting, starts a second "
							 "worker for its index if at least this many cores stayed idle "
							 "meanwhile (Linux /proc/stat; elsewhere never); the helper "
							 "pauses while it gets less than half a core.",
							 &hnsw_merge_helper_idle_cpus, HNSW_DEFAULT_HELPER_IDLE_CPUS,
							 0.0, 1024.0,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
	MarkGUCPrefixReserved("engram_hnsw");
}

bytea *
hnsw_options(Datum reloptions, bool validate)
{
	static const relopt_parse_elt tab[] = {
		{"m", RELOPT_TYPE_INT, offsetof(HnswOptions, m)},
		{"ef_construction", RELOPT_TYPE_INT, offsetof(HnswOptions, ef_construction)},
		{"dims", RELOPT_TYPE_INT, offsetof(HnswOptions, dims)},
		{"fastupdate", RELOPT_TYPE_BOOL, offsetof(HnswOptions, fastupdate)},
		{"pending_list_limit", RELOPT_TYPE_INT, offsetof(HnswOptions, pending_list_limit)},
		{"codes", RELOPT_TYPE_STRING, offsetof(HnswOptions, codes)},
	};
	HnswOptions *opts;

	opts = (HnswOptions *) build_reloptions(reloptions, validate, hnsw_relopt_kind,
											sizeof(HnswOptions), tab, lengthof(tab));
	if (validate && opts && opts->ef_construction < 2 * opts->m)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ef_construction (%d) must be at least 2 * m (%d)",
						opts->ef_construction, 2 * opts->m)));
	return (bytea *) opts;
}

PG_FUNCTION_INFO_V1(engram_hnsw_space_support);
Datum
engram_hnsw_space_support(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(HNSW_METRIC_NONE);
}

PG_FUNCTION_INFO_V1(engram_hnsw_l2_support);
Datum
engram_hnsw_l2_support(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(HNSW_METRIC_L2);
}

PG_FUNCTION_INFO_V1(engram_hnsw_cosine_support);
Datum
engram_hnsw_cosine_support(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(HNSW_METRIC_COSINE);
}

PG_FUNCTION_INFO_V1(engram_hnsw_ip_support);
Datum
engram_hnsw_ip_support(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(HNSW_METRIC_IP);
}

/*
 * Operator class validation: one ordering operator (strategy 1, real[]
 * real[] -> float8, ORDER BY float_ops) and support function 1 (internal
 * -> int4).
 */
bool
hnsw_validate(Oid opclassoid)
{
	bool		result = true;
	HeapTuple	classtup;
	Form_pg_opclass classform;
	Oid			opfamilyoid;
	Oid			opcintype;
	bool		is_vector;
	char	   *opclassname;
	CatCList   *proclist,
			   *oprlist;
	bool		has_proc = false;
	bool		has_op = false;

	classtup = SearchSysCache1(CLAOID, ObjectIdGetDatum(opclassoid));
	if (!HeapTupleIsValid(classtup))
		elog(ERROR, "cache lookup failed for operator class %u", opclassoid);
	classform = (Form_pg_opclass) GETSTRUCT(classtup);
	opfamilyoid = classform->opcfamily;
	opcintype = classform->opcintype;
	is_vector = (opcintype == FLOAT4ARRAYOID);
	opclassname = NameStr(classform->opcname);

	proclist = SearchSysCacheList1(AMPROCNUM, ObjectIdGetDatum(opfamilyoid));
	for (int i = 0; i < proclist->n_members; i++)
	{
		Form_pg_amproc procform = (Form_pg_amproc) GETSTRUCT(&proclist->members[i]->tuple);

		if (procform->amprocnum != HNSW_METRIC_PROC)
		{
			ereport(INFO,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("engram_hnsw operator class \"%s\" contains function %s with invalid support number %d",
							opclassname, format_procedure(procform->amproc),
							procform->amprocnum)));
			result = false;
			continue;
		}
		if (!check_amproc_signature(procform->amproc, INT4OID, false, 1, 1, INTERNALOID))
		{
			ereport(INFO,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("engram_hnsw operator class \"%s\" contains function %s with wrong signature for support number %d",
							opclassname, format_procedure(procform->amproc),
							procform->amprocnum)));
			result = false;
			continue;
		}
		has_proc = true;
	}

	oprlist = SearchSysCacheList1(AMOPSTRATEGY, ObjectIdGetDatum(opfamilyoid));
	for (int i = 0; i < oprlist->n_members; i++)
	{
		Form_pg_amop oprform = (Form_pg_amop) GETSTRUCT(&oprlist->members[i]->tuple);

		bool		ok;

		if (is_vector)
			/* the ordering operator of a vector class */
			ok = oprform->amopstrategy == HNSW_DISTANCE_STRATEGY &&
				oprform->amoppurpose == AMOP_ORDER &&
				oprform->amopsortfamily == get_opfamily_oid(BTREE_AM_OID,
															list_make1(makeString("float_ops")),
															false) &&
				check_amop_signature(oprform->amopopr, FLOAT8OID,
									 oprform->amoplefttype, oprform->amoprighttype) &&
				oprform->amoplefttype == FLOAT4ARRAYOID &&
				oprform->amoprighttype == FLOAT4ARRAYOID;
		else
			/* the equality operator of a space key class */
			ok = oprform->amopstrategy == HNSW_SPACE_EQ_STRATEGY &&
				oprform->amoppurpose == AMOP_SEARCH &&
				check_amop_signature(oprform->amopopr, BOOLOID,
									 oprform->amoplefttype, oprform->amoprighttype) &&
				oprform->amoplefttype == opcintype &&
				oprform->amoprighttype == opcintype;
		if (!ok)
		{
			ereport(INFO,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("engram_hnsw operator class \"%s\" contains invalid operator %s",
							opclassname, format_operator(oprform->amopopr))));
			result = false;
			continue;
		}
		has_op = true;
	}

	if (!has_proc)
	{
		ereport(INFO,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("engram_hnsw operator class \"%s\" is missing support function %d",
						opclassname, HNSW_METRIC_PROC)));
		result = false;
	}
	if (!has_op)
	{
		ereport(INFO,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("engram_hnsw operator class \"%s\" is missing its ordering operator",
						opclassname)));
		result = false;
	}

	ReleaseCatCacheList(proclist);
	ReleaseCatCacheList(oprlist);
	ReleaseSysCache(classtup);
	return result;
}

char *
hnsw_buildphasename(int64 phasenum)
{
	switch (phasenum)
	{
		case PROGRESS_CREATEIDX_SUBPHASE_INITIALIZE:
			return "initializing";
		case HNSW_PHASE_LOAD:
			return "loading tuples into the in-memory graph";
		case HNSW_PHASE_WRITE:
			return "writing index pages";
		default:
			return NULL;
	}
}

PG_FUNCTION_INFO_V1(engram_hnsw_handler);
Datum
engram_hnsw_handler(PG_FUNCTION_ARGS)
{
	IndexAmRoutine *amroutine = makeNode(IndexAmRoutine);

	amroutine->amstrategies = 0;
	amroutine->amsupport = HNSW_NPROCS;
	amroutine->amoptsprocnum = 0;
	amroutine->amcanorder = false;
	amroutine->amcanorderbyop = true;
	amroutine->amcanbackward = false;
	amroutine->amcanunique = false;
	amroutine->amcanmulticol = true;
	amroutine->amoptionalkey = true;
	amroutine->amsearcharray = true;
	amroutine->amsearchnulls = false;
	amroutine->amstorage = false;
	amroutine->amclusterable = false;
	amroutine->ampredlocks = false;
	amroutine->amcanparallel = false;
	amroutine->amcaninclude = false;
	amroutine->amusemaintenanceworkmem = false;
	amroutine->amparallelvacuumoptions = VACUUM_OPTION_PARALLEL_BULKDEL;
	amroutine->amkeytype = InvalidOid;

	amroutine->ambuild = hnsw_build;
	amroutine->ambuildempty = hnsw_buildempty;
	amroutine->aminsert = hnsw_insert;
	amroutine->ambulkdelete = hnsw_bulkdelete;
	amroutine->amvacuumcleanup = hnsw_vacuumcleanup;
	amroutine->amcanreturn = NULL;
	amroutine->amcostestimate = hnsw_costestimate;
	amroutine->amoptions = hnsw_options;
	amroutine->amproperty = NULL;
	amroutine->ambuildphasename = hnsw_buildphasename;
	amroutine->amvalidate = hnsw_validate;
	amroutine->amadjustmembers = NULL;
	amroutine->ambeginscan = hnsw_beginscan;
	amroutine->amrescan = hnsw_rescan;
	amroutine->amgettuple = hnsw_gettuple;
	amroutine->amgetbitmap = NULL;
	amroutine->amendscan = hnsw_endscan;
	amroutine->ammarkpos = NULL;
	amroutine->amrestrpos = NULL;
	amroutine->amestimateparallelscan = NULL;
	amroutine->aminitparallelscan = NULL;
	amroutine->amparallelrescan = NULL;

	PG_RETURN_POINTER(amroutine);
}
