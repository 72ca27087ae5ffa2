"""HTTP for the knowledge base: search, and the runbooks/documents that feed it."""

from __future__ import annotations

from pathlib import PurePath

from fastapi import APIRouter, Depends, File, Form, Query, Request, Response, UploadFile, status

from backend.context import Principal
from backend.deps import get_container, require_role
from backend.errors import PayloadTooLarge, ValidationFailed
from backend.knowledge.schemas import ALL_KINDS, DocumentOut, EntryKind, KnowledgeHitOut, KnowledgeSearchOut

router = APIRouter(prefix="/api/v1/knowledge", tags=["knowledge"])

DOCUMENT_EXTENSIONS = (".md", ".txt")
SEARCH_LIMIT_MAX = 50


@router.get(
    "/search",
    response_model=KnowledgeSearchOut,
    summary="Search the knowledge base",
    description=(
        "Hybrid search (embeddings + BM25) over resolved incidents and knowledge-document chunks. "
        "Each result's match is fused into one score in [0, 1]; the order also weighs recency among incidents "
        "and brevity among document chunks, so scores are not always decreasing. "
        "A document appears once, with its best chunk. "
        "With `area`, only that area's incidents and documents (plus documents for every area) are searched. "
        "Any signed-in role."
    ),
)
async def search_knowledge(
    request: Request,
    query: str = Query(..., min_length=1, max_length=5000, description="Free text: a problem, an error code, ..."),
    area: str | None = Query(None, description="Restrict to one area's entries."),
    limit: int = Query(10, ge=1, le=SEARCH_LIMIT_MAX, description=f"At most {SEARCH_LIMIT_MAX}."),
    kind: list[EntryKind] | None = Query(None, description="Entry kinds to search (repeatable); default both."),
    min_score: float = Query(0.0, ge=0.0, le=1.0, description="Drop results scoring under this."),
    principal: Principal = Depends(require_role("reporter")),
) -> KnowledgeSearchOut:
    hits = await get_container(request).knowledge.search(
        query=query, area=area, limit=limit, kinds=tuple(kind or ALL_KINDS), min_score=min_score
    )
    # An API key limited to areas sees nothing of the others (documents for every area have no area).
    hits = [hit for hit in hits if hit.area is None or principal.may_see_area(hit.area)]
    return KnowledgeSearchOut(query=query, area=area, results=[KnowledgeHitOut.model_validate(hit) for hit in hits])


async def _read_document_text(file: UploadFile, max_bytes: int) -> str:
    """The upload's text, checked for type, size and encoding."""
    name = file.filename or ""
    if PurePath(name).suffix.lower() not in DOCUMENT_EXTENSIONS:
        raise ValidationFailed(f"file must be one of {', '.join(DOCUMENT_EXTENSIONS)}; got '{name}'", field="file")
    content = await file.read(max_bytes + 1)
    if len(content) > max_bytes:
        raise PayloadTooLarge(f"file is larger than the limit of {max_bytes} bytes", field="file")
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationFailed(f"file is not UTF-8 text (invalid byte at offset {exc.start})", field="file") from exc
    if not text.strip():
        raise ValidationFailed("file is empty", field="file")
    return text.removeprefix("\ufeff")


@router.post(
    "/documents",
    response_model=DocumentOut,
    status_code=status.HTTP_201_CREATED,
    summary="Upload a knowledge document",
    description=(
        "Multipart upload of a runbook or knowledge document (`.md` or `.txt`, UTF-8, at most "
        "`document_max_bytes`). It is split into overlapping chunks along its headings and paragraphs and "
        "indexed for search and for grounding suggestions. `title` defaults to the file name; without "
        "`area` the document applies to every area. Technicians and above."
    ),
)
async def upload_document(
    request: Request,
    file: UploadFile = File(..., description="The .md or .txt file."),
    title: str | None = Form(None, max_length=200, description="Display title; default: the file name."),
    area: str | None = Form(None, description="Area code the document belongs to."),
    _: Principal = Depends(require_role("technician")),
) -> DocumentOut:
    services = get_container(request)
    text = await _read_document_text(file, services.settings.document_max_bytes)
    filename = PurePath(file.filename or "").name
    document = await services.knowledge.ingest_document(
        title=(title or "").strip() or PurePath(filename).stem, filename=filename, text=text, area=area or None
    )
    return DocumentOut.model_validate(document)


@router.get(
    "/documents",
    response_model=list[DocumentOut],
    summary="List knowledge documents",
    description="Every uploaded document, newest first, without its text. Any signed-in role.",
)
async def list_documents(request: Request, _: Principal = Depends(require_role("reporter"))) -> list[DocumentOut]:
    documents = await get_container(request).knowledge.list_documents()
    return [DocumentOut.model_validate(document) for document in documents]


@router.delete(
    "/documents/{document_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete a knowledge document",
    description="Removes the document and its chunks from search and from the vector index. Supervisors and above.",
)
async def delete_document(
    request: Request, document_id: int, _: Principal = Depends(require_role("supervisor"))
) -> Response:
    await get_container(request).knowledge.delete_document(document_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
