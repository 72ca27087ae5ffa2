"""Split runbooks and knowledge documents (Markdown or plain text) into overlapping chunks.

Chunks follow the document's own structure where it has one: a Markdown heading starts a new
chunk (unless the running chunk is still tiny) and paragraphs stay whole while they fit.
Only a paragraph longer than a chunk is cut by words, with overlap, so no sentence near a cut
is lost to retrieval. Fenced code blocks are kept as one paragraph.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True)
class Chunk:
    """One piece of a document, with the heading path it sits under."""

    index: int
    text: str
    heading: str

    @property
    def word_count(self) -> int:
        """Words in the chunk's text."""
        return len(self.text.split())


@dataclass
class _Paragraph:
    text: str
    heading: str


def _paragraphs(text: str) -> list[_Paragraph]:
    """Paragraphs in order, each with its heading path ("Install > Network")."""
    paragraphs: list[_Paragraph] = []
    headings: list[tuple[int, str]] = []
    lines: list[str] = []
    in_fence = False

    def heading_path() -> str:
        return " > ".join(title for _, title in headings)

    def flush() -> None:
        body = "\n".join(lines).strip()
        if body:
            paragraphs.append(_Paragraph(body, heading_path()))
        lines.clear()

    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
            lines.append(line)
            continue
        heading = None if in_fence else _HEADING.match(line)
        if heading:
            flush()
            level = len(heading.group(1))
            headings = [(lvl, title) for lvl, title in headings if lvl < level]
            headings.append((level, heading.group(2)))
            paragraphs.append(_Paragraph("", heading_path()))  # marks a section start
        elif not line.strip() and not in_fence:
            flush()
        else:
            lines.append(line)
    flush()
    return paragraphs


def _split_long(words: list[str], chunk_words: int, overlap_words: int) -> list[list[str]]:
    """Windows of chunk_words words, each starting overlap_words before the previous end."""
    step = max(1, chunk_words - overlap_words)
    windows = []
    start = 0
    while True:
        windows.append(words[start : start + chunk_words])
        if start + chunk_words >= len(words):
            return windows
        start += step


def chunk_document(text: str, *, chunk_words: int = 180, overlap_words: int = 40) -> list[Chunk]:
    """Chunks of at most chunk_words words (a long paragraph is cut with overlap_words overlap)."""
    if chunk_words < 1 or not 0 <= overlap_words < chunk_words:
        raise ValueError("need chunk_words >= 1 and 0 <= overlap_words < chunk_words")
    min_words = max(1, chunk_words // 4)
    chunks: list[Chunk] = []
    pieces: list[str] = []
    piece_words = 0
    heading = ""

    def emit() -> None:
        nonlocal pieces, piece_words
        if pieces:
            chunks.append(Chunk(len(chunks), "\n\n".join(pieces), heading))
        pieces, piece_words = [], 0

    for paragraph in _paragraphs(text):
        if not paragraph.text:  # a heading: a new section starts unless the chunk is tiny
            if piece_words >= min_words:
                emit()
            if not pieces:
                heading = paragraph.heading
            continue
        words = paragraph.text.split()
        if piece_words + len(words) <= chunk_words:
            if not pieces:
                heading = paragraph.heading
            pieces.append(paragraph.text)
            piece_words += len(words)
            continue
        # Too long to join: close the chunk, and start the next one with the previous chunk's
        # last words when they belong to the same section and leave room.
        same_section = bool(pieces) and heading == paragraph.heading
        emit()
        carried = chunks[-1].text.split()[-overlap_words:] if same_section and overlap_words else []
        heading = paragraph.heading
        if len(carried) + len(words) <= chunk_words:
            pieces = [" ".join(carried), paragraph.text] if carried else [paragraph.text]
            piece_words = len(carried) + len(words)
            continue
        windows = _split_long(words, chunk_words, overlap_words)
        for window in windows[:-1]:
            chunks.append(Chunk(len(chunks), " ".join(window), heading))
        pieces, piece_words = [" ".join(windows[-1])], len(windows[-1])
    emit()
    return chunks
