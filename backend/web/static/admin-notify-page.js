// Admin: notification endpoints (webhook, Slack, e-mail) with their event filters, a test ping, enable/disable,
// secret rotation, and the delivery log with filters and redelivery.

import { apiRequest } from "./api.js";
import {
  actionButton, checkboxGroup, checkedValues, confirmButton, dataTable, dateText, formField, handleSubmit,
  pageFrame, say, secretOnce, simpleForm, statusLine, text, textInput,
} from "./admin-kit.js";
import { describeError, el, selectControl } from "./dom.js";
import { t } from "./i18n.js";
import { PRIORITIES } from "./incident-list-page.js";

const KINDS = ["webhook", "slack", "email"];
const DELIVERY_STATUSES = ["pending", "delivered", "dead"];

function endpointForm(eventTypes, areas, onCreated) {
  const kind = selectControl("endpoint-kind", "kind", KINDS.map((k) => ({ value: k, label: t(`notify.kind.${k}`) })),
    "webhook");
  const target = textInput("endpoint-target", "target", { required: true, placeholder: "https://" });
  const description = textInput("endpoint-description", "description", { maxlength: 500 });
  const { form, submit } = simpleForm("endpoint-form", t("notify.create"),
    el("div", { class: "field-row" }, formField(t("notify.kind"), kind), formField(t("notify.target"), target)),
    el("p", { class: "muted small-text" }, t("notify.targetHelp")),
    formField(t("notify.description"), description),
    checkboxGroup("endpoint-events", "event_types", t("notify.events"),
      eventTypes.map((e) => ({ value: e.name, label: e.name })), ["incident.created"]),
    checkboxGroup("endpoint-areas", "areas", t("notify.areas"), areas.map((a) => ({ value: a.code, label: a.name }))),
    checkboxGroup("endpoint-priorities", "priorities", t("notify.priorities"),
      PRIORITIES.map((p) => ({ value: p, label: t(`priority.${p}`) }))));
  handleSubmit(form, submit, async () => {
    const created = await apiRequest("/notify/endpoints", { method: "POST", json: {
      kind: kind.value, target: target.value.trim(), description: description.value.trim(),
      event_types: checkedValues(form, "event_types"), areas: checkedValues(form, "areas"),
      priorities: checkedValues(form, "priorities") } });
    form.reset();
    onCreated(created);
  });
  return form;
}

function deliveryLog(endpoints, line) {
  const endpoint = selectControl("log-endpoint", "endpoint_id", [{ value: "", label: t("list.any") },
    ...endpoints.map((e) => ({ value: String(e.id), label: `#${e.id} ${e.target}` }))], "");
  const status = selectControl("log-status", "status", [{ value: "", label: t("list.any") },
    ...DELIVERY_STATUSES.map((s) => ({ value: s, label: t(`notify.delivery.${s}`) }))], "");
  const eventId = textInput("log-event", "event_id", { maxlength: 64 });
  const { form, submit } = simpleForm("log-filters filters-inline", t("list.search"),
    formField(t("notify.endpoint"), endpoint), formField(t("notify.deliveryStatus"), status),
    formField(t("notify.eventId"), eventId));
  const results = el("div");
  async function search() {
    const page = await apiRequest("/notify/deliveries", { query: { endpoint_id: endpoint.value, status: status.value,
      event_id: eventId.value.trim(), limit: 100 } });
    results.replaceChildren(dataTable([
      { key: "created_at", label: t("notify.when"), value: (d) => dateText(d.created_at) },
      { key: "event_type", label: t("notify.eventType") },
      { key: "event_id", label: t("notify.eventId") },
      { key: "endpoint_id", label: t("notify.endpoint"), value: (d) => `#${d.endpoint_id}` },
      { key: "status", label: t("notify.deliveryStatus"), value: (d) => t(`notify.delivery.${d.status}`) },
      { key: "attempts", label: t("notify.attempts") },
      { key: "last_status_code", label: t("notify.lastCode"), value: (d) => text(d.last_status_code) },
      { key: "last_error", label: t("notify.lastError"), value: (d) => text(d.last_error) },
      { key: "actions", label: t("admin.actions"), cell: (d) => actionButton(t("notify.redeliver"), line, async () => {
        const queued = await apiRequest(`/notify/events/${encodeURIComponent(d.event_id)}/redeliver`,
          { method: "POST", json: { endpoint_ids: [d.endpoint_id] } });
        say(line, t("notify.redelivered", { n: queued.delivery_ids.length }));
        await search();
      }, { ariaLabel: t("notify.redeliverNamed", { id: d.event_id }) }) },
    ], page.items, { caption: t("notify.logTitle"), emptyText: t("notify.noDeliveries"), className: "delivery-table" }));
  }
  handleSubmit(form, submit, search);
  return { box: el("div", {}, form, results), search, endpoint };
}

