// The incident list: filters (status, area, priority, text) and cursor pagination ("load more").

import { apiRequest } from "./api.js";
import {
  clearFormErrors, el, formErrorLine, formField, incidentLink, priorityBadge, selectControl, setBusy, showFormError,
  statusBadge,
} from "./dom.js";
import { formatDateTime, t } from "./i18n.js";
import { subscribeLive } from "./live.js";

export const STATUSES = ["open", "in_progress", "waiting", "resolved", "closed"];
export const PRIORITIES = ["low", "medium", "high", "critical"];
const PAGE_SIZE = 25;

// The filters survive a language switch or a visit to an incident within this tab.
let savedFilters = { status: "", area: "", priority: "", text: "" };

function optionsWithAny(values, labelFor) {
  return [{ value: "", label: t("list.any") }, ...values.map((value) => ({ value, label: labelFor(value) }))];
}

function filterForm(areas) {
  const status = selectControl("filter-status", "status",
    optionsWithAny(STATUSES, (s) => t(`status.${s}`)), savedFilters.status);
  const area = selectControl("filter-area", "area",
    optionsWithAny(areas.map((a) => a.code), (code) => areas.find((a) => a.code === code).name), savedFilters.area);
  const priority = selectControl("filter-priority", "priority",
    optionsWithAny(PRIORITIES, (p) => t(`priority.${p}`)), savedFilters.priority);
  const text = el("input", { id: "filter-text", name: "text", type: "search", value: savedFilters.text,
    maxlength: 500 });
  const submit = el("button", { type: "submit", class: "primary" }, t("list.search"));
  const form = el("form", { class: "filters", role: "search" },
    formField(t("list.status"), status), formField(t("list.area"), area),
    formField(t("list.priority"), priority), formField(t("list.text"), text),
    el("div", { class: "field filter-submit" }, submit),
    formErrorLine());
  return { form, submit, read: () => ({ status: status.value, area: area.value, priority: priority.value,
    text: text.value.trim() }) };
}

function incidentRow(incident) {
  return el("tr", {},
    el("td", { class: "col-id" }, incidentLink(incident.id)),
    el("td", { class: "col-title" }, incidentLink(incident.id, incident.title)),
    el("td", {}, incident.area),
    el("td", {}, priorityBadge(incident.priority)),
    el("td", {}, statusBadge(incident.status)),
    el("td", {}, incident.assignee ? incident.assignee.name : "—"),
    el("td", { class: "col-date" }, formatDateTime(incident.created_at)));
}

function incidentTable() {
  const body = el("tbody");
  const table = el("table", { class: "incident-table" },
    el("thead", {}, el("tr", {},
      ["column.id", "column.title", "column.area", "column.priority", "column.status", "column.assignee",
        "column.created"].map((key) => el("th", { scope: "col" }, t(key))))),
    body);
  return { table, body };
}

// Render the list into `container`; returns a cleanup function that cancels a pending request.
export function renderIncidentListPage(container, { areas }) {
  const controller = new AbortController();
  const filters = filterForm(areas);
  const { table, body } = incidentTable();
  const emptyNote = el("p", { class: "muted", hidden: true }, t("list.empty"));
  const loadMore = el("button", { type: "button", class: "secondary", hidden: true }, t("list.loadMore"));
  let nextCursor = null;

  async function loadPage(reset) {
    clearFormErrors(filters.form);
    const button = reset ? filters.submit : loadMore;
    setBusy(button, true);
    try {
      const current = filters.read();
      savedFilters = current;
      const page = await apiRequest("/incidents", {
        query: { ...current, limit: PAGE_SIZE, cursor: reset ? null : nextCursor },
        signal: controller.signal,
      });
      if (reset) {
        body.replaceChildren();
      }
      page.items.forEach((incident) => body.append(incidentRow(incident)));
      nextCursor = page.next_cursor;
      loadMore.hidden = !nextCursor;
      emptyNote.hidden = body.children.length > 0;
      table.hidden = body.children.length === 0;
    } catch (error) {
      if (error.name !== "AbortError") {
        showFormError(filters.form, error);
      }
    } finally {
      setBusy(button, false);
    }
  }

  filters.form.addEventListener("submit", (event) => {
    event.preventDefault();
    shownPages = 1;
    loadPage(true);
  });
  loadMore.addEventListener("click", () => loadPage(false));

  // Live updates: any change reloads the rows shown (same filters, as many pages as were loaded), debounced.
  let reloadTimer = null;
  let shownPages = 1;
  async function reloadShown() {
    const pages = shownPages;
    await loadPage(true);
    for (let page = 1; page < pages && nextCursor; page += 1) {
      await loadPage(false);
    }
    shownPages = pages;
  }
  const unsubscribe = subscribeLive(() => {
    window.clearTimeout(reloadTimer);
    reloadTimer = window.setTimeout(() => {
      reloadShown();
    }, 250);
  });
  loadMore.addEventListener("click", () => {
    shownPages += 1;
  });

  container.append(el("section", { class: "list-page" },
    el("div", { class: "page-head" }, el("h1", {}, t("list.title")),
      el("a", { href: "#/report", class: "button primary" }, t("nav.report"))),
    filters.form,
    el("div", { class: "table-wrap" }, table),
    emptyNote,
    el("div", { class: "load-more" }, loadMore)));
  loadPage(true);
  return () => {
    window.clearTimeout(reloadTimer);
    unsubscribe();
    controller.abort();
  };
}
