"""GRPO maths: advantages, dual-level weights, aggregations, clipping, and the loss + gradient against a
naive per-token loop over the paper's formula on a tiny causal LM."""

from __future__ import annotations

import math
import random
import types

import pytest
import torch

from agents.grpo import (
    AGGREGATIONS,
    Rollout,
    aggregation_weights,
    build_batch,
    collate,
    dual_level_token_weights,
    group_advantages,
    grpo_loss,
    merge_stats,
    select_turns,
    seq_mean_token_mean_weights,
    seq_mean_token_sum_norm_weights,
    seq_mean_token_sum_weights,
    token_logprobs,
    token_mean_weights,
)
from agents.trajectory import Trajectory, Turn

EPS = 1e-6

# ----------------------------------------------------------------------------------- advantages


def test_group_advantages_hand_computed():
    rewards = [1.0, 0.0, 0.5, 2.0, 2.0, 3.0, 0.0, 1.0]
    groups = ["a", "a", "a", "b", "b", "c", "d", "d"]
    adv = group_advantages(rewards, groups)
    # group a: mean 0.5, unbiased std sqrt((0.25 + 0.25 + 0) / 2) = 0.5
    # group d: mean 0.5, unbiased std sqrt((0.25 + 0.25) / 1) = sqrt(0.5)
    s = math.sqrt(0.5)
    expected = [0.5 / (0.5 + EPS), -0.5 / (0.5 + EPS), 0.0, 0.0, 0.0, 0.0, -0.5 / (s + EPS), 0.5 / (s + EPS)]
    assert adv.dtype == torch.float64
    assert adv.tolist() == pytest.approx(expected, abs=1e-12)
    # Dr. GRPO: no std scaling
    assert group_advantages(rewards, groups, scale=False).tolist() == pytest.approx(
        [0.5, -0.5, 0.0, 0.0, 0.0, 0.0, -0.5, 0.5], abs=1e-12
    )
    # a custom eps is used
    assert float(group_advantages([0.0, 1.0], [0, 0], eps=1.0)[1]) == pytest.approx(0.5 / (s + 1.0))


@pytest.mark.parametrize("value", [0.1, 1 / 3, 0.7, 1e9, 0.0, -2.5])
def test_identical_rewards_give_exact_zero_and_no_nan(value):
    # mean([0.1] * 3) != 0.1 in floating point: without the guard (R - mean) / (0 + eps) would be ~1e-11
    adv = group_advantages([value] * 3 + [value, value + 1.0], [0, 0, 0, 1, 1])
    assert adv[:3].tolist() == [0.0, 0.0, 0.0]
    assert torch.isfinite(adv).all()
    assert adv[3] < 0 < adv[4]
    assert group_advantages([value], ["solo"]).tolist() == [0.0]  # a group of size 1


