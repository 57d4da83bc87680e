/*-------------------------------------------------------------------------
 *
 * hnsw_cost.c
 *	  amcostestimate: the planner's cost of an engram_hnsw index scan, and
 *	  the planner support function giving the cost of a distance call.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "access/genam.h"
#include "access/heaptoast.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "nodes/supportnodes.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "utils/array.h"
#include "utils/selfuncs.h"
#include "utils/syscache.h"

#include "engram_hnsw.h"

/*
 * Cost model.  Everything an HNSW scan or a distance call does is CPU work
 * on buffers that are usually cached, so it is priced in cpu_operator_cost
 * units ("ops"), with weights fitted to CPU times measured on this code
 * (bench/wl_plans.sh, bench/results/plans.md), taking a cost unit as about
 * 1 us of CPU (what a cached seq scan page with its tuples takes), so an op
 * is about 2.5 ns:
 *
 * - visiting an element (a buffer access, and a distance over dims floats
 *   by the vectorised kernel): HNSW_COST_VISIT + dims / 4 ops (0.13 us at
 *   128 dims, 1 us at 1536);
 * - expanding an element (reading its neighbour list, 2m visited-set
 *   probes, handing a row over to the executor): HNSW_COST_EXPAND ops;
 * - a call of an SQL distance function (what the executor computes for
 *   every row it sorts or returns: argument checks, the finiteness scan of
 *   both arrays, the distance): HNSW_COST_CALL + dims / 6 ops, plus
 *   HNSW_COST_DETOAST + HNSW_COST_CHUNK per TOAST chunk when the column's
 *   vectors are stored out of line (1.8 us for 784 floats, 2.8 us for
 *   1536).
 */
#define HNSW_COST_VISIT			20.0
#define HNSW_COST_EXPAND		1000.0
#define HNSW_COST_CALL			37.0
#define HNSW_COST_DETOAST		320.0
#define HNSW_COST_CHUNK			200.0

/*
 * The dimensions an index stores (0 while it is empty), read from its meta
 * page, with its m.
 */
static int
hnsw_cost_index_dims(Oid indexoid, double *m, HnswMetaInfo *meta)
{
	Relation	rel = index_open(indexoid, NoLock);

	*m = hnsw_index_m(rel);
	hnsw_read_meta(rel, meta);
	index_close(rel, NoLock);
	return meta->dims;
}

/*
 * Cost of an ordered scan.  The descent and the first layer-0 search come
 * before the first row: about ef_search expansions and ef_search * m +
 * m * log(n) visits per graph searched (never more visits than the graph
 * has elements): startup cost.  After that the search goes on expanding,
 * one expansion and about one visit per row returned, as long as the
 * executor asks for rows, until the graph is exhausted: the total cost is
 * that of walking the whole index, which is what a distance bound with no
 * row in range, or a filter no row passes, costs.  With LIMIT, the planner
 * takes the fraction LIMIT / rows of the run cost, rows being what the
 * other quals on the table leave: so a filtered ORDER BY ... LIMIT costs
 * more as the filter gets more selective (1/selectivity), never more than
 * the whole index.  Heap fetches, the quals and the distance the executor
 * computes for each returned row are added by the planner (cost_index;
 * the distance functions' cost comes from their support function below).
 *
 * Without an ordering operator the path is priced out: NULL vectors are
 * not in the index, so such a scan cannot return every row.  Priced above
 * disable_cost, so that not even enable_seqscan = off picks it.
 */
void
hnsw_costestimate(PlannerInfo *root, IndexPath *path, double loop_count,
				  Cost *indexStartupCost, Cost *indexTotalCost,
				  Selectivity *indexSelectivity, double *indexCorrelation,
				  double *indexPages)
{
	GenericCosts costs;
	IndexOptInfo *index = path->indexinfo;
	double		ntuples = Max(index->tuples, 1.0);
	double		m;
	double		dims;
	double		visit;
	double		row;
	double		first;
	double		expand;
	double		nspaces = 1.0;
	double		per_space;
	double		pending = 0.0;
	HnswMetaInfo meta;

	if (path->indexorderbys == NIL)
	{
		*indexStartupCost = DBL_MAX;
		*indexTotalCost = DBL_MAX;
		*indexSelectivity = 0.0;
		*indexCorrelation = 0.0;
		*indexPages = 0;
		return;
	}

	dims = Max(hnsw_cost_index_dims(index->indexoid, &m, &meta), 1);
	visit = (HNSW_COST_VISIT + dims / 4.0) * cpu_operator_cost;
	row = HNSW_COST_EXPAND * cpu_operator_cost + visit;

	/* a space qual narrows the search to that space's graph */
	MemSet(&costs, 0, sizeof(costs));
	genericcostestimate(root, path, loop_count, &costs);
	if (meta.nspacekeys > 0)
	{
		/*
		 * One search per graph: every space without a qual, about
		 * selectivity * spaces with one (1 for "= value", k for "= ANY" of k
		 * values).
		 */
		nspaces = Max(meta.dir_count, 1);
		if (path->indexclauses != NIL)
			nspaces = Max(rint(nspaces * costs.indexSelectivity), 1.0);
		ntuples = Max(ntuples * (path->indexclauses != NIL ? costs.indexSelectivity : 1.0), 1.0);
	}
	per_space = Max(ntuples / nspaces, 1.0);
	first = nspaces * Min(hnsw_ef_search * m + log(per_space) * m, per_space);
	expand = nspaces * Min(hnsw_ef_search, per_space);

	/* pending rows (fastupdate) are all read first, an exact distance each */
	for (int s = 0; s < meta.nstripes; s++)
		if (meta.pending_head[s] != InvalidBlockNumber)
			pending += (Max(meta.pending_pages[s], 1) - 0.5) * HNSW_PENDING_PER_PAGE;
	if (meta.nspacekeys > 0 && path->indexclauses != NIL)
		pending *= costs.indexSelectivity;

	*indexStartupCost = (first + pending) * visit +
		expand * HNSW_COST_EXPAND * cpu_operator_cost;
	*indexTotalCost = *indexStartupCost + Max(ntuples - expand, 0.0) * row;
	*indexSelectivity = costs.indexSelectivity;
	*indexCorrelation = 0.0;
	*indexPages = Min((first + pending) * Max(index->pages, 1) / Max(index->tuples, 1.0),
					  Max(index->pages, 1));
}

