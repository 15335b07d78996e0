"""Table health from the statistics the sync already reads: scans, live and dead tuples, and
when the table was last vacuumed and analyzed.

Everything comes from the row `queries.RELATION_STATISTICS` returns per relation (from
`pg_stat_user_tables`, a partitioned table summing its leaf partitions): no statement of its
own. The counters are cumulative since the statistics were last reset.

The sync's own `count(*)` is a scan too (one per leaf partition): left uncounted, every table
the sync measured would look read. `sync_scans` keeps how many the sync made since the
statistics were reset, and `scans_by_others` leaves them out, so `unused` means "nobody but the
sync read it". A parallel count may scan more than once; that errs towards "used", never towards
"unused". The profile job's reads are not subtracted.

A sync reports health on every event it emits anyway, and emits an observation of its own
(`data_changed: false`) when maintenance happened (a vacuum or analyze time moved) or a table
became used or unused: scan counters move with every read, an event for each would fill the
event log.

(No `from __future__ import annotations` here: `@record` needs real annotations.)
"""

from typing import Any

from dagster import MetadataValue
from dagster_shared.record import record
from dagster_shared.serdes import whitelist_for_serdes

from dagster_postgres_connection.catalog._records import compile_record_constructors

_NAMESPACE = "dagster-postgres-connection"


@whitelist_for_serdes
@record
class PostgresTableHealth:
    """A table's (or its partitions') access and maintenance statistics at one sync."""

    sequential_scans: int | None = None
    index_scans: int | None = None  # None: the table has no index
    live_tuples: int | None = None
    dead_tuples: int | None = None
    # Unix timestamps; for a partitioned table, the latest of its partitions'.
    last_vacuum: float | None = None
    last_autovacuum: float | None = None
    last_analyze: float | None = None
    last_autoanalyze: float | None = None
    scans_by_others: int | None = None  # sequential + index scans, the sync's own counts left out
    sync_scans: int = 0  # the sync's own count(*) scans since the reset, this sync's included

    @property
    def dead_tuple_ratio(self) -> float | None:
        """Dead tuples over live + dead: what VACUUM would reclaim."""
        if self.live_tuples is None or self.dead_tuples is None or self.live_tuples + self.dead_tuples == 0:
            return None
        return round(self.dead_tuples / (self.live_tuples + self.dead_tuples), 4)

    @property
    def unused(self) -> bool | None:
        """No sequential or index scan since the statistics were reset, but the sync's own."""
        return None if self.scans_by_others is None else self.scans_by_others == 0

    @property
    def never_index_scanned(self) -> bool | None:
        """Read, but never through one of its indexes (None: no index, or never read)."""
        if self.index_scans is None or not self.scans_by_others:
            return None
        return self.index_scans == 0

    def signature(self) -> tuple[object, ...]:
        """What makes a sync report the table even when its data did not change."""
        return (
            self.last_vacuum, self.last_autovacuum, self.last_analyze, self.last_autoanalyze,
            self.unused, self.never_index_scanned,
        )


def table_health(
    row: Any,
    before: "PostgresTableHealth | None",
    *,
    same_statistics: bool,
    counted: bool,
) -> PostgresTableHealth:
    """The health in a `RELATION_STATISTICS` row.

    Args:
        before: The previous sync's health of the relation, if any.
        same_statistics: The previous sync saw the same relation (oid) and statistics reset time,
            so its count of the sync's own scans still applies.
        counted: This sync counts the relation's rows (`count(*)`) after reading the row.
    """
    scans = None if row.sequential_scans is None else row.sequential_scans + (row.index_scans or 0)
    previous_sync_scans = before.sync_scans if before is not None and same_statistics else 0
    if (
        before is not None
        and scans is not None
        and before.sequential_scans is not None
        and scans < before.sequential_scans + (before.index_scans or 0)
    ):
        previous_sync_scans = 0  # this table's counters alone were reset
    return PostgresTableHealth(
        sequential_scans=row.sequential_scans,
        index_scans=row.index_scans,
        live_tuples=row.live_tuples,
        dead_tuples=row.dead_tuples,
        last_vacuum=_timestamp(row.last_vacuum),
        last_autovacuum=_timestamp(row.last_autovacuum),
        last_analyze=_timestamp(row.last_analyze),
        last_autoanalyze=_timestamp(row.last_autoanalyze),
        # The scans this sync's count makes are not in the row yet: only earlier ones are left out.
        scans_by_others=None if scans is None else max(0, scans - previous_sync_scans),
        sync_scans=previous_sync_scans + (row.leaf_count if counted else 0),
    )


def health_moved(before: "PostgresTableHealth | None", after: "PostgresTableHealth | None") -> bool:
    """Maintenance happened, or the table became used or unused, since the previous sync (no
    previous health, as in statistics kept by an earlier version: no baseline, no report)."""
    return before is not None and after is not None and before.signature() != after.signature()


def health_metadata(health: "PostgresTableHealth | None") -> dict[str, MetadataValue]:
    """The health as metadata of the sync's event (keys left out when unknown)."""
    if health is None:
        return {}
    values: dict[str, MetadataValue | None] = {
        "sequential_scans": _int(health.sequential_scans),
        "index_scans": _int(health.index_scans),
        "unused": _bool(health.unused),
        "never_index_scanned": _bool(health.never_index_scanned),
        "live_tuples": _int(health.live_tuples),
        "dead_tuples": _int(health.dead_tuples),
        "dead_tuple_ratio": None if health.dead_tuple_ratio is None else MetadataValue.float(health.dead_tuple_ratio),
        "last_vacuum": _time(health.last_vacuum),
        "last_autovacuum": _time(health.last_autovacuum),
        "last_analyze": _time(health.last_analyze),
        "last_autoanalyze": _time(health.last_autoanalyze),
    }
    return {f"{_NAMESPACE}/{name}": value for name, value in values.items() if value is not None}


def _int(value: int | None) -> MetadataValue | None:
    return None if value is None else MetadataValue.int(value)


def _bool(value: bool | None) -> MetadataValue | None:
    return None if value is None else MetadataValue.bool(value)


def _time(value: float | None) -> MetadataValue | None:
    return None if value is None else MetadataValue.timestamp(value)


def _timestamp(value: Any) -> float | None:
    return value.timestamp() if value is not None else None


compile_record_constructors(globals())  # see catalog/_records.py