def test_group_advantages_are_centred_and_unit_std_per_group():
    rng = random.Random(0)
    rewards = [rng.random() for _ in range(24)]
    groups = [i // 8 for i in range(24)]
    adv = group_advantages(rewards, groups, eps=0.0)
    for g in range(3):
        a = adv[g * 8:(g + 1) * 8]
        assert float(a.mean()) == pytest.approx(0.0, abs=1e-12)
        assert float(a.std(unbiased=True)) == pytest.approx(1.0, abs=1e-12)


def test_group_advantages_rejects_bad_input():
    with pytest.raises(ValueError):
        group_advantages([1.0, 2.0], [0])
    with pytest.raises(ValueError):
        group_advantages([1.0, float("nan")], [0, 0])


# ----------------------------------------------------------------------------------- weights


def test_dual_level_weights_hand_computed():
    # rollout 0: agents with 2 and 4 trained tokens; rollout 1: 3, 0 (not counted in N_1) and 5 tokens
    idx = [0, 0, 1, 1, 1]
    n = [2, 4, 3, 0, 5]
    w = dual_level_token_weights(idx, n)
    assert w.tolist() == pytest.approx([1 / 8, 1 / 16, 1 / 12, 0.0, 1 / 20], abs=1e-15)
    # B counts every rollout, also one without trained tokens
    w3 = dual_level_token_weights(idx, n, num_rollouts=3)
    assert w3.tolist() == pytest.approx([x * 2 / 3 for x in w.tolist()], abs=1e-15)
    with pytest.raises(ValueError):
        dual_level_token_weights([0, 2], [1, 1], num_rollouts=2)


def test_dual_level_weight_properties_random():
    rng = random.Random(1)
    for _ in range(200):
        b = rng.randint(1, 6)
        idx, n = [], []
        for i in range(b):
            for _a in range(rng.randint(1, 5)):
                idx.append(i)
                n.append(rng.choice([0, 1, 2, 7, 50]))
        order = list(range(len(idx)))
        rng.shuffle(order)  # samples need not be sorted by rollout
        idx = [idx[k] for k in order]
        n = [n[k] for k in order]
        w = dual_level_token_weights(idx, n, num_rollouts=b).tolist()
        for i in range(b):
            members = [k for k in range(len(idx)) if idx[k] == i and n[k] > 0]
            if not members:
                continue
            assert sum(w[k] * n[k] for k in members) == pytest.approx(1 / b, rel=1e-12)
            for k in members:  # each agent of rollout i: 1 / (B N_i)
                assert w[k] * n[k] == pytest.approx(1 / (b * len(members)), rel=1e-12)
        assert all(w[k] == 0.0 for k in range(len(n)) if n[k] == 0)


def test_aggregations_hand_computed_and_different():
    # rollout 0: one agent of 10 tokens; rollout 1: three agents of 2, 4, 6 tokens
    idx, n = [0, 1, 1, 1], [10, 2, 4, 6]
    total, s, L = 22, 4, 16
    expected = {
        "dual_level": [1 / (2 * 1 * 10), 1 / (2 * 3 * 2), 1 / (2 * 3 * 4), 1 / (2 * 3 * 6)],
        "token_mean": [1 / total] * 4,
        "seq_mean_token_mean": [1 / (s * 10), 1 / (s * 2), 1 / (s * 4), 1 / (s * 6)],
        "seq_mean_token_sum": [1 / s] * 4,
        "seq_mean_token_sum_norm": [1 / (s * L)] * 4,
    }
    got = {name: aggregation_weights(name, idx, n, num_rollouts=2, max_len=L).tolist() for name in AGGREGATIONS}
    assert set(got) == set(expected)
    for name in expected:
        assert got[name] == pytest.approx(expected[name], rel=1e-12), name
    # pairwise different on this batch
    names = sorted(got)
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            assert got[names[a]] != pytest.approx(got[names[b]], rel=1e-6), (names[a], names[b])
    # what each one normalises: total weight of the batch's tokens
    mass = {name: sum(w * k for w, k in zip(got[name], n)) for name in got}
    assert mass["dual_level"] == pytest.approx(1.0)
    assert mass["token_mean"] == pytest.approx(1.0)
    assert mass["seq_mean_token_mean"] == pytest.approx(1.0)
    assert mass["seq_mean_token_sum"] == pytest.approx(total / s)  # mean token count per sequence
    assert mass["seq_mean_token_sum_norm"] == pytest.approx(total / (s * L))
    # per-sequence mass: equal for seq_mean_token_mean, equal per rollout for dual_level
    per_seq = [w * k for w, k in zip(got["seq_mean_token_mean"], n)]
    assert per_seq == pytest.approx([1 / s] * 4)
    per_seq = [w * k for w, k in zip(got["dual_level"], n)]
    assert per_seq == pytest.approx([1 / 2, 1 / 6, 1 / 6, 1 / 6])


def test_dual_level_equals_seq_mean_token_mean_when_every_rollout_has_as_many_agents():
    idx, n = [0, 0, 1, 1, 2, 2], [3, 5, 1, 9, 4, 4]
    assert dual_level_token_weights(idx, n).tolist() == pytest.approx(
        seq_mean_token_mean_weights(n).tolist(), rel=1e-12
    )


def test_aggregation_zero_tokens_and_errors():
    assert token_mean_weights([0, 3]).tolist() == [0.0, pytest.approx(1 / 3)]
    assert seq_mean_token_sum_weights([0, 3, 1]).tolist() == [0.0, 0.5, 0.5]
    assert seq_mean_token_mean_weights([0, 0]).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="max_len"):
        seq_mean_token_sum_norm_weights([1, 2], 0)
    with pytest.raises(ValueError, match="unknown aggregation"):
        aggregation_weights("nope", [0], [1])


