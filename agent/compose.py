"""Extractive composition: a suggestion made of sentences taken from the retrieved cases, each citing its source.

Nothing in a step is written by a model: the steps are the cases' own sentences, cleaned of markup and
markers, with sentences that address an assistant, ask for configuration or secrets, or carry no content
left out. A small model cannot invent parts or numbers this way; see docs/suggestions.md for the measurements.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from agent.language import language_scores
from agent.types import CaseForPrompt

Language = Literal["es", "en"]

_SCRIPT_BLOCK = re.compile(r"<(script|style|iframe)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]{0,200}>")
_MARKDOWN_LINK = re.compile(r"!?\[([^\]]{0,200})\]\((?:[^()]|\([^()]*\))*\)")
_ANGLE = re.compile(r"[<>]")
_MARKER = re.compile(r"\[\s*(?:#|D|doc:)[^\]]{0,80}\]|\[\s*\]|\(\s*(?:see|ver|véase)?\s*\)", re.IGNORECASE)
_EMPTY_MARKER = re.compile(r"\[\s*#?\s*\]|\(\s*(?:see|ver|véase)?\s*\)", re.IGNORECASE)
_ANY_MARKER = re.compile(r"\[(?:#|D)\d{1,12}\]")
_NUMBER = re.compile(r"\w*\d\w*")
_NUMERIC_CODE = re.compile(r"[\w.\-/]*\d[\w.\-/]*")  # a version or code with its dots and dashes: 6.5.2, E-4012
_URL = re.compile(r"\b(?:javascript|vbscript|data):\S*", re.IGNORECASE)  # links that run code; web links stay as text
_SPACES = re.compile(r"\s+")
_SPACE_BEFORE_STOP = re.compile(r" ([.,;:!?])")
# Sentence ends, also where a forum post lost the space after the full stop ("Hello.Unfortunately").
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[a-z)][.!?])(?=[A-Z])|\s*\n+\s*")
_WORD = re.compile(r"\w+", re.UNICODE)
# Text addressed to an assistant rather than to a technician: never copied into a suggestion.
_INSTRUCTION = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b.{0,40}\b(?:instruction|rule|prompt|above|previous|system)"
    r"|\b(?:ignora|olvida|omite)\b.{0,40}\b(?:instrucci|regla|prompt|anterior|sistema)"
    r"|\b(?:system prompt|as an ai|language model|assistant|asistente|modelo de lenguaje|jailbreak)\b"
    r"|\b(?:you are now|from now on|a partir de ahora|ahora eres|responde siempre|answer only|"
    r"respond only|reply only|always answer)\b"
    r"|\b(?:answer|reply|respond|write|responde|responder|contesta|escribe)\s+(?:only\s+|solo\s+)?(?:in|en)\s+"
    r"(?:english|spanish|french|german|another|inglés|ingles|español|francés|frances|alemán|otro)\b"
    r"|\b(?:cite|cita|citar)\b.{0,30}(?:#|\bcase|\bcaso)"
    r"|\brepeat\b.{0,30}\b(?:times|forever)\b|\brepite\b.{0,30}\b(?:veces|siempre)\b",
    re.IGNORECASE | re.DOTALL,
)
# Configuration and secrets: environment variables, passwords, keys, tokens, connection strings.
# PRS_JWT_SECRET, DATABASE_URL=..., $HOME; not hardware ids such as VEN_8086 or SUBSYS_A11C8086.
_ENV_NAME = re.compile(
    r"\b(?:PRS|AWS|AZURE|GCP|DATABASE|DB|POSTGRES|PG|REDIS|SMTP|LDAP|JWT|API|SECRET|OLLAMA|OPENAI)"
    r"_[A-Z0-9_]+\b|\b[A-Z][A-Z0-9]*_[A-Z0-9_]{2,}\s*=|\$\{?[A-Z_]{3,}"
)
_SECRET = re.compile(
    r"\b(?:getenv|os\.environ|printenv|environment variables?"
    r"|variables? de entorno)\b|\b\w+://[^\s/]*@"
    r"|\b(?:password|passwd|contraseña|secret|secreto|api[ _-]?key|token|clave)s?\s*(?:[:=]|is\b|es\b|was\b)"
    r"|\b(?:reveal|print|show|send|dump|display|output|list|muestra|revela|imprime|envía|enseña|lista)\b.{0,50}"
    r"\b(?:password|secret|token|key|config|configuration|settings|environment|contraseña|secreto|clave|"
    r"configuración|entorno|variables)",
    re.IGNORECASE,
)
_GREETING = re.compile(
    r"^(?:hi|hello|hey|dear|thanks|thank you|regards|cheers|best|hola|buenas|gracias|saludos|un saludo)\b",
    re.IGNORECASE,
)
_STOPWORDS = frozenset(
    "a an the of and or but to in on at by for with from is are was were be been it its this that these those "
    "there as if then than so not no do does did have has had can could would should will may you your we "
    "our they i me my el la los las un una de del al y o en con por para sin se su es son lo le que como "
    "más muy ya este esta hay no".split()
)

_LABELS = {
    "es": {
        "none": "Ningún caso resuelto ni documento se parece lo bastante a esta incidencia para proponer pasos. "
        "Descríbala con más detalle (equipo, alarma o código, qué se ha probado) o escálela a un técnico."
    },
    "en": {
        "none": "No resolved case or document matches this report closely enough to suggest steps. Describe "
        "it in more detail (equipment, alarm or code, what was tried) or escalate it to a technician."
    },
}
# The line that leads a suggestion whose copied steps do not read as the report's language by themselves: steps
# in no recognisable language ("Dell Command Update 4.3."), or steps quoted from cases written in the other one.
_FRAMES = {
    "es": {
        "neutral": "Pasos de los casos resueltos más parecidos:",
        "foreign": "Pasos de los casos resueltos más parecidos (se citan tal como se escribieron, en inglés):",
    },
    "en": {
        "neutral": "Steps from the most similar resolved cases:",
        "foreign": "Steps from the most similar resolved cases (quoted as they were written, in Spanish):",
    },
}


# A sentence is supported when more than this share of its content words occur in its source (and the report).
SUPPORT_SHARE = 0.5


def marker_of(incident_id: int | None, document_id: int | None) -> str:
    """The citation marker of an incident ([#12]) or, without one, of a document ([D3])."""
    return f"[#{incident_id}]" if incident_id is not None else f"[D{document_id}]"


@dataclass(frozen=True)
class Source:
    """One retrieved incident or document (its chunks joined), with the sentences a suggestion may copy."""

    incident_id: int | None
    document_id: int | None
    score: float
    sentences: tuple[str, ...]

    @property
    def marker(self) -> str:
        """The citation marker of this source in the suggestion text."""
        return marker_of(self.incident_id, self.document_id)


@dataclass(frozen=True)
class Step:
    """One sentence of a suggestion and the source it was copied from."""

    text: str
    source: Source

    def render(self, number: int) -> str:
        """The numbered line of this step, with its citation."""
        return f"{number}. {self.text} {self.source.marker}"


def no_match_text(language: Language) -> str:
    """What a suggestion says when nothing retrieved is relevant enough."""
    return _LABELS[language]["none"]


def clean(text: str) -> str:
    """Case text as plain text: no scripts, tags, angle brackets, links that run code or runs of spaces."""
    text = _SCRIPT_BLOCK.sub(" ", text)
    text = _MARKDOWN_LINK.sub(r"\1", text)
    text = _TAG.sub(" ", text)
    text = _ANGLE.sub(" ", text)
    text = _URL.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def clean_generated(text: str) -> str:
    """Generated text as plain text: like `clean`, but citation markers of the answer are kept."""
    text = _SCRIPT_BLOCK.sub(" ", text)
    text = _MARKDOWN_LINK.sub(r"\1", text)
    text = _TAG.sub(" ", text)
    text = _ANGLE.sub(" ", text)
    text = _URL.sub(" ", text)
    text = _EMPTY_MARKER.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def coverage(sentence: str, known_text: str) -> float:
    """Share of a sentence's content words that occur in `known_text`; 0.0 when a number, part code or version of
    the sentence ("6.5.2", "E-4012", "R420") does not occur in it whole, or when the sentence has no content word."""
    lowered = known_text.lower()
    known = set(_WORD.findall(lowered))
    plain = _ANY_MARKER.sub(" ", sentence).lower()
    words = [w for w in _WORD.findall(plain) if w not in _STOPWORDS and len(w) > 1]
    if not words:
        return 0.0
    codes = (code.strip(".-/") for code in _NUMERIC_CODE.findall(plain))
    if not all(number in known for number in _NUMBER.findall(plain)) or not all(c in lowered for c in codes):
        return 0.0
    return sum(1 for w in words if w in known) / len(words)


def supported(sentence: str, known_text: str, *, share: float = SUPPORT_SHARE) -> bool:
    """Whether more than `share` of a sentence's content words, and every number or code in it, occur in
    `known_text` (the cases and the report)."""
    return coverage(sentence, known_text) > share


def strip_markers(text: str) -> str:
    """The text without the answer's own citation markers ([#12], [D3])."""
    return _SPACE_BEFORE_STOP.sub(r"\1", _SPACES.sub(" ", _ANY_MARKER.sub(" ", text))).strip()


def split_sentences(text: str) -> list[str]:
    """The sentences of a (cleaned) text. A full stop glued to the next word ends a sentence ("Hello.Unfortunately")
    unless the word is part of a path or dotted name ("/redfish/v1/Chassis/System.Embedded.1/Assembly")."""
    parts, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        if match.start() == match.end() and _in_path(text, match.start()):
            continue
        parts.append(text[start : match.start()])
        start = match.end()
    parts.append(text[start:])
    return [part.strip(" -*•") for part in parts if part and part.strip(" -*•")]


def _in_path(text: str, position: int) -> bool:
    """Whether `position` lies inside a token with a slash or two dots: a path, a URL or a dotted name."""
    left = text.rfind(" ", 0, position) + 1
    right = text.find(" ", position)
    token = text[left : right if right >= 0 else len(text)]
    return "/" in token or token.count(".") >= 2


def content_word_count(sentence: str) -> int:
    """Words that carry meaning (no function words, no one-letter tokens)."""
    return sum(1 for word in _WORD.findall(sentence.lower()) if word not in _STOPWORDS and len(word) > 1)


def copyable(sentence: str, *, min_content_words: int = 2, max_chars: int = 600) -> bool:
    """Whether a case sentence may become a step: content, no greeting, no reference to another case (it means
    nothing out of its context), nothing addressed to an assistant, no configuration or secrets."""
    return (
        content_word_count(sentence) >= min_content_words
        and len(sentence) <= max_chars
        and not (_GREETING.match(sentence) and content_word_count(sentence) < 5)
        and not _MARKER.search(sentence)
        and not _INSTRUCTION.search(sentence)
        and not _SECRET.search(sentence)
        and not _ENV_NAME.search(sentence)
    )


def sources_of(cases: list[CaseForPrompt]) -> list[Source]:
    """Cases grouped by what they cite (a document's chunks become one source), best first, sentences deduplicated."""
    grouped: dict[tuple[str, int], dict[str, Any]] = {}
    for case in cases:
        ident = case.incident_id if case.incident_id is not None else case.document_id
        if ident is None:
            continue  # a document chunk without its document id cannot be cited
        key = ("incident" if case.incident_id is not None else "document", ident)
        entry = grouped.setdefault(key, {"score": case.score, "sentences": []})
        entry["score"] = max(entry["score"], case.score)
        for sentence in split_sentences(clean(case.solution)):
            if sentence not in entry["sentences"]:
                entry["sentences"].append(sentence)
    sources = [
        Source(
            incident_id=key[1] if key[0] == "incident" else None,
            document_id=key[1] if key[0] == "document" else None,
            score=entry["score"],
            sentences=tuple(entry["sentences"]),
        )
        for key, entry in grouped.items()
    ]
    return sorted(sources, key=lambda source: -source.score)


def select_sources(sources: list[Source], *, min_score: float, relative_score: float, max_sources: int) -> list[Source]:
    """The sources worth showing: the best if it reaches `min_score`, then others close enough to it."""
    if not sources or sources[0].score < min_score:
        return []
    best = sources[0].score
    chosen = [s for s in sources if s.score >= max(min_score, best * relative_score)]
    return chosen[:max_sources]


def compose_steps(sources: list[Source], *, max_steps: int, max_chars: int, extra_source_steps: int = 1) -> list[Step]:
    """Steps in the given source order, each source's sentences in their own order, within the limits. Every
    source after the first adds at most `extra_source_steps`, and their room is kept first, so a long first
    source is shown nearly whole but cannot crowd the others out."""

    def line_length(step: Step) -> int:
        return len(step.text) + len(step.source.marker) + 6  # "12. " + " " + newline

    extras: list[Step] = []
    for source in sources[1:]:
        extras += [Step(s, source) for s in source.sentences if copyable(s)][:extra_source_steps]
    extras = extras[: max(0, max_steps - 1)]
    room_steps, room_chars = max_steps - len(extras), max_chars - sum(line_length(step) for step in extras)
    first: list[Step] = []
    for sentence in sources[0].sentences if sources else ():
        step = Step(sentence, sources[0])
        if not copyable(sentence):
            continue
        if len(first) >= room_steps or line_length(step) > room_chars:
            break
        first.append(step)
        room_chars -= line_length(step)
    while extras and sum(line_length(step) for step in first + extras) > max_chars:
        extras.pop()
    return first + extras


def render_steps(steps: list[Step]) -> str:
    """The steps: one numbered, cited line per step."""
    return "\n".join(step.render(number) for number, step in enumerate(steps, start=1))


def reads_as(text: str, language: Language) -> bool | None:
    """True when `text` reads as `language`, False when it reads as the other one, None when it gives no
    evidence either way (function words, Spanish-only letters, word endings)."""
    spanish, english = language_scores(text)
    if spanish == english:
        return None
    return (spanish > english) == (language == "es")


def frame(steps_text: str, language: Language) -> str | None:
    """The lead line in `language` for steps that do not read as it by themselves, else None. Steps are the cases'
    own words and are never translated (a small model would invent): steps quoted in the other language say so."""
    verdict = reads_as(steps_text, language)
    if verdict is True or not steps_text:
        return None
    return _FRAMES[language]["neutral" if verdict is None else "foreign"]


def render_suggestion(steps: list[Step], language: Language, *, framed_as: list[Step] | None = None) -> str:
    """The suggestion text: the steps, led by a line in the report's language when they do not read as it.
    `framed_as`: the steps that decide the lead line (all of them while the first few stream), else `steps`."""
    text = render_steps(steps)
    lead = frame(strip_markers(render_steps(framed_as) if framed_as is not None else text), language)
    return f"{lead}\n{text}" if lead else text


def source_language(source: Source) -> Language | None:
    """The language a source's sentences are written in, None when they give no evidence."""
    spanish = reads_as(" ".join(source.sentences), "es")
    return None if spanish is None else "es" if spanish else "en"


def prefer_language(sources: list[Source], language: Language) -> list[Source]:
    """The sources in order, those written in `language` (or in none recognisable) before those in the other one."""
    return sorted(sources, key=lambda source: source_language(source) not in (language, None))
