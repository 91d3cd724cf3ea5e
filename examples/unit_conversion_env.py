"""A different tool environment on the same ``WideSeekEnv`` class: unit conversion with a unit table
and a calculator.

Run it::

    python examples/unit_conversion_env.py

It shows the three things a new tool environment consists of (see ``docs/new_tool_env.md``):

1. **Tools** implementing the protocol of ``wideseek_env/tools/base.py`` (a ``name``, a
   ``description``, a JSON-schema ``parameters`` and a batched ``call_many``): :class:`UnitTableTool`
   looks units up, :class:`CalculatorTool` evaluates arithmetic. Neither ever raises on agent input:
   bad arguments come back as ``"Error: ..."`` texts.
2. **Tasks**: ordinary :class:`wideseek_env.tasks.Task` records (query, required columns, key column,
   per-column metric, gold table). The converted values are compared with ``number_near``.
3. **A reward function** ``reward_fn(task, answer, record)``: here item F1 minus a small cost per
   tool call (:func:`efficient_reward`).

Roles map to tools with a dict: the subagents (and the single agent in single-agent mode) get the
unit table and the calculator; the lead gets no tools of its own, the env adds ``call_subagent``
for every role that may delegate. Everything else (dynamic subagents, limits, batching, parsing,
scoring, PettingZoo API) is the unchanged ``WideSeekEnv``.

:class:`UnitScriptedPolicy` plays an episode without an LLM through a plain
``act(observations, infos) -> actions`` function: the lead starts one subagent per quantity, each
subagent looks its unit up, multiplies, and reports; the lead assembles the table.

(The env's system prompts still speak of Wikipedia: they are module-level texts in
``wideseek_env.prompts``; the task query carries this environment's instructions.)
"""

from __future__ import annotations

import ast
import math
import operator
import re
import sys
from typing import Any, Sequence

from wideseek_env.config import EnvConfig
from wideseek_env.env import WideSeekEnv
from wideseek_env.table.schema import ColumnSpec, Task
from wideseek_env.tools.base import error_text
from wideseek_env.tools.parsing import render_tool_call

# ------------------------------------------------------------------------------------------ tools

#: unit -> (factor to the SI unit, SI unit, dimension)
UNITS: dict[str, tuple[float, str, str]] = {
    "metre": (1.0, "metre", "length"),
    "kilometre": (1000.0, "metre", "length"),
    "mile": (1609.344, "metre", "length"),
    "yard": (0.9144, "metre", "length"),
    "foot": (0.3048, "metre", "length"),
    "inch": (0.0254, "metre", "length"),
    "nautical_mile": (1852.0, "metre", "length"),
    "kilogram": (1.0, "kilogram", "mass"),
    "pound": (0.45359237, "kilogram", "mass"),
    "ounce": (0.028349523125, "kilogram", "mass"),
    "stone": (6.35029318, "kilogram", "mass"),
    "litre": (1.0, "litre", "volume"),
    "us_gallon": (3.785411784, "litre", "volume"),
    "imperial_gallon": (4.54609, "litre", "volume"),
    "us_pint": (0.473176473, "litre", "volume"),
}


class UnitTableTool:
    """``unit_table``: ``{"units": ["mile", ...]}`` -> one line per unit with its SI factor."""

    name = "unit_table"
    description = (
        "Look up units of length, mass and volume. For each unit, returns how many SI units "
        "(metre, kilogram, litre) one of it is."
    )
    parameters = {
        "type": "object",
        "properties": {
            "units": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Unit names, e.g. mile, pound, us_gallon (at most 10).",
            }
        },
        "required": ["units"],
    }

    def call_many(self, arguments: Sequence[Any]) -> list[str]:
        return [self._one(a) for a in arguments]

    def _one(self, arguments: Any) -> str:
        units = arguments.get("units") if isinstance(arguments, dict) else None
        if isinstance(units, str):
            units = [units]
        if not isinstance(units, list) or not units:
            return error_text('expected {"units": ["mile", ...]}')
        lines = []
        for unit in units[:10]:
            key = str(unit).strip().lower().replace(" ", "_").rstrip("s") if isinstance(unit, str) else ""
            key = key if key in UNITS else str(unit).strip().lower().replace(" ", "_")
            if key not in UNITS:
                lines.append(error_text(f"unknown unit {unit!r}; known units: {', '.join(sorted(UNITS))}"))
                continue
            factor, si, dim = UNITS[key]
            lines.append(f"1 {key} = {factor!r} {si} ({dim})")
        return "\n".join(lines)