# ----------------------------------------------------------------------------------- clipping


def _surrogate_case(ratios, advantages, **kw):
    r = torch.tensor(ratios, dtype=torch.float64)
    old = torch.full_like(r, -2.0)
    new = (old + torch.log(r)).requires_grad_(True)
    a = torch.tensor(advantages, dtype=torch.float64)
    w = torch.ones_like(r)
    loss, stats = grpo_loss(new, old, a, w, **kw)
    (g,) = torch.autograd.grad(loss, new)
    return loss, stats, g


def test_clipping_hand_picked_ratios():
    eps_low, eps_high, c = 0.2, 0.28, 10.0
    ratios = [0.5, 0.9, 1.5, 1.2, 0.5, 0.9, 1.5, 30.0]
    adv = [1.0, 1.0, 1.0, 1.0, -1.0, -1.0, -1.0, -1.0]
    loss, stats, g = _surrogate_case(ratios, adv, eps_low=eps_low, eps_high=eps_high, dual_clip=c)
    # per-token surrogate and d(surrogate)/d(log r) = r A where the unclipped branch is the one taken
    #  r=0.5,A=+1: min(0.5, 0.8)      = 0.5  grad 0.5
    #  r=0.9,A=+1: min(0.9, 0.9)      = 0.9  grad 0.9
    #  r=1.5,A=+1: min(1.5, 1.28)     = 1.28 grad 0  (clipped high)
    #  r=1.2,A=+1: min(1.2, 1.2)      = 1.2  grad 1.2
    #  r=0.5,A=-1: min(-0.5, -0.8)    = -0.8 grad 0  (clipped low)
    #  r=0.9,A=-1: min(-0.9, -0.9)    = -0.9 grad -0.9
    #  r=1.5,A=-1: min(-1.5, -1.28)   = -1.5 grad -1.5; dual clip -10 inactive
    #  r=30, A=-1: min(-30, -1.28)=-30 -> max(-30, -10) = -10  grad 0 (dual clip)
    surrogate = [0.5, 0.9, 1.28, 1.2, -0.8, -0.9, -1.5, -10.0]
    grad = [0.5, 0.9, 0.0, 1.2, 0.0, -0.9, -1.5, 0.0]
    assert float(loss.detach()) == pytest.approx(-sum(surrogate), abs=1e-12)
    assert (-g).tolist() == pytest.approx(grad, abs=1e-12)
    assert stats.clip_fraction == pytest.approx(2 / 8)  # 1.5(+), 0.5(-): the clipped branch is the smaller
    assert stats.clip_fraction_high == pytest.approx(1 / 8)  # A>0 and r > 1.28: 1.5
    assert stats.clip_fraction_low == pytest.approx(1 / 8)  # A<0 and r < 0.8: 0.5
    assert stats.dual_clip_fraction == pytest.approx(1 / 8)
    assert stats.ratio_max == pytest.approx(30.0)
    assert stats.ratio_mean == pytest.approx(sum(ratios) / 8)
    assert stats.approx_kl == pytest.approx(sum((r - 1) - math.log(r) for r in ratios) / 8)
    assert stats.tokens == 8

    # without the dual clip, min(-30, -1.28) = -30 takes the unclipped branch: the loss and the gradient
    # grow with r without bound, which is what the dual clip prevents
    loss2, _, g2 = _surrogate_case(ratios, adv, eps_low=eps_low, eps_high=eps_high, dual_clip=None)
    assert float(loss2.detach()) == pytest.approx(-(sum(surrogate[:-1]) - 30.0), abs=1e-12)
    assert float(-g2[-1]) == pytest.approx(-30.0)


