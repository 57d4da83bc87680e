--
-- Reading an index's space directory with pageinspect (layout of
-- src/hnsw_format.h), for the suites that check it: included with \i from
-- the top of the tree, where make installcheck runs; each suite drops these
-- functions and pageinspect at its end.
--
CREATE EXTENSION IF NOT EXISTS pageinspect;
-- the unsigned little-endian 16- and 32-bit integers of page p at byte off
CREATE FUNCTION rd_u16(p bytea, off int) RETURNS int
LANGUAGE sql IMMUTABLE AS $$ SELECT get_byte(p, off) + 256 * get_byte(p, off + 1) $$;
CREATE FUNCTION rd_u32(p bytea, off int) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
	SELECT get_byte(p, off) + 256 * get_byte(p, off + 1) + 65536 * get_byte(p, off + 2)
		+ 16777216::bigint * get_byte(p, off + 3)
$$;
-- every directory entry, in chain order: its block, that block's image and
-- the entry's offset in it
CREATE FUNCTION rd_dir(idx regclass) RETURNS TABLE (blkno bigint, page bytea, off int)
LANGUAGE plpgsql AS $$
DECLARE
	pages int := 0;
BEGIN
	blkno := rd_u32(get_raw_page(idx::text, 0), 72);
	WHILE blkno <> 4294967295 LOOP
		page := get_raw_page(idx::text, blkno::int);
		FOR k IN 0 .. (rd_u16(page, 12) - 24) / 4 - 1 LOOP
			off := rd_u16(page, 24 + 4 * k) & 32767;
			RETURN NEXT;
		END LOOP;
		blkno := rd_u32(page, 8176);
		pages := pages + 1;
		IF pages > 1000 THEN
			RAISE EXCEPTION 'directory chain of % too long', idx;
		END IF;
	END LOOP;
END
$$;
