# Lockstep — the two commands a new user needs are `make run` and `make test`.

GO ?= go
DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/lockstep?sslmode=disable
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable

.PHONY: run test build bench vet fmt

# The private PostgreSQL cluster under ./.data is a fallback for the default
# URLs only: a DATABASE_URL you give (environment or command line) that does
# not answer is an error, so a typo in its host is never papered over.
PG_FALLBACK := $(if $(filter file,$(origin DATABASE_URL)),1,0)
TEST_PG_FALLBACK := $(if $(filter file,$(origin TEST_DATABASE_URL)),1,0)

# make run ensures this ADMIN account (development only; set both to choose your own).
ADMIN_EMAIL ?= admin@lockstep.local
ADMIN_PASSWORD ?= lockstep-admin
SHOWN_PASSWORD := $(if $(filter file,$(origin ADMIN_PASSWORD)),$(ADMIN_PASSWORD),(your ADMIN_PASSWORD))

## run: build and serve on :8080 with the admin above (uses a private PostgreSQL under ./.data when
## DATABASE_URL is not set and the default server does not answer)
run: build
	@url=$$(PG_FALLBACK=$(PG_FALLBACK) scripts/postgres-url.sh "$(DATABASE_URL)") && \
	  addr="$${HTTP_ADDR:-:8080}" && host="$${addr%:*}" && port="$${addr##*:}" && \
	  case "$$host" in ""|0.0.0.0|"[::]") host=localhost;; esac && \
	  echo "Lockstep on http://$$host:$$port — database $$url" && \
	  echo "Admin: $(ADMIN_EMAIL) / $(SHOWN_PASSWORD) — next, in another terminal: ./bin/lockstep simulate --students 30" && \
	  DATABASE_URL="$$url" ADMIN_EMAIL="$(ADMIN_EMAIL)" ADMIN_PASSWORD="$(ADMIN_PASSWORD)" ./bin/lockstep serve

## test: every test, with the race detector, against the real PostgreSQL
## (installs the test-only xAPI validator, Learning Locker's, with npm when node is there)
test:
	@if command -v npm >/dev/null; then \
	  npm ci --prefix analytics/testdata/xapi-validator --no-audit --no-fund --loglevel=error >/dev/null || \
	  echo "warning: could not install the xAPI validator; its tests will say so"; fi
	@url=$$(PG_FALLBACK=$(TEST_PG_FALLBACK) scripts/postgres-url.sh "$(TEST_DATABASE_URL)") && \
	  TEST_DATABASE_URL="$$url" $(GO) test -race -count=1 ./...

build:
	$(GO) build -o bin/lockstep ./cmd/lockstep

## bench: the benchmarks whose figures the issues ask for
bench:
	@url=$$(PG_FALLBACK=$(TEST_PG_FALLBACK) scripts/postgres-url.sh "$(TEST_DATABASE_URL)") && \
	  TEST_DATABASE_URL="$$url" $(GO) test -run '^$$' -bench . -benchtime 2s ./...

vet:
	$(GO) vet ./...

fmt:
	gofmt -l -w .
