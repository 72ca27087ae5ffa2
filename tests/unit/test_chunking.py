"""Splitting runbooks into chunks that follow their structure and never lose text at a cut."""

import pytest

from agent.chunking import chunk_document


def words(prefix: str, count: int) -> str:
    return " ".join(f"{prefix}{i}" for i in range(count))


def test_a_short_document_is_one_chunk_with_its_heading():
    chunks = chunk_document("# Zebra printer\n\nRecalibrate the media sensor.", chunk_words=50, overlap_words=10)
    assert len(chunks) == 1
    assert chunks[0].heading == "Zebra printer"
    assert chunks[0].text == "Recalibrate the media sensor."


def test_headings_start_new_chunks_and_carry_their_path():
    text = (
        f"# Conveyor runbook\n\n{words('a', 30)}\n\n"
        f"## Diagnosis\n\n{words('b', 30)}\n\n"
        f"### Motor current\n\n{words('c', 30)}\n\n"
        f"## Repair\n\n{words('d', 30)}\n"
    )
    chunks = chunk_document(text, chunk_words=40, overlap_words=5)
    assert [c.heading for c in chunks] == [
        "Conveyor runbook",
        "Conveyor runbook > Diagnosis",
        "Conveyor runbook > Diagnosis > Motor current",
        "Conveyor runbook > Repair",
    ]
    assert [c.index for c in chunks] == [0, 1, 2, 3]


def test_a_tiny_section_joins_the_next_one_instead_of_standing_alone():
    text = f"# Title\n\nIntro.\n\n## Steps\n\n{words('s', 20)}\n"
    chunks = chunk_document(text, chunk_words=40, overlap_words=5)
    assert len(chunks) == 1
    assert chunks[0].text.startswith("Intro.") and "s19" in chunks[0].text


def test_a_long_paragraph_is_cut_into_overlapping_windows_covering_every_word():
    chunks = chunk_document(words("w", 100), chunk_words=30, overlap_words=10)
    assert all(c.word_count <= 30 for c in chunks)
    for previous, following in zip(chunks, chunks[1:]):
        assert previous.text.split()[-10:] == following.text.split()[:10]
    covered = {word for c in chunks for word in c.text.split()}
    assert covered == set(words("w", 100).split())


def test_paragraphs_that_do_not_fit_together_overlap_within_a_section():
    text = f"{words('p', 25)}\n\n{words('q', 25)}"
    first, second = chunk_document(text, chunk_words=30, overlap_words=5)
    assert first.text == words("p", 25)
    assert second.text.split()[:5] == words("p", 25).split()[-5:]
    assert second.text.endswith("q24")


def test_no_chunk_exceeds_the_word_limit_on_mixed_text():
    text = "\n\n".join(words(f"x{n}_", size) for n, size in enumerate([5, 50, 12, 70, 3, 33, 29]))
    chunks = chunk_document(text, chunk_words=30, overlap_words=8)
    assert all(1 <= c.word_count <= 30 for c in chunks)


def test_a_fenced_code_block_with_blank_lines_stays_whole():
    text = "# Fix\n\n```\nsystemctl stop prs\n\nsystemctl start prs\n```\n"
    (chunk,) = chunk_document(text, chunk_words=50, overlap_words=5)
    assert "systemctl stop prs\n\nsystemctl start prs" in chunk.text


def test_a_hash_line_inside_code_is_not_a_heading():
    text = "```\n# not a heading\necho ok\n```"
    (chunk,) = chunk_document(text, chunk_words=50, overlap_words=5)
    assert chunk.heading == ""


def test_blank_text_has_no_chunks():
    assert chunk_document(" \n\n \r\n", chunk_words=50, overlap_words=5) == []


@pytest.mark.parametrize("chunk_words, overlap_words", [(0, 0), (10, 10), (10, -1)])
def test_impossible_sizes_are_refused(chunk_words, overlap_words):
    with pytest.raises(ValueError):
        chunk_document("text", chunk_words=chunk_words, overlap_words=overlap_words)
