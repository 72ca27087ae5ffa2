// The single page: hash routes, the header (user, language, log out) and the session's user and areas.

import { apiRequest, isLoggedIn, logOut, onSessionEnded } from "./api.js";
import { describeError, el } from "./dom.js";
import { language, onLanguageChange, setLanguage, t, translateStaticTexts } from "./i18n.js";
import { renderIncidentDetailPage } from "./incident-detail-page.js";
import { renderIncidentListPage } from "./incident-list-page.js";
import { renderIncidentReportPage } from "./incident-report-page.js";
import { renderLoginPage } from "./login-page.js";
import { renderPasswordPage } from "./password-page.js";

const view = document.getElementById("view");
const session = { me: null, areas: [], expired: false };
let cleanupCurrentView = () => {};

function parseRoute(hash) {
  const detail = /^#\/incidents\/(\d+)$/.exec(hash);
  if (detail) {
    return { name: "detail", incidentId: Number.parseInt(detail[1], 10) };
  }
  if (hash === "#/report") {
    return { name: "report" };
  }
  if (hash === "#/password") {
    return { name: "password" };
  }
  return { name: "list" };
}

function updateHeader() {
  const loggedIn = session.me !== null;
  document.getElementById("topnav").hidden = !loggedIn;
  document.getElementById("logout-button").hidden = !loggedIn;
  document.getElementById("nav-password").hidden = !loggedIn;
  document.getElementById("user-name").textContent = loggedIn ? session.me.display_name || session.me.username : "";
  const toggle = document.getElementById("language-toggle");
  toggle.textContent = t("language.switch");
  toggle.setAttribute("lang", language() === "es" ? "en" : "es");
  translateStaticTexts();
  const route = parseRoute(window.location.hash);
  document.getElementById("nav-incidents").classList.toggle("active", route.name !== "report");
  document.getElementById("nav-report").classList.toggle("active", route.name === "report");
}

// Load who is logged in and the areas, once per session.
async function loadSession() {
  const me = await apiRequest("/auth/me");
  // Until a required password change is done, every other endpoint refuses this session.
  // Auditors read the audit log and the reports through the API; the incident pages are not theirs.
  const incidentsAllowed = !me.password_change_required && me.role !== "auditor";
  session.areas = incidentsAllowed ? await apiRequest("/areas") : [];
  session.me = me;
  session.expired = false;
}

// Why the signed-in person must change their password now ("must_change", "expired"), or null.
function passwordChangeReason(me) {
  if (!me.password_change_required) {
    return null;
  }
  return me.must_change_password ? "must_change" : "expired";
}

function showLogin() {
  session.me = null;
  renderLoginPage(view, {
    sessionExpired: session.expired,
    onLoggedIn: async () => {
      await loadSession();
      if (!window.location.hash || window.location.hash === "#/login") {
        window.location.hash = "#/incidents";
      } else {
        renderCurrentRoute();
      }
    },
  });
}

function renderCurrentRoute() {
  cleanupCurrentView();
  cleanupCurrentView = () => {};
  view.replaceChildren();
  updateHeader();
  if (session.me === null) {
    showLogin();
    return;
  }
  const route = parseRoute(window.location.hash);
  const required = passwordChangeReason(session.me);
  let cleanup;
  if (required || route.name === "password") {
    renderPasswordPage(view, {
      required,
      onChanged: async () => {
        await loadSession();
        window.location.hash = "#/incidents";
        renderCurrentRoute();
      },
    });
  } else if (session.me.role === "auditor") {
    view.append(el("section", { class: "card auditor-page" },
      el("h1", {}, t("auditor.title")),
      el("p", {}, t("auditor.intro")),
      el("p", {}, el("a", { href: "/docs" }, t("auditor.docs")))));
  } else if (route.name === "detail") {
    cleanup = renderIncidentDetailPage(view, { incidentId: route.incidentId, me: session.me });
  } else if (route.name === "report") {
    cleanup = renderIncidentReportPage(view, { areas: session.areas });
  } else {
    cleanup = renderIncidentListPage(view, { areas: session.areas });
  }
  cleanupCurrentView = cleanup || (() => {});
  window.scrollTo(0, 0);
}

async function start() {
  document.documentElement.lang = language();
  onSessionEnded(() => {
    if (session.me !== null) {
      session.expired = true;
      session.me = null;
      renderCurrentRoute();
    }
  });
  onLanguageChange(renderCurrentRoute);
  window.addEventListener("hashchange", renderCurrentRoute);
  document.getElementById("language-toggle").addEventListener("click", () => {
    setLanguage(language() === "es" ? "en" : "es");
  });
  document.getElementById("logout-button").addEventListener("click", async () => {
    await logOut();
    session.me = null;
    renderCurrentRoute();
  });
  if (isLoggedIn()) {
    try {
      await loadSession();
    } catch (error) {
      session.me = null;
      if (isLoggedIn()) {
        showStartError(error);
        return;
      }
      session.expired = true;
    }
  }
  renderCurrentRoute();
}

// The server could not be reached at start while the tokens are still valid: offer to try again.
function showStartError(error) {
  const retry = el("button", { type: "button", class: "secondary" }, t("error.retry"));
  retry.addEventListener("click", () => window.location.reload());
  view.replaceChildren(el("div", { class: "card" }, el("p", { class: "form-error" }, describeError(error)), retry));
}

start();
