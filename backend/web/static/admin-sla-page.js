// Supervisors and admins: SLA policies with their business calendar (working hours per weekday, holidays),
// escalation rules, and the preview of a due date in business time.

import { apiRequest } from "./api.js";
import {
  actionButton, checkbox, checkboxGroup, checkedValues, confirmButton, dataTable, formField, handleSubmit, lines,
  localToIso, pageFrame, say, simpleForm, statusLine, textInput,
} from "./admin-kit.js";
import { describeError, el, selectControl } from "./dom.js";
import { t } from "./i18n.js";
import { PRIORITIES } from "./incident-list-page.js";

const WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const PAUSABLE = ["open", "in_progress", "waiting"];
const CONDITIONS = ["duration_exceeds", "sla_breached", "sla_warning", "priority_is", "suggestion_rejected_times",
  "reopened_times"];
const CLOCKS = ["any", "first_response", "resolution"];

// "08:00-14:00, 15:00-18:00" <-> [["08:00","14:00"],["15:00","18:00"]]
function parseWindows(value) {
  return value.split(",").map((part) => part.trim()).filter(Boolean).map((part) => part.split("-").map((x) => x.trim()));
}

function formatWindows(windows) {
  return (windows || []).map((w) => `${w[0]}-${w[1]}`).join(", ");
}

function minutesText(minutes) {
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  return hours ? `${hours} h${rest ? ` ${rest} min` : ""}` : `${rest} min`;
}

// The calendar part of the policy form; read() gives the API's calendar spec, or null for 24/7.
function calendarFields(calendar) {
  const business = checkbox("policy-business", "business_hours", t("sla.admin.businessHours"), calendar !== null);
  const zone = textInput("policy-timezone", "timezone", { value: calendar ? calendar.timezone : "Europe/Madrid" });
  const days = WEEKDAYS.map((day) => textInput(`policy-hours-${day}`, `hours_${day}`, {
    value: calendar ? formatWindows(calendar.hours[day]) : (["sat", "sun"].includes(day) ? "" : "08:00-17:00"),
    placeholder: "08:00-14:00, 15:00-18:00" }));
  const holidays = el("textarea", { id: "policy-holidays", name: "holidays", rows: 3, placeholder: "2026-12-25",
    value: calendar ? (calendar.holidays || []).join("\n") : "" });
  const detail = el("div", { class: "calendar-fields" },
    formField(t("sla.admin.timezone"), zone),
    el("div", { class: "hours-grid" }, days.map((input, index) => formField(t(`weekday.${WEEKDAYS[index]}`), input))),
    formField(t("sla.admin.holidays"), holidays));
  const toggle = business.querySelector("input");
  const sync = () => {
    detail.hidden = !toggle.checked;
  };
  toggle.addEventListener("change", sync);
  sync();
  return {
    nodes: el("fieldset", { class: "calendar-box field", "data-field": "calendar" }, el("legend", {},
      t("sla.admin.calendar")), el("p", { class: "field-error", role: "alert", hidden: true }), business, detail),
    read: () => {
      if (!toggle.checked) {
        return null;
      }
      const hours = {};
      WEEKDAYS.forEach((day, index) => {
        const windows = parseWindows(days[index].value);
        if (windows.length) {
          hours[day] = windows;
        }
      });
      return { timezone: zone.value.trim(), hours, holidays: lines(holidays.value) };
    },
  };
}

