#!/usr/bin/env bash
# Install teg-plugin with its test extras into ./.venv and run the test suite (the README's test command).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet -e ".[test,nni]"
.venv/bin/python -m pytest -q "$@"
