// Admin: API keys of external systems. Issue (permissions, networks, origins, areas, expiry, rate limit), the key
// shown once with a copy button, rotate, revoke, and when each key was last used.

import { apiRequest } from "./api.js";
import {
  actionButton, checkboxGroup, checkedValues, confirmButton, dataTable, dateText, formField, handleSubmit, lines,
  localToIso, pageFrame, say, secretOnce, simpleForm, statusLine, textInput,
} from "./admin-kit.js";
import { describeError, el } from "./dom.js";
import { t } from "./i18n.js";

const PERMISSIONS = ["read", "write", "escalate", "admin"];

function issueForm(areas, onIssued) {
  const name = textInput("key-name", "name", { required: true, maxlength: 100 });
  const owner = textInput("key-owner", "owner_email", { type: "email", required: true });
  const networks = el("textarea", { id: "key-networks", name: "allowed_networks", rows: 2,
    placeholder: "10.20.0.0/16" });
  const origins = el("textarea", { id: "key-origins", name: "allowed_origins", rows: 2,
    placeholder: "https://mes.example.com" });
  const expires = el("input", { id: "key-expires", name: "expires_at", type: "datetime-local" });
  const limit = el("input", { id: "key-limit", name: "rate_limit_per_minute", type: "number", min: 1, max: 100000,
    value: "60" });
  const { form, submit } = simpleForm("key-issue-form", t("keys.issue"),
    el("div", { class: "field-row" }, formField(t("keys.name"), name), formField(t("keys.owner"), owner)),
    checkboxGroup("key-permissions", "permissions", t("keys.permissions"),
      PERMISSIONS.map((p) => ({ value: p, label: t(`keys.permission.${p}`) })), ["read"]),
    checkboxGroup("key-areas", "allowed_areas", t("keys.areas"),
      areas.map((a) => ({ value: a.code, label: a.name }))),
    el("div", { class: "field-row" }, formField(t("keys.networks"), networks), formField(t("keys.origins"), origins)),
    el("div", { class: "field-row" }, formField(t("keys.expires"), expires), formField(t("keys.limit"), limit)));
  handleSubmit(form, submit, async () => {
    const issued = await apiRequest("/api-keys", { method: "POST", json: {
      name: name.value.trim(), owner_email: owner.value.trim(), permissions: checkedValues(form, "permissions"),
      allowed_areas: checkedValues(form, "allowed_areas"), allowed_networks: lines(networks.value),
      allowed_origins: lines(origins.value), expires_at: localToIso(expires.value) || null,
      rate_limit_per_minute: Number.parseInt(limit.value, 10) || 0 } });
    form.reset();
    onIssued(issued);
  });
  return form;
}

export function renderApiKeysPage(container, { areas }) {
  const page = pageFrame(container, { title: t("keys.title"), intro: t("keys.intro"), className: "keys-page" });
  const secretBox = el("div");
  const tableBox = el("div", {}, el("p", { class: "muted" }, t("list.loading")));
  const line = statusLine();

  function showSecret(key, title) {
    secretBox.replaceChildren(secretOnce(title, key.key));
    secretBox.querySelector("#secret-once").focus();
  }

  async function load() {
    const keys = await apiRequest("/api-keys");
    tableBox.replaceChildren(dataTable([
      { key: "name", label: t("keys.name") },
      { key: "owner_email", label: t("keys.owner") },
      { key: "permissions", label: t("keys.permissions"), value: (k) => k.permissions.join(", ") },
      { key: "key_prefix", label: t("keys.prefix"), value: (k) => (k.key_prefix ? `${k.key_prefix}…` : "—") },
      { key: "status", label: t("keys.status"), value: (k) => t(`keys.status.${k.status}`) },
      { key: "last_used_at", label: t("keys.lastUsed"), value: (k) => (k.last_used_at
        ? `${dateText(k.last_used_at)} (${k.last_used_ip || "?"}) · ${t("keys.uses", { n: k.use_count })}`
        : t("keys.neverUsed")) },
      { key: "expires_at", label: t("keys.expires"), value: (k) => dateText(k.expires_at) },
      { key: "actions", label: t("admin.actions"), cell: (k) => (k.status !== "active" ? "—" : el("div",
        { class: "button-row" },
        actionButton(t("keys.rotate"), line, async () => {
          const rotated = await apiRequest(`/api-keys/${k.id}/rotate`, { method: "POST", json: {} });
          showSecret(rotated, t("keys.rotatedTitle", { name: rotated.name }));
          await load();
        }, { ariaLabel: t("keys.rotateNamed", { name: k.name }) }),
        confirmButton(t("keys.revoke"), t("keys.revokeConfirm"), line, async () => {
          await apiRequest(`/api-keys/${k.id}/revoke`, { method: "POST" });
          say(line, t("keys.revoked", { name: k.name }));
          await load();
        }, { ariaLabel: t("keys.revokeNamed", { name: k.name }) }))) },
    ], keys, { caption: t("keys.title"), emptyText: t("keys.none"), className: "keys-table" }));
  }

  page.append(
    secretBox,
    el("section", { class: "card" }, el("h2", {}, t("keys.issueTitle")), issueForm(areas, async (issued) => {
      showSecret(issued, t("keys.issuedTitle", { name: issued.name }));
      await load();
    })),
    el("section", { class: "card" }, el("h2", {}, t("keys.listTitle")), line, tableBox));
  load().catch((error) => say(line, describeError(error), true));
}