def test_asymmetric_clip_bounds():
    # r = 1.25 is inside [0.8, 1.28] (not clipped), r = 0.79 is below 0.8
    _, stats, g = _surrogate_case([1.25, 0.79], [1.0, -1.0])
    assert (-g).tolist() == pytest.approx([1.25, 0.0])
    assert stats.clip_fraction == pytest.approx(0.5)
    _, _, g = _surrogate_case([1.25, 0.79], [1.0, -1.0], eps_low=0.3, eps_high=0.2)
    assert (-g).tolist() == pytest.approx([0.0, -0.79])


def test_log_ratio_clamp_and_garbage_on_untrained_tokens():
    old = torch.tensor([-60.0, -1.0, float("nan"), float("-inf")], dtype=torch.float64)
    new = torch.tensor([-1.0, -1.0, -1.0, -1.0], dtype=torch.float64, requires_grad=True)
    adv = torch.tensor([-1.0, 1.0, 5.0, 5.0], dtype=torch.float64)
    w = torch.tensor([0.5, 0.5, 0.0, 0.0], dtype=torch.float64)
    loss, stats = grpo_loss(new, old, adv, w, log_ratio_clamp=20.0, dual_clip=None)
    # log r = 59 clamped to 20: r = e^20, A < 0 -> min(-e^20, -1.28) = -e^20; the clamp stops the gradient
    assert float(loss.detach()) == pytest.approx(-(0.5 * -math.exp(20.0) + 0.5 * 1.0), rel=1e-12)
    (g,) = torch.autograd.grad(loss, new)
    assert torch.isfinite(g).all() and g.tolist() == pytest.approx([0.0, -0.5, 0.0, 0.0])
    assert stats.tokens == 2 and math.isfinite(stats.approx_kl)
    loss, _ = grpo_loss(new, old, adv, w, log_ratio_clamp=20.0, dual_clip=10.0)
    assert float(loss.detach()) == pytest.approx(-(0.5 * -10.0 + 0.5 * 1.0), rel=1e-12)


def test_kl_term_k3_against_reference():
    new = torch.tensor([-1.0, -2.0], dtype=torch.float64, requires_grad=True)
    ref = torch.tensor([-1.5, -1.0], dtype=torch.float64)
    zero = torch.zeros(2, dtype=torch.float64)
    w = torch.tensor([0.25, 0.75], dtype=torch.float64)
    loss, stats = grpo_loss(new, new.detach(), zero, w, ref_logprobs=ref, kl_beta=0.1)
    k3 = [math.exp(d) - d - 1 for d in (-0.5, 1.0)]
    assert float(loss.detach()) == pytest.approx(0.1 * (0.25 * k3[0] + 0.75 * k3[1]), rel=1e-12)
    assert stats.kl_ref == pytest.approx(sum(k3) / 2)
    (g,) = torch.autograd.grad(loss, new)
    # d k3 / d new = 1 - exp(ref - new)
    assert g.tolist() == pytest.approx([0.1 * 0.25 * (1 - math.exp(-0.5)), 0.1 * 0.75 * (1 - math.exp(1.0))])
    # kl_beta = 0: reported, not added
    loss0, stats0 = grpo_loss(new, new.detach(), zero, w, ref_logprobs=ref, kl_beta=0.0)
    assert float(loss0.detach()) == 0.0 and stats0.kl_ref == pytest.approx(sum(k3) / 2)


def test_invalid_clip_settings():
    x = torch.zeros(2)
    with pytest.raises(ValueError):
        grpo_loss(x, x, x, x, dual_clip=1.0)
    with pytest.raises(ValueError):
        grpo_loss(x, x, x, x, eps_low=1.0)


def test_merge_stats_token_weighted():
    a = _surrogate_case([1.5, 1.0], [1.0, 1.0])[1]
    b = _surrogate_case([1.0, 1.0, 1.0, 1.0], [1.0] * 4)[1]
    m = merge_stats([a, b])
    assert m["tokens"] == 6 and m["clip_fraction"] == pytest.approx(1 / 6)
    assert m["policy_loss"] == pytest.approx(a.policy_loss + b.policy_loss)


# ----------------------------------------------------------------------------------- turn selection


