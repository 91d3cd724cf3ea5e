"""Step 1 of the scorer: find the answer's markdown table and split it into cells; and the inverse,
rendering a table as markdown.

Two extractors, one per compatibility mode:

:func:`extract_table` (``compat="default"``) is forgiving and never raises:

- input may be ``str``, ``bytes`` (decoded as UTF-8, undecodable bytes replaced by U+FFFD) or ``None``;
- if the text has a ``</think>`` and a table follows the last one, only that part is read (drafts in
  the reasoning do not count);
- fenced blocks (```` ``` ```` or ``~~~``, any info string, unclosed fences run to the end) are tried
  first, in order; the first one holding a table wins; otherwise the whole text is scanned;
- a table is a maximal run of consecutive lines containing ``|`` (a blank line ends it); the first
  run whose second line is a separator (``|---|:--:|``) wins, else the first run whose first line
  starts with ``|``;
- cells are split on unescaped pipes (``\\|`` is a literal pipe), one leading and one trailing pipe
  are dropped, cells are stripped; the separator after the header is dropped, and later separator
  lines only when every cell has at least three dashes (so a data row of ``-`` cells survives);
- header cells that are empty drop their column; short rows are padded with ``""``, long rows are
  truncated (``ParsedTable.n_ragged`` counts both).

:func:`extract_table_widesearch` reproduces the official extractor: only ```` ```markdown ```` blocks,
else the region between the first and the last ``|`` of the text; the header line is lower-cased with
spaces removed; lines made only of ``|- :`` or without ``|`` are dropped; every ``|`` splits (escapes
are not honoured). It returns the raw fields;
:func:`wideseek_env.evaluation.official.answer_frame` turns them into a frame as pandas would.

Linear in the input size: a 10,000-row table parses in well under a second.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_FENCE_RE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_UNESCAPED_PIPE_RE = re.compile(r"(?<!\\)\|")
_SEPARATOR_CELL_RE = re.compile(r"^:?-+:?$")
_WS_BLOCK_RE = re.compile(r"```markdown(.*?)```", re.DOTALL)
_WS_PIPE_RUN_RE = re.compile(r"((?:\|.*\n?)+)")


@dataclass
class ParsedTable:
    """A table read from an answer: header cells as written and rows of cells (same length)."""

    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    n_ragged: int = 0


def to_text(response: str | bytes | bytearray | None) -> str:
    """Any answer as text: bytes are decoded as UTF-8 with replacement, ``None`` is ``""``."""
    if response is None:
        return ""
    if isinstance(response, (bytes, bytearray, memoryview)):
        return bytes(response).decode("utf-8", errors="replace")
    return str(response)


# ---------------------------------------------------------------------------------- default mode


def extract_table(response: str | bytes | None) -> ParsedTable | None:
    """The answer's table (rules in the module docstring), or ``None`` if it has none."""
    text = to_text(response).replace("\r\n", "\n").replace("\r", "\n")
    think_end = text.rfind("</think>")
    if think_end >= 0:
        table = _extract_from(text[think_end + len("</think>") :])
        if table is not None:
            return table
    return _extract_from(text)


def _extract_from(text: str) -> ParsedTable | None:
    lines = text.split("\n")
    for block in _fenced_blocks(lines):
        table = _find_table(block)
        if table is not None:
            return table
    return _find_table(lines)


def _fenced_blocks(lines: list[str]) -> list[list[str]]:
    blocks: list[list[str]] = []
    i, n = 0, len(lines)
    while i < n:
        match = _FENCE_RE.match(lines[i])
        if not match:
            i += 1
            continue
        fence = match.group(1)
        closer = re.compile(r"^\s{0,3}" + re.escape(fence[0]) + "{" + str(len(fence)) + r",}\s*$")
        j = i + 1
        while j < n and not closer.match(lines[j]):
            j += 1
        blocks.append(lines[i + 1 : j])
        i = j + 1
    return blocks


