"""LLM access for the agent: a cluster of Ollama-API nodes with timeouts, cooldown and failover."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import httpx
import ollama

PromptStyle = Literal["completion", "chat"]
Options = dict[str, Any]  # Ollama's generation options
_Reply = ollama.GenerateResponse | ollama.ChatResponse
_HEALTH_TIMEOUT_S = 5.0


class LLMUnavailable(Exception):
    """No node could answer; `errors` maps each node URL tried to why it failed."""

    def __init__(self, errors: dict[str, str]):
        self.errors = dict(errors)
        summary = "; ".join(f"{url}: {reason}" for url, reason in self.errors.items()) or "no nodes configured"
        super().__init__(f"no LLM node could answer ({summary})")


@dataclass(frozen=True)
class NodeHealth:
    """One node as a health probe saw it."""

    url: str
    up: bool
    version: str | None
    models: list[str]
    latency_ms: float | None
    error: str | None


@dataclass(frozen=True)
class Generation:
    """A finished, non-streamed answer and where it came from."""

    text: str
    node: str
    model: str
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class TokenEvent:
    """A piece of generated text."""

    text: str


@dataclass(frozen=True)
class RestartEvent:
    """A node failed mid-stream; discard the text received so far, the answer starts over."""

    node: str
    reason: str


@dataclass(frozen=True)
class DoneEvent:
    """The stream finished on `node`."""

    node: str
    model: str
    completion_tokens: int


StreamEvent = TokenEvent | RestartEvent | DoneEvent


class LanguageModel(Protocol):
    """What the agent needs from an LLM: whole answers and streamed answers."""

    async def generate(self, prompt: str, *, options: Options | None = None, system: str | None = None) -> Generation:
        """Answer `prompt` in one piece."""
        ...

    def stream(
        self, prompt: str, *, options: Options | None = None, system: str | None = None
    ) -> AsyncIterator[StreamEvent]:
        """Answer `prompt` piece by piece."""
        ...


class _NodeFailure(Exception):
    """Why one node could not answer, and whether it deserves a cooldown."""

    def __init__(self, reason: str, *, cool_down: bool):
        super().__init__(reason)
        self.reason = reason
        self.cool_down = cool_down


# Everything a broken, slow or foreign node can make the official client raise: transport
# errors, HTTP errors, and garbage bodies (json and pydantic errors are ValueErrors).
_NODE_ERRORS = (ollama.ResponseError, httpx.HTTPError, OSError, ValueError, _NodeFailure)


@dataclass
class _Node:
    url: str
    client: ollama.AsyncClient
    health_client: ollama.AsyncClient
    down_until: float | None = None
    last_error: str | None = None
    requests: int = 0
    failures: int = 0
    failovers: int = 0


class LLMCluster:
    """Ollama-API nodes tried in order; a failing node cools down and the next one answers."""

    def __init__(
        self,
        node_urls: list[str],
        model: str,
        *,
        timeout_s: float = 120.0,
        connect_timeout_s: float = 3.0,
        cooldown_s: float = 15.0,
        prompt_style: PromptStyle = "completion",
        clock: Callable[[], float] = time.monotonic,
    ):
        if prompt_style not in ("completion", "chat"):
            raise ValueError(f"unknown prompt style {prompt_style!r}")
        self.model = model
        self.prompt_style = prompt_style
        self.cooldown_s = cooldown_s
        self._clock = clock
        health_timeout = httpx.Timeout(min(timeout_s, _HEALTH_TIMEOUT_S), connect=connect_timeout_s)
        self._nodes = [
            _Node(
                url=url,
                client=ollama.AsyncClient(host=url, timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s)),
                health_client=ollama.AsyncClient(host=url, timeout=health_timeout),
            )
            for url in node_urls
        ]

    async def generate(self, prompt: str, *, options: Options | None = None, system: str | None = None) -> Generation:
        """Answer `prompt` on the first node that can; raises LLMUnavailable if none can."""
        errors: dict[str, str] = {}
        candidates = self._candidates()
        for position, node in enumerate(candidates):
            node.requests += 1
            try:
                generation = await self._generate_on(node, prompt, options, system)
            except _NODE_ERRORS as error:
                self._record_failure(node, error, errors, more_to_try=position + 1 < len(candidates))
                continue
            self._mark_up(node)
            return generation
        raise LLMUnavailable(errors)

    async def stream(
        self, prompt: str, *, options: Options | None = None, system: str | None = None
    ) -> AsyncIterator[StreamEvent]:
        """Stream the answer; a node failing mid-answer yields RestartEvent and the next node starts over.

        A node that fails before sending any text is skipped silently: there is nothing to discard.
        """
        errors: dict[str, str] = {}
        candidates = self._candidates()
        for position, node in enumerate(candidates):
            node.requests += 1
            pieces_sent = 0
            final_reply: _Reply | None = None
            try:
                async with contextlib.aclosing(self._stream_on(node, prompt, options, system)) as parts:
                    async for part in parts:
                        if isinstance(part, str):
                            pieces_sent += 1
                            yield TokenEvent(part)
                        else:
                            final_reply = part
            except _NODE_ERRORS as error:
                reason = self._record_failure(node, error, errors, more_to_try=position + 1 < len(candidates))
                if pieces_sent:
                    yield RestartEvent(node=node.url, reason=reason)
                continue
            self._mark_up(node)
            assert final_reply is not None  # _stream_on ends with the final reply or raises
            yield DoneEvent(
                node=node.url, model=final_reply.model or self.model, completion_tokens=final_reply.eval_count or 0
            )
            return
        raise LLMUnavailable(errors)

    @property
    def node_urls(self) -> list[str]:
        """The configured nodes, in failover order."""
        return [node.url for node in self._nodes]

    def up_node_urls(self) -> list[str]:
        """Nodes not cooling down after a failure, in configured order."""
        now = self._clock()
        return [node.url for node in self._nodes if node.down_until is None or now >= node.down_until]

    async def confirm_recovering(self) -> None:
        """Probe the nodes whose cooldown has run out: up again, or another cooldown (no real request is spent
        finding out that a node is still down)."""
        now = self._clock()
        recovering = [node for node in self._nodes if node.down_until is not None and now >= node.down_until]
        reports = await asyncio.gather(*(self._probe(node) for node in recovering))
        for node, report in zip(recovering, reports, strict=True):
            if report.up:
                self._mark_up(node)
            else:
                self._mark_down(node, report.error or "down")

    def pinned(self, url: str, *, first_token_timeout_s: float, token_timeout_s: float) -> PinnedNode:
        """A LanguageModel that answers only on the node `url` (a slot of which the caller holds)."""
        return PinnedNode(self, self._node(url), first_token_timeout_s, token_timeout_s)

    async def advertised_parallel(self, url: str) -> int | None:
        """The parallel generations the node says it runs (`parallel` in /api/version), if it says."""
        try:
            # ollama leaves its raw request (there is no public version call) untyped
            client = self._node(url).health_client
            reply = await client._request_raw("GET", "/api/version")  # type: ignore[no-untyped-call]
            value = reply.json().get("parallel")
        except _NODE_ERRORS:
            return None
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None

    async def stream_on(
        self,
        url: str,
        prompt: str,
        *,
        options: Options | None = None,
        system: str | None = None,
        first_token_timeout_s: float,
        token_timeout_s: float,
    ) -> AsyncIterator[StreamEvent]:
        """Stream the answer on one node, without failover; LLMUnavailable when it fails or stalls.

        The timeouts measure the node's work, not a wait in line (admission gave this request a free slot):
        `first_token_timeout_s` until the first piece (prompt processing included), `token_timeout_s` between
        pieces after that.
        """
        node = self._node(url)
        node.requests += 1
        final_reply: _Reply | None = None
        errors: dict[str, str] = {}
        try:
            async with contextlib.aclosing(self._stream_on(node, prompt, options, system)) as parts:
                iterator = aiter(parts)
                started = False
                while True:
                    limit = token_timeout_s if started else first_token_timeout_s
                    try:
                        part = await asyncio.wait_for(anext(iterator), limit)
                    except StopAsyncIteration:
                        break
                    except asyncio.TimeoutError:
                        which = "next token" if started else "first token"
                        raise _NodeFailure(f"no {which} within {limit:g} s", cool_down=True) from None
                    started = True
                    if isinstance(part, str):
                        yield TokenEvent(part)
                    else:
                        final_reply = part
        except _NODE_ERRORS as error:
            self._record_failure(node, error, errors, more_to_try=False)
            raise LLMUnavailable(errors) from None
        if final_reply is None:  # _stream_on ends with the final reply or raises; this is a broken node
            self._record_failure(node, _NodeFailure("no final message", cool_down=True), errors, more_to_try=False)
            raise LLMUnavailable(errors)
        self._mark_up(node)
        yield DoneEvent(
            node=node.url, model=final_reply.model or self.model, completion_tokens=final_reply.eval_count or 0
        )

    def _node(self, url: str) -> _Node:
        for node in self._nodes:
            if node.url == url:
                return node
        raise KeyError(f"{url} is not a configured LLM node")

    async def health(self) -> list[NodeHealth]:
        """Probe every node at once; a node without the configured model counts as down."""
        reports = await asyncio.gather(*(self._probe(node) for node in self._nodes))
        for node, report in zip(self._nodes, reports, strict=True):
            if report.up:
                self._mark_up(node)
            else:
                self._mark_down(node, report.error or "down")
        return list(reports)

    def nodes_state(self) -> list[dict[str, Any]]:
        """Each node's cooldown and counters, JSON-ready, for /health/ready and metrics."""
        now = self._clock()
        return [
            {
                "url": node.url,
                "up": node.down_until is None or now >= node.down_until,
                "cooldown_remaining_s": max(0.0, node.down_until - now) if node.down_until is not None else 0.0,
                "last_error": node.last_error,
                "requests": node.requests,
                "failures": node.failures,
                "failovers": node.failovers,
            }
            for node in self._nodes
        ]

    async def aclose(self) -> None:
        """Close every node's HTTP connections."""
        for node in self._nodes:
            await node.client.close()  # type: ignore[no-untyped-call]  # untyped in ollama
            await node.health_client.close()  # type: ignore[no-untyped-call]

    def _candidates(self) -> list[_Node]:
        """Nodes out of cooldown, in configured order; all of them if every node is cooling down."""
        now = self._clock()
        ready = [node for node in self._nodes if node.down_until is None or now >= node.down_until]
        return ready or list(self._nodes)

    async def _generate_on(self, node: _Node, prompt: str, options: Options | None, system: str | None) -> Generation:
        reply: _Reply
        if self.prompt_style == "chat":
            reply = await node.client.chat(self.model, _chat_messages(prompt, system), stream=False, options=options)
            text = reply.message.content or ""
        else:
            reply = await node.client.generate(
                self.model, _completion_prompt(prompt, system), raw=True, stream=False, options=options
            )
            text = reply.response or ""
        return Generation(
            text=text,
            node=node.url,
            model=reply.model or self.model,
            prompt_tokens=reply.prompt_eval_count or 0,
            completion_tokens=reply.eval_count or 0,
        )

    async def _stream_on(
        self, node: _Node, prompt: str, options: Options | None, system: str | None
    ) -> AsyncGenerator[str | _Reply, None]:
        """Each non-empty text piece, then the final reply object; raises if the stream breaks off."""
        replies: AsyncIterator[_Reply]
        if self.prompt_style == "chat":
            replies = await node.client.chat(self.model, _chat_messages(prompt, system), stream=True, options=options)
        else:
            replies = await node.client.generate(
                self.model, _completion_prompt(prompt, system), raw=True, stream=True, options=options
            )
        # ollama types the stream as an AsyncIterator; it is an async generator
        async with contextlib.aclosing(replies):  # type: ignore[type-var]
            async for reply in replies:
                text = (reply.message.content if isinstance(reply, ollama.ChatResponse) else reply.response) or ""
                if text:
                    yield text
                if reply.done:
                    yield reply
                    return
        # A node that closes the stream cleanly but never says done has not finished the answer.
        raise _NodeFailure("stream ended before the final message", cool_down=True)

    async def _probe(self, node: _Node) -> NodeHealth:
        started = time.perf_counter()
        try:
            listing = await node.health_client.list()
            # The client has no public version call; its raw request (untyped) keeps the same error types.
            version_reply = await node.health_client._request_raw(  # type: ignore[no-untyped-call]
                "GET", "/api/version"
            )
            version = version_reply.json().get("version")
        except _NODE_ERRORS as error:
            return NodeHealth(node.url, False, None, [], None, _describe(error)[0])
        latency_ms = round((time.perf_counter() - started) * 1000, 1)
        models = [entry.model for entry in listing.models if entry.model]
        if not any(_same_model(self.model, name) for name in models):
            missing = f"model '{self.model}' not available on this node"
            return NodeHealth(node.url, False, version, models, latency_ms, missing)
        return NodeHealth(node.url, True, version, models, latency_ms, None)

    def _record_failure(self, node: _Node, error: BaseException, errors: dict[str, str], *, more_to_try: bool) -> str:
        reason, cool_down = _describe(error)
        errors[node.url] = reason
        node.failures += 1
        node.last_error = reason
        if more_to_try:
            node.failovers += 1
        if cool_down:
            self._mark_down(node, reason)
        return reason

    def _mark_down(self, node: _Node, reason: str) -> None:
        node.down_until = self._clock() + self.cooldown_s
        node.last_error = reason

    def _mark_up(self, node: _Node) -> None:
        node.down_until = None


