#!/usr/bin/env bash
# Type-check teg_plugin with mypy and the settings in pyproject.toml (part of scripts/test.sh).
#
# setuptools installs the top-level folders strategies/ and spaces/ as teg_plugin.strategies and
# teg_plugin.spaces (package-dir in pyproject.toml), a mapping mypy cannot follow. So the installed
# layout is staged in a temporary directory, mypy checks it there, and the paths it reports are mapped
# back to the repository's (teg_plugin/strategies/x.py -> strategies/x.py). Exits with mypy's status.
# Arguments go to mypy; PYTHON names the interpreter whose mypy runs (default: .venv's, else python3).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"
[ -x "$python" ] || python=python3

stage="$(mktemp -d "${TMPDIR:-/tmp}/teg-typecheck.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
mkdir "$stage/teg_plugin"
cp -R "$root/teg_plugin/." "$stage/teg_plugin/"
cp -R "$root/strategies" "$stage/teg_plugin/strategies"
cp -R "$root/spaces" "$stage/teg_plugin/spaces"
find "$stage" -name __pycache__ -type d -prune -exec rm -rf {} +

# The cache stays in the repository (git-ignored): mypy checks file hashes, not paths, so later runs
# from another temporary directory reuse it (under a second instead of about 20 s).
status=0
output="$(cd "$stage" && "$python" -m mypy --config-file "$root/pyproject.toml" --cache-dir "$root/.mypy_cache" \
    -p teg_plugin "$@" 2>&1)" || status=$?
printf '%s\n' "$output" | sed -E -e "s#^$stage/##" -e 's#^teg_plugin/(strategies|spaces)/#\1/#'
exit "$status"
