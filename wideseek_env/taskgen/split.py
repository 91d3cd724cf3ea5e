"""The tier mix and the train/test split.

**Mix** (:func:`apply_mix`): the mix is a target, never a cap on tiers 1-4: every task of those tiers
that passed the filters is kept. Tier 0 (lookups) is capped at ``tier0_share`` of the whole set (its
three kinds in equal shares where they can be, sampled by seed). The target share of every tier is
compared with what was made and each shortfall reported.

**Split** (:func:`split`): tasks are joined into components when they draw on a common source-table
*page* (``provenance["tables"]``'s pages; entity pages may be shared) or on the same union group
(template and section), and components go whole to train or test: no source page and no group
appears in both splits. Test components are picked greedily in a seeded order, tier by tier (the rarest
first), each tier towards ``test_fraction`` of its own tasks, so that every tier has test tasks.
:func:`overlap` counts what the two splits share (0 by construction; the stats report it).
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict

from wideseek_env.table.schema import Task

DEFAULT_MIX = {0: 0.2, 1: 0.25, 2: 0.2, 3: 0.05, 4: 0.3}
TIER0_SHARE = 0.2
T0_KINDS = ("transcribe", "enrich", "union")


def apply_mix(tasks: list[Task], mix: dict[int, float], seed: int) -> tuple[list[Task], dict]:
    """Keep every tier-1..4 task; sample tier 0 down to its share (see the module docstring)."""
    upper = [t for t in tasks if t.tier != 0]
    lower = sorted((t for t in tasks if t.tier == 0), key=lambda t: t.id)
    share = min(mix.get(0, 0.0), TIER0_SHARE) if upper else mix.get(0, 1.0)
    cap = len(lower) if not upper else int(share / (1 - share) * len(upper)) if share < 1 else len(lower)
    by_kind: dict[str, list[Task]] = defaultdict(list)
    for t in lower:
        by_kind[t.kind].append(t)
    kept: list[Task] = []
    remaining = cap
    kinds = sorted(by_kind, key=lambda k: len(by_kind[k]))
    for n, kind in enumerate(kinds):  # smallest kind first: its leftover quota goes to the others
        quota = min(len(by_kind[kind]), remaining // (len(kinds) - n))
        kept.extend(random.Random(f"{seed}|mix|{kind}").sample(by_kind[kind], quota))
        remaining -= quota
    dropped = len(lower) - len(kept)
    out = sorted(upper + kept, key=lambda t: t.id)
    total = len(out)
    report = {}
    for tier, weight in sorted(mix.items()):
        made = sum(1 for t in out if t.tier == tier)
        target = round(weight * total)
        report[str(tier)] = {"target_share": weight, "target": target, "made": made,
                             "shortfall": max(0, target - made)}
    return out, {"tier0_dropped": dropped, "passing_up_to_target": total, "by_tier": report}


def _source_pages(task: Task, table_pages: dict[str, str]) -> list[str]:
    return [table_pages.get(uid, uid) for uid in task.provenance.get("tables", [])]


def split(tasks: list[Task], table_pages: dict[str, str], test_fraction: float, seed: int):
    """(train, test, info): components by shared source page or group go whole to one split."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def join(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    nodes = []
    for task in tasks:
        ids = ["page:" + p for p in _source_pages(task, table_pages)]
        if task.provenance.get("group"):
            ids.append("group:" + task.provenance["group"])
        for other in ids[1:]:
            join(ids[0], other)
        nodes.append(ids[0])
    components: dict[str, list[Task]] = defaultdict(list)
    for task, node in zip(tasks, nodes):
        components[find(node)].append(task)
    order = sorted(components)
    random.Random(f"{seed}|split").shuffle(order)
    # Filled tier by tier, the rarest first, each towards test_fraction of its own tasks: a tier made of
    # a few large components (the wide unions) would otherwise land wholly in one split by chance.
    per_tier = Counter(t.tier for t in tasks)
    in_test: Counter = Counter()
    test_roots: set[str] = set()
    for tier in sorted(per_tier, key=lambda k: (per_tier[k], k)):
        target = test_fraction * per_tier[tier]
        for root in order:
            size = sum(1 for t in components[root] if t.tier == tier)
            if root in test_roots or not size:
                continue
            n_test = in_test[tier]
            if n_test + size <= target + 0.5 or (n_test < target and n_test + size - target < target - n_test):
                test_roots.add(root)
                in_test.update(t.tier for t in components[root])
    train = sorted((t for r in components if r not in test_roots for t in components[r]), key=lambda t: t.id)
    test = sorted((t for r in components if r in test_roots for t in components[r]), key=lambda t: t.id)
    info = {"components": len(components), "test_components": len(test_roots),
            "overlap": overlap(train, test, table_pages)}
    return train, test, info


def overlap(train: list[Task], test: list[Task], table_pages: dict[str, str]) -> dict:
    """What train and test share: source pages, source tables, union groups, identical gold tables."""
    def pages(ts):
        return {p for t in ts for p in _source_pages(t, table_pages)}

    def tables(ts):
        return {u for t in ts for u in t.provenance.get("tables", [])}

    def groups(ts):
        return {t.provenance["group"] for t in ts if t.provenance.get("group")}

    def golds(ts):
        return {repr(t.gold_rows()) for t in ts}

    return {"pages": len(pages(train) & pages(test)), "tables": len(tables(train) & tables(test)),
            "groups": len(groups(train) & groups(test)), "identical_gold": len(golds(train) & golds(test))}
