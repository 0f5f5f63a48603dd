# Development tasks. Run "make help" for the list.
#
# Integration tests read WTCACHE_TEST_DATABASE (a postgres:// URL) and
# WTCACHE_TEST_REDIS (a redis:// URL) from the environment; this Makefile
# passes the environment through unchanged. "make test-integration" sets both
# to servers on localhost.

GO ?= go
GOFMT ?= gofmt
QUICKSTART := examples/quickstart
BANK := examples/bank
OTLP := examples/otlp
COMPAT := compat

.PHONY: help test test-compat bench lint demo demo-quickstart test-integration

help:
	@echo "make test              go test -race in the root module; build and test $(QUICKSTART) and $(BANK); build $(OTLP); make test-compat (needs Go; integration tests need PostgreSQL, Redis and redis-server on PATH)"
	@echo "make test-compat       go vet and go test -race in $(COMPAT) (GORM, sqlx, bun, sqlc over wtcache)"
	@echo "make test-integration  make test against PostgreSQL and Redis on 127.0.0.1"
	@echo "make fuzz-short        each fuzz target for about 10s (a count of executions; FUZZTIME=30s overrides): DSN parser, key encoder, row decoder, recognizer"
	@echo "make bench             benchmarks of the root module"
	@echo "make lint              gofmt check and go vet (root module, $(QUICKSTART), $(BANK), $(OTLP) and $(COMPAT))"
	@echo "make demo              run $(BANK): the tour, under load and with the cache taken down (needs PostgreSQL only)"
	@echo "make demo-quickstart   run $(QUICKSTART) (needs PostgreSQL and Redis)"
	@echo "make test-recognizer   differential test of internal/recognize against PostgreSQL's grammar (recognizetest/, cgo)"
	@echo "make chaos             long form of the consistency checker (TestChaos*: faults, porcupine) on 127.0.0.1, minutes"
	@echo "make feed-long         long form of the change feed's outside-writer checker (TestFeedChecker), minutes"
	@echo "make soak              the consistency checker's workload and faults for SOAK (10m), both policies: zero violations, no goroutine leak, heap flat (short form in make test)"
	@echo "make diff-long         long form of the differential workload (TestDifferentialWorkload: roles, sessions, audit), minutes"

test:
	$(GO) test -race -count=1 ./...
	# Timing ratios mean nothing under -race: the outage test asserts them here.
	$(GO) test -count=1 -run '^TestOutage$$' .
	cd $(QUICKSTART) && $(GO) build -o /dev/null ./... && $(GO) test -count=1 ./...
	cd $(BANK) && $(GO) build -o /dev/null ./... && $(GO) test -count=1 ./...
	cd $(OTLP) && $(GO) build -o /dev/null ./...
	$(MAKE) test-compat

# compat is a module of its own, so that the ORMs stay out of the library's
# go.mod; like the root module's integration tests, its tests skip without
# WTCACHE_TEST_DATABASE and WTCACHE_TEST_REDIS (and fail with CI=true).
test-compat:
	cd $(COMPAT) && $(GO) vet ./... && $(GO) test -race -count=1 ./...

test-integration:
	WTCACHE_TEST_DATABASE='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' \
	WTCACHE_TEST_REDIS='redis://127.0.0.1:6379/15' \
	$(MAKE) test

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./...

lint:
	@out="$$($(GOFMT) -l .)" || exit 1; \
	if [ -n "$$out" ]; then echo "gofmt -l: these files need gofmt -w:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd $(QUICKSTART) && $(GO) vet ./...
	cd $(BANK) && $(GO) vet ./...
	cd $(OTLP) && $(GO) vet ./...
	cd $(COMPAT) && $(GO) vet ./...

demo:
	cd $(BANK) && $(GO) run .

demo-quickstart:
	cd $(QUICKSTART) && $(GO) run .

# The differential test of internal/recognize against PostgreSQL's own parser
# (pg_query, cgo) lives in its own module so that the library stays cgo-free.
.PHONY: test-recognizer
test-recognizer:
	cd recognizetest && $(GO) test -count=1 ./...

