"""Knowledge documents: chunked, found by their best chunk, uploaded with validation, deleted cleanly."""

from __future__ import annotations

import asyncio
from typing import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from backend.context import Principal
from backend.deps import get_principal
from backend.errors import ValidationFailed
from backend.knowledge.router import router
from backend.main import install_error_handlers
from backend.observability.metrics import Metrics

RUNBOOK = """# Compressed air leak detection

Use this runbook when the network pressure falls during the shift and the compressors run at full load.

## Locate the leak

Walk the line with the ultrasonic leak detector. Quick couplings, hoses and manual drains leak most often.
Tag every leak found with its estimated flow in litres per second.

## Repair

Replace cracked hoses and worn quick couplings. Close manual drains left open.
Check the pressure again after the repair: it should stay above 6.8 bar.

## Zebra printers

Unrelated section: recalibrate the media sensor of a Zebra ZT410 by holding PAUSE and CANCEL for two seconds.
"""


async def test_a_document_is_chunked_and_its_best_chunk_is_found(knowledge):
    document = await knowledge.service.ingest_document(title="Air leaks", filename="air.md", text=RUNBOOK)
    assert document["chunk_count"] >= 3
    hits = await knowledge.service.search(
        query="how to calibrate the Zebra media sensor", area=None, limit=5, kinds=("document",)
    )
    assert len(hits) == 1  # one document, however many chunks matched
    assert hits[0].document_id == document["id"] and hits[0].document_title == "Air leaks"
    assert "PAUSE and CANCEL" in hits[0].text
    assert hits[0].heading.endswith("Zebra printers")


async def test_documents_ground_suggestions_beside_incidents(knowledge):
    await knowledge.service.ingest_document(title="Air leaks", filename="air.md", text=RUNBOOK)
    incident_id = await knowledge.add_resolved_incident(
        area="maintenance",
        title="Pressure drop at the presses",
        description="Air pressure falls to 5.2 bar.",
        resolution="Found and replaced a leaking quick coupling with the ultrasonic detector.",
    )
    cases = await knowledge.service.retrieve_cases(
        text="air pressure falling, compressors at full load, leak?", area="maintenance", limit=4
    )
    assert {case.incident_id for case in cases if case.incident_id} == {incident_id}
    documents = [case for case in cases if case.incident_id is None]
    assert documents and documents[0].document_title == "Air leaks"
    assert documents[0].citation == "doc:Air leaks"


async def test_a_document_of_one_area_is_not_found_from_another(knowledge):
    await knowledge.service.ingest_document(title="Air leaks", filename="air.md", text=RUNBOOK, area="maintenance")
    assert await knowledge.service.search(query="ultrasonic leak detector", area="it", limit=5) == []
    found = await knowledge.service.search(query="ultrasonic leak detector", area="maintenance", limit=5)
    assert found and found[0].area == "maintenance"


async def test_a_document_without_area_is_found_from_every_area(knowledge):
    await knowledge.service.ingest_document(title="Air leaks", filename="air.md", text=RUNBOOK)
    for area in ("it", "production", None):
        found = await knowledge.service.search(query="ultrasonic leak detector", area=area, limit=5)
        assert found and found[0].kind == "document"


async def test_a_deleted_document_leaves_search_and_the_vector_store(knowledge):
    document = await knowledge.service.ingest_document(title="Air leaks", filename="air.md", text=RUNBOOK)
    await knowledge.service.delete_document(document["id"])
    assert await knowledge.service.search(query="ultrasonic leak detector", area=None, limit=5) == []
    assert await asyncio.to_thread(knowledge.service.vector_store.count) == 0
    assert await knowledge.service.list_documents() == []


async def test_an_unknown_area_is_refused_and_nothing_is_written(knowledge):
    with pytest.raises(ValidationFailed) as error:
        await knowledge.service.ingest_document(title="Air", filename="air.md", text=RUNBOOK, area="nowhere")
    assert error.value.field == "area"
    assert await knowledge.fetchval("SELECT count(*) FROM knowledge_documents") == 0
    assert await knowledge.fetchval("SELECT count(*) FROM knowledge_entries") == 0


# --- the HTTP endpoints --------------------------------------------------------------------------


