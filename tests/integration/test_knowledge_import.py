"""Importing past resolved incidents from JSONL: closed incidents, indexed, idempotent."""

from __future__ import annotations

import gzip
import json

import pytest

from backend.errors import ValidationFailed

PRS_RECORDS = [
    {
        "key": "OLD-1",
        "title": "Robot cell door interlock fault",
        "description": "Cell 4 stops with door open alarm.",
        "area": "production",
        "priority": "high",
        "category": "safety",
        "tags": ["robot", "interlock"],
        "resolution": "Realigned the door switch actuator.",
        "created_at": "2024-05-02T10:00:00Z",
    },
    {
        "key": "OLD-2",
        "title": "Cooling tower fan vibration",
        "description": "Vibration alarm on fan 2 at night.",
        "area": "facilities",
        "priority": "medium",
        "resolution": "Balanced the fan blades.",
        "created_at": "2024-06-11T22:30:00+02:00",
    },
]
JIRA_RECORD = {
    "key": "HDFS-42",
    "project": "HDFS",
    "created": "2010-01-05T10:00:00.000+0000",
    "resolved": "2010-02-01T09:00:00.000+0000",
    "priority": "Blocker",
    "resolution": "Fixed",
    "components": ["namenode", "datanode"],
    "summary": "NameNode hangs in DFSClient.getFileInfo",
    "description": "Calls to getFileInfo block forever after failover.",
    "environment": "Linux, JDK 6",
    "resolution_text": "Patch adds a timeout to the RPC call.",
}


def write_jsonl(path, records, *, compress=False):
    opener = gzip.open if compress else open
    with opener(path, "wt", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record) + "\n")
    return path


async def test_imported_incidents_are_closed_indexed_and_found(knowledge, tmp_path):
    report = await knowledge.service.ingest_incidents_jsonl(write_jsonl(tmp_path / "old.jsonl", PRS_RECORDS))
    assert report["inserted"] == 2 and report["vectors_synced"] == 2
    async with knowledge.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM incidents WHERE external_ref = 'OLD-1'")
    assert (row["status"], row["source"], row["priority"], row["tags"]) == (
        "closed",
        "import",
        "high",
        ["robot", "interlock"],
    )
    similar = await knowledge.service.similar_incidents(text="robot door switch alarm", area="production", limit=1)
    assert similar[0].incident_id == row["id"]
    assert similar[0].resolution == "Realigned the door switch actuator."


async def test_importing_the_same_file_twice_adds_nothing(knowledge, tmp_path):
    path = write_jsonl(tmp_path / "old.jsonl", PRS_RECORDS)
    await knowledge.service.ingest_incidents_jsonl(path)
    again = await knowledge.service.ingest_incidents_jsonl(path)
    assert (again["inserted"], again["already_imported"]) == (0, 2)
    assert await knowledge.fetchval("SELECT count(*) FROM knowledge_entries") == 2


async def test_unknown_areas_are_created_or_refused(knowledge, tmp_path):
    path = write_jsonl(tmp_path / "jira.jsonl.gz", [JIRA_RECORD], compress=True)
    with pytest.raises(ValidationFailed) as error:
        await knowledge.service.ingest_incidents_jsonl(path, mapping="jira", create_areas=False)
    assert error.value.field == "area" and "HDFS" in error.value.detail
    assert await knowledge.fetchval("SELECT count(*) FROM incidents") == 0

    report = await knowledge.service.ingest_incidents_jsonl(path, mapping="jira", create_areas=True)
    assert report["inserted"] == 1
    assert await knowledge.fetchval("SELECT name FROM areas WHERE code = 'HDFS'") == "HDFS"


async def test_the_jira_mapping_keeps_environment_components_and_priority(knowledge, tmp_path):
    path = write_jsonl(tmp_path / "jira.jsonl", [JIRA_RECORD])
    await knowledge.service.ingest_incidents_jsonl(path, mapping="jira")
    async with knowledge.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM incidents WHERE external_ref = 'HDFS-42'")
    assert row["description"].endswith("Linux, JDK 6")
    assert (row["category"], row["priority"], row["area"]) == ("namenode, datanode", "critical", "HDFS")
    similar = await knowledge.service.similar_incidents(text="getFileInfo", area="HDFS", limit=1)
    assert similar[0].incident_id == row["id"]


@pytest.mark.parametrize(
    "line, field",
    [
        ("not json", "file"),
        (json.dumps({**PRS_RECORDS[0], "title": ""}), "title"),
        (json.dumps({**PRS_RECORDS[0], "priority": "urgent"}), "priority"),
        (json.dumps({**PRS_RECORDS[0], "created_at": "yesterday"}), "created_at"),
        (json.dumps({**PRS_RECORDS[0], "area": "bad area!"}), "area"),
    ],
)
async def test_a_bad_line_stops_the_import_before_anything_is_written(knowledge, tmp_path, line, field):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(PRS_RECORDS[1]) + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(ValidationFailed) as error:
        await knowledge.service.ingest_incidents_jsonl(path)
    assert error.value.field == field and "line 2" in error.value.detail
    assert await knowledge.fetchval("SELECT count(*) FROM incidents") == 0


async def test_an_import_of_many_pages_syncs_every_vector_while_it_stages(knowledge, tmp_path, monkeypatch):
    import backend.knowledge.service as knowledge_service

    monkeypatch.setattr(knowledge_service, "IMPORT_BATCH", 3)  # four staging transactions
    monkeypatch.setattr(knowledge_service, "SYNC_BATCH", 4)  # three encode pages, overlapping them
    records = [
        {
            "key": f"BULK-{n}",
            "title": f"Valve {n} leaks at flange {n}",
            "description": f"Leak on valve {n}.",
            "area": "maintenance",
            "resolution": f"Replaced gasket {n}.",
            "created_at": "2024-05-02T10:00:00Z",
        }
        for n in range(10)
    ]
    report = await knowledge.service.ingest_incidents_jsonl(write_jsonl(tmp_path / "bulk.jsonl", records))
    assert report["inserted"] == 10 and report["vectors_synced"] == 10
    assert (await knowledge.service.status())["vectors_pending"] == 0
    assert knowledge.service.vector_store.count() == 10
    again = await knowledge.service.ingest_incidents_jsonl(write_jsonl(tmp_path / "bulk.jsonl", records))
    assert again["inserted"] == 0 and again["already_imported"] == 10
