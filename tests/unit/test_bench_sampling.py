"""How the benchmarks pick their queries and reports: spread over the file, never in the knowledge base."""

from __future__ import annotations

from backend.incidents.schemas import IncidentCreate
from bench.intake import new_incidents, split_reports
from bench.retrieval import _subset, halves


def _jira(n: int, project: str) -> dict:
    return {
        "key": f"{project}-{n}",
        "project": project,
        "created": "2012-01-01T00:00:00.000+0000",
        "priority": "Major",
        "summary": f"Summary {n}",
        "description": f"Description {n}",
        "components": [],
    }


def test_a_query_subset_is_spread_over_the_whole_file():
    queries = [{"id": n} for n in range(100)]
    picked = _subset(queries, 10)
    assert [q["id"] for q in picked] == list(range(0, 100, 10))
    assert _subset(queries, None) == queries and _subset(queries, 500) == queries


def test_halves_score_even_and_odd_queries_apart():
    rankings = [(["a"], {"a"}), (["b"], {"x"}), (["c"], {"c"}), (["d"], {"y"})]
    figures = halves(rankings)
    assert figures["even_half"] == {"recall@10": 1.0, "mrr@10": 1.0, "n": 2}
    assert figures["odd_half"] == {"recall@10": 0.0, "mrr@10": 0.0, "n": 2}


def test_reported_incidents_stay_out_of_the_knowledge_base_and_cover_its_areas():
    records = [_jira(n, "HDFS" if n < 60 else "YARN") for n in range(100)]
    reported, knowledge = split_reports(records, 10, kb_limit=30)
    assert len(knowledge) == 30
    assert not {r["key"] for r in reported} & {r["key"] for r in knowledge}
    assert {r["project"] for r in knowledge} == {"HDFS", "YARN"}
    assert {r["project"] for r in reported} == {"HDFS", "YARN"}


def test_reports_are_valid_incident_bodies():
    body = new_incidents([_jira(7, "HDFS") | {"description": "", "summary": "x" * 300}])[0]
    incident = IncidentCreate(**body)
    assert incident.area == "HDFS" and len(incident.title) == 200 and incident.description == "x" * 300