function policyForm(areas, policy, onSaved, onCancel) {
  const editing = policy !== null;
  const name = textInput("policy-name", "name", { value: editing ? policy.name : "", maxlength: 100 });
  const first = el("input", { id: "policy-first", name: "first_response_minutes", type: "number", min: 1,
    value: editing ? String(policy.first_response_minutes) : "60" });
  const resolution = el("input", { id: "policy-resolution", name: "resolution_minutes", type: "number", min: 1,
    value: editing ? String(policy.resolution_minutes) : "480" });
  const precedence = el("input", { id: "policy-precedence", name: "precedence", type: "number", min: 0,
    value: editing ? String(policy.precedence) : "100" });
  const thresholds = textInput("policy-thresholds", "warning_thresholds", {
    value: editing ? policy.warning_thresholds.join(", ") : "75, 90" });
  const calendar = calendarFields(editing ? policy.calendar : null);
  const { form, submit } = simpleForm("policy-form", editing ? t("sla.admin.savePolicy") : t("sla.admin.createPolicy"),
    formField(t("sla.admin.name"), name),
    el("div", { class: "field-row" }, formField(t("sla.admin.firstResponse"), first),
      formField(t("sla.admin.resolution"), resolution)),
    checkboxGroup("policy-priorities", "priorities", t("sla.admin.priorities"),
      PRIORITIES.map((p) => ({ value: p, label: t(`priority.${p}`) })), editing ? policy.priorities : []),
    checkboxGroup("policy-areas", "areas", t("sla.admin.areas"), areas.map((a) => ({ value: a.code, label: a.name })),
      editing ? policy.areas : []),
    checkboxGroup("policy-pause", "pause_statuses", t("sla.admin.pause"),
      PAUSABLE.map((s) => ({ value: s, label: t(`status.${s}`) })), editing ? policy.pause_statuses : ["waiting"]),
    el("div", { class: "field-row" }, formField(t("sla.admin.precedence"), precedence),
      formField(t("sla.admin.thresholds"), thresholds)),
    calendar.nodes);
  if (editing) {
    const cancel = el("button", { type: "button", class: "secondary" }, t("admin.cancel"));
    cancel.addEventListener("click", onCancel);
    form.querySelector(".form-actions").append(cancel);
  }
  const readBody = () => ({
    name: name.value.trim(), first_response_minutes: Number.parseInt(first.value, 10) || 0,
    resolution_minutes: Number.parseInt(resolution.value, 10) || 0,
    precedence: Number.parseInt(precedence.value, 10) || 0,
    priorities: checkedValues(form, "priorities"), areas: checkedValues(form, "areas"),
    pause_statuses: checkedValues(form, "pause_statuses"),
    warning_thresholds: lines(thresholds.value).map((x) => Number.parseInt(x, 10)),
    calendar: calendar.read(),
  });
  handleSubmit(form, submit, async () => {
    const saved = await apiRequest(editing ? `/sla/policies/${policy.id}` : "/sla/policies",
      { method: editing ? "PATCH" : "POST", json: readBody() });
    onSaved(saved, editing);
  });
  return { form, calendar };
}

// The preview of a due date, using the calendar currently in the policy form.
function previewForm(readCalendar) {
  const start = el("input", { id: "preview-start", name: "start", type: "datetime-local" });
  const minutes = el("input", { id: "preview-minutes", name: "minutes", type: "number", min: 1, value: "240" });
  const result = el("p", { class: "preview-result", role: "status" });
  const { form, submit } = simpleForm("preview-form", t("sla.admin.previewButton"),
    el("div", { class: "field-row" }, formField(t("sla.admin.previewStart"), start),
      formField(t("sla.admin.previewMinutes"), minutes)));
  handleSubmit(form, submit, async () => {
    result.textContent = "";
    const body = await apiRequest("/sla/preview", { method: "POST", json: {
      calendar: readCalendar(), start: localToIso(start.value) || null,
      minutes: Number.parseInt(minutes.value, 10) || 0 } });
    result.textContent = t("sla.admin.previewResult", { due: body.due_local.replace("T", " ").slice(0, 16),
      zone: body.timezone, wall: minutesText(Math.round(body.wall_minutes)) });
  });
  return el("div", {}, form, result);
}

function conditionFields(index) {
  const type = selectControl(`cond-type-${index}`, "conditions",
    CONDITIONS.map((c) => ({ value: c, label: t(`sla.cond.${c}`) })), "sla_breached");
  const number = el("input", { id: `cond-number-${index}`, type: "number", min: 1, value: "60" });
  const clock = selectControl(`cond-clock-${index}`, `clock_${index}`, CLOCKS.map((c) => ({ value: c,
    label: t(`sla.clockOption.${c}`) })), "any");
  const priorities = checkboxGroup(`cond-priorities-${index}`, `cond_priorities_${index}`, t("sla.admin.priorities"),
    PRIORITIES.map((p) => ({ value: p, label: t(`priority.${p}`) })), ["critical"]);
  const numberField = formField(t("sla.admin.condNumber"), number);
  const clockField = formField(t("sla.admin.condClock"), clock);
  const box = el("div", { class: "condition" }, formField(t("sla.admin.condType", { n: index + 1 }), type),
    numberField, clockField, priorities);
  const sync = () => {
    const kind = type.value;
    numberField.hidden = !["duration_exceeds", "sla_warning", "suggestion_rejected_times", "reopened_times"]
      .includes(kind);
    clockField.hidden = !["sla_breached", "sla_warning"].includes(kind);
    priorities.hidden = kind !== "priority_is";
  };
  type.addEventListener("change", sync);
  sync();
  return {
    box,
    read: (form) => {
      const kind = type.value;
      const value = Number.parseInt(number.value, 10) || 0;
      if (kind === "duration_exceeds") return { type: kind, minutes: value };
      if (kind === "sla_breached") return { type: kind, clock: clock.value };
      if (kind === "sla_warning") return { type: kind, clock: clock.value, threshold: value };
      if (kind === "priority_is") return { type: kind, priorities: checkedValues(form, `cond_priorities_${index}`) };
      return { type: kind, times: value };
    },
  };
}

