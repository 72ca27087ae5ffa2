"""The local LLM node answers the official `ollama` client like Ollama does (real model, real process)."""

from __future__ import annotations

import time

import httpx
import ollama
import pytest

from tests.fixtures.llm_nodes import TEST_MODEL_NAME

pytestmark = pytest.mark.slow

# A base model continues a count reliably, so greedy runs neither stop early nor vary.
COUNTING_PROMPT = "Count: 1, 2, 3, 4,"
GREEDY = {"temperature": 0, "num_predict": 8}


@pytest.fixture
async def client(llm_node_url: str):
    client = ollama.AsyncClient(host=llm_node_url, timeout=httpx.Timeout(120, connect=5))
    yield client
    await client.close()


async def test_client_lists_shows_and_reports_the_loaded_model(client: ollama.AsyncClient):
    listing = await client.list()
    [model] = listing.models
    assert model.model == f"{TEST_MODEL_NAME}:latest"
    assert model.size > 100_000_000
    assert len(model.digest) == 64
    assert model.details.family == "gemma3"
    assert model.details.quantization_level == "Q4_K_M"

    shown = await client.show(TEST_MODEL_NAME)
    assert shown.details.format == "gguf"
    assert shown.modelinfo["general.architecture"] == "gemma3"

    running = await client.ps()
    assert [entry.model for entry in running.models] == [f"{TEST_MODEL_NAME}:latest"]


async def test_generate_without_stream_returns_text_counts_and_durations(client: ollama.AsyncClient):
    reply = await client.generate(TEST_MODEL_NAME, COUNTING_PROMPT, raw=True, options=GREEDY)
    assert reply.done is True
    assert reply.model == TEST_MODEL_NAME
    assert reply.created_at
    assert "5" in reply.response
    assert reply.prompt_eval_count > 0
    assert 0 < reply.eval_count <= 8
    assert reply.total_duration >= reply.eval_duration > 0


async def test_streamed_generation_matches_the_whole_answer(client: ollama.AsyncClient):
    whole = await client.generate(TEST_MODEL_NAME, COUNTING_PROMPT, raw=True, options=GREEDY)
    parts = [
        part
        async for part in await client.generate(TEST_MODEL_NAME, COUNTING_PROMPT, raw=True, stream=True, options=GREEDY)
    ]
    assert len(parts) > 2
    assert all(not part.done for part in parts[:-1])
    final = parts[-1]
    assert final.done is True
    assert final.done_reason in ("stop", "length")
    assert final.eval_count == whole.eval_count
    assert "".join(part.response for part in parts) == whole.response


async def test_num_predict_limits_the_answer(client: ollama.AsyncClient):
    reply = await client.generate(
        TEST_MODEL_NAME, COUNTING_PROMPT, raw=True, options={"temperature": 0, "num_predict": 3}
    )
    assert reply.eval_count == 3
    assert reply.done_reason == "length"


async def test_stop_sequence_ends_the_answer_before_it(client: ollama.AsyncClient):
    reply = await client.generate(
        TEST_MODEL_NAME, COUNTING_PROMPT, raw=True, options={"temperature": 0, "num_predict": 12, "stop": ["7"]}
    )
    assert reply.done_reason == "stop"
    assert "7" not in reply.response
    assert "6" in reply.response


async def test_an_answer_does_not_depend_on_the_requests_before_it(client: ollama.AsyncClient):
    messages = [
        {"role": "system", "content": "You are a maintenance assistant in a factory."},
        {"role": "user", "content": "The conveyor motor on line 3 is overheating. What should I check first?"},
    ]
    options = {"num_predict": 16, "temperature": 0}
    first = (await client.chat(TEST_MODEL_NAME, messages, options=options)).message.content
    again = (await client.chat(TEST_MODEL_NAME, messages, options=options)).message.content  # prompt still cached
    await client.generate(TEST_MODEL_NAME, COUNTING_PROMPT, raw=True, options={"num_predict": 20})
    after_another = (await client.chat(TEST_MODEL_NAME, messages, options=options)).message.content
    assert first == again == after_another


async def test_chat_answers_as_the_assistant_with_and_without_stream(client: ollama.AsyncClient):
    messages = [
        {"role": "system", "content": "You are a maintenance assistant in a factory."},
        {"role": "user", "content": "The conveyor motor on line 3 is overheating. What should I check first?"},
    ]
    options = {"num_predict": 16, "seed": 7}  # sampled, but seeded: the same request gives the same answer
    reply = await client.chat(TEST_MODEL_NAME, messages, options=options)
    assert reply.message.role == "assistant"
    assert reply.done is True
    assert reply.eval_count > 0

    parts = [part async for part in await client.chat(TEST_MODEL_NAME, messages, stream=True, options=options)]
    assert parts[-1].done is True
    assert all(part.message.role == "assistant" for part in parts)
    assert "".join(part.message.content for part in parts) == reply.message.content


async def test_unknown_model_is_a_404_response_error(client: ollama.AsyncClient):
    with pytest.raises(ollama.ResponseError) as whole:
        await client.generate("llama3.1:8b", "hello")
    assert whole.value.status_code == 404
    assert whole.value.error == "model 'llama3.1:8b' not found"

    with pytest.raises(ollama.ResponseError) as streamed:
        async for _ in await client.chat("llama3.1:8b", [{"role": "user", "content": "hi"}], stream=True):
            pass
    assert streamed.value.status_code == 404


async def test_bad_json_and_bad_options_are_400(llm_node_url: str):
    async with httpx.AsyncClient(base_url=llm_node_url, timeout=30) as http:
        broken = await http.post("/api/generate", content=b'{"model": "gemma3-270m", "prompt": ')
        assert broken.status_code == 400
        assert "invalid JSON" in broken.json()["error"]

        wrong_type = await http.post(
            "/api/generate", json={"model": TEST_MODEL_NAME, "prompt": "x", "options": {"num_predict": "many"}}
        )
        assert wrong_type.status_code == 400
        assert wrong_type.json() == {"error": "options.num_predict must be a number"}

        not_an_object = await http.post("/api/chat", json=["model", TEST_MODEL_NAME])
        assert not_an_object.status_code == 400


async def test_abandoned_stream_stops_generating_and_frees_the_node(llm_node_url: str, client: ollama.AsyncClient):
    long_request = {
        "model": TEST_MODEL_NAME,
        "prompt": COUNTING_PROMPT,
        "raw": True,
        "options": {"temperature": 0, "num_predict": 1500},
    }
    async with httpx.AsyncClient(base_url=llm_node_url, timeout=60) as http:
        async with http.stream("POST", "/api/generate", json=long_request) as response:
            async for _ in response.aiter_lines():
                break  # one token arrived; leaving the block drops the connection

    started = time.monotonic()
    reply = await client.generate(TEST_MODEL_NAME, COUNTING_PROMPT, raw=True, options={"num_predict": 4})
    # Finishing 1500 tokens first would take tens of seconds even on a fast idle machine.
    assert time.monotonic() - started < 15
    assert reply.eval_count == 4
