"""Judges: deterministic and exact alignment/grading, and the LLM judge's parsing and fallbacks."""

import json
import re

import pytest

from wideseek_env.errors import WideseekError
from wideseek_env.evaluation import score_answer
from wideseek_env.evaluation.judges import DeterministicJudge, ExactJudge, Judge, get_judge, loose_tokens
from wideseek_env.evaluation.llm_judge import LLMJudge, parse_json_object
from wideseek_env.table.schema import ColumnSpec, Task

NAME = ColumnSpec("name", "norm_str", "exact_match")
LLM_COL = ColumnSpec("director", "norm_str", "llm_judge", criterion="same person")


def test_get_judge_by_name_and_protocol():
    assert isinstance(get_judge(), DeterministicJudge)
    assert isinstance(get_judge("exact"), ExactJudge)
    assert isinstance(get_judge("deterministic"), Judge)
    with pytest.raises(WideseekError, match="unknown judge"):
        get_judge("gpt")


def test_loose_tokens_fold_accents_case_punctuation_and_split_cjk():
    assert loose_tokens("Zürich, ETH!") == ("zurich", "eth")
    assert loose_tokens("1,234 AT&T") == ("1234", "at", "and", "t")
    assert loose_tokens("北京大学 PKU") == ("北", "京", "大", "学", "pku")


def test_deterministic_alignment_passes():
    judge = DeterministicJudge()
    mapping = judge.align_keys(
        [
            "**harvard university**",
            "Zurich ETH",
            "Smith John",
            "Massachusets Institute of Technology",
            "Yale",
        ],
        [
            "Harvard University",
            "ETH Zürich",
            "John Smith",
            "Massachusetts Institute of Technology",
            "Princeton",
        ],
        NAME,
    )
    assert mapping == {
        "**harvard university**": "Harvard University",  # equal after norm_str
        "Zurich ETH": "ETH Zürich",  # same tokens, another order
        "Smith John": "John Smith",
        "Massachusets Institute of Technology": "Massachusetts Institute of Technology",  # fuzzy
    }


def test_deterministic_alignment_never_fuzzes_across_different_numbers():
    mapping = DeterministicJudge().align_keys(["Shin-Hanul-3"], ["Shin-Hanul-1", "Shin-Hanul-2"], NAME)
    assert mapping == {}


def test_deterministic_alignment_is_one_to_one_beyond_exact_equality():
    mapping = DeterministicJudge().align_keys(["ETH Zurich", "ETH-Zurich"], ["ETH Zürich"], NAME)
    assert list(mapping.values()) == ["ETH Zürich"]


def test_deterministic_judge_column_equality_and_containment():
    pairs = [
        ("nolan", "christophernolan"),  # norm_str left no word boundary: not a token run
        ("Nolan", "Christopher Nolan"),
        ("Action", "Action, Sci-Fi"),
        ("$90", "$85"),
        ("-", "-"),
        ("", "x"),
        ("a", "a b"),  # shorter side must have at least 2 characters
    ]
    assert DeterministicJudge().judge_column(LLM_COL, "same person", pairs) == [
        0.0,
        1.0,
        1.0,
        0.0,
        1.0,
        0.0,
        0.0,
    ]


def test_exact_judge_is_strict():
    judge = ExactJudge()
    assert judge.judge_column(LLM_COL, None, [("Nolan", "nolan"), ("Nolan", "Christopher Nolan")]) == [
        1.0,
        0.0,
    ]
    assert judge.align_keys(["**Yale**", "Yale Univ"], ["Yale"], NAME) == {"**Yale**": "Yale"}


def test_parse_json_object_takes_last_fenced_or_bare_object():
    assert parse_json_object('x ```json\n{"a": 1}\n``` y ```json\n{"b": 2}\n```') == {"b": 2}
    assert parse_json_object('reasoning... final: {"idx_0": 1, "nested": {"k": 0}} done') == {
        "idx_0": 1,
        "nested": {"k": 0},
    }
    assert parse_json_object("no json") is None
    assert parse_json_object("```json\n{broken\n```") is None


class StubLLM:
    """Answers alignment prompts from a fixed map and grades 1 iff response == target, lower-cased."""

    def __init__(self, aliases=None):
        self.aliases = aliases or {}
        self.prompts = []

    def __call__(self, prompt: str) -> str:
        self.prompts.append(prompt)
        if prompt.startswith("You align"):
            values = json.loads(
                re.search(r"Values to align[^\n]*\n(.*)\n\nReference", prompt, re.S).group(1)
            )
            return (
                "```json\n"
                + json.dumps({v: self.aliases[v] for v in values if v in self.aliases})
                + "\n```"
            )
        items = json.loads(re.search(r"Items:\n(.*)\n\nFirst reason", prompt, re.S).group(1))
        grades = {k: int(v["response"].lower() == v["target"].lower()) for k, v in items.items()}
        return "Let me check.\n```json\n" + json.dumps(grades) + "\n```"


def film_task() -> Task:
    return Task(
        id="films",
        query="q",
        language="en",
        required_columns=["film", "director"],
        unique_columns=["film"],
        columns={"film": ColumnSpec("film"), "director": LLM_COL},
        gold=[
            {"film": "Oppenheimer", "director": "Christopher Nolan"},
            {"film": "Barbie", "director": "Greta Gerwig"},
        ],
    )


def test_llm_judge_aligns_keys_and_grades_columns():
    stub = StubLLM(aliases={"Barbie (2023 film)": "Barbie", "Nonsense": "Not a gold value"})
    judge = LLMJudge(stub)
    answer = "| film | director |\n|---|---|\n| Oppenheimer | christopher nolan |\n| Barbie (2023 film) | G. Gerwig |"
    score = score_answer(film_task(), answer, judge=judge)
    # Both rows join (one via the LLM's alias); director: row 1 right, row 2 wrong -> 3/4 items.
    assert score.item_f1 == pytest.approx(3 / 4) and score.row_f1 == pytest.approx(1 / 2)
    assert judge.failures == 0 and judge.calls == 2


def test_llm_judge_unparsable_reply_falls_back_to_deterministic_or_zero():
    answer = "| film | director |\n|---|---|\n| Oppenheimer | Nolan |\n| Barbie | Greta Gerwig |"
    with_fallback = LLMJudge(lambda prompt: "I refuse to answer in JSON.")
    score = score_answer(film_task(), answer, judge=with_fallback)
    assert score.success == 1.0  # deterministic fallback: "Nolan" is contained in the gold name
    assert with_fallback.failures == 1

    def broken(prompt: str) -> str:
        raise TimeoutError("judge down")

    no_fallback = LLMJudge(broken, use_fallback=False)
    score = score_answer(film_task(), answer, judge=no_fallback)
    # Director cells all 0 as in the official scorer: 2 key items of 4.
    assert score.item_f1 == pytest.approx(2 / 4) and score.row_f1 == 0.0


def test_llm_judge_ignores_invalid_grades_and_invented_alignments():
    judge = LLMJudge(
        lambda p: '```json\n{"idx_0": 7, "idx_1": "1", "Ghost": "Barbie"}\n```', use_fallback=False
    )
    assert judge.judge_column(LLM_COL, None, [("a", "b"), ("c", "d")]) == [0.0, 1.0]
    assert judge.align_keys(["Real"], ["Barbie"], NAME) == {}


def test_llm_judge_batches_long_columns():
    stub = StubLLM()
    judge = LLMJudge(stub, batch_size=3)
    scores = judge.judge_column(LLM_COL, None, [(str(i), str(i)) for i in range(7)])
    assert scores == [1.0] * 7 and len(stub.prompts) == 3
