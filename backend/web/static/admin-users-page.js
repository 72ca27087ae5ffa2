// Admin: local and directory accounts. Create, change role, enable/disable, reset the password, unlock.

import { apiRequest } from "./api.js";
import {
  actionButton, checkbox, dataTable, dateText, formField, handleSubmit, pageFrame, say, simpleForm, statusLine,
  textInput,
} from "./admin-kit.js";
import { describeError, el, selectControl } from "./dom.js";
import { t } from "./i18n.js";

export const ROLES = ["reporter", "technician", "supervisor", "admin", "auditor"];

function roleOptions() {
  return ROLES.map((role) => ({ value: role, label: t(`role.${role}`) }));
}

function createForm(onCreated) {
  const username = textInput("user-username", "username", { autocomplete: "off", required: true });
  const displayName = textInput("user-display-name", "display_name");
  const email = textInput("user-email", "email", { type: "email" });
  const role = selectControl("user-role", "role", roleOptions(), "technician");
  const password = el("input", { id: "user-password", name: "password", type: "password", autocomplete: "new-password",
    required: true });
  const { form, submit } = simpleForm("user-create-form", t("users.create"),
    el("div", { class: "field-row" }, formField(t("users.username"), username), formField(t("users.role"), role)),
    el("div", { class: "field-row" }, formField(t("users.displayName"), displayName),
      formField(t("users.email"), email)),
    formField(t("users.password"), password),
    el("p", { class: "muted small-text" }, t("password.rules")),
    checkbox("user-must-change", "must_change_password", t("users.mustChange"), true));
  handleSubmit(form, submit, async () => {
    const created = await apiRequest("/users", { method: "POST", json: {
      username: username.value.trim(), display_name: displayName.value.trim(), email: email.value.trim() || null,
      role: role.value, password: password.value,
      must_change_password: form.querySelector("#user-must-change").checked } });
    form.reset();
    onCreated(created);
  });
  return form;
}

// The edit panel of one account: role, active, name/e-mail, a new password, unlock.
function editPanel(user, onChanged) {
  const line = statusLine();
  const role = selectControl("edit-role", "role", roleOptions(), user.role);
  const displayName = textInput("edit-display-name", "display_name", { value: user.display_name });
  const email = textInput("edit-email", "email", { type: "email", value: user.email || "" });
  const profile = simpleForm("user-edit-form", t("users.save"),
    el("div", { class: "field-row" }, formField(t("users.role"), role), formField(t("users.email"), email)),
    formField(t("users.displayName"), displayName),
    checkbox("edit-active", "is_active", t("users.active"), user.is_active));
  handleSubmit(profile.form, profile.submit, async () => {
    const changed = await apiRequest(`/users/${user.id}`, { method: "PATCH", json: {
      role: role.value, display_name: displayName.value.trim(), email: email.value.trim() || null,
      is_active: profile.form.querySelector("#edit-active").checked } });
    say(line, t("users.saved", { name: changed.username }));
    onChanged(changed);
  });
  const newPassword = el("input", { id: "reset-password", name: "password", type: "password",
    autocomplete: "new-password" });
  const reset = simpleForm("user-reset-form", t("users.resetPassword"),
    formField(t("users.newPassword"), newPassword),
    checkbox("reset-must-change", "must_change_password", t("users.mustChange"), true));
  handleSubmit(reset.form, reset.submit, async () => {
    const changed = await apiRequest(`/users/${user.id}`, { method: "PATCH", json: {
      password: newPassword.value, must_change_password: reset.form.querySelector("#reset-must-change").checked } });
    newPassword.value = "";
    say(line, t("users.passwordReset", { name: changed.username }));
    onChanged(changed);
  });
  const unlock = user.locked ? actionButton(t("users.unlock"), line, async () => {
    const changed = await apiRequest(`/users/${user.id}/unlock`, { method: "POST" });
    say(line, t("users.unlocked", { name: changed.username }));
    onChanged(changed);
  }) : null;
  return el("section", { class: "card user-edit", "aria-labelledby": "user-edit-title" },
    el("h2", { id: "user-edit-title" }, t("users.editTitle", { name: user.username })),
    user.source !== "local" ? el("p", { class: "muted" }, t("users.directoryNote")) : null,
    line, profile.form, el("h3", {}, t("users.resetPassword")), reset.form, unlock);
}

export function renderUsersPage(container) {
  const page = pageFrame(container, { title: t("users.title"), intro: t("users.intro"), className: "users-page" });
  const tableBox = el("div", {}, el("p", { class: "muted" }, t("list.loading")));
  const editBox = el("div");
  const line = statusLine();
  let users = [];

  function showTable() {
    tableBox.replaceChildren(dataTable([
      { key: "username", label: t("users.username") },
      { key: "display_name", label: t("users.displayName") },
      { key: "role", label: t("users.role"), value: (u) => t(`role.${u.role}`) },
      { key: "source", label: t("users.source") },
      { key: "is_active", label: t("users.state"), value: (u) => {
        if (!u.is_active) return t("users.disabled");
        return u.locked ? t("users.locked") : t("users.enabled");
      } },
      { key: "last_login_at", label: t("users.lastLogin"), value: (u) => dateText(u.last_login_at) },
      { key: "actions", label: t("admin.actions"), cell: (u) => {
        const button = el("button", { type: "button", class: "secondary small",
          "aria-label": t("users.editNamed", { name: u.username }) }, t("users.edit"));
        button.addEventListener("click", () => {
          editBox.replaceChildren(editPanel(u, changed));
          editBox.querySelector("select").focus();
        });
        return button;
      } },
    ], users, { caption: t("users.title"), className: "users-table" }));
  }

  function changed(user) {
    users = users.map((u) => (u.id === user.id ? user : u));
    showTable();
  }

  async function load() {
    users = await apiRequest("/users");
    showTable();
  }

  page.append(
    el("section", { class: "card" }, el("h2", {}, t("users.createTitle")), createForm(async (created) => {
      say(line, t("users.created", { name: created.username }));
      await load();
    }), line),
    editBox,
    el("section", { class: "card" }, el("h2", {}, t("users.listTitle")), tableBox));
  load().catch((error) => say(line, describeError(error), true));
}
