// The supervisors' dashboard: workload, SLA compliance and breaches, escalations, resolution time and first-contact
// resolution, suggestion acceptance and ratings, top recurring problems. Every chart has its table and a CSV.
// Figures come unchanged from /api/v1/sla/metrics/{compliance,quality,overview,recurring} for the chosen period.

import { apiRequest } from "./api.js";
import { csvButton, dataTable, formField, handleSubmit, pageFrame, simpleForm } from "./admin-kit.js";
import { barChart, legend } from "./charts.js";
import { describeError, el, incidentLink } from "./dom.js";
import { language, t } from "./i18n.js";
import { PRIORITIES, STATUSES } from "./incident-list-page.js";

const DAY_MS = 24 * 60 * 60 * 1000;
let savedPeriod = null; // survives a language switch within the tab

function isoDay(date) {
  const local = new Date(date.getTime() - date.getTimezoneOffset() * 60000);
  return local.toISOString().slice(0, 10);
}

export function percent(rate) {
  return rate === null || rate === undefined ? "—" : `${(rate * 100).toLocaleString(language(), {
    maximumFractionDigits: 1 })} %`;
}

export function hours(minutes) {
  return minutes === null || minutes === undefined ? "—" : `${(minutes / 60).toLocaleString(language(), {
    maximumFractionDigits: 1 })} h`;
}

function number(value) {
  return value === null || value === undefined ? "—" : value.toLocaleString(language(), { maximumFractionDigits: 2 });
}

// A card with a chart, its legend, its table (in a disclosure) and a CSV download of the same rows.
function chartCard({ id, title, chart, series, columns, rows, note }) {
  const table = dataTable(columns, rows, { caption: title, emptyText: t("dash.noData"), className: `${id}-table` });
  return el("section", { class: "card chart-card", id: `chart-${id}`, "aria-labelledby": `chart-${id}-title` },
    el("div", { class: "chart-head" }, el("h2", { id: `chart-${id}-title` }, title),
      csvButton(`${id}.csv`, columns, rows)),
    note ? el("p", { class: "muted small-text" }, note) : null,
    rows.length ? chart : el("p", { class: "muted" }, t("dash.noData")),
    series && series.length > 1 && rows.length ? legend(series) : null,
    el("details", { class: "chart-table" }, el("summary", {}, t("dash.showTable")), table));
}

function countsCard(id, title, items, key, labelOf, order) {
  const rows = [...items].sort((a, b) => (order ? order.indexOf(a[key]) - order.indexOf(b[key]) : 0));
  const series = [{ name: t("dash.incidents") }];
  return chartCard({ id, title, series, rows,
    chart: barChart({ rows: rows.map((r) => ({ label: labelOf(r[key]), values: [r.incidents] })), series,
      description: `${title}: ${rows.map((r) => `${labelOf(r[key])} ${r.incidents}`).join(", ")}` }),
    columns: [{ key, label: t("dash.group"), value: (r) => r[key] },
      { key: "label", label: t("dash.name"), value: (r) => labelOf(r[key]) },
      { key: "incidents", label: t("dash.incidents") }] });
}

function overallCompliance(compliance) {
  let met = 0;
  let breached = 0;
  compliance.policies.forEach((p) => {
    ["first_response", "resolution"].forEach((kind) => {
      met += p[kind].met;
      breached += p[kind].breached;
    });
  });
  return { rate: met + breached ? met / (met + breached) : null, breached };
}

function kpiTiles(compliance, quality, overview) {
  const overall = overallCompliance(compliance);
  const q = quality.overall;
  const tiles = [
    ["open", t("dash.kpi.open"), String(overview.open_incidents.total)],
    ["compliance", t("dash.kpi.compliance"), percent(overall.rate)],
    ["breaches", t("dash.kpi.breaches"), String(overall.breached)],
    ["escalations", t("dash.kpi.escalations"), String(overview.escalations.total)],
    ["mttr", t("dash.kpi.mttr"), hours(q.mean_resolution_minutes)],
    ["fcr", t("dash.kpi.fcr"), percent(q.first_contact_resolution_rate)],
    ["acceptance", t("dash.kpi.acceptance"), percent(q.suggestion_acceptance_rate)],
    ["satisfaction", t("dash.kpi.satisfaction"), q.avg_satisfaction === null ? "—"
      : `${number(q.avg_satisfaction)} / 5`],
  ];
  return el("ul", { class: "kpi-tiles", "aria-label": t("dash.kpiTitle") }, tiles.map(([key, label, value]) =>
    el("li", { class: "kpi", "data-kpi": key }, el("span", { class: "kpi-value" }, value),
      el("span", { class: "kpi-label" }, label))));
}

