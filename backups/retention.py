"""Retention tiers: which tier a scheduled backup belongs to, and which backups pruning may delete."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Sequence

from backend.config import Settings

TIER_RANK = {"hourly": 0, "daily": 1, "weekly": 2, "monthly": 3}


@dataclass(frozen=True)
class RetentionPolicy:
    """How long each tier is kept."""

    hourly_hours: int = 24
    daily_days: int = 30
    weekly_weeks: int = 12
    monthly_months: int = 12

    @classmethod
    def from_settings(cls, settings: Settings) -> "RetentionPolicy":
        """The policy of PRS_BACKUP_KEEP_*."""
        return cls(
            hourly_hours=settings.backup_keep_hourly_hours,
            daily_days=settings.backup_keep_daily_days,
            weekly_weeks=settings.backup_keep_weekly_weeks,
            monthly_months=settings.backup_keep_monthly_months,
        )

    def oldest_kept(self, tier: str, now: datetime) -> datetime:
        """Backups of `tier` created before this moment have expired."""
        if tier == "hourly":
            return now - timedelta(hours=self.hourly_hours)
        if tier == "daily":
            return now - timedelta(days=self.daily_days)
        if tier == "weekly":
            return now - timedelta(weeks=self.weekly_weeks)
        return months_before(now, self.monthly_months)


@dataclass(frozen=True)
class BackupFacts:
    """What pruning needs to know about one backup."""

    backup_id: str
    tier: str
    created_at: datetime
    verified: bool


def months_before(moment: datetime, months: int) -> datetime:
    """The same day and time `months` calendar months earlier (the day clamped to the month's length)."""
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    following = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=moment.tzinfo)
    last_day = (following - timedelta(days=1)).day
    return moment.replace(year=year, month=month, day=min(moment.day, last_day))


def period_starts(now: datetime) -> dict[str, datetime]:
    """Start of the current day, week (Sunday 00:00 UTC) and month: when each tier's backup falls due."""
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return {
        "daily": midnight,
        "weekly": midnight - timedelta(days=(midnight.weekday() + 1) % 7),
        "monthly": midnight.replace(day=1),
    }


def tier_due(now: datetime, backups: Sequence[BackupFacts]) -> str:
    """The tier of the backup to take now: the highest tier with no backup of it (or above) in its period.

    Taken every hour, this gives a monthly backup in the first hour of each month, a weekly one on Sundays and a
    daily one each day, and catches up a period whose first hour was missed (workers down at midnight).
    """
    starts = period_starts(now)
    for tier in ("monthly", "weekly", "daily"):
        covered = any(TIER_RANK[b.tier] >= TIER_RANK[tier] and b.created_at >= starts[tier] for b in backups)
        if not covered:
            return tier
    return "hourly"


def backups_to_delete(backups: Sequence[BackupFacts], now: datetime, policy: RetentionPolicy) -> list[str]:
    """Ids of expired backups; the newest verified backup of each tier is kept whatever its age."""
    keep_verified: dict[str, BackupFacts] = {}
    for backup in backups:
        if backup.verified:
            current = keep_verified.get(backup.tier)
            if current is None or backup.created_at > current.created_at:
                keep_verified[backup.tier] = backup
    doomed = []
    for backup in backups:
        if backup.created_at >= policy.oldest_kept(backup.tier, now):
            continue
        if keep_verified.get(backup.tier) is backup:
            continue
        doomed.append(backup.backup_id)
    return sorted(doomed)
