"""The LLM node's pure request handling: options, stop sequences, chat transcripts, model names."""

from __future__ import annotations

import pytest

from llm_node.runner import InvalidGenerationRequest, SamplingOptions, StopSequenceFilter
from llm_node.server import NodeRequestError, canonical_model_name, chat_transcript


def test_ollama_options_map_to_sampling_with_ollama_defaults():
    sampling = SamplingOptions.from_ollama_options(
        {"num_predict": 16, "temperature": 0, "seed": 42, "stop": "\n\n", "mirostat": 2}
    )
    assert sampling.max_tokens == 16
    assert sampling.temperature == 0.0
    assert sampling.seed == 42
    assert sampling.stop == ("\n\n",)
    assert (sampling.top_k, sampling.top_p, sampling.repeat_penalty) == (40, 0.9, 1.1)
    assert SamplingOptions.from_ollama_options({"seed": -1}).seed is None


@pytest.mark.parametrize(
    "options",
    [{"temperature": "hot"}, {"num_predict": 2.5}, {"top_k": True}, {"stop": [1]}, ["num_predict", 3]],
)
def test_malformed_options_are_refused(options):
    with pytest.raises(InvalidGenerationRequest):
        SamplingOptions.from_ollama_options(options)


def test_stop_filter_never_emits_any_part_of_a_stop_sequence():
    stop_filter = StopSequenceFilter(("\nUser:",))
    emitted = []
    for piece in ["Check the", " fan.", "\n", "Us", "er: thanks"]:
        visible, stopped = stop_filter.feed(piece)
        emitted.append(visible)
        if stopped:
            break
    assert "".join(emitted) == "Check the fan."
    assert stopped


def test_stop_filter_releases_held_text_that_was_not_a_stop_sequence():
    stop_filter = StopSequenceFilter(("\nUser:",))
    assert stop_filter.feed("Done.\nU") == ("Done.", False)
    assert stop_filter.feed("nits: 3") == ("\nUnits: 3", False)
    assert stop_filter.feed("\n") == ("", False)
    assert stop_filter.flush() == "\n"


def test_chat_transcript_puts_system_first_and_ends_on_the_assistant_turn():
    prompt = chat_transcript(
        [
            {"role": "system", "content": "You are a maintenance assistant."},
            {"role": "user", "content": "Motor overheating. "},
            {"role": "assistant", "content": "Check the fan."},
            {"role": "user", "content": "Fan is fine."},
        ]
    )
    assert prompt == (
        "You are a maintenance assistant.\n\n"
        "User: Motor overheating.\nAssistant: Check the fan.\nUser: Fan is fine.\nAssistant:"
    )


@pytest.mark.parametrize("messages", [None, "hi", [{"content": "no role"}], [{"role": "user", "content": 3}]])
def test_malformed_chat_messages_are_a_400(messages):
    with pytest.raises(NodeRequestError) as refused:
        chat_transcript(messages)
    assert refused.value.status_code == 400


def test_model_names_without_a_tag_mean_latest():
    assert canonical_model_name("gemma3-270m") == "gemma3-270m:latest"
    assert canonical_model_name("llama3.1:8b") == "llama3.1:8b"
    assert canonical_model_name("registry.local:5000/team/model") == "registry.local:5000/team/model:latest"
