/*-------------------------------------------------------------------------
 *
 * hnsw_cost.c
 *	  amcostestimate: the planner's cost of an engram_hnsw index scan.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "access/genam.h"
#include "optimizer/optimizer.h"
#include "utils/selfuncs.h"

#include "engram_hnsw.h"

/*
 * Cost: an HNSW scan only serves ORDER BY distance.  Without an ordering
 * clause the path is priced out.  With one, the work is about ef_search
 * expansions of 2m neighbours on layer 0 plus the descent, nearly all of it
 * before the first row comes back, so it is all startup cost.  The pages
 * an HNSW search visits are the same few hot ones query after query, so
 * they are charged as sequential, not random, reads, and never more pages
 * than the index has.
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
	double		m = HNSW_DEFAULT_M;
	double		visited;
	double		pages;
	double		nspaces = 1.0;
	double		per_space;
	double		pending = 0.0;
	HnswMetaInfo meta;
	Relation	rel;

	/*
	 * Never without ORDER BY: NULL vectors are not in the index, so a scan
	 * without an ordering operator cannot return every row.  Priced above
	 * disable_cost, so that not even enable_seqscan = off picks it.
	 */
	if (path->indexorderbys == NIL)
	{
		*indexStartupCost = DBL_MAX;
		*indexTotalCost = DBL_MAX;
		*indexSelectivity = 0.0;
		*indexCorrelation = 0.0;
		*indexPages = 0;
		return;
	}

	rel = index_open(index->indexoid, NoLock);
	m = hnsw_index_m(rel);
	hnsw_read_meta(rel, &meta);
	index_close(rel, NoLock);

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
	visited = nspaces * Min(hnsw_ef_search * 2.0 * m + log(per_space) * m, per_space);

	/* pending rows (fastupdate) are all read, with an exact distance each */
	for (int s = 0; s < meta.nstripes; s++)
		if (meta.pending_head[s] != InvalidBlockNumber)
			pending += (Max(meta.pending_pages[s], 1) - 0.5) * HNSW_PENDING_PER_PAGE;
	if (meta.nspacekeys > 0 && path->indexclauses != NIL)
		pending *= costs.indexSelectivity;
	visited += pending;

	pages = Min(visited * Max(index->pages, 1) / Max(index->tuples, 1.0),
				Max(index->pages, 1));

	*indexStartupCost = pages * seq_page_cost +
		visited * (cpu_index_tuple_cost + cpu_operator_cost);
	*indexTotalCost = *indexStartupCost;
	*indexSelectivity = costs.indexSelectivity;
	*indexCorrelation = 0.0;
	*indexPages = pages;
}
