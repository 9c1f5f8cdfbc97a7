# refit — build, test, fuzz, install.
#
#   make                      build ./refit
#   make check                install missing test dependencies, then unit tests (cmocka) and
#                             end-to-end tests (pytest, real dockerd + registries)
#   make SANITIZER=address,undefined check    the same under ASan+UBSan (objects in build/san)
#   make fuzz                 libFuzzer targets with clang (build/fuzz/*)
#   make deps                 install Debian build and test dependencies (apt-get; idempotent)
#   make install PREFIX=/usr DESTDIR=...
#   make deb                  the Debian package (../refit_VERSION_amd64.deb, copied to build/deb/)
#   make image                the container image refit:VERSION and refit:latest (Dockerfile)
#   make dist                 the release tarball build/refit-VERSION.tar.gz (git archive + VERSION)

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
# Everything that runs a program is expanded when first used, not while the
# Makefile is read: `make run` on a machine without the build packages (or
# pkg-config itself) installs them first and says nothing else.
# once(VAR,CMD): VAR is $(shell CMD), run the first time VAR is used.
once = $(eval $(1) := $$(shell $(2)))$($(1))
# scripts/version: git describe, or the tarball's VERSION file
VERSION = $(call once,VERSION,sh scripts/version)
DEB_VERSION = $(call once,DEB_VERSION,sh scripts/version --debian)

PKGS := libcurl jansson yaml-0.1 libmicrohttpd libcrypto libsystemd

WARN := -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes \
	-Wpointer-arith -Wcast-align -Wwrite-strings -Wvla -Wundef -Wnull-dereference \
	-Wimplicit-fallthrough -Wno-unused-parameter
ifeq ($(WERROR),1)
WARN += -Werror
endif

PKG_CFLAGS = $(call once,PKG_CFLAGS,$(PKG_CONFIG) --cflags $(PKGS))
PKG_LIBS = $(call once,PKG_LIBS,$(PKG_CONFIG) --libs $(PKGS))
override CFLAGS += -std=c11 -D_GNU_SOURCE -Iinclude -Ibuild/gen $(WARN) $(PKG_CFLAGS) -MMD -MP
LIBS = $(PKG_LIBS) -lpthread

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

.PHONY: FORCE all run dist deb image lintian deps-pkg check unit valgrind e2e fuzz fuzz-run bench bench-update bench-daemon install uninstall clean deps deps-build

all: $(BIN)