function complianceCards(compliance) {
  const rows = compliance.policies;
  const rateSeries = [{ name: t("sla.clock.first_response") }, { name: t("sla.clock.resolution") }];
  const columns = [
    { key: "policy_name", label: t("dash.policy") },
    { key: "total_incidents", label: t("dash.incidents") },
    { key: "first_response_met", label: `${t("sla.clock.first_response")}: ${t("sla.met")}`,
      value: (p) => p.first_response.met },
    { key: "first_response_breached", label: `${t("sla.clock.first_response")}: ${t("sla.breached")}`,
      value: (p) => p.first_response.breached },
    { key: "resolution_met", label: `${t("sla.clock.resolution")}: ${t("sla.met")}`, value: (p) => p.resolution.met },
    { key: "resolution_breached", label: `${t("sla.clock.resolution")}: ${t("sla.breached")}`,
      value: (p) => p.resolution.breached },
    { key: "overall_compliance_rate", label: t("dash.complianceRate"), value: (p) => p.overall_compliance_rate },
    { key: "at_risk_now", label: t("dash.atRisk") },
  ];
  const shownColumns = columns.map((c) => (c.key === "overall_compliance_rate"
    ? { ...c, cell: (p) => percent(p.overall_compliance_rate) } : c));
  const label = (p) => p.policy_name;
  return [
    chartCard({ id: "compliance", title: t("dash.complianceTitle"), series: rateSeries, rows,
      columns: shownColumns,
      chart: barChart({ rows: rows.map((p) => ({ label: label(p), values: [p.first_response.compliance_rate,
        p.resolution.compliance_rate] })), series: rateSeries, max: 1, format: percent,
      description: `${t("dash.complianceTitle")}: ${rows.map((p) => `${label(p)} ${percent(p.overall_compliance_rate)}`)
        .join(", ")}` }) }),
    chartCard({ id: "breaches", title: t("dash.breachesTitle"), series: rateSeries, rows, columns: shownColumns,
      chart: barChart({ rows: rows.map((p) => ({ label: label(p), values: [p.first_response.breached,
        p.resolution.breached] })), series: rateSeries,
      description: `${t("dash.breachesTitle")}: ${rows.map((p) => `${label(p)} ${p.first_response.breached + p
        .resolution.breached}`).join(", ")}` }) }),
  ];
}

function escalationCard(overview) {
  const rows = [
    ...overview.escalations.by_level.map((r) => ({ group: `level_${r.level}`, label: t("sla.admin.levelN",
      { n: r.level }), escalations: r.escalations })),
    ...overview.escalations.by_trigger.map((r) => ({ group: `trigger_${r.trigger}`,
      label: t(`dash.trigger.${r.trigger}`), escalations: r.escalations })),
  ];
  const series = [{ name: t("dash.escalations") }];
  return chartCard({ id: "escalations", title: t("dash.escalationsTitle"), series, rows,
    columns: [{ key: "group", label: t("dash.group") }, { key: "label", label: t("dash.name") },
      { key: "escalations", label: t("dash.escalations") }],
    chart: barChart({ rows: rows.map((r) => ({ label: r.label, values: [r.escalations] })), series,
      description: `${t("dash.escalationsTitle")}: ${rows.map((r) => `${r.label} ${r.escalations}`).join(", ")}` }) });
}

function resolutionCard(quality) {
  const rows = quality.by_area;
  const series = [{ name: t("dash.mttr") }];
  return chartCard({ id: "resolution", title: t("dash.resolutionTitle"), series, rows,
    note: t("dash.resolutionNote"),
    columns: [{ key: "area", label: t("list.area") }, { key: "total_incidents", label: t("dash.incidents") },
      { key: "resolved", label: t("dash.resolved") },
      { key: "mean_resolution_minutes", label: t("dash.mttrMinutes") },
      { key: "median_resolution_minutes", label: t("dash.medianMinutes") },
      { key: "first_contact_resolved", label: t("dash.fcrCount") },
      { key: "first_contact_resolution_rate", label: t("dash.fcr"), cell: (r) => percent(r.first_contact_resolution_rate) },
      { key: "escalation_rate", label: t("dash.escalationRate"), cell: (r) => percent(r.escalation_rate) }],
    chart: barChart({ rows: rows.map((r) => ({ label: r.area, values: [r.mean_resolution_minutes === null ? null
      : r.mean_resolution_minutes / 60] })), series, format: (v) => `${number(v)} h`,
    description: `${t("dash.resolutionTitle")}: ${rows.map((r) => `${r.area} ${hours(r.mean_resolution_minutes)}`)
      .join(", ")}` }) });
}

function fcrCard(quality) {
  const rows = quality.by_priority;
  const series = [{ name: t("dash.fcr") }];
  return chartCard({ id: "fcr", title: t("dash.fcrTitle"), series, rows, note: t("dash.fcrNote"),
    columns: [{ key: "priority", label: t("list.priority") }, { key: "resolved", label: t("dash.resolved") },
      { key: "first_contact_resolved", label: t("dash.fcrCount") },
      { key: "first_contact_resolution_rate", label: t("dash.fcr"),
        cell: (r) => percent(r.first_contact_resolution_rate) }],
    chart: barChart({ rows: rows.map((r) => ({ label: t(`priority.${r.priority}`),
      values: [r.first_contact_resolution_rate] })), series, max: 1, format: percent,
    description: `${t("dash.fcrTitle")}: ${rows.map((r) => `${t(`priority.${r.priority}`)} ${percent(r
      .first_contact_resolution_rate)}`).join(", ")}` }) });
}

