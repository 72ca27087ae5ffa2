// Knowledge: upload a runbook (.md or .txt), search the knowledge base, delete a document (supervisors and admins).

import { apiRequest } from "./api.js";
import {
  confirmButton, dataTable, dateText, formField, handleSubmit, pageFrame, say, simpleForm, statusLine, textInput,
} from "./admin-kit.js";
import { describeError, el, incidentLink, selectControl } from "./dom.js";
import { t } from "./i18n.js";

const ROLE_RANK = { reporter: 0, technician: 1, supervisor: 2, admin: 3 };

function uploadForm(areas, onUploaded) {
  const file = el("input", { id: "doc-file", name: "file", type: "file", accept: ".md,.txt,text/markdown,text/plain" });
  const title = textInput("doc-title", "title", { maxlength: 200 });
  const area = selectControl("doc-area", "area", [{ value: "", label: t("knowledge.everyArea") },
    ...areas.map((a) => ({ value: a.code, label: a.name }))], "");
  const { form, submit } = simpleForm("upload-form", t("knowledge.upload"),
    formField(t("knowledge.file"), file),
    el("div", { class: "field-row" }, formField(t("knowledge.docTitle"), title), formField(t("list.area"), area)));
  handleSubmit(form, submit, async () => {
    const body = new FormData();
    if (file.files.length) {
      body.append("file", file.files[0]);
    }
    if (title.value.trim()) {
      body.append("title", title.value.trim());
    }
    if (area.value) {
      body.append("area", area.value);
    }
    const document = await apiRequest("/knowledge/documents", { method: "POST", body });
    form.reset();
    onUploaded(document);
  });
  return form;
}

function searchForm(areas) {
  const query = el("input", { id: "kb-query", name: "query", type: "search", maxlength: 5000 });
  const area = selectControl("kb-area", "area", [{ value: "", label: t("list.any") },
    ...areas.map((a) => ({ value: a.code, label: a.name }))], "");
  const results = el("div", { class: "kb-results", "aria-live": "polite" });
  const { form, submit } = simpleForm("kb-search-form filters-inline", t("list.search"),
    formField(t("knowledge.query"), query), formField(t("list.area"), area));
  handleSubmit(form, submit, async () => {
    const found = await apiRequest("/knowledge/search", { query: { query: query.value.trim(), area: area.value,
      limit: 10 } });
    results.replaceChildren(found.results.length === 0 ? el("p", { class: "muted" }, t("knowledge.noResults"))
      : el("ol", { class: "kb-list" }, found.results.map((hit) => el("li", { class: "kb-hit" },
        el("div", { class: "similar-head" },
          hit.incident_id ? incidentLink(hit.incident_id, `#${hit.incident_id} ${hit.title}`)
            : el("strong", {}, hit.document_title || hit.title),
          el("span", { class: "badge" }, t(`knowledge.kind.${hit.kind}`)),
          el("span", { class: "score" }, t("similar.score", { score: Math.round(hit.score * 100) }))),
        el("p", { class: "kb-text" }, hit.text.length > 400 ? `${hit.text.slice(0, 400)}…` : hit.text)))));
  });
  return el("div", {}, form, results);
}

export function renderKnowledgePage(container, { areas, me }) {
  const page = pageFrame(container, { title: t("knowledge.title"), intro: t("knowledge.intro"),
    className: "knowledge-page" });
  const line = statusLine();
  const tableBox = el("div", {}, el("p", { class: "muted" }, t("list.loading")));
  const mayDelete = ROLE_RANK[me.role] >= ROLE_RANK.supervisor;

  async function load() {
    const documents = await apiRequest("/knowledge/documents");
    tableBox.replaceChildren(dataTable([
      { key: "title", label: t("knowledge.docTitle") },
      { key: "filename", label: t("knowledge.file") },
      { key: "area", label: t("list.area"), value: (d) => d.area || t("knowledge.everyArea") },
      { key: "chunk_count", label: t("knowledge.chunks") },
      { key: "size_bytes", label: t("knowledge.size") },
      { key: "created_at", label: t("knowledge.uploaded"), value: (d) => dateText(d.created_at) },
      ...(mayDelete ? [{ key: "actions", label: t("admin.actions"), cell: (d) => confirmButton(t("admin.delete"),
        t("admin.deleteConfirm"), line, async () => {
          await apiRequest(`/knowledge/documents/${d.id}`, { method: "DELETE" });
          say(line, t("knowledge.deleted", { title: d.title }));
          await load();
        }, { ariaLabel: `${t("admin.delete")} ${d.title}` }) }] : []),
    ], documents, { caption: t("knowledge.listTitle"), emptyText: t("knowledge.none"), className: "documents-table" }));
  }

  page.append(
    el("section", { class: "card" }, el("h2", {}, t("knowledge.uploadTitle")), uploadForm(areas, async (doc) => {
      say(line, t("knowledge.uploaded.done", { title: doc.title, chunks: doc.chunk_count }));
      await load();
    })),
    el("section", { class: "card" }, el("h2", {}, t("knowledge.listTitle")), line, tableBox),
    el("section", { class: "card" }, el("h2", {}, t("knowledge.searchTitle")), searchForm(areas)));
  load().catch((error) => say(line, describeError(error), true));
}