def _traj(agent, turns, *, failed=False, role="subagent", info=None):
    tr = Trajectory("ep", agent, role, failed=failed, info=info or {})
    for k in range(turns):
        tr.add_turn(Turn([1, 2], [3, 4], [-0.5, -0.5], [1, 1]))
    return tr


def test_select_turns_rlinf_rule():
    def ro(parsed, lead_failed=False, sub_failed=(), flagged=None):
        trajs = {"lead": _traj("lead", 3, failed=lead_failed, role="lead")}
        for k in range(3):
            info = {"failed_turns": flagged[k]} if flagged and k in flagged else None
            trajs[f"sub_{k}"] = _traj(f"sub_{k}", 2, failed=k in sub_failed, info=info)
        return Rollout("g", 1.0, trajs, answer_parsed=parsed)

    everything = {"lead": {0, 1, 2}, "sub_0": {0, 1}, "sub_1": {0, 1}, "sub_2": {0, 1}}
    assert select_turns(ro(True), "all") == everything
    assert select_turns(ro(False, sub_failed={1}), "all") == everything
    # success: all turns except those of failed subagents
    assert select_turns(ro(True), "rlinf") == everything
    assert select_turns(ro(True, sub_failed={1}), "rlinf") == {"lead": {0, 1, 2}, "sub_0": {0, 1}, "sub_2": {0, 1}}
    # parsed but the lead hit a limit: only the lead's (failed) turns
    assert select_turns(ro(True, lead_failed=True, sub_failed={0}), "rlinf") == {"lead": {0, 1, 2}}
    # failed rollout, the lead answered on its own: its last turn, plus every turn of failed subagents
    assert select_turns(ro(False), "rlinf") == {"lead": {2}}
    assert select_turns(ro(False, sub_failed={2}), "rlinf") == {"lead": {2}, "sub_2": {0, 1}}
    # failed rollout with flagged turns: only the flagged ones (plus the lead's unusable final answer)
    assert select_turns(ro(False, sub_failed={2}, flagged={2: [1]}), "rlinf") == {"lead": {2}, "sub_2": {1}}
    # the lead itself failed (truncated): all its turns are offending
    assert select_turns(ro(False, lead_failed=True), "rlinf") == {"lead": {0, 1, 2}}
    with pytest.raises(ValueError):
        select_turns(ro(True), "bogus")


def test_build_batch_applies_rlinf_selection_and_turn_masks():
    lead = _traj("lead", 2, role="lead")
    lead.turns[0].mask = [1, 0]  # a runner zeroed one token: stays zero
    sub = _traj("sub_0", 2, failed=True)
    ok = Rollout("g", 1.0, {"lead": lead, "sub_0": sub}, answer_parsed=True)
    bad = Rollout("g", 0.0, {"lead": _traj("lead", 2, role="lead"), "sub_0": _traj("sub_0", 2)},
                  answer_parsed=False)
    batch = build_batch([ok, bad], turn_selection="rlinf")
    got = [(s.rollout_index, s.agent_id, s.loss_mask) for s in batch.samples]
    assert got == [
        (0, "lead", [0, 0, 1, 0, 0, 0, 1, 1]),
        (1, "lead", [0, 0, 0, 0, 0, 0, 1, 1]),
    ]
    # each rollout has one agent with trained tokens: w = 1 / (B * 1 * T)
    assert [s.weight for s in batch.samples] == pytest.approx([1 / (2 * 3), 1 / (2 * 2)])
    a = 0.5 / (math.sqrt(0.5) + EPS)  # rewards 1 and 0: mean 0.5, unbiased std sqrt(0.5)
    assert [s.advantage for s in batch.samples] == pytest.approx([a, -a], rel=1e-12)


