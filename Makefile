# Every target bootstraps what it needs, idempotently: a fresh machine runs `make demo` or `make test` directly.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements.sha256

.PHONY: bootstrap system-packages venv test unit integration lint typecheck demo bench preview clean

bootstrap: system-packages venv

# MariaDB (the local MySQL source) and MariaDB Connector/J (Spark's JDBC driver); Java 17 for Spark.
system-packages:
	@$(PYTHON) -m harness.emulator.bootstrap system

# Reinstall only when requirements.txt or pyproject.toml changed since the last install. The repository itself is
# installed in editable mode: the `harness` command, and every package importable without sys.path edits.
venv:
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@want=$$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1); \
	if [ "$$(cat $(STAMP) 2>/dev/null)" != "$$want" ]; then \
		echo "==> installing pinned Python dependencies into $(VENV)"; \
		$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt && \
		$(PY) -m pip install --disable-pip-version-check -q --no-build-isolation --no-deps -e . && \
		echo "$$want" > $(STAMP); \
	fi

lint: venv
	$(VENV)/bin/ruff check .

typecheck: venv
	$(VENV)/bin/mypy

unit: venv
	$(PY) -m pytest tests/unit

integration: bootstrap
	$(PY) -m pytest tests/integration

test: bootstrap lint typecheck
	$(PY) -m pytest tests

demo: bootstrap
	$(PY) -m harness demo

bench: bootstrap
	$(PY) -m harness bench

preview: venv
	$(PY) -m harness preview

clean:
	-$(PY) -m harness down
	rm -rf .local .build
