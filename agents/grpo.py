"""Bundled GRPO for multi-agent rollouts (WideSeek-R1), written to be read top to bottom.

One rollout ``i`` of a task is a whole multi-agent episode: a lead agent plus the subagents it spawned,
each with its own isolated token buffer (:class:`agents.trajectory.Trajectory`), and ONE shared reward
``R_i``. Rollouts of the same task form a group of size G. The objective maximised is the paper's
(REFERENCE.md section 1)::

    J = 1/B sum_i 1/N_i sum_a 1/(sum_t |o_{i,a,t}|) sum_t sum_j  min(r A_i, clip(r, 1 - eps_low, 1 + eps_high) A_i)

    r     = pi_theta(o_{i,a,t,j} | context) / pi_old(o_{i,a,t,j} | context)    (per generated token j)
    A_i   = (R_i - mean(R of i's group)) / (std(R of i's group) + eps)        (unbiased std)
    N_i   = number of agents of rollout i that have trained tokens
    B     = number of rollouts in the batch (B tasks x G samples)

so every rollout weighs the same (1/B), every agent inside a rollout weighs the same (1/N_i), and inside
an agent the loss is a token mean over all its turns. We write it as a per-token weighted sum::

    loss = - sum_tokens w * surrogate + kl_beta * sum_tokens w * k3(new, ref)
    w    = 1 / (B * N_i * sum_t |o_{i,a,t}|)                                 (:func:`dual_level_token_weights`)

which makes gradient accumulation exact: the loss of a batch is the plain sum of the losses of any
partition of its tokens into micro-batches, with weights computed once for the whole batch.

Reading order of this file:

1. data: :class:`Rollout` (what a rollout runner returns), :class:`TrainingSample` (one agent of one
   rollout as ONE causal token sequence: its append-only buffer holds every turn, so a single forward
   pass gives the logprobs of all its turns), :class:`RolloutBatch`;
2. which turns are trained: ``"all"`` or the RLinf rule (:func:`select_turns`);
3. :func:`group_advantages`;
4. token weights: :func:`dual_level_token_weights` and the aggregations used for ablations
   (:data:`AGGREGATIONS`);
5. :func:`build_batch` (rollouts -> samples with advantages and weights) and :meth:`RolloutBatch.split`
   (mini-batches for several optimizer steps per batch);
6. tensors: :func:`collate`, :func:`token_logprobs` (a causal LM's logprob of each token, computing the
   LM head only where it is needed);
7. :func:`grpo_loss`: asymmetric clip, dual clip, log-ratio clamp, optional k3 KL to a reference.

Aggregations (verl's ``loss_agg_mode`` names; a "sequence" here is one agent's trajectory in one rollout,
all its turns together, as in verl's multi-turn training; ``T_s`` = its trained tokens, ``S`` = number of
sequences with trained tokens in the batch):

==============================  ==========================  ===============================================
name                            per-token weight            meaning
==============================  ==========================  ===============================================
``dual_level`` (default)        1 / (B N_i T_s)             the paper: rollout, then agent, then token mean
``token_mean``                  1 / sum_s T_s               every token of the batch weighs the same (DAPO)
``seq_mean_token_mean``         1 / (S T_s)                 every agent-trajectory weighs the same (GRPO);
                                                            differs from dual_level when N_i varies
``seq_mean_token_sum``          1 / S                       token sum per sequence, mean over sequences
``seq_mean_token_sum_norm``     1 / (S L)                   Dr. GRPO: token sum over a constant L
                                                            (``max_len``); like TRL's ``dr_grpo`` (verl
                                                            divides by L only, without the 1/S)
==============================  ==========================  ===============================================

Dr. GRPO also drops the std normalisation of the advantage: ``group_advantages(..., scale=False)``.

Turn selection (``turn_selection="rlinf"``, after RLinf's ``credit_assignment``): a rollout whose answer
parsed trains every turn except those of agents that failed (turn or context limit); if the root agent
itself failed, only the root's turns are trained. A rollout whose answer did not parse ("failed") trains
only the offending turns: the root's last turn when the root ended on its own (its unusable answer),
plus the turns flagged as failed if any turn is flagged, else every turn of the agents that failed.
What the env / rollout runner must provide for it:

- ``Rollout.answer_parsed``: the lead's final answer had the expected form (``metrics["answer_parsed"]``
  of the env) and the episode was not truncated;
- ``Trajectory.failed`` for every agent that hit a turn or context limit (``EpisodeRecord.agents[a].failed``
  of the env; RLinf flags all turns of such an agent);
- optionally, per-turn flags for a single offending turn (RLinf's ``turn_repeat_failed``: a runaway
  generation that blew the context): ``Turn.failed = True`` if the turn has such an attribute, or the
  turn's index in ``Trajectory.info["failed_turns"]``.

Everything here is plain PyTorch; nothing depends on the env.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Iterable, Mapping, Sequence

import torch

from agents.logprobs import chunked_entropy, selective_logprobs
from agents.trajectory import Trajectory

__all__ = [
    "Rollout",
    "TrainingSample",
    "RolloutBatch",
    "TURN_SELECTIONS",
    "select_turns",
    "group_advantages",
    "dual_level_token_weights",
    "token_mean_weights",
    "seq_mean_token_mean_weights",
    "seq_mean_token_sum_weights",
    "seq_mean_token_sum_norm_weights",
    "AGGREGATIONS",
    "aggregation_weights",
    "build_batch",
    "collate",
    "token_logprobs",
    "grpo_loss",
    "LossStats",
    "merge_stats",
]


# ================================================================================================
# 1. Data
# ================================================================================================


@dataclass
class Rollout:
    """One multi-agent episode, as a rollout runner hands it to the trainer.

    ``group_id``: rollouts of the same task share it (usually the task id). ``reward``: ``R_i``, shared by
    every agent. ``trajectories``: agent id -> :class:`Trajectory` (token-level, with sampling logprobs).
    ``answer_parsed`` and ``root_agent`` are only read by the RLinf turn selection. ``metrics``: the env's
    end-of-episode metrics (item F1, subagents spawned, ...), passed through to the logs.
    """

    group_id: Hashable
    reward: float
    trajectories: Mapping[str, Trajectory]
    answer_parsed: bool = True
    root_agent: str = "lead"
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainingSample:
    """One agent of one rollout: its whole token buffer as one causal sequence.

    ``input_ids`` = ``Trajectory.full_ids`` (every turn's prompt delta, response and template suffix);
    ``loss_mask`` is 1 on the response tokens trained (per ``Turn.mask`` and the turn selection);
    ``old_logprobs`` are the sampling engine's logprobs aligned with ``input_ids`` (0.0 where nothing was
    generated or nothing was recorded; ``has_engine_logprobs`` says which); a trainer may replace them
    with recomputed ones. ``advantage`` is ``A_i`` and ``weight`` the per-token weight ``w`` of each
    trained token of this sample.
    """

    rollout_index: int
    agent_id: str
    role: str
    input_ids: list[int]
    loss_mask: list[int]
    old_logprobs: list[float]
    has_engine_logprobs: bool = True
    advantage: float = 0.0
    weight: float = 0.0
    ref_logprobs: list[float] | None = None  # a reference model's logprobs (set by a trainer using a KL)

    @property
    def num_tokens(self) -> int:
        """``sum_t |o_{i,a,t}|``: the trained tokens of this agent in this rollout."""
        return int(sum(self.loss_mask))

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass
class RolloutBatch:
    """B rollouts turned into training samples (only samples with trained tokens are kept).

    ``rewards``, ``advantages``: one entry per rollout (float64). ``group_ids``: the group of each rollout.
    ``aggregation`` and ``max_len``: how the sample weights were computed (see :data:`AGGREGATIONS`).
    """

    samples: list[TrainingSample]
    rewards: torch.Tensor
    advantages: torch.Tensor
    group_ids: list[Hashable]
    aggregation: str = "dual_level"
    max_len: int | None = None

    @property
    def num_rollouts(self) -> int:
        return len(self.group_ids)

    @property
    def num_tokens(self) -> int:
        return sum(s.num_tokens for s in self.samples)

    def reweight(self) -> "RolloutBatch":
        """(Re)compute every sample's weight with this batch's aggregation, B = ``num_rollouts``."""
        w = aggregation_weights(
            self.aggregation,
            [s.rollout_index for s in self.samples],
            [s.num_tokens for s in self.samples],
            num_rollouts=self.num_rollouts,
            max_len=self.max_len,
        )
        for s, ws in zip(self.samples, w.tolist()):
            s.weight = ws
        return self

    def split(self, num_minibatches: int) -> list["RolloutBatch"]:
        """Split into ``num_minibatches`` mini-batches of whole rollouts (contiguous, sizes differing by at
        most one), each reweighted as a batch of its own (so each optimizer step sees a normalised loss).
        Advantages stay those of the whole batch. ``split(1)`` returns ``[self]`` unchanged."""
        if num_minibatches < 1:
            raise ValueError("num_minibatches must be >= 1")
        if num_minibatches == 1:
            return [self]
        b = self.num_rollouts
        if num_minibatches > b:
            raise ValueError(f"cannot split {b} rollouts into {num_minibatches} mini-batches")
        bounds = [round(k * b / num_minibatches) for k in range(num_minibatches + 1)]
        out = []
        for lo, hi in zip(bounds, bounds[1:]):
            samples = [
                TrainingSample(**{**s.__dict__, "rollout_index": s.rollout_index - lo})
                for s in self.samples
                if lo <= s.rollout_index < hi
            ]
            mb = RolloutBatch(samples, self.rewards[lo:hi], self.advantages[lo:hi], self.group_ids[lo:hi],
                              self.aggregation, self.max_len)
            out.append(mb.reweight())
        return out


# ================================================================================================
# 2. Which turns are trained
# ================================================================================================

TURN_SELECTIONS = ("all", "rlinf")


def _turn_flagged(traj: Trajectory, index: int) -> bool:
    turn = traj.turns[index]
    if getattr(turn, "failed", False):
        return True
    return index in set(traj.info.get("failed_turns", ()) or ())


def select_turns(rollout: Rollout, rule: str = "all") -> dict[str, set[int]]:
    """Agent id -> indices of the turns to train (before ``Turn.mask``, which still applies).

    ``"all"``: every turn of every agent. ``"rlinf"``: RLinf's rule, described in the module docstring.
    """
    trajs = rollout.trajectories
    every = {a: set(range(len(tr.turns))) for a, tr in trajs.items()}
    if rule == "all":
        return every
    if rule != "rlinf":
        raise ValueError(f"turn selection must be one of {TURN_SELECTIONS}, got {rule!r}")
    root = trajs.get(rollout.root_agent)
    if rollout.answer_parsed:
        if root is not None and root.failed:
            return {rollout.root_agent: every[rollout.root_agent]}
        return {a: ts for a, ts in every.items() if not trajs[a].failed}
    selected: dict[str, set[int]] = {}
    if root is not None and not root.failed and root.turns:
        selected.setdefault(rollout.root_agent, set()).add(len(root.turns) - 1)
    flagged = {a: {t for t in every[a] if _turn_flagged(tr, t)} for a, tr in trajs.items()}
    if any(flagged.values()):
        for a, ts in flagged.items():
            if ts:
                selected.setdefault(a, set()).update(ts)
    else:
        for a, tr in trajs.items():
            if tr.failed:
                selected.setdefault(a, set()).update(every[a])
    return selected


# ================================================================================================
# 3. Group-normalised advantages
# ================================================================================================


def group_advantages(
    rewards: Sequence[float] | torch.Tensor,
    group_ids: Sequence[Hashable],
    eps: float = 1e-6,
    *,
    scale: bool = True,
) -> torch.Tensor:
    """``A_i = (R_i - mean_g) / (std_g + eps)`` with the unbiased std of rollout i's group g (float64).

    A group whose rewards are all equal (a group of size 1 included) gives exactly 0 for all its members,
    never NaN. ``scale=False`` gives ``R_i - mean_g`` (Dr. GRPO).
    """
    r = torch.as_tensor(rewards, dtype=torch.float64).flatten()
    if len(group_ids) != r.numel():
        raise ValueError(f"{r.numel()} rewards but {len(group_ids)} group ids")
    if not torch.isfinite(r).all():
        raise ValueError("rewards must be finite")
    adv = torch.zeros_like(r)
    members: dict[Hashable, list[int]] = {}
    for i, g in enumerate(group_ids):
        members.setdefault(g, []).append(i)
    for idx in members.values():
        rg = r[idx]
        if len(idx) < 2 or bool((rg == rg[0]).all()):
            continue  # no signal: A = 0 (also avoids 0/eps amplifying float round-off)
        centred = rg - rg.mean()
        adv[idx] = centred / (rg.std(unbiased=True) + eps) if scale else centred
    return adv


# ================================================================================================
# 4. Token weights
# ================================================================================================


def _as_counts(num_tokens: Sequence[int]) -> torch.Tensor:
    t = torch.as_tensor(list(num_tokens), dtype=torch.float64)
    if (t < 0).any():
        raise ValueError("token counts must be >= 0")
    return t


def dual_level_token_weights(
    rollout_index: Sequence[int], num_tokens: Sequence[int], num_rollouts: int | None = None
) -> torch.Tensor:
    """Per-sample token weight ``w = 1 / (B * N_i * sum_t |o_{i,a,t}|)`` (0 for a sample without trained
    tokens). Sample s is agent a of rollout ``rollout_index[s]`` with ``num_tokens[s]`` trained tokens.
    ``N_i`` counts the samples of rollout i with trained tokens; ``B`` = ``num_rollouts`` (default: the
    largest rollout index + 1). So each rollout with trained tokens sums to ``1/B`` over its tokens and
    each of its agents to ``1/(B N_i)``."""
    t = _as_counts(num_tokens)
    idx = list(rollout_index)
    if len(idx) != t.numel():
        raise ValueError(f"{len(idx)} rollout indices but {t.numel()} token counts")
    b = num_rollouts if num_rollouts is not None else (max(idx) + 1 if idx else 0)
    if idx and (min(idx) < 0 or max(idx) >= b):
        raise ValueError(f"rollout indices must lie in [0, {b})")
    agents_with_tokens: dict[int, int] = {}
    for i, n in zip(idx, t.tolist()):
        if n > 0:
            agents_with_tokens[i] = agents_with_tokens.get(i, 0) + 1
    w = torch.zeros_like(t)
    for s, (i, n) in enumerate(zip(idx, t.tolist())):
        if n > 0:
            w[s] = 1.0 / (b * agents_with_tokens[i] * n)
    return w


def _where_trained(t: torch.Tensor, value: torch.Tensor | float) -> torch.Tensor:
    """``value`` where the sample has trained tokens, else 0 (float64)."""
    value = torch.as_tensor(value, dtype=torch.float64)
    return torch.where(t > 0, value, torch.zeros((), dtype=torch.float64))


def token_mean_weights(num_tokens: Sequence[int]) -> torch.Tensor:
    """``w = 1 / (all trained tokens of the batch)``: a plain token mean (DAPO / verl ``token-mean``)."""
    t = _as_counts(num_tokens)
    total = float(t.sum())
    return _where_trained(t, 1.0 / total if total else 0.0)


def seq_mean_token_mean_weights(num_tokens: Sequence[int]) -> torch.Tensor:
    """``w = 1 / (S * T_s)``: token mean inside each sequence, mean over the S sequences."""
    t = _as_counts(num_tokens)
    s = float((t > 0).sum())
    return _where_trained(t, 1.0 / (max(s, 1.0) * t.clamp(min=1)))


def seq_mean_token_sum_weights(num_tokens: Sequence[int]) -> torch.Tensor:
    """``w = 1 / S``: token sum inside each sequence, mean over sequences (long sequences weigh more)."""
    t = _as_counts(num_tokens)
    s = float((t > 0).sum())
    return _where_trained(t, 1.0 / s if s else 0.0)


def seq_mean_token_sum_norm_weights(num_tokens: Sequence[int], max_len: int) -> torch.Tensor:
    """Dr. GRPO: ``w = 1 / (S * L)`` with a constant ``L = max_len`` (the generation budget)."""
    if not max_len or max_len <= 0:
        raise ValueError("seq_mean_token_sum_norm needs max_len > 0 (a constant, e.g. the token budget)")
    t = _as_counts(num_tokens)
    s = float((t > 0).sum())
    return _where_trained(t, 1.0 / (s * max_len) if s else 0.0)


AGGREGATIONS: dict[str, Callable[..., torch.Tensor]] = {
    "dual_level": lambda idx, n, b, L: dual_level_token_weights(idx, n, b),
    "token_mean": lambda idx, n, b, L: token_mean_weights(n),
    "seq_mean_token_mean": lambda idx, n, b, L: seq_mean_token_mean_weights(n),
    "seq_mean_token_sum": lambda idx, n, b, L: seq_mean_token_sum_weights(n),
    "seq_mean_token_sum_norm": lambda idx, n, b, L: seq_mean_token_sum_norm_weights(n, L),
}


def aggregation_weights(
    name: str,
    rollout_index: Sequence[int],
    num_tokens: Sequence[int],
    *,
    num_rollouts: int | None = None,
    max_len: int | None = None,
) -> torch.Tensor:
    """Per-sample token weights of aggregation ``name`` (a key of :data:`AGGREGATIONS`)."""
    try:
        fn = AGGREGATIONS[name]
    except KeyError:
        raise ValueError(f"unknown aggregation {name!r}; choose one of {sorted(AGGREGATIONS)}") from None
    return fn(list(rollout_index), list(num_tokens), num_rollouts, max_len)


# ================================================================================================
# 5. Rollouts -> batch
# ================================================================================================


def _sample_from_trajectory(i: int, agent: str, traj: Trajectory, turns: set[int]) -> TrainingSample:
    ids, mask, lps = [], [], []
    engine_lps = True
    for k, t in enumerate(traj.turns):
        keep = 1 if k in turns else 0
        ids += t.prompt_ids
        mask += [0] * len(t.prompt_ids)
        ids += t.response_ids
        mask += [m * keep for m in t.mask]
        if t.logprobs is None:
            engine_lps = engine_lps and not (keep and any(t.mask))
            lps += [0.0] * (len(t.prompt_ids) + len(t.response_ids))
        else:
            lps += [0.0] * len(t.prompt_ids) + [float(x) for x in t.logprobs]
        ids += t.suffix_ids
        mask += [0] * len(t.suffix_ids)
        lps += [0.0] * len(t.suffix_ids)
    if mask and mask[0]:
        mask[0] = 0  # the first token has no context to be predicted from
    return TrainingSample(i, agent, traj.role, ids, mask, lps, has_engine_logprobs=engine_lps)


def build_batch(
    rollouts: Sequence[Rollout],
    *,
    aggregation: str = "dual_level",
    max_len: int | None = None,
    turn_selection: str = "all",
    eps: float = 1e-6,
    scale_advantages: bool = True,
) -> RolloutBatch:
    """Rollouts -> :class:`RolloutBatch`: advantages per group, one sample per agent with trained tokens
    (after ``turn_selection``), weights per ``aggregation`` with ``B = len(rollouts)``.

    Rollouts may be any objects with ``group_id``, ``reward`` and ``trajectories`` (a mapping or a list of
    trajectories); ``answer_parsed`` / ``root_agent`` are optional (used by ``"rlinf"``)."""
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {aggregation!r}; choose one of {sorted(AGGREGATIONS)}")
    rollouts = [_as_rollout(r) for r in rollouts]
    rewards = torch.tensor([float(r.reward) for r in rollouts], dtype=torch.float64)
    group_ids = [r.group_id for r in rollouts]
    advantages = group_advantages(rewards, group_ids, eps, scale=scale_advantages)
    samples: list[TrainingSample] = []
    for i, ro in enumerate(rollouts):
        selected = select_turns(ro, turn_selection)
        for agent, traj in ro.trajectories.items():
            s = _sample_from_trajectory(i, agent, traj, selected.get(agent, set()))
            if s.num_tokens:
                s.advantage = float(advantages[i])
                samples.append(s)
    return RolloutBatch(samples, rewards, advantages, group_ids, aggregation, max_len).reweight()


def _as_rollout(r: Any) -> Rollout:
    if isinstance(r, Rollout):
        return r
    trajs = r.trajectories
    if not isinstance(trajs, Mapping):
        trajs = {t.agent_id: t for t in trajs}
    return Rollout(
        group_id=getattr(r, "group_id", None) if hasattr(r, "group_id") else r.task_id,
        reward=float(r.reward),
        trajectories=trajs,
        answer_parsed=bool(getattr(r, "answer_parsed", True)),
        root_agent=getattr(r, "root_agent", "lead"),
        metrics=dict(getattr(r, "metrics", {}) or {}),
    )


# ================================================================================================
# 6. Tensors
# ================================================================================================


def collate(
    samples: Sequence[TrainingSample], pad_id: int = 0, *, dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> dict[str, torch.Tensor]:
    """Right-pad samples into tensors ``[S, T]``: ``input_ids``, ``attention_mask``, ``loss_mask``,
    ``old_logprobs``, ``advantages`` (A_i on every token) and ``weights`` (w on trained tokens, else 0);
    also ``ref_logprobs`` when every sample has them."""
    n = len(samples)
    width = max((len(s) for s in samples), default=0)
    input_ids = torch.full((n, width), pad_id, dtype=torch.long)
    attention = torch.zeros((n, width), dtype=torch.long)
    loss_mask = torch.zeros((n, width), dtype=dtype)
    old = torch.zeros((n, width), dtype=dtype)
    for row, s in enumerate(samples):
        m = len(s)
        input_ids[row, :m] = torch.tensor(s.input_ids, dtype=torch.long)
        attention[row, :m] = 1
        loss_mask[row, :m] = torch.tensor(s.loss_mask, dtype=dtype)
        old[row, :m] = torch.tensor(s.old_logprobs, dtype=dtype)
    adv = torch.tensor([s.advantage for s in samples], dtype=dtype)[:, None] * loss_mask
    weights = torch.tensor([s.weight for s in samples], dtype=dtype)[:, None] * loss_mask
    out = dict(input_ids=input_ids, attention_mask=attention, loss_mask=loss_mask, old_logprobs=old,
               advantages=adv, weights=weights)
    if samples and all(s.ref_logprobs is not None for s in samples):
        ref = torch.zeros((n, width), dtype=dtype)
        for row, s in enumerate(samples):
            ref[row, :len(s)] = torch.tensor(s.ref_logprobs, dtype=dtype)
        out["ref_logprobs"] = ref
    if device is not None:
        out = {k: v.to(device) for k, v in out.items()}
    return out


def _accepts_logits_to_keep(model: Any) -> bool:
    cache = getattr(model, "_wideseek_logits_to_keep", None)
    if cache is None:
        # a peft model forwards extra keyword arguments to the model it wraps
        target = model.get_base_model() if hasattr(model, "get_base_model") else model
        try:
            cache = "logits_to_keep" in inspect.signature(target.forward).parameters
        except (TypeError, ValueError):
            cache = False
        try:
            model._wideseek_logits_to_keep = cache
        except Exception:  # noqa: BLE001
            pass
    return cache


def token_logprobs(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    *,
    loss_mask: torch.Tensor | None = None,
    temperature: float = 1.0,
    with_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``log pi(x_p | x_<p)`` at every position p of a causal LM's input (0.0 at p = 0), shape ``[S, T]``.

    With ``loss_mask``, the LM head runs only on the positions that predict a masked token (a union over
    the rows; HF models that take ``logits_to_keep`` as an index tensor) - agent trajectories are mostly
    prompt and tool output, so this saves most of the ``[S, T, vocab]`` logits; other positions get 0.
    ``with_entropy`` also returns the entropy of the (temperature-scaled) next-token distribution at the
    same positions (no gradient). Logits are divided by ``temperature`` (use the sampling temperature
    when the engine's logprobs are of the processed distribution).
    """
    s, t = input_ids.shape
    positions = None
    if loss_mask is not None and t > 1 and _accepts_logits_to_keep(model):
        need = (loss_mask[:, 1:] != 0).any(dim=0).nonzero().flatten()  # predicting position p+1
        positions = need
    kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
    if positions is not None:
        if positions.numel() == 0:
            zero = torch.zeros((s, t), dtype=torch.float32, device=input_ids.device)
            return zero, (zero.clone() if with_entropy else None)
        kwargs["logits_to_keep"] = positions
    try:
        logits = model(**kwargs, use_cache=False).logits
    except TypeError:
        logits = model(**kwargs).logits
    if positions is None:
        logits = logits[:, :-1]
        positions = torch.arange(t - 1, device=input_ids.device)
    # float32 results without a float32 copy of the [S, K, vocab] logits (see agents.logprobs)
    dt = torch.promote_types(logits.dtype, torch.float32)
    targets = input_ids[:, positions + 1]
    lp = selective_logprobs(logits, targets, temperature=temperature).to(dt)
    out_lp = torch.zeros((s, t), dtype=dt, device=input_ids.device)
    out_lp = out_lp.index_copy(1, positions + 1, lp)
    ent_full = None
    if with_entropy:
        ent = chunked_entropy(logits.detach(), temperature=temperature).to(dt)
        ent_full = torch.zeros((s, t), dtype=dt, device=input_ids.device).index_copy(1, positions + 1, ent)
    return out_lp, ent_full


