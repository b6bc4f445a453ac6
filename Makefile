# Lockstep — the two commands a new user needs are `make run` and `make test`.

GO ?= go
DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/lockstep?sslmode=disable
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable

.PHONY: run test build bench vet fmt vendor-web screenshots

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

## screenshots: run the browser tests that write the console's screenshots into ./screenshots
screenshots:
	@mkdir -p screenshots
	@url=$$(scripts/postgres-url.sh "$(TEST_DATABASE_URL)") && \
	  TEST_DATABASE_URL="$$url" LOCKSTEP_SCREENSHOTS="$$(pwd)/screenshots" $(GO) test -count=1 -run 'TestWholeClass|TestReplay|TestControlRoomSimulated' -v ./console/browsertest/ | grep -E '^(=== RUN|--- |ok|FAIL|PASS)|screenshot|latency'
	@ls screenshots
