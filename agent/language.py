"""Which language a report is written in (Spanish or English), from its function words."""

from __future__ import annotations

import re
from typing import Literal

Language = Literal["es", "en"]

_WORD = re.compile(r"[a-záéíóúüñ]+")
# Short, frequent function words that the other language rarely uses (no shared words such as "a", "no").
SPANISH_WORDS = frozenset(
    "el la los las un una unos unas de del al y o pero que en con por para sin se su sus es son está están "
    "estaba ha han hay fue era muy más como cuando donde porque este esta estos estas ese esa eso lo le les "
    "nos mi tu ya también sobre entre hasta desde tras después antes cada otro otra todos todas puede "
    "hacer tiene tienen falla fallo error funciona revisar comprobar cambiar".split()
)
ENGLISH_WORDS = frozenset(
    "the of and or but that in on with by for without is are was were be been has have had it its this "
    "these those there which when where because from after before each other all can could would should "
    "will not do does did any some my your our we they you he she into out up check replace fails".split()
)
_SPANISH_MARKS = re.compile(r"[ñ¿¡áéíóú]")
# Word endings that tell the languages apart when a short title has no function word.
_SPANISH_ENDINGS = ("cion", "ción", "ado", "ada", "idos", "idas", "mente", "dad")
_ENGLISH_ENDINGS = ("ing", "tion", "ed", "ness", "ly")


def language_scores(text: str) -> tuple[int, int]:
    """(Spanish, English) evidence in `text`: function words of each, plus Spanish-only characters."""
    lowered = text.lower()
    words = _WORD.findall(lowered)
    spanish = sum(1 for word in words if word in SPANISH_WORDS) + len(_SPANISH_MARKS.findall(lowered))
    english = sum(1 for word in words if word in ENGLISH_WORDS)
    if spanish == english:  # a tie on function words: word endings decide
        spanish += sum(1 for word in words if len(word) > 4 and word.endswith(_SPANISH_ENDINGS))
        english += sum(1 for word in words if len(word) > 4 and word.endswith(_ENGLISH_ENDINGS))
    return spanish, english


def detect_language(text: str, default: Language = "es") -> Language:
    """The language of `text`; `default` when the text gives no evidence either way."""
    spanish, english = language_scores(text)
    if spanish == english:
        return default
    return "es" if spanish > english else "en"
