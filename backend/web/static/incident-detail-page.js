// One incident: summary, status actions, assign to me, comments, SLA clocks, similar incidents and the suggestion
// panel.

import { ApiError, apiRequest } from "./api.js";
import {
  clearFormErrors, describeError, el, formErrorLine, formField, priorityBadge, replaceContent, setBusy,
  showFormError, similarIncidentList, statusBadge,
} from "./dom.js";
import { formatDateTime, t } from "./i18n.js";
import { subscribeLive } from "./live.js";
import { renderSlaPanel } from "./sla-panel.js";
import { renderSuggestionPanel } from "./suggestion-panel.js";

const ROLE_RANK = { reporter: 0, technician: 1, supervisor: 2, admin: 3 };

// Plain status moves offered as buttons; resolving and reopening have their own forms (solution, reason).
const STATUS_BUTTONS = {
  open: ["in_progress", "waiting"],
  in_progress: ["waiting", "open"],
  waiting: ["in_progress"],
  resolved: ["closed"],
  closed: [],
};
const RESOLVABLE = new Set(["open", "in_progress", "waiting"]);
const REOPENABLE = new Set(["resolved", "closed"]);

function isTechnician(me) {
  return ROLE_RANK[me.role] >= ROLE_RANK.technician;
}

function metaItem(label, value) {
  return el("div", { class: "meta-item" }, el("dt", {}, label), el("dd", {}, value));
}

function summary(incident) {
  return el("div", { class: "incident-summary" },
    el("div", { class: "incident-title" },
      el("h1", {}, el("span", { class: "incident-id" }, `#${incident.id}`), " ", incident.title),
      el("div", { class: "badges" }, statusBadge(incident.status), priorityBadge(incident.priority),
        el("span", { class: "badge area" }, incident.area))),
    el("dl", { class: "meta" },
      metaItem(t("detail.reporter"), incident.reporter.name),
      metaItem(t("detail.assignee"), incident.assignee ? incident.assignee.name : t("detail.unassigned")),
      metaItem(t("detail.created"), formatDateTime(incident.created_at)),
      metaItem(t("detail.updated"), formatDateTime(incident.updated_at)),
      incident.tags.length ? metaItem(t("detail.tags"), incident.tags.join(", ")) : null),
    el("h2", {}, t("detail.description")),
    el("p", { class: "prewrap" }, incident.description),
    incident.resolution ? el("h2", {}, t("detail.resolution")) : null,
    incident.resolution ? el("p", { class: "prewrap resolution" }, incident.resolution) : null);
}

// A one-textarea form (resolve with a solution, reopen with a reason) posting to `path`.
function textActionForm({ id, name, label, buttonText, path, onUpdated }) {
  const text = el("textarea", { id, name, rows: 3, required: true });
  const submit = el("button", { type: "submit", class: "primary" }, buttonText);
  const form = el("form", { class: "action-form", novalidate: true }, formField(label, text), formErrorLine(),
    el("div", { class: "form-actions" }, submit));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFormErrors(form);
    setBusy(submit, true);
    try {
      onUpdated(await apiRequest(path, { method: "POST", json: { [name]: text.value } }));
    } catch (error) {
      showFormError(form, error);
    } finally {
      setBusy(submit, false);
    }
  });
  return form;
}

function actionsCard(incident, me, onUpdated) {
  const errorLine = el("p", { class: "form-error", role: "alert", hidden: true });
  const base = `/incidents/${incident.id}`;

  async function run(button, path, json) {
    errorLine.hidden = true;
    setBusy(button, true);
    try {
      onUpdated(await apiRequest(path, { method: "POST", json }));
    } catch (error) {
      errorLine.textContent = describeError(error);
      errorLine.hidden = false;
      setBusy(button, false);
    }
  }

  const buttons = STATUS_BUTTONS[incident.status].map((target) => {
    const button = el("button", { type: "button", class: "secondary" }, t(`action.${target}`));
    button.addEventListener("click", () => run(button, `${base}/status`, { status: target }));
    return button;
  });
  if (!incident.assignee || incident.assignee.id !== me.id) {
    const assign = el("button", { type: "button", class: "secondary" }, t("detail.assignToMe"));
    assign.addEventListener("click", () => run(assign, `${base}/assign`, { assignee_id: me.id }));
    buttons.unshift(assign);
  }
  return el("section", { class: "card actions-card" },
    el("h2", {}, t("detail.actions")),
    el("div", { class: "button-row" }, buttons),
    errorLine,
    RESOLVABLE.has(incident.status) ? textActionForm({ id: "resolve-solution", name: "solution",
      label: t("detail.solution"), buttonText: t("detail.resolve"), path: `${base}/resolve`, onUpdated }) : null,
    REOPENABLE.has(incident.status) ? textActionForm({ id: "reopen-reason", name: "reason",
      label: t("detail.reason"), buttonText: t("detail.reopen"), path: `${base}/reopen`, onUpdated }) : null);
}