_OPS = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.Pow: operator.pow, ast.USub: operator.neg, ast.UAdd: operator.pos,
}


def safe_eval(expression: str) -> float:
    """Evaluate + - * / ** and parentheses over numbers (no names, no calls); raises ValueError."""
    if len(expression) > 200:
        raise ValueError("the expression is longer than 200 characters")

    def ev(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return float(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            left, right = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Pow) and abs(right) > 100:
                raise ValueError("exponent too large")
            return _OPS[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.operand))
        raise ValueError(f"unsupported syntax: {type(node).__name__}")

    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"invalid expression ({exc.msg})") from None
    try:
        value = ev(tree)
    except ZeroDivisionError:
        raise ValueError("division by zero") from None
    except OverflowError:
        raise ValueError("the result is too large") from None
    if not math.isfinite(value):
        raise ValueError("the result is not a finite number")
    return value


class CalculatorTool:
    """``calculator``: ``{"expression": "3 * 1609.344"}`` -> the value."""

    name = "calculator"
    description = "Evaluate an arithmetic expression with + - * / ** and parentheses."
    parameters = {
        "type": "object",
        "properties": {"expression": {"type": "string", "description": "e.g. 3 * 1609.344"}},
        "required": ["expression"],
    }

    def call_many(self, arguments: Sequence[Any]) -> list[str]:
        out = []
        for a in arguments:
            expr = a.get("expression") if isinstance(a, dict) else None
            if not isinstance(expr, str) or not expr.strip():
                out.append(error_text('expected {"expression": "3 * 1609.344"}'))
                continue
            try:
                out.append(f"{expr.strip()} = {safe_eval(expr):.6g}")
            except ValueError as exc:
                out.append(error_text(str(exc)))
        return out


# ------------------------------------------------------------------------------------------ tasks

_TARGET = {"length": ("metre", "Metres"), "mass": ("kilogram", "Kilograms"), "volume": ("litre", "Litres")}

_SPECS = [
    ("units-length", "length", [(3, "mile"), (12, "foot"), (100, "yard"), (5, "nautical_mile")]),
    ("units-mass", "mass", [(10, "pound"), (4, "ounce"), (2, "stone")]),
    ("units-volume", "volume", [(2, "us_gallon"), (3, "imperial_gallon"), (6, "us_pint")]),
]


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def make_tasks() -> list[Task]:
    """Three conversion tasks: one row per quantity, the value compared within 0.1%."""
    tasks = []
    for task_id, dim, items in _SPECS:
        si, column = _TARGET[dim]
        quantities = [f"{n} {unit}" for n, unit in items]
        query = (
            f"Convert each of these quantities to {si}s: {'; '.join(quantities)}.\n\n"
            f"Output a single Markdown table with exactly these columns: Quantity, {column}.\n"
            "Write each quantity exactly as given. The output format is ```markdown\n{data_content}\n```."
        )
        key = "quantity"
        value_col = column.lower()
        gold = [{key: q, value_col: _fmt(n * UNITS[u][0])} for q, (n, u) in zip(quantities, items)]
        tasks.append(
            Task(
                id=task_id,
                query=query,
                language="en",
                required_columns=[key, value_col],
                unique_columns=[key],
                columns={
                    key: ColumnSpec(key, "norm_str", "exact_match"),
                    value_col: ColumnSpec(value_col, "extract_number", "number_near", tolerance=0.001),
                },
                gold=gold,
                display_columns=["Quantity", column],
                provenance={"source": "examples/unit_conversion_env.py"},
            )
        )
    return tasks


# ----------------------------------------------------------------------------------------- reward


def efficient_reward(task: Any, answer: str, record: Any) -> float:
    """Item F1 minus 0.01 per tool call of the whole team (not below 0); 0 for a truncated episode."""
    if record.truncated or record.score is None:
        return 0.0
    calls = sum(sum(a.tool_calls.values()) for a in record.agents.values())
    return max(0.0, float(record.score.item_f1) - 0.01 * calls)


