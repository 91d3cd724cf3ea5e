"""The Hermes tool-call parser, final-answer extraction, rendering and call_subagent arguments."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wideseek_env.tools.parsing import (
    HermesParser,
    ParsedMessage,
    ToolCall,
    ToolCallParser,
    final_answer_text,
    render_assistant,
    render_messages,
    render_tool_call,
    render_tool_calls,
    render_tool_result,
)
from wideseek_env.tools.subagent import (
    SUBAGENT_TOOL_NAMES,
    SubagentRequest,
    SubagentTool,
    limit_to_budget,
    parse_subagent_arguments,
)

from fuzz_settings import examples

P = HermesParser()


def block(body: str) -> str:
    return f"<tool_call>{body}</tool_call>"


def test_parser_satisfies_protocol():
    assert isinstance(P, ToolCallParser)


def test_single_call_round_trip():
    text = render_tool_call("search", {"queries": [{"query": "Jim Ryun", "count": 3}]})
    msg = P.parse(text)
    assert msg.tool_calls == (ToolCall("call_0", "search", {"queries": [{"query": "Jim Ryun", "count": 3}]}),)
    assert msg.errors == () and msg.content == "" and not msg.is_final


def test_several_calls_in_order_with_text_around():
    text = "I will look.\n" + render_tool_calls([("search", {"q": 1}), ("access", {"urls": []})]) + "\nthen"
    msg = P.parse(text, id_prefix="lead_t1_c")
    assert [c.name for c in msg.tool_calls] == ["search", "access"]
    assert [c.id for c in msg.tool_calls] == ["lead_t1_c0", "lead_t1_c1"]
    assert msg.content.startswith("I will look.") and msg.content.endswith("then")


def test_no_tool_call_is_final():
    msg = P.parse("<think>hmm</think>\n| a | b |\n|---|---|\n| 1 | 2 |")
    assert msg.is_final and msg.reasoning == "hmm"
    assert msg.content.startswith("| a | b |")


def test_calls_inside_think_are_ignored():
    text = "<think>maybe " + block('{"name": "search", "arguments": {}}') + "</think>The answer."
    msg = P.parse(text)
    assert msg.is_final and msg.content == "The answer."
    assert "search" in msg.reasoning


def test_qwen3_style_think_without_opening_tag():
    text = "reasoning " + block('{"name": "x"}') + "</think>\n" + block('{"name": "search"}')
    msg = P.parse(text)
    assert [c.name for c in msg.tool_calls] == ["search"]
    assert msg.tool_calls[0].arguments == {}


def test_arguments_as_json_string_and_parameters_alias():
    msg = P.parse(block(json.dumps({"name": "a", "arguments": json.dumps({"x": 1})})) + block('{"name": "b", "parameters": {"y": 2}}'))
    assert [(c.name, c.arguments) for c in msg.tool_calls] == [("a", {"x": 1}), ("b", {"y": 2})]


@pytest.mark.parametrize(
    "body, fragment",
    [
        ('{"name": "search", "arguments": {"queries": [}', "invalid JSON"),
        ("", "empty"),
        ('["search"]', "expected a JSON object"),
        ('{"arguments": {}}', 'no "name"'),
        ('{"name": "", "arguments": {}}', 'no "name"'),
        ('{"name": 3}', 'no "name"'),
        ('{"name": "search", "arguments": [1, 2]}', "must be a JSON object"),
        ('{"name": "search", "arguments": "not json"}', "not valid JSON"),
        ('{"name": "search", "arguments": "[1]"}', "must be a JSON object"),
        ('{"name": "s"} trailing', "invalid JSON"),
    ],
)
def test_each_malformed_form_gives_a_readable_error(body, fragment):
    msg = P.parse("text " + block(body))
    assert msg.tool_calls == ()
    assert len(msg.errors) == 1 and fragment in msg.errors[0]
    assert msg.errors[0].startswith("tool call 1:")
    assert not msg.is_final  # tool syntax present: not an answer


def test_unclosed_and_stray_tags():
    msg = P.parse('<tool_call>{"name": "search", "arguments": {}}')
    assert msg.tool_calls == () and "never closed" in msg.errors[0]
    msg = P.parse('answer </tool_call> more')
    assert msg.tool_calls == () and "without a matching" in msg.errors[0]
    # an unclosed block followed by a good one: one error, one call
    msg = P.parse('<tool_call>{"name": "a"}' + block('{"name": "b"}'))
    assert [c.name for c in msg.tool_calls] == ["b"] and len(msg.errors) == 1


def test_accept_unclosed_final_option():
    p = HermesParser(accept_unclosed_final=True)
    msg = p.parse('<tool_call>{"name": "search", "arguments": {"q": 1}}\n')
    assert [c.name for c in msg.tool_calls] == ["search"] and msg.errors == ()


def test_nested_tags():
    msg = P.parse('<tool_call><tool_call>{"name": "a"}</tool_call></tool_call>')
    assert [c.name for c in msg.tool_calls] == ["a"]
    assert len(msg.errors) == 2  # the outer unclosed opening and the stray closing


def test_call_limit_counts_dropped_blocks():
    p = HermesParser(max_calls=2)
    msg = p.parse("".join(block(f'{{"name": "t{i}"}}') for i in range(5)))
    assert [c.name for c in msg.tool_calls] == ["t0", "t1"] and msg.dropped_calls == 3
    assert msg.has_tool_syntax


def test_first_only_mode_ignores_later_blocks_silently():
    p = HermesParser(first_only=True)
    msg = p.parse(block('{"name": "a"}') + block("{bad") + "</tool_call>")
    assert [c.name for c in msg.tool_calls] == ["a"] and msg.errors == () and msg.dropped_calls == 0
    msg = p.parse(block("{bad") + block('{"name": "a"}'))
    assert msg.tool_calls == () and len(msg.errors) == 1


def test_error_count_is_capped():
    p = HermesParser(max_calls=None, max_errors=3)
    msg = p.parse(block("{") * 10)
    assert len(msg.errors) == 4 and msg.errors[-1] == "... and 7 more malformed tool call(s)"


def test_deeply_nested_json_does_not_raise():
    msg = P.parse(block("[" * 200_000))
    assert msg.errors and "nested too deeply" in msg.errors[0] or "invalid JSON" in msg.errors[0]
    msg = P.parse(block('{"name": "a", "arguments": "' + "[" * 100_000 + '"}'))
    assert msg.errors


def test_huge_inputs_are_linear():
    for text in ("<tool_call>" * 200_000, "</tool_call>" * 200_000, "x" * 5_000_000,
                 "<tool_call>" + "a" * 2_000_000, ("<tool_call></tool_call>" * 100_000)):
        t0 = time.perf_counter()
        P.parse(text)
        assert time.perf_counter() - t0 < 2.0


def test_non_string_input_never_raises():
    for value in (None, 3, b"bytes", ["list"]):
        assert isinstance(P.parse(value), ParsedMessage)


@settings(max_examples=examples(300), deadline=5_000)
@given(st.text(alphabet=st.sampled_from(list('<>/{}[]":,tool_call think name arguments \\x')), max_size=300))
def test_fuzz_never_raises(text):
    msg = P.parse(text)
    assert isinstance(msg, ParsedMessage)
    assert len(msg.tool_calls) <= 5
    assert all(isinstance(c.arguments, dict) for c in msg.tool_calls)


@settings(max_examples=examples(200), deadline=5_000)
@given(st.text(max_size=200), st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3))
def test_render_then_parse_round_trips(prefix, args):
    prefix = prefix.replace("<", "(").replace("</think>", "")
    msg = P.parse(prefix + "\n" + render_tool_call("tool", args))
    assert msg.tool_calls == (ToolCall("call_0", "tool", args),)


def test_final_answer_text():
    assert final_answer_text("<think>a</think> x </think>  answer \n") == "answer"
    assert final_answer_text("  plain  ") == "plain"
    assert final_answer_text(None) == ""


def test_rendering_helpers():
    assert render_tool_result("r") == "<tool_response>\nr\n</tool_response>"
    text = render_assistant("hi", [("search", {"a": 1})], reasoning="why")
    assert text.startswith("<think>\nwhy\n</think>") and "<tool_call>" in text
    schema = SubagentTool().parameters
    rendered = render_messages(
        [{"role": "system", "content": "sys"}, {"role": "user", "content": "task"},
         {"role": "tool", "tool_call_id": "c", "content": "result"}],
        tools=[{"type": "function", "function": {"name": "call_subagent", "parameters": schema}}],
    )
    assert rendered.startswith("sys\n\n# Tools") and "<tools>" in rendered
    assert rendered.endswith("task\n\n<tool_response>\nresult\n</tool_response>")


def test_subagent_arguments():
    req = parse_subagent_arguments({"sub_agents": [{"prompt": f"p{i}"} for i in range(12)]}, 10)
    assert isinstance(req, SubagentRequest) and len(req.prompts) == 10
    assert "dropped" in req.notes[0]
    req = parse_subagent_arguments({"sub_agents": ["bare", {"prompt": ""}, {"x": 1}]}, 10)
    assert req.prompts == ("bare",) and "skipped" in req.notes[0]
    for bad in ({}, {"sub_agents": 3}, {"sub_agents": []}, {"sub_agents": [{"prompt": " "}]}, "x"):
        out = parse_subagent_arguments(bad, 10)
        assert isinstance(out, str) and out.startswith("Error:")
    assert "create_sub_agents" in SUBAGENT_TOOL_NAMES and "call_subagent" in SUBAGENT_TOOL_NAMES
    assert SubagentTool().call_many([{}, {}])[0].startswith("Error:")


def test_a_subagent_request_is_cut_to_what_its_message_may_still_start():
    req = SubagentRequest(("a", "b", "c"), ("kept note",))
    assert limit_to_budget(req, 3, 10) is req
    cut = limit_to_budget(req, 2, 10)
    assert cut.prompts == ("a", "b") and cut.notes[0] == "kept note"
    assert "At most 10 subagents run per message" in cut.notes[1] and "last 1 subtask(s)" in cut.notes[1]
    none_left = limit_to_budget(req, 0, 10)
    assert none_left.startswith("Error:") and "this call was not run" in none_left
    assert limit_to_budget("Error: bad arguments", 5, 10) == "Error: bad arguments"
