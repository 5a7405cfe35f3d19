# The two commands: `make demo` (the end-to-end lifecycle demo) and `make test` (the suite).
# Each creates .venv with nothing but Python and installs Keel pinned by constraints.txt.

PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	&& { command -v $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.keel-installed
EXTRAS ?= dev,postgres,s3,grpc,onnx,hpo,ray,ui-charts,k8s
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: demo test bench lint format lock clean proto

$(STAMP): pyproject.toml constraints.txt
	@test -n "$(PYTHON)" || { echo "Keel needs Python >= 3.11 (python3.11, 3.12 or 3.13 on PATH)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet pip==26.3
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[$(EXTRAS)]"
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/keel demo

# PostgreSQL tests run when a server answers on 127.0.0.1:5432 (CI has one);
# otherwise they skip with a one-line reason.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@if $(BIN)/python -c "import socket; socket.create_connection(('127.0.0.1', 5432), 2).close()" 2>/dev/null; then \
		export KEEL_TEST_POSTGRES_URL="$${KEEL_TEST_POSTGRES_URL:-$(PG_URL)}"; \
		echo "PostgreSQL tests: $$KEEL_TEST_POSTGRES_URL"; \
	else echo "PostgreSQL not reachable on 127.0.0.1:5432: its tests will skip"; fi; \
	$(BIN)/pytest -n 2 --dist loadgroup -p no:cacheprovider $(PYTEST_ARGS)

# The serving figure (g) drives load with wrk, Debian's package: installed here when missing.
bench: $(STAMP)
	@command -v wrk >/dev/null 2>&1 || { echo "installing wrk (apt-get) for the serving benchmark"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk; } \
		|| echo "wrk could not be installed: figure (g) will fail; apt-get install wrk"
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Regenerate the Open Inference Protocol gRPC modules from src/keel/serving/proto/*.proto.
proto: $(STAMP)
	$(BIN)/python -m keel.serving.proto._generate

# Re-pin every dependency from a fresh resolve (run after changing pyproject.toml).
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade pip
	.venv-lock/bin/python -m pip install --quiet ".[all,dev]"
	.venv-lock/bin/python -m pip freeze --exclude keel-mlops > constraints.txt
	rm -rf .venv-lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
