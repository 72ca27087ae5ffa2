// UI texts in Spanish and English, the chosen language and its formatting of dates.

const TEXTS = {
  en: {
    "nav.incidents": "Incidents",
    "nav.report": "Report incident",
    "nav.logout": "Log out",
    "language.switch": "Español",
    "login.title": "Log in",
    "login.intro": "Use your company account (Active Directory) or a local account.",
    "login.username": "User name",
    "login.password": "Password",
    "login.submit": "Log in",
    "login.expired": "Your session has ended. Please log in again.",
    "list.title": "Incidents",
    "list.status": "Status",
    "list.area": "Area",
    "list.priority": "Priority",
    "list.text": "Search text",
    "list.any": "Any",
    "list.search": "Search",
    "list.loadMore": "Load more",
    "list.empty": "No incidents match these filters.",
    "list.loading": "Loading…",
    "column.id": "#",
    "column.title": "Title",
    "column.area": "Area",
    "column.priority": "Priority",
    "column.status": "Status",
    "column.assignee": "Assignee",
    "column.created": "Created",
    "report.title": "Report an incident",
    "report.intro": "Describe what happens, where and any alarm code. Similar past incidents appear as soon as you send it.",
    "report.fieldTitle": "Title",
    "report.fieldDescription": "Description",
    "report.fieldArea": "Area",
    "report.fieldPriority": "Priority",
    "report.submit": "Report incident",
    "report.created": "Incident #{id} reported.",
    "report.open": "Open incident #{id}",
    "report.another": "Report another",
    "report.similarTitle": "Similar past incidents",
    "report.noSimilar": "No similar resolved incidents were found.",
    "similar.score": "{score}% similar",
    "similar.resolution": "Solution:",
    "detail.back": "← All incidents",
    "detail.reporter": "Reported by",
    "detail.assignee": "Assignee",
    "detail.unassigned": "Unassigned",
    "detail.created": "Created",
    "detail.updated": "Updated",
    "detail.description": "Description",
    "detail.resolution": "Solution",
    "detail.actions": "Actions",
    "detail.assignToMe": "Assign to me",
    "detail.similarTitle": "Similar past incidents",
    "detail.comments": "Comments",
    "detail.noComments": "No comments yet.",
    "detail.commentPlaceholder": "Write a comment…",
    "detail.addComment": "Add comment",
    "detail.solution": "Solution (what fixed it)",
    "detail.resolve": "Resolve",
    "detail.reason": "Reason for reopening",
    "detail.reopen": "Reopen",
    "detail.tags": "Tags",
    "action.in_progress": "Start work",
    "action.waiting": "Set waiting",
    "action.open": "Back to open",
    "action.closed": "Close",
    "status.open": "Open",
    "status.in_progress": "In progress",
    "status.waiting": "Waiting",
    "status.resolved": "Resolved",
    "status.closed": "Closed",
    "priority.low": "Low",
    "priority.medium": "Medium",
    "priority.high": "High",
    "priority.critical": "Critical",
    "suggestion.title": "Suggested solution",
    "suggestion.pending": "Waiting for the local model…",
    "suggestion.generating": "Writing the suggestion…",
    "suggestion.ready": "Ready",
    "suggestion.failed": "The suggestion could not be generated yet; it will be retried.",
    "suggestion.none": "There is no suggestion for this incident.",
    "suggestion.timeout": "The stream was closed.",
    "suggestion.reconnect": "Reconnect",
    "suggestion.citations": "Based on these incidents:",
    "suggestion.accept": "Accept",
    "suggestion.reject": "Reject",
    "suggestion.accepted": "You accepted this suggestion.",
    "suggestion.rejected": "You rejected this suggestion.",
    "suggestion.rate": "Rate it:",
    "suggestion.star": "{n} of 5 stars",
    "suggestion.connectionLost": "The connection was lost.",
    "error.network": "The server cannot be reached. Check the network and try again.",
    "error.generic": "Something went wrong.",
    "error.notFound": "This incident does not exist.",
    "error.retry": "Try again",
  },
  es: {
    "nav.incidents": "Incidencias",
    "nav.report": "Reportar incidencia",
    "nav.logout": "Cerrar sesión",
    "language.switch": "English",
    "login.title": "Iniciar sesión",
    "login.intro": "Usa tu cuenta de empresa (Active Directory) o una cuenta local.",
    "login.username": "Usuario",
    "login.password": "Contraseña",
    "login.submit": "Entrar",
    "login.expired": "Tu sesión ha terminado. Vuelve a iniciar sesión.",
    "list.title": "Incidencias",
    "list.status": "Estado",
    "list.area": "Área",
    "list.priority": "Prioridad",
    "list.text": "Buscar texto",
    "list.any": "Cualquiera",
    "list.search": "Buscar",
    "list.loadMore": "Cargar más",
    "list.empty": "Ninguna incidencia cumple estos filtros.",
    "list.loading": "Cargando…",
    "column.id": "#",
    "column.title": "Título",
    "column.area": "Área",
    "column.priority": "Prioridad",
    "column.status": "Estado",
    "column.assignee": "Asignada a",
    "column.created": "Creada",
    "report.title": "Reportar una incidencia",
    "report.intro": "Describe qué pasa, dónde y cualquier código de alarma. Las incidencias pasadas parecidas aparecen en cuanto la envías.",
    "report.fieldTitle": "Título",
    "report.fieldDescription": "Descripción",
    "report.fieldArea": "Área",
    "report.fieldPriority": "Prioridad",
    "report.submit": "Reportar incidencia",
    "report.created": "Incidencia #{id} reportada.",
    "report.open": "Abrir la incidencia #{id}",
    "report.another": "Reportar otra",
    "report.similarTitle": "Incidencias pasadas parecidas",
    "report.noSimilar": "No se encontraron incidencias resueltas parecidas.",
    "similar.score": "{score}% parecida",
    "similar.resolution": "Solución:",
    "detail.back": "← Todas las incidencias",
    "detail.reporter": "Reportada por",
    "detail.assignee": "Asignada a",
    "detail.unassigned": "Sin asignar",
    "detail.created": "Creada",
    "detail.updated": "Actualizada",
    "detail.description": "Descripción",
    "detail.resolution": "Solución",
    "detail.actions": "Acciones",
    "detail.assignToMe": "Asignármela",
    "detail.similarTitle": "Incidencias pasadas parecidas",
    "detail.comments": "Comentarios",
    "detail.noComments": "Todavía no hay comentarios.",
    "detail.commentPlaceholder": "Escribe un comentario…",
    "detail.addComment": "Añadir comentario",
    "detail.solution": "Solución (qué lo arregló)",
    "detail.resolve": "Resolver",
    "detail.reason": "Motivo de la reapertura",
    "detail.reopen": "Reabrir",
    "detail.tags": "Etiquetas",
    "action.in_progress": "Empezar a trabajar",
    "action.waiting": "Poner en espera",
    "action.open": "Volver a abierta",
    "action.closed": "Cerrar",
    "status.open": "Abierta",
    "status.in_progress": "En curso",
    "status.waiting": "En espera",
    "status.resolved": "Resuelta",
    "status.closed": "Cerrada",
    "priority.low": "Baja",
    "priority.medium": "Media",
    "priority.high": "Alta",
    "priority.critical": "Crítica",
    "suggestion.title": "Solución sugerida",
    "suggestion.pending": "Esperando al modelo local…",
    "suggestion.generating": "Escribiendo la sugerencia…",
    "suggestion.ready": "Lista",
    "suggestion.failed": "Todavía no se pudo generar la sugerencia; se volverá a intentar.",
    "suggestion.none": "Esta incidencia no tiene sugerencia.",
    "suggestion.timeout": "Se cerró la conexión en directo.",
    "suggestion.reconnect": "Reconectar",
    "suggestion.citations": "Basada en estas incidencias:",
    "suggestion.accept": "Aceptar",
    "suggestion.reject": "Rechazar",
    "suggestion.accepted": "Aceptaste esta sugerencia.",
    "suggestion.rejected": "Rechazaste esta sugerencia.",
    "suggestion.rate": "Valórala:",
    "suggestion.star": "{n} de 5 estrellas",
    "suggestion.connectionLost": "Se perdió la conexión.",
    "error.network": "No se puede contactar con el servidor. Revisa la red y vuelve a intentarlo.",
    "error.generic": "Algo salió mal.",
    "error.notFound": "Esta incidencia no existe.",
    "error.retry": "Reintentar",
  },
};

