# petrel — GNU make. Objects go to $(BUILD); `make SAN=1` builds with
# ASan+UBSan into build/asan.
SAN     ?=
ifeq ($(SAN),1)
BUILD   ?= build/asan
SANFLAGS = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
else
BUILD   ?= build
SANFLAGS =
endif

CC      ?= cc
PKGS     = libevent libevent_pthreads libevent_openssl libcares libssl libcrypto
WARN     = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wformat=2 -Wimplicit-fallthrough -Wvla -Wpointer-arith -Wno-format-nonliteral -Wno-format-truncation
CFLAGS  ?= -O2 -g
ALLCFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(SANFLAGS) -Isrc \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lcrypt -lpthread

LIB_SRCS  = $(wildcard src/base/*.c src/event/*.c src/net/*.c src/config/*.c src/smtp/*.c src/queue/*.c \
                       src/delivery/*.c src/inbound/*.c src/control/*.c src/submit/*.c src/auth/*.c)
LIB_OBJS  = $(LIB_SRCS:%.c=$(BUILD)/%.o)
UNIT_SRCS = $(wildcard tests/unit/test_*.c)
UNIT_BINS = $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRCS = $(wildcard fuzz/fuzz_*.c)

.PHONY: all deps run test unit lint check-format format fuzz bench clean crash-test
all: $(BUILD)/petreld $(BUILD)/petrel $(BUILD)/sendmail $(BUILD)/mailq $(UNIT_BINS) $(BUILD)/tests/tools/resolve

deps:
	@scripts/deps.sh

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(ALLCFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libpetrel.a: $(LIB_OBJS)
	@rm -f $@
	@ar rcs $@ $^

$(BUILD)/petreld: $(BUILD)/src/cmd/petreld.o $(BUILD)/libpetrel.a
	@echo "  LD      $@"
	@$(CC) $(ALLCFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/petrel: $(BUILD)/src/cmd/petrel.o $(BUILD)/libpetrel.a
	@echo "  LD      $@"
	@$(CC) $(ALLCFLAGS) -o $@ $^ $(LDLIBS)

# argv[0] dispatch: petrel behaves as sendmail(1) or mailq(1) under those names.
$(BUILD)/sendmail $(BUILD)/mailq: $(BUILD)/petrel
	@ln -sf petrel $@

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(BUILD)/libpetrel.a
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(ALLCFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

# DNS lookups from the command line, for tests/integration/test_resolver.py
$(BUILD)/tests/tools/resolve: $(BUILD)/tests/tools/resolve.o $(BUILD)/libpetrel.a
	@echo "  LD      $@"
	@$(CC) $(ALLCFLAGS) -o $@ $^ $(LDLIBS)

run: deps
	@$(MAKE) --no-print-directory all
	@mkdir -p var
	$(BUILD)/petreld -c etc/petrel.conf

# Every test: unit and integration, then the same again under ASan+UBSan,
# then each fuzz target for a few seconds.
test: deps
	@scripts/lint.sh
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory SAN=1 all
	@scripts/run-tests.sh

# The crash campaign (docs/durability.md): 100 SIGKILL cycles, the disk-full
# run and the fsync check; CRASH_ARGS="--cycles 20 --seed 7" to change it.
crash-test: deps
	@$(MAKE) --no-print-directory all
	@/usr/bin/python3 tests/crash/crash_campaign.py --build $(BUILD) $(CRASH_ARGS)

unit: all
	@scripts/run-unit.sh $(BUILD)

fuzz: deps
	@scripts/fuzz.sh $(FUZZ_SECONDS)

lint:
	@scripts/lint.sh

# petrel against a private Postfix (and Haraka, installed with npm into
# build/bench/npm) on loopback; the table goes to stdout and build/bench/results.md.
# BENCH_REPS=N, BENCH_SCALE=F, BENCH_ARGS="--only maildir --servers petrel,postfix".
bench: deps
	@$(MAKE) --no-print-directory all
	@timeout -k 30 $${BENCH_TIMEOUT:-7200} bench/run $(BENCH_ARGS)

check-format:
	@clang-format --dry-run -Werror $(shell git ls-files '*.c' '*.h')

format:
	clang-format -i $(shell git ls-files '*.c' '*.h')

clean:
	rm -rf build

-include $(LIB_OBJS:.o=.d) $(BUILD)/src/cmd/petreld.d $(BUILD)/src/cmd/petrel.d
