#!/usr/bin/env bash
# The main job: set up, build the default corpus (and tasks) if missing, then run the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/wideseek demo "$@"
