// Building blocks of the admin and dashboard pages: page frame, role check, tables with CSV download, form
// controls with their server errors, two-step confirmations and the once-shown secret.

import { apiRequest } from "./api.js";
import { clearFormErrors, describeError, el, formErrorLine, formField, setBusy, showFormError } from "./dom.js";
import { formatDateTime, t } from "./i18n.js";

// The page's frame: a heading, an intro line and the place for its content.
export function pageFrame(container, { title, intro, className }) {
  const section = el("section", { class: `admin-page ${className || ""}` }, el("h1", {}, title),
    intro ? el("p", { class: "muted" }, intro) : null);
  container.append(section);
  return section;
}

// A clear message for a role that may not use the page.
export function renderDenied(container, { title, allowedKey, me }) {
  container.append(el("section", { class: "card denied-page", role: "alert" },
    el("h1", {}, title),
    el("p", {}, t("admin.denied", { role: t(`role.${me.role}`) })),
    el("p", {}, t(allowedKey)),
    el("p", {}, el("a", { href: "#/incidents" }, t("admin.backHome")))));
}

export function text(value) {
  return value === null || value === undefined || value === "" ? "—" : String(value);
}

export function dateText(value) {
  return value ? formatDateTime(value) : "—";
}

// A table of `rows`. columns: [{key, label, value?(row) -> text for CSV, cell?(row) -> node}].
export function dataTable(columns, rows, { caption, emptyText, className } = {}) {
  if (rows.length === 0 && emptyText) {
    return el("p", { class: "muted" }, emptyText);
  }
  const valueOf = (column, row) => (column.value ? column.value(row) : row[column.key]);
  return el("div", { class: "table-wrap" }, el("table", { class: `data-table ${className || ""}` },
    caption ? el("caption", { class: "visually-hidden" }, caption) : null,
    el("thead", {}, el("tr", {}, columns.map((column) => el("th", { scope: "col" }, column.label)))),
    el("tbody", {}, rows.map((row) => el("tr", {}, columns.map((column) => el("td",
      { "data-column": column.key }, column.cell ? column.cell(row) : text(valueOf(column, row)))))))));
}