function ruleForm(onCreated) {
  const name = textInput("rule-name", "name", { maxlength: 100 });
  const combine = selectControl("rule-combine", "combine", [{ value: "all", label: t("sla.admin.combineAll") },
    { value: "any", label: t("sla.admin.combineAny") }], "all");
  const level = selectControl("rule-level", "level", [1, 2, 3].map((n) => ({ value: String(n),
    label: t("sla.admin.levelN", { n }) })), "1");
  const department = textInput("rule-department", "target_department", { placeholder: "maintenance-l2" });
  const conditions = [conditionFields(0)];
  const conditionBox = el("div", { class: "conditions field", "data-field": "conditions" },
    el("p", { class: "field-error", role: "alert", hidden: true }), conditions[0].box);
  const add = el("button", { type: "button", class: "secondary small" }, t("sla.admin.addCondition"));
  add.addEventListener("click", () => {
    if (conditions.length < 10) {
      const next = conditionFields(conditions.length);
      conditions.push(next);
      conditionBox.append(next.box);
      next.box.querySelector("select").focus();
    }
  });
  const { form, submit } = simpleForm("rule-form", t("sla.admin.createRule"),
    formField(t("sla.admin.name"), name),
    el("div", { class: "field-row" }, formField(t("sla.admin.combine"), combine),
      formField(t("sla.admin.level"), level)),
    conditionBox, el("div", { class: "button-row" }, add),
    formField(t("sla.admin.department"), department),
    checkbox("rule-notify", "notify", t("sla.admin.notify"), true));
  handleSubmit(form, submit, async () => {
    const created = await apiRequest("/sla/escalation-rules", { method: "POST", json: {
      name: name.value.trim(), combine: combine.value, level: Number.parseInt(level.value, 10),
      conditions: conditions.map((c) => c.read(form)), target_department: department.value.trim() || null,
      notify: form.querySelector("#rule-notify").checked } });
    onCreated(created);
  });
  return form;
}

function conditionText(condition) {
  const label = t(`sla.cond.${condition.type}`);
  const parts = [condition.minutes, condition.times, condition.threshold && `${condition.threshold}%`,
    condition.clock && t(`sla.clockOption.${condition.clock}`),
    condition.priorities && condition.priorities.map((p) => t(`priority.${p}`)).join("/")].filter(Boolean);
  return parts.length ? `${label} (${parts.join(", ")})` : label;
}

