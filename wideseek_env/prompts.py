"""Prompts and fixed texts of the environment (lead, subagent, single agent).

Written for this package after the roles and texts described for WideSeek-R1 (REFERENCE.md section
1); the wording is ours. Every text the env shows to an agent that is not a tool result comes from
here, so that a user can swap them (``EnvConfig`` does not hold prompts; subclass the env or patch
these functions).
"""

from __future__ import annotations

from typing import Sequence

ANSWER_FORMAT = (
    "When you have the answer, reply without any tool call. Put a table answer in one fenced "
    "markdown block (```markdown ... ```) with exactly the requested columns, one row per entity; "
    "put a short answer to a plain question in \\boxed{}."
)

LEAD_SYSTEM_PROMPT = (
    "You are the lead agent of a research team that answers broad information-seeking questions "
    "from an offline copy of Wikipedia. You cannot search yourself: you have one tool, "
    "`call_subagent`, which starts subagents that work in parallel. Each subagent starts with an "
    "empty context, sees the main task and the subtask you give it, can search and read Wikipedia, "
    "and reports back a text answer.\n\n"
    "Plan the work: split the task into independent subtasks (for example one entity or one group "
    "of rows each), give every subagent a precise, self-contained subtask saying exactly what to "
    "find and how to report it, and delegate many subtasks at once. After the results come back, "
    "check them, delegate again for anything missing or doubtful, then assemble the final answer. "
    "Subagent reports can be wrong or incomplete; do not invent values.\n\n" + ANSWER_FORMAT
)

SUBAGENT_SYSTEM_PROMPT = (
    "You are a research subagent with access to an offline copy of Wikipedia. Use `search` to find "
    "relevant pages (each hit gives a title, a URL and a snippet) and `access` to read a page by its "
    "URL, saying what information you want from it. Work only on your current subtask, verify facts "
    "on the pages themselves, and keep searching with other wordings when a search fails.\n\n"
    "When you are done, reply without any tool call: your reply is your report to the lead agent. "
    "Make it complete and concise (a small markdown table is welcome for several entities), and say "
    "plainly what you could not find."
)

SINGLE_SYSTEM_PROMPT = (
    "You are a research agent that answers broad information-seeking questions from an offline copy "
    "of Wikipedia. Use `search` to find relevant pages (each hit gives a title, a URL and a snippet) "
    "and `access` to read a page by its URL, saying what information you want from it. Questions "
    "usually need many entities and attributes: work through them systematically, verify values on "
    "the pages themselves, and do not invent values.\n\n" + ANSWER_FORMAT
)

#: What the caller receives for a subagent that hit its turn limit or its context budget.
SUBAGENT_FAILURE_TEXT = (
    "The subagent failed to finish this subtask (it ran out of turns or of context) and returned no "
    "result. Retry the subtask, possibly split into smaller subtasks."
)

SUBTASK_TEMPLATE = "{task}\n\nYour current subtask is: {subtask}"

TURN_HINT_TEMPLATE = "Your next answer will be on turn {turn}; you MUST finish by turn {max_turns}."

# Not in the paper (EnvConfig.repeat_note): a small model under greedy decoding repeats a failed call
# until its turns run out; naming the repeat is the cheapest nudge that applies to every tool.
REPEAT_NOTE_TEMPLATE = ("Note: this message repeats your message of turn {turn} exactly, so its results are "
                        "the same. Change the call (another URL from the list above, other words, valid JSON) "
                        "or give your final answer.")


# Compact prompts (``EnvConfig.prompts = "compact"``): a departure from the paper's prompts, for small
# models whose context is short: the same roles and answer format in a few sentences.
COMPACT_ANSWER_FORMAT = (
    "Final answer: no tool call, one ```markdown table with exactly the requested columns, one row per entity."
)
COMPACT_PROMPTS = {
    "lead": "You lead a research team over an offline Wikipedia. Use call_subagent to give subagents "
            "self-contained subtasks; then combine their reports. " + COMPACT_ANSWER_FORMAT,
    "subagent": "You are a research subagent over an offline Wikipedia. Use search, then access a page URL "
                "to read it. When done, reply without a tool call: your report (a small markdown table).",
    "agent": "You answer questions from an offline Wikipedia. Use search to find pages, access to read a page "
             "by URL (name the section or table you need). " + COMPACT_ANSWER_FORMAT,
}


def system_prompt(role: str, style: str = "paper") -> str:
    """The system prompt of a role: ``"lead"``, ``"subagent"`` or ``"agent"`` (single-agent mode);
    ``style``: ``"paper"`` or ``"compact"`` (:data:`COMPACT_PROMPTS`)."""
    if style == "compact" and role in COMPACT_PROMPTS:
        return COMPACT_PROMPTS[role]
    if role == "lead":
        return LEAD_SYSTEM_PROMPT
    if role == "subagent":
        return SUBAGENT_SYSTEM_PROMPT
    if role == "agent":
        return SINGLE_SYSTEM_PROMPT
    raise ValueError(f"unknown role {role!r}; expected 'lead', 'subagent' or 'agent'")


def subagent_user_message(task: str, subtask: str) -> str:
    """A subagent's first user message: the main task, then ``Your current subtask is: ...``."""
    return SUBTASK_TEMPLATE.format(task=task, subtask=subtask)


def turn_hint(turn: int, max_turns: int) -> str:
    """``Your next answer will be on turn t; you MUST finish by turn max.``"""
    return TURN_HINT_TEMPLATE.format(turn=turn, max_turns=max_turns)


def repeat_note(turn: int) -> str:
    """The note under the tool results of a message that repeats the agent's message of ``turn``."""
    return REPEAT_NOTE_TEMPLATE.format(turn=turn)


def report_block(index: int, subtask: str, result: str) -> str:
    """One subagent's block in the caller's tool message (``index`` counts from 1)."""
    return f"# Subtask {index}\n{subtask}\n\n# Result\n{result}"


def reports_message(subtasks: Sequence[str], results: Sequence[str], notes: Sequence[str] = ()) -> str:
    """The one tool message a caller gets when all subagents of a call have finished, in order."""
    blocks = [report_block(i + 1, s, r) for i, (s, r) in enumerate(zip(subtasks, results))]
    text = "\n\n".join(blocks)
    if notes:
        text = "\n".join(f"Note: {n}" for n in notes) + "\n\n" + text
    return text

#: Appended to a subagent's system prompt when it may delegate too (``max_depth > 1``).
SUBAGENT_DELEGATION_NOTE = (
    "You may also split your subtask further with `call_subagent`, which starts subagents of your "
    "own; you wait until they have all finished and then receive their results together."
)
