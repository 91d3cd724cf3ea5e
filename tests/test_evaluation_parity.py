"""compat="widesearch" equals the official WideSearch evaluation code on the shared parity data.

``shared/data/widesearch/parity/`` holds 12 kinds of perturbed answers to the 200 tasks and the
official code's item F1, row F1 and success on each, computed with a stand-in for its LLM calls
(its README). ``StandInJudge`` behaves exactly like that stand-in. Every task where the official
code did not crash must score the same.
"""

from __future__ import annotations

import json
import lzma
import re

import pytest

from wideseek_env.errors import WideseekError
from wideseek_env.evaluation import score_answer
from wideseek_env.paths import shared_data_dir
from wideseek_env.tasks import load_tasks

pytest.importorskip("pandas")
pytest.importorskip("dateparser")

KINDS = ["gold", "drop_rows", "change_cells", "shuffle", "emphasis", "numbers_in", "numbers_out",
         "extra_column", "duplicate_rows", "header_case", "half_missing_keys", "pipe_fallback"]


def _stand_in_form(value: str) -> str:
    """The stand-in's normalisation: lower-cased, every whitespace character and ``*`` removed."""
    return re.sub(r"\s", "", str(value).lower()).replace("*", "")


class StandInJudge:
    """The parity README's stand-in: a response key maps to the first reference key with the same
    form; an ``llm_judge`` cell scores 1 when the forms are equal."""

    name = "stand-in"

    def align_keys(self, response_keys, gold_keys, column):
        first: dict[str, str] = {}
        for g in gold_keys:
            first.setdefault(_stand_in_form(g), g)
        return {r: first[_stand_in_form(r)] for r in response_keys if _stand_in_form(r) in first}

    def judge_column(self, column, criterion, pairs):
        return [1.0 if _stand_in_form(r) == _stand_in_form(g) else 0.0 for r, g in pairs]


@pytest.fixture(scope="module")
def parity():
    try:
        root = shared_data_dir() / "widesearch"
    except WideseekError:
        pytest.skip("shared WideSearch data not found")
    if not (root / "parity").is_dir():
        pytest.skip("shared WideSearch parity data not found")
    return root, {t.id: t for t in load_tasks(root / "widesearch.jsonl")}


@pytest.mark.parametrize("kind", KINDS)
def test_compat_mode_equals_the_official_code(parity, kind):
    root, tasks = parity
    official = {}
    with open(root / "parity" / "official" / f"{kind}.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            official[row["instance_id"]] = row
    judge = StandInJudge()
    compared, differences = 0, []
    with lzma.open(root / "parity" / "responses" / f"{kind}.jsonl.xz", "rt", encoding="utf-8") as f:
        for line in f:
            item = json.loads(line)
            expected = official[item["instance_id"]]
            if expected["error"]:  # the official code crashed: a documented deviation
                continue
            got = score_answer(tasks[item["instance_id"]], item["response"], judge=judge, compat="widesearch")
            compared += 1
            if (got.item_f1, got.row_f1, got.success) != pytest.approx(
                (expected["item_f1"], expected["row_f1"], expected["success"]), abs=1e-9
            ):
                differences.append((item["instance_id"], got.item_f1, expected["item_f1"]))
    assert compared >= 198
    assert differences == []