$(BIN): $(CLI_OBJS) $(LIBREFIT)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(LIBREFIT): $(LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/src/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

# The dashboard's stylesheet and script, compiled into the binary (xxd -i):
# ui/NAME.EXT becomes the array NAME_EXT and NAME_EXT_len.
UI_ASSETS := $(wildcard ui/*.css ui/*.js)
build/gen/ui-assets.h: $(UI_ASSETS)
	@mkdir -p $(dir $@)
	(cd ui && for f in $(notdir $(UI_ASSETS)); do xxd -i $$f; done) | \
		sed -e 's/^unsigned char/static const unsigned char/' -e 's/^unsigned int/static const unsigned int/' >$@.tmp
	mv $@.tmp $@
$(BUILD)/src/daemon-ui.o build/fuzz/obj/daemon-ui.o: build/gen/ui-assets.h
# The version is compiled into src/version.c alone; the stamp changes (and
# version.o is rebuilt) only when scripts/version answers something new.
$(BUILD)/version.stamp: FORCE
	@mkdir -p $(dir $@)
	@echo '$(VERSION)' | cmp -s - $@ 2>/dev/null || echo '$(VERSION)' >$@
$(BUILD)/src/version.o: $(BUILD)/version.stamp
$(BUILD)/src/version.o: override CFLAGS += -DREFIT_VERSION='"$(VERSION)"'
FORCE:

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
# E2E_ENGINE (20.10, 26 or 26-containerd; tests/e2e/engines.py) picks the engine
# the suite runs against; a private one is stopped again when the suite ends.
# E2E_FILES narrows the run to some files (CI's subset on the containerd store).
E2E_FILES ?= tests/e2e
e2e: $(BIN)
	$(PYTHON) tests/e2e/harness.py engine
	REFIT_BIN=$(abspath $(BIN)) $(PYTHON) -m pytest -q -rs -p no:cacheprovider --durations=15 $(E2E_XDIST) \
		$(E2E_FILES) $(PYTEST_ARGS); rc=$$?; $(PYTHON) tests/e2e/harness.py engine-stop; exit $$rc

# libFuzzer targets: the library sources are compiled once for fuzzing
# (build/fuzz/obj), and each fuzz/NAME-fuzzer.c is linked against them.
FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE -DREFIT_VERSION='"$(VERSION)"' -Iinclude -Ibuild/gen -g -O1 $(PKG_CFLAGS)
FUZZ_OBJS := $(patsubst src/%.c,build/fuzz/obj/%.o,$(SRCS))
build/fuzz/obj/version.o: $(BUILD)/version.stamp
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
	sed -i 's/^\.TH REFIT 8 "" "refit [^"]*"/.TH REFIT 8 "" "refit $(VERSION)"/' $(DESTDIR)$(MANDIR)/man8/refit.8

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/refit $(DESTDIR)$(UNITDIR)/refit.service \
		$(DESTDIR)$(SYSCONFDIR)/refit/refit.yml.example $(DESTDIR)$(DOCDIR)/README.md \
		$(DESTDIR)$(MANDIR)/man8/refit.8

clean:
	rm -rf build refit

# The Debian package, built from a copy of the tracked files (with their
# uncommitted changes) and a VERSION file, so that dpkg-buildpackage's
# results land in build/deb/ rather than beside the checkout:
# build/deb/refit_DEBVERSION_amd64.deb. `dpkg-buildpackage -us -uc -b` in
# the checkout itself builds the same package into ../.
DEB_DIR = build/deb
deb:
	@command -v dpkg-buildpackage >/dev/null && command -v dh >/dev/null || \
		{ echo "make deb: needs dpkg-dev and debhelper (make deps-pkg)" >&2; exit 1; }
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)/refit-$(VERSION)
	git ls-files -z | tar --null -T - -cf - | tar -xf - -C $(DEB_DIR)/refit-$(VERSION)
	echo '$(VERSION)' >$(DEB_DIR)/refit-$(VERSION)/VERSION
	cd $(DEB_DIR)/refit-$(VERSION) && dpkg-buildpackage -us -uc -b
	@ls $(DEB_DIR)/refit_$(DEB_VERSION)_*.deb

# lintian on the package make deb built (errors and warnings fail).
lintian: deb
	lintian --fail-on error,warning --info --pedantic $(DEB_DIR)/refit_*.changes

# The release tarball: the committed tree (git archive of HEAD) and a VERSION
# file, which scripts/version reads where there is no checkout.
DIST = build/refit-$(VERSION).tar.gz
dist:
	@case "$(VERSION)" in *-dirty) echo "make dist: uncommitted changes; commit them first" >&2; exit 1;; esac
	@mkdir -p build/dist/refit-$(VERSION)
	echo '$(VERSION)' >build/dist/refit-$(VERSION)/VERSION
	git archive --format=tar --prefix=refit-$(VERSION)/ -o build/refit-$(VERSION).tar HEAD
	tar -rf build/refit-$(VERSION).tar --owner=0 --group=0 -C build/dist refit-$(VERSION)/VERSION
	gzip -9nf build/refit-$(VERSION).tar
	@rm -rf build/dist
	@echo "$(DIST)"

# The container image (Dockerfile): built on IMAGE_BASE, run on
# IMAGE_RUNTIME_BASE; either one missing from the engine is made from
# Debian's packages first (scripts/image-base: mmdebstrap | docker import),
# since no registry outside can be reached here. apt in the build uses the
# machine's Debian mirror (DEBIAN_MIRROR). IMAGE_BUILD_FLAGS: more
# `docker build` options (the tests add --label).
IMAGE ?= refit
IMAGE_BASE ?= debian:bookworm
IMAGE_RUNTIME_BASE ?= debian:bookworm-slim
DEBIAN_MIRROR = $(call once,DEBIAN_MIRROR,sh scripts/image-base --mirror)
IMAGE_BUILD_FLAGS ?=
image:
	sh scripts/image-base $(IMAGE_BASE) bookworm
	sh scripts/image-base $(IMAGE_RUNTIME_BASE) bookworm slim
	docker build --network host --build-arg BASE=$(IMAGE_BASE) --build-arg RUNTIME_BASE=$(IMAGE_RUNTIME_BASE) \
		--build-arg DEBIAN_MIRROR=$(DEBIAN_MIRROR) --build-arg REFIT_VERSION=$(VERSION) $(IMAGE_BUILD_FLAGS) \
		-t $(IMAGE):$(VERSION) -t $(IMAGE):latest .
	@docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' $(IMAGE):$(VERSION)

# Debian packages for building, testing and fuzzing refit.
DEB_BUILD := build-essential pkg-config libcurl4-openssl-dev libjansson-dev libyaml-dev \
	libmicrohttpd-dev libssl-dev libsystemd-dev xxd
DEB_TEST := libcmocka-dev python3 python3-pytest python3-jwt python3-cryptography python3-requests \
	docker.io docker-registry docker-compose busybox-static openssl apache2-utils curl \
	clang libclang-rt-14-dev systemd iptables time valgrind groff-base wrk jq python3-yaml \
	python3-pytest-xdist chromium chromium-driver python3-selenium \
	podman netavark aardvark-dns
# Packaging and the real-systemd test (make deb, make image, tests/e2e/test_package.py).
DEB_PKG := debhelper dpkg-dev lintian mmdebstrap
deps-pkg:
	@$(MAKE) --no-print-directory deps DEB_BUILD="$(DEB_PKG)" DEB_TEST=

deps-build:
	@$(MAKE) --no-print-directory deps DEB_TEST= DEB_PKG=

deps:
	@missing=$$(for p in $(DEB_BUILD) $(DEB_TEST) $(DEB_PKG); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "all build and test dependencies are installed"; fi

-include $(LIB_OBJS:.o=.d) $(CLI_OBJS:.o=.d) $(FUZZ_OBJS:.o=.d)
