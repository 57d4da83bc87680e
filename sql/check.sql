--
-- check: engram_hnsw_check() on known indexes, on relations that are not
-- engram_hnsw indexes, and as a role that does not own the index.
--

-- the result columns
SELECT p.proname, pg_get_function_arguments(p.oid) AS args,
       pg_get_function_result(p.oid) AS result, p.proisstrict, p.provolatile
FROM pg_proc p WHERE p.proname = 'engram_hnsw_check';

-- a known small index: five distinct vectors, three copies of one more
-- vector (they share one element) and two NULLs (not indexed)
CREATE TABLE chk_t (id int, v real[]);
INSERT INTO chk_t VALUES
	(1, '{1,0,0}'), (2, '{0,1,0}'), (3, '{0,0,1}'), (4, '{1,1,0}'), (5, '{0,1,1}'),
	(6, '{2,2,2}'), (7, '{2,2,2}'), (8, '{2,2,2}'),
	(9, NULL), (10, NULL);
CREATE INDEX chk_t_idx ON chk_t USING engram_hnsw (v);
SELECT pages, elements, deleted_elements, heap_tids, max_level >= 0 AS has_level, unreachable
FROM engram_hnsw_check('chk_t_idx');
-- by OID and by name give the same
SELECT (SELECT row(k.*)::text FROM engram_hnsw_check('chk_t_idx'::regclass::oid) k)
     = (SELECT row(k.*)::text FROM engram_hnsw_check('chk_t_idx') k) AS same;
-- all eight rows are found
SET enable_seqscan = off;
SELECT array_agg(id ORDER BY id) FROM (SELECT id FROM chk_t ORDER BY v <-> '{2,2,2}' LIMIT 100) s;
RESET enable_seqscan;
-- rows added by insert wait in the pending list (fastupdate): they are
-- elements of their own, not linked yet
INSERT INTO chk_t VALUES (11, '{3,3,3}'), (12, '{2,2,2}'), (13, NULL);
SELECT elements, deleted_elements, heap_tids, unreachable, pending
FROM engram_hnsw_check('chk_t_idx');
SELECT engram_hnsw_merge_pending('chk_t_idx') AS merged;
SELECT elements, deleted_elements, heap_tids, unreachable, pending
FROM engram_hnsw_check('chk_t_idx');
-- dead rows count until VACUUM, then their elements are deleted (on a
-- temporary copy: VACUUM then removes every deleted row, whatever other
-- sessions' snapshots see)
CREATE TEMP TABLE chk_tmp AS SELECT * FROM chk_t;
CREATE INDEX chk_tmp_idx ON chk_tmp USING engram_hnsw (v);
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('chk_tmp_idx');
DELETE FROM chk_tmp WHERE id IN (1, 2, 6);
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('chk_tmp_idx');
VACUUM chk_tmp;
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('chk_tmp_idx');
-- a deleted copy of a shared vector only removes its own heap TID
SET enable_seqscan = off;
SELECT array_agg(id ORDER BY id) FROM (SELECT id FROM chk_tmp ORDER BY v <-> '{2,2,2}' LIMIT 100) s;
RESET enable_seqscan;
DROP TABLE chk_tmp;

-- an empty index: just the meta page
CREATE TABLE chk_empty (id int, v real[]);
CREATE INDEX chk_empty_idx ON chk_empty USING engram_hnsw (v real_cosine_ops);
SELECT * FROM engram_hnsw_check('chk_empty_idx');
-- an index of NULLs and zero vectors only (cosine) is empty too
INSERT INTO chk_empty VALUES (1, NULL), (2, '{0,0}');
SELECT * FROM engram_hnsw_check('chk_empty_idx');
REINDEX INDEX chk_empty_idx;
SELECT * FROM engram_hnsw_check('chk_empty_idx');

-- a temporary table's index
CREATE TEMP TABLE chk_temp (id int, v real[]);
INSERT INTO chk_temp SELECT i, ARRAY[i, i * i, 1]::real[] FROM generate_series(1, 50) i;
CREATE INDEX chk_temp_idx ON chk_temp USING engram_hnsw (v real_ip_ops) WITH (m = 4, ef_construction = 8);
SELECT elements, deleted_elements, heap_tids, unreachable FROM engram_hnsw_check('chk_temp_idx');

-- STRICT: NULL in, NULL out
SELECT * FROM engram_hnsw_check(NULL);

--
-- not an engram_hnsw index
--
CREATE INDEX chk_t_btree ON chk_t (id);
SELECT * FROM engram_hnsw_check('chk_t_btree');
SELECT * FROM engram_hnsw_check('pg_class_oid_index');
-- not an index at all (the message names the OID, which varies)
CREATE FUNCTION chk_error(rel regclass) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	PERFORM engram_hnsw_check(rel);
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || regexp_replace(SQLERRM, 'OID [0-9]+', 'OID N');
END
$$;
SELECT chk_error('chk_t');
SELECT chk_error('pg_class');
SELECT chk_error(0);
SELECT chk_error('chk_t_btree');
SELECT chk_error('chk_t_idx');
SELECT * FROM engram_hnsw_check('no_such_index');

--
-- only the owner of the index (or a superuser) may check it
--
CREATE ROLE regress_engram_check_user;
GRANT SELECT ON chk_t TO regress_engram_check_user;
SET ROLE regress_engram_check_user;
SELECT count(*) FROM chk_t;
SELECT * FROM engram_hnsw_check('chk_t_idx');
SELECT chk_error('chk_t_idx');
RESET ROLE;
-- a table the role owns: its index may be checked
CREATE TABLE chk_owned (id int, v real[]);
CREATE INDEX chk_owned_idx ON chk_owned USING engram_hnsw (v);
ALTER TABLE chk_owned OWNER TO regress_engram_check_user;
SELECT relname, pg_get_userbyid(relowner) FROM pg_class WHERE relname LIKE 'chk_owned%' ORDER BY 1;
SET ROLE regress_engram_check_user;
INSERT INTO chk_owned VALUES (1, '{1,2}'), (2, '{3,4}');
SELECT elements, heap_tids, unreachable FROM engram_hnsw_check('chk_owned_idx');
RESET ROLE;
-- and a superuser may check any index
SELECT elements, heap_tids, unreachable FROM engram_hnsw_check('chk_owned_idx');
DROP TABLE chk_owned;
REVOKE SELECT ON chk_t FROM regress_engram_check_user;
DROP ROLE regress_engram_check_user;

DROP FUNCTION chk_error(regclass);
DROP TABLE chk_t, chk_empty, chk_temp;
