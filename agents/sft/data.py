"""The SFT data: demonstration records (``wideseek demos``), the held-out split, and the batch of a step.

A record is one agent's whole conversation: ``input_ids`` and a ``loss_mask`` that is 1 exactly on the
tokens the agent generated. Training on it is teacher forcing of the multi-turn conversation in one
sequence: the context of each generated token is exactly the context the policy had when it sampled it.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any, Sequence

from agents.demos import read_demos

__all__ = ["Example", "load_examples", "split_heldout", "step_examples", "collate"]


@dataclass(frozen=True)
class Example:
    input_ids: tuple[int, ...]
    loss_mask: tuple[int, ...]
    episode_id: str

    @property
    def trained_tokens(self) -> int:
        return sum(self.loss_mask)


def load_examples(sources: Sequence[str], max_length: int) -> tuple[list[Example], int]:
    """(examples no longer than ``max_length`` with at least one trained token, number skipped)."""
    out, skipped = [], 0
    for src in sources:
        for r in read_demos(src):
            if len(r["input_ids"]) != len(r["loss_mask"]):
                raise ValueError(f"{src}: a record's input_ids and loss_mask differ in length")
            if len(r["input_ids"]) > max_length or not any(r["loss_mask"]):
                skipped += 1
                continue
            out.append(Example(tuple(r["input_ids"]), tuple(r["loss_mask"]), str(r.get("episode_id", ""))))
    return out, skipped


def split_heldout(examples: Sequence[Example], fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """(train, held out): whole episodes are held out (every agent of one), chosen by a seeded hash."""
    def held(ep: str) -> bool:
        h = hashlib.blake2b(f"{seed}|{ep}".encode(), digest_size=8).digest()
        return int.from_bytes(h, "little") / 2 ** 64 < fraction

    train = [e for e in examples if not held(e.episode_id)]
    heldout = [e for e in examples if held(e.episode_id)]
    if not train:  # tiny sets: keep at least something to train on
        return list(examples), []
    return train, heldout


def step_examples(examples: Sequence[Example], step: int, batch_size: int, seed: int) -> list[Example]:
    """The ``batch_size`` examples of optimizer step ``step``: consecutive slices of one seeded permutation
    per epoch, so a resumed run sees exactly what the uninterrupted run would have."""
    n = len(examples)
    out = []
    for i in range(step * batch_size, (step + 1) * batch_size):
        epoch, pos = divmod(i, n)
        order = list(range(n))
        random.Random(seed * 1_000_003 + epoch).shuffle(order)
        out.append(examples[order[pos]])
    return out


def collate(batch: Sequence[Example], pad_id: int, torch: Any) -> tuple[Any, Any, Any]:
    """(input ids, attention mask, label mask) tensors, right-padded to the longest example."""
    width = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(batch), width), dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.float32)
    for i, e in enumerate(batch):
        n = len(e.input_ids)
        ids[i, :n] = torch.tensor(e.input_ids)
        attn[i, :n] = 1
        mask[i, :n] = torch.tensor(e.loss_mask, dtype=torch.float32)
    return ids, attn, mask
