"""The result of scoring one answer: :class:`TableScore` (item/row precision, recall, F1, success and
diagnostics), and :func:`f1`.

Its own module because every scoring path returns it (:mod:`.scorer` for tables, :mod:`.qa` for
QA tasks) and :mod:`.aggregate` reads it; the scorer dispatches to the QA path, so the record
cannot live in the scorer without an import circle.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class TableScore:
    """The scores of one answer, plus diagnostics.

    ``n_answer_rows``/``n_gold_rows`` are counted after duplicate keys are dropped (the
    denominators); ``n_matched_rows`` is the number of joined (answer, gold) row pairs and
    ``n_correct_rows`` the sum of their row scores. ``column_recall`` maps each required column to
    the sum of its cell scores over gold rows. ``error`` says why a score is 0 when the answer could
    not be read (no table, missing key column, header mismatch in widesearch mode...).
    """

    item_precision: float = 0.0
    item_recall: float = 0.0
    item_f1: float = 0.0
    row_precision: float = 0.0
    row_recall: float = 0.0
    row_f1: float = 0.0
    success: float = 0.0
    n_answer_rows: int = 0
    n_gold_rows: int = 0
    n_matched_rows: int = 0
    n_correct_rows: float = 0.0
    n_ragged_rows: int = 0
    columns_ok: bool = False
    missing_columns: list[str] = field(default_factory=list)
    extra_columns: list[str] = field(default_factory=list)
    column_recall: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    compat: str = "default"

    def to_dict(self) -> dict:
        return asdict(self)


def f1(precision: float, recall: float) -> float:
    """Harmonic mean, 0 when ``precision + recall <= 1e-9`` (the official epsilon)."""
    return 2 * precision * recall / (precision + recall) if precision + recall > 1e-9 else 0.0
