// The single page: hash routes, the header (user, language, log out) and the session's user and areas.

import { renderApiKeysPage } from "./admin-keys-page.js";
import { renderAuditPage } from "./admin-audit-page.js";
import { renderDenied } from "./admin-kit.js";
import { renderKnowledgePage } from "./admin-knowledge-page.js";
import { renderNotificationsPage } from "./admin-notify-page.js";
import { renderSlaAdminPage } from "./admin-sla-page.js";
import { renderUsersPage } from "./admin-users-page.js";
import { apiRequest, isLoggedIn, logOut, onConnectivityChange, onSessionEnded } from "./api.js";
import { renderDashboardPage } from "./dashboard-page.js";
import { describeError, el } from "./dom.js";
import { language, onLanguageChange, setLanguage, t, translateStaticTexts } from "./i18n.js";
import { renderIncidentDetailPage } from "./incident-detail-page.js";
import { renderIncidentListPage } from "./incident-list-page.js";
import { renderIncidentReportPage } from "./incident-report-page.js";
import { renderLoginPage } from "./login-page.js";
import { liveState, onLiveStateChange } from "./live.js";
import { renderPasswordPage } from "./password-page.js";

const view = document.getElementById("view");
const session = { me: null, areas: [], expired: false };
let cleanupCurrentView = () => {};

// The supervisor and admin pages: who may open each (roles), and the text that says so to the others.
const RANK = { reporter: 0, technician: 1, supervisor: 2, admin: 3 };
const atLeast = (role) => (me) => me.role in RANK && RANK[me.role] >= RANK[role];
export const ADMIN_PAGES = {
  dashboard: { hash: "#/dashboard", nav: "nav.dashboard", allowed: (me) => atLeast("supervisor")(me)
    || me.role === "auditor", allowedKey: "admin.allowed.dashboard", render: renderDashboardPage },
  users: { hash: "#/admin/users", nav: "nav.users", allowed: atLeast("admin"), allowedKey: "admin.allowed.admin",
    render: renderUsersPage },
  "api-keys": { hash: "#/admin/api-keys", nav: "nav.apiKeys", allowed: atLeast("admin"),
    allowedKey: "admin.allowed.admin", render: renderApiKeysPage },
  notifications: { hash: "#/admin/notifications", nav: "nav.notifications", allowed: atLeast("admin"),
    allowedKey: "admin.allowed.admin", render: renderNotificationsPage },
  sla: { hash: "#/admin/sla", nav: "nav.sla", allowed: atLeast("supervisor"), allowedKey: "admin.allowed.sla",
    render: renderSlaAdminPage },
  audit: { hash: "#/admin/audit", nav: "nav.audit", allowed: (me) => me.role === "admin" || me.role === "auditor",
    allowedKey: "admin.allowed.audit", render: renderAuditPage },
  knowledge: { hash: "#/admin/knowledge", nav: "nav.knowledge", allowed: atLeast("technician"),
    allowedKey: "admin.allowed.knowledge", render: renderKnowledgePage },
};

function parseRoute(hash) {
  const detail = /^#\/incidents\/(\d+)$/.exec(hash);
  if (detail) {
    return { name: "detail", incidentId: Number.parseInt(detail[1], 10) };
  }
  const admin = Object.entries(ADMIN_PAGES).find(([, page]) => page.hash === hash);
  if (admin) {
    return { name: "admin", page: admin[0] };
  }
  if (hash === "#/report") {
    return { name: "report" };
  }
  if (hash === "#/password") {
    return { name: "password" };
  }
  return { name: "list" };
}

// The header links of the pages this role may open (auditors have no incident pages).
function updateNav(route) {
  const nav = document.getElementById("topnav");
  const me = session.me;
  const links = [];
  if (me && me.role !== "auditor") {
    links.push(["#/incidents", "nav.incidents", route.name === "list" || route.name === "detail"],
      ["#/report", "nav.report", route.name === "report"]);
  }
  if (me) {
    Object.entries(ADMIN_PAGES).forEach(([name, page]) => {
      if (page.allowed(me) && !(name === "knowledge" && me.role === "technician")) {
        links.push([page.hash, page.nav, route.name === "admin" && route.page === name]);
      }
    });
  }
  nav.replaceChildren(...links.map(([href, key, active]) => el("a", { href, class: active ? "active" : null,
    "aria-current": active ? "page" : null, "data-nav": href }, t(key))));
}

function updateLiveIndicator(state) {
  const indicator = document.getElementById("live-state");
  indicator.hidden = state === "off";
  indicator.dataset.state = state;
  indicator.textContent = state === "live" ? t("live.on") : t("live.connecting");
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
  updateNav(parseRoute(window.location.hash));
  updateLiveIndicator(liveState());
  document.getElementById("connection-text").textContent = t("error.network");
  document.getElementById("connection-retry").textContent = t("error.retry");
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
  } else if (route.name === "admin") {
    const page = ADMIN_PAGES[route.page];
    if (page.allowed(session.me)) {
      cleanup = page.render(view, { me: session.me, areas: session.areas });
    } else {
      renderDenied(view, { title: t(page.nav), allowedKey: page.allowedKey, me: session.me });
    }
  } else if (session.me.role === "auditor") {
    view.append(el("section", { class: "card auditor-page" },
      el("h1", {}, t("auditor.title")),
      el("p", {}, t("auditor.intro")),
      el("p", {}, el("a", { href: "#/dashboard" }, t("nav.dashboard")), " · ",
        el("a", { href: "#/admin/audit" }, t("nav.audit")), " · ", el("a", { href: "/docs" }, t("auditor.docs")))));
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
  onLiveStateChange(updateLiveIndicator);
  // A request that cannot reach the server shows the banner; the next one that does hides it.
  onConnectivityChange((online) => {
    document.getElementById("connection-banner").hidden = online;
  });
  document.getElementById("connection-retry").addEventListener("click", async () => {
    document.getElementById("connection-banner").hidden = true;
    if (session.me === null && isLoggedIn()) {
      window.location.reload();
      return;
    }
    renderCurrentRoute();
  });
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
