# Development tasks. Run "make help" for the list.
#
# Integration tests read WTCACHE_TEST_DATABASE (a postgres:// URL) and
# WTCACHE_TEST_REDIS (a redis:// URL) from the environment; this Makefile
# passes the environment through unchanged. "make test-integration" sets both
# to servers on localhost.

GO ?= go
GOFMT ?= gofmt
QUICKSTART := examples/quickstart
COMPAT := compat

.PHONY: help test test-compat bench lint demo test-integration

help:
	@echo "make test              go test -race in the root module; build and test $(QUICKSTART); make test-compat"
	@echo "make test-compat       go vet and go test -race in $(COMPAT) (GORM, sqlx, bun, sqlc over wtcache)"
	@echo "make test-integration  make test against PostgreSQL and Redis on 127.0.0.1"
	@echo "make bench             benchmarks of the root module"
	@echo "make lint              gofmt check and go vet (root module, $(QUICKSTART) and $(COMPAT))"
	@echo "make demo              run $(QUICKSTART) (needs PostgreSQL and Redis)"

test:
	$(GO) test -race -count=1 ./...
	cd $(QUICKSTART) && $(GO) build -o /dev/null ./... && $(GO) test -count=1 ./...
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
	cd $(COMPAT) && $(GO) vet ./...

demo:
	cd $(QUICKSTART) && $(GO) run .
