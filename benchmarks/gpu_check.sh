#!/usr/bin/env bash
# The GPU checks, run on a lent GPU machine by the `device` tool (see benchmarks/results/gpu_check.md):
#   set up the package beside the machine's own torch/transformers, build the shared corpus and the
#   generated tasks, run the CUDA tests and the training tests on CUDA, time the smoke config and the
#   step breakdown of GRPO on the GPU. Everything it measured goes to $OUT.
# It expects, carried in the ignored folder .device/: whl/ (tantivy, pettingzoo, gymnasium,
# farama-notifications wheels for the machine's Python) and ottqa/ (a copy of shared/data/ottqa).
set -uo pipefail
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD WIDESEEK_HOME=/tmp/wshome WIDESEEK_SHARED_DATA=$PWD/.device
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .device/whl/*.whl || exit 1
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . > "$OUT/install.log" 2>&1 \
    || echo "editable install failed (see install.log): the CLI's agent commands come from the entry point" >> "$OUT/gpu_check.log"
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0)); print('transformers', transformers.__version__)"
  nproc; free -g | head -2
} > "$OUT/machine.txt" 2>&1
t0=$(date +%s)
python3 -m wideseek_env.cli corpus build --source ottqa --input .device/ottqa --out /tmp/wshome/corpus-ottqa --threads 8 \
    > "$OUT/corpus.log" 2>&1
python3 -m wideseek_env.cli tasks generate --corpus /tmp/wshome/corpus-ottqa --out /tmp/wshome/tasks-ottqa > "$OUT/tasks.log" 2>&1
echo "corpus + tasks: $(( $(date +%s) - t0 )) s" >> "$OUT/gpu_check.log"
t0=$(date +%s)
timeout 300 python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py tests/test_train_recipe.py tests/test_trainer.py \
    -k "not vllm and not ray" > "$OUT/pytest.log" 2>&1
echo "pytest (CUDA tests + training tests on CUDA): rc=$? in $(( $(date +%s) - t0 )) s" >> "$OUT/gpu_check.log"
t0=$(date +%s)
timeout 120 python3 -c "from agents.train import train; train('examples/train/smoke.yaml', ['output_dir=/tmp/smoke'])" \
    > "$OUT/smoke.log" 2>&1
echo "smoke config: rc=$? in $(( $(date +%s) - t0 )) s" >> "$OUT/gpu_check.log"
cp /tmp/smoke/metrics.jsonl "$OUT/smoke_metrics.jsonl" 2>/dev/null
timeout 150 python3 benchmarks/train_step.py --config examples/train/smoke.yaml --steps 3 --eval-limit 4 \
    --set max_tokens=128 --set tasks_per_step=8 --set group_size=8 --set micro_batch_size=16 \
    --work /tmp/train-step --out "$OUT/train_step_gpu.md" > "$OUT/train_step.log" 2>&1
echo "train_step benchmark: rc=$?" >> "$OUT/gpu_check.log"
# Ours beside TRL's GRPOTrainer on the GPU: only where trl imports (carry its wheels in .device/whl/).
if python3 -c "import trl" 2> /dev/null; then
  timeout 240 python3 benchmarks/trainers.py --device cuda --models tiny smollm2 --steps 3 --preset compact \
      --gradient-checkpointing --task-file /tmp/wshome/tasks-ottqa/train.jsonl --out "$OUT/trainers_gpu.md" \
      > "$OUT/trainers.log" 2>&1
  echo "trainers benchmark (cuda): rc=$?" >> "$OUT/gpu_check.log"
else
  echo "trainers benchmark (cuda): skipped, trl does not import here" >> "$OUT/gpu_check.log"
fi
cat "$OUT/gpu_check.log"
tail -5 "$OUT/pytest.log"