# ================================================================================================
# 7. The clipped surrogate loss
# ================================================================================================


@dataclass
class LossStats:
    """Diagnostics of one :func:`grpo_loss` call, as plain token means over the trained tokens (w != 0).

    ``clip_fraction``: tokens whose clipped branch is the smaller one (no gradient through r);
    ``dual_clip_fraction``: tokens (A < 0) where the dual clip ``c A`` is active; ``approx_kl``: mean of
    ``(r - 1) - log r`` (k3 estimate of KL(old || new)); ``ratio_mean`` / ``ratio_max``; ``kl_ref``: mean
    k3 estimate of KL(new || ref) (0 without a reference); ``policy_loss`` / ``kl_loss``: the two weighted
    terms of the loss; ``tokens``: how many tokens these means are over."""

    policy_loss: float = 0.0
    kl_loss: float = 0.0
    clip_fraction: float = 0.0
    clip_fraction_low: float = 0.0
    clip_fraction_high: float = 0.0
    dual_clip_fraction: float = 0.0
    approx_kl: float = 0.0
    ratio_mean: float = 1.0
    ratio_max: float = 1.0
    kl_ref: float = 0.0
    tokens: int = 0

    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


def grpo_loss(
    new_logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    weights: torch.Tensor,
    eps_low: float = 0.2,
    eps_high: float = 0.28,
    dual_clip: float | None = 10.0,
    log_ratio_clamp: float = 20.0,
    ref_logprobs: torch.Tensor | None = None,
    kl_beta: float = 0.0,
) -> tuple[torch.Tensor, LossStats]:
    """``loss = - sum w * surrogate + kl_beta * sum w * k3`` over tokens (all tensors of one shape).

    ``surrogate = min(r A, clip(r, 1 - eps_low, 1 + eps_high) A)``, and for ``A < 0`` with a dual clip c:
    ``max(surrogate, c A)`` (a huge ratio on a bad token cannot push the loss without bound).
    ``r = exp(clamp(new - old, -log_ratio_clamp, log_ratio_clamp))``. ``k3 = exp(ref - new) - (ref - new) - 1``
    (Schulman's estimator of KL(new || ref)), only when ``ref_logprobs`` is given and ``kl_beta != 0``.
    Tokens with ``weights == 0`` (prompts, padding, untrained turns) contribute nothing, whatever values
    the other tensors hold there.
    """
    if dual_clip is not None and dual_clip <= 1.0:
        raise ValueError("dual_clip must be > 1 (or None to disable it)")
    if not (0 <= eps_low < 1 and eps_high >= 0):
        raise ValueError("need 0 <= eps_low < 1 and eps_high >= 0")
    trained = weights != 0
    zero = torch.zeros((), dtype=new_logprobs.dtype, device=new_logprobs.device)

    log_ratio = torch.where(trained, new_logprobs - old_logprobs, zero)
    log_ratio = log_ratio.clamp(-log_ratio_clamp, log_ratio_clamp)
    ratio = torch.exp(log_ratio)  # r

    surrogate_unclipped = ratio * advantages  # r A
    surrogate_clipped = ratio.clamp(1.0 - eps_low, 1.0 + eps_high) * advantages  # clip(r) A
    surrogate = torch.minimum(surrogate_unclipped, surrogate_clipped)
    if dual_clip is not None:
        surrogate = torch.where(advantages < 0, torch.maximum(surrogate, dual_clip * advantages), surrogate)

    policy_loss = -(torch.where(trained, weights * surrogate, zero)).sum()
    loss = policy_loss
    kl_loss = zero
    k3 = None
    if ref_logprobs is not None:
        d = torch.where(trained, ref_logprobs - new_logprobs, zero).clamp(-log_ratio_clamp, log_ratio_clamp)
        k3 = torch.exp(d) - d - 1.0
        if kl_beta:
            kl_loss = kl_beta * torch.where(trained, weights * k3, zero).sum()
            loss = loss + kl_loss

    with torch.no_grad():
        n = int(trained.sum())
        stats = LossStats(policy_loss=float(policy_loss.detach()), kl_loss=float(kl_loss.detach()), tokens=n)
        if n:
            def mean(x: torch.Tensor) -> float:
                return float(x[trained].double().mean())

            stats.clip_fraction = mean((surrogate_clipped < surrogate_unclipped).double())
            stats.clip_fraction_low = mean(((advantages < 0) & (ratio < 1.0 - eps_low)).double())
            stats.clip_fraction_high = mean(((advantages > 0) & (ratio > 1.0 + eps_high)).double())
            if dual_clip is not None:
                dual = (advantages < 0) & (dual_clip * advantages > torch.minimum(surrogate_unclipped,
                                                                                   surrogate_clipped))
                stats.dual_clip_fraction = mean(dual.double())
            stats.approx_kl = mean((ratio - 1.0) - log_ratio)
            stats.ratio_mean = mean(ratio)
            stats.ratio_max = float(ratio[trained].max())
            if k3 is not None:
                stats.kl_ref = mean(k3)
    return loss, stats


def merge_stats(stats: Iterable[LossStats]) -> dict[str, float]:
    """Token-weighted means of several :class:`LossStats` (micro-batches); losses are summed."""
    stats = list(stats)
    total = sum(s.tokens for s in stats)
    out: dict[str, float] = {"policy_loss": sum(s.policy_loss for s in stats),
                             "kl_loss": sum(s.kl_loss for s in stats), "tokens": float(total)}
    for key in ("clip_fraction", "clip_fraction_low", "clip_fraction_high", "dual_clip_fraction",
                "approx_kl", "ratio_mean", "kl_ref"):
        out[key] = sum(getattr(s, key) * s.tokens for s in stats) / total if total else 0.0
    out["ratio_max"] = max((s.ratio_max for s in stats if s.tokens), default=1.0)
    return out

