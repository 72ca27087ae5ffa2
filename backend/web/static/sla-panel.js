// The SLA panel: the applied policy, each clock (first response, resolution) with its due time and business
// minutes left or overdue, warnings and breaches recorded so far, and the escalation level.

import { apiRequest } from "./api.js";
import { describeError, el, replaceContent } from "./dom.js";
import { formatDateTime, t } from "./i18n.js";

// Business minutes as "2 h 05 min" / "45 min", rounded to whole minutes by `round` (down by default; time left
// and time overdue are rounded up, so a clock seconds from or past its target never reads "0 min").
function formatMinutes(minutes, round = Math.floor) {
  const whole = Math.max(0, round(minutes));
  const hours = Math.floor(whole / 60);
  const rest = whole % 60;
  return hours ? `${hours} h ${String(rest).padStart(2, "0")} min` : `${rest} min`;
}

// The state of one clock as a badge class and a text key; `warned` when a warning threshold was recorded for it.
function clockState(clock, warned) {
  if (clock.state === "stopped") {
    return clock.met ? ["sla-met", "sla.met"] : ["sla-breached", "sla.missed"];
  }
  if (clock.breached || clock.overdue_business_minutes > 0) {
    return ["sla-breached", "sla.breached"];
  }
  if (clock.state === "paused") {
    return ["sla-paused", "sla.paused"];
  }
  return warned ? ["sla-at-risk", "sla.atRisk"] : ["sla-running", "sla.running"];
}

function clockProgress(clock) {
  if (clock.state === "stopped") {
    return t("sla.tookMinutes", { time: formatMinutes(clock.elapsed_business_minutes) });
  }
  if (clock.overdue_business_minutes > 0) {
    return t("sla.overdueMinutes", { time: formatMinutes(clock.overdue_business_minutes, Math.ceil) });
  }
  return t("sla.leftMinutes", { time: formatMinutes(clock.remaining_business_minutes, Math.ceil) });
}

function clockRow(clock, events) {
  const warned = events.some((event) => event.clock === clock.kind && event.kind === "warning");
  const [stateClass, stateKey] = clockState(clock, warned);
  return el("li", { class: "sla-clock" },
    el("div", { class: "sla-clock-head" },
      el("strong", {}, t(`sla.clock.${clock.kind}`)),
      el("span", { class: `badge ${stateClass}` }, t(stateKey))),
    el("div", { class: "muted" },
      t("sla.target", { time: formatMinutes(clock.target_minutes) }),
      clock.due_at ? ` · ${t("sla.due", { when: formatDateTime(clock.due_at) })}` : ""),
    el("div", {}, clockProgress(clock)));
}

function eventRow(event) {
  const what = event.kind === "breach"
    ? t("sla.eventBreach", { clock: t(`sla.clock.${event.clock}`) })
    : t("sla.eventWarning", { clock: t(`sla.clock.${event.clock}`), percent: event.threshold_percent });
  return el("li", {}, el("time", { datetime: event.occurred_at }, formatDateTime(event.occurred_at)), " · ", what);
}

function panelContent(sla) {
  if (!sla.policy) {
    return [el("p", { class: "muted" }, t("sla.noPolicy"))];
  }
  return [
    el("p", { class: "muted" }, t("sla.policy", { name: sla.policy.name }),
      sla.calendar ? ` · ${t("sla.businessHours", { zone: sla.calendar.timezone })}` : ` · ${t("sla.allHours")}`),
    el("ul", { class: "sla-clocks" }, sla.clocks.map((clock) => clockRow(clock, sla.events))),
    sla.escalation_level > 0
      ? el("p", { class: "sla-escalation" }, t("sla.escalated", { level: sla.escalation_level }),
        sla.escalated_department ? ` · ${sla.escalated_department}` : "")
      : null,
    sla.events.length ? el("ul", { class: "sla-events" }, sla.events.map(eventRow)) : null,
  ];
}

// Load the incident's SLA into `container`; `refresh()` on the result reloads it after a change.
export function renderSlaPanel(container, { incidentId }) {
  const body = el("div", {}, el("p", { class: "muted" }, t("list.loading")));
  replaceContent(container, el("section", { class: "card sla-card" }, el("h2", {}, t("sla.title")), body));
  let controller = null;

  async function refresh() {
    controller?.abort();
    controller = new AbortController();
    try {
      const sla = await apiRequest(`/incidents/${incidentId}/sla`, { signal: controller.signal });
      replaceContent(body, ...panelContent(sla));
    } catch (error) {
      if (error.name === "AbortError") {
        return;
      }
      replaceContent(body, el("p", { class: "form-error" }, describeError(error)));
    }
  }

  refresh();
  return { refresh, cleanup: () => controller?.abort() };
}
