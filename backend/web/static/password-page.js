// Changing one's own password: forced after the first login or an expiry, or chosen from the header.

import { apiRequest } from "./api.js";
import { clearFormErrors, el, formErrorLine, formField, setBusy, showFormError } from "./dom.js";
import { t } from "./i18n.js";

// Render the form into `container`; `required` says why a change is forced ("must_change", "expired") or null.
export function renderPasswordPage(container, { required, onChanged }) {
  const current = el("input", {
    id: "password-current", name: "current_password", type: "password", autocomplete: "current-password",
    required: true,
  });
  const fresh = el("input", {
    id: "password-new", name: "new_password", type: "password", autocomplete: "new-password", required: true,
  });
  const repeat = el("input", {
    id: "password-repeat", name: "repeat_password", type: "password", autocomplete: "new-password", required: true,
  });
  const submit = el("button", { type: "submit", class: "primary" }, t("password.submit"));
  const notice = required ? el("p", { class: "notice" }, t(`password.required.${required}`)) : null;
  const form = el("form", { class: "card password-card", novalidate: true },
    el("h1", {}, t("password.title")),
    notice,
    el("p", { class: "muted" }, t("password.rules")),
    formField(t("password.current"), current),
    formField(t("password.new"), fresh),
    formField(t("password.repeat"), repeat),
    formErrorLine(),
    el("div", { class: "form-actions" }, submit));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFormErrors(form);
    if (fresh.value !== repeat.value) {
      const box = form.querySelector('.field[data-field="repeat_password"] .field-error');
      box.textContent = t("password.mismatch");
      box.hidden = false;
      return;
    }
    setBusy(submit, true);
    try {
      await apiRequest("/auth/password", {
        method: "POST", json: { current_password: current.value, new_password: fresh.value },
      });
      await onChanged();
    } catch (error) {
      showFormError(form, error);
    } finally {
      setBusy(submit, false);
    }
  });

  container.append(el("section", { class: "password-page" }, form));
  current.focus();
}
