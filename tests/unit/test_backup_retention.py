"""Retention tiers over a simulated year with an injected clock: what is kept, what is pruned, which tier is due."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from backend.clock import FrozenClock
from backups.retention import BackupFacts, RetentionPolicy, backups_to_delete, months_before, tier_due

POLICY = RetentionPolicy()  # hourly 24 h, daily 30 days, weekly 12 weeks, monthly 12 months


def _simulate_year(*, verified_until: datetime | None = None) -> tuple[FrozenClock, list[BackupFacts], dict]:
    """One backup every hour for a year, each tier as `tier_due` says, pruned after each; daily and larger ones are
    verified until `verified_until` (verification then keeps failing)."""
    clock = FrozenClock(datetime(2025, 1, 1, 0, 5, tzinfo=timezone.utc))
    backups: list[BackupFacts] = []
    taken = {"hourly": 0, "daily": 0, "weekly": 0, "monthly": 0}
    for hour in range(365 * 24):
        now = clock.now()
        tier = tier_due(now, backups)
        taken[tier] += 1
        verified = tier != "hourly" and (verified_until is None or now < verified_until)
        backups.append(BackupFacts(f"b{hour:05d}-{tier}", tier, now, verified))
        doomed = set(backups_to_delete(backups, now, POLICY))
        newest_verified = {}
        for backup in backups:
            if backup.verified:
                newest_verified[backup.tier] = backup
        assert not doomed & {b.backup_id for b in newest_verified.values()}, "a tier's newest verified was pruned"
        backups = [b for b in backups if b.backup_id not in doomed]
        clock.advance(hours=1)
    return clock, backups, taken


def test_a_year_of_hourly_runs_keeps_each_tier_within_its_retention():
    clock, backups, taken = _simulate_year()
    now = clock.now() - timedelta(hours=1)  # the last run and prune
    by_tier = {tier: sorted(b.created_at for b in backups if b.tier == tier) for tier in taken}

    days = [datetime(2025, 1, 1, tzinfo=timezone.utc) + timedelta(days=n) for n in range(365)]
    # A monthly backup also serves as that week's and day's: Sundays on the 1st get no weekly one.
    assert taken["monthly"] == 12
    assert taken["weekly"] == sum(1 for day in days if day.weekday() == 6 and day.day != 1)
    assert taken["daily"] + taken["weekly"] + taken["monthly"] == 365
    assert taken["hourly"] == 365 * 23
    assert 23 <= len(by_tier["hourly"]) <= 24 and min(by_tier["hourly"]) >= now - timedelta(hours=24)
    assert 25 <= len(by_tier["daily"]) <= 30 and min(by_tier["daily"]) >= now - timedelta(days=30)
    assert 11 <= len(by_tier["weekly"]) <= 12 and min(by_tier["weekly"]) >= now - timedelta(weeks=12)
    assert len(by_tier["monthly"]) == 12 and min(by_tier["monthly"]) >= months_before(now, 12)


def test_pruning_never_deletes_a_tiers_last_verified_backup_when_verification_keeps_failing():
    fails_from = datetime(2025, 5, 1, tzinfo=timezone.utc)
    clock, backups, _ = _simulate_year(verified_until=fails_from)

    survivors = {b.tier: b for b in backups if b.verified}
    assert set(survivors) == {"daily", "weekly", "monthly"}
    assert survivors["daily"].created_at < fails_from < clock.now() - timedelta(days=200)
    assert survivors["weekly"].created_at < fails_from


def test_tier_due_gives_monthly_weekly_and_daily_in_the_first_hour_of_their_period_and_catches_up():
    sunday = datetime(2025, 6, 15, 0, 10, tzinfo=timezone.utc)
    assert sunday.weekday() == 6
    earlier = [
        BackupFacts("m", "monthly", datetime(2025, 6, 1, 0, 5, tzinfo=timezone.utc), True),
        BackupFacts("d", "daily", datetime(2025, 6, 14, 0, 5, tzinfo=timezone.utc), True),
    ]
    assert tier_due(sunday, earlier) == "weekly"
    earlier.append(BackupFacts("w", "weekly", sunday, True))
    assert tier_due(sunday + timedelta(hours=1), earlier) == "hourly"
    # Workers were down at midnight on Monday: the first run of the day is still the daily one.
    assert tier_due(datetime(2025, 6, 16, 9, 0, tzinfo=timezone.utc), earlier) == "daily"
    assert tier_due(datetime(2025, 7, 1, 3, 0, tzinfo=timezone.utc), earlier) == "monthly"


def test_months_before_clamps_to_the_end_of_shorter_months():
    assert months_before(datetime(2025, 3, 31, 12, tzinfo=timezone.utc), 1) == datetime(
        2025, 2, 28, 12, tzinfo=timezone.utc
    )
    assert months_before(datetime(2025, 1, 15, tzinfo=timezone.utc), 12) == datetime(2024, 1, 15, tzinfo=timezone.utc)