export function renderNotificationsPage(container, { areas }) {
  const page = pageFrame(container, { title: t("notify.title"), intro: t("notify.intro"),
    className: "notify-page" });
  const secretBox = el("div");
  const endpointsBox = el("div", {}, el("p", { class: "muted" }, t("list.loading")));
  const formBox = el("div");
  const logBox = el("section", { class: "card" }, el("h2", {}, t("notify.logTitle")));
  const line = statusLine();
  let log = null;

  function showSecret(title, secret) {
    secretBox.replaceChildren(secretOnce(title, secret));
    secretBox.querySelector("#secret-once").focus();
  }

  async function load() {
    const endpoints = await apiRequest("/notify/endpoints");
    endpointsBox.replaceChildren(dataTable([
      { key: "id", label: "#" },
      { key: "kind", label: t("notify.kind"), value: (e) => t(`notify.kind.${e.kind}`) },
      { key: "target", label: t("notify.target") },
      { key: "event_types", label: t("notify.events"), value: (e) => e.event_types.join(", ") },
      { key: "enabled", label: t("notify.state"), value: (e) => (e.enabled ? t("notify.enabled")
        : `${t("notify.disabled")}${e.disabled_reason ? ` (${e.disabled_reason})` : ""}`) },
      { key: "consecutive_failures", label: t("notify.failures") },
      { key: "pending_deliveries", label: t("notify.pending") },
      { key: "actions", label: t("admin.actions"), cell: (e) => el("div", { class: "button-row" },
        actionButton(t("notify.test"), line, async () => {
          await apiRequest(`/notify/endpoints/${e.id}/test`, { method: "POST" });
          say(line, t("notify.pinged", { id: e.id }));
          await load();
        }, { ariaLabel: t("notify.testNamed", { id: e.id }) }),
        actionButton(e.enabled ? t("notify.disable") : t("notify.enable"), line, async () => {
          await apiRequest(`/notify/endpoints/${e.id}/toggle`, { method: "POST", json: { enabled: !e.enabled } });
          say(line, e.enabled ? t("notify.disabledDone", { id: e.id }) : t("notify.enabledDone", { id: e.id }));
          await load();
        }, { ariaLabel: `${e.enabled ? t("notify.disable") : t("notify.enable")} #${e.id}` }),
        e.kind === "webhook" ? actionButton(t("notify.rotate"), line, async () => {
          const rotated = await apiRequest(`/notify/endpoints/${e.id}/rotate-secret`, { method: "POST", json: {} });
          showSecret(t("notify.rotatedTitle", { id: e.id }), rotated.secret);
          await load();
        }, { ariaLabel: t("notify.rotateNamed", { id: e.id }) }) : null,
        actionButton(t("notify.showLog"), line, async () => {
          log.endpoint.value = String(e.id);
          await log.search();
          logBox.scrollIntoView();
        }, { ariaLabel: t("notify.showLogNamed", { id: e.id }) }),
        confirmButton(t("admin.delete"), t("admin.deleteConfirm"), line, async () => {
          await apiRequest(`/notify/endpoints/${e.id}`, { method: "DELETE" });
          say(line, t("notify.deleted", { id: e.id }));
          await load();
        }, { ariaLabel: `${t("admin.delete")} #${e.id}` })) },
    ], endpoints, { caption: t("notify.listTitle"), emptyText: t("notify.none"), className: "endpoints-table" }));
    const previous = log;
    log = deliveryLog(endpoints, line);
    if (previous) {
      log.endpoint.value = previous.endpoint.value;
    }
    logBox.replaceChildren(el("h2", {}, t("notify.logTitle")), log.box);
    await log.search();
  }

  apiRequest("/notify/event-types").then((types) => {
    formBox.replaceChildren(endpointForm(types.filter((e) => e.subscribable), areas, async (created) => {
      say(line, t("notify.created", { id: created.id }));
      if (created.secret) {
        showSecret(t("notify.secretTitle", { id: created.id }), created.secret);
      }
      await load();
    }));
  }).catch((error) => say(line, describeError(error), true));

  page.append(secretBox,
    el("section", { class: "card" }, el("h2", {}, t("notify.createTitle")), formBox),
    el("section", { class: "card" }, el("h2", {}, t("notify.listTitle")), line, endpointsBox),
    logBox);
  load().catch((error) => say(line, describeError(error), true));
}