def test_build_batch_layout_matches_trajectory():
    tr = Trajectory("ep", "lead", "lead")
    tr.add_turn(Turn([5, 6, 7], [8, 9], [-0.1, -0.2], [1, 1], suffix_ids=[2]))
    tr.add_turn(Turn([10], [11, 12, 13], None, [1, 0, 1]))
    batch = build_batch([Rollout(0, 1.0, {"lead": tr}), Rollout(0, 0.0, {"lead": _traj("lead", 1)})])
    s = batch.samples[0]
    assert s.input_ids == tr.full_ids and s.loss_mask == tr.loss_mask
    assert s.old_logprobs == [0.0, 0.0, 0.0, -0.1, -0.2, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert not s.has_engine_logprobs and batch.samples[1].has_engine_logprobs
    t = collate(batch.samples, pad_id=99)
    assert t["input_ids"].shape == (2, 10) and t["input_ids"][1, 4:].tolist() == [99] * 6
    assert t["attention_mask"][1].tolist() == [1] * 4 + [0] * 6
    assert t["weights"][0].tolist() == pytest.approx([w * s.weight for w in s.loss_mask])
    assert t["advantages"][0].tolist() == pytest.approx([m * s.advantage for m in s.loss_mask])


def test_split_minibatches_reweights_each():
    rng = random.Random(3)
    rollouts = []
    for i in range(6):
        trajs = {"lead": _traj("lead", rng.randint(1, 3), role="lead")}
        for k in range(rng.randint(0, 3)):
            trajs[f"sub_{k}"] = _traj(f"sub_{k}", rng.randint(1, 3))
        rollouts.append(Rollout(i // 3, float(i), trajs))
    batch = build_batch(rollouts)
    assert sum(s.weight * s.num_tokens for s in batch.samples) == pytest.approx(1.0)
    parts = batch.split(4)
    assert sorted(p.num_rollouts for p in parts) == [1, 1, 2, 2]
    for p in parts:
        assert sum(s.weight * s.num_tokens for s in p.samples) == pytest.approx(1.0)
        assert all(0 <= s.rollout_index < p.num_rollouts for s in p.samples)
    # advantages are those of the whole batch
    assert torch.cat([p.advantages for p in parts]).tolist() == batch.advantages.tolist()
    assert batch.split(1) == [batch]
    # per-sample extras (recomputed old logprobs, reference logprobs) travel with the split samples
    for s in batch.samples:
        s.ref_logprobs = [float(s.rollout_index)] * len(s)
    parts = batch.split(2)
    t = collate(parts[1].samples)
    assert t["ref_logprobs"].shape == t["input_ids"].shape and float(t["ref_logprobs"][0, 0]) >= 3.0
    assert "ref_logprobs" not in collate(build_batch(rollouts).samples)
    with pytest.raises(ValueError):
        batch.split(7)


# ----------------------------------------------------------------------------------- loss vs naive loop


def _rms_norm_float64(self, hidden_states):
    # Qwen2RMSNorm computes in float32 even in a float64 model; the backward then sums the gradients of
    # several positions in float32 (~1e-8 relative), so the exact comparison needs it in float64.
    variance = hidden_states.pow(2).mean(-1, keepdim=True)
    return self.weight * (hidden_states * torch.rsqrt(variance + self.variance_epsilon))


def _tiny_lm(seed: int, vocab: int = 48):
    """A 2-layer Qwen2 causal LM in float64 (random weights, no tokenizer needed)."""
    transformers = pytest.importorskip("transformers")
    cfg = transformers.Qwen2Config(
        vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, head_dim=16, max_position_embeddings=256,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = transformers.Qwen2ForCausalLM(cfg).double()
    for module in model.modules():
        if type(module).__name__.endswith("RMSNorm"):
            module.forward = types.MethodType(_rms_norm_float64, module)
    model.eval()
    return model


class _NoKeep(torch.nn.Module):
    """The same model without ``logits_to_keep``: full logits path of token_logprobs."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, input_ids, attention_mask=None):
        return self.inner(input_ids=input_ids, attention_mask=attention_mask)


def _random_rollouts(vocab: int, seed: int) -> list[Rollout]:
    """Two groups of two rollouts; agents with 1-3 turns, a masked turn, template suffixes, one agent whose
    every turn is masked (not counted in N_i), old logprobs that put some ratios outside the clip range."""
    rng = random.Random(seed)

    def tok(n):
        return [rng.randrange(vocab) for _ in range(n)]

    rollouts = []
    rewards = [0.2, 0.9, 0.5, 0.5001]
    for i in range(4):
        trajs = {}
        n_agents = [1, 3, 2, 3][i]
        for a in range(n_agents):
            agent = "lead" if a == 0 else f"sub_{a - 1}"
            tr = Trajectory(f"ep{i}", agent, "lead" if a == 0 else "subagent")
            for t in range(rng.randint(1, 3)):
                n = rng.randint(1, 4)
                mask = [1] * n
                if rng.random() < 0.2:
                    mask = [0] * n
                lps = [-rng.uniform(2.0, 5.0) for _ in range(n)]
                tr.add_turn(Turn(tok(rng.randint(1, 3)), tok(n), lps, mask,
                                 suffix_ids=tok(1) if rng.random() < 0.5 else []))
            trajs[agent] = tr
        if i == 2:  # an agent with nothing trained
            trajs["sub_0"].set_mask(0)
        rollouts.append(Rollout(i // 2, rewards[i], trajs))
    return rollouts


def _naive_loss(model, rollouts, *, eps_low, eps_high, dual_clip, clamp, ref_model=None, kl_beta=0.0):
    """The formula, one token at a time: each token's logprob from its own prefix forward pass."""
    rewards = [r.reward for r in rollouts]
    groups = {}
    for i, r in enumerate(rollouts):
        groups.setdefault(r.group_id, []).append(i)
    adv = [0.0] * len(rollouts)
    for idx in groups.values():
        vals = [rewards[i] for i in idx]
        mean = sum(vals) / len(vals)
        if len(vals) > 1 and max(vals) != min(vals):
            std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))
            for i in idx:
                adv[i] = (rewards[i] - mean) / (std + EPS)
    b = len(rollouts)
    total = 0.0
    for i, ro in enumerate(rollouts):
        agents = [tr for tr in ro.trajectories.values() if tr.num_trained_tokens > 0]
        n_i = len(agents)
        rollout_sum = 0.0
        for tr in agents:
            ids = tr.full_ids
            agent_sum = 0.0
            for t, turn in enumerate(tr.turns):
                for j, (tokid, m) in enumerate(zip(turn.response_ids, turn.mask)):
                    if not m:
                        continue
                    p = turn.response_start + j
                    ctx = torch.tensor([ids[:p]])
                    new = torch.log_softmax(model(input_ids=ctx).logits[0, -1], -1)[tokid]
                    log_r = torch.clamp(new - turn.logprobs[j], -clamp, clamp)
                    r = torch.exp(log_r)
                    a = adv[i]
                    s = torch.minimum(r * a, torch.clamp(r, 1 - eps_low, 1 + eps_high) * a)
                    if dual_clip is not None and a < 0:
                        s = torch.maximum(s, torch.tensor(dual_clip * a, dtype=s.dtype))
                    term = -s
                    if ref_model is not None and kl_beta:
                        with torch.no_grad():
                            ref = torch.log_softmax(ref_model(input_ids=ctx).logits[0, -1], -1)[tokid]
                        d = ref - new
                        term = term + kl_beta * (torch.exp(d) - d - 1)
                    agent_sum = agent_sum + term
            rollout_sum = rollout_sum + agent_sum / tr.num_trained_tokens
        if n_i:
            total = total + rollout_sum / n_i
    return total / b


def _vectorised_loss(model, rollouts, *, micro_batch, ref_model=None, kl_beta=0.0, **kw):
    batch = build_batch(rollouts)
    losses = []
    stats = []
    for k in range(0, len(batch.samples), micro_batch):
        t = collate(batch.samples[k:k + micro_batch], pad_id=0, dtype=torch.float64)
        new, _ = token_logprobs(model, t["input_ids"], t["attention_mask"], loss_mask=t["loss_mask"])
        ref = None
        if ref_model is not None:
            with torch.no_grad():
                ref, _ = token_logprobs(ref_model, t["input_ids"], t["attention_mask"], loss_mask=t["loss_mask"])
        loss, st = grpo_loss(new, t["old_logprobs"], t["advantages"], t["weights"], ref_logprobs=ref,
                             kl_beta=kl_beta, **kw)
        losses.append(loss)
        stats.append(st)
    return sum(losses), stats


@pytest.mark.parametrize("micro_batch,wrap,kl", [(100, False, 0.0), (2, False, 0.0), (3, True, 0.0),
                                                 (1, False, 0.05)])
def test_loss_and_gradient_equal_naive_per_token_loop(micro_batch, wrap, kl):
    vocab = 48
    model = _tiny_lm(0, vocab)
    ref_model = _tiny_lm(1, vocab) if kl else None
    rollouts = _random_rollouts(vocab, seed=7)
    # old logprobs: near the model's own so that ratios straddle the clip range, with some far off
    base = build_batch(rollouts)
    clip = dict(eps_low=0.2, eps_high=0.28, dual_clip=3.0)
    rng = random.Random(11)
    with torch.no_grad():
        for ro in rollouts:
            for tr in ro.trajectories.values():
                ids = tr.full_ids
                for turn in tr.turns:
                    lps = []
                    for j, tokid in enumerate(turn.response_ids):
                        ctx = torch.tensor([ids[:turn.response_start + j]])
                        lp = float(torch.log_softmax(model(input_ids=ctx).logits[0, -1], -1)[tokid])
                        lps.append(lp + rng.choice([-0.6, -0.1, 0.0, 0.05, 0.3, 1.5]))
                    turn.logprobs = lps

    vec_model = _NoKeep(model) if wrap else model
    model.zero_grad()
    loss_vec, stats = _vectorised_loss(vec_model, rollouts, micro_batch=micro_batch, ref_model=ref_model,
                                       kl_beta=kl, log_ratio_clamp=20.0, **clip)
    loss_vec.backward()
    grads_vec = [p.grad.clone() for p in model.parameters()]

    model.zero_grad()
    loss_naive = _naive_loss(model, rollouts, clamp=20.0, ref_model=ref_model, kl_beta=kl, **clip)
    loss_naive.backward()
    grads_naive = [p.grad.clone() for p in model.parameters()]

    assert float(loss_vec.detach()) == pytest.approx(float(loss_naive.detach()), abs=1e-9, rel=1e-6)
    assert abs(float(loss_vec.detach())) > 1e-4  # a real, non-trivial loss
    for gv, gn in zip(grads_vec, grads_naive):
        assert torch.allclose(gv, gn, rtol=1e-9, atol=1e-12)
    assert sum(float(g.abs().sum()) for g in grads_vec) > 1e-4
    merged = merge_stats(stats)
    assert 0 < merged["clip_fraction"] < 1  # some tokens were clipped, some not
    assert merged["tokens"] == sum(s.num_tokens for s in base.samples)


def test_token_logprobs_with_and_without_logits_to_keep_agree():
    model = _tiny_lm(2)
    rng = random.Random(5)
    ids = torch.tensor([[rng.randrange(48) for _ in range(12)] for _ in range(3)])
    att = torch.ones_like(ids)
    att[1, 8:] = 0
    mask = torch.zeros(3, 12, dtype=torch.float64)
    mask[0, 3:6] = 1
    mask[1, 5:8] = 1
    mask[2, 11] = 1
    with torch.no_grad():
        full, ent_full = token_logprobs(_NoKeep(model), ids, att, with_entropy=True)
        kept, ent_kept = token_logprobs(model, ids, att, loss_mask=mask, with_entropy=True)
        ref = torch.log_softmax(model(input_ids=ids, attention_mask=att).logits, -1)
    want = ref[:, :-1].gather(-1, ids[:, 1:, None]).squeeze(-1)
    assert full[:, 0].abs().max() == 0 and torch.allclose(full[:, 1:], want, atol=1e-12)
    m = mask.bool()
    assert torch.allclose(kept[m], full[m], atol=1e-12)
    assert torch.allclose(ent_kept[m], ent_full[m], atol=1e-12)
    assert (ent_full[:, 1:] > 0).all()
    # a temperature divides the logits
    with torch.no_grad():
        hot, _ = token_logprobs(_NoKeep(model), ids, att, temperature=2.0)
        want2 = torch.log_softmax(model(input_ids=ids, attention_mask=att).logits / 2.0, -1)
    assert torch.allclose(hot[:, 1:], want2[:, :-1].gather(-1, ids[:, 1:, None]).squeeze(-1), atol=1e-12)