export function renderSlaAdminPage(container, { areas }) {
  const page = pageFrame(container, { title: t("sla.admin.title"), intro: t("sla.admin.intro"),
    className: "sla-admin-page" });
  const line = statusLine();
  const policiesBox = el("div", {}, el("p", { class: "muted" }, t("list.loading")));
  const rulesBox = el("div");
  const policyCard = el("section", { class: "card", id: "policy-card" });
  const ruleLine = statusLine();

  function showPolicyForm(policy) {
    const { form, calendar } = policyForm(areas, policy, async (saved, edited) => {
      say(line, t(edited ? "sla.admin.policySaved" : "sla.admin.policyCreated", { name: saved.name }));
      showPolicyForm(null);
      await loadPolicies();
    }, () => showPolicyForm(null));
    policyCard.replaceChildren(
      el("h2", {}, policy ? t("sla.admin.editPolicy", { name: policy.name }) : t("sla.admin.newPolicy")),
      form,
      el("h3", {}, t("sla.admin.previewTitle")),
      el("p", { class: "muted small-text" }, t("sla.admin.previewIntro")),
      previewForm(calendar.read));
  }

  async function loadPolicies() {
    const policies = await apiRequest("/sla/policies");
    policiesBox.replaceChildren(dataTable([
      { key: "name", label: t("sla.admin.name") },
      { key: "match", label: t("sla.admin.match"), value: (p) => [
        p.priorities.map((x) => t(`priority.${x}`)).join("/") || t("list.any"),
        p.areas.join("/") || t("list.any")].join(" · ") },
      { key: "first_response_minutes", label: t("sla.admin.firstResponse"),
        value: (p) => minutesText(p.first_response_minutes) },
      { key: "resolution_minutes", label: t("sla.admin.resolution"), value: (p) => minutesText(p.resolution_minutes) },
      { key: "calendar", label: t("sla.admin.calendar"), value: (p) => (p.calendar
        ? `${p.calendar.timezone} · ${t("sla.admin.holidayCount", { n: (p.calendar.holidays || []).length })}`
        : t("sla.allHours")) },
      { key: "is_active", label: t("notify.state"), value: (p) => (p.is_active ? t("notify.enabled")
        : t("notify.disabled")) },
      { key: "actions", label: t("admin.actions"), cell: (p) => el("div", { class: "button-row" },
        actionButton(t("users.edit"), line, async () => {
          showPolicyForm(p);
          policyCard.querySelector("#policy-name").focus();
        }, { ariaLabel: t("users.editNamed", { name: p.name }) }),
        actionButton(p.is_active ? t("notify.disable") : t("notify.enable"), line, async () => {
          await apiRequest(`/sla/policies/${p.id}`, { method: "PATCH", json: { is_active: !p.is_active } });
          await loadPolicies();
        }, { ariaLabel: `${p.is_active ? t("notify.disable") : t("notify.enable")} ${p.name}` }),
        confirmButton(t("admin.delete"), t("admin.deleteConfirm"), line, async () => {
          await apiRequest(`/sla/policies/${p.id}`, { method: "DELETE" });
          await loadPolicies();
        }, { ariaLabel: `${t("admin.delete")} ${p.name}` })) },
    ], policies, { caption: t("sla.admin.policies"), emptyText: t("sla.admin.noPolicies"),
      className: "policies-table" }));
  }

  async function loadRules() {
    const rules = await apiRequest("/sla/escalation-rules");
    rulesBox.replaceChildren(dataTable([
      { key: "name", label: t("sla.admin.name") },
      { key: "conditions", label: t("sla.admin.conditions"), value: (r) => r.conditions.map(conditionText)
        .join(r.combine === "all" ? ` ${t("sla.admin.and")} ` : ` ${t("sla.admin.or")} `) },
      { key: "level", label: t("sla.admin.level") },
      { key: "target_department", label: t("sla.admin.department"), value: (r) => r.target_department || "—" },
      { key: "is_active", label: t("notify.state"), value: (r) => (r.is_active ? t("notify.enabled")
        : t("notify.disabled")) },
      { key: "actions", label: t("admin.actions"), cell: (r) => el("div", { class: "button-row" },
        actionButton(r.is_active ? t("notify.disable") : t("notify.enable"), ruleLine, async () => {
          await apiRequest(`/sla/escalation-rules/${r.id}`, { method: "PATCH", json: { is_active: !r.is_active } });
          await loadRules();
        }, { ariaLabel: `${r.is_active ? t("notify.disable") : t("notify.enable")} ${r.name}` }),
        confirmButton(t("admin.delete"), t("admin.deleteConfirm"), ruleLine, async () => {
          await apiRequest(`/sla/escalation-rules/${r.id}`, { method: "DELETE" });
          await loadRules();
        }, { ariaLabel: `${t("admin.delete")} ${r.name}` })) },
    ], rules, { caption: t("sla.admin.rules"), emptyText: t("sla.admin.noRules"), className: "rules-table" }));
  }

  const ruleCard = el("section", { class: "card" }, el("h2", {}, t("sla.admin.newRule")), ruleForm(async (created) => {
    say(ruleLine, t("sla.admin.ruleCreated", { name: created.name }));
    await loadRules();
  }));
  showPolicyForm(null);
  page.append(
    el("section", { class: "card" }, el("h2", {}, t("sla.admin.policies")), line, policiesBox),
    policyCard,
    el("section", { class: "card" }, el("h2", {}, t("sla.admin.rules")), ruleLine, rulesBox),
    ruleCard);
  loadPolicies().catch((error) => say(line, describeError(error), true));
  loadRules().catch((error) => say(ruleLine, describeError(error), true));
}