function csvCell(value) {
  const textValue = value === null || value === undefined ? "" : String(value);
  return /[",\n\r]/.test(textValue) ? `"${textValue.replace(/"/g, '""')}"` : textValue;
}

export function toCsv(columns, rows) {
  const lines = [columns.map((column) => csvCell(column.key)).join(",")];
  rows.forEach((row) => {
    lines.push(columns.map((column) => csvCell(column.value ? column.value(row) : row[column.key])).join(","));
  });
  return `${lines.join("\r\n")}\r\n`;
}

// A button that downloads the rows as CSV (the raw figures, header = the column keys).
export function csvButton(filename, columns, rows) {
  const button = el("button", { type: "button", class: "secondary small" }, t("admin.downloadCsv"));
  button.addEventListener("click", () => {
    const url = URL.createObjectURL(new Blob([toCsv(columns, rows)], { type: "text/csv;charset=utf-8" }));
    const link = el("a", { href: url, download: filename, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    window.setTimeout(() => URL.revokeObjectURL(url), 1000);
  });
  return button;
}

// --- form controls -------------------------------------------------------------------------------------------

export function textInput(id, name, attributes = {}) {
  return el("input", { id, name, type: "text", ...attributes });
}

export function checkboxGroup(id, name, legendText, options, selected = []) {
  const error = el("p", { class: "field-error", id: `${id}-error`, hidden: true });
  return el("fieldset", { class: "field checkbox-group", "data-field": name, id, "aria-describedby": error.id },
    el("legend", {}, legendText),
    el("div", { class: "checkbox-row" }, options.map((option) => el("label", { class: "check" },
      el("input", { type: "checkbox", name, value: option.value, checked: selected.includes(option.value) }),
      " ", option.label))),
    error);
}

export function checkedValues(form, name) {
  return [...form.querySelectorAll(`input[type=checkbox][name="${name}"]:checked`)].map((box) => box.value);
}

export function checkbox(id, name, labelText, checked = false) {
  return el("div", { class: "field check-field", "data-field": name },
    el("label", { class: "check", for: id }, el("input", { type: "checkbox", id, name, checked }), " ", labelText));
}

export function lines(value) {
  return value.split(/[\n,]/).map((item) => item.trim()).filter(Boolean);
}

// Send a form: clears old errors, marks the button busy, shows the server's error next to its field.
export function handleSubmit(form, button, action) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFormErrors(form);
    setBusy(button, true);
    try {
      await action();
    } catch (error) {
      if (error.name !== "AbortError") {
        showFormError(form, error);
      }
    } finally {
      setBusy(button, false);
    }
  });
}

export function simpleForm(className, submitText, ...children) {
  const submit = el("button", { type: "submit", class: "primary" }, submitText);
  const form = el("form", { class: `admin-form ${className}`, novalidate: true }, ...children, formErrorLine(),
    el("div", { class: "form-actions" }, submit));
  return { form, submit };
}

export { formField };

// A status line for the outcome of an action (read by screen readers).
export function statusLine() {
  return el("p", { class: "status-line", role: "status" });
}

export function say(line, message, isError = false) {
  line.textContent = message;
  line.classList.toggle("form-error", isError);
  line.classList.toggle("success", !isError);
}

// A button running `action`; errors go to `line`.
export function actionButton(label, line, action, { className = "secondary small", ariaLabel } = {}) {
  const button = el("button", { type: "button", class: className, "aria-label": ariaLabel }, label);
  button.addEventListener("click", async () => {
    setBusy(button, true);
    try {
      await action();
    } catch (error) {
      say(line, describeError(error), true);
    } finally {
      setBusy(button, false);
    }
  });
  return button;
}

// A destructive action asks once more in place: the button turns into "Confirm" / "Cancel".
export function confirmButton(label, confirmLabel, line, action, { ariaLabel } = {}) {
  const wrap = el("span", { class: "confirm-wrap" });
  const first = el("button", { type: "button", class: "secondary small danger", "aria-label": ariaLabel }, label);
  const sure = actionButton(confirmLabel, line, action, { className: "primary small danger" });
  const cancel = el("button", { type: "button", class: "secondary small" }, t("admin.cancel"));
  const showFirst = (yes) => {
    first.hidden = !yes;
    sure.hidden = yes;
    cancel.hidden = yes;
  };
  first.addEventListener("click", () => {
    showFirst(false);
    sure.focus();
  });
  cancel.addEventListener("click", () => {
    showFirst(true);
    first.focus();
  });
  showFirst(true);
  wrap.append(first, sure, cancel);
  return wrap;
}

// The key or secret the server shows only once: a read-only field, a copy button, and a warning. It lives only in
// this element: it is never written to storage or to the console, and it is gone when the page changes.
export function secretOnce(titleText, secret) {
  const field = el("input", { id: "secret-once", type: "text", readonly: true, value: secret,
    class: "secret-value", "aria-describedby": "secret-once-note", spellcheck: "false", autocomplete: "off" });
  const copied = el("span", { class: "success", role: "status" });
  const copy = el("button", { type: "button", class: "primary small" }, t("admin.copy"));
  copy.addEventListener("click", async () => {
    field.select();
    try {
      await navigator.clipboard.writeText(secret);
    } catch (error) {
      document.execCommand("copy"); // the clipboard API needs a secure context; the selection is the fallback
    }
    copied.textContent = t("admin.copied");
  });
  const dismiss = el("button", { type: "button", class: "secondary small" }, t("admin.secretDone"));
  const box = el("div", { class: "secret-box notice", role: "alert" },
    el("strong", {}, titleText),
    el("p", { id: "secret-once-note" }, t("admin.secretOnce")),
    el("div", { class: "secret-row" }, el("label", { for: "secret-once", class: "visually-hidden" }, titleText),
      field, copy, dismiss),
    copied);
  dismiss.addEventListener("click", () => box.remove());
  return box;
}

// Load `path` into `target` with `render(data)`; errors shown in place.
export async function loadInto(target, path, render, options = {}) {
  try {
    const data = await apiRequest(path, options);
    target.replaceChildren(render(data));
    return data;
  } catch (error) {
    if (error.name !== "AbortError") {
      target.replaceChildren(el("p", { class: "form-error", role: "alert" }, describeError(error)));
    }
    return null;
  }
}

// A datetime-local value as an ISO instant in the browser's zone; "" stays "".
export function localToIso(value) {
  return value ? new Date(value).toISOString() : "";
}

export function clearErrors(form) {
  clearFormErrors(form);
}
