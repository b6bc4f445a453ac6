# Lockstep — the two commands a new user needs are `make run` and `make test`.

GO ?= go
DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/lockstep?sslmode=disable
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable

.PHONY: run test build bench vet fmt

## run: build and serve on :8080 (uses a private PostgreSQL under ./.data if DATABASE_URL does not answer)
run: build
	@url=$$(scripts/postgres-url.sh "$(DATABASE_URL)") && \
	  echo "Lockstep on http://localhost$${HTTP_ADDR:-:8080} with database $$url" && \
	  DATABASE_URL="$$url" ./bin/lockstep serve

## test: every test, with the race detector, against the real PostgreSQL
## (installs the test-only xAPI validator, Learning Locker's, with npm when node is there)
test:
	@if command -v npm >/dev/null; then \
	  npm ci --prefix analytics/testdata/xapi-validator --no-audit --no-fund --loglevel=error >/dev/null || \
	  echo "warning: could not install the xAPI validator; its tests will say so"; fi
	@url=$$(scripts/postgres-url.sh "$(TEST_DATABASE_URL)") && \
	  TEST_DATABASE_URL="$$url" $(GO) test -race -count=1 ./...

build:
	$(GO) build -o bin/lockstep ./cmd/lockstep

## bench: the benchmarks whose figures the issues ask for
bench:
	@url=$$(scripts/postgres-url.sh "$(TEST_DATABASE_URL)") && \
	  TEST_DATABASE_URL="$$url" $(GO) test -run '^$$' -bench . -benchtime 2s ./...

vet:
	$(GO) vet ./...

fmt:
	gofmt -l -w .
