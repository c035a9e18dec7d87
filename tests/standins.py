"""Local stand-ins for the OpenAI and Ollama HTTP APIs, for tests where the real service cannot be reached.

They are small but strict where it matters to this project: the OpenAI one enforces the documented
Structured Outputs strict-mode rules (a `$ref` has no sibling keywords, every object has
`additionalProperties: false` and lists every property in `required`, no `allOf`/`oneOf`/`not`/`if`...)
and answers 400 with OpenAI's error body otherwise; the Ollama one accepts `format` only as "json" or a
JSON Schema object whose `$ref`s resolve, as Ollama's server does. Both answer with a schema-valid reply,
usage counts and log-probabilities shaped like the real APIs, and can inject faults per request: 5xx,
429 with `retry-after`, stalls past the client's timeout, truncated JSON, out-of-range ratings.

Each runs a real HTTP server on 127.0.0.1 (a free port) in a thread; the project's real `openai` and
`ollama` clients talk to it over the socket."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAULTS = ("500", "503", "429", "stall", "truncated", "out_of_range")
# Keywords OpenAI's strict mode does not support (https://platform.openai.com/docs/guides/structured-outputs).
STRICT_UNSUPPORTED = (
    "allOf",
    "oneOf",
    "not",
    "if",
    "then",
    "else",
    "dependentRequired",
    "dependentSchemas",
    "patternProperties",
    "unevaluatedProperties",
    "propertyNames",
    "minProperties",
    "maxProperties",
)
EMBEDDING_DIM = 8
Plan = Callable[[str, int], str | None]  # (post key, attempt number for that post) -> fault or None


class SchemaRejected(ValueError):
    """The request's schema breaks a rule of the service."""


@dataclass
class Traffic:
    """What a stand-in received: every request per post (keyed by the user message) and faults served."""

    requests: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    paths: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, path: str, key: str | None) -> int:
        with self.lock:
            self.paths[path] += 1
            if key is None:
                return 0
            self.requests[key] += 1
            return self.requests[key]


# --- the fake model: a deterministic, schema-valid answer with token log-probabilities ---------------


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    if not ref.startswith("#/"):
        raise SchemaRejected(f"unsupported $ref {ref!r}")
    target: Any = schema
    for part in ref[2:].split("/"):
        if not isinstance(target, dict) or part not in target:
            raise SchemaRejected(f"$ref {ref!r} does not resolve")
        target = target[part]
    return target


def _top5(weights: dict[str, float]) -> dict[str, float]:
    """Unnormalised scores as the five most likely tokens' log-probabilities, most likely first."""
    norm = math.log(sum(math.exp(w) for w in weights.values()))
    return dict(sorted(((k, w - norm) for k, w in weights.items()), key=lambda kv: -kv[1])[:5])


