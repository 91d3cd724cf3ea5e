"""The task record: what an agent is asked, and the gold table its answer is scored against.

A :class:`Task` follows the WideSearch evaluation model (REFERENCE.md section 2): a list of required
columns, the key (``unique_columns``) used to join answer rows to gold rows, and per column one
preprocess step and one metric (:class:`ColumnSpec`). Column names are *normalised*
(:func:`normalize_column_name`: lower-case, whitespace removed), exactly as WideSearch writes its
``required`` lists; ``display_columns`` keeps the original header names for rendering.

Our own JSONL format is one ``Task.to_json()`` object per line (``"format": "wideseek-task/1"``);
``Task.from_json`` reads it back and validates it. Validation errors raise
:class:`~wideseek_env.errors.TaskFormatError`; the loaders add file and line to the message.

Generated tasks (:mod:`wideseek_env.taskgen`) also carry ``tier`` (0-4: lookups, described sets,
filters through linked pages, wide unions, joins and aggregation) beside ``kind``; other sources
leave it absent (``None``).

QA tasks (``kind == "qa"``) use the same record: one required column ``answer`` and one gold row per
accepted answer string.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wideseek_env.errors import TaskFormatError
from wideseek_env.table.markdown import render_table

FORMAT_TAG = "wideseek-task/1"

PREPROCESSES = ("norm_str", "extract_number", "norm_date")
METRICS = ("exact_match", "number_near", "date_near", "url_match", "llm_judge")

# WideSearch's stock criterion for llm_judge columns; used where a source gives none.
DEFAULT_CRITERION = (
    "It is sufficient if the semantics are approximately the same as the reference answer or if "
    "they point to the same entity. There is no need for a word-for-word correspondence."
)
DEFAULT_DATE_TOLERANCE_DAYS = 31.0
DEFAULT_NUMBER_TOLERANCE = 0.05


def normalize_column_name(name: str) -> str:
    """WideSearch's column-name normalisation: lower-case, all whitespace removed.

    No Unicode folding: WideSearch's own ``required`` names keep full-width brackets and ``²``, and
    they must compare equal to the normalised CSV headers.
    """
    return "".join(str(name).split()).lower()


@dataclass
class ColumnSpec:
    """How one required column is compared (WideSearch ``eval_pipeline`` entry).

    - ``preprocess``: ``"norm_str"``, ``"extract_number"``, ``"norm_date"`` or ``None`` (raw text).
    - ``metric``: ``"exact_match"``, ``"number_near"`` (relative ``tolerance``, e.g. 0.05),
      ``"date_near"`` (``tolerance`` in days, default 31), ``"url_match"`` (host sets) or
      ``"llm_judge"`` (``criterion``: the grading text given to the judge).
    """

    name: str
    preprocess: str | None = "norm_str"
    metric: str = "exact_match"
    tolerance: float | None = None
    criterion: str | None = None

    def __post_init__(self) -> None:
        if self.preprocess not in PREPROCESSES and self.preprocess is not None:
            raise TaskFormatError(
                f"column {self.name!r}: unknown preprocess {self.preprocess!r} "
                f"(expected one of {', '.join(PREPROCESSES)} or null)"
            )
        if self.metric not in METRICS:
            raise TaskFormatError(
                f"column {self.name!r}: unknown metric {self.metric!r} "
                f"(expected one of {', '.join(METRICS)})"
            )
        if self.tolerance is not None:
            try:
                self.tolerance = float(self.tolerance)
            except (TypeError, ValueError):
                raise TaskFormatError(
                    f"column {self.name!r}: tolerance must be a number, got {self.tolerance!r}"
                ) from None

    @property
    def effective_tolerance(self) -> float:
        """``tolerance``, or the metric's default (0.05 relative for numbers, 31 days for dates)."""
        if self.tolerance is not None:
            return self.tolerance
        if self.metric == "date_near":
            return DEFAULT_DATE_TOLERANCE_DAYS
        return DEFAULT_NUMBER_TOLERANCE

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"preprocess": self.preprocess, "metric": self.metric}
        if self.tolerance is not None:
            out["tolerance"] = self.tolerance
        if self.criterion is not None:
            out["criterion"] = self.criterion
        return out

    @classmethod
    def from_json(cls, name: str, data: Any) -> ColumnSpec:
        if not isinstance(data, dict):
            raise TaskFormatError(f"column {name!r}: spec must be an object, got {type(data).__name__}")
        unknown = set(data) - {"preprocess", "metric", "tolerance", "criterion"}
        if unknown:
            raise TaskFormatError(f"column {name!r}: unknown spec fields {sorted(unknown)}")
        return cls(
            name=name,
            preprocess=data.get("preprocess", "norm_str"),
            metric=data.get("metric", "exact_match"),
            tolerance=data.get("tolerance"),
            criterion=data.get("criterion"),
        )

    def to_widesearch(self) -> dict[str, Any]:
        """This spec as a WideSearch ``eval_pipeline`` entry."""
        out: dict[str, Any] = {
            "preprocess": [self.preprocess] if self.preprocess else [],
            "metric": [self.metric],
        }
        if self.metric == "number_near":
            out["criterion"] = self.effective_tolerance
        elif self.metric == "llm_judge":
            out["criterion"] = self.criterion or DEFAULT_CRITERION
        return out


