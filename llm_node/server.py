"""The LLM node's HTTP side: the part of the Ollama REST API that the `ollama` client uses."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from llm_node.metrics import NodeMetrics, NodeRequestMetrics
from llm_node.runner import (
    GenerationStats,
    InvalidGenerationRequest,
    LlamaRunner,
    RunningGeneration,
    SamplingOptions,
    ensure_bundled_model,
)

NODE_VERSION = "0.1.0"
# A base model has no chat template: chat is rendered as a plain transcript, and these stop
# sequences keep the model from writing the next speaker's turn itself.
_ROLE_LABELS = {"system": "System", "user": "User", "assistant": "Assistant", "tool": "Tool"}
_TRANSCRIPT_STOPS = ("\nUser:", "\nSystem:")
_NEVER_EXPIRES = "2318-01-01T00:00:00Z"  # Ollama's expires_at for a model kept loaded forever
_DISCONNECT_POLL_S = 0.5

logger = logging.getLogger("prs.llm_node")


class NodeRequestError(Exception):
    """A request the node refuses; answered as Ollama does, `{"error": message}`."""

    def __init__(self, status_code: int, message: str):
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def create_node_app(runner: LlamaRunner, model_name: str) -> FastAPI:
    """The FastAPI app of one node serving `runner`'s model under `model_name`."""
    app = FastAPI(title="PR-System LLM node", docs_url=None, redoc_url=None, openapi_url=None)
    listed_name = canonical_model_name(model_name)
    card = runner.card
    metrics = NodeMetrics()

    @app.exception_handler(NodeRequestError)
    async def refuse_request(_: Request, error: NodeRequestError) -> JSONResponse:
        return JSONResponse({"error": error.message}, status_code=error.status_code)

    @app.exception_handler(InvalidGenerationRequest)
    async def refuse_options(_: Request, error: InvalidGenerationRequest) -> JSONResponse:
        return JSONResponse({"error": str(error)}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def refuse_route(_: Request, error: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(error.detail).lower()}, status_code=error.status_code)

    @app.exception_handler(Exception)
    async def report_failure(_: Request, error: Exception) -> JSONResponse:
        logger.exception("request failed")
        return JSONResponse({"error": "internal error"}, status_code=500)

    def require_model(body: dict[str, Any]) -> str:
        requested = body.get("model") or body.get("name")
        if not isinstance(requested, str) or not requested:
            raise NodeRequestError(400, "model is required")
        if canonical_model_name(requested) != listed_name:
            raise NodeRequestError(404, f"model '{requested}' not found")
        return requested

    def model_entry() -> dict[str, Any]:
        return {
            "name": listed_name,
            "model": listed_name,
            "modified_at": _timestamp(card.modified_at),
            "size": card.size_bytes,
            "digest": card.digest,
            "details": card.details(),
        }

    @app.get("/", response_class=PlainTextResponse)
    async def root() -> str:
        return "Ollama is running"

    @app.get("/api/version")
    async def version() -> dict[str, str | int]:
        # `parallel`: generations this node runs at once (one llama.cpp context), read by the workers' admission.
        return {"version": NODE_VERSION, "parallel": 1}

    @app.get("/api/tags")
    async def tags() -> dict[str, Any]:
        return {"models": [model_entry()]}

    @app.get("/api/ps")
    async def running_models() -> dict[str, Any]:
        entry = model_entry() | {"expires_at": _NEVER_EXPIRES, "size_vram": 0, "context_length": runner.n_ctx}
        entry.pop("modified_at")
        return {"models": [entry]}

    @app.post("/api/show")
    async def show(request: Request) -> dict[str, Any]:
        require_model(await _read_json_object(request))
        return {
            "modelfile": f"# Served by the PR-System LLM node\nFROM {card.path}\n",
            "parameters": "",
            "template": "{{ .Prompt }}",
            "details": card.details(),
            "model_info": card.model_info,
            "capabilities": ["completion"],
            "modified_at": _timestamp(card.modified_at),
        }

    @app.get("/metrics", response_class=Response)
    async def node_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/api/generate")
    async def generate(request: Request) -> Response:
        body = await _read_json_object(request)
        model = require_model(body)
        prompt = _generate_prompt(body)
        sampling = SamplingOptions.from_ollama_options(body.get("options"))
        if not prompt:
            # Ollama answers an empty prompt by (pre)loading the model; ours is always loaded.
            loaded = _reply_object("generate", model, "") | {"done": True, "done_reason": "load"}
            return _single_reply(loaded, stream=body.get("stream", True) is not False)
        return await _answer(request, runner, "generate", model, prompt, sampling, body, metrics)

    @app.post("/api/chat")
    async def chat(request: Request) -> Response:
        body = await _read_json_object(request)
        model = require_model(body)
        prompt = chat_transcript(body.get("messages"))
        sampling = SamplingOptions.from_ollama_options(body.get("options"), extra_stop=_TRANSCRIPT_STOPS)
        return await _answer(request, runner, "chat", model, prompt, sampling, body, metrics)

    known_paths = frozenset(route.path for route in app.routes if hasattr(route, "path"))
    app.add_middleware(NodeRequestMetrics, metrics=metrics, known_paths=known_paths)
    return app


