# Phoenix Orchestrator. `make` builds ./orchestrator; `make check` runs every test (the README's
# test command runs it after installing dependencies); `make sanitize` runs the tests under
# ASan+UBSan; `make bench` runs the benchmarks. Sources are found by wildcard so a new module
# needs no Makefile edit: src/*.c (main.c is the program, the rest is build/libphoenix.a),
# tests/unit/test_*.c (one Criterion binary each), tests/integration/test_*.py,
# tests/pve-sim/test_*.py, tests/bench/bench_*.

VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0-dev)
PREFIX ?= /usr/local
DESTDIR ?=
BUILD ?= build
CC ?= cc
PKGS := libcurl openssl jansson yaml-0.1 libguestfs libisofs-1 gpgme
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
TEST_LIBS := $(shell pkg-config --libs criterion 2>/dev/null)

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wno-format-nonliteral -Wno-format-truncation
CFLAGS ?= -O2 -g
ALL_CFLAGS = -std=gnu11 $(WARN) $(CFLAGS) $(EXTRA_CFLAGS) -Iinclude $(PKG_CFLAGS) \
	-DPHX_VERSION='"$(VERSION)"' -DPHX_DATADIR='"$(PREFIX)/share/phoenix"' -D_GNU_SOURCE -MMD -MP
ALL_LDFLAGS = $(LDFLAGS) $(EXTRA_LDFLAGS)
LIBS = $(PKG_LIBS) -lpthread