function commentItem(comment) {
  return el("li", { class: "comment" },
    el("div", { class: "comment-head" }, el("strong", {}, comment.author.name), " · ",
      el("time", { datetime: comment.created_at }, formatDateTime(comment.created_at))),
    el("p", { class: "prewrap" }, comment.body));
}

function commentsCard(incidentId, comments, onCommented) {
  const list = el("ul", { class: "comment-list" }, comments.map(commentItem));
  const emptyNote = el("p", { class: "muted", hidden: comments.length > 0 }, t("detail.noComments"));
  const setComments = (current) => {
    list.replaceChildren(...current.map(commentItem));
    emptyNote.hidden = current.length > 0;
  };
  const body = el("textarea", { id: "comment-body", name: "body", rows: 3, maxlength: 10000, required: true,
    placeholder: t("detail.commentPlaceholder") });
  const submit = el("button", { type: "submit", class: "primary" }, t("detail.addComment"));
  const form = el("form", { class: "comment-form", novalidate: true }, formField(t("detail.comments"), body),
    formErrorLine(), el("div", { class: "form-actions" }, submit));
  form.querySelector("label").classList.add("visually-hidden");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFormErrors(form);
    setBusy(submit, true);
    try {
      const comment = await apiRequest(`/incidents/${incidentId}/comments`, { method: "POST",
        json: { body: body.value } });
      list.append(commentItem(comment));
      emptyNote.hidden = true;
      body.value = "";
      onCommented();
    } catch (error) {
      showFormError(form, error);
    } finally {
      setBusy(submit, false);
    }
  });
  const card = el("section", { class: "card comments-card" }, el("h2", {}, t("detail.comments")), list, emptyNote,
    form);
  return { card, setComments };
}

function escalationItem(escalation) {
  return el("li", { class: "escalation-item" },
    el("strong", {}, t("escalate.item", { from: escalation.previous_level, to: escalation.level })), " · ",
    t(`dash.trigger.${escalation.trigger}`), " · ", escalation.actor.name || "", " · ",
    el("time", { datetime: escalation.created_at }, formatDateTime(escalation.created_at)),
    el("p", { class: "prewrap" }, escalation.reason,
      escalation.target_department ? ` → ${escalation.target_department}` : ""));
}

// Manual escalation (technicians and above): the level, why, and optionally the department; then the history.
function escalationCard(incidentId, onEscalated) {
  const history = el("ul", { class: "escalation-list" });
  const level = el("select", { id: "escalate-level", name: "level" },
    [1, 2, 3].map((n) => el("option", { value: String(n) }, t("sla.admin.levelN", { n }))));
  const reason = el("textarea", { id: "escalate-reason", name: "reason", rows: 2, maxlength: 1000 });
  const department = el("input", { id: "escalate-department", name: "target_department", type: "text",
    placeholder: "maintenance-l2" });
  const submit = el("button", { type: "submit", class: "primary" }, t("escalate.submit"));
  const form = el("form", { class: "escalate-form", novalidate: true },
    formField(t("sla.admin.level"), level), formField(t("escalate.reason"), reason),
    formField(t("sla.admin.department"), department), formErrorLine(),
    el("div", { class: "form-actions" }, submit));
  const refresh = async () => {
    const items = await apiRequest(`/incidents/${incidentId}/escalations`);
    history.replaceChildren(...items.map(escalationItem));
    const current = items.length ? Math.max(...items.map((item) => item.level)) : 0;
    level.value = String(Math.min(3, current + 1));
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFormErrors(form);
    setBusy(submit, true);
    try {
      await apiRequest(`/incidents/${incidentId}/escalations`, { method: "POST", json: {
        level: Number.parseInt(level.value, 10), reason: reason.value,
        target_department: department.value.trim() || null } });
      reason.value = "";
      department.value = "";
      await refresh();
      onEscalated();
    } catch (error) {
      showFormError(form, error);
    } finally {
      setBusy(submit, false);
    }
  });
  refresh().catch(() => {});
  const card = el("section", { class: "card escalate-card" }, el("h2", {}, t("escalate.title")), history, form);
  return { card, refresh };
}

