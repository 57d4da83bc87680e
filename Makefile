# engram_hnsw: PGXS build.  `make`, `make install`, `make installcheck`.
# Build with warnings as errors: make WERROR=1

EXTENSION = engram_hnsw
MODULE_big = engram_hnsw
OBJS = \
	src/hnsw_build.o \
	src/hnsw_build_parallel.o \
	src/hnsw_check.o \
	src/hnsw_codes.o \
	src/hnsw_codes_kernels.o \
	src/hnsw_cost.o \
	src/hnsw_distance.o \
	src/hnsw_graph.o \
	src/hnsw_insert.o \
	src/hnsw_kernels.o \
	src/hnsw_options.o \
	src/hnsw_pagegraph.o \
	src/hnsw_pages.o \
	src/hnsw_pending.o \
	src/hnsw_place.o \
	src/hnsw_scan.o \
	src/hnsw_space.o \
	src/hnsw_util.o \
	src/hnsw_vacuum.o \
	src/hnsw_vector.o \
	src/hnsw_veccache.o \
	src/hnsw_worker.o

# The install script lives at the top level, where PGXS looks for DATA.
DATA = engram_hnsw--0.3.0.sql engram_hnsw--0.2.0--0.3.0.sql engram_hnsw--0.2.0.sql \
	engram_hnsw--0.1.0--0.2.0.sql engram_hnsw--0.1.0.sql
PGFILEDESC = "engram_hnsw - HNSW index access method for real[]"

# pg_regress suites: sql/NAME.sql, expected/NAME.out
REGRESS = distance options build scan insert vacuum check maintenance spaces spaces_whole pending merge_worker plans codes
REGRESS_OPTS = --load-extension=engram_hnsw

# isolation suites: test/isolation/specs/NAME.spec, test/isolation/expected/NAME.out
ISOLATION = concurrent_insert_scan_vacuum spaces_concurrent pending_merge
ISOLATION_OPTS = --inputdir=test/isolation --load-extension=engram_hnsw

# TAP suites: test/t/*.pl (PostgreSQL::Test::Cluster)
TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl

PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare \
	-Wno-missing-field-initializers -Wno-cast-function-type
ifdef WERROR
PG_CFLAGS += -Werror
endif

# Distance kernels: let the compiler vectorise the float reductions.
src/hnsw_kernels.o: CFLAGS += -O3 -fno-math-errno -fno-trapping-math -fassociative-math -fno-signed-zeros
# Code estimate kernels: the same; the encoders must give the same bytes on
# every machine, so no contraction into fused multiply-adds there.
src/hnsw_codes_kernels.o: CFLAGS += -O3 -fno-math-errno -fno-trapping-math -fassociative-math -fno-signed-zeros
src/hnsw_codes.o: CFLAGS += -ffp-contract=off

EXTRA_CLEAN = test/tools/idx2copy tmp_check results output_iso

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Every object depends on the shared headers (PGXS does not track headers;
# they are private, not installed).  After the include, so that PGXS's "all"
# stays the default goal.
$(OBJS): src/engram_hnsw.h src/hnsw_format.h src/hnsw_graph.h
src/hnsw_build.o src/hnsw_build_parallel.o: src/hnsw_build.h
src/hnsw_codes.o: src/hnsw_codes.h src/hnsw_codes_kernels.h
src/hnsw_codes_kernels.o: src/hnsw_codes_kernels.h