@dataclass
class PinnedNode:
    """One node of a cluster as a LanguageModel: streams only there, with first-token and between-token timeouts."""

    cluster: LLMCluster
    node: _Node
    first_token_timeout_s: float
    token_timeout_s: float

    @property
    def url(self) -> str:
        """The node's URL."""
        return self.node.url

    async def generate(self, prompt: str, *, options: Options | None = None, system: str | None = None) -> Generation:
        """Answer `prompt` in one piece on this node."""
        text, model, tokens = "", self.cluster.model, 0
        async for event in self.stream(prompt, options=options, system=system):
            if isinstance(event, TokenEvent):
                text += event.text
            elif isinstance(event, DoneEvent):
                model, tokens = event.model, event.completion_tokens
        return Generation(text=text, node=self.node.url, model=model, prompt_tokens=0, completion_tokens=tokens)

    def stream(
        self, prompt: str, *, options: Options | None = None, system: str | None = None
    ) -> AsyncIterator[StreamEvent]:
        """Answer `prompt` piece by piece on this node only."""
        return self.cluster.stream_on(
            self.node.url,
            prompt,
            options=options,
            system=system,
            first_token_timeout_s=self.first_token_timeout_s,
            token_timeout_s=self.token_timeout_s,
        )


def _describe(error: BaseException) -> tuple[str, bool]:
    """A short reason for `error`, and whether the node should cool down because of it."""
    if isinstance(error, _NodeFailure):
        return error.reason, error.cool_down
    if isinstance(error, ollama.ResponseError):
        status = error.status_code
        if status == 404:
            return f"model not found: {error.error}", True
        # -1: an error line inside a stream, which is how a node reports a failure it hit late.
        return f"HTTP {status}: {error.error}", status >= 500 or status == -1
    if isinstance(error, httpx.TimeoutException):
        return f"timeout ({type(error).__name__})", True
    if isinstance(error, httpx.HTTPError | OSError):
        return f"connection failed ({type(error).__name__}: {error})", True
    return f"invalid reply ({type(error).__name__}: {error})", True


def _completion_prompt(prompt: str, system: str | None) -> str:
    # raw=True makes Ollama ignore `system`, so completion style puts it in the prompt itself.
    return f"{system}\n\n{prompt}" if system else prompt


def _chat_messages(prompt: str, system: str | None) -> list[Mapping[str, str]]:
    messages = [{"role": "system", "content": system}] if system else []
    return [*messages, {"role": "user", "content": prompt}]


def _same_model(configured: str, listed: str) -> bool:
    """Ollama names: `llama3.1` and `llama3.1:latest` are the same model."""

    def canonical(name: str) -> str:
        return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"

    return canonical(configured) == canonical(listed)