/*
 * The dimensions of a distance call's arguments: a constant's length, else
 * those of an engram_hnsw index on the column (0: unknown).  *toast_chunks:
 * TOAST chunks each call reads to detoast the column's value (0 when it is
 * inline: short, or STORAGE PLAIN / MAIN).
 */
static int
hnsw_call_dims(PlannerInfo *root, List *args, int *toast_chunks)
{
	ListCell   *lc;
	int			dims = 0;
	Var		   *var = NULL;

	*toast_chunks = 0;
	foreach(lc, args)
	{
		Node	   *arg = (Node *) lfirst(lc);

		if (IsA(arg, RelabelType))
			arg = (Node *) ((RelabelType *) arg)->arg;
		if (IsA(arg, Const) && !((Const *) arg)->constisnull)
		{
			ArrayType  *arr = DatumGetArrayTypeP(((Const *) arg)->constvalue);

			dims = ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr));
		}
		else if (IsA(arg, Var) && ((Var *) arg)->varlevelsup == 0 && var == NULL)
			var = (Var *) arg;
	}
	if (var == NULL || root == NULL || var->varno <= 0 ||
		var->varno >= root->simple_rel_array_size ||
		root->simple_rel_array[var->varno] == NULL)
		return dims;

	/*
	 * A foreign table's distances are computed where its rows are, when
	 * postgres_fdw ships the ORDER BY: leave such a call at its SQL-level
	 * cost.  Pricing it here also kept postgres_fdw from shipping a LIMIT
	 * (its estimate of the remote LIMIT charges the distance differently
	 * from a local Limit over the ordered scan).
	 */
	if (root->simple_rte_array[var->varno]->relkind == RELKIND_FOREIGN_TABLE)
		return 0;

	if (dims == 0)
	{
		ListCell   *ic;

		foreach(ic, root->simple_rel_array[var->varno]->indexlist)
		{
			IndexOptInfo *index = (IndexOptInfo *) lfirst(ic);
			HnswMetaInfo meta;
			double		m;

			if (index->amcostestimate == hnsw_costestimate &&
				index->indexkeys[index->ncolumns - 1] == var->varattno &&
				(dims = hnsw_cost_index_dims(index->indexoid, &m, &meta)) > 0)
				break;
		}
	}
	if (dims > 0 && root->simple_rte_array[var->varno]->rtekind == RTE_RELATION &&
		ARR_OVERHEAD_NONULLS(1) + sizeof(float) * (Size) dims > TOAST_TUPLE_THRESHOLD)
	{
		HeapTuple	tup = SearchSysCacheAttNum(root->simple_rte_array[var->varno]->relid,
											   var->varattno);

		if (HeapTupleIsValid(tup))
		{
			char		storage = ((Form_pg_attribute) GETSTRUCT(tup))->attstorage;

			if (storage == TYPSTORAGE_EXTERNAL || storage == TYPSTORAGE_EXTENDED)
				*toast_chunks = (ARR_OVERHEAD_NONULLS(1) + sizeof(float) * dims +
								 TOAST_MAX_CHUNK_SIZE - 1) / TOAST_MAX_CHUNK_SIZE;
			ReleaseSysCache(tup);
		}
	}
	return dims;
}

/*
 * Planner support function of the distance functions: the cost of a call
 * grows with the vectors' length, and with detoasting when the column's
 * vectors are stored out of line (STORAGE EXTERNAL, or EXTENDED as float
 * arrays do not compress).  A fixed COST would be 20x off one way or the
 * other between 128 inline and 1536 out-of-line dimensions.
 */
PG_FUNCTION_INFO_V1(engram_hnsw_distance_support);
Datum
engram_hnsw_distance_support(PG_FUNCTION_ARGS)
{
	Node	   *rawreq = (Node *) PG_GETARG_POINTER(0);
	SupportRequestCost *req;
	List	   *args;
	int			dims;
	int			chunks;

	if (!IsA(rawreq, SupportRequestCost))
		PG_RETURN_POINTER(NULL);
	req = (SupportRequestCost *) rawreq;
	if (req->node == NULL)
		PG_RETURN_POINTER(NULL);
	if (IsA(req->node, FuncExpr))
		args = ((FuncExpr *) req->node)->args;
	else if (IsA(req->node, OpExpr))
		args = ((OpExpr *) req->node)->args;
	else
		PG_RETURN_POINTER(NULL);
	dims = hnsw_call_dims(req->root, args, &chunks);
	if (dims <= 0)
		PG_RETURN_POINTER(NULL);
	req->startup = 0;
	req->per_tuple = (HNSW_COST_CALL + dims / 6.0 +
					  (chunks > 0 ? HNSW_COST_DETOAST + HNSW_COST_CHUNK * chunks : 0.0)) *
		cpu_operator_cost;
	PG_RETURN_POINTER(req);
}
