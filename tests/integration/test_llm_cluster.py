"""LLMCluster fails over between real LLM nodes: killed mid-stream, down from the start, restarted."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from agent.llm import DoneEvent, LLMCluster, LLMUnavailable, RestartEvent, TokenEvent
from tests.fixtures.llm_nodes import TEST_MODEL_NAME, LLMNodeFactory, LLMNodeProcess

pytestmark = pytest.mark.slow

COUNTING_PROMPT = "Count: 1, 2, 3, 4,"
SHORT = {"temperature": 0, "num_predict": 8}


class ManualClock:
    """A monotonic clock the test moves by hand, so cooldowns pass without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="module")
def spare_node(llm_node_factory: LLMNodeFactory) -> LLMNodeProcess:
    """A node these tests may kill; the session's shared node stays up as the fallback."""
    return llm_node_factory.start()


@pytest.fixture
def victim(spare_node: LLMNodeProcess) -> LLMNodeProcess:
    if not spare_node.is_running:
        spare_node.restart()
    return spare_node


def make_cluster(urls: list[str], *, model: str = TEST_MODEL_NAME, **overrides) -> LLMCluster:
    settings = {"timeout_s": 60.0, "connect_timeout_s": 2.0, "cooldown_s": 30.0} | overrides
    return LLMCluster(urls, model, **settings)


def state_of(cluster: LLMCluster, url: str) -> dict:
    return next(state for state in cluster.nodes_state() if state["url"] == url)


async def test_node_killed_mid_stream_restarts_the_answer_on_the_next_node(victim, llm_node_url):
    cluster = make_cluster([victim.url, llm_node_url])
    events = []
    try:
        async for event in cluster.stream(COUNTING_PROMPT, options={"temperature": 0, "num_predict": 96}):
            events.append(event)
            if len(events) == 1:
                victim.kill()
    finally:
        await cluster.aclose()

    assert isinstance(events[0], TokenEvent)
    restarts = [index for index, event in enumerate(events) if isinstance(event, RestartEvent)]
    assert len(restarts) == 1
    assert events[restarts[0]].node == victim.url
    after_restart = events[restarts[0] + 1 :]
    assert all(isinstance(event, TokenEvent) for event in after_restart[:-1])
    assert "".join(event.text for event in after_restart[:-1]).strip()
    done = after_restart[-1]
    assert isinstance(done, DoneEvent)
    assert done.node == llm_node_url
    assert done.completion_tokens > 0
    assert state_of(cluster, victim.url)["up"] is False
    assert state_of(cluster, victim.url)["failovers"] == 1


@pytest.fixture
def silent_node_url() -> Iterator[str]:
    """A port that accepts connections and never answers: a hung node, met only by the timeout."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)  # the kernel completes handshakes; nobody ever reads or replies
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


@pytest.mark.parametrize("failure", ["refused", "silent"])
async def test_node_down_at_start_is_skipped_and_not_tried_again_during_cooldown(
    failure, llm_node_factory, llm_node_url, silent_node_url
):
    dead_url = llm_node_factory.unused_url() if failure == "refused" else silent_node_url
    cluster = make_cluster([dead_url, llm_node_url], clock=ManualClock(), timeout_s=5.0)
    try:
        first = await cluster.generate(COUNTING_PROMPT, options=SHORT)
        assert first.node == llm_node_url
        assert first.text
        assert first.completion_tokens > 0
        dead_state = state_of(cluster, dead_url)
        assert dead_state["up"] is False
        assert dead_state["requests"] == 1
        expected_reason = "connection failed" if failure == "refused" else "timeout"
        assert dead_state["last_error"].startswith(expected_reason)

        second = await cluster.generate(COUNTING_PROMPT, options=SHORT)
        assert second.node == llm_node_url
        assert state_of(cluster, dead_url)["requests"] == 1
        assert state_of(cluster, llm_node_url)["requests"] == 2
    finally:
        await cluster.aclose()


async def test_all_nodes_down_raises_llm_unavailable_quickly(llm_node_factory):
    dead_urls = [llm_node_factory.unused_url(), llm_node_factory.unused_url()]
    cluster = make_cluster(dead_urls)
    started = time.monotonic()
    try:
        with pytest.raises(LLMUnavailable) as whole:
            await cluster.generate("anything")
        with pytest.raises(LLMUnavailable) as streamed:
            async for _ in cluster.stream("anything"):
                pass
    finally:
        await cluster.aclose()
    assert time.monotonic() - started < 10
    assert set(whole.value.errors) == set(dead_urls)
    assert set(streamed.value.errors) == set(dead_urls)


async def test_missing_model_marks_the_node_down(llm_node_url):
    cluster = make_cluster([llm_node_url], model="llama3.1:8b")
    try:
        with pytest.raises(LLMUnavailable) as missing:
            await cluster.generate("anything")
    finally:
        await cluster.aclose()
    assert missing.value.errors[llm_node_url].startswith("model not found")
    assert state_of(cluster, llm_node_url)["up"] is False


async def test_restarted_node_is_used_again_once_its_cooldown_ends(victim, llm_node_url):
    clock = ManualClock()
    cluster = make_cluster([victim.url, llm_node_url], clock=clock, cooldown_s=30.0)
    try:
        victim.kill()
        assert (await cluster.generate(COUNTING_PROMPT, options=SHORT)).node == llm_node_url

        victim.restart()
        assert (await cluster.generate(COUNTING_PROMPT, options=SHORT)).node == llm_node_url
        assert state_of(cluster, victim.url)["requests"] == 1

        clock.advance(31)
        assert (await cluster.generate(COUNTING_PROMPT, options=SHORT)).node == victim.url
        assert state_of(cluster, victim.url)["up"] is True
    finally:
        await cluster.aclose()


async def test_health_reports_up_down_and_missing_model(llm_node_factory, llm_node_url):
    dead_url = llm_node_factory.unused_url()
    cluster = make_cluster([llm_node_url, dead_url])
    other_model = make_cluster([llm_node_url], model="llama3.1:8b")
    try:
        up, down = await cluster.health()
        [lacking] = await other_model.health()
    finally:
        await cluster.aclose()
        await other_model.aclose()

    assert up.up is True and up.error is None
    assert up.version
    assert f"{TEST_MODEL_NAME}:latest" in up.models
    assert up.latency_ms is not None and up.latency_ms >= 0
    assert down.up is False and down.error and down.models == []
    assert lacking.up is False
    assert "llama3.1:8b" in lacking.error
    assert lacking.models == [f"{TEST_MODEL_NAME}:latest"]
    assert [state["up"] for state in cluster.nodes_state()] == [True, False]


async def test_chat_style_uses_the_chat_api(llm_node_url):
    cluster = make_cluster([llm_node_url], prompt_style="chat")
    try:
        answer = await cluster.generate(
            "The conveyor motor is overheating. What should I check?",
            system="You are a maintenance assistant.",
            options={"num_predict": 12, "seed": 3},
        )
        events = [event async for event in cluster.stream("Say hello.", options={"num_predict": 6, "seed": 3})]
    finally:
        await cluster.aclose()
    assert answer.node == llm_node_url
    assert answer.completion_tokens > 0
    assert isinstance(events[-1], DoneEvent)
    assert all(isinstance(event, TokenEvent) for event in events[:-1])
