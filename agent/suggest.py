"""Prompt -> generate -> grounded Suggestion. The backend supplies the retrieved cases."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Any, Awaitable, Callable, Iterable, Literal

from agent.compose import (
    SUPPORT_SHARE,
    Source,
    clean_generated,
    compose_steps,
    copyable,
    coverage,
    marker_of,
    no_match_text,
    prefer_language,
    render_suggestion,
    sources_of,
    split_sentences,
    strip_markers,
    supported,
)
from agent.language import detect_language
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
        "primer_document": "Según el documento [D{id}], ",
        "primer_plain": "Pasos recomendados: ",
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
        "primer_document": "Based on document [D{id}], ",
        "primer_plain": "Recommended steps: ",
    },
}
_CITATION = re.compile(r"\[?#(\d{1,12})\]?")
_DOC_CITATION = re.compile(r"\[D(\d{1,12})\]")
_CHOICE_LABELS = {
    "es": {
        "report": "Incidencia",
        "question": "¿Qué solución encaja mejor con la incidencia?",
        "answer": "Mejor solución (número)",
    },
    "en": {"report": "Report", "question": "Which solution fits the report best?", "answer": "Best solution (number)"},
}
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
            marker = f" [D{case.document_id}]" if case.document_id is not None else ""
            head = f'{labels["doc"]} "{_as_data(case.document_title or "", 80)}"{marker}'
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
    if first is not None:
        return labels["primer_cited"].format(id=first.incident_id)
    document = next((c for c in cases if c.document_id is not None), None)
    return labels["primer_document"].format(id=document.document_id) if document else labels["primer_plain"]


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


def choice_prompt(*, title: str, description: str, sources: list[Source], language: Language) -> str:
    """A short completion prompt in which the model names the solution that fits the report best (a number)."""
    labels = _CHOICE_LABELS[language]
    lines = [f"{labels['report']}: {_as_data(title, 200)}. {_as_data(description, 300)}", labels["question"]]
    for number, source in enumerate(sources, start=1):
        lines.append(f"{number}: {_as_data(' '.join(source.sentences[:2]), 240)}")
    lines.append(f"{labels['answer']}:")
    return "\n".join(lines)


def parse_choice(text: str, count: int) -> int:
    """The 0-based index the model named, 0 when it named none of 1..count."""
    match = re.search(r"\d+", text)
    number = int(match.group()) if match else 0
    return number - 1 if 1 <= number <= count else 0


@dataclass
class Suggester:
    """Builds a suggestion for one incident over the LLM cluster.

    extractive (the default): steps are sentences of the retrieved cases, each citing its source; the model only
    chooses which of the closest sources leads. generative: the model writes the answer (instruction-tuned models,
    PRS_LLM_PROMPT_STYLE=chat), then sentences the cases do not support are dropped. See docs/suggestions.md."""

    llm: LLMCluster
    max_tokens: int = 256
    temperature: float = 0.2
    mode: Literal["extractive", "generative"] = "extractive"
    min_score: float = 0.0
    relative_score: float = 0.9
    max_sources: int = 3
    max_steps: int = 12
    max_chars: int = 1500

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
        """A suggestion, reporting the text so far; raises LLMUnavailable when no node answers.

        `llm` overrides the cluster, e.g. with the one node a slot was leased on."""
        if self.mode == "generative":
            return await self._generate(
                title=title,
                description=description,
                area=area,
                cases=cases,
                language=language,
                on_progress=on_progress,
                llm=llm or self.llm,
            )
        return await self._compose(
            title=title,
            description=description,
            cases=cases,
            language=language,
            on_progress=on_progress,
            llm=llm or self.llm,
        )

    def _candidates(self, cases: list[CaseForPrompt]) -> list[Source]:
        return [
            source
            for source in sources_of(cases)[: self.max_sources + 1]
            if source.score >= self.min_score and any(copyable(s) for s in source.sentences)
        ]

    def _close(self, candidates: list[Source], language: Language) -> list[Source]:
        """The candidates close enough to the best to be shown, those in the suggestion's language first (steps are
        never translated); empty when there are no candidates."""
        if not candidates:
            return []
        best = candidates[0].score
        close = [c for c in candidates if c.score >= best * self.relative_score][: self.max_sources]
        return prefer_language(close, language)

    async def _compose(
        self,
        *,
        title: str,
        description: str,
        cases: list[CaseForPrompt],
        language: Language,
        on_progress: Callable[[str], Awaitable[None]] | None,
        llm: LanguageModel,
    ) -> Suggestion:
        candidates = self._candidates(cases)
        if not candidates:
            text = no_match_text(language)
            if on_progress is not None:
                await on_progress(text)
            # Still one token from the leased node, like every suggestion (see below).
            prompt = choice_prompt(title=title, description=description, sources=[], language=language)
            _, node, model, tokens = await _complete(llm, prompt, {"num_predict": 1, "temperature": 0.0})
            return Suggestion(text=text, model=model, node=node, completion_tokens=tokens)
        chosen = self._close(candidates, language)
        steps = compose_steps(chosen, max_steps=self.max_steps, max_chars=self.max_chars)
        if on_progress is not None:  # the steps stream at once, in retrieval's order (the report's language first)
            for count in range(1, len(steps) + 1):
                await on_progress(render_suggestion(steps[:count], language, framed_as=steps))
        # The model chooses which of the chosen sources leads; it never adds text. With one source (or none) its
        # answer changes nothing, but every suggestion is still answered by the node whose slot was leased: the
        # admission, timeouts, failover and the recorded model and node work the same for all of them.
        prompt = choice_prompt(title=title, description=description, sources=chosen, language=language)
        reply, node, model, tokens = await _complete(
            llm, prompt, {"num_predict": 4 if len(chosen) > 1 else 1, "temperature": 0.0, "stop": ["\n"]}
        )
        lead = parse_choice(reply, len(chosen))
        if lead:  # the model's choice leads among the sources in the suggestion's language
            chosen = prefer_language([chosen[lead]] + chosen[:lead] + chosen[lead + 1 :], language)
            steps = compose_steps(chosen, max_steps=self.max_steps, max_chars=self.max_chars)
        text = render_suggestion(steps, language)
        if on_progress is not None:
            await on_progress(text)
        return Suggestion(
            text=text,
            citations=_unique(s.source.incident_id for s in steps),
            document_citations=_unique(s.source.document_id for s in steps),
            model=model,
            node=node,
            completion_tokens=tokens,
        )

    async def _generate(
        self,
        *,
        title: str,
        description: str,
        area: str,
        cases: list[CaseForPrompt],
        language: Language,
        on_progress: Callable[[str], Awaitable[None]] | None,
        llm: LanguageModel,
    ) -> Suggestion:
        prompt = build_prompt(title=title, description=description, area=area, cases=cases, language=language)
        primer = prompt_primer(cases, language)
        options = {
            "num_predict": self.max_tokens,
            "temperature": self.temperature,
            "stop": STOP_SEQUENCES,
            "repeat_penalty": 1.15,
        }
        generated, node, model, tokens = "", "", "", 0
        async for event in llm.stream(prompt, options=options):
            if isinstance(event, TokenEvent):
                generated += event.text
            elif isinstance(event, RestartEvent):
                generated = ""  # another node starts over; what the failed one wrote is discarded
            elif isinstance(event, DoneEvent):
                node, model, tokens = event.node, event.model, event.completion_tokens
                continue
            if on_progress is not None:
                await on_progress(primer + generated)
        text, citations, documents = ground_generated(
            primer + generated, cases, description=f"{title} {description}", max_chars=self.max_chars, language=language
        )
        if not text:  # nothing the cases support survived: their own steps instead of an empty answer
            candidates = self._candidates(cases)
            steps = compose_steps(
                self._close(candidates, language)[:1], max_steps=self.max_steps, max_chars=self.max_chars
            )
            text = render_suggestion(steps, language) if steps else no_match_text(language)
            citations = _unique(s.source.incident_id for s in steps)
            documents = _unique(s.source.document_id for s in steps)
        return Suggestion(
            text=text,
            citations=citations,
            document_citations=documents,
            model=model,
            node=node,
            completion_tokens=tokens,
        )


def ground_generated(
    text: str, cases: list[CaseForPrompt], *, description: str, max_chars: int, language: Language | None = None
) -> tuple[str, list[int], list[int]]:
    """A generated answer kept to what its sources support, each sentence citing the one that supports it.

    A sentence stays only if it carries no markup, instruction or secret, is in the suggestion's language, and
    more than half of its content words and every number or code in it occur in one retrieved case (or document)
    and the report: the one it cites when that suffices, else the retrieved source that covers it best, whose
    marker it then gets. Markers of anything not retrieved are removed. So every sentence names its source, and
    the cited sources support the whole text (what the benchmark's `support` and `unsupported_numbers` check)."""
    texts: dict[str, str] = {}  # marker -> what that source says (a document's chunks together)
    for case in cases:
        if case.incident_id is not None or case.document_id is not None:
            marker = marker_of(case.incident_id, case.document_id)
            texts[marker] = f"{texts.get(marker, '')} {case.title} {case.problem} {case.solution}"
    documents = {c.document_id for c in cases if c.document_id is not None}
    incidents = {c.incident_id for c in cases if c.incident_id is not None}
    kept: list[str] = []
    for sentence in split_sentences(clean_generated(text)):
        sentence = _DOC_CITATION.sub(lambda m: m.group(0) if int(m.group(1)) in documents else "", sentence)
        sentence, _ = ground_citations(sentence, incidents)
        plain = strip_markers(sentence)
        if not copyable(plain, min_content_words=2) or any(strip_markers(k) == plain for k in kept):
            continue  # a small model repeats itself: a sentence is kept once
        if language is not None and detect_language(plain, default=language) != language:
            continue
        cited = [m for m in texts if m in sentence]
        if cited and supported(plain, " ".join([description, *(texts[m] for m in cited)])):
            grounded = sentence
        else:
            shares = {m: coverage(plain, f"{description} {source}") for m, source in texts.items()}
            best = max(shares, key=lambda m: shares[m], default=None)
            if best is None or shares[best] <= SUPPORT_SHARE:
                continue
            grounded = f"{plain.rstrip()} {best}"
        if sum(len(k) + 1 for k in kept) + len(grounded) > max_chars:
            break
        kept.append(grounded)
    answer = "\n".join(kept)
    cited_incidents = _unique(int(m) for m in re.findall(r"\[#(\d{1,12})\]", answer))
    cited_documents = _unique(int(m) for m in _DOC_CITATION.findall(answer))
    return answer, cited_incidents, cited_documents


def _unique(values: Iterable[int | None]) -> list[int]:
    seen: list[int] = []
    for value in values:
        if value is not None and value not in seen:
            seen.append(value)
    return seen


async def _complete(llm: LanguageModel, prompt: str, options: dict[str, Any]) -> tuple[str, str, str, int]:
    """(text, node, model, completion tokens) of one short streamed answer; a restart discards the partial text."""
    text, node, model, tokens = "", "", "", 0
    async for event in llm.stream(prompt, options=options):
        if isinstance(event, TokenEvent):
            text += event.text
        elif isinstance(event, RestartEvent):
            text = ""
        elif isinstance(event, DoneEvent):
            node, model, tokens = event.node, event.model, event.completion_tokens
    return text, node, model, tokens