def canonical_model_name(name: str) -> str:
    """Ollama's rule: a model name without a tag means the `latest` tag."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def chat_transcript(messages: Any) -> str:
    """Render chat messages as a completion transcript ending where the assistant speaks."""
    if not isinstance(messages, list):
        raise NodeRequestError(400, "messages must be a list")
    system_lines: list[str] = []
    turns: list[str] = []
    for message in messages:
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise NodeRequestError(400, "each message needs a role")
        content = message.get("content") or ""
        if not isinstance(content, str):
            raise NodeRequestError(400, "message content must be a string")
        role = message["role"]
        if role == "system":
            system_lines.append(content.strip())
        else:
            turns.append(f"{_ROLE_LABELS.get(role, role.capitalize())}: {content.strip()}")
    header = "\n".join(line for line in system_lines if line)
    transcript = "\n".join([*turns, "Assistant:"])
    return f"{header}\n\n{transcript}" if header else transcript


def _generate_prompt(body: dict[str, Any]) -> str:
    prompt = body.get("prompt") or ""
    system = body.get("system") or ""
    if not isinstance(prompt, str) or not isinstance(system, str):
        raise NodeRequestError(400, "prompt and system must be strings")
    # raw means the caller formatted everything itself; Ollama ignores `system` then too.
    if body.get("raw") or not system:
        return prompt
    return f"{system}\n\n{prompt}" if prompt else ""


async def _read_json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise NodeRequestError(400, f"invalid JSON: {error}") from None
    if not isinstance(body, dict):
        raise NodeRequestError(400, "the request body must be a JSON object")
    return body


async def _answer(
    request: Request,
    runner: LlamaRunner,
    kind: str,
    model: str,
    prompt: str,
    sampling: SamplingOptions,
    body: dict[str, Any],
    metrics: NodeMetrics,
) -> Response:
    generation = runner.start(prompt, sampling)
    pieces = _trimmed_pieces(generation, strip_leading=kind == "chat")
    if body.get("stream", True) is not False:
        return StreamingResponse(
            _ndjson_lines(generation, pieces, kind, model, metrics), media_type="application/x-ndjson"
        )
    text = await _collect_unless_disconnected(request, generation, pieces)
    if text is None:
        return JSONResponse({"error": "client disconnected"}, status_code=499)
    stats = generation.stats or GenerationStats()
    _observe(metrics, stats)
    return JSONResponse(_final_object(kind, model, text, stats))


def _observe(metrics: NodeMetrics, stats: GenerationStats) -> None:
    metrics.observe_generation(
        completion_tokens=stats.completion_tokens, eval_ns=stats.eval_ns, queued_ns=stats.queued_ns
    )


async def _trimmed_pieces(generation: RunningGeneration, *, strip_leading: bool) -> AsyncIterator[str]:
    """Pieces of the reply; a chat reply loses the space the transcript leaves after 'Assistant:'."""
    started = not strip_leading
    async for piece in generation.pieces():
        if not started:
            piece = piece.lstrip()
            started = bool(piece)
        if piece:
            yield piece


async def _ndjson_lines(
    generation: RunningGeneration, pieces: AsyncIterator[str], kind: str, model: str, metrics: NodeMetrics
) -> AsyncIterator[str]:
    try:
        async for piece in pieces:
            yield json.dumps(_reply_object(kind, model, piece)) + "\n"
        stats = generation.stats or GenerationStats()
        _observe(metrics, stats)
        yield json.dumps(_final_object(kind, model, "", stats)) + "\n"
    except Exception:
        # Headers are gone already; Ollama reports a late failure as an error line.
        logger.exception("generation failed")
        yield json.dumps({"error": "generation failed"}) + "\n"
    finally:
        # Runs when the client disconnects too (Starlette cancels the stream): stop the model.
        generation.cancel()


async def _collect_unless_disconnected(
    request: Request, generation: RunningGeneration, pieces: AsyncIterator[str]
) -> str | None:
    """The whole reply, or None if the client went away first (the generation is stopped)."""
    parts: list[str] = []

    async def collect() -> None:
        async for piece in pieces:
            parts.append(piece)

    collector = asyncio.ensure_future(collect())
    try:
        while not collector.done():
            await asyncio.wait({collector}, timeout=_DISCONNECT_POLL_S)
            if not collector.done() and await request.is_disconnected():
                logger.info("client disconnected, generation stopped")
                return None
        collector.result()
        return "".join(parts)
    finally:
        generation.cancel()
        collector.cancel()


def _single_reply(reply: dict[str, Any], *, stream: bool) -> Response:
    if stream:
        return Response(json.dumps(reply) + "\n", media_type="application/x-ndjson")
    return JSONResponse(reply)


def _reply_object(kind: str, model: str, text: str) -> dict[str, Any]:
    reply: dict[str, Any] = {"model": model, "created_at": _timestamp(datetime.now(UTC))}
    if kind == "chat":
        reply["message"] = {"role": "assistant", "content": text}
    else:
        reply["response"] = text
    reply["done"] = False
    return reply


def _final_object(kind: str, model: str, text: str, stats: GenerationStats) -> dict[str, Any]:
    return _reply_object(kind, model, text) | {
        "done": True,
        "done_reason": "stop" if stats.done_reason == "cancelled" else stats.done_reason,
        "total_duration": stats.total_ns + stats.queued_ns,
        "load_duration": stats.queued_ns,  # the model is resident: the only wait is the queue
        "prompt_eval_count": stats.prompt_tokens,
        "prompt_eval_duration": stats.prompt_eval_ns,
        "eval_count": stats.completion_tokens,
        "eval_duration": stats.eval_ns,
    }


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any `extra` fields."""

    # uvicorn adds color_message, a copy of the message with terminal colour codes.
    _STANDARD_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {
        "message",
        "asctime",
        "taskName",
        "color_message",
    }

    def format(self, record: logging.LogRecord) -> str:
        """Render the record as a JSON line."""
        entry: dict[str, Any] = {
            "ts": _timestamp(datetime.fromtimestamp(record.created, UTC)),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in self._STANDARD_FIELDS})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_json_logging(level: str = "INFO") -> None:
    """Send every log record to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 11434,
    model_path: str | Path | None = None,
    model_name: str = "gemma3-270m",
    data_dir: str | Path = "data",
    threads: int = 0,
    n_ctx: int = 2048,
) -> None:
    """Load the model (assembling the bundled one if no path is given) and serve until stopped."""
    configure_json_logging()
    resolved_path = Path(model_path) if model_path else ensure_bundled_model(Path(data_dir))
    runner = LlamaRunner(resolved_path, n_ctx=n_ctx, threads=threads)
    logger.info(
        "model loaded",
        extra={"model": model_name, "path": str(resolved_path), "load_ms": round(runner.load_ns / 1e6, 1)},
    )
    try:
        # A bounded graceful shutdown: a long stream must not keep a stopping node alive forever.
        uvicorn.run(
            create_node_app(runner, model_name),
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=10,
        )
    finally:
        runner.close()
