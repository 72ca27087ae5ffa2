"""Scores of one suggestion against a reference answer and the text it may rely on (pure functions).

Every score reads the text a person reads: citation markers ([#12], [D3]) and list numbers are taken out
first, since they are references, not content.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from agent.language import detect_language

_TOKEN = re.compile(r"\w+", re.UNICODE)
_MARKER = re.compile(r"\[(?:#\d{1,12}|D\d{1,12}|doc:[^\]]*)\]")
_LIST_NUMBER = re.compile(r"(?m)^\s*\d{1,3}[.)]\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
# A number, a part code or a version: any token with a digit (6.5, R420, E-4012, 2.21, 0x1F).
_NUMERIC = re.compile(r"\b[\w.\-/]*\d[\w.\-/]*\b", re.UNICODE)
_ARTIFACTS = [
    re.compile(r"\(\s*(?:see|ver|véase|cf\.?)?\s*\)", re.IGNORECASE),  # "(see )", "()"
    re.compile(r"\[\s*#?\s*\]"),  # "[]", "[#]"
    re.compile(r"\b(?:case|cases|caso|casos|document|documento)\s+[,.;:)]", re.IGNORECASE),  # "case ,"
    re.compile(r"(?m)^\s*\d{1,3}[.)]\s*$"),  # an empty numbered step: "2."
    re.compile(r"(?:\b\d{1,3}\.\s+){3,}"),  # "1. 2. 3. ..." with nothing in between
]
STOPWORDS = frozenset(
    "a an the of and or but to in on at by for with without from into over under is are was were be been being "
    "it its this that these those there here as if then than so not no yes do does did have has had can could "
    "would should will may might must you your we our they their he she his her i me my also any all some "
    "el la los las un una unos unas de del al y o u pero a en con por para sin se su sus es son está están "
    "fue era ser lo le les que como más muy ya también este esta estos estas ese esa eso hay no sí".split()
)


def strip_markers(text: str) -> str:
    """The text without citation markers and list numbers."""
    return _LIST_NUMBER.sub("", _MARKER.sub(" ", text))


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens of the text, markers removed."""
    return _TOKEN.findall(strip_markers(text).lower())


def content_words(text: str) -> list[str]:
    """Tokens that carry meaning: not stopwords, and longer than two characters unless they hold a digit."""
    return [t for t in tokens(text) if t not in STOPWORDS and (len(t) > 2 or any(c.isdigit() for c in t))]


def token_f1(prediction: str, reference: str) -> float:
    """Bag-of-tokens F1 (as in SQuAD) between a prediction and a reference."""
    predicted, expected = tokens(prediction), tokens(reference)
    if not predicted or not expected:
        return float(predicted == expected)
    overlap = sum((Counter(predicted) & Counter(expected)).values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(predicted), overlap / len(expected)
    return 2 * precision * recall / (precision + recall)


def _lcs_length(first: list[str], second: list[str]) -> int:
    previous = [0] * (len(second) + 1)
    for word in first:
        current = [0]
        for position, other in enumerate(second, start=1):
            current.append(previous[position - 1] + 1 if word == other else max(previous[position], current[-1]))
        previous = current
    return previous[-1]


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1: longest common subsequence of tokens, over both lengths."""
    predicted, expected = tokens(prediction), tokens(reference)
    if not predicted or not expected:
        return float(predicted == expected)
    common = _lcs_length(predicted, expected)
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def sentences(text: str) -> list[str]:
    """The sentences of a text, markers and list numbers removed, empty ones dropped."""
    return [part.strip() for part in _SENTENCE_END.split(strip_markers(text)) if part.strip()]


def support(suggestion: str, sources: Iterable[str], *, share: float = 0.5) -> float:
    """Share of the suggestion's sentences whose content words are mostly (> `share`) found in the sources;
    sentences without content words are not counted; 1.0 when none is left."""
    known = {word for source in sources for word in content_words(source)}
    judged = supported = 0
    for sentence in sentences(suggestion):
        words = content_words(sentence)
        if not words:
            continue
        judged += 1
        supported += sum(1 for word in words if word in known) / len(words) > share
    return supported / judged if judged else 1.0


def numbers(text: str) -> list[str]:
    """Numbers, part codes and versions in a text (markers and list numbers excluded), lower-cased."""
    return [match.strip(".-/").lower() for match in _NUMERIC.findall(strip_markers(text))]


def unsupported_numbers(suggestion: str, sources: Iterable[str]) -> tuple[int, int]:
    """(numbers of the suggestion found in none of the sources, numbers in the suggestion)."""
    known = {number for source in sources for number in numbers(source)}
    found = numbers(suggestion)
    return sum(1 for number in found if number not in known), len(found)


def artifacts(text: str) -> int:
    """Dangling markers: "(see )", empty brackets, "case ,", empty numbered steps."""
    return sum(len(pattern.findall(text)) for pattern in _ARTIFACTS)


def language_match(suggestion: str, report: str, *, expected: str | None = None) -> bool:
    """Whether the suggestion is in the report's language (or in `expected` when one was asked for)."""
    return detect_language(suggestion) == (expected or detect_language(report))


def citation_valid(cited: Iterable[object], retrieved: Iterable[object]) -> float:
    """Share of citations that name something retrieved; 1.0 when there are none."""
    cited = list(cited)
    allowed = set(retrieved)
    return sum(1 for item in cited if item in allowed) / len(cited) if cited else 1.0
