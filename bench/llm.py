"""`prs bench llm`: what the serving stack costs on top of llama.cpp.

The same prompt and sampling go, in alternating rounds, to the bundled model loaded in this process through
llama-cpp-python (direct), to an LLM node started by the bench (its Ollama API over HTTP, streamed), and to the
same node through the product's cluster client (`agent.llm.LLMCluster`, as the suggestion worker calls it).
Each path reports the median time to first token and decode speed (tokens per second after the first token);
the ratios compare the cluster client, the whole stack a suggestion goes through, with direct. The node's and
this process's resident memory after warm-up are printed too.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from agent.llm import DoneEvent, LLMCluster, TokenEvent
from agent.suggest import build_prompt
from agent.types import CaseForPrompt
from backend.config import Settings
from bench.suggestions_load import NodeRun, _free_port

PATHS = ("direct", "node", "cluster")

# A suggestion prompt of the usual size: four resolved cases, one new report.
_CASES = [
    CaseForPrompt(
        incident_id=100 + n,
        document_title=None,
        title=title,
        problem=problem,
        solution=solution,
        score=0.8 - n * 0.05,
    )
    for n, (title, problem, solution) in enumerate(
        [
            (
                "Conveyor motor overheating on line 3",
                "The conveyor motor stops with alarm E-4012 after forty minutes; the housing is hot.",
                "The cooling fan of the motor was blocked by dust. Cleaned the fan and the air filter, checked "
                "the VFD current limit against the motor plate and restarted the line.",
            ),
            (
                "Line 2 conveyor drive trips",
                "The drive trips on overcurrent when the belt is loaded.",
                "A worn bearing made the motor draw too much current. Replaced the bearing, greased the shaft "
                "and measured the current under load.",
            ),
            (
                "Packaging line motor hot",
                "Thermal switch opens on the packaging motor in the afternoon.",
                "Ambient temperature near the motor was too high. Moved the cabinet fan, added a temperature "
                "alarm and checked that the thermal switch resets.",
            ),
            (
                "Belt slips and motor heats",
                "The belt slips and the motor gets hot on start.",
                "The belt tension was low. Adjusted the tension to the value in the manual and checked the "
                "alignment of the rollers.",
            ),
        ]
    )
]
PROMPT = build_prompt(
    title="Conveyor motor overheating",
    description="The motor of conveyor 4 stops after half an hour with a thermal alarm; the fan runs.",
    area="production",
    cases=_CASES,
    language="en",
)


@dataclass(frozen=True)
class Timing:
    """One generation as seen by its caller."""

    ttft_ms: float
    tokens: int
    decode_s: float

    @property
    def tokens_per_s(self) -> float:
        """Decode speed: tokens after the first over the time since the first."""
        return (self.tokens - 1) / self.decode_s if self.tokens > 1 and self.decode_s > 0 else 0.0


def rss_mb(pid: int | None = None) -> float:
    """Resident memory of a process in MB (Linux /proc)."""
    status = Path(f"/proc/{pid or os.getpid()}/status").read_text(encoding="ascii")
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


class DirectModel:
    """The bundled GGUF in this process, run as the node runs it: same context, threads and sampling, an empty
    KV cache for every generation."""

    def __init__(self, model_path: Path, *, threads: int, n_ctx: int):
        from llama_cpp import Llama

        self._llama = Llama(
            model_path=str(model_path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, verbose=False
        )

    def run(self, prompt: str, max_tokens: int, seed: int) -> Timing:
        """One generation; the clock starts before the prompt is tokenized, as a request's would."""
        import llama_cpp

        llama = self._llama
        started = time.perf_counter()
        bos = [llama.token_bos()] if llama._model.add_bos_token() else []
        tokens = bos + llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        llama.reset()
        llama._ctx.kv_cache_clear()
        llama.set_seed(seed)
        first = last = 0.0
        count = 0
        stream = llama.generate(tokens, top_k=40, top_p=0.9, min_p=0.0, temp=0.0, repeat_penalty=1.1)
        try:
            for token in stream:
                now = time.perf_counter()
                if llama_cpp.llama_vocab_is_eog(llama._model.vocab, token):
                    break
                llama.detokenize([token])
                first = first or now
                last = now
                count += 1
                if count >= max_tokens:
                    break
        finally:
            stream.close()
        return Timing(ttft_ms=(first - started) * 1000, tokens=count, decode_s=last - first)

    def close(self) -> None:
        """Free the model."""
        self._llama.close()


