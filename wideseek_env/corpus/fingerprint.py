"""``corpus_fingerprint(manifest)``: a short hash naming a built corpus's content.

It covers what decides the corpus's pages and passages (format version, source, the input files'
sizes and times, passage length, counts), not where or when it was built, so task sets and
evaluation records can say which corpus they belong to.
"""

from __future__ import annotations

import hashlib
import json


def corpus_fingerprint(manifest: dict) -> str:
    """16 hex digits of SHA-256 over the manifest's content-deciding fields."""
    basis = {k: manifest.get(k) for k in ("format_version", "source", "fingerprint", "passage_words", "counts")}
    return hashlib.sha256(json.dumps(basis, sort_keys=True).encode("utf-8")).hexdigest()[:16]
