"""Access suggestions on a misspelt URL: does the page the agent meant come first?

``EnvConfig.access_suggestions=N`` makes the ``access`` tool answer a URL that is not in the corpus
with up to N pages whose titles best match the missing title: a search of the index for the title's
words, and the retriever's similar-title lookup (title words within one typo each, Tantivy fuzzy
terms), give a pool, ranked by title string similarity (``difflib``). This script measures that
against two peers on the same typos: the search engine's own order of its hits (a plain search for
the title), and the search hits alone ranked by title similarity (the tool without the similar-title
lookup):

- titles: ``--pages`` pages drawn with ``--seed`` from the whole corpus (not from any task), of at
  least 8 characters;
- typos: for each title one of each kind, at a random position after the first character: a letter
  deleted, two neighbouring letters swapped, a letter replaced by another lowercase letter; a typo
  that happens to name another page of the corpus is skipped (the tool then reads that page);
- measured: the share of typos whose intended page is the first suggestion (hit@1) and among the N
  suggestions (hit@N), for the tool as shipped (``AccessTool.call_many``, the real message parsed)
  and for the two peers; the last line prints the ratio of the tool's hit@1 to the search order's.

Usage:
    python benchmarks/access_suggestions.py [--corpus DIR] [--pages 200] [--suggestions 3] [--seed 0]
        [--out benchmarks/results/access_suggestions.md]
"""

from __future__ import annotations

import argparse
import random
import string
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import describe_machine, pct  # noqa: E402
from wideseek_env.corpus.local import LocalRetriever  # noqa: E402
from wideseek_env.corpus.urls import canonical_url, url_to_title  # noqa: E402
from wideseek_env.paths import default_corpus_dir  # noqa: E402
from wideseek_env.tools.access import AccessTool, rank_by_title  # noqa: E402

KINDS = ("deletion", "swap", "substitution")


def misspell(title: str, kind: str, rng: random.Random) -> str:
    """``title`` with one typo of ``kind`` at a random position after its first character."""
    i = rng.randrange(1, len(title) - 1)
    if kind == "deletion":
        return title[:i] + title[i + 1:]
    if kind == "swap":
        return title[:i] + title[i + 1] + title[i] + title[i + 2:]
    letter = rng.choice([c for c in string.ascii_lowercase if c != title[i].lower()])
    return title[:i] + letter + title[i + 1:]


def suggested_urls(message: str) -> list[str]:
    """The URLs the access tool's message lists after "Pages with similar titles:" (none: [])."""
    if "Pages with similar titles:" not in message:
        return []
    tail = message.split("Pages with similar titles:", 1)[1]
    return [line[2:].strip() for line in tail.splitlines() if line.startswith("- ")]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", default=None, help="a built corpus (default: the embedded OTT-QA corpus)")
    p.add_argument("--pages", type=int, default=200)
    p.add_argument("--suggestions", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="benchmarks/results/access_suggestions.md")
    args = p.parse_args()
    if args.pages < 1 or args.suggestions < 1:
        p.error("--pages and --suggestions must be at least 1")

    corpus = Path(args.corpus) if args.corpus else default_corpus_dir()
    retriever = LocalRetriever(corpus)
    urls = [page.url for page in retriever.store.iter_pages() if len(url_to_title(page.url)) >= 8]
    known = {canonical_url(u) for u in urls}
    rng = random.Random(args.seed)
    sample = rng.sample(urls, min(args.pages, len(urls)))
    tool = AccessTool(retriever, suggestions=args.suggestions)

    cases = []  # (kind, intended url, misspelt url)
    for url in sample:
        title = url_to_title(url)
        for kind in KINDS:
            typo = misspell(title, kind, rng)
            typo_url = canonical_url("https://en.wikipedia.org/wiki/" + typo.replace(" ", "_"))
            if typo_url not in known:
                cases.append((kind, canonical_url(url), typo_url))

    t0 = time.perf_counter()
    messages = tool.call_many([{"urls": [{"url": typo_url}]} for _, _, typo_url in cases])
    tool_s = time.perf_counter() - t0
    # The peers: the tool's search (same queries, same k) in the engine's order, and ranked by title.
    pools = retriever.search_many([url_to_title(t) for _, _, t in cases], k=10 * args.suggestions)
    pools = [list(dict.fromkeys(h.url for h in hits if h.url)) for hits in pools]
    search_order = [pool[: args.suggestions] for pool in pools]
    by_title = [rank_by_title(url_to_title(typo), pool)[: args.suggestions] for pool, (_, _, typo) in zip(pools, cases)]

    rows = []
    totals = {"tool": [0, 0], "by_title": [0, 0], "search": [0, 0]}
    for kind in KINDS + ("all",):
        idx = [i for i, c in enumerate(cases) if kind in ("all", c[0])]
        row = [kind, len(idx)]
        systems = (("tool", [suggested_urls(m) for m in messages]), ("by_title", by_title), ("search", search_order))
        for name, lists in systems:
            top1 = sum(1 for i in idx if lists[i][:1] == [cases[i][1]])
            topn = sum(1 for i in idx if cases[i][1] in lists[i])
            row += [pct(top1 / max(1, len(idx))), pct(topn / max(1, len(idx)))]
            if kind == "all":
                totals[name] = [top1, topn]
        rows.append(row)
    retriever.close()

    n = args.suggestions
    ratio = totals["tool"][0] / max(1, totals["search"][0])
    lines = [
        "# Access suggestions on misspelt URLs: title-similarity ranking vs search order",
        "",
        f"Command: `python benchmarks/access_suggestions.py --pages {args.pages} --suggestions {n} "
        f"--seed {args.seed}`",
        "",
        f"Machine: {describe_machine()}. Corpus: {corpus.name} ({len(urls)} pages with titles of 8+ characters).",
        "",
        f"{len(sample)} pages drawn from the corpus (no task involved), one typo of each kind per title; "
        f"{len(cases)} typos that name no other page. The tool's {len(cases)} calls took {tool_s:.2f} s "
        "(one batched `call_many`).",
        "",
        "Systems: **tool**, the `access` tool as shipped (similar titles + search hits, ranked by title "
        "similarity); **search by title**, the search hits alone ranked by title similarity; **search "
        "order**, the search hits in the engine's order.",
        "",
        f"| typo | cases | tool hit@1 | tool hit@{n} | search by title hit@1 | search by title hit@{n} "
        f"| search order hit@1 | search order hit@{n} |",
        "|---|---|---|---|---|---|---|---|",
        *("| " + " | ".join(str(c) for c in row) + " |" for row in rows),
        "",
        f"hit@1, tool / search order: {ratio:.2f}x ({totals['tool'][0]} vs {totals['search'][0]} of {len(cases)}).",
        f"hit@1, tool / search by title: {totals['tool'][0] / max(1, totals['by_title'][0]):.2f}x "
        f"({totals['tool'][0]} vs {totals['by_title'][0]}).",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
