"""Similar-incident retrieval on a real Postgres, a real Chroma folder and the real model."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from backend.errors import ValidationFailed

CONVEYOR = dict(
    title="Conveyor motor on line 3 overheating, alarm E-4021",
    description="The belt stops every 20 minutes with alarm E-4021 (motor over-temperature) on the HMI.",
    resolution="Fan grille blocked by shrink film; cleaned it and lubricated the drive chain.",
)
PRINTER = dict(
    title="Zebra label printer prints labels shifted downwards",
    description="Pallet labels come out 8 mm lower after changing the label roll; scanners cannot read them.",
    resolution="Calibrated the media sensor and reset the label top position.",
)
VPN = dict(
    title="VPN client cannot connect from the office laptop",
    description="The laptop shows certificate expired when opening the VPN tunnel to headquarters.",
    resolution="Renewed the machine certificate from the internal CA.",
)


async def seed(knowledge) -> dict[str, int]:
    return {
        "conveyor": await knowledge.add_resolved_incident(area="production", **CONVEYOR),
        "printer": await knowledge.add_resolved_incident(area="production", **PRINTER),
        "vpn": await knowledge.add_resolved_incident(area="it", **VPN),
        "conveyor_maintenance": await knowledge.add_resolved_incident(area="maintenance", **CONVEYOR),
    }


async def test_a_resolved_incident_is_found_for_a_paraphrased_report(knowledge):
    ids = await seed(knowledge)
    similar = await knowledge.service.similar_incidents(
        text="Line 3 belt keeps stopping, the drive motor gets too hot", area="production", limit=3
    )
    assert similar[0].incident_id == ids["conveyor"]
    assert similar[0].resolution == CONVEYOR["resolution"]
    assert similar[0].area == "production"


async def test_an_error_code_alone_finds_its_incident(knowledge):
    ids = await seed(knowledge)
    similar = await knowledge.service.similar_incidents(text="E-4021", area="production", limit=1)
    assert [s.incident_id for s in similar] == [ids["conveyor"]]


async def test_the_area_filter_keeps_other_areas_out(knowledge):
    ids = await seed(knowledge)
    similar = await knowledge.service.similar_incidents(text=CONVEYOR["title"], area="production", limit=10)
    found = {s.incident_id for s in similar}
    assert ids["conveyor"] in found
    assert ids["conveyor_maintenance"] not in found and ids["vpn"] not in found
    assert {s.area for s in similar} == {"production"}


async def test_without_an_area_every_area_is_searched(knowledge):
    ids = await seed(knowledge)
    similar = await knowledge.service.similar_incidents(text=CONVEYOR["title"], area=None, limit=2)
    assert {s.incident_id for s in similar} == {ids["conveyor"], ids["conveyor_maintenance"]}


async def test_scores_are_in_the_unit_interval_and_the_best_match_comes_first(knowledge):
    ids = await seed(knowledge)
    similar = await knowledge.service.similar_incidents(text="printer labels shifted", area=None, limit=10)
    scores = [s.score for s in similar]
    assert len(scores) == 4
    assert similar[0].incident_id == ids["printer"] and scores[0] == max(scores)
    assert all(0.0 <= s <= 1.0 for s in scores)


async def test_of_two_reports_of_the_same_fault_the_one_closer_in_time_ranks_first(knowledge):
    first = await knowledge.add_resolved_incident(area="production", **CONVEYOR)
    knowledge.clock.advance(days=400)
    second = await knowledge.add_resolved_incident(area="production", **CONVEYOR)
    await knowledge.add_resolved_incident(area="production", **PRINTER)
    text = CONVEYOR["title"]

    recent = await knowledge.service.similar_incidents(text=text, area="production", limit=3)
    assert [s.incident_id for s in recent][:2] == [second, first]
    assert recent[0].score == recent[1].score  # the match shown is the text's; the date only orders
    back_then = await knowledge.service.similar_incidents(
        text=text, area="production", limit=3, reported_at=knowledge.clock.now() - timedelta(days=395)
    )
    assert [s.incident_id for s in back_then][:2] == [first, second]


async def test_the_minimum_score_cuts_unrelated_incidents(knowledge):
    ids = await seed(knowledge)
    text = "Zebra printer labels shifted after a roll change"
    everything = await knowledge.service.similar_incidents(text=text, area=None, limit=10)
    threshold = (everything[0].score + everything[1].score) / 2
    knowledge.service.settings.similar_min_score = threshold
    cut = await knowledge.service.similar_incidents(text=text, area=None, limit=10)
    assert [s.incident_id for s in cut] == [ids["printer"]]
    assert all(s.score >= threshold for s in cut)


async def test_the_incident_itself_can_be_excluded(knowledge):
    ids = await seed(knowledge)
    similar = await knowledge.service.similar_incidents(
        text=CONVEYOR["title"], area=None, limit=1, exclude_incident_id=ids["conveyor"]
    )
    assert [s.incident_id for s in similar] == [ids["conveyor_maintenance"]]


async def test_a_reopened_incident_leaves_the_knowledge_base(knowledge):
    ids = await seed(knowledge)
    await knowledge.reopen(ids["printer"])
    similar = await knowledge.service.similar_incidents(text=PRINTER["title"], area="production", limit=10)
    assert ids["printer"] not in {s.incident_id for s in similar}
    assert await asyncio.to_thread(knowledge.service.vector_store.count) == 3
    assert await knowledge.fetchval("SELECT count(*) FROM knowledge_vector_tombstones") == 0


async def test_a_reopened_then_resolved_again_incident_is_found_again(knowledge):
    ids = await seed(knowledge)
    await knowledge.reopen(ids["printer"])
    async with knowledge.pool.acquire() as conn:
        async with conn.transaction():
            await knowledge.service.stage_incident(
                conn,
                incident_id=ids["printer"],
                title=PRINTER["title"],
                description=PRINTER["description"],
                area="production",
                category=None,
                resolution="Replaced the print head.",
                created_at=knowledge.clock.now(),
            )
    await knowledge.service.sync_pending_vectors()
    similar = await knowledge.service.similar_incidents(text=PRINTER["title"], area="production", limit=1)
    assert similar[0].incident_id == ids["printer"]
    assert similar[0].resolution == "Replaced the print head."
    assert await asyncio.to_thread(knowledge.service.vector_store.count) == 4


async def test_an_empty_knowledge_base_answers_nothing(knowledge):
    assert await knowledge.service.similar_incidents(text="anything at all", area="production", limit=5) == []


async def test_search_refuses_unknown_kinds(knowledge):
    with pytest.raises(ValidationFailed) as error:
        await knowledge.service.search(query="x", area=None, limit=5, kinds=("tickets",))
    assert error.value.field == "kinds"


async def test_when_lengths_and_dates_cannot_be_read_results_are_ranked_on_their_match(knowledge, caplog):
    ids = await seed(knowledge)

    class BrokenCatalog:
        async def facts(self, entry_ids):
            raise ConnectionError("knowledge_entries unreachable")

    knowledge.service.retriever.catalog = BrokenCatalog()
    similar = await knowledge.service.similar_incidents(
        text="Line 3 belt keeps stopping, the drive motor gets too hot", area="production", limit=3
    )
    assert similar[0].incident_id == ids["conveyor"]
    assert "ranking without priors" in caplog.text
