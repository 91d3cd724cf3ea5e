"""Attribute extraction (``wideseek_env.taskgen.attributes``) against a hand-labelled sample.

How the labels were made: ``benchmarks/attribute_sample.py`` drew a fixed, seeded sample (seed 14,
240 cells, 24 per attribute type, round-robin) of the attribute cells that the generated OTT-QA tasks
hold (tiers 0 *enrich*, 2 *filtered* and 3 *wide*), and printed each cell's passage — the sentence of
the entity's page that its provenance records — *without* the extractor's value. An engineer read
each passage (and, for founding/opening years, populations and capacities, the whole lead text, to
check that the figure belongs to the page's own entity), wrote down the value a careful reader would
give for the attribute, or ``null`` where the text does not state it for this entity, and a note
where the value is ambiguous. The labels were written by hand, never copied from the extractor.

``tests/data/attribute_labels.jsonl`` holds per cell: ``url``, ``attribute``, ``passage`` (the
excerpt read), ``label``, optional ``note``, and ``text`` — the page's lead text, on which the test
re-runs the extractor, so it needs neither the corpus nor the task files.

Precision = correct extractions / extractions: an extraction is correct when it equals the label
under the scorer's normalisation for the attribute's type (dates parsed, years and numbers as
numbers, text ``norm_str``); an extraction where the label is ``null`` is wrong; a cell where the
extractor now finds nothing is not an extraction (recall is not what this measures).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wideseek_env.taskgen.attributes import ATTRIBUTES, extract_attributes
from wideseek_env.taskgen.columns import column_spec, preprocessed

LABELS = Path(__file__).parent / "data" / "attribute_labels.jsonl"
MIN_CELLS = 200
MIN_PRECISION = 0.98


def _cells() -> list[dict]:
    return [json.loads(line) for line in LABELS.read_text(encoding="utf-8").splitlines() if line]


def _same(attribute: str, extracted: str, label: str) -> bool:
    spec = column_spec("x", [label], ATTRIBUTES[attribute].kind)
    return preprocessed(extracted, spec) == preprocessed(label, spec)


def _judged(cells: list[dict]) -> list[tuple[dict, str, bool]]:
    """(cell, extracted value, correct) for every cell the extractor gives a value for."""
    out = []
    for cell in cells:
        value = extract_attributes(cell["text"]).get(cell["attribute"])
        if value is not None:
            label = cell["label"]
            out.append((cell, value, label is not None and _same(cell["attribute"], value, label)))
    return out


def test_the_sample_has_at_least_200_labelled_cells_over_every_attribute_type():
    cells = _cells()
    assert len(cells) >= MIN_CELLS
    assert all(c["attribute"] in ATTRIBUTES and c["passage"] and c["text"] for c in cells)
    assert len({c["attribute"] for c in cells}) >= 10


def test_extraction_precision_on_the_labelled_sample_is_at_least_98_percent():
    judged = _judged(_cells())
    assert len(judged) >= MIN_CELLS, f"only {len(judged)} labelled cells still extracted"
    wrong = [(c["url"], c["attribute"], v, c["label"]) for c, v, ok in judged if not ok]
    precision = 1 - len(wrong) / len(judged)
    assert precision >= MIN_PRECISION, f"precision {precision:.3f} < {MIN_PRECISION}; wrong: {wrong}"


@pytest.mark.parametrize(
    "attribute", ["birth_date", "death_date", "release_year", "director", "founded", "population"]
)
def test_each_attribute_type_is_still_extracted_from_most_of_its_labelled_cells(attribute):
    # A regression that silently stops extracting an attribute would leave precision intact.
    cells = [c for c in _cells() if c["attribute"] == attribute and c["label"] is not None]
    found = [c for c in cells if extract_attributes(c["text"]).get(attribute) is not None]
    assert len(found) >= 0.8 * len(cells)
