// The "report incident" form; the 201 answer already carries the similar past incidents, shown at once.

import { apiRequest } from "./api.js";
import {
  clearFormErrors, el, formErrorLine, formField, selectControl, setBusy, showFormError, similarIncidentList,
} from "./dom.js";
import { language, t } from "./i18n.js";
import { PRIORITIES } from "./incident-list-page.js";

// What was typed survives a language switch (which renders the page again) until it is sent.
let draft = null;

function reportForm(areas) {
  const title = el("input", { id: "report-title", name: "title", maxlength: 200, required: true,
    value: draft ? draft.title : "" });
  const description = el("textarea", { id: "report-description", name: "description", rows: 6, maxlength: 20000,
    required: true, value: draft ? draft.description : "" });
  const area = selectControl("report-area", "area", areas.map((a) => ({ value: a.code, label: a.name })),
    draft ? draft.area : (areas.length ? areas[0].code : ""));
  const priority = selectControl("report-priority", "priority",
    PRIORITIES.map((p) => ({ value: p, label: t(`priority.${p}`) })), draft ? draft.priority : "medium");
  const submit = el("button", { type: "submit", class: "primary" }, t("report.submit"));
  const form = el("form", { class: "card report-form", novalidate: true },
    formField(t("report.fieldTitle"), title),
    formField(t("report.fieldDescription"), description),
    el("div", { class: "field-row" }, formField(t("report.fieldArea"), area),
      formField(t("report.fieldPriority"), priority)),
    formErrorLine(),
    el("div", { class: "form-actions" }, submit));
  const read = () => ({ title: title.value, description: description.value, area: area.value,
    priority: priority.value, language: language() });
  form.addEventListener("input", () => {
    draft = read();
  });
  return { form, submit, read, focus: () => title.focus() };
}

function createdPanel(incident, onReportAnother) {
  const another = el("button", { type: "button", class: "secondary" }, t("report.another"));
  another.addEventListener("click", onReportAnother);
  return el("div", { class: "card created-panel" },
    el("p", { class: "success", role: "status" }, t("report.created", { id: incident.id })),
    el("h2", {}, t("report.similarTitle")),
    similarIncidentList(incident.similar, t("report.noSimilar")),
    el("div", { class: "form-actions" },
      el("a", { href: `#/incidents/${Number(incident.id)}`, class: "button primary" },
        t("report.open", { id: incident.id })),
      another));
}

// Render the form into `container`; returns a cleanup function that cancels a pending request.
export function renderIncidentReportPage(container, { areas }) {
  const controller = new AbortController();
  const section = el("section", { class: "report-page" });

  function showForm() {
    const report = reportForm(areas);
    report.form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearFormErrors(report.form);
      setBusy(report.submit, true);
      try {
        const incident = await apiRequest("/incidents", { method: "POST", json: report.read(),
          signal: controller.signal });
        draft = null;
        section.replaceChildren(el("h1", {}, t("report.title")), createdPanel(incident, showForm));
      } catch (error) {
        if (error.name !== "AbortError") {
          showFormError(report.form, error);
        }
      } finally {
        setBusy(report.submit, false);
      }
    });
    section.replaceChildren(el("h1", {}, t("report.title")), el("p", { class: "muted" }, t("report.intro")),
      report.form);
    report.focus();
  }

  showForm();
  container.append(section);
  return () => controller.abort();
}