function suggestionsCard(overview, quality) {
  const s = overview.suggestions;
  const rows = [
    { group: "accepted", label: t("dash.accepted"), suggestions: s.accepted },
    { group: "rejected", label: t("dash.rejected"), suggestions: s.rejected },
    ...s.ratings.map((r) => ({ group: `rating_${r.rating}`, label: t("suggestion.star", { n: r.rating }),
      suggestions: r.suggestions })),
  ];
  const series = [{ name: t("dash.suggestions") }];
  return chartCard({ id: "suggestions", title: t("dash.suggestionsTitle"), series, rows,
    note: t("dash.suggestionsNote", { rate: percent(quality.overall.suggestion_acceptance_rate),
      avg: quality.overall.avg_satisfaction === null ? "—" : number(quality.overall.avg_satisfaction) }),
    columns: [{ key: "group", label: t("dash.group") }, { key: "label", label: t("dash.name") },
      { key: "suggestions", label: t("dash.suggestions") }],
    chart: barChart({ rows: rows.map((r) => ({ label: r.label, values: [r.suggestions] })), series,
      description: `${t("dash.suggestionsTitle")}: ${rows.map((r) => `${r.label} ${r.suggestions}`).join(", ")}` }) });
}

function recurringCard(recurring) {
  const rows = recurring.problems;
  const series = [{ name: t("dash.incidents") }];
  return chartCard({ id: "recurring", title: t("dash.recurringTitle"), series, rows,
    note: t("dash.recurringNote", { scanned: recurring.scanned }),
    columns: [{ key: "label", label: t("dash.problem") }, { key: "incidents", label: t("dash.incidents") },
      { key: "open", label: t("dash.stillOpen") },
      { key: "areas", label: t("list.area"), value: (p) => p.areas.map((a) => `${a.area}:${a.incidents}`).join(" ") },
      { key: "incident_ids", label: t("dash.incidentIds"), value: (p) => p.incident_ids.join(" "),
        cell: (p) => el("span", { class: "id-links" }, p.incident_ids.map((id) => incidentLink(id))) }],
    chart: barChart({ rows: rows.map((p) => ({ label: p.label, values: [p.incidents] })), series,
      description: `${t("dash.recurringTitle")}: ${rows.map((p) => `${p.label} ${p.incidents}`).join(", ")}` }) });
}

export function renderDashboardPage(container) {
  const page = pageFrame(container, { title: t("dash.title"), intro: t("dash.intro"), className: "dashboard-page" });
  const controller = new AbortController();
  const today = new Date();
  const from = el("input", { id: "dash-from", name: "date_from", type: "date",
    value: savedPeriod ? savedPeriod.from : isoDay(new Date(today.getTime() - 29 * DAY_MS)) });
  const to = el("input", { id: "dash-to", name: "date_to", type: "date",
    value: savedPeriod ? savedPeriod.to : isoDay(today) });
  const { form, submit } = simpleForm("dash-period filters-inline", t("dash.update"),
    formField(t("dash.from"), from), formField(t("dash.to"), to));
  const body = el("div", { class: "dashboard-body", "aria-live": "polite" }, el("p", { class: "muted" },
    t("list.loading")));

  async function load() {
    savedPeriod = { from: from.value, to: to.value };
    const dateFrom = from.value ? new Date(`${from.value}T00:00:00`).toISOString() : null;
    const dateTo = to.value ? new Date(new Date(`${to.value}T00:00:00`).getTime() + DAY_MS).toISOString() : null;
    const query = { date_from: dateFrom, date_to: dateTo };
    const options = { query, signal: controller.signal };
    const [compliance, quality, overview, recurring] = await Promise.all([
      apiRequest("/sla/metrics/compliance", options), apiRequest("/sla/metrics/quality", options),
      apiRequest("/sla/metrics/overview", options), apiRequest("/sla/metrics/recurring", options)]);
    const open = overview.open_incidents;
    body.replaceChildren(
      kpiTiles(compliance, quality, overview),
      el("div", { class: "chart-grid" },
        countsCard("open-status", t("dash.openByStatus"), open.by_status, "status", (s) => t(`status.${s}`), STATUSES),
        countsCard("open-priority", t("dash.openByPriority"), open.by_priority, "priority",
          (p) => t(`priority.${p}`), PRIORITIES),
        countsCard("open-area", t("dash.openByArea"), open.by_area, "area", (a) => a),
        ...complianceCards(compliance),
        escalationCard(overview),
        resolutionCard(quality),
        fcrCard(quality),
        suggestionsCard(overview, quality),
        recurringCard(recurring)));
  }

  handleSubmit(form, submit, load);
  page.append(el("div", { class: "card" }, form), body);
  load().catch((error) => {
    if (error.name !== "AbortError") {
      body.replaceChildren(el("p", { class: "form-error", role: "alert" }, describeError(error)));
    }
  });
  return () => controller.abort();
}