@dataclass
class Task:
    """One broad table task (or a QA task, ``kind == "qa"``).

    Invariants (checked on construction): ``required_columns`` are normalised and distinct;
    ``unique_columns`` is a non-empty subset of them; ``columns`` has exactly one spec per required
    column; ``display_columns`` has one name per required column (defaults to the normalised names);
    every gold row maps each required column to a string (missing cells become ``""``).
    """

    id: str
    query: str
    language: str
    required_columns: list[str]
    unique_columns: list[str]
    columns: dict[str, ColumnSpec]
    gold: list[dict[str, str]]
    display_columns: list[str] = field(default_factory=list)
    kind: str = "table"
    provenance: dict[str, Any] = field(default_factory=dict)
    tier: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise TaskFormatError("task id must be a non-empty string")
        where = f"task {self.id!r}"
        if self.tier is not None and (isinstance(self.tier, bool) or self.tier not in range(5)):
            raise TaskFormatError(f"{where}: tier must be an integer 0-4 or absent, got {self.tier!r}")
        if not isinstance(self.query, str):
            raise TaskFormatError(f"{where}: query must be a string")
        if not isinstance(self.language, str) or not self.language:
            raise TaskFormatError(f"{where}: language must be a non-empty string")
        if not self.required_columns:
            raise TaskFormatError(f"{where}: required_columns is empty")
        for col in self.required_columns:
            if not isinstance(col, str) or normalize_column_name(col) != col or not col:
                raise TaskFormatError(
                    f"{where}: required column {col!r} is not normalised "
                    f"(expected {normalize_column_name(str(col))!r})"
                )
        if len(set(self.required_columns)) != len(self.required_columns):
            raise TaskFormatError(f"{where}: required_columns has duplicates")
        if not self.unique_columns:
            raise TaskFormatError(f"{where}: unique_columns is empty")
        missing = [c for c in self.unique_columns if c not in self.required_columns]
        if missing:
            raise TaskFormatError(f"{where}: unique columns {missing} are not required columns")
        if set(self.columns) != set(self.required_columns):
            raise TaskFormatError(
                f"{where}: columns specs {sorted(self.columns)} do not match required columns "
                f"{self.required_columns}"
            )
        for name, spec in self.columns.items():
            if not isinstance(spec, ColumnSpec) or spec.name != name:
                raise TaskFormatError(f"{where}: spec for column {name!r} is not a ColumnSpec named so")
        if not self.display_columns:
            self.display_columns = list(self.required_columns)
        if len(self.display_columns) != len(self.required_columns):
            raise TaskFormatError(
                f"{where}: {len(self.display_columns)} display columns for "
                f"{len(self.required_columns)} required columns"
            )
        rows = []
        for i, row in enumerate(self.gold):
            if not isinstance(row, dict):
                raise TaskFormatError(f"{where}: gold row {i} is not an object")
            extra = set(row) - set(self.required_columns)
            if extra:
                raise TaskFormatError(f"{where}: gold row {i} has unknown columns {sorted(extra)}")
            rows.append(
                {c: "" if row.get(c) is None else str(row.get(c)) for c in self.required_columns}
            )
        self.gold = rows

    # ------------------------------------------------------------------ rendering

    def gold_rows(self) -> list[list[str]]:
        """The gold table as rows of cells in ``required_columns`` order."""
        return [[row[c] for c in self.required_columns] for row in self.gold]

    def gold_markdown(self) -> str:
        """The gold table as a fenced markdown block, with display column names.

        Cell newlines are written as ``<br>`` and pipes as ``\\|``; the evaluator's extractor reads
        both back, so the gold table used as an answer scores 1.0.
        """
        return "```markdown\n" + render_table(self.display_columns, self.gold_rows()) + "\n```"

    # ------------------------------------------------------------------ serialisation

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable object: one line of our task JSONL (see :meth:`from_json`)."""
        return {
            "format": FORMAT_TAG,
            "id": self.id,
            "kind": self.kind,
            **({"tier": self.tier} if self.tier is not None else {}),
            "language": self.language,
            "query": self.query,
            "required_columns": list(self.required_columns),
            "display_columns": list(self.display_columns),
            "unique_columns": list(self.unique_columns),
            "columns": {c: self.columns[c].to_json() for c in self.required_columns},
            "gold": [dict(row) for row in self.gold],
            "provenance": self.provenance,
        }

    @classmethod
    def from_json(cls, data: Any) -> Task:
        """Build a task from a :meth:`to_json` object; raises TaskFormatError when malformed."""
        if not isinstance(data, dict):
            raise TaskFormatError(f"a task must be a JSON object, got {type(data).__name__}")
        fmt = data.get("format", FORMAT_TAG)
        if fmt != FORMAT_TAG:
            raise TaskFormatError(f"unsupported task format {fmt!r} (this version reads {FORMAT_TAG!r})")
        needed = ("id", "query", "language", "required_columns", "unique_columns", "columns", "gold")
        missing = [k for k in needed if k not in data]
        if missing:
            raise TaskFormatError(f"task object lacks fields {missing}")
        for key in ("required_columns", "unique_columns", "gold"):
            if not isinstance(data[key], list):
                raise TaskFormatError(f"task field {key!r} must be a list")
        if not isinstance(data["columns"], dict):
            raise TaskFormatError("task field 'columns' must be an object")
        provenance = data.get("provenance") or {}
        if not isinstance(provenance, dict):
            raise TaskFormatError("task field 'provenance' must be an object")
        return cls(
            id=data["id"],
            query=data["query"],
            language=data["language"],
            required_columns=list(data["required_columns"]),
            unique_columns=list(data["unique_columns"]),
            columns={name: ColumnSpec.from_json(name, spec) for name, spec in data["columns"].items()},
            gold=list(data["gold"]),
            display_columns=list(data.get("display_columns") or []),
            kind=data.get("kind", "table"),
            provenance=provenance,
            tier=data.get("tier"),
        )

    def to_widesearch_evaluation(self) -> dict[str, Any]:
        """The WideSearch ``evaluation`` object (``unique_columns``, ``required``, ``eval_pipeline``)."""
        return {
            "unique_columns": list(self.unique_columns),
            "required": list(self.required_columns),
            "eval_pipeline": {c: self.columns[c].to_widesearch() for c in self.required_columns},
        }


def default_columns(
    required: list[str], unique: list[str], criterion: str = DEFAULT_CRITERION
) -> dict[str, ColumnSpec]:
    """Specs for sources that give none: keys ``norm_str`` + ``exact_match``, others ``llm_judge``."""
    return {
        c: ColumnSpec(c, "norm_str", "exact_match")
        if c in unique
        else ColumnSpec(c, "norm_str", "llm_judge", criterion=criterion)
        for c in required
    }
