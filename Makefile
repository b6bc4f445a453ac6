# Lockstep — the two commands a new user needs are `make run` and `make test`.

GO ?= go
DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/lockstep?sslmode=disable
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable

.PHONY: run test build bench bench-big vet fmt check dups vendor-web vendor-docs screenshots fuzz chaos soak

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

## fuzz: run every fuzz target (func Fuzz… in any package) for FUZZTIME each, one after
## another (`make test` runs only their committed corpora in testdata/fuzz); a crash
## stops it and leaves the failing input under that package's testdata/fuzz
FUZZTIME ?= 30s
FUZZPARALLEL ?= 1
fuzz:
	@url=$$(PG_FALLBACK=$(TEST_PG_FALLBACK) scripts/postgres-url.sh "$(TEST_DATABASE_URL)") && \
	  for f in $$(grep -rl --include='*_test.go' '^func Fuzz' . | sort); do \
	    for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
	      echo "== $$t ($$(dirname $$f)) for $(FUZZTIME)"; \
	      TEST_DATABASE_URL="$$url" $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) -parallel $(FUZZPARALLEL) ./$$(dirname $$f)/ || exit 1; \
	    done; \
	  done

## bench: the benchmarks whose figures the issues ask for
bench:
	@url=$$(PG_FALLBACK=$(TEST_PG_FALLBACK) scripts/postgres-url.sh "$(TEST_DATABASE_URL)") && \
	  TEST_DATABASE_URL="$$url" $(GO) test -run '^$$' -bench . -benchtime 2s ./...

## bench-big: the class-scale figures (10,000-student progress burst and fan-out); the students'
## ends run in a child process (a process may hold about 20,000 descriptors here)
bench-big:
	@url=$$(PG_FALLBACK=$(TEST_PG_FALLBACK) scripts/postgres-url.sh "$(TEST_DATABASE_URL)") && \
	  LOCKSTEP_BENCH_BIG=1 TEST_DATABASE_URL="$$url" $(GO) test -run '^$$' -bench 'ProgressBurstElsewhere|FanOutElsewhere' -benchtime 3x -timeout 30m ./simulator/

## check: formatting and vet, as CI runs them before the tests
check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# dups: repeated blocks (the team's duplicates tool), Go import lists left out.
dups:
	scripts/duplicates-code.sh .

vet:
	$(GO) vet ./...

fmt:
	gofmt -l -w .

## vendor-web: copy the console's front-end libraries from npm into console/static/vendor
## (versions pinned in console/vendor-src/package.json; see console/VENDOR.md). The copies
## are committed, so `make run` needs no Node; run this only to change a version.
vendor-web:
	npm ci --prefix console/vendor-src --no-audit --no-fund --loglevel=error
	@set -e; n=console/vendor-src/node_modules; v=console/static/vendor; mkdir -p $$v; \
	  cp $$n/preact/dist/preact.mjs $$v/preact.mjs; \
	  sed 's#from"preact"#from"./preact.mjs"#g' $$n/preact/hooks/dist/hooks.mjs > $$v/hooks.mjs; \
	  cp $$n/htm/dist/htm.mjs $$v/htm.mjs; \
	  cp $$n/chart.js/dist/chart.umd.min.js $$v/chart.umd.min.js; \
	  cp $$n/axe-core/axe.min.js console/browsertest/testdata/axe.min.js; \
	  cp $$n/axe-core/LICENSE console/browsertest/testdata/axe-core.LICENSE; \
	  mkdir -p $$v/licenses; \
	  for p in preact htm chart.js @kurkle/color; do \
	    (cd $$n/$$p && node -p "const p=require('./package.json'); p.name+' '+p.version+' '+p.license"); \
	    cp $$(ls $$n/$$p/LICENSE* | head -n 1) $$v/licenses/$$(echo $$p | tr / -).LICENSE; \
	  done > $$v/VERSIONS; \
	  (cd $$n/axe-core && node -p "const p=require('./package.json'); p.name+' '+p.version+' '+p.license+' (tests only)'") >> $$v/VERSIONS
	@cat console/static/vendor/VERSIONS

## vendor-docs: copy the /docs page's renderers (Redoc, the AsyncAPI React component) from npm into
## apidocs/static/vendor (versions pinned in apidocs/vendor-src/package.json; see apidocs/VENDOR.md).
## The copies are committed, so `make run` needs no Node; run this only to change a version.
vendor-docs:
	npm ci --prefix apidocs/vendor-src --legacy-peer-deps --no-audit --no-fund --loglevel=error
	@set -e; n=apidocs/vendor-src/node_modules; v=apidocs/static/vendor; mkdir -p $$v/licenses; \
	  sed 's#https://cdn.redoc.ly/redoc/logo-mini.svg#data:,#g' $$n/redoc/bundles/redoc.standalone.js > $$v/redoc.standalone.js; \
	  if grep -q 'https://cdn\.' $$v/redoc.standalone.js; then echo "redoc.standalone.js still loads from a CDN"; exit 1; fi; \
	  cp $$n/redoc/bundles/redoc.standalone.js.LICENSE.txt $$v/licenses/redoc.standalone.js.LICENSE.txt; \
	  cp $$n/@asyncapi/react-component/browser/standalone/index.js $$v/asyncapi.standalone.js; \
	  cp $$n/@asyncapi/react-component/browser/standalone/index.js.LICENSE.txt $$v/licenses/asyncapi.standalone.js.LICENSE.txt; \
	  cp $$n/@asyncapi/react-component/styles/default.min.css $$v/asyncapi.min.css; \
	  for p in redoc @asyncapi/react-component; do \
	    (cd $$n/$$p && node -p "const p=require('./package.json'); p.name+' '+p.version+' '+p.license"); \
	    cp $$(ls $$n/$$p/LICENSE* | head -n 1) $$v/licenses/$$(echo $$p | tr / - | sed 's/^@//').LICENSE; \
	  done > $$v/VERSIONS
	@cat apidocs/static/vendor/VERSIONS

## screenshots: run the browser tests that write the console's screenshots into ./screenshots
screenshots:
	@mkdir -p screenshots
	@url=$$(scripts/postgres-url.sh "$(TEST_DATABASE_URL)") && \
	  TEST_DATABASE_URL="$$url" LOCKSTEP_SCREENSHOTS="$$(pwd)/screenshots" $(GO) test -count=1 -run 'TestWholeClass|TestReplay|TestControlRoomSimulated' -v ./console/browsertest/ | grep -E '^(=== RUN|--- |ok|FAIL|PASS)|screenshot|latency'
	@ls screenshots

## chaos: the long chaos tests (database connections killed, an instance SIGKILLed, the Kafka broker restarted)
chaos:
	@url=$$(PG_FALLBACK=$(TEST_PG_FALLBACK) scripts/postgres-url.sh "$(TEST_DATABASE_URL)") && \
	  TEST_DATABASE_URL="$$url" $(GO) test -count=1 -timeout 60m -v ./chaos/ -chaos.long

## soak: a 30-minute run of 300-student classes against one server, sampled every minute (not in CI)
soak:
	@url=$$(PG_FALLBACK=$(TEST_PG_FALLBACK) scripts/postgres-url.sh "$(TEST_DATABASE_URL)") && \
	  TEST_DATABASE_URL="$$url" $(GO) test -count=1 -timeout 50m -v -run TestSoak ./chaos/ -chaos.soak