def answer(schema: dict[str, Any], prompt: str, fault: str | None) -> tuple[str, list[dict[str, Any]]]:
    """A JSON object valid under `schema` (enum members and integers within their bounds), chosen from a
    hash of the prompt, and its tokens with top-5 log-probabilities (digits get a spread over 1-5)."""
    digest = hashlib.sha256(prompt.encode()).digest()
    tokens: list[dict[str, Any]] = []

    def emit(text: str, alternatives: dict[str, float] | None = None) -> None:
        top = alternatives or {text: 0.0}
        tokens.append({"token": text, "logprob": top.get(text, 0.0), "top": top})

    emit("{")
    for i, (name, node) in enumerate(schema["properties"].items()):
        node = _resolve(schema, node)
        key = ("" if i == 0 else ", ") + f'"{name}": '
        if "enum" in node:  # as OpenAI tokenizes a string value: the quotes apart, the word with its rivals
            options = node["enum"]
            value = options[digest[i] % len(options)]
            emit(key + '"')
            emit(value, _top5({o: 0.0 if o == value else -1.0 - 0.5 * (digest[i + 8] % 4) for o in options}))
            emit('"')
            continue
        emit(key)
        if node.get("type") == "integer":
            low, high = int(node.get("minimum", 1)), int(node.get("maximum", 5))
            value = low + digest[i] % (high - low + 1)
            top = _top5({str(v): -abs(v - value) - 0.1 * (digest[i + 8] % 5) for v in range(low, high + 1)})
            if fault == "out_of_range" and name == list(schema["properties"])[-1]:
                value = 1_000_000_000_000_000
            emit(str(value), top)
        else:
            emit(json.dumps("text"))
    emit("}")
    text = "".join(t["token"] for t in tokens)
    if fault == "truncated":
        text = text[: len(text) // 2]
    return text, tokens


# --- strict-mode rules, as OpenAI documents and enforces them ----------------------------------------


def check_strict(node: Any, path: str = "") -> None:
    """Raise SchemaRejected with OpenAI's wording for the first strict-mode rule the schema breaks."""
    if not isinstance(node, dict):
        return
    context = path or "root"
    if "$ref" in node and len(node) > 1:
        siblings = sorted(k for k in node if k != "$ref")
        raise SchemaRejected(f"context=({context}), $ref cannot have keywords {siblings}")
    for keyword in STRICT_UNSUPPORTED:
        if keyword in node:
            raise SchemaRejected(f"context=({context}), '{keyword}' is not permitted")
    if node.get("type") == "object" or "properties" in node:
        if node.get("additionalProperties") is not False:
            raise SchemaRejected(
                f"context=({context}), 'additionalProperties' is required to be supplied and to be false"
            )
        missing = sorted(set(node.get("properties", {})) - set(node.get("required", [])))
        if missing:
            raise SchemaRejected(
                f"context=({context}), 'required' is required to be supplied and to be an array including every"
                f" key in properties. Missing '{missing[0]}'"
            )
    for key in ("properties", "$defs", "definitions"):
        for name, child in node.get(key, {}).items():
            check_strict(child, f"{path + '.' if path else ''}{key}.{name}")
    for key in ("items", "anyOf"):
        children = node.get(key)
        for i, child in enumerate(children if isinstance(children, list) else [children] if children else []):
            check_strict(child, f"{path + '.' if path else ''}{key}.{i}")


# --- the HTTP servers ----------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server: _StandIn  # type: ignore[assignment]

    def log_message(self, *args: object) -> None:  # quiet
        return

    def _send(self, status: int, body: dict[str, Any] | str, headers: dict[str, str] | None = None) -> None:
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        with contextlib.suppress(BrokenPipeError):  # the client gave up first (a stall past its timeout)
            self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("content-length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def do_GET(self) -> None:
        self.server.traffic.record(self.path, None)
        self.server.route("GET", self.path, self, {})

    def do_POST(self) -> None:
        self.server.route("POST", self.path, self, self._body())


class _StandIn(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, plan: Plan | None, stall_s: float, retry_after_s: float) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.plan = plan
        self.stall_s = stall_s
        self.retry_after_s = retry_after_s
        self.traffic = Traffic()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def route(self, method: str, path: str, handler: _Handler, body: dict[str, Any]) -> None:
        raise NotImplementedError

    def fault_for(self, path: str, key: str) -> str | None:
        attempt = self.traffic.record(path, key)
        fault = self.plan(key, attempt) if self.plan else None
        if fault:
            with self.traffic.lock:
                self.traffic.faults[fault] += 1
        return fault

    def serve_fault(self, handler: _Handler, fault: str | None, error: Callable[[int, str], dict[str, Any]]) -> bool:
        """Answer with an HTTP fault (True), or let the request go on (False; content faults go on)."""
        if fault in ("500", "503"):
            handler._send(int(fault), error(int(fault), "The server had an error while processing your request."))
        elif fault == "429":
            headers = {"retry-after": f"{self.retry_after_s:g}"}
            handler._send(429, error(429, "Rate limit reached. Please try again later."), headers)
        elif fault == "stall":
            time.sleep(self.stall_s)  # past the client's timeout: it has hung up by now
            handler._send(503, error(503, "stalled"))
        else:
            return False
        return True


def _user_text(messages: list[dict[str, Any]]) -> str:
    """The post the request is about: the first user message (re-asks append more turns after it)."""
    return next((m.get("content", "") for m in messages if m.get("role") == "user"), "")


class OpenAIStandIn(_StandIn):
    """`/v1/chat/completions`, `/v1/embeddings`, `/v1/models` with OpenAI's validation and error bodies."""

    models = ("gpt-4o-mini", "text-embedding-3-small")

    @staticmethod
    def error(status: int, message: str, param: str | None = None) -> dict[str, Any]:
        kind = {
            400: "invalid_request_error",
            401: "invalid_request_error",
            404: "invalid_request_error",
            429: "rate_limit_exceeded",
        }.get(status, "server_error")
        return {"error": {"message": message, "type": kind, "param": param, "code": None}}

    def route(self, method: str, path: str, handler: _Handler, body: dict[str, Any]) -> None:
        if not (handler.headers.get("authorization") or "").startswith("Bearer "):
            handler._send(401, self.error(401, "You didn't provide an API key."))
        elif method == "GET" and path == "/v1/models":
            handler._send(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in self.models]})
        elif method == "POST" and path == "/v1/chat/completions":
            self._chat(handler, body)
        elif method == "POST" and path == "/v1/embeddings":
            self._embeddings(handler, body)
        else:
            handler._send(404, self.error(404, f"Invalid URL ({method} {path})"))

    def _validate_chat(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("model") not in self.models:
            raise SchemaRejected(f"The model `{body.get('model')}` does not exist or you do not have access to it.")
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            raise SchemaRejected("'messages' must be a non-empty array")
        if not 0 <= int(body.get("top_logprobs") or 0) <= 20:
            raise SchemaRejected("'top_logprobs' must be between 0 and 20")
        fmt = body.get("response_format") or {}
        if fmt.get("type") != "json_schema":
            raise SchemaRejected("this stand-in answers Structured Outputs only: response_format.type json_schema")
        spec = fmt.get("json_schema") or {}
        name, schema = spec.get("name", ""), spec.get("schema")
        if not name or not all(c.isalnum() or c in "_-" for c in name):
            raise SchemaRejected("response_format.json_schema.name must match ^[a-zA-Z0-9_-]+$")
        if not isinstance(schema, dict) or schema.get("type") != "object":
            raise SchemaRejected(
                f"Invalid schema for response_format '{name}': schema must be a JSON Schema of 'type: \"object\"'"
            )
        if spec.get("strict"):
            try:
                check_strict(schema)
            except SchemaRejected as exc:
                raise SchemaRejected(f"Invalid schema for response_format '{name}': {exc}.") from exc
        return schema

    def _chat(self, handler: _Handler, body: dict[str, Any]) -> None:
        try:
            schema = self._validate_chat(body)
        except SchemaRejected as exc:
            self.traffic.record("/v1/chat/completions", None)
            handler._send(400, self.error(400, str(exc), "response_format"))
            return
        prompt = _user_text(body["messages"])
        fault = self.fault_for("/v1/chat/completions", prompt)
        if self.serve_fault(handler, fault, self.error):
            return
        text, tokens = answer(schema, prompt, fault)
        top_n = int(body.get("top_logprobs") or 0)
        content = [
            {
                "token": t["token"],
                "logprob": t["logprob"],
                "bytes": list(t["token"].encode()),
                "top_logprobs": [
                    {"token": k, "logprob": v, "bytes": list(k.encode())} for k, v in list(t["top"].items())[:top_n]
                ],
            }
            for t in tokens
        ]
        prompt_tokens = sum(len(m.get("content", "").split()) for m in body["messages"])
        handler._send(
            200,
            {
                "id": "chatcmpl-" + hashlib.sha1(prompt.encode()).hexdigest()[:12],
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text, "refusal": None},
                        "logprobs": {"content": content, "refusal": None} if body.get("logprobs") else None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": len(tokens),
                    "total_tokens": prompt_tokens + len(tokens),
                },
            },
        )

    def _embeddings(self, handler: _Handler, body: dict[str, Any]) -> None:
        inputs = body.get("input")
        if body.get("model") not in self.models or inputs in (None, "", []):
            self.traffic.record("/v1/embeddings", None)
            handler._send(400, self.error(400, "'input' and a known 'model' are required", "input"))
            return
        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        fault = self.fault_for("/v1/embeddings", texts[0])
        if self.serve_fault(handler, fault, self.error):
            return
        data = [{"object": "embedding", "index": i, "embedding": embedding(t)} for i, t in enumerate(texts)]
        n = sum(len(t.split()) for t in texts)
        handler._send(
            200,
            {"object": "list", "data": data, "model": body["model"], "usage": {"prompt_tokens": n, "total_tokens": n}},
        )


