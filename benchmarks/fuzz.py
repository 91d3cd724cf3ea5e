"""Fuzz tests in their full form: the suite's Hypothesis tests with ``--scale`` times the examples.

Runs the fuzz test files (every loader, the markdown table extractor, the tool-call parser, the
scorer, configs, and whole env episodes driven by random agent text; see each file's docstring) in
one pytest subprocess with ``WIDESEEK_FUZZ_SCALE=<scale>`` (``tests/fuzz_settings.py``: each test's
``max_examples`` times the scale; the suite runs scale 1), a fixed ``--hypothesis-seed`` (so that a
run is reproducible), an empty Hypothesis example database (a fresh ``HYPOTHESIS_STORAGE_DIRECTORY``:
no replay of examples saved by earlier runs), ``-p no:cacheprovider`` and
``--hypothesis-show-statistics``. Per-example deadlines are the tests' own and are not scaled; the
whole run is bounded by ``--timeout`` (a hang kills it and is reported as one).

Reported per test: examples run (passing + failing test cases over Hypothesis's phases; invalid
ones, rejected by ``assume`` or filters, are counted apart), the outcome (pytest's, from a JUnit XML
report), seconds (setup + call + teardown) and Hypothesis's typical runtime per example. With
``--out`` it writes a markdown report (machine and command included).

    python benchmarks/fuzz.py [--scale 10] [--seed 0] [--timeout 1800]
                              [--out benchmarks/results/fuzz.md] [FILE ...]

The exit status is 1 if a test failed or the run timed out.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import describe_machine, package_versions  # noqa: E402

FUZZ_FILES = [
    "tests/test_fuzz_loaders.py",
    "tests/test_env_fuzz.py",
    "tests/test_evaluation_fuzz.py",
    "tests/test_parsing.py",
]

_HEADER = re.compile(r"^(tests/\S+::\S+):$")
_PHASE = re.compile(r"^\s+- during (\w+) phase \(([\d.]+) seconds\):$")
_COUNTS = re.compile(r"^\s+- (\d+) passing, (\d+) failing, and (\d+) invalid test cases?$")
_TYPICAL = re.compile(r"^\s+- Typical runtimes: (.*?), of which")
_STOPPED = re.compile(r"^\s+- Stopped because (.*)$")


def parse_statistics(output: str) -> dict[str, dict]:
    """Per test node id: examples (passing + failing), passing, failing, invalid, phases, typical, stopped.

    Reads the block pytest prints under "Hypothesis Statistics" (``--hypothesis-show-statistics``).
    """
    stats: dict[str, dict] = {}
    current = None
    phase = None
    in_block = False
    for line in output.splitlines():
        if "Hypothesis Statistics" in line:
            in_block = True
            continue
        if not in_block:
            continue
        if line.startswith("=") and current is not None and "Hypothesis" not in line:
            break  # the next pytest section (short test summary, final line)
        if m := _HEADER.match(line):
            current = stats.setdefault(m.group(1), {"passing": 0, "failing": 0, "invalid": 0, "phases": {},
                                                    "typical": None, "stopped": None})
            continue
        if current is None:
            continue
        if m := _PHASE.match(line):
            phase = m.group(1)
            current["phases"][phase] = float(m.group(2))
        elif m := _COUNTS.match(line):
            current["passing"] += int(m.group(1))
            current["failing"] += int(m.group(2))
            current["invalid"] += int(m.group(3))
        elif (m := _TYPICAL.match(line)) and phase == "generate":
            current["typical"] = m.group(1)
        elif m := _STOPPED.match(line):
            current["stopped"] = m.group(1)
    for s in stats.values():
        s["examples"] = s["passing"] + s["failing"]
    return stats


def parse_junit(path: Path) -> dict[str, dict]:
    """Per test node id: outcome (passed, failed, error, skipped), seconds and the failure message."""
    out: dict[str, dict] = {}
    if not path.exists():
        return out
    for case in ET.parse(path).getroot().iter("testcase"):
        classname, name = case.get("classname", ""), case.get("name", "")
        # classname "tests.test_parsing" (or "tests.test_x.TestClass") -> "tests/test_parsing.py[::TestClass]"
        parts = classname.split(".")
        module = next((i for i in range(len(parts), 0, -1) if (ROOT / Path(*parts[:i])).with_suffix(".py").exists()),
                      len(parts))
        node = "/".join(parts[:module]) + ".py" + "".join("::" + p for p in parts[module:]) + "::" + name
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            child = case.find(tag)
            if child is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                message = (child.get("message") or child.text or "").strip()
                break
        out[node] = {"outcome": outcome, "seconds": float(case.get("time", 0.0)), "message": message}
    return out


def run(files: list[str], scale: int, seed: int, timeout: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="wideseek-fuzz-bench-") as tmp:
        junit = Path(tmp) / "junit.xml"
        cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--hypothesis-show-statistics",
               f"--hypothesis-seed={seed}", f"--junitxml={junit}", "-o", "junit_family=xunit1", "-q", *files]
        env = dict(os.environ, WIDESEEK_FUZZ_SCALE=str(scale),
                   HYPOTHESIS_STORAGE_DIRECTORY=str(Path(tmp) / "hypothesis"))
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
        timed_out = False
        try:
            output, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
        elapsed = time.perf_counter() - started
        cases = parse_junit(junit)
    stats = parse_statistics(output)
    summary = next((line.strip("= ") for line in reversed(output.splitlines())
                    if re.search(r"\d+ (passed|failed|errors?|skipped)\b.* in [\d.]+s", line)), "")
    return {"cmd": cmd, "returncode": proc.returncode, "timed_out": timed_out, "seconds": elapsed,
            "output": output, "stats": stats, "cases": cases, "summary": summary}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", default=FUZZ_FILES, help="test files (default: the fuzz test files)")
    parser.add_argument("--scale", type=int, default=10, help="examples per test = the suite's count times this")
    parser.add_argument("--seed", type=int, default=0, help="--hypothesis-seed for the run")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds before the run counts as a hang")
    parser.add_argument("--out", type=Path, default=None, help="write a markdown report here")
    args = parser.parse_args(argv)
    if args.scale < 1:
        parser.error("--scale must be at least 1")

    r = run(args.files, args.scale, args.seed, args.timeout)
    rows = []
    for node, s in r["stats"].items():
        case = r["cases"].get(node, {})
        rows.append({"test": node, "examples": s["examples"], "invalid": s["invalid"],
                     "outcome": case.get("outcome", "timed out" if r["timed_out"] else "?"),
                     "seconds": case.get("seconds"), "typical": s["typical"], "stopped": s["stopped"],
                     "message": case.get("message", "")})
    fuzz_nodes = set(r["stats"])
    others = [c for node, c in r["cases"].items() if node not in fuzz_nodes]
    failed = [row for row in rows if row["outcome"] not in ("passed", "skipped")]
    failed += [{"test": node, "outcome": c["outcome"], "message": c["message"]}
               for node, c in r["cases"].items() if node not in fuzz_nodes and c["outcome"] in ("failed", "error")]
    result = {
        "scale": args.scale,
        "seed": args.seed,
        "files": args.files,
        "tests": rows,
        "fuzz_tests": len(rows),
        "examples": sum(row["examples"] for row in rows),
        "invalid": sum(row["invalid"] for row in rows),
        "other_tests": len(others),
        "other_passed": sum(c["outcome"] == "passed" for c in others),
        "failures": len(failed),
        "failed": failed,
        "timed_out": r["timed_out"],
        "returncode": r["returncode"],
        "seconds": r["seconds"],
        "pytest_summary": r["summary"],
        "pytest_command": f"WIDESEEK_FUZZ_SCALE={args.scale} pytest "
                          + " ".join(re.sub(r"=.*junit\.xml$", "=TMP/junit.xml", a) for a in r["cmd"][3:]),
        "machine": describe_machine(ram=True),
        "packages": package_versions(["hypothesis", "pytest"]),
        "command": "python benchmarks/fuzz.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    printable = {k: v for k, v in result.items() if k != "tests"}
    print(json.dumps(printable, indent=2))
    if failed or r["timed_out"] or not rows:
        print(r["output"][-20000:], file=sys.stderr)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report(result))
    return result


def report(r: dict) -> str:
    lines = [
        "# Fuzz tests, full form",
        "",
        f"Machine: {r['machine']}; {r['packages']}.",
        "",
        f"The suite's Hypothesis tests ({', '.join(f'`{f}`' for f in r['files'])}) with {r['scale']}x the "
        f"examples the test suite runs (`WIDESEEK_FUZZ_SCALE={r['scale']}`, see `tests/fuzz_settings.py`), "
        f"Hypothesis seed {r['seed']} and an empty example database, in one pytest process. Per-example "
        "deadlines are the tests' own (not scaled).",
        "",
        f"Command: `{r['command']}`",
        "",
        f"It runs: `{r['pytest_command']}` (`TMP` a temporary directory, also "
        "`HYPOTHESIS_STORAGE_DIRECTORY=TMP/hypothesis`).",
        "",
        "| fuzz tests | examples run | invalid (rejected) | failures | timed out | minutes |",
        "|---:|---:|---:|---:|---|---:|",
        f"| {r['fuzz_tests']} | {r['examples']:,} | {r['invalid']:,} | {r['failures']} | "
        f"{'yes' if r['timed_out'] else 'no'} | {r['seconds'] / 60:.1f} |",
        "",
        f"The same files' {r['other_tests']} other tests (examples written out, not generated): "
        f"{r['other_passed']} passed. pytest: {r['pytest_summary']}.",
        "",
        "What a failure would mean: a loader, the extractor, the parser, the scorer, a config reader or the "
        "env raised something other than its documented error (`CorpusFormatError`, `TaskFormatError`, "
        "`ConfigError`, `TrainConfigError`), returned a malformed result (a record with a non-string or "
        "non-UTF-8 field, a table with ragged rows, a score out of range, an observation outside its "
        "space), an episode ran past its step bound, or an example ran past its deadline (a near-hang); a "
        "run past the timeout is a hang. Each failure is Hypothesis's shrunk falsifying example, "
        "reproducible with the same seed.",
        "",
        "| test | examples run | invalid | outcome | seconds | typical per example | stopped because |",
        "|---|---:|---:|---|---:|---|---|",
    ]
    for row in r["tests"]:
        seconds = "" if row["seconds"] is None else f"{row['seconds']:.1f}"
        lines.append(f"| `{row['test']}` | {row['examples']:,} | {row['invalid']:,} | {row['outcome']} | "
                     f"{seconds} | {row['typical'] or ''} | {row['stopped'] or ''} |")
    if r["failed"]:
        lines += ["", "## Failures", ""]
        for f in r["failed"]:
            message = " ".join((f.get("message") or "").split())[:500]
            lines.append(f"- `{f['test']}` ({f['outcome']}): {message}")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    res = main()
    sys.exit(1 if res["failures"] or res["timed_out"] or res["returncode"] not in (0,) else 0)