# -------------------------------------------------------------------------------------------- env


def make_env(config: EnvConfig | None = None, **kwargs: Any) -> WideSeekEnv:
    """The unit-conversion env: WideSeekEnv with its own tools per role, tasks and reward."""
    tools = [UnitTableTool(), CalculatorTool()]
    config = config or EnvConfig(lead_max_turns=4, subagent_max_turns=5, max_subagents_per_call=5)
    return WideSeekEnv(
        corpus=None,  # no Wikipedia corpus: the tools below replace search and access
        tasks=make_tasks(),
        config=config,
        tools={"subagent": tools, "agent": tools},  # the lead gets call_subagent from the env
        reward_fn=efficient_reward,
        **kwargs,
    )


# -------------------------------------------------------------------------------- scripted policy


class UnitScriptedPolicy:
    """Plays the env without an LLM: ``act(observations, infos) -> {agent: text}``."""

    def __init__(self) -> None:
        self.state: dict[str, dict[str, Any]] = {}

    def reset(self) -> None:
        self.state = {}

    def act(self, observations: dict[str, Any], infos: dict[str, Any]) -> dict[str, str]:
        actions = {}
        for agent, info in infos.items():
            if info.get("acting"):
                actions[agent] = self._act_one(agent, observations[agent]["text"], info)
        return actions

    def _act_one(self, agent: str, text: str, info: dict[str, Any]) -> str:
        st = self.state.setdefault(agent, {"step": 0})
        st["step"] += 1
        tool_results = [m["content"] for m in info["messages"] if m["role"] == "tool"]
        if info["role"] == "lead":
            if st["step"] == 1:
                m = re.search(r"to (\w+)s: (.+?)\.\n", text)
                st["si"], st["quantities"] = m.group(1), m.group(2).split("; ")
                st["column"] = re.search(r"columns: Quantity, (\w+)\.", text).group(1)
                prompts = [{"prompt": f"Convert {q} to {st['si']}s. Reply with the number only."} for q in st["quantities"]]
                return render_tool_call("call_subagent", {"sub_agents": prompts})
            reports = re.findall(r"# Result\n(.*?)(?:\n\n# Subtask|\n\nYour next answer|\Z)", tool_results[0], re.S)
            rows = [f"| {q} | {r.strip()} |" for q, r in zip(st["quantities"], reports)]
            table = "\n".join([f"| Quantity | {st['column']} |", "| --- | --- |", *rows])
            return f"```markdown\n{table}\n```"
        # a subagent: look the unit up, multiply, report
        if st["step"] == 1:
            m = re.search(r"Convert ([\d.]+) (\w+) to", text)
            st["n"], st["unit"] = m.group(1), m.group(2)
            return render_tool_call("unit_table", {"units": [st["unit"]]})
        if st["step"] == 2:
            factor = re.search(r"= ([\d.eE+-]+) ", tool_results[0]).group(1)
            return render_tool_call("calculator", {"expression": f"{st['n']} * {factor}"})
        return re.search(r"= ([\d.eE+-]+)", tool_results[0]).group(1)


def play_episode(env: WideSeekEnv, policy: UnitScriptedPolicy, task_id: str) -> dict[str, Any]:
    """One episode of ``task_id``; returns the final metrics (reward, item_f1, tool calls, ...)."""
    policy.reset()
    obs, infos = env.reset(options={"task_id": task_id})
    while env.agents:
        obs, rewards, terms, truncs, infos = env.step(policy.act(obs, infos))
    return env.last_metrics


def main() -> int:
    from pettingzoo.test import parallel_api_test

    env = make_env(render_mode="ansi")
    parallel_api_test(make_env(), num_cycles=50)
    print("parallel_api_test: passed")
    policy = UnitScriptedPolicy()
    for task in env.tasks:
        m = play_episode(env, policy, task.id)
        print(env.render())
        print(
            f"--> {task.id}: item F1 {m['item_f1']:.3f}, reward {m['reward']:.3f}, "
            f"tool calls {m['tool_calls']}, subagents {m['subagents_spawned']}\n"
        )
    env.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
