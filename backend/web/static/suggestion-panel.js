// The suggestion panel: streams the LLM suggestion token by token, then shows citations, feedback and rating.

import { ApiError, apiRequest, openEventStream } from "./api.js";
import { describeError, el, incidentLink, replaceContent } from "./dom.js";
import { t } from "./i18n.js";
import { readEventStream } from "./sse.js";

const CITATION_MARKER = /\[#(\d+)\]/g;

// The suggestion text with its [#id] markers turned into links to the cited incidents (text nodes otherwise).
function textWithCitationLinks(text, citations) {
  const paragraph = el("div", { class: "suggestion-text" });
  let last = 0;
  for (const match of text.matchAll(CITATION_MARKER)) {
    paragraph.append(text.slice(last, match.index));
    const id = Number.parseInt(match[1], 10);
    paragraph.append(citations.includes(id) ? incidentLink(id, match[0]) : match[0]);
    last = match.index + match[0].length;
  }
  paragraph.append(text.slice(last));
  return paragraph;
}

function citationList(citations, titlesById) {
  if (!citations.length) {
    return null;
  }
  return el("div", { class: "citations" }, el("p", { class: "muted" }, t("suggestion.citations")),
    el("ul", {}, citations.map((id) => el("li", {},
      incidentLink(id, titlesById.has(id) ? `#${id} ${titlesById.get(id)}` : `#${id}`)))));
}

function statusText(status) {
  return t(`suggestion.${status}`);
}

// Render the panel into `container` and start streaming; returns a cleanup function that stops the stream.
export function renderSuggestionPanel(container, { incidentId, titlesById, canGiveFeedback }) {
  let controller = null;
  const statusLine = el("p", { class: "suggestion-status muted", role: "status" });
  const body = el("div", { class: "suggestion-body" });
  const streamingText = el("div", { class: "suggestion-text streaming" });
  const footer = el("div", { class: "suggestion-footer" });
  const errorLine = el("p", { class: "form-error", role: "alert", hidden: true });

  function showError(error) {
    errorLine.textContent = describeError(error);
    errorLine.hidden = false;
  }

  function reconnectButton(messageKey) {
    const button = el("button", { type: "button", class: "secondary" }, t("suggestion.reconnect"));
    button.addEventListener("click", startStream);
    replaceContent(footer, messageKey ? el("p", { class: "muted" }, t(messageKey)) : null, button);
  }

  async function post(path, json) {
    errorLine.hidden = true;
    try {
      const suggestion = await apiRequest(`/incidents/${incidentId}/suggestion/${path}`, { method: "POST", json });
      showFinished(suggestion);
    } catch (error) {
      showError(error);
    }
  }

  function feedbackControls(suggestion) {
    if (suggestion.feedback) {
      return el("p", { class: "muted" }, t(`suggestion.${suggestion.feedback}`));
    }
    if (!canGiveFeedback) {
      return null;
    }
    const accept = el("button", { type: "button", class: "primary" }, t("suggestion.accept"));
    const reject = el("button", { type: "button", class: "secondary" }, t("suggestion.reject"));
    accept.addEventListener("click", () => post("feedback", { decision: "accepted" }));
    reject.addEventListener("click", () => post("feedback", { decision: "rejected" }));
    return el("div", { class: "button-row" }, accept, reject);
  }

  function ratingControls(suggestion) {
    const stars = [1, 2, 3, 4, 5].map((n) => {
      const star = el("button", { type: "button", class: n <= (suggestion.rating || 0) ? "star on" : "star",
        "aria-label": t("suggestion.star", { n }), "aria-pressed": n === suggestion.rating ? "true" : "false" },
      "★");
      star.addEventListener("click", () => post("rating", { rating: n }));
      return star;
    });
    return el("div", { class: "rating" }, el("span", { class: "muted" }, t("suggestion.rate")), stars);
  }

  function showFinished(suggestion) {
    statusLine.textContent = statusText(suggestion.status);
    if (suggestion.status !== "ready") {
      // A failed suggestion is retried by the worker later; reconnecting follows the next attempt.
      body.replaceChildren(suggestion.text ? textWithCitationLinks(suggestion.text, []) : "");
      reconnectButton(null);
      return;
    }
    replaceContent(body, textWithCitationLinks(suggestion.text, suggestion.citations),
      citationList(suggestion.citations, titlesById));
    replaceContent(footer, feedbackControls(suggestion), ratingControls(suggestion));
  }

  function onEvent(name, data) {
    if (name === "status") {
      statusLine.textContent = statusText(data.status);
    } else if (name === "token") {
      streamingText.append(data.text);
    } else if (name === "reset") {
      streamingText.replaceChildren(data.text);
    } else if (name === "done") {
      showFinished(data);
    } else if (name === "timeout") {
      reconnectButton("suggestion.timeout");
    }
  }

  async function startStream() {
    if (controller) {
      controller.abort();
    }
    controller = new AbortController();
    errorLine.hidden = true;
    footer.replaceChildren();
    streamingText.replaceChildren();
    body.replaceChildren(streamingText);
    statusLine.textContent = statusText("pending");
    try {
      const response = await openEventStream(`/incidents/${incidentId}/suggestion/stream`, controller.signal);
      await readEventStream(response, onEvent);
    } catch (error) {
      if (error.name === "AbortError") {
        return;
      }
      if (error instanceof ApiError && error.status === 404) {
        statusLine.textContent = t("suggestion.none");
        body.replaceChildren();
        return;
      }
      showError(error);
      reconnectButton("suggestion.connectionLost");
    }
  }

  container.append(el("section", { class: "card suggestion-panel" },
    el("h2", {}, t("suggestion.title")), statusLine, body, errorLine, footer));
  startStream();
  return () => {
    if (controller) {
      controller.abort();
    }
  };
}
