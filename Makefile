# refit — build, test, fuzz, install.
#
#   make                      build ./refit
#   make check                install missing test dependencies, then unit tests (cmocka) and
#                             end-to-end tests (pytest, real dockerd + registries)
#   make SANITIZER=address,undefined check    the same under ASan+UBSan (objects in build/san)
#   make fuzz                 libFuzzer targets with clang (build/fuzz/*)
#   make deps                 install Debian build and test dependencies (apt-get; idempotent)
#   make install PREFIX=/usr DESTDIR=...

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SYSCONFDIR ?= /etc
UNITDIR ?= $(PREFIX)/lib/systemd/system
DOCDIR ?= $(PREFIX)/share/doc/refit
MANDIR ?= $(PREFIX)/share/man

CC ?= cc
CFLAGS ?= -O2 -g
PKG_CONFIG ?= pkg-config
PYTHON ?= /usr/bin/python3
VERSION := 0.1.0

PKGS := libcurl jansson yaml-0.1 libmicrohttpd libcrypto libsystemd

WARN := -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes \
	-Wpointer-arith -Wcast-align -Wwrite-strings -Wvla -Wundef -Wnull-dereference \
	-Wimplicit-fallthrough -Wno-unused-parameter
ifeq ($(WERROR),1)
WARN += -Werror
endif

override CFLAGS += -std=c11 -D_GNU_SOURCE -DREFIT_VERSION='"$(VERSION)"' -Iinclude $(WARN) \
	$(shell $(PKG_CONFIG) --cflags $(PKGS)) -MMD -MP
LIBS := $(shell $(PKG_CONFIG) --libs $(PKGS)) -lpthread

SANITIZER ?=
ifneq ($(SANITIZER),)
BUILD := build/san
BIN := $(BUILD)/refit
override CFLAGS += -fsanitize=$(SANITIZER) -fno-omit-frame-pointer -fno-sanitize-recover=all -O1
override LDFLAGS += -fsanitize=$(SANITIZER)
else
BUILD := build/default
BIN := refit
endif

