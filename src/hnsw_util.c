/*-------------------------------------------------------------------------
 *
 * hnsw_util.c
 *	  Helpers below the access method callbacks: an index's options and
 *	  column metrics, input vector preparation, and opening an index (and
 *	  its table) for a maintenance function.
 *
 * Built on hnsw_distance.c only; the reloptions are parsed and the GUCs
 * defined in hnsw_options.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relation.h"
#include "access/table.h"
#include "catalog/index.h"
#include "catalog/pg_class.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "engram_hnsw.h"

/* the index's reloptions, or the defaults if it was created without any */
static const HnswOptions *
index_options(Relation index)
{
	static const HnswOptions defaults = {
		.m = HNSW_DEFAULT_M,
		.ef_construction = HNSW_DEFAULT_EF_CONSTRUCTION,
		.dims = 0,
		.fastupdate = true,
		.pending_list_limit = -1,
		.codes = 0,
	};

	return index->rd_options ? (const HnswOptions *) index->rd_options : &defaults;
}

int
hnsw_index_m(Relation index)
{
	return index_options(index)->m;
}

int
hnsw_index_ef_construction(Relation index)
{
	return index_options(index)->ef_construction;
}

int
hnsw_index_dims_option(Relation index)
{
	return index_options(index)->dims;
}

bool
hnsw_index_fastupdate(Relation index)
{
	return index_options(index)->fastupdate;
}

/*
 * The kind of compact codes (HNSW_CODE_*) a build of the index walks its
 * graph on: the "codes" option, int8 by default.
 */
int
hnsw_index_code_kind(Relation index)
{
	const HnswOptions *opts = index_options(index);

	if (opts->codes == 0)
		return HNSW_CODE_INT8;
	return hnsw_code_kind_by_name((const char *) opts + opts->codes);
}

/* the pending list size (bytes of pending elements) that triggers a merge */
int64
hnsw_pending_limit_bytes(Relation index)
{
	int			kb = index_options(index)->pending_list_limit;

	return (int64) (kb > 0 ? kb : hnsw_pending_list_limit) * 1024;
}

/* the vector is the last key column (leading columns are space keys) */
int
hnsw_vector_attno(Relation index)
{
	return IndexRelationGetNumberOfKeyAttributes(index);
}

/* support function 1 of a column's operator class: a metric, or 0 for a space key */
static int
column_metric(Relation index, int attno)
{
	FmgrInfo   *proc = index_getprocinfo(index, attno, HNSW_METRIC_PROC);
	int			metric = DatumGetInt32(FunctionCall1(proc, PointerGetDatum(NULL)));

	if (metric != HNSW_METRIC_NONE && metric != HNSW_METRIC_L2 &&
		metric != HNSW_METRIC_COSINE && metric != HNSW_METRIC_IP)
		elog(ERROR, "engram_hnsw support function returned unknown metric %d", metric);
	return metric;
}

/* the metric of the index: that of its vector (last) column */
int
hnsw_index_metric(Relation index)
{
	int			metric = column_metric(index, hnsw_vector_attno(index));

	if (metric == HNSW_METRIC_NONE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("the last column of engram_hnsw index \"%s\" must be a real[] vector column",
						RelationGetRelationName(index))));
	return metric;
}

/*
 * Check the shape of the index: an optional space key column, then the
 * vector column.  Returns the number of space key columns (0 or 1).
 */
int
hnsw_index_nspacekeys(Relation index)
{
	int			natts = IndexRelationGetNumberOfKeyAttributes(index);

	if (natts > 2)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("engram_hnsw index \"%s\" has %d columns, but at most 2 are supported",
						RelationGetRelationName(index), natts),
				 errhint("Use one space key column (int4, int8, text or uuid) followed by one real[] vector column.")));
	(void) hnsw_index_metric(index);
	if (natts == 2)
	{
		Oid			coll = index->rd_indcollation[0];

		if (column_metric(index, 1) != HNSW_METRIC_NONE)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("the first column of engram_hnsw index \"%s\" must be a space key (int4, int8, text or uuid)",
							RelationGetRelationName(index))));
		if (OidIsValid(coll) && !get_collation_isdeterministic(coll))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("engram_hnsw space keys do not support nondeterministic collations")));
	}
	return natts - 1;
}
/*
 * Turn an indexed or query value into the float vector the index works
 * with: validated, of the expected dimension (if expect_dims > 0), and
 * unit-normalised for cosine.  *skip is set for vectors the index does not
 * hold (zero vectors under cosine).  Returns a palloc'd copy.
 */
float *
hnsw_prepare_vector(Relation index, int metric, Datum value, int expect_dims,
					int *dims, bool *skip)
{
	ArrayType  *arr = DatumGetArrayTypeP(value);
	const float *data;
	float	   *vec;
	int			n;

	*skip = false;
	data = hnsw_array_vector(arr, &n, "vector");
	if (n > HNSW_MAX_DIMS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("vector has %d dimensions, engram_hnsw indexes at most %d",
						n, HNSW_MAX_DIMS)));
	if (expect_dims > 0 && n != expect_dims)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg_plural("vector has %d dimension, but index \"%s\" has %d",
							   "vector has %d dimensions, but index \"%s\" has %d",
							   n, n, RelationGetRelationName(index), expect_dims)));
	vec = palloc(sizeof(float) * n);
	memcpy(vec, data, sizeof(float) * n);
	if (metric == HNSW_METRIC_COSINE && !hnsw_normalize(vec, n))
		*skip = true;
	*dims = n;
	return vec;
}

/*
 * Open an engram_hnsw index (and its table) for a maintenance function:
 * engram_hnsw_check(), engram_hnsw_merge_pending().  Only the owner (or a
 * superuser) may; a partitioned index has no pages of its own.  Both are
 * locked in lockmode; close them with hnsw_close_maintenance().
 */
Relation
hnsw_open_maintenance(Oid indexoid, LOCKMODE lockmode, Relation *heap)
{
	Oid			heapoid = IndexGetRelation(indexoid, true);
	Relation	index;

	if (!OidIsValid(heapoid))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("relation with OID %u is not an index", indexoid)));
	if (get_rel_relkind(indexoid) == RELKIND_PARTITIONED_INDEX)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is a partitioned index", get_rel_name(indexoid)),
				 errhint("Use the index of each partition.")));
	if (!pg_class_ownercheck(indexoid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_INDEX, get_rel_name(indexoid));

	*heap = table_open(heapoid, lockmode);
	index = index_open(indexoid, lockmode);
	if (index->rd_indam->ambuild != hnsw_build)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not an engram_hnsw index", RelationGetRelationName(index))));
	return index;
}

void
hnsw_close_maintenance(Relation index, Relation heap, LOCKMODE lockmode)
{
	index_close(index, lockmode);
	table_close(heap, lockmode);
}
