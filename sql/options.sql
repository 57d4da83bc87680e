--
-- options: the access method, its operator classes, index options and the
-- engram_hnsw.ef_search GUC.
--

-- the access method and its operator classes
SELECT amname, amtype FROM pg_am WHERE amname = 'engram_hnsw';
SELECT opcname, opcdefault, opcintype::regtype
FROM pg_opclass
WHERE opcmethod = (SELECT oid FROM pg_am WHERE amname = 'engram_hnsw')
ORDER BY opcname;
SELECT opcname, amvalidate(oid)
FROM pg_opclass
WHERE opcmethod = (SELECT oid FROM pg_am WHERE amname = 'engram_hnsw')
ORDER BY opcname;
-- the ordering operator of each class
SELECT c.opcname, o.amopstrategy, o.amopopr::regoperator, o.amoppurpose,
       o.amopsortfamily = (SELECT oid FROM pg_opfamily
                           WHERE opfname = 'float_ops'
                             AND opfmethod = (SELECT oid FROM pg_am WHERE amname = 'btree')) AS sorts_by_float
FROM pg_opclass c JOIN pg_amop o ON o.amopfamily = c.opcfamily
WHERE c.opcmethod = (SELECT oid FROM pg_am WHERE amname = 'engram_hnsw')
ORDER BY c.opcname;
-- properties of the access method
SELECT p.name, pg_indexam_has_property(a.oid, p.name)
FROM pg_am a,
     unnest(ARRAY['can_order', 'can_unique', 'can_multi_col', 'can_include']) p(name)
WHERE a.amname = 'engram_hnsw';

-- amvalidate rejects broken operator classes
CREATE OPERATOR CLASS opt_no_support_ops FOR TYPE real[] USING engram_hnsw AS
	OPERATOR 1 <-> (real[], real[]) FOR ORDER BY float_ops;
CREATE OPERATOR CLASS opt_no_operator_ops FOR TYPE real[] USING engram_hnsw AS
	FUNCTION 1 engram_hnsw_l2_support(internal);
SELECT opcname, amvalidate(oid)
FROM pg_opclass
WHERE opcname IN ('opt_no_support_ops', 'opt_no_operator_ops')
ORDER BY opcname;
-- only support function 1 exists
CREATE OPERATOR CLASS opt_bad_ops FOR TYPE real[] USING engram_hnsw AS
	OPERATOR 1 <-> (real[], real[]) FOR ORDER BY float_ops,
	FUNCTION 2 engram_hnsw_l2_support(internal);
DROP OPERATOR CLASS opt_no_support_ops USING engram_hnsw;
DROP OPERATOR CLASS opt_no_operator_ops USING engram_hnsw;
DROP OPERATOR FAMILY opt_no_support_ops USING engram_hnsw;
DROP OPERATOR FAMILY opt_no_operator_ops USING engram_hnsw;

CREATE TABLE opt_t (id int, v real[]);
INSERT INTO opt_t VALUES (1, '{1,2,3}'), (2, '{3,2,1}'), (3, NULL);

--
-- bad option values
--
-- m out of range
CREATE INDEX ON opt_t USING engram_hnsw (v) WITH (m = 1);
CREATE INDEX ON opt_t USING engram_hnsw (v) WITH (m = 101);
CREATE INDEX ON opt_t USING engram_hnsw (v) WITH (m = -5);
-- ef_construction out of range
CREATE INDEX ON opt_t USING engram_hnsw (v) WITH (ef_construction = 3);
CREATE INDEX ON opt_t USING engram_hnsw (v) WITH (ef_construction = 1001);
-- ef_construction below 2 * m (given, or defaulted)
CREATE INDEX ON opt_t USING engram_hnsw (v) WITH (m = 16, ef_construction = 31);
CREATE INDEX ON opt_t USING engram_hnsw (v) WITH (m = 100, ef_construction = 199);
CREATE INDEX ON opt_t USING engram_hnsw (v) WITH (m = 50);
CREATE INDEX ON opt_t USING engram_hnsw (v) WITH (ef_construction = 20);
-- dims out of range
CREATE INDEX ON opt_t USING engram_hnsw (v) WITH (dims = 16001);
CREATE INDEX ON opt_t USING engram_hnsw (v) WITH (dims = -1);
-- an option given twice
CREATE INDEX ON opt_t USING engram_hnsw (v) WITH (m = 8, m = 9);
CREATE INDEX ON opt_t USING engram_hnsw (v) WITH (dims = 3, dims = 3);
-- wrong type
CREATE INDEX ON opt_t USING engram_hnsw (v) WITH (m = 'abc');
CREATE INDEX ON opt_t USING engram_hnsw (v) WITH (ef_construction = '64abc');
CREATE INDEX ON opt_t USING engram_hnsw (v) WITH (dims = true);
CREATE INDEX ON opt_t USING engram_hnsw (v) WITH (m);
-- unknown options
CREATE INDEX ON opt_t USING engram_hnsw (v) WITH (foo = 1);
CREATE INDEX ON opt_t USING engram_hnsw (v) WITH (fillfactor = 50);
CREATE INDEX ON opt_t USING engram_hnsw (v) WITH (ef_search = 10);
-- dims that do not match the data
CREATE INDEX ON opt_t USING engram_hnsw (v) WITH (dims = 4);
CREATE INDEX ON opt_t USING engram_hnsw (v) WITH (dims = 2);
-- an index needs a vector column last and a space key before it, no unique or
-- INCLUDE indexes
CREATE INDEX ON opt_t USING engram_hnsw (id);
CREATE INDEX ON opt_t USING engram_hnsw (v real_cosine_ops, v real_ip_ops);
CREATE INDEX ON opt_t USING engram_hnsw (v) INCLUDE (id);
CREATE UNIQUE INDEX ON opt_t USING engram_hnsw (v);
-- an operator class of another access method
CREATE INDEX ON opt_t USING engram_hnsw (v array_ops);
-- none was created
SELECT count(*) FROM pg_indexes WHERE tablename = 'opt_t';