async function loadIncidentData(incidentId, signal) {
  return Promise.all([
    apiRequest(`/incidents/${incidentId}`, { signal }),
    apiRequest(`/incidents/${incidentId}/comments`, { signal }),
    apiRequest(`/incidents/${incidentId}/similar`, { signal }),
  ]);
}

// Render the page for `incidentId` into `container`; returns a cleanup function (stops requests and the stream).
export function renderIncidentDetailPage(container, { incidentId, me }) {
  const controller = new AbortController();
  const cleanups = [() => controller.abort()];
  const section = el("section", { class: "detail-page" },
    el("a", { href: "#/incidents", class: "back-link" }, t("detail.back")),
    el("p", { class: "muted" }, t("list.loading")));
  container.append(section);

  loadIncidentData(incidentId, controller.signal).then(([incident, comments, similar]) => {
    const summaryBox = el("div");
    const actionsBox = el("div");
    const slaBox = el("div");
    const slaPanel = renderSlaPanel(slaBox, { incidentId });
    cleanups.push(slaPanel.cleanup);
    const showIncident = (current) => {
      replaceContent(summaryBox, summary(current));
      replaceContent(actionsBox, isTechnician(me) ? actionsCard(current, me, (updated) => {
        showIncident(updated);
        slaPanel.refresh();
      }) : null);
    };
    showIncident(incident);
    const suggestionBox = el("div");
    const titlesById = new Map(similar.map((item) => [item.incident_id, item.title]));
    cleanups.push(renderSuggestionPanel(suggestionBox, { incidentId, titlesById, canGiveFeedback: isTechnician(me) }));
    const commentsBlock = commentsCard(incidentId, comments, () => slaPanel.refresh());
    const escalation = isTechnician(me) ? escalationCard(incidentId, () => slaPanel.refresh()) : null;
    // Live updates: a change of this incident by anybody reloads it, its comments, its SLA and escalations.
    let reloadTimer = null;
    cleanups.push(() => window.clearTimeout(reloadTimer));
    cleanups.push(subscribeLive((change) => {
      if (change.event !== "resync" && change.incident_id !== incidentId) {
        return;
      }
      window.clearTimeout(reloadTimer);
      reloadTimer = window.setTimeout(async () => {
        try {
          const [current, currentComments] = await Promise.all([
            apiRequest(`/incidents/${incidentId}`, { signal: controller.signal }),
            apiRequest(`/incidents/${incidentId}/comments`, { signal: controller.signal })]);
          showIncident(current);
          commentsBlock.setComments(currentComments);
          slaPanel.refresh();
          if (escalation) {
            escalation.refresh().catch(() => {});
          }
        } catch (error) {
          // the next change or the next resync tries again
        }
      }, 250);
    }));
    replaceContent(section,
      el("a", { href: "#/incidents", class: "back-link" }, t("detail.back")),
      el("div", { class: "detail-grid" },
        el("div", { class: "detail-main" }, el("div", { class: "card" }, summaryBox), actionsBox,
          commentsBlock.card, escalation ? escalation.card : null),
        el("div", { class: "detail-side" }, slaBox, suggestionBox,
          el("section", { class: "card" }, el("h2", {}, t("detail.similarTitle")),
            similarIncidentList(similar, t("report.noSimilar"))))));
  }).catch((error) => {
    if (error.name === "AbortError") {
      return;
    }
    const message = error instanceof ApiError && error.status === 404 ? t("error.notFound") : describeError(error);
    replaceContent(section, el("a", { href: "#/incidents", class: "back-link" }, t("detail.back")),
      el("p", { class: "form-error" }, message));
  });

  return () => cleanups.forEach((cleanup) => cleanup());
}