async def node_run(url: str, model: str, prompt: str, max_tokens: int, seed: int) -> Timing:
    """One streamed generation on the node's Ollama API, timed at the client."""
    body = {
        "model": model,
        "prompt": prompt,
        "raw": True,
        "stream": True,
        "options": {"num_predict": max_tokens, "temperature": 0.0, "seed": seed},
    }
    started = time.perf_counter()
    first = last = 0.0
    tokens = 0
    async with httpx.AsyncClient(timeout=120) as client:
        async with client.stream("POST", f"{url}/api/generate", json=body) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                if not line:
                    continue
                part = json.loads(line)
                if part.get("response"):
                    now = time.perf_counter()
                    first = first or now
                    last = now
                if part.get("done"):
                    tokens = int(part.get("eval_count") or 0)
    return Timing(ttft_ms=(first - started) * 1000, tokens=tokens, decode_s=last - first)


async def cluster_run(cluster: LLMCluster, prompt: str, max_tokens: int, seed: int) -> Timing:
    """One generation through the product's cluster client (streamed, as the suggestion worker does)."""
    started = time.perf_counter()
    first = last = 0.0
    tokens = 0
    async for event in cluster.stream(prompt, options={"num_predict": max_tokens, "temperature": 0.0, "seed": seed}):
        if isinstance(event, TokenEvent) and event.text:
            now = time.perf_counter()
            first = first or now
            last = now
        elif isinstance(event, DoneEvent):
            tokens = event.completion_tokens
    return Timing(ttft_ms=(first - started) * 1000, tokens=tokens, decode_s=last - first)


def summarise(timings: dict[str, list[Timing]]) -> dict[str, Any]:
    """Medians per path and the stack-over-direct ratios."""
    summary: dict[str, Any] = {}
    for path, runs in timings.items():
        summary[path] = {
            "ttft_p50_ms": round(statistics.median(t.ttft_ms for t in runs), 1),
            "tokens_per_s_p50": round(statistics.median(t.tokens_per_s for t in runs), 2),
            "tokens_p50": statistics.median(t.tokens for t in runs),
        }
    direct = summary["direct"]
    for path in ("node", "cluster"):
        summary[f"{path}_ttft_ratio"] = round(summary[path]["ttft_p50_ms"] / direct["ttft_p50_ms"], 3)
        summary[f"{path}_tps_ratio"] = round(summary[path]["tokens_per_s_p50"] / direct["tokens_per_s_p50"], 3)
    summary["ttft_ratio"] = summary["cluster_ttft_ratio"]
    summary["tps_ratio"] = summary["cluster_tps_ratio"]
    return summary


async def run_llm_bench(settings: Settings, *, runs: int, max_tokens: int, threads: int) -> dict[str, Any]:
    """Start a node, warm all three paths, then `runs` rounds in a rotating order; medians and ratios."""
    from llm_node.runner import ensure_bundled_model

    model_path = ensure_bundled_model(settings.ensure_data_dir())
    with tempfile.TemporaryDirectory(prefix="prs-bench-llm-") as folder:
        node = NodeRun(_free_port(), Path(folder) / "node", settings.ensure_data_dir(), threads=threads)
        await node.start()
        direct = DirectModel(model_path, threads=threads, n_ctx=2048)
        cluster = LLMCluster([node.url], "gemma3-270m", timeout_s=120)
        calls: dict[str, Callable[[int], Awaitable[Timing]]] = {
            "direct": lambda seed: asyncio.to_thread(direct.run, PROMPT, max_tokens, seed),
            "node": lambda seed: node_run(node.url, "gemma3-270m", PROMPT, max_tokens, seed),
            "cluster": lambda seed: cluster_run(cluster, PROMPT, max_tokens, seed),
        }
        try:
            for path in PATHS:  # warm-up: model pages, connection, first allocation
                await calls[path](0)
            node_rss = rss_mb(node.process.pid if node.process else None)
            timings: dict[str, list[Timing]] = {path: [] for path in PATHS}
            order = list(PATHS)
            for round_number in range(runs):
                seed = random.randrange(1, 2**31)
                for path in order:
                    timings[path].append(await calls[path](seed))
                order = order[1:] + order[:1]  # each path takes each position in turn
        finally:
            await cluster.aclose()
            direct.close()
            node.stop()
    return {
        "runs": runs,
        "max_tokens": max_tokens,
        "threads": threads,
        "prompt_chars": len(PROMPT),
        **summarise(timings),
        "node_rss_mb": node_rss,
        "bench_rss_mb": rss_mb(),
    }
