# qrm build. Everything lands in $(BUILD)/ (default build/).
#
#   make              build/qrm, build/qrm-convert, build/qrm-bench, build/libqrm.a
#   make test         every Check suite, on every kernel family this CPU runs
#                     (installs Check and pkg-config first when missing: make deps)
#   make test-aarch64 cross-compile for aarch64, run under qemu once per ARM family
#   make test-sanitize the suite under AddressSanitizer + UndefinedBehaviorSanitizer
#   make test-tsan    the concurrency suites under ThreadSanitizer
#   make test-avx512-emu the avx512 family under bochs (no AVX-512 CPU needed), vs scalar
#   make bench        the benchmarks (speed targets live here, never in tests)
#   make install      PREFIX=/usr/local DESTDIR=: programs, qrm.h, libqrm.{a,so}, qrm.pc
#   make test-python  the Python binding (tools/python/qrm) with the system python3, the
#                     Dask scale-out and the GNU parallel one-liner
#   make test-install install into build/, then build and run tools/qrm_example.c
#                     against it with pkg-config
#
# Each ISA family's files are compiled with that ISA's flags only, so the rest
# of the binary runs on the baseline CPU; the family is chosen at run time.

CC      ?= cc
BUILD   ?= build
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
WARN    := -Wall -Wextra -Wshadow -Wno-unused-parameter -Wno-missing-field-initializers -Wstrict-prototypes -Wmissing-prototypes
# (-Wno-missing-field-initializers: option tables leave trailing fields zero on purpose; clang warns, gcc does not)
CPPFLAGS += -Icore -Icore/text -Icore/heads -Iarch -Imodels -Itools
ALLCFLAGS = -std=c11 -D_GNU_SOURCE -ffp-contract=off $(WARN) $(CFLAGS) $(EXTRA_CFLAGS)
LDLIBS  += -lm -lpthread

TARGET_ARCH_NAME := $(shell $(CC) -dumpmachine 2>/dev/null | cut -d- -f1)

CHECK_LIBS ?= $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lrt -lm -lpthread)

# The suites need Check (check.h, libcheck) and pkg-config. On a machine
# without them, building a suite (so `make test`, the README's command)
# installs them first as .ci/run does: apt-get, through sudo when not root,
# each command printed. QRM_AUTO_DEPS=0 only names what is missing. A cross
# build (CC for another machine) is never served the host's packages.
QRM_AUTO_DEPS ?= 1
APT_GET ?= apt-get
CHECK_HEADER ?= check.h

