"""Prompt -> generate -> grounded Suggestion. The backend supplies the retrieved cases."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Awaitable, Callable, Literal

from agent.llm import DoneEvent, LanguageModel, LLMCluster, RestartEvent, TokenEvent
from agent.types import CaseForPrompt, Suggestion

Language = Literal["es", "en"]

_CASE_LABELS = {
    "es": {
        "case": "CASO",
        "doc": "DOCUMENTO",
        "end": "FIN",
        "title": "Título",
        "problem": "Problema",
        "solution": "Solución",
        "none": "(No hay casos resueltos parecidos.)",
        "primer_cited": "Según el caso [#{id}], ",
        "primer_plain": "Pasos recomendados:\n1. ",
    },
    "en": {
        "case": "CASE",
        "doc": "DOCUMENT",
        "end": "END",
        "title": "Title",
        "problem": "Problem",
        "solution": "Solution",
        "none": "(No similar resolved cases.)",
        "primer_cited": "Based on case [#{id}], ",
        "primer_plain": "Recommended steps:\n1. ",
    },
}
_CITATION = re.compile(r"\[?#(\d{1,12})\]?")
_FIELD_CHARS = 700
_INCIDENT_CHARS = 1500
STOP_SEQUENCES = ["<<<", "=== ", "\n\n\n"]


def _as_data(text: str, limit: int) -> str:
    """Neutralise fence markers inside retrieved text and cut it to size."""
    text = text.replace("<<<", "«").replace(">>>", "»").replace("===", "=")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def load_template(language: Language) -> str:
    """The prompt template of one language."""
    return resources.files("agent.prompts").joinpath(f"{language}.txt").read_text(encoding="utf-8")


def render_cases(cases: list[CaseForPrompt], language: Language) -> str:
    """The fenced block of retrieved cases; each is marked as data and carries its citation marker."""
    labels = _CASE_LABELS[language]
    if not cases:
        return labels["none"] + "\n"
    blocks = []
    for case in cases:
        if case.incident_id is not None:
            head = f"{labels['case']} [#{case.incident_id}]"
        else:
            head = f'{labels["doc"]} "{_as_data(case.document_title or "", 80)}"'
        blocks.append(
            f"<<<{head}\n"
            f"{labels['title']}: {_as_data(case.title, 200)}\n"
            f"{labels['problem']}: {_as_data(case.problem, _FIELD_CHARS)}\n"
            f"{labels['solution']}: {_as_data(case.solution, _FIELD_CHARS)}\n"
            f"{labels['end']} {head}>>>\n"
        )
    return "\n".join(blocks)


def prompt_primer(cases: list[CaseForPrompt], language: Language) -> str:
    """How the answer starts: with the best retrieved incident cited, so even a small base model grounds itself."""
    labels = _CASE_LABELS[language]
    first = next((c for c in cases if c.incident_id is not None), None)
    return labels["primer_cited"].format(id=first.incident_id) if first else labels["primer_plain"]


def build_prompt(*, title: str, description: str, area: str, cases: list[CaseForPrompt], language: Language) -> str:
    """A completion-style prompt: instructions, fenced cases, the new incident, then the answer's start."""
    return load_template(language).format(
        cases=render_cases(cases, language),
        area=_as_data(area, 64),
        title=_as_data(title, 200),
        description=_as_data(description, _INCIDENT_CHARS),
        primer=prompt_primer(cases, language),
    )


def ground_citations(text: str, retrieved_ids: set[int]) -> tuple[str, list[int]]:
    """Keep citations of retrieved incidents only; markers of anything else are removed from the text."""
    cited: list[int] = []

    def keep_or_drop(match: re.Match[str]) -> str:
        incident_id = int(match.group(1))
        if incident_id in retrieved_ids:
            if incident_id not in cited:
                cited.append(incident_id)
            return f"[#{incident_id}]"
        return ""

    grounded = _CITATION.sub(keep_or_drop, text)
    grounded = re.sub(r"[ \t]{2,}", " ", grounded).strip()
    return grounded, cited


@dataclass
class Suggester:
    """Generates a suggestion for one incident over the LLM cluster."""

    llm: LLMCluster
    max_tokens: int = 256
    temperature: float = 0.2

    async def suggest(
        self,
        *,
        title: str,
        description: str,
        area: str,
        cases: list[CaseForPrompt],
        language: Language,
        on_progress: Callable[[str], Awaitable[None]] | None = None,
        llm: LanguageModel | None = None,
    ) -> Suggestion:
        """Stream a suggestion, reporting the text so far; raises LLMUnavailable when no node answers.

        `llm` overrides the cluster, e.g. with the one node a slot was leased on."""
        prompt = build_prompt(title=title, description=description, area=area, cases=cases, language=language)
        primer = prompt_primer(cases, language)
        options = {
            "num_predict": self.max_tokens,
            "temperature": self.temperature,
            "stop": STOP_SEQUENCES,
            "repeat_penalty": 1.15,
        }
        generated, node, model, tokens = "", "", "", 0
        async for event in (llm or self.llm).stream(prompt, options=options):
            if isinstance(event, TokenEvent):
                generated += event.text
            elif isinstance(event, RestartEvent):
                generated = ""  # another node starts over; what the failed one wrote is discarded
            elif isinstance(event, DoneEvent):
                node, model, tokens = event.node, event.model, event.completion_tokens
                continue
            if on_progress is not None:
                await on_progress(primer + generated)
        retrieved = {c.incident_id for c in cases if c.incident_id is not None}
        text, citations = ground_citations(primer + generated, retrieved)
        return Suggestion(text=text, citations=citations, model=model, node=node, completion_tokens=tokens)
