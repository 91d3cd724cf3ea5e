#!/usr/bin/env bash
# Create ./.venv (if missing) and install wideseek-env with its test/benchmark extras.
# Idempotent: a second run only checks that everything is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]"
if [ -f scripts/install_llm.sh ] && [ "${WIDESEEK_SKIP_LLM:-0}" != "1" ]; then
    bash scripts/install_llm.sh
fi