SRCS := $(wildcard src/*.c)
LIB_SRCS := $(filter-out src/main.c,$(SRCS))
OBJS := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(SRCS))
LIB_OBJS := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(LIB_SRCS))
LIB := $(BUILD)/libphoenix.a
# A private BUILD dir gets its own binary, so parallel builds never overwrite ./orchestrator.
BIN := $(if $(filter build,$(BUILD)),orchestrator,$(BUILD)/orchestrator)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
# C integration tests (Criterion) that drive the library against the simulator
ITEST_SRCS := $(wildcard tests/integration/test_*.c)
ITEST_BINS := $(patsubst tests/integration/%.c,$(BUILD)/itests/%,$(ITEST_SRCS))

.PHONY: orchestrator-san all check unit integration simtest sanitize bench demo install uninstall clean man \
	deps format tidy
all: $(BIN)

$(BIN): $(BUILD)/obj/main.o $(LIB)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(ALL_LDFLAGS) $(LIBS)

$(LIB): $(LIB_OBJS)
	@mkdir -p $(@D)
	@rm -f $@
	@echo "  AR      $@"
	@ar rcs $@ $^

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(@D)
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Itests/unit -o $@ $< $(LIB) $(ALL_LDFLAGS) $(LIBS) $(TEST_LIBS)

$(BUILD)/itests/%: tests/integration/%.c $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Itests/integration -o $@ $< $(LIB) $(ALL_LDFLAGS) $(LIBS) $(TEST_LIBS)

# The man page is generated from the same option table as --help.
man: docs/orchestrator.1
docs/orchestrator.1: orchestrator
	./orchestrator --man > $@.tmp && mv $@.tmp $@

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do \
		echo "== $$t"; $$t --jobs 2 $(CRITERION_ARGS); done

simtest:
	cd tests/pve-sim && python3 -m unittest discover -p 'test_*.py' -v

integration: $(BIN) $(ITEST_BINS)
	@mkdir -p $(BUILD)/sim-logs
	@set -e; for t in $(ITEST_BINS); do echo "== $$t"; \
		PHX_BUILD=$(CURDIR)/$(BUILD) PHX_SRC=$(CURDIR) $$t --jobs 1; done
	PHX_BIN=$(abspath $(BIN)) PHX_BUILD=$(abspath $(BUILD)) \
		python3 -m unittest discover -s tests/integration -p 'test_*.py' -v

# make check runs every suite through tests/tools/prun.py, as parallel jobs on all cores (the
# targets unit, simtest and integration run one suite each, serially).
TEST_JOBS ?= $(shell nproc 2>/dev/null || echo 2)
check: $(BIN) $(UNIT_BINS) $(ITEST_BINS)
	@mkdir -p $(BUILD)/sim-logs
	PHX_BIN=$(abspath $(BIN)) PHX_BUILD=$(abspath $(BUILD)) PHX_SRC=$(CURDIR) \
		python3 tests/tools/prun.py --jobs $(TEST_JOBS) --log-dir $(BUILD)/test-logs \
		--times $(BUILD)/test-times.json --unit $(UNIT_BINS) --itest $(ITEST_BINS) \
		--simtest tests/pve-sim --pytest tests/integration
	@./$(BIN) --man | cmp -s - docs/orchestrator.1 || \
		{ echo "docs/orchestrator.1 is stale: run 'make man'"; exit 1; }
	@echo "make check: all test suites passed"

# ASan+UBSan in a separate build tree, running the unit and integration tests.
sanitize:
	$(MAKE) BUILD=build/san CFLAGS='-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all' \
		LDFLAGS='-fsanitize=address,undefined' orchestrator-san
orchestrator-san: $(BIN) $(UNIT_BINS) $(ITEST_BINS)
	@# the binary finds its built-in feature scripts in configs/ beside it, as the top-level
	@# build's does (test_check.CheckTest)
	@ln -sfn $(CURDIR)/configs $(BUILD)/configs
	@set -e; for t in $(UNIT_BINS); do echo "== $$t (sanitized)"; \
		ASAN_OPTIONS=detect_leaks=1 $$t --jobs 1; done
	@set -e; for t in $(ITEST_BINS); do echo "== $$t (sanitized)"; \
		PHX_BUILD=$(CURDIR)/$(BUILD) PHX_SRC=$(CURDIR) $$t --jobs 1; done
	PHX_BIN=$(abspath $(BIN)) PHX_BUILD=$(abspath $(BUILD)) PHX_SANITIZE=1 \
		python3 -m unittest discover -s tests/integration -p 'test_*.py' -v

bench: $(BIN)
	@mkdir -p $(BUILD)/sim-logs $(BUILD)/bench
	@set -e; for b in tests/bench/bench_*; do echo "== $$b"; \
		PHX_BIN=$(abspath $(BIN)) PHX_BUILD=$(abspath $(BUILD)) $$b; done

demo: $(BIN)
	scripts/demo.sh

deps:
	scripts/install-deps.sh

# The systemd units go to $(PREFIX)/lib/systemd/system (systemd reads /usr/local/lib/systemd/system
# too); UNITDIR=/etc/systemd/system puts them elsewhere. The service runs $(PREFIX)/bin/orchestrator.
# Completions go where bash-completion and Debian's zsh look under /usr/local (debian/rules
# passes /usr's ZSHCOMPDIR); the example config goes with the docs.
install uninstall: UNITDIR ?= $(PREFIX)/lib/systemd/system
install uninstall: BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
install uninstall: ZSHCOMPDIR ?= $(PREFIX)/share/zsh/site-functions
install uninstall: EXAMPLEDIR ?= $(PREFIX)/share/doc/phoenix-orchestrator/examples
install: $(BIN)
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/orchestrator
	install -D -m 0644 docs/orchestrator.1 $(DESTDIR)$(PREFIX)/share/man/man1/orchestrator.1
	install -d $(DESTDIR)$(PREFIX)/share/phoenix/features
	install -m 0644 configs/features/*.sh $(DESTDIR)$(PREFIX)/share/phoenix/features/
	install -d $(DESTDIR)$(UNITDIR)
	sed 's|@BINDIR@|$(PREFIX)/bin|g' contrib/systemd/phoenix-orchestrator.service.in \
		> $(DESTDIR)$(UNITDIR)/phoenix-orchestrator.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/phoenix-orchestrator.service
	install -m 0644 contrib/systemd/phoenix-orchestrator.timer $(DESTDIR)$(UNITDIR)/
	install -D -m 0644 contrib/completion/orchestrator.bash $(DESTDIR)$(BASHCOMPDIR)/orchestrator
	install -D -m 0644 contrib/completion/_orchestrator $(DESTDIR)$(ZSHCOMPDIR)/_orchestrator
	install -D -m 0644 phoenix_vm_configs.example.json \
		$(DESTDIR)$(EXAMPLEDIR)/phoenix_vm_configs.example.json

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/orchestrator $(DESTDIR)$(PREFIX)/share/man/man1/orchestrator.1
	rm -rf $(DESTDIR)$(PREFIX)/share/phoenix
	rm -f $(DESTDIR)$(UNITDIR)/phoenix-orchestrator.service \
		$(DESTDIR)$(UNITDIR)/phoenix-orchestrator.timer
	rm -f $(DESTDIR)$(BASHCOMPDIR)/orchestrator $(DESTDIR)$(ZSHCOMPDIR)/_orchestrator
	rm -f $(DESTDIR)$(EXAMPLEDIR)/phoenix_vm_configs.example.json

format:
	clang-format -i src/*.c include/*.h tests/unit/*.c

clean:
	rm -rf build orchestrator

-include $(OBJS:.o=.d)
