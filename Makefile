# Ephemera: see README.md. `make run` and `make test` set up everything they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        ?= .venv
PYTHON      ?= python3
VENV_STAMP  := $(VENV)/.installed
CARGO       ?= cargo
export EPHEMERA_VENV ?= $(CURDIR)/$(VENV)

.PHONY: bench bench-blueprint bench-scale chaos iam-report fuzz fuzz-ci fuzz-deps bench-reaper reap status help venv run test test-unit test-resolvers test-integration test-browser browser-deps lint fmt fmt-check clippy lint-templates build deploy clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

$(VENV_STAMP): tools/requirements.txt tools/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/requirements.txt -c tools/constraints.txt
	touch $@

venv: $(VENV_STAMP) ## Install the emulator (moto server) and template linters into .venv

run: venv ## Run the platform locally on the embedded emulator (Ctrl-C stops it)
	$(CARGO) run --quiet -p ephemera-local --bin ephemera-local

test: venv lint test-unit test-integration test-browser fuzz-ci ## Everything CI runs: lint, unit, integration and browser tests, a short fuzz

test-unit: test-resolvers ## Domain and service tests through the in-memory ports, registry conformance (no emulator)
	$(CARGO) test --workspace --exclude ephemera-tests --exclude ephemera-cli

test-resolvers: ## The default blueprint's AppSync JavaScript resolvers (Node.js's own test runner)
	@command -v node >/dev/null || { echo "Node.js 18 or later is needed for the resolver tests"; exit 1; }
	node --test infra/blueprints/resolvers/resolvers.test.mjs

IAM_EXERCISED ?= $(CURDIR)/target/iam-exercised

test-integration: venv ## End-to-end tests against the emulator (the CLI's included), then the report of IAM statements no test exercised
	rm -rf $(IAM_EXERCISED)
	EPHEMERA_IAM_EXERCISED=$(IAM_EXERCISED) $(CARGO) test -p ephemera-tests -p ephemera-cli
	EPHEMERA_IAM_EXERCISED=$(IAM_EXERCISED) $(CARGO) run -q -p ephemera-tests --bin iam-report -- --check

iam-report: ## The IAM statements the last `make test-integration` never exercised, as docs/iam.md's table rows
	EPHEMERA_IAM_EXERCISED=$(IAM_EXERCISED) $(CARGO) run -q -p ephemera-tests --bin iam-report

CHROMIUM     ?= /usr/bin/chromium
CHROMEDRIVER ?= /usr/bin/chromedriver

browser-deps: ## Debian's headless Chromium and chromedriver, if missing (needs root, as in CI)
	@if [ ! -x "$(CHROMIUM)" ] || [ ! -x "$(CHROMEDRIVER)" ]; then \
	  command -v apt-get >/dev/null || { echo "install Chromium and chromedriver, or set CHROMIUM and CHROMEDRIVER"; exit 1; }; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; \
	fi

test-browser: venv browser-deps ## The dashboard in headless Chromium (installs Debian's chromium and chromium-driver)
	CHROMIUM=$(CHROMIUM) CHROMEDRIVER=$(CHROMEDRIVER) $(CARGO) test -p ephemera-tests --test browser -- --ignored

FUZZ_SECONDS ?= 300
FUZZ_TARGETS := webhook_signature webhook_payload sigv4_verify environment_names blueprint_check

fuzz-deps:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install --locked cargo-fuzz --version 0.13.1

# cargo fuzz needs the compiler's unstable sanitizer flags: RUSTC_BOOTSTRAP lets the stable
# toolchain use them.
fuzz: fuzz-deps ## Each fuzz target for FUZZ_SECONDS (default 300) seconds, corpora seeded from events/
	fuzz/seed.sh
	@for t in $(FUZZ_TARGETS); do \
	  echo "fuzz $$t for $(FUZZ_SECONDS) s"; \
	  RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run $$t fuzz/corpus/$$t -- -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 2>&1 \
	    | grep -E '^(Done|stat::number_of_executed_units|==[0-9]+== ERROR|SUMMARY|thread .* panicked)' ; \
	  test $${PIPESTATUS[0]} -eq 0 || exit 1; \
	done

fuzz-ci: ## The fuzz targets for 20 s each (part of make test)
	$(MAKE) fuzz FUZZ_SECONDS=20

lint: fmt-check clippy lint-templates ## rustfmt, clippy -D warnings, cfn-lint

fmt: ## Format the code
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

lint-templates: venv
	$(VENV)/bin/cfn-lint template.yaml $$(find infra -name '*.yaml')
	SAM_CLI_TELEMETRY=0 $(VENV)/bin/sam validate --lint --template template.yaml --region us-east-1

build: venv ## Lambda binaries for arm64 and the SAM build (installs cargo-lambda, and zig from PyPI, if missing)
	@command -v cargo-lambda >/dev/null || $(CARGO) install --locked cargo-lambda
	@rustup target list --installed | grep -q aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu
	@command -v zig >/dev/null || $(VENV)/bin/python -c 'import ziglang' 2>/dev/null || $(VENV)/bin/pip install --quiet ziglang
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0 $(VENV)/bin/sam build --beta-features

deploy: venv ## Deploy to AWS with SAM (README: Deploying to AWS); `make deploy GUIDED=1` the first time
	SAM_CLI_TELEMETRY=0 $(VENV)/bin/sam deploy $(if $(GUIDED),--guided,)

clean:
	$(CARGO) clean
	rm -rf $(VENV)

LAMBDAS := webhook provisioner reaper selfservice stack-events notifier

bench: venv ## Benchmarks next to their floors: bench/results.json and the table for the README
	$(CARGO) build --quiet --profile measure $(addprefix -p ,$(LAMBDAS))
	$(CARGO) run --quiet --profile measure -p ephemera-tests --bin bench

bench-blueprint: ## The blueprint check's time for the default blueprint and 200 resources: bench/blueprint.json
	$(CARGO) run --quiet --profile measure -p ephemera-tests --bin bench-blueprint

bench-reaper: venv ## The reaper over 2,000 environments of every kind in the emulator: wall time, calls by operation, peak memory, against the floor
	$(CARGO) run --quiet -p ephemera-tests --bin bench-reaper

bench-scale: venv ## 10,000 environments over 5 deploy accounts: create path at 10 and 10,000, sweep dry run against its floor, its peak memory: bench/scale.json
	$(CARGO) run --quiet --profile measure -p ephemera-tests --bin bench-scale

chaos: venv ## 100 pull requests in 10 repositories, random events, faults, then the reaper; invariants printed (SEED=n)
	$(CARGO) run --quiet -p ephemera-tests --bin chaos -- --prs 100 --repos 10 --seed $(or $(SEED),1)

reap: ## One reaper sweep against the local emulator (while `make run` runs); DRY_RUN=1 to only report
	$(CARGO) run --quiet -p ephemera-local --bin ephemera-local -- reap $(if $(DRY_RUN),--dry-run,)

status: ## Environments and stacks in the local emulator (while `make run` runs)
	$(CARGO) run --quiet -p ephemera-local --bin ephemera-local -- status
