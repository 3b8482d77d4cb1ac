# libFuzzer targets (run from the top directory: `make fuzz`, which is
# `make -f test/fuzz/fuzz.mk`).
#   make -f test/fuzz/fuzz.mk            replay the corpora, then fuzz each target
#                                        for FUZZ_TIME seconds (default 60)
#   make -f test/fuzz/fuzz.mk replay     only replay the corpora (no libFuzzer; for CI)
#   make -f test/fuzz/fuzz.mk merge      minimize what fuzzing found into the committed
#                                        corpora (-merge=1: only inputs adding edges)
#
# Targets (one per decoder that takes outside input):
#   rpc        the RPC server's input path (framing, fds, parked calls)
#   methods    method arguments through the real handlers (kernel/methods.c)
#   spec       msgpack -> oci_spec_decode / oci_resources_decode
#   spec_json  config.json / process.json text -> json_mp_convert -> the same
#   json_mp    the CLI's JSON-to-msgpack converter alone, checked against json-c
#   state      the state file reader (state/), whole and split reads must agree
#   state_rt   the state file writer driven by a script, read back: same records and bytes
#   netargs    Network.CreateLinksAndRoutes' argument -> net_args_decode
#   ckpt_image the checkpoint engine's record loader (tasks, threads, mappings, pages, fds)
# Each target test/fuzz/fuzz_<name>.c is built twice into build-fuzz/:
#   fuzz_<name>    clang -fsanitize=fuzzer,address,undefined
#   replay_<name>  the same file with -DFUZZ_REPLAY_MAIN (its own main() runs
#                  every corpus file), ASan+UBSan, no libFuzzer needed
# Seeds live in test/fuzz/corpus/<name>/ (read-only); new inputs found while
# fuzzing go to build-fuzz/corpus/<name>/.
SHELL := /bin/bash
FUZZ_CC ?= clang
REPLAY_CC ?= $(FUZZ_CC)
OUT := build-fuzz
FUZZ_TIME ?= 60

MSGPACK_CFLAGS := $(shell pkg-config --cflags msgpack json-c 2>/dev/null)
MSGPACK_LIBS := $(shell pkg-config --libs msgpack 2>/dev/null || echo -lmsgpackc)
CFLAGS_F := -std=gnu11 -g -O1 -D_GNU_SOURCE -I. -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined $(MSGPACK_CFLAGS)

TARGETS := rpc methods spec spec_json json_mp
TARGETS += state
TARGETS += state_rt
TARGETS += netargs
TARGETS += ckpt_image
# Sources each target links (besides its own file).
SRC_rpc := rpc/server.c rpc/conn.c rpc/call.c rpc/scan.c core/err.c core/log.c core/loop.c core/buf.c
LIBS_rpc := $(MSGPACK_LIBS) -lev
# The handlers pull in the whole sandbox (spawn, cgroups, seccomp).
SRC_methods := $(sort $(wildcard core/*.c rpc/*.c kernel/*.c netstack/*.c state/*.c))
LIBS_methods := $(shell pkg-config --libs msgpack libseccomp liblz4 json-c 2>/dev/null) -lev -lm
SRC_spec := core/spec.c core/mpk.c core/err.c rpc/scan.c
LIBS_spec := $(MSGPACK_LIBS)
JSON_LIBS := $(MSGPACK_LIBS) $(shell pkg-config --libs json-c 2>/dev/null || echo -ljson-c)
SRC_spec_json := cmd/json_mp.c cmd/cli.c core/spec.c core/mpk.c core/err.c core/utf8.c
LIBS_spec_json := $(JSON_LIBS)
SRC_json_mp := cmd/json_mp.c cmd/cli.c core/err.c core/utf8.c
LIBS_json_mp := $(JSON_LIBS)
SRC_state := $(sort $(wildcard state/*.c)) core/err.c core/mpk.c core/utf8.c
LIBS_state := $(MSGPACK_LIBS) $(shell pkg-config --libs liblz4 2>/dev/null || echo -llz4)
# kernel/cgroup_systemd.c, the systemd cgroup driver (h-sysd): libdbus-1.
CFLAGS_F += $(shell pkg-config --cflags dbus-1 2>/dev/null)
LIBS_methods += $(shell pkg-config --libs dbus-1 2>/dev/null)
SRC_state_rt := $(SRC_state)
LIBS_state_rt := $(LIBS_state)
SRC_netargs := kernel/network_args.c netstack/ip.c core/mpk.c core/err.c rpc/scan.c
LIBS_netargs := $(MSGPACK_LIBS)
SRC_ckpt_image := kernel/ckpt_image.c kernel/ckpt_capture.c kernel/ckpt_procstate.c kernel/ckpt_tmpfs.c kernel/procfs.c kernel/ptrace_inject.c $(SRC_state)
LIBS_ckpt_image := $(LIBS_state)
# kernel/ckpt_tmpfs.c restores the files through batches of calls.
SRC_ckpt_image += kernel/ptrace_batch.c
HDR := $(wildcard test/fuzz/*.h) test/unit/mem_sink.h

.PHONY: all build replay run merge
# Lets the prerequisites name each target's SRC_<name>.
.SECONDEXPANSION:
all: replay run

build: $(TARGETS:%=$(OUT)/fuzz_%) $(TARGETS:%=$(OUT)/replay_%)

$(OUT)/fuzz_%: test/fuzz/fuzz_%.c $$(SRC_$$*) $(HDR)
	@mkdir -p $(OUT)
	$(FUZZ_CC) $(CFLAGS_F) -fsanitize=fuzzer,address,undefined -o $@ $< $(SRC_$*) $(LIBS_$*)

$(OUT)/replay_%: test/fuzz/fuzz_%.c $$(SRC_$$*) $(HDR)
	@mkdir -p $(OUT)
	$(REPLAY_CC) $(CFLAGS_F) -DFUZZ_REPLAY_MAIN -fsanitize=address,undefined -o $@ $< \
		$(SRC_$*) $(LIBS_$*)

replay: $(TARGETS:%=$(OUT)/replay_%)
	@set -e; for t in $(TARGETS); do \
		./$(OUT)/replay_$$t test/fuzz/corpus/$$t $$(ls -d $(OUT)/corpus/$$t 2>/dev/null); \
	done

run: $(TARGETS:%=$(OUT)/fuzz_%)
	@set -e; for t in $(TARGETS); do \
		mkdir -p $(OUT)/corpus/$$t; \
		./$(OUT)/fuzz_$$t -max_total_time=$(FUZZ_TIME) -max_len=16384 \
			-artifact_prefix=$(OUT)/ \
			$(OUT)/corpus/$$t test/fuzz/corpus/$$t; \
	done


# Keeps the committed corpora small (about 100 files each): an input goes in
# only if it adds an edge to what is there already (-use_counters=0: hit
# counts are not new coverage here, or every loop length would be kept). The hand-made seeds come from
# test/fuzz/gen_seeds.py.
merge: $(TARGETS:%=$(OUT)/fuzz_%)
	@set -e; for t in $(TARGETS); do \
		mkdir -p $(OUT)/corpus/$$t; \
		./$(OUT)/fuzz_$$t -merge=1 -use_counters=0 -max_len=16384 test/fuzz/corpus/$$t $(OUT)/corpus/$$t; \
		echo "$$t: $$(ls test/fuzz/corpus/$$t | wc -l) files in test/fuzz/corpus/$$t"; \
	done