const LANGUAGE_KEY = "prs.language";
const listeners = [];

function initialLanguage() {
  const saved = window.localStorage.getItem(LANGUAGE_KEY);
  if (saved === "es" || saved === "en") {
    return saved;
  }
  return (navigator.language || "en").toLowerCase().startsWith("es") ? "es" : "en";
}

let currentLanguage = initialLanguage();

export function language() {
  return currentLanguage;
}

export function setLanguage(code) {
  currentLanguage = code === "es" ? "es" : "en";
  window.localStorage.setItem(LANGUAGE_KEY, currentLanguage);
  document.documentElement.lang = currentLanguage;
  listeners.forEach((listener) => listener(currentLanguage));
}

export function onLanguageChange(listener) {
  listeners.push(listener);
}

// The text for `key` in the current language, with {name} placeholders filled from `params`.
export function t(key, params = {}) {
  const text = TEXTS[currentLanguage][key] ?? TEXTS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

export function formatDateTime(isoText) {
  if (!isoText) {
    return "";
  }
  const locale = currentLanguage === "es" ? "es-ES" : "en-GB";
  return new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short" }).format(new Date(isoText));
}

// Fill every element marked with data-i18n in the static page.
export function translateStaticTexts(root = document) {
  root.querySelectorAll("[data-i18n]").forEach((node) => {
    node.textContent = t(node.dataset.i18n);
  });
}