def _find_table(lines: list[str]) -> ParsedTable | None:
    fallback: list[str] | None = None
    run: list[str] = []
    for line in [*lines, ""]:  # the sentinel closes the last run
        stripped = line.strip()
        if "|" in stripped:
            run.append(stripped)
            continue
        if run:
            if len(run) >= 2 and _is_separator(split_row(run[1]), strict=False):
                return _parse_run(run)
            if fallback is None and run[0].startswith("|"):
                fallback = run
            run = []
    return _parse_run(fallback) if fallback is not None else None


def split_row(line: str) -> list[str]:
    """Cells of one table line: outer pipes dropped, split on unescaped ``|``, cells stripped."""
    s = line.strip()
    if s.startswith("|"):
        s = s[1:]
    if s.endswith("|") and not s.endswith("\\|"):
        s = s[:-1]
    if "\\|" in s:
        return [cell.replace("\\|", "|").strip() for cell in _UNESCAPED_PIPE_RE.split(s)]
    return [cell.strip() for cell in s.split("|")]


def _is_separator(cells: list[str], *, strict: bool) -> bool:
    if not cells:
        return False
    for cell in cells:
        compact = cell.replace(" ", "")
        if not _SEPARATOR_CELL_RE.match(compact):
            return False
        if strict and compact.count("-") < 3:
            return False
    return True


def _parse_run(run: list[str]) -> ParsedTable:
    header = split_row(run[0])
    keep = [i for i, name in enumerate(header) if name]
    width = len(header)
    rows: list[list[str]] = []
    ragged = 0
    for index, line in enumerate(run[1:], start=1):
        cells = split_row(line)
        if _is_separator(cells, strict=index != 1):
            continue
        if len(cells) != width:
            # A trailing run of empty cells (e.g. "| a | b | |") is not worth counting as ragged.
            while len(cells) > width and cells[-1] == "":
                cells.pop()
            if len(cells) != width:
                ragged += 1
                cells = (cells + [""] * width)[:width]
        rows.append([cells[i] for i in keep])
    return ParsedTable(header=[header[i] for i in keep], rows=rows, n_ragged=ragged)


# ------------------------------------------------------------------------------- widesearch mode


def extract_table_widesearch(response: str | bytes | None) -> list[list[str]] | None:
    """The official extractor's output: the header fields then each row's fields, all raw-split.

    ``None`` when the answer has no ```` ```markdown ```` block and fewer than 4 pipes.
    """
    text = to_text(response)
    blocks = _WS_BLOCK_RE.findall(text)
    if not blocks:
        if text.count("|") < 4:
            return None
        first, last = text.index("|"), text.rindex("|")
        start = text.rfind("\n", 0, first)
        start = 0 if start == -1 else start
        end = text.find("\n", last)
        end = len(text) if end == -1 else end
        blocks = _WS_PIPE_RUN_RE.findall(text[start:end])
        if not blocks:
            return None
    lines = blocks[0].strip().split("\n")
    lines[0] = lines[0].replace(" ", "").lower()
    fields: list[list[str]] = []
    for line in lines:
        line = line.strip()
        if "|" not in line or set(line) <= set("|- :"):
            continue
        fields.append([part.strip() for part in line.split("|")])
    return fields


# ------------------------------------------------------------------------------------ rendering


def _render_cell(value: object) -> str:
    text = "" if value is None else str(value)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("|", "\\|")
    return text.replace("\n", "<br>").strip()


def render_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-style markdown table (no fence). Newlines become ``<br>``, pipes ``\\|``."""
    lines = ["| " + " | ".join(_render_cell(h) for h in header) + " |"]
    lines.append("|" + "|".join(" --- " for _ in header) + "|")
    for row in rows:
        lines.append("| " + " | ".join(_render_cell(c) for c in row) + " |")
    return "\n".join(lines)
