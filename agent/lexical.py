"""Tokenizer for lexical (BM25) retrieval: pure functions, no state.

Tokens are lower-cased, accent-folded alphanumeric runs. Identifiers keep their whole form too,
so an error code ("E-4021"), a dotted property ("dfs.replication") or a class name
("DFSClient", also split into "dfs" and "client") can be matched exactly or by its parts.
Measured on the evaluation corpora (docs/knowledge.md), each of these choices raised BM25's
recall: stopwords, whole compounds, camelCase parts, and the title counted three times.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter

ENGLISH_STOPWORDS = frozenset(
    """a about after all also am an and any are as at be been before being but by can could did do
    does doing for from had has have having he her here his how i if in into is it its just me more
    most my no nor not of on once only or other our out over own same she should so some such than
    that the their them then there these they this those through to too under until up very was we
    were what when where which while who whom why will with would you your""".split()
)
SPANISH_STOPWORDS = frozenset(
    """a al algo como con cual cuando de del desde donde el ella ellas ellos en entre era es esa ese
    eso esta estaba estan este esto estos fue ha han hay la las le les lo los mas me mi muy no nos o
    para pero por que se sea ser si sin sobre su sus tambien te tiene tu un una unas uno unos y ya""".split()
)
STOPWORDS = ENGLISH_STOPWORDS | SPANISH_STOPWORDS

# How many times the title's tokens count in an indexed text (a cheap field boost).
TITLE_REPEAT = 3
# Longer runs are blobs (hashes, base64, minified paths), not words anyone searches for.
MAX_TOKEN_CHARS = 64

_COMPOUND = re.compile(r"[A-Za-z0-9]+(?:[-_.:/#][A-Za-z0-9]+)*")
_SEPARATORS = re.compile(r"[-_.:/#]")
_CAMEL_PARTS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def fold_accents(text: str) -> str:
    """Remove diacritics (é -> e, ñ -> n) without changing case."""
    if text.isascii():  # nothing to fold, and most texts are
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def _keep(token: str) -> bool:
    if len(token) > MAX_TOKEN_CHARS or token in STOPWORDS:
        return False
    return len(token) >= 2 or token.isdigit()


@functools.lru_cache(maxsize=1 << 16)
def _compound_tokens(compound: str) -> tuple[str, ...]:
    """Tokens of one alphanumeric run with its separators; cached, as words repeat (Zipf) across texts."""
    tokens: list[str] = []
    parts = _SEPARATORS.split(compound)
    for part in parts:
        lowered = part.lower()
        if _keep(lowered):
            tokens.append(lowered)
        camel = _CAMEL_PARTS.findall(part)
        if len(camel) > 1:
            tokens.extend(piece.lower() for piece in camel if _keep(piece.lower()))
    if len(parts) > 1 and len(compound) <= MAX_TOKEN_CHARS:
        tokens.append(compound.lower())
    return tuple(tokens)


def tokenize(text: str) -> list[str]:
    """Lexical tokens of a text, in order, repeated as often as they occur."""
    tokens: list[str] = []
    for compound in _COMPOUND.findall(fold_accents(text)):
        tokens.extend(_compound_tokens(compound))
    return tokens


def document_tokens(title: str, body: str) -> list[str]:
    """Tokens of an indexed entry: the title counts TITLE_REPEAT times, then the body."""
    title_tokens = tokenize(title)
    return title_tokens * TITLE_REPEAT + tokenize(body)


def term_frequencies(tokens: list[str]) -> dict[str, int]:
    """How often each distinct token occurs."""
    return dict(Counter(tokens))