class ServicesStub:
    """The part of the service container the knowledge router and the error handlers use."""

    def __init__(self, knowledge):
        self.knowledge = knowledge.service
        self.settings = knowledge.settings
        self.metrics = Metrics()  # refusals are counted by the error handler


def app_for(knowledge, role: str) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router)
    app.state.container = ServicesStub(knowledge)
    app.dependency_overrides[get_principal] = lambda: Principal(kind="user", id=1, name="tester", role=role)
    return app


@pytest_asyncio.fixture
async def client(knowledge) -> AsyncIterator[httpx.AsyncClient]:
    knowledge.settings.document_max_bytes = 4000
    transport = httpx.ASGITransport(app=app_for(knowledge, "supervisor"))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def test_upload_list_search_and_delete_over_http(client):
    created = await client.post(
        "/api/v1/knowledge/documents", files={"file": ("air-leaks.md", RUNBOOK.encode())}, data={"area": "maintenance"}
    )
    assert created.status_code == 201, created.text
    document = created.json()
    assert document["title"] == "air-leaks" and document["area"] == "maintenance" and document["chunk_count"] >= 3

    listed = await client.get("/api/v1/knowledge/documents")
    assert [d["id"] for d in listed.json()] == [document["id"]]

    found = await client.get("/api/v1/knowledge/search", params={"query": "ultrasonic leak", "area": "maintenance"})
    assert found.status_code == 200
    assert found.json()["results"][0]["document_id"] == document["id"]

    assert (await client.delete(f"/api/v1/knowledge/documents/{document['id']}")).status_code == 204
    assert (await client.delete(f"/api/v1/knowledge/documents/{document['id']}")).status_code == 404


@pytest.mark.parametrize(
    "filename, content, status, detail",
    [
        ("notes.pdf", b"%PDF-1.4", 422, ".md, .txt"),
        ("notes.md", "caf\u00e9".encode("latin-1"), 422, "UTF-8"),
        ("notes.md", b"   \n  ", 422, "empty"),
        ("notes.txt", b"word " * 1000, 413, "4000 bytes"),
    ],
)
async def test_bad_uploads_are_refused_naming_the_file_field(client, knowledge, filename, content, status, detail):
    response = await client.post("/api/v1/knowledge/documents", files={"file": (filename, content)})
    assert response.status_code == status
    body = response.json()
    assert body["field"] == "file" and detail in body["detail"]
    assert await knowledge.fetchval("SELECT count(*) FROM knowledge_documents") == 0


async def test_search_limit_above_fifty_is_refused(client):
    response = await client.get("/api/v1/knowledge/search", params={"query": "leak", "limit": 51})
    assert response.status_code == 422


async def test_reporters_may_search_but_not_upload(knowledge):
    transport = httpx.ASGITransport(app=app_for(knowledge, "reporter"))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        assert (await http.get("/api/v1/knowledge/search", params={"query": "leak"})).status_code == 200
        upload = await http.post("/api/v1/knowledge/documents", files={"file": ("a.md", b"# A\n\ntext")})
        assert upload.status_code == 403


async def test_documents_ingested_in_bulk_are_all_indexed_and_found(knowledge):
    texts = [
        f"Pump {n} trips on fault code P-{700 + n} when the inlet valve {n} sticks; free the valve." for n in range(30)
    ]
    stored = await knowledge.service.ingest_documents(
        [{"title": f"Pump {n}", "filename": f"pump{n}.md", "text": text} for n, text in enumerate(texts)]
    )
    assert [document["title"] for document in stored] == [f"Pump {n}" for n in range(30)]
    assert (await knowledge.service.status())["vectors_pending"] == 0
    hits = await knowledge.service.search(query="fault code P-717", area=None, limit=3, kinds=("document",))
    assert hits[0].document_title == "Pump 17"


async def test_a_bad_document_in_a_bulk_ingest_stores_none_of_them(knowledge):
    documents = [
        {"title": "Good", "filename": "good.md", "text": "Restart the conveyor."},
        {"title": "Empty", "filename": "empty.md", "text": "   "},
    ]
    with pytest.raises(ValidationFailed) as raised:
        await knowledge.service.ingest_documents(documents)
    assert raised.value.field == "file"
    assert await knowledge.service.list_documents() == []