# The library is src/*.c (what the daemon, the unit tests and the fuzzers
# link); the command line is src/cli/*.c, linked into the binary only.
SRCS := $(wildcard src/*.c)
CLI_SRCS := $(wildcard src/cli/*.c)
LIB_OBJS := $(patsubst src/%.c,$(BUILD)/src/%.o,$(SRCS))
CLI_OBJS := $(patsubst src/%.c,$(BUILD)/src/%.o,$(CLI_SRCS))
LIBREFIT := $(BUILD)/librefit.a

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))

FUZZ_SRCS := $(wildcard fuzz/*-fuzzer.c)
FUZZ_BINS := $(patsubst fuzz/%.c,build/fuzz/%,$(FUZZ_SRCS))
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 30

.PHONY: all run check unit valgrind e2e fuzz fuzz-run bench bench-update bench-daemon install uninstall clean deps deps-build

all: $(BIN)

$(BIN): $(CLI_OBJS) $(LIBREFIT)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(LIBREFIT): $(LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/src/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(LIBREFIT)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIBREFIT) $(LIBS) $(shell $(PKG_CONFIG) --libs cmocka)

# Build and run the daemon in the foreground with the built-in defaults.
run: deps-build
	$(MAKE) all
	./$(BIN) daemon

# valgrind cannot run a sanitizer build: that one has LeakSanitizer instead.
check: deps unit $(if $(SANITIZER),,valgrind) e2e

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

# The unit tests under valgrind's memcheck: any error or definite/indirect leak fails.
valgrind: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== valgrind $$t"; \
		valgrind -q --error-exitcode=1 --leak-check=full --show-leak-kinds=definite,indirect \
			--errors-for-leak-kinds=definite,indirect $$t; done

# E2E_JOBS test files run at once (pytest-xdist; most of a test's time is
# spent waiting on the engine, health gates and timeouts); 1 runs them in turn.
E2E_JOBS ?= 3
E2E_XDIST = $(shell [ "$(E2E_JOBS)" -gt 1 ] 2>/dev/null && $(PYTHON) -c 'import xdist' 2>/dev/null && \
	echo "-n $(E2E_JOBS) --dist loadfile")
e2e: $(BIN)
	$(PYTHON) tests/e2e/harness.py engine
	REFIT_BIN=$(abspath $(BIN)) $(PYTHON) -m pytest -q -rs -p no:cacheprovider --durations=15 $(E2E_XDIST) \
		tests/e2e $(PYTEST_ARGS)

# libFuzzer targets: the library sources are compiled once for fuzzing
# (build/fuzz/obj), and each fuzz/NAME-fuzzer.c is linked against them.
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -DREFIT_VERSION='"$(VERSION)"' -Iinclude -g -O1 \
	$(shell $(PKG_CONFIG) --cflags $(PKGS))
FUZZ_OBJS := $(patsubst src/%.c,build/fuzz/obj/%.o,$(SRCS))
build/fuzz/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined -MMD -MP -c -o $@ $<
build/fuzz/%-fuzzer: fuzz/%-fuzzer.c $(FUZZ_OBJS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $< $(FUZZ_OBJS) $(LIBS)

fuzz: $(FUZZ_BINS)

# Run every fuzz target for FUZZ_SECONDS on its seed corpus, FUZZ_JOBS at a time.
FUZZ_JOBS ?= $(shell nproc)
fuzz-run: fuzz
	@fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_JOBS) $(FUZZ_BINS)

bench: $(BIN)
	REFIT_BIN=$(abspath $(BIN)) $(PYTHON) bench/check_bench.py $(BENCH_ARGS)

bench-update: $(BIN)
	REFIT_BIN=$(abspath $(BIN)) $(PYTHON) bench/update_bench.py $(BENCH_ARGS)

bench-daemon: $(BIN)
	REFIT_BIN=$(abspath $(BIN)) $(PYTHON) bench/daemon_bench.py $(BENCH_ARGS)

install: $(BIN)
	install -D -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/refit
	install -D -m 0644 systemd/refit.service $(DESTDIR)$(UNITDIR)/refit.service
	sed -i -e "s|/usr/local/bin/refit|$(BINDIR)/refit|" -e "s|/usr/local/share/doc/refit|$(DOCDIR)|" \
		$(DESTDIR)$(UNITDIR)/refit.service
	install -D -m 0644 config/refit.yml $(DESTDIR)$(SYSCONFDIR)/refit/refit.yml.example
	install -D -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	install -D -m 0644 man/refit.8 $(DESTDIR)$(MANDIR)/man8/refit.8

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/refit $(DESTDIR)$(UNITDIR)/refit.service \
		$(DESTDIR)$(SYSCONFDIR)/refit/refit.yml.example $(DESTDIR)$(DOCDIR)/README.md \
		$(DESTDIR)$(MANDIR)/man8/refit.8

clean:
	rm -rf build refit

# Debian packages for building, testing and fuzzing refit.
DEB_BUILD := build-essential pkg-config libcurl4-openssl-dev libjansson-dev libyaml-dev \
	libmicrohttpd-dev libssl-dev libsystemd-dev
DEB_TEST := libcmocka-dev python3 python3-pytest python3-jwt python3-cryptography \
	docker.io docker-registry docker-compose busybox-static openssl apache2-utils curl \
	clang libclang-rt-14-dev systemd iptables time valgrind groff-base wrk jq python3-yaml \
	python3-pytest-xdist
deps-build:
	@$(MAKE) --no-print-directory deps DEB_TEST=

deps:
	@missing=$$(for p in $(DEB_BUILD) $(DEB_TEST); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "all build and test dependencies are installed"; fi

-include $(LIB_OBJS:.o=.d) $(CLI_OBJS:.o=.d) $(FUZZ_OBJS:.o=.d)
