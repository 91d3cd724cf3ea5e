"""Run whole WideSeek episodes through tianshou 2.0.1's ``Collector`` with a shared text policy.

Needs the ``[tianshou]`` extra (``pip install 'wideseek-env[tianshou]'``: tianshou 2.0.1, which
pulls torch, numba, pandas, h5py, matplotlib and tensorboard). Usage::

    from tianshou.data import Collector
    from tianshou.env import DummyVectorEnv
    from wideseek_env.wrappers.tianshou import TextPolicy, make_tianshou_env
    from agents.baselines import ScriptedBaseline

    venv = DummyVectorEnv([lambda i=i: make_tianshou_env(lambda: WideSeekEnv(corpus, tasks), env_id=f"env{i}")
                           for i in range(4)])
    collector = Collector(TextPolicy(ScriptedBaseline()), venv)
    collector.reset()
    stats = collector.collect(n_episode=8)
    metrics = [m for ms in venv.get_env_attr("episode_metrics") for m in ms]  # item_f1, reward, ...

The stack is ``PettingZooEnv(parallel_to_aec(TianshouParallelEnv(WideSeekEnv(...))))``:

- :class:`TianshouParallelEnv` is the PettingZoo parallel env as tianshou can take it: every agent
  has the same stand-in action space ``Discrete(1)`` (the real action is a string, see below) and
  the same observation space ``Dict({"text": UnicodeText})``; ``infos[a]`` are flat, with the
  structured parts as JSON strings (``messages_json``, ``tools_json``, ``metrics_json`` on the last
  step) plus ``agent_id``, ``env_id``, ``episode_id``, ``acting``, ``role``, ``turn``, so that
  tianshou's ``Batch`` can stack them (nested lists of dicts of varying keys would not stack).
  Finished episodes' metrics are appended to ``episode_metrics``.
- ``parallel_to_aec`` turns it into an AEC env: the agents take turns one at a time, and the parallel
  env steps when the last live agent has acted. Agents that do not act in that parallel step
  (``acting`` false: the lead while its subagents run, finished subagents) still get their AEC turn;
  :class:`TextPolicy` answers ``""`` for them and the env ignores it.
- tianshou's ``PettingZooEnv`` then gives the Collector one observation
  ``{"agent_id": ..., "obs": {"text": ...}, "mask": [True]}`` per AEC step and the rewards of all
  ``possible_agents`` as a list. The episode ends when the env's agents terminate, which they all do
  together when the lead answers: each agent's entry of the reward vector then holds the shared
  episode reward (0 for pool ids that were never spawned).

:class:`TextPolicy` is a tianshou ``Policy`` over ``Discrete(1)`` whose ``forward`` returns an object
array of strings. It calls a shared text policy once per Collector step for all acting agents of all
envs in the batch (an ``agents.policy.Policy`` such as ``ScriptedBaseline`` or an LLM policy, or a
plain function from :class:`TextRequest` lists to texts).

What tianshou cannot do with text actions (tianshou 2.0.1)
    - A tianshou ``Policy`` accepts only ``Discrete``/``MultiDiscrete``/``MultiBinary``/``Box`` action
      spaces: ``Text`` is rejected, hence the ``Discrete(1)`` stand-in. ``action_space.sample()`` (the
      Collector's ``random=True``) gives ``0``, which the env reads as the text ``"0"``, so random
      collection does not explore text; warm-up with random actions is meaningless.
    - No algorithm of tianshou (DQN, PPO, ...) can train a text policy: they expect tensors of logits
      or continuous actions, and their networks take numeric observations. The replay buffer does
      store the texts (object arrays), so tianshou can *collect* and *store* episodes, but learning
      from them needs a token-level trainer (``agents.grpo``), not a tianshou algorithm.
    - ``PettingZooEnv`` steps one agent at a time, so the Collector batches only across envs, never
      across the parallel agents of one env: width is not batched here (use the rollout runner of
      ``agents`` or :meth:`~wideseek_env.env.WideSeekEnv.step_collect` for that). Every live agent,
      acting or not, costs one Collector step.
    - ``PettingZooEnv`` needs identical spaces for all agents and ends the episode as soon as the
      agent it reports has terminated; both hold here (shared spaces, all agents end together).
    - Rewards come as a vector over ``possible_agents`` (length 1 + pool size); tianshou's episode
      return statistics are over that vector.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from gymnasium.spaces import Discrete
from pettingzoo import ParallelEnv

from wideseek_env.errors import require

require("tianshou", "tianshou")

from pettingzoo.utils.conversions import parallel_to_aec  # noqa: E402
from tianshou.algorithm.algorithm_base import Policy as _TianshouPolicy  # noqa: E402
from tianshou.data import Batch  # noqa: E402
from tianshou.env import PettingZooEnv  # noqa: E402

__all__ = [
    "STANDIN_ACTION_SPACE",
    "TextRequest",
    "TianshouParallelEnv",
    "TextPolicy",
    "WideSeekPettingZooEnv",
    "make_tianshou_env",
]

#: The action space tianshou sees for every agent (the real action is the assistant text).
STANDIN_ACTION_SPACE = Discrete(1)


@dataclass
class TextRequest:
    """What a text policy gets for one acting agent: the same fields as ``agents.policy.AgentRequest``."""

    episode_id: str
    agent_id: str
    new_messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] = field(default_factory=list)
    role: str = "default"


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Mapping):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (np.integer, np.floating, np.bool_)):
        return obj.item()
    return obj


class TianshouParallelEnv(ParallelEnv):
    """A WideSeek parallel env as tianshou can take it (see the module docstring).

    ``env``: a :class:`~wideseek_env.env.WideSeekEnv` (or any env of the same contract). ``env_id``:
    a name unique among the envs of one vector env (it makes episode ids unique).
    """

    def __init__(self, env: Any, env_id: str = "env0") -> None:
        self.env = env
        self.env_id = str(env_id)
        self.metadata = dict(getattr(env, "metadata", {}))
        self.render_mode = getattr(env, "render_mode", None)
        self.possible_agents = list(env.possible_agents)
        self.agents: list[str] = []
        self._episode = 0
        self.episode_id = ""
        #: Final metrics of every finished episode (``env.last_metrics`` plus ``episode_id``).
        self.episode_metrics: list[dict[str, Any]] = []

    def observation_space(self, agent: str):
        return self.env.observation_space(agent)

    def action_space(self, agent: str):
        return STANDIN_ACTION_SPACE

    def _flat_info(self, agent: str, info: Mapping[str, Any]) -> dict[str, Any]:
        out = {
            "agent_id": agent,
            "env_id": self.env_id,
            "episode_id": self.episode_id,
            "acting": bool(info.get("acting", False)),
            "role": str(info.get("role", "")),
            "turn": int(info.get("turn", 0) or 0),
            "messages_json": json.dumps(info.get("messages", []), ensure_ascii=False),
            "tools_json": json.dumps(info.get("tools", []), ensure_ascii=False),
        }
        if "metrics" in info:
            out["metrics_json"] = json.dumps(_json_safe(info["metrics"]), ensure_ascii=False)
        return out

    def reset(self, seed: int | None = None, options: dict | None = None):
        self._episode += 1
        self.episode_id = f"{self.env_id}/{self._episode}"
        obs, infos = self.env.reset(seed=seed, options=options)
        self.agents = list(self.env.agents)
        return obs, {a: self._flat_info(a, i) for a, i in infos.items()}

    def step(self, actions: Mapping[str, Any]):
        texts = {}
        for a, act in (actions or {}).items():
            if isinstance(act, np.ndarray):
                act = act.item() if act.shape == () else (act.ravel()[0] if act.size else "")
            if isinstance(act, (int, np.integer)) and not isinstance(act, bool):
                act = str(int(act))  # the stand-in space's sample (0)
            texts[a] = act
        obs, rewards, terms, truncs, infos = self.env.step(texts)
        self.agents = list(self.env.agents)
        if not self.agents and getattr(self.env, "last_metrics", None) is not None:
            self.episode_metrics.append({**self.env.last_metrics, "episode_id": self.episode_id})
        return obs, rewards, terms, truncs, {a: self._flat_info(a, i) for a, i in infos.items()}

    def render(self):
        return self.env.render()

    def close(self) -> None:
        self.env.close()

    def state(self):
        raise NotImplementedError("WideSeekEnv has no global state array")


class WideSeekPettingZooEnv(PettingZooEnv):
    """tianshou's ``PettingZooEnv`` over ``parallel_to_aec(TianshouParallelEnv(env))``, plus
    ``episode_metrics``: the final metrics of the episodes this env finished (so that
    ``vector_env.get_env_attr("episode_metrics")`` collects them, also from subprocess workers)."""

    @property
    def parallel_env(self) -> TianshouParallelEnv:
        return self.env.unwrapped

    @property
    def episode_metrics(self) -> list[dict[str, Any]]:
        return list(self.parallel_env.episode_metrics)


def make_tianshou_env(env: Any, env_id: str = "env0") -> WideSeekPettingZooEnv:
    """``PettingZooEnv(parallel_to_aec(TianshouParallelEnv(env)))``. ``env``: a WideSeekEnv or a
    zero-argument factory of one (so that vector-env workers can build their own)."""
    if callable(env) and not hasattr(env, "possible_agents"):
        env = env()
    return WideSeekPettingZooEnv(parallel_to_aec(TianshouParallelEnv(env, env_id)))


TextFn = Callable[[list[TextRequest]], Sequence[Any]]


def _texts(responses: Sequence[Any]) -> list[str]:
    out = []
    for r in responses:
        text = getattr(r, "text", r)
        out.append(text if isinstance(text, str) else ("" if text is None else str(text)))
    return out


class TextPolicy(_TianshouPolicy):
    """A tianshou ``Policy`` that returns the texts of a shared text policy as an object array.

    ``text_policy``: an object with ``act(list[TextRequest]) -> list`` of responses with ``.text``
    (an ``agents.policy.Policy`` such as ``ScriptedBaseline``) or of strings, or a plain callable
    with that signature. It is called once per ``forward`` (one Collector step) with the requests of
    all acting agents in the batch. Its ``end_episode(episode_id)`` (if any) is called when an env
    starts its next episode.
    """

    def __init__(self, text_policy: Any, action_space: Any = STANDIN_ACTION_SPACE) -> None:
        super().__init__(action_space=action_space, action_bound_method=None)
        self.text_policy = text_policy
        self._episodes: dict[str, str] = {}  # env_id -> current episode id

    @staticmethod
    def _compile() -> None:
        """tianshou's ``Policy.__init__`` JIT-compiles its numba return estimators (GAE, n-step) as a
        warm-up, which takes seconds; a text policy never uses them, so the warm-up is skipped."""

    def _call_text_policy(self, requests: list[TextRequest]) -> list[str]:
        if hasattr(self.text_policy, "act"):
            texts = _texts(self.text_policy.act(requests))
        else:
            texts = _texts(self.text_policy(requests))
        if len(texts) != len(requests):
            raise RuntimeError(f"the text policy returned {len(texts)} texts for {len(requests)} requests")
        return texts

    def _track(self, env_id: str, episode_id: str) -> None:
        old = self._episodes.get(env_id)
        if old != episode_id:
            if old is not None and hasattr(self.text_policy, "end_episode"):
                self.text_policy.end_episode(old)
            self._episodes[env_id] = episode_id

    def texts_for(self, infos: Sequence[Any]) -> list[str]:
        """The action text of every row (``""`` for agents that do not act)."""
        texts = [""] * len(infos)
        requests: list[TextRequest] = []
        slots: list[int] = []
        for i, info in enumerate(infos):
            get = info.get if hasattr(info, "get") else (lambda k, d=None, _i=info: getattr(_i, k, d))
            env_id, episode_id = str(get("env_id", "")), str(get("episode_id", ""))
            if episode_id:
                self._track(env_id, episode_id)
            if not bool(get("acting", False)):
                continue
            requests.append(
                TextRequest(
                    episode_id=episode_id,
                    agent_id=str(get("agent_id", "")),
                    new_messages=json.loads(get("messages_json", "[]") or "[]"),
                    tools=json.loads(get("tools_json", "[]") or "[]"),
                    role=str(get("role", "default")),
                )
            )
            slots.append(i)
        if requests:
            for i, text in zip(slots, self._call_text_policy(requests)):
                texts[i] = text
        return texts

    def forward(self, batch: Any, state: Any = None, **kwargs: Any) -> Any:
        n = len(batch.obs)
        info = batch.get("info", None)
        if info is None or not len(info.keys()):
            infos: list[Any] = [{}] * n
        else:
            infos = [info[i] for i in range(n)]
        act = np.empty(n, dtype=object)
        act[:] = self.texts_for(infos)
        return Batch(act=act, state=state)

    def map_action(self, act: Any) -> np.ndarray:  # the texts go to the env unchanged
        return np.asarray(act, dtype=object)

    def map_action_inverse(self, act: Any) -> np.ndarray:
        return np.asarray(act, dtype=object)
