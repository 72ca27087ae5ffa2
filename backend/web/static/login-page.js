// The login form: OAuth2 password flow against /api/v1/auth/token.

import { logIn } from "./api.js";
import { clearFormErrors, el, formErrorLine, formField, setBusy, showFormError } from "./dom.js";
import { t } from "./i18n.js";

// Render the form into `container`; `onLoggedIn` runs after the tokens are stored.
export function renderLoginPage(container, { onLoggedIn, sessionExpired }) {
  const username = el("input", { id: "login-username", name: "username", autocomplete: "username", required: true });
  const password = el("input", {
    id: "login-password", name: "password", type: "password", autocomplete: "current-password", required: true,
  });
  const submit = el("button", { type: "submit", class: "primary" }, t("login.submit"));
  const form = el("form", { class: "card login-card", novalidate: true },
    el("h1", {}, t("login.title")),
    el("p", { class: "muted" }, t("login.intro")),
    sessionExpired ? el("p", { class: "notice" }, t("login.expired")) : null,
    formField(t("login.username"), username),
    formField(t("login.password"), password),
    formErrorLine(),
    el("div", { class: "form-actions" }, submit));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFormErrors(form);
    setBusy(submit, true);
    try {
      await logIn(username.value.trim(), password.value);
      password.value = "";
      await onLoggedIn();
    } catch (error) {
      showFormError(form, error);
      password.select();
    } finally {
      setBusy(submit, false);
    }
  });

  container.append(el("section", { class: "login-page" }, form));
  username.focus();
}
