// Admins and auditors: the audit log with filters, each row's before/after, and the hash-chain verification.

import { apiRequest } from "./api.js";
import {
  actionButton, dataTable, dateText, formField, handleSubmit, localToIso, pageFrame, say, simpleForm, statusLine,
  textInput,
} from "./admin-kit.js";
import { describeError, el } from "./dom.js";
import { t } from "./i18n.js";

function jsonBlock(label, value) {
  return el("div", { class: "json-block" }, el("h3", {}, label),
    el("pre", { tabindex: "0" }, value === null || value === undefined ? "—" : JSON.stringify(value, null, 2)));
}

function entryDetail(entry) {
  return el("section", { class: "card audit-detail", "aria-labelledby": "audit-detail-title" },
    el("h2", { id: "audit-detail-title" }, t("audit.detailTitle", { id: entry.id, action: entry.action })),
    el("dl", { class: "meta" },
      el("div", { class: "meta-item" }, el("dt", {}, t("audit.when")), el("dd", {}, dateText(entry.occurred_at))),
      el("div", { class: "meta-item" }, el("dt", {}, t("audit.actor")),
        el("dd", {}, `${entry.actor_name} (${entry.actor_kind})`)),
      el("div", { class: "meta-item" }, el("dt", {}, t("audit.resource")),
        el("dd", {}, `${entry.resource_type} ${entry.resource_id ?? ""}`)),
      el("div", { class: "meta-item" }, el("dt", {}, t("audit.ip")), el("dd", {}, entry.client_ip || "—")),
      el("div", { class: "meta-item" }, el("dt", {}, t("audit.seq")), el("dd", {}, String(entry.seq ?? "—")))),
    el("div", { class: "before-after" }, jsonBlock(t("audit.before"), entry.before),
      jsonBlock(t("audit.after"), entry.after)));
}

export function renderAuditPage(container) {
  const page = pageFrame(container, { title: t("audit.title"), intro: t("audit.intro"), className: "audit-page" });
  const actor = textInput("audit-actor", "actor", { maxlength: 200 });
  const action = textInput("audit-action", "action", { maxlength: 100, placeholder: "incident.*" });
  const resourceType = textInput("audit-resource-type", "resource_type", { maxlength: 64, placeholder: "user" });
  const resourceId = textInput("audit-resource-id", "resource_id", { maxlength: 200 });
  const from = el("input", { id: "audit-from", name: "occurred_from", type: "datetime-local" });
  const to = el("input", { id: "audit-to", name: "occurred_to", type: "datetime-local" });
  const { form, submit } = simpleForm("audit-filters filters-inline", t("list.search"),
    formField(t("audit.actor"), actor), formField(t("audit.action"), action),
    formField(t("audit.resourceType"), resourceType), formField(t("audit.resourceId"), resourceId),
    formField(t("audit.from"), from), formField(t("audit.to"), to));
  const results = el("div");
  const detail = el("div");
  const more = el("button", { type: "button", class: "secondary", hidden: true }, t("list.loadMore"));
  const line = statusLine();
  const verifyResult = el("div", { class: "verify-result", role: "status" });
  let entries = [];
  let cursor = null;

  function show() {
    results.replaceChildren(dataTable([
      { key: "occurred_at", label: t("audit.when"), value: (e) => dateText(e.occurred_at) },
      { key: "actor_name", label: t("audit.actor") },
      { key: "action", label: t("audit.action") },
      { key: "resource", label: t("audit.resource"), value: (e) => `${e.resource_type} ${e.resource_id ?? ""}` },
      { key: "client_ip", label: t("audit.ip"), value: (e) => e.client_ip || "—" },
      { key: "detail", label: t("admin.actions"), cell: (e) => {
        const button = el("button", { type: "button", class: "secondary small",
          "aria-label": t("audit.showNamed", { id: e.id }) }, t("audit.show"));
        button.addEventListener("click", () => {
          detail.replaceChildren(entryDetail(e));
          detail.querySelector("h2").setAttribute("tabindex", "-1");
          detail.querySelector("h2").focus();
        });
        return button;
      } },
    ], entries, { caption: t("audit.title"), emptyText: t("audit.none"), className: "audit-table" }));
  }

  async function search(reset) {
    const page = await apiRequest("/audit", { query: { actor: actor.value.trim(), action: action.value.trim(),
      resource_type: resourceType.value.trim(), resource_id: resourceId.value.trim(),
      occurred_from: localToIso(from.value), occurred_to: localToIso(to.value), limit: 50,
      cursor: reset ? null : cursor } });
    entries = reset ? page.items : entries.concat(page.items);
    cursor = page.next_cursor;
    more.hidden = !cursor;
    show();
  }

  handleSubmit(form, submit, () => search(true));
  more.addEventListener("click", () => search(false).catch((error) => say(line, describeError(error), true)));
  const verify = actionButton(t("audit.verify"), line, async () => {
    const report = await apiRequest("/audit/verify");
    verifyResult.replaceChildren(report.ok
      ? el("p", { class: "success verify-ok" }, t("audit.chainOk", { rows: report.rows_checked,
        seq: report.head_seq ?? "—" }), el("br"), el("code", { class: "hash" }, report.head_hash || ""))
      : el("p", { class: "form-error verify-broken" }, t("audit.chainBroken", { rows: report.rows_checked,
        id: report.first_broken.id, reason: report.first_broken.reason })));
  }, { className: "primary" });

  page.append(
    el("section", { class: "card" }, el("h2", {}, t("audit.chainTitle")), el("p", { class: "muted" },
      t("audit.chainIntro")), verify, verifyResult),
    el("section", { class: "card" }, el("h2", {}, t("audit.filtersTitle")), form, line, results,
      el("div", { class: "load-more" }, more)),
    detail);
  search(true).catch((error) => say(line, describeError(error), true));
}
