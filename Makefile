# gitops — build, test, bench. See README.md and docs/architecture.md.
#
#   make            build ./gitops and ./gitops-nft
#   make deps       install build, test and node dependencies (apt-get, idempotent)
#   make check      deps + build + every test (normal and ASan+UBSan); last line "N passed, N failed"
#   make bench      benchmarks, each printing a ratio against its baseline
#   make demo       the README's tour on a local testbed
#   make fuzz       a longer libFuzzer run of the decoder+validator (FUZZ_SECONDS=600)

CC       ?= cc
PKGS      = libgit2 yaml-0.1 jansson libcrypto libcurl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# Linking. Every `ssh NODE gitops node status` starts gitops afresh and each shared
# library costs every start (docs/architecture.md, "Start-up cost"), so: libcurl is not
# linked (the httpGet probes dlopen() it, runtime/probe.c), nor GSSAPI (a static
# libgit2 needs it, missing from its .pc, no .a on Debian: store/gssapi_lazy.c
# dlopen()s it at libgit2's first call); the other libraries and their dependencies go
# in statically wherever a static archive is installed; the C library stays shared.
LINK_PKGS  = libgit2 yaml-0.1 jansson libcrypto
LINK_L    := $(patsubst -l%,%,$(shell pkg-config --static --libs-only-l $(LINK_PKGS) 2>/dev/null))
LIBC_L     = c m rt dl pthread
STATIC_L  := $(foreach l,$(filter-out $(LIBC_L),$(LINK_L)),\
		$(if $(filter /%,$(shell $(CC) -print-file-name=lib$l.a)),$l))
PKG_LIBS   := -Wl,-Bstatic $(STATIC_L:%=-l%) -Wl,-Bdynamic $(filter-out $(STATIC_L:%=-l%),$(LINK_L:%=-l%)) \
	      -pthread
WARN      = -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -Wstrict-prototypes -Wvla
CFLAGS   ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(PKG_CFLAGS) -I. -MMD -MP
VERSION  := $(shell git describe --always --dirty 2>/dev/null || echo unknown)

LIB_SRC  = $(wildcard lib/*.c api/*.c store/*.c reconcile/*.c runtime/*.c netpol/*.c)
CLI_SRC  = $(wildcard cli/*.c)
UNIT_SRC = $(wildcard tests/unit/test_*.c)

# B is the build directory; O the object flavour. The asan flavour lives in build/asan.
B ?= build
# libgitops.a once more after libgit2.a, for the gss_* symbols libgit2 asks for
# (store/gssapi_lazy.c)
PKG_LIBS += $(B)/libgitops.a
LIB_OBJ  = $(LIB_SRC:%.c=$(B)/%.o)
CLI_OBJ  = $(CLI_SRC:%.c=$(B)/%.o)
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)

all: gitops gitops-nft

# copy then rename: a running shim keeps ./gitops busy ("Text file busy")
gitops: $(B)/gitops
	cp $< $@.tmp && mv -f $@.tmp $@
gitops-nft: $(B)/gitops-nft
	cp $< $@.tmp && mv -f $@.tmp $@

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# the version string is rebuilt every time: `git describe` changes without a source change
$(B)/lib/version.o: lib/version.c FORCE
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -DGITOPS_VERSION='"$(VERSION)"' -c $< -o $@
FORCE:

$(B)/libgitops.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(B)/gitops: $(CLI_OBJ) $(B)/libgitops.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(CLI_OBJ) $(B)/libgitops.a $(PKG_LIBS)

# The GPL-2.0 nftables applier: links libnftables and nothing of ours (docs/licensing.md).
$(B)/gitops-nft: netpol/applier/gitops-nft.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(shell pkg-config --cflags libnftables) \
		-o $@ $< $(LDFLAGS) $(shell pkg-config --libs libnftables)

$(B)/tests/%: tests/unit/%.c $(B)/libgitops.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(B)/libgitops.a $(PKG_LIBS) -lcmocka $(TEST_LIBS)

units: $(UNIT_BIN)

# Benchmark programs: bench/<name>.c -> build/bench/<name> (may link sqlite3).
$(B)/bench/%: bench/%.c $(B)/libgitops.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(B)/libgitops.a $(PKG_LIBS) -lsqlite3 -lpthread

asan:
	$(MAKE) B=build/asan CC=clang CFLAGS='-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all' \
		LDFLAGS='-fsanitize=address,undefined' build/asan/gitops build/asan/gitops-nft units

deps:
	@sh mk/deps.sh

check: deps
	@$(MAKE) -s all units asan >/dev/null
	@sh tests/run-all

bench: all
	@sh bench/run

# libFuzzer target: the library built with fuzzer instrumentation in build/fuzz.
fuzz-build:
	$(MAKE) B=build/fuzz CC=clang \
		CFLAGS='-O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer' \
		build/fuzz/fuzz_validate

build/fuzz/fuzz_validate: tests/fuzz/fuzz_validate.c build/fuzz/libgitops.a
	clang $(ALL_CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $< build/fuzz/libgitops.a $(PKG_LIBS)

fuzz:
	@sh tests/fuzz/run $${FUZZ_SECONDS:-600}

demo: deps all
	@sh mk/demo.sh

demo-down:
	@sh mk/demo.sh down

schema:
	/usr/bin/python3 api/gen/genschema.py > api/schema_gen.c.new && mv api/schema_gen.c.new api/schema_gen.c

clean:
	rm -rf build gitops gitops-nft

PHONY_EXTRA = fuzz-build
.PHONY: FORCE all units asan deps check bench fuzz fuzz-build demo demo-down schema clean

-include $(shell find $(B) -name '*.d' 2>/dev/null)
