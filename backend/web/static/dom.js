// DOM helpers. Every piece of data becomes a text node; no string is ever parsed as HTML.

import { ApiError, NetworkError } from "./api.js";
import { t } from "./i18n.js";

// Create an element. `attributes` go through setAttribute (or a property for `hidden`, `disabled`, `value`);
// children are nodes or strings, and strings always become text nodes.
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  Object.entries(attributes).forEach(([name, value]) => {
    if (value === null || value === undefined || value === false) {
      return;
    }
    if (name === "hidden" || name === "disabled" || name === "value" || name === "checked") {
      node[name] = value;
    } else {
      node.setAttribute(name, value === true ? "" : String(value));
    }
  });
  appendChildren(node, children);
  return node;
}

export function appendChildren(node, children) {
  children.flat().forEach((child) => {
    if (child === null || child === undefined || child === false) {
      return;
    }
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  });
  return node;
}

// Replace the children of `node`, skipping null/false children (replaceChildren would print "null").
export function replaceContent(node, ...children) {
  node.replaceChildren();
  return appendChildren(node, children);
}

// A link to an incident's page; the id is forced to an integer so the href cannot carry anything else.
export function incidentLink(incidentId, label) {
  const id = Number.parseInt(incidentId, 10);
  return el("a", { href: `#/incidents/${id}`, class: "incident-link" }, label ?? `#${id}`);
}

export function statusBadge(status) {
  return el("span", { class: `badge status-${status}` }, t(`status.${status}`));
}

export function priorityBadge(priority) {
  return el("span", { class: `badge priority-${priority}` }, t(`priority.${priority}`));
}

// A labelled form field with a place for its error message under it.
export function formField(labelText, control) {
  const error = el("p", { class: "field-error", id: `${control.id}-error`, hidden: true });
  control.setAttribute("aria-describedby", error.id);
  return el("div", { class: "field", "data-field": control.name }, el("label", { for: control.id }, labelText),
    control, error);
}

export function selectControl(id, name, options, selected) {
  const select = el("select", { id, name });
  options.forEach(({ value, label }) => {
    select.append(el("option", { value, selected: value === selected }, label));
  });
  return select;
}

export function clearFormErrors(form) {
  form.querySelectorAll(".field-error, .form-error").forEach((node) => {
    node.textContent = "";
    node.hidden = true;
  });
  form.querySelectorAll("[aria-invalid]").forEach((node) => node.removeAttribute("aria-invalid"));
}

export function describeError(error) {
  if (error instanceof ApiError) {
    return error.detail || t("error.generic");
  }
  if (error instanceof NetworkError) {
    return t("error.network");
  }
  return t("error.generic");
}

// Show an API error next to the field it names, or in the form's general error line.
export function showFormError(form, error) {
  const fieldName = error instanceof ApiError && error.field ? error.field.split(".")[0] : null;
  const fieldBox = fieldName ? form.querySelector(`.field[data-field="${CSS.escape(fieldName)}"]`) : null;
  const target = fieldBox ? fieldBox.querySelector(".field-error") : form.querySelector(".form-error");
  if (fieldBox) {
    fieldBox.querySelector("input, select, textarea").setAttribute("aria-invalid", "true");
  }
  if (target) {
    target.textContent = describeError(error);
    target.hidden = false;
  }
}

export function formErrorLine() {
  return el("p", { class: "form-error", role: "alert", hidden: true });
}

// The list of similar past incidents: title linked to the incident, score and how it was solved.
export function similarIncidentList(similar, emptyText) {
  if (!similar || similar.length === 0) {
    return el("p", { class: "muted" }, emptyText);
  }
  return el("ol", { class: "similar-list" }, similar.map((item) => el("li", { class: "similar-item" },
    el("div", { class: "similar-head" },
      incidentLink(item.incident_id, `#${item.incident_id} ${item.title}`),
      el("span", { class: "score" }, t("similar.score", { score: Math.round(item.score * 100) })),
      item.area ? el("span", { class: "badge area" }, item.area) : null),
    item.resolution
      ? el("p", { class: "similar-resolution" }, el("strong", {}, t("similar.resolution")), " ", item.resolution)
      : null)));
}

export function setBusy(button, busy) {
  button.disabled = busy;
  button.classList.toggle("busy", busy);
}