# ---- sources ----
LIB_SRC := $(wildcard core/*.c) $(wildcard core/text/*.c) $(wildcard core/heads/*.c) $(wildcard models/*.c) $(wildcard arch/*.c) $(wildcard arch/scalar/*.c)
# Kernel families (arch/families.h lists them for the code): a family's files
# are arch/*/*_<family>.c, compiled with FLAGS_<family>.
FAMILIES_x86_64  := avx2 avx512
FAMILIES_aarch64 := neon dotprod i8mm
FLAGS_avx2    := -mavx2 -mfma -mf16c
FLAGS_avx512  := -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl -mavx512vnni
FLAGS_neon    :=
FLAGS_dotprod := -march=armv8.2-a+dotprod+fp16
FLAGS_i8mm    := -march=armv8.2-a+dotprod+i8mm+fp16
family_src = $(wildcard arch/*/*_$(1).c)
FAMILIES := $(FAMILIES_$(TARGET_ARCH_NAME))
LIB_SRC  += $(foreach f,$(FAMILIES),$(call family_src,$(f)))
AVX2_SRC   := $(call family_src,avx2)
AVX512_SRC := $(call family_src,avx512)

CONVERT_SRC := $(filter-out tools/qrm_convert_main.c tools/qrm_cli.c tools/qrm_example.c tools/gen_%.c,$(wildcard tools/*.c))
BENCH_SRC   := $(wildcard bench/*.c)
TEST_SRC    := $(wildcard tests/test_*.c)
# QRM_TEST_ONLY="test_a test_b" runs just those suites (test-tsan does)
ifneq ($(QRM_TEST_ONLY),)
  TEST_SRC  := $(addprefix tests/,$(addsuffix .c,$(QRM_TEST_ONLY)))
endif
# QRM_TEST_SKIP="test_a" leaves suites out (test-aarch64 does)
ifneq ($(QRM_TEST_SKIP),)
  TEST_SRC  := $(filter-out $(addprefix tests/,$(addsuffix .c,$(QRM_TEST_SKIP))),$(TEST_SRC))
endif
TEST_BINS   := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIB_OBJ     := $(call obj,$(LIB_SRC))
CONVERT_OBJ := $(call obj,$(CONVERT_SRC))

# The library's objects are position-independent (they also make
# libqrm.so) and export only what core/qrm.h marks QRM_API.
$(LIB_OBJ): LIBFLAGS := -fPIC -fvisibility=hidden -DQRM_BUILD

VERSION := $(shell sed -n 's/^\#define QRM_VERSION_STRING "\(.*\)"/\1/p' core/qrm.h)
SOMAJOR := $(shell sed -n 's/^\#define QRM_ABI_VERSION \([0-9]*\)/\1/p' core/qrm.h)
PREFIX  ?= /usr/local
DESTDIR ?=

# per-family flags. The kernels' functions and loops start on 64-byte
# boundaries: otherwise any change elsewhere in the library moves them, and
# on the Zen 5 two builds of the same kernels differed by 3-7 % in prefill
# (README, "The Zen 5 a fourth time").
ALIGN_KERNELS := -falign-functions=64 -falign-loops=64
# FAMILY_CFLAGS: extra flags for the SIMD families' objects only (make fuzz-build).
FAMILY_CFLAGS ?=
$(foreach f,$(FAMILIES),$(eval $(call obj,$(call family_src,$(f))): ISAFLAGS := $(FLAGS_$(f)) $(ALIGN_KERNELS) $(FAMILY_CFLAGS)))

.PHONY: all deps test test-aarch64 test-sanitize test-tsan test-avx512-emu test-install test-python install bench clean

all: $(BUILD)/qrm $(BUILD)/qrm-convert $(BUILD)/qrm-bench $(BUILD)/libqrm.a $(BUILD)/libqrm.so

# Objects depend on the Makefile too: a change of flags (PIC, visibility,
# an ISA's flags) must rebuild them.
$(BUILD)/obj/%.o: %.c Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALLCFLAGS) $(ISAFLAGS) $(LIBFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libqrm.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^

$(BUILD)/libqrm.so.$(VERSION): $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,libqrm.so.$(SOMAJOR) $(LDFLAGS) $^ -o $@ -lm -lpthread

$(BUILD)/libqrm.so: $(BUILD)/libqrm.so.$(VERSION)
	ln -sf libqrm.so.$(VERSION) $(BUILD)/libqrm.so.$(SOMAJOR)
	ln -sf libqrm.so.$(VERSION) $@

$(BUILD)/libqrmconvert.a: $(CONVERT_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^

$(BUILD)/qrm: $(call obj,tools/qrm_cli.c) $(BUILD)/libqrmconvert.a $(BUILD)/libqrm.a
	$(CC) $(ALLCFLAGS) $^ -o $@ $(LDFLAGS) $(LDLIBS)

$(BUILD)/qrm-convert: $(call obj,tools/qrm_convert_main.c) $(BUILD)/libqrmconvert.a $(BUILD)/libqrm.a
	$(CC) $(ALLCFLAGS) $^ -o $@ $(LDFLAGS) $(LDLIBS)

$(BUILD)/qrm-bench: $(call obj,$(BENCH_SRC)) $(BUILD)/libqrmconvert.a $(BUILD)/libqrm.a
	$(CC) $(ALLCFLAGS) $^ -o $@ $(LDFLAGS) $(LDLIBS)

deps:
	@probe() { printf '#include <$(CHECK_HEADER)>\nint main(void) { return 0; }\n' | \
	  $(CC) $(CPPFLAGS) -x c -fsyntax-only - 2>/dev/null && command -v pkg-config >/dev/null; }; \
	probe && exit 0; \
	hint="the test suites need the Check library and pkg-config (Debian/Ubuntu: apt-get install check pkg-config)"; \
	if [ "$(QRM_AUTO_DEPS)" != 1 ]; then echo "make: $$hint" >&2; exit 1; fi; \
	if [ "$(TARGET_ARCH_NAME)" != "$$(uname -m)" ]; then echo "make: $$hint, for $(TARGET_ARCH_NAME) (CC=$(CC))" >&2; exit 1; fi; \
	if ! command -v $(firstword $(APT_GET)) >/dev/null; then echo "make: no apt-get here: $$hint" >&2; exit 1; fi; \
	sudo=""; if [ "$$(id -u)" != 0 ]; then \
	  command -v sudo >/dev/null || { echo "make: not root and no sudo: $$hint" >&2; exit 1; }; sudo="sudo"; fi; \
	echo "make: check.h or pkg-config is missing: installing them (QRM_AUTO_DEPS=0 to only be told)"; \
	echo "+ $${sudo:+sudo }$(APT_GET) update -q"; $$sudo env DEBIAN_FRONTEND=noninteractive $(APT_GET) update -q || exit 1; \
	echo "+ $${sudo:+sudo }$(APT_GET) install -y -q --no-install-recommends check pkg-config"; \
	$$sudo env DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -q --no-install-recommends check pkg-config || exit 1; \
	probe || { echo "make: still no usable check.h and pkg-config after installing: $$hint" >&2; exit 1; }

# Order-only: the probe runs before any suite compiles, and never forces a rebuild.
$(call obj,$(TEST_SRC) tests/testutil.c): | deps

$(BUILD)/tests/%: $(call obj,tests/%.c) $(call obj,tests/testutil.c) $(BUILD)/libqrmconvert.a $(BUILD)/libqrm.a
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) $^ -o $@ $(LDFLAGS) $(TEST_LDFLAGS) $(CHECK_LIBS) $(LDLIBS)

# test_faults fails the Nth allocation or file-IO call: the linker routes
# those calls of the static libraries through tests/fault_inject.c.
FAULT_WRAP := malloc calloc realloc strdup open fstat mmap fopen fread fwrite fputc fflush fclose \
  fseek ftell rename
$(BUILD)/tests/test_faults: $(call obj,tests/fault_inject.c)
$(BUILD)/tests/test_faults: TEST_LDFLAGS = $(foreach f,$(FAULT_WRAP),-Wl,--wrap=$(f))

# Test binaries run from the repository root (they read tests/data/).
# QRM_TEST_RUNNER prefixes them (qemu for aarch64). Suites that exercise the
# kernels run once per family in QRM_TEST_ISAS ("native" is the automatic
# choice); the others (JSON, tokenizer, converter, loader, CLI) do not depend
# on the family and run once, under the first. "auto" means native, then
# every other family this CPU can run (`qrm info`'s "runnable" line), so an
# AVX-512 machine tests avx512, avx2 and scalar.
QRM_TEST_ISAS ?= auto
ISA_SUITES := test_kernels test_model test_heads test_vocab test_scoring test_cpu
ISA_BINS   := $(filter $(addprefix $(BUILD)/tests/,$(ISA_SUITES)),$(TEST_BINS))
ONCE_BINS  := $(filter-out $(ISA_BINS),$(TEST_BINS))
# Suites that go through every family themselves (bitwise, determinism) or
# never touch one (fault injection): once, whatever QRM_TEST_ALL_ISAS says.
ONCE_ONLY_SUITES := test_bitwise test_determinism test_faults
REPEAT_BINS := $(filter-out $(addprefix $(BUILD)/tests/,$(ONCE_ONLY_SUITES)),$(TEST_BINS))
QRM_TEST_ALL_ISAS ?= 1
test: $(TEST_BINS) $(BUILD)/qrm $(BUILD)/qrm-convert
	@set -e; isas="$(QRM_TEST_ISAS)"; \
	if [ "$$isas" = auto ]; then \
	  info=$$(env -u QRM_ISA $(QRM_TEST_RUNNER) $(BUILD)/qrm info) || { echo "make test: qrm info failed" >&2; exit 1; }; \
	  isas="native $$(echo "$$info" | sed -n 's/^runnable: [^ ]*//p')"; \
	fi; \
	first=1; for isa in $$isas; do \
	  bins="$(ISA_BINS)"; \
	  if [ "$(QRM_TEST_ALL_ISAS)" = 1 ]; then bins="$(REPEAT_BINS)"; fi; \
	  if [ $$first = 1 ]; then bins="$(TEST_BINS)"; fi; \
	  first=0; \
	  for t in $$bins; do \
	    echo "== $$t (ISA $$isa)"; \
	    if [ $$isa = native ]; then env -u QRM_ISA $(QRM_TEST_RUNNER) $$t; \
	    else QRM_ISA=$$isa $(QRM_TEST_RUNNER) $$t; fi; \
	  done; \
	done; echo "all test suites passed ($$isas)"

AARCH64_CC ?= aarch64-linux-gnu-gcc
QEMU_AARCH64 ?= qemu-aarch64 -cpu max -L /usr/aarch64-linux-gnu
# Linked statically: under qemu-user 7.2 a dynamically linked guest hangs in
# its first pthread_create (futex wait), and the pool starts threads.
test-aarch64:
	$(MAKE) BUILD=build-aarch64 CC=$(AARCH64_CC) LDFLAGS=-static \
	  CHECK_LIBS="-lcheck -lsubunit -lrt -lm -lpthread" \
	  QRM_TEST_RUNNER="env CK_FORK=no CK_TIMEOUT_MULTIPLIER=5 $(QEMU_AARCH64)" \
	  QRM_TEST_ISAS="neon dotprod i8mm" QRM_TEST_ALL_ISAS=0 \
	  QRM_TEST_SKIP="$(AARCH64_SKIP)" test-bins-only test
# Fault injection checks the library's error paths, which no kernel family
# touches: natively and under ASan it runs; under qemu it would add minutes.
AARCH64_SKIP ?= test_faults

test-bins-only: $(TEST_BINS)

test-sanitize:
	$(MAKE) BUILD=build-san OPT="-O1" \
	  EXTRA_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -DQRM_TEST_BIN_DIR='\"build-san\"'" \
	  LDFLAGS="-fsanitize=address,undefined" \
	  QRM_TEST_ISAS=auto QRM_TEST_ALL_ISAS=0 test

# The suites that run threads against shared state: contexts on one model
# from many threads (test_scoring), the pool in every forward pass and
# best-of-N (test_heads, test_vocab), and the server's acceptor, readers and
# workers (test_serve). Native family only: the races are in the scheduling,
# not in the kernels.
test-tsan:
	$(MAKE) BUILD=build-tsan OPT="-O1" EXTRA_CFLAGS="-fsanitize=thread -fno-omit-frame-pointer" \
	  LDFLAGS="-fsanitize=thread" QRM_TEST_ONLY="test_scoring test_heads test_serve" \
	  QRM_TEST_ISAS=native QRM_TEST_ALL_ISAS=0 test

# ---- the avx512 family under bochs (tests/emu/README.md) ----
# Bochs emulates a Tiger Lake CPU: the guest image runs the very avx512
# objects of libqrm.a on bare metal and writes their outputs to port 0xE9;
# emu-check rebuilds the inputs on the host and judges those outputs against
# the scalar reference. About a minute; not part of all or test.
EMU := $(BUILD)/emu
BOCHS ?= bochs
BXSHARE ?= /usr/share/bochs
ISOLINUX_DIR ?= /usr/lib/ISOLINUX
SYSLINUX_BIOS_DIR ?= /usr/lib/syslinux/modules/bios
OBJCOPY ?= objcopy
EMU_CASES := $(addprefix tests/emu/,harness.c f16_ties.c cases_quant.c cases_float.c cases_kv.c \
  cases_invariance.c driver.c)
EMU_KERNEL_OBJ := $(call obj,$(AVX512_SRC))
EMU_HOST_OBJ := $(patsubst tests/emu/%.c,$(EMU)/host/%.o,$(EMU_CASES)) \
  $(call obj,$(wildcard arch/scalar/*.c) arch/dispatch.c arch/cpu_detect.c arch/cpu_name.c $(AVX2_SRC)) $(EMU_KERNEL_OBJ)
EMU_GUEST_OBJ := $(patsubst tests/emu/%.c,$(EMU)/guest/%.o,$(EMU_CASES) tests/emu/rt.c) \
  $(EMU)/guest/boot.o $(EMU)/guest/vcvtps2ph_probe.o
# Bare metal: absolute addresses, no red zone (an exception pushes onto the
# stack), no stack protector (no TLS); rt.c also must not call itself for memcpy.
EMU_GUEST_CFLAGS := -fno-pie -fno-pic -mno-red-zone -fno-stack-protector -fno-asynchronous-unwind-tables
$(EMU)/guest/rt.o: EMU_GUEST_CFLAGS += -ffreestanding -fno-tree-loop-distribute-patterns

$(EMU)/host/%.o: tests/emu/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALLCFLAGS) -DHOST -MMD -MP -c $< -o $@

$(EMU)/emu-check: $(EMU_HOST_OBJ)
	$(CC) $(ALLCFLAGS) $^ -o $@ $(LDFLAGS) -lm

$(EMU)/guest/%.o: tests/emu/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALLCFLAGS) $(EMU_GUEST_CFLAGS) -MMD -MP -c $< -o $@

$(EMU)/guest/%.o: tests/emu/%.S
	@mkdir -p $(dir $@)
	$(CC) -c $< -o $@

$(EMU)/qrm-emu.elf: tests/emu/link.ld $(EMU_GUEST_OBJ) $(EMU_KERNEL_OBJ)
	$(CC) -nostdlib -static -no-pie -Wl,-T,tests/emu/link.ld -Wl,--build-id=none \
	  $(EMU_GUEST_OBJ) $(EMU_KERNEL_OBJ) -lgcc -o $@

$(EMU)/qrm-emu.bin: $(EMU)/qrm-emu.elf
	$(OBJCOPY) -O binary $< $@

# isolinux boots the CD, mboot.c32 loads the multiboot image.
$(EMU)/boot.iso: $(EMU)/qrm-emu.bin tests/emu/isolinux.cfg
	rm -rf $(EMU)/iso && mkdir -p $(EMU)/iso
	cp $(ISOLINUX_DIR)/isolinux.bin $(addprefix $(SYSLINUX_BIOS_DIR)/,ldlinux.c32 libcom32.c32 libutil.c32 mboot.c32) \
	  tests/emu/isolinux.cfg $< $(EMU)/iso/
	xorriso -as mkisofs -quiet -o $@ -b isolinux.bin -c boot.cat -no-emul-boot -boot-load-size 4 \
	  -boot-info-table $(EMU)/iso

# The tools are checked first, for one clear line instead of a failed build.
# "echo c": Debian's bochs has its debugger built in, which waits at the first
# instruction. Bochs exits non-zero even after the guest's clean power-off, so
# only a timeout counts; whether the guest finished is for emu-check to say.
test-avx512-emu:
	@[ "$(TARGET_ARCH_NAME)" = x86_64 ] || { echo "test-avx512-emu: needs an x86-64 build (CC=$(CC))" >&2; exit 1; }
	@missing=""; \
	command -v $(BOCHS) >/dev/null 2>&1 || missing="$$missing bochs"; \
	[ -f $(BXSHARE)/BIOS-bochs-latest ] || missing="$$missing bochsbios"; \
	[ -f $(BXSHARE)/VGABIOS-lgpl-latest ] || missing="$$missing vgabios"; \
	[ -f $(ISOLINUX_DIR)/isolinux.bin ] || missing="$$missing isolinux"; \
	[ -f $(SYSLINUX_BIOS_DIR)/mboot.c32 ] || missing="$$missing syslinux-common"; \
	command -v xorriso >/dev/null 2>&1 || missing="$$missing xorriso"; \
	if [ -n "$$missing" ]; then \
	  echo "test-avx512-emu: missing$$missing (Debian: apt-get install bochs bochs-term bochsbios vgabios isolinux syslinux-common xorriso)" >&2; \
	  exit 1; \
	fi
	$(MAKE) $(EMU)/emu-check $(EMU)/boot.iso
	@echo "== bochs (Tiger Lake model): the avx512 family on bare metal, output in $(EMU)/e9.txt"
	@cd $(EMU) && rm -f e9.txt bochs.log bochs.err && start=$$(date +%s) && \
	{ echo c | BXSHARE=$(BXSHARE) timeout 600 nice -n 19 $(BOCHS) -q -f $(abspath tests/emu/bochsrc) \
	  > e9.txt 2> bochs.err; rc=$$?; } ; \
	echo "   bochs ran $$(( $$(date +%s) - start )) s"; \
	if [ $$rc = 124 ]; then echo "FAIL: bochs did not finish within 600 s ($(EMU)/bochs.log)" >&2; exit 1; fi; \
	if ! grep -q '^guest up' e9.txt; then \
	  echo "FAIL: the guest did not boot under bochs ($(EMU)/bochs.err, bochs.log):" >&2; tail -3 bochs.err >&2; exit 1; \
	fi
	$(EMU)/emu-check $(EMU)/e9.txt

# ---- the Python binding (tools/python/qrm), with the system python3 ----
PY_MODELS = $(BUILD)/py-test
PYTHON ?= python3
test-python: $(BUILD)/qrm $(BUILD)/qrm-convert $(BUILD)/libqrm.so
	@mkdir -p $(PY_MODELS)
	@for f in qwen3-tiny qwen2-prm-tiny llama3-helpsteer2-tiny; do \
	  $(BUILD)/qrm-convert tests/data/models/$$f -o $(PY_MODELS)/$$f.qrm --quant f32 -q || exit 1; done
	@# the GNU parallel one-liner of the README, when parallel is installed: the same lines, in order
	@if command -v parallel >/dev/null; then \
	  for i in $$(seq 1 40); do echo "{\"id\":$$i,\"prompt\":\"What is $$i?\",\"responses\":[\"$$i\",\"no\"]}"; done > $(PY_MODELS)/in.jsonl; \
	  $(BUILD)/qrm score -m $(PY_MODELS)/qwen3-tiny.qrm --input $(PY_MODELS)/in.jsonl > $(PY_MODELS)/want.jsonl && \
	  parallel --pipe --keep-order -N 7 $(BUILD)/qrm score -m $(PY_MODELS)/qwen3-tiny.qrm -t 1 --input - \
	    < $(PY_MODELS)/in.jsonl > $(PY_MODELS)/got.jsonl && cmp $(PY_MODELS)/want.jsonl $(PY_MODELS)/got.jsonl && \
	  echo "GNU parallel --pipe --keep-order: 40 lines, identical to one run"; fi
	PYTHONPATH=tools/python QRM_LIBRARY=$(abspath $(BUILD))/libqrm.so QRM_TEST_MODELS=$(PY_MODELS) \
	  QRM_CLI=$(BUILD)/qrm $(PYTHON) -m unittest -v tests/python/test_qrm.py tests/python/test_dask.py

# ---- fuzzing (tests/fuzz/README.md) ----
# One libFuzzer target per parser the library exposes to untrusted bytes.
# make fuzz builds them with clang into build-fuzz/ and runs each for
# FUZZ_SECONDS with its seeds (tests/fuzz/corpus/T, read only: what a run
# learns goes to build-fuzz/corpus/T, crashes to build-fuzz/crashes/T).
# make test replays every seed and every stored crash (tests/fuzz/regressions/T)
# through the same targets built with $(CC), no clang needed.
FUZZ_TARGETS := json tokenizer chat_template model convert score_line
FUZZ_SECONDS ?= 10
FUZZ_BUILD   := build-fuzz
FUZZ_FLAGS   ?=
FUZZ_REPLAYS := $(addprefix $(BUILD)/fuzz/replay_,$(FUZZ_TARGETS))

$(BUILD)/fuzz/fuzz_%: $(call obj,tests/fuzz/fuzz_%.c) $(BUILD)/libqrmconvert.a $(BUILD)/libqrm.a
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) $^ -o $@ $(LDFLAGS) $(LDLIBS)

$(BUILD)/fuzz/replay_%: $(call obj,tests/fuzz/fuzz_%.c) $(call obj,tests/fuzz/replay.c) $(BUILD)/libqrmconvert.a $(BUILD)/libqrm.a
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) $^ -o $@ $(LDFLAGS) $(LDLIBS)

# The SIMD families are built without sanitizers here and the targets run the
# scalar reference (QRM_ISA=scalar), which is instrumented: clang's ASan + UBSan
# grow float_avx512.c to 1.5 MB of code and 270 s of compiling (4.5 minutes of
# CI), and the families' memory accesses are checked against the reference's
# by make test-sanitize.
fuzz-build:
	$(MAKE) BUILD=$(FUZZ_BUILD) CC=clang OPT="-O1" FAMILY_CFLAGS="-fno-sanitize=all" \
	  EXTRA_CFLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -Qunused-arguments \
	    -fsanitize-coverage-ignorelist=tests/fuzz/coverage-ignore.txt" \
	  LDFLAGS="-fsanitize=fuzzer,address,undefined" $(addprefix $(FUZZ_BUILD)/fuzz/fuzz_,$(FUZZ_TARGETS))

fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do $(MAKE) --no-print-directory fuzz-run-$$t || exit 1; done

# -timeout: a render may take its whole step budget (QRM_TEMPLATE_MAX_STEPS)
fuzz-run-%:
	@mkdir -p $(FUZZ_BUILD)/corpus/$* $(FUZZ_BUILD)/crashes/$*
	@echo "== fuzz_$* for $(FUZZ_SECONDS) s"
	QRM_ISA=scalar $(FUZZ_BUILD)/fuzz/fuzz_$* -max_total_time=$(FUZZ_SECONDS) -timeout=30 -print_final_stats=1 \
	  -artifact_prefix=$(FUZZ_BUILD)/crashes/$*/ $(FUZZ_FLAGS) $(FUZZ_BUILD)/corpus/$* \
	  $(wildcard tests/fuzz/corpus/$* tests/fuzz/regressions/$*)

fuzz-replay: $(FUZZ_REPLAYS)
	@for t in $(FUZZ_TARGETS); do \
	  $(QRM_TEST_RUNNER) $(BUILD)/fuzz/replay_$$t $$(ls -d tests/fuzz/corpus/$$t tests/fuzz/regressions/$$t 2>/dev/null) \
	    || { echo "fuzz-replay: $$t failed" >&2; exit 1; }; \
	done

# the suites chosen by QRM_TEST_ONLY (test-tsan) are about threads, not inputs
ifeq ($(QRM_TEST_ONLY),)
test: fuzz-replay
endif

clean: clean-fuzz
clean-fuzz:
	rm -rf $(FUZZ_BUILD)

.PHONY: fuzz fuzz-build fuzz-replay clean-fuzz
# kept: without this make deletes them as intermediates and rebuilds every time
.SECONDARY: $(call obj,$(wildcard tests/fuzz/*.c))

# ---- installation ----
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 755 $(BUILD)/qrm $(BUILD)/qrm-convert $(BUILD)/qrm-bench $(DESTDIR)$(PREFIX)/bin/
	install -m 644 core/qrm.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(BUILD)/libqrm.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/libqrm.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libqrm.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libqrm.so.$(SOMAJOR)
	ln -sf libqrm.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libqrm.so
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$${prefix}/lib' 'includedir=$${prefix}/include' '' \
	  'Name: qrm' 'Description: score text with quantized reward models on CPUs' 'Version: $(VERSION)' \
	  'Libs: -L$${libdir} -lqrm' 'Libs.private: -lm -lpthread' 'Cflags: -I$${includedir}' \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/qrm.pc

# Installs into a folder of build/, builds the example against it with
# pkg-config (shared, then static), converts a fixture with the installed
# converter and scores it with the example: the score must be the CLI's.
TEST_PREFIX = $(abspath $(BUILD))/install-test
test-install:
	rm -rf $(TEST_PREFIX)
	$(MAKE) install PREFIX=$(TEST_PREFIX)
	PKG_CONFIG_PATH=$(TEST_PREFIX)/lib/pkgconfig sh -c '$(CC) -std=c11 -Wall -Wextra -Werror tools/qrm_example.c \
	  $$(pkg-config --cflags --libs qrm) -o $(TEST_PREFIX)/qrm-example && \
	  $(CC) -std=c11 tools/qrm_example.c $$(pkg-config --cflags qrm) $(TEST_PREFIX)/lib/libqrm.a \
	  $$(pkg-config --libs-only-other --static qrm) -lm -lpthread -o $(TEST_PREFIX)/qrm-example-static'
	$(TEST_PREFIX)/bin/qrm-convert tests/data/models/qwen3-tiny -o $(TEST_PREFIX)/m.qrm --quant int8 -q
	@want=$$($(TEST_PREFIX)/bin/qrm score -m $(TEST_PREFIX)/m.qrm --ids "316 5 6 7"); \
	got=$$(LD_LIBRARY_PATH=$(TEST_PREFIX)/lib $(TEST_PREFIX)/qrm-example $(TEST_PREFIX)/m.qrm 316 5 6 7); \
	got_static=$$($(TEST_PREFIX)/qrm-example-static $(TEST_PREFIX)/m.qrm 316 5 6 7); \
	echo "CLI $$want, example (shared) $$got, example (static) $$got_static"; \
	[ "$$want" = "$$got" ] && [ "$$want" = "$$got_static" ] || { echo "test-install: the example's score differs" >&2; exit 1; }
	@want=$$($(TEST_PREFIX)/bin/qrm score -m $(TEST_PREFIX)/m.qrm --prompt "What is 2+2?" --response "4"); \
	got=$$(LD_LIBRARY_PATH=$(TEST_PREFIX)/lib $(TEST_PREFIX)/qrm-example $(TEST_PREFIX)/m.qrm --prompt "What is 2+2?" --response "4"); \
	echo "prompt + response: CLI $$want, example $$got"; \
	[ "$$want" = "$$got" ] || { echo "test-install: the example's chat score differs" >&2; exit 1; }
	@exported=$$(nm -D --defined-only $(TEST_PREFIX)/lib/libqrm.so | awk '$$2 == "T" {print $$3}' | grep -v '^qrm_' || true); \
	[ -z "$$exported" ] || { echo "test-install: libqrm.so exports more than the API: $$exported" >&2; exit 1; }
	@# the library leaves the environment to the programs (README, C API)
	@! nm -D --undefined-only $(TEST_PREFIX)/lib/libqrm.so | grep -Ew '(secure_)?getenv' || \
	  { echo "test-install: libqrm.so reads the environment" >&2; exit 1; }
	@echo "test-install: passed ($$(nm -D --defined-only $(TEST_PREFIX)/lib/libqrm.so | grep -c ' T qrm_') exported functions)"

bench: $(BUILD)/qrm-bench
	$(BUILD)/qrm-bench kernels
	$(BUILD)/qrm-bench e2e --shape qwen3-0.6b --quant int8 --seq 512 -t 1
	$(BUILD)/qrm-bench e2e --shape qwen3-0.6b --quant int4 --seq 512 -t 1
	$(BUILD)/qrm-bench bestofn --shape qwen3-0.6b --quant int8 --prompt-len 512 --resp-len 128 --n 16
	@if [ "$$(getconf _NPROCESSORS_ONLN)" -ge 2 ]; then \
	  $(BUILD)/qrm-bench scaling --shape qwen3-0.6b --quant int8 --seq 512 --reps 10; fi

clean:
	rm -rf build build-aarch64 build-san build-tsan

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
