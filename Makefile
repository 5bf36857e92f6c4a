# OrbitMQ: every target sets up what it needs from scratch (virtualenv, Python deps, npm packages).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
NODE_DIR := tests/compat/node
NODE5_DIR := tests/compat/node5
ARGS ?=

.PHONY: run test lint bench venv node-deps clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,fast]'
	touch $@

venv: $(VENV)/.installed

# The real RocketMQ clients used by tests/compat, pinned by the committed package-lock.json.
$(NODE_DIR)/node_modules/.installed: $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	cd $(NODE_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The official RocketMQ 5 Node.js client used by the proxy's compat tests, pinned the same way.
$(NODE5_DIR)/node_modules/.installed: $(NODE5_DIR)/package.json $(NODE5_DIR)/package-lock.json
	cd $(NODE5_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

node-deps: $(if $(wildcard $(NODE_DIR)/package-lock.json),$(NODE_DIR)/node_modules/.installed) \
	$(if $(wildcard $(NODE5_DIR)/package-lock.json),$(NODE5_DIR)/node_modules/.installed)

run: venv
	$(VENV)/bin/orbitmq standalone $(ARGS)

lint: venv
	$(PY) -m ruff check orbitmq tests benchmarks
	$(PY) -m ruff format --check orbitmq tests benchmarks
	$(PY) -m mypy orbitmq
	$(VENV)/bin/lint-imports

test: lint node-deps
	$(PY) -m pytest -q -p no:cacheprovider $(ARGS)

bench: venv
	@command -v redis-server >/dev/null || (apt-get update -qq && apt-get install -y -qq redis-server >/dev/null)
	$(PY) -m benchmarks.run_all

clean:
	rm -rf $(VENV) $(NODE_DIR)/node_modules $(NODE5_DIR)/node_modules .pytest_cache .mypy_cache .ruff_cache
