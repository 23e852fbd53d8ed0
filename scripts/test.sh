#!/usr/bin/env bash
# Install teg-plugin with its test extras into ./.venv, type-check it (mypy, scripts/typecheck.sh) and
# run the test suite (the README's test command). Fails if either fails.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet -e ".[test,nni]"
bash scripts/typecheck.sh
.venv/bin/python -m pytest -q "$@"
