# devvm top-level Makefile.
#
#   make            configure if needed, then build QEMU and devvm's own parts
#   make check      build, then run every test suite (see docs/devvm/testing.rst)
#   make check-qemu-asan  devvm-proxy-test under ASan/UBSan (a 2nd QEMU build)
#   make fuzz       run each libdevvm fuzzer for FUZZ_SECONDS (default 300)
#   make bench      ring vs UNIX socket round trips; guest register access
#                   costs, device VM and process vs an in-process device
#   make run        the main job: an accelerator that does not exist yet
#                   (devvm-crypto) in a device VM on a reserved core,
#                   driven by Debian's kernel through its own driver,
#                   all brought up by the coordinator (builds only what
#                   it needs: make build-run)
#   make run-demo   the earlier main job: the devvm-demo guest checks
#                   devvm-testdev through the coordinator
#   make install    install to the configured --prefix (DESTDIR honoured)
#   make clean      remove build products, keep configuration
#   make distclean  remove build/ entirely (the tarball cache stays)
#
# SPDX-License-Identifier: GPL-2.0-or-later

SHELL := /bin/bash
BUILD := build
NINJA ?= ninja

# configure compiles through ccache when it is installed; these let a fresh
# clone at another path hit the cache too.
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1

.PHONY: all build-qemu build-devvm build-run overlay check check-devvm \
        check-qemu-asan fuzz bench run run-demo install clean distclean

all: build-qemu build-devvm

# Remade (and make restarts) when the configuration inputs change; the
# first run configures with defaults, later ones repeat the saved options.
-include $(BUILD)/config.mak
$(BUILD)/config.mak: configure subprojects/qemu-base.pin \
                     subprojects/seabios.pin scripts/devvm/install-deps.sh
	./configure $(DEVVM_CONFIGURE_ARGS)

# A checkout moved or copied with its build/: configure notices and makes
# the build directories again (docs/devvm/build.rst).
ifneq ($(wildcard $(BUILD)/config.mak),)
ifneq ($(DEVVM_TOP),$(CURDIR))
.PHONY: $(BUILD)/config.mak
endif
endif

# Cheap when nothing changed: re-applies the series only if it changed,
# links overlay files that are new since the last build, and rebuilds
# SeaBIOS only if its source, its configurations or the recipe changed.
overlay: $(BUILD)/config.mak
	@scripts/devvm/prepare-tree.sh "$(DEVVM_TARBALL)" $(BUILD)/src \
	    "$(DEVVM_SEABIOS_TARBALL)" $(BUILD)/seabios

build-qemu: overlay
	$(NINJA) -C $(BUILD)/qemu

# devvm's own parts, libdevvm under ASan+UBSan, TSan and libFuzzer, and
# libvfio-user's samples for the vfio-user interoperability test
DEVVM_BUILDS := devvm libdevvm-asan libdevvm-tsan libdevvm-fuzz libvfio-user
build-devvm: $(BUILD)/config.mak
	@set -e; for d in $(DEVVM_BUILDS); do $(NINJA) -C $(BUILD)/$$d; done

check: all
	scripts/devvm/check.sh

check-devvm: all
	scripts/devvm/check.sh --devvm-only

# devvm-proxy-test against a QEMU and a devvm-testdev built with ASan and
# UBSan (build/qemu-asan, a second build of build/src; not part of make
# check: it costs a full QEMU build).
check-qemu-asan: overlay build-devvm
	@if [ ! -f $(BUILD)/qemu-asan/build.ninja ]; then \
	    mkdir -p $(BUILD)/qemu-asan && cd $(BUILD)/qemu-asan && \
	    ../src/configure $$(cat ../qemu-configure-args) \
	        --enable-asan --enable-ubsan; \
	fi
	$(NINJA) -C $(BUILD)/qemu-asan qemu-system-x86_64 \
	    tests/qtest/devvm-proxy-test hw/devvm/devvm-testdev
	ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=0 \
	UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1 \
	QTEST_DEVVM_GATEWAY=$(CURDIR)/$(BUILD)/devvm/tools/devvm/devvm-gateway \
	QTEST_DEVVM_TESTDEV_VM=$(CURDIR)/$(BUILD)/devvm/contrib/devvm/testdev/devvm-testdev-vm.elf \
	QTEST_DEVVM_VM_QEMU=$(CURDIR)/$(BUILD)/qemu/qemu-system-x86_64 \
	    meson test -C $(BUILD)/qemu-asan --no-rebuild --print-errorlogs \
	        qtest-x86_64/devvm-proxy-test

# Each libdevvm fuzzer for FUZZ_SECONDS (make check runs a short smoke).
FUZZ_SECONDS ?= 300
fuzz: build-devvm
	@set -e; for t in fuzz-wire fuzz-ring; do \
	    echo "== $$t: $(FUZZ_SECONDS) s"; \
	    subprojects/libdevvm/fuzz/run-fuzz.sh \
	        $(BUILD)/libdevvm-fuzz/fuzz/$$t \
	        subprojects/libdevvm/fuzz/corpus/$$t \
	        $(BUILD)/libdevvm-fuzz/fuzz/$$t.work $(FUZZ_SECONDS); \
	done

# Every path against its reference, with plots (docs/devvm/benchmarks.rst);
# BENCH_ARGS=--docs also updates the results there.
bench: all
	scripts/devvm/bench.py $(BENCH_ARGS)

# What the main job needs, and no more: QEMU's system emulator and the
# option ROMs it loads (the build tree's qemu-bundle, made by configure,
# links them and SeaBIOS, which overlay builds), and devvm's own programs
# (build/devvm).  Not QEMU's other tools, upstream test binaries or the
# sanitizer and fuzzing builds of libdevvm: make check builds those.
RUN_QEMU_TARGETS := qemu-system-x86_64 \
    $(addprefix pc-bios/optionrom/,linuxboot.bin linuxboot_dma.bin \
        multiboot.bin multiboot_dma.bin pvh.bin kvmvapic.bin)
build-run: overlay
	$(NINJA) -C $(BUILD)/qemu $(RUN_QEMU_TARGETS)
	$(NINJA) -C $(BUILD)/devvm

run: build-run
	scripts/devvm/run-crypto.sh

run-demo: build-run
	scripts/devvm/run.sh

install: all
	$(NINJA) -C $(BUILD)/qemu install
	$(NINJA) -C $(BUILD)/devvm install

clean:
	-$(NINJA) -C $(BUILD)/qemu -t clean
	-for d in $(DEVVM_BUILDS); do $(NINJA) -C $(BUILD)/$$d -t clean; done

distclean:
	rm -rf $(BUILD)
