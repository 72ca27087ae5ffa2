"""The scores of `prs bench suggestions dell`: each one on texts where the right figure is known."""

from __future__ import annotations

import pytest

from agent.language import detect_language
from bench import suggestion_metrics as m


def test_token_f1_is_one_for_the_same_words_and_counts_partial_overlap():
    assert m.token_f1("Replace the fan", "replace the FAN") == 1.0
    # prediction 4 tokens, reference 2, overlap 2: precision 0.5, recall 1 -> F1 2/3
    assert m.token_f1("replace the fan now", "replace fan") == pytest.approx(2 / 3)
    assert m.token_f1("nothing shared", "replace fan") == 0.0


def test_citation_markers_and_step_numbers_do_not_count_as_words():
    assert m.token_f1("1. Replace the fan [#12]\n2. Update firmware [D7]", "Replace the fan. Update firmware") == 1.0


def test_rouge_l_rewards_the_order_of_the_reference():
    reference = "update the bios then reseat the memory"
    in_order = m.rouge_l("update the bios then reseat the memory", reference)
    shuffled = m.rouge_l("reseat the memory then update the bios", reference)
    assert in_order == 1.0 and shuffled < in_order
    assert m.token_f1("reseat the memory then update the bios", reference) == 1.0


def test_support_is_the_share_of_sentences_mostly_made_of_source_words():
    sources = ["Reseat the DIMM in slot A1 and update the BIOS."]
    assert m.support("Reseat the DIMM in slot A1. Update the BIOS.", sources) == 1.0
    assert m.support("Reseat the DIMM. Replace the motor shaft with a bearing kit.", sources) == 0.5
    assert m.support("", sources) == 1.0


def test_numbers_and_part_codes_missing_from_the_sources_are_counted():
    unsupported, found = m.unsupported_numbers(
        "Set PID gain to 0.56 on the R420 with firmware 2.21", ["PowerEdge R420 CMC firmware 2.21"]
    )
    assert (unsupported, found) == (1, 3)


def test_dangling_markers_are_artifacts_and_clean_text_has_none():
    assert m.artifacts("check the housing (see ). If it is not present") == 1
    assert m.artifacts("as in case , replace []") == 2
    assert m.artifacts("Recommended steps:\n1. 2. \n3. \n4. ") >= 1
    assert m.artifacts("1. Reseat the DIMM [#12]\n2. Update the BIOS [D4]") == 0


def test_language_match_compares_with_the_report_or_the_language_asked_for():
    assert m.language_match("Replace the fan and check the filter.", "The fan of the server is noisy")
    assert not m.language_match("Cambie el ventilador y revise el filtro.", "The fan of the server is noisy")
    assert m.language_match("Cambie el ventilador y revise el filtro.", "The fan is noisy", expected="es")


def test_citation_valid_is_the_share_of_citations_that_were_retrieved():
    assert m.citation_valid([12, "D4"], [12, 13, "D4"]) == 1.0
    assert m.citation_valid([12, 99], [12]) == 0.5
    assert m.citation_valid([], [12]) == 1.0


def test_report_language_is_detected_from_function_words_and_endings():
    assert detect_language("El motor de la cinta se para con alarma E-4021") == "es"
    assert detect_language("The conveyor motor stops with alarm E-4021 after it heats up") == "en"
    assert detect_language("Conveyor motor overheating") == "en"
    assert detect_language("Cinta transportadora parada") == "es"
    assert detect_language("PLC E-4021", default="en") == "en"
