#!/usr/bin/env bash
# Install teg-plugin with its test extras into ./.venv, lint it (ruff check, ruff format --check),
# type-check it (mypy, scripts/typecheck.sh) and run the test suite (the README's test command).
# Fails if any of them fails.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet -e ".[test,nni]"
.venv/bin/ruff check --quiet .
.venv/bin/ruff format --check --quiet .
bash scripts/typecheck.sh
.venv/bin/python -m pytest -q "$@"