class OllamaStandIn(_StandIn):
    """`/api/chat`, `/api/embed`, `/api/show` with Ollama's format rules and error bodies."""

    models = ("qwen2.5:7b", "nomic-embed-text")

    @staticmethod
    def error(status: int, message: str) -> dict[str, Any]:
        return {"error": message}

    def route(self, method: str, path: str, handler: _Handler, body: dict[str, Any]) -> None:
        if (
            method == "POST"
            and path in ("/api/chat", "/api/embed", "/api/show")
            and body.get("model") not in self.models
        ):
            self.traffic.record(path, None)
            handler._send(404, self.error(404, f"model '{body.get('model')}' not found"))
        elif method == "POST" and path == "/api/show":
            handler._send(200, self._show(str(body.get("model"))))
        elif method == "POST" and path == "/api/chat":
            self._chat(handler, body)
        elif method == "POST" and path == "/api/embed":
            self._embed(handler, body)
        else:
            handler._send(404, "404 page not found")

    @staticmethod
    def _show(model: str) -> dict[str, Any]:
        """What `ollama show` answers: the real server always sends `model_info` (the ollama client's
        ShowResponse requires it) and says whether the model embeds or completes."""
        embeds = "embed" in model
        family = "nomic-bert" if embeds else "qwen2"
        return {
            "modelfile": "",
            "details": {"family": family, "format": "gguf"},
            "model_info": {"general.architecture": family},
            "capabilities": ["embedding"] if embeds else ["completion"],
        }

    @staticmethod
    def _schema(fmt: Any) -> dict[str, Any] | None:
        """Ollama takes "" (free text), "json", or a JSON Schema object it can compile to a grammar."""
        if fmt in (None, ""):
            return None
        if fmt == "json":
            return {"type": "object", "properties": {}}
        if not isinstance(fmt, dict):
            raise SchemaRejected(f'invalid format: {json.dumps(fmt)}; expected "json" or a valid JSON Schema object')
        for node in fmt.get("properties", {}).values():
            _resolve(fmt, node)  # an unresolvable $ref cannot become a grammar
        return fmt

    def _chat(self, handler: _Handler, body: dict[str, Any]) -> None:
        try:
            schema = self._schema(body.get("format"))
        except SchemaRejected as exc:
            self.traffic.record("/api/chat", None)
            handler._send(400, self.error(400, str(exc)))
            return
        if body.get("stream", True):
            raise AssertionError("this stand-in does not stream; the project never asks it to")
        prompt = _user_text(body.get("messages") or [])
        fault = self.fault_for("/api/chat", prompt)
        if self.serve_fault(handler, fault, self.error):
            return
        text, tokens = answer(schema or {"properties": {}}, prompt, fault)
        top_n = int(body.get("top_logprobs") or 0)
        logprobs = (
            [
                {
                    "token": t["token"],
                    "logprob": t["logprob"],
                    "top_logprobs": [{"token": k, "logprob": v} for k, v in list(t["top"].items())[:top_n]],
                }
                for t in tokens
            ]
            if body.get("logprobs")
            else None
        )
        handler._send(
            200,
            {
                "model": body["model"],
                "created_at": "2026-11-27T00:00:00Z",
                "message": {"role": "assistant", "content": text},
                "done": True,
                "done_reason": "stop",
                "total_duration": 1_000_000,
                "load_duration": 0,
                "prompt_eval_count": sum(len(m.get("content", "").split()) for m in body["messages"]),
                "prompt_eval_duration": 500_000,
                "eval_count": len(tokens),
                "eval_duration": 500_000,
                **({"logprobs": logprobs} if logprobs is not None else {}),
            },
        )

    def _embed(self, handler: _Handler, body: dict[str, Any]) -> None:
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        fault = self.fault_for("/api/embed", texts[0] if texts else "")
        if self.serve_fault(handler, fault, self.error):
            return
        handler._send(
            200,
            {
                "model": body["model"],
                "embeddings": [embedding(t) for t in texts],
                "total_duration": 1_000_000,
                "load_duration": 0,
                "prompt_eval_count": sum(len(t.split()) for t in texts),
            },
        )


def embedding(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [(b - 127.5) / 127.5 for b in digest[:EMBEDDING_DIM]]


def fault_plan(share: float, persistent: set[str] | None = None, kinds: tuple[str, ...] = FAULTS) -> Plan:
    """A seeded plan: a `share` of posts (by hash) get one fault on their first request, of a kind chosen
    by hash; posts in `persistent` (prompt substrings) fail with 503 on every request."""

    def plan(key: str, attempt: int) -> str | None:
        if persistent and any(p in key for p in persistent):
            return "503"
        digest = hashlib.sha256(key.encode()).digest()
        if attempt == 1 and digest[0] / 256 < share:
            return kinds[digest[1] % len(kinds)]
        return None

    return plan


@contextmanager
def running(server: _StandIn) -> Iterator[_StandIn]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