--
-- valid option combinations (boundaries included)
--
CREATE INDEX opt_default ON opt_t USING engram_hnsw (v);
CREATE INDEX opt_min ON opt_t USING engram_hnsw (v) WITH (m = 2, ef_construction = 4);
CREATE INDEX opt_max ON opt_t USING engram_hnsw (v) WITH (m = 100, ef_construction = 1000);
CREATE INDEX opt_2m ON opt_t USING engram_hnsw (v) WITH (m = 100, ef_construction = 200);
CREATE INDEX opt_dims ON opt_t USING engram_hnsw (v real_l2_ops) WITH (dims = 3);
CREATE INDEX opt_dims0 ON opt_t USING engram_hnsw (v real_l2_ops) WITH (dims = 0);
CREATE INDEX opt_all ON opt_t USING engram_hnsw (v real_cosine_ops)
	WITH (m = 4, ef_construction = 8, dims = 3);
CREATE INDEX opt_ip ON opt_t USING engram_hnsw (v real_ip_ops) WITH (M = 5, EF_CONSTRUCTION = 10);
CREATE INDEX opt_partial ON opt_t USING engram_hnsw (v) WHERE id > 1;
CREATE INDEX opt_expr ON opt_t USING engram_hnsw ((v || v::real[]) real_l2_ops) WITH (dims = 6);
SELECT c.relname, c.reloptions, opc.opcname
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_opclass opc ON opc.oid = i.indclass[0]
WHERE i.indrelid = 'opt_t'::regclass
ORDER BY c.relname;
SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'opt_t' ORDER BY indexname;
-- every one of them is a sound index of the two non-NULL rows
SELECT c.relname, k.elements, k.deleted_elements, k.heap_tids, k.unreachable
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid,
LATERAL engram_hnsw_check(i.indexrelid) k
WHERE i.indrelid = 'opt_t'::regclass
ORDER BY c.relname;

-- ALTER INDEX SET is validated in the same way
ALTER INDEX opt_min SET (m = 1);
ALTER INDEX opt_min SET (ef_construction = 2000);
ALTER INDEX opt_min SET (m = 8);
ALTER INDEX opt_min SET (bogus = 1);
ALTER INDEX opt_min SET (m = 3, ef_construction = 6);
ALTER INDEX opt_min RESET (ef_construction);
SELECT reloptions FROM pg_class WHERE relname = 'opt_min';
ALTER INDEX opt_min RESET (m);
SELECT reloptions FROM pg_class WHERE relname = 'opt_min';
DROP TABLE opt_t;

--
-- the ef_search GUC
--
SHOW engram_hnsw.ef_search;
SELECT name, setting, min_val, max_val, boot_val, context, vartype
FROM pg_settings WHERE name LIKE 'engram_hnsw.%';
SET engram_hnsw.ef_search = 0;
SET engram_hnsw.ef_search = 1001;
SET engram_hnsw.ef_search = -1;
SET engram_hnsw.ef_search = 'many';
SET engram_hnsw.ef_search = 12.5;
SHOW engram_hnsw.ef_search;
SET engram_hnsw.ef_search = 1;
SHOW engram_hnsw.ef_search;
SET engram_hnsw.ef_search = 1000;
SHOW engram_hnsw.ef_search;
SET engram_hnsw.ef_search = 100;
SHOW engram_hnsw.ef_search;
SELECT set_config('engram_hnsw.ef_search', '2000', false);
SELECT current_setting('engram_hnsw.ef_search');
BEGIN;
SET LOCAL engram_hnsw.ef_search = 7;
SHOW engram_hnsw.ef_search;
COMMIT;
SHOW engram_hnsw.ef_search;
-- the parallel build's lock-free read attempts: 0 or more, superuser only
SET engram_hnsw.parallel_read_tries = -1;
SET engram_hnsw.parallel_read_tries = 0;
SHOW engram_hnsw.parallel_read_tries;
RESET engram_hnsw.parallel_read_tries;
CREATE ROLE regress_engram_opt_user;
SET ROLE regress_engram_opt_user;
SET engram_hnsw.parallel_read_tries = 0;
RESET ROLE;
DROP ROLE regress_engram_opt_user;
RESET engram_hnsw.ef_search;
SHOW engram_hnsw.ef_search;
-- the prefix is reserved
SET engram_hnsw.no_such_setting = 1;