# The long form of the consistency checker (chaos_test.go): writers and
# readers on hot rows through several handles while Redis and PostgreSQL
# are cut, slowed, killed and flushed; every row's history is checked for
# linearizability and Redis is compared with PostgreSQL at the end. The
# short form runs in "make test". Needs redis-server on PATH.
.PHONY: chaos
chaos:
	WTCACHE_TEST_DATABASE='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' \
	WTCACHE_TEST_REDIS='redis://127.0.0.1:6379/15' \
	WTCACHE_CHAOS_LONG=1 $(GO) test -race -count=1 -run 'TestChaos' -timeout 30m -v .

# The long form of the change feed's outside-writer checker: five rounds of
# its faults, with longer phases. Set WTCACHE_PG_RESTART to a command that
# restarts PostgreSQL to include real restarts (.ci/run sets it for CI's
# short form).
.PHONY: feed-long
feed-long:
	WTCACHE_TEST_DATABASE='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' \
	WTCACHE_TEST_REDIS='redis://127.0.0.1:6379/15' \
	WTCACHE_FEED_LONG=1 $(GO) test -race -count=1 -run 'TestFeedChecker' -timeout 30m -v .

# The long form of the differential workload (diff_test.go): handles of
# several roles and session settings, each with a plain pgx twin, the audit
# after every step; 8 seeds of 600 steps. WTCACHE_DIFF_SEED=n replays one.
.PHONY: diff-long
diff-long:
	WTCACHE_TEST_DATABASE='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' \
	WTCACHE_TEST_REDIS='redis://127.0.0.1:6379/15' \
	WTCACHE_DIFF_LONG=1 $(GO) test -count=1 -run 'TestDifferentialWorkload' -timeout 60m -v .

# Short fuzzing runs (their seed corpora run with every go test): the DSN
# parser, the key encoder, the row decoder (alone, and any bytes standing as
# an entry in Redis: FuzzCorruptEntry, which needs the WTCACHE_TEST_*
# services) and the recognizer.
# Budgets are counts of executions, about 10 s each on a 2-core machine,
# not durations: with a duration, Go 1.26's fuzzing coordinator can fail a
# clean run with "context deadline exceeded" at the deadline (go.dev/issue/75804,
# fixed in Go 1.27; CI saw it). FUZZTIME=30s (say) overrides every budget.
FUZZ_SPLIT ?= 500000x
FUZZ_KEYS ?= 60000x
FUZZ_DECODE ?= 600000x
FUZZ_ENTRY ?= 5000x
FUZZ_CLASSIFY ?= 400000x
.PHONY: fuzz-short
fuzz-short:
	$(GO) test -run '^$$' -fuzz '^FuzzSplit$$' -fuzztime $(or $(FUZZTIME),$(FUZZ_SPLIT)) ./internal/dsn
	$(GO) test -run '^$$' -fuzz '^FuzzKeyEncoding$$' -fuzztime $(or $(FUZZTIME),$(FUZZ_KEYS)) .
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(or $(FUZZTIME),$(FUZZ_DECODE)) ./internal/rowcodec
	$(GO) test -run '^$$' -fuzz '^FuzzCorruptEntry$$' -fuzztime $(or $(FUZZTIME),$(FUZZ_ENTRY)) .
	$(GO) test -run '^$$' -fuzz '^FuzzClassify$$' -fuzztime $(or $(FUZZTIME),$(FUZZ_CLASSIFY)) ./internal/recognize

# The soak (soak_test.go): the consistency checker's workload with all its
# faults, cycle after cycle under both failure policies, for SOAK; then no
# goroutine left (goleak) and the heap after GC, sampled per cycle, flat after
# the first. The short form (two cycles) runs in "make test".
SOAK ?= 10m
.PHONY: soak
soak:
	WTCACHE_TEST_DATABASE='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' \
	WTCACHE_TEST_REDIS='redis://127.0.0.1:6379/15' \
	WTCACHE_SOAK=$(SOAK) $(GO) test -race -count=1 -run '^TestSoak$$' -timeout 60m -v .
