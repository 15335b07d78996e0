"""What one sync remembers for the next: per-relation statistics, in a file beside the snapshot.

Why a file of our own and not the snapshot or the event log: the snapshot is rewritten by
`dg utils refresh-defs-state`, which knows nothing of statistics, and reading the last
observation of 10,000 assets back from the instance costs one event-log query per asset
(Dagster's SQL storages do not index the last observation). The statistics file is written
atomically after each successful sync, next to the snapshot (`<snapshot>.statistics`), and
only the sync job reads it. A missing or unreadable file only means "no baseline": the next
sync counts again and claims no change.

(No `from __future__ import annotations` here: `@record` needs real annotations.)
"""

from collections.abc import Mapping, Sequence
from pathlib import Path

from dagster import get_dagster_logger
from dagster_shared.record import record
from dagster_shared.serdes import deserialize_value, serialize_value, whitelist_for_serdes
from dagster_shared.serdes.errors import DeserializationError
from dagster_shared.utils.cached_method import cached_method

from dagster_postgres_connection.catalog._records import compile_record_constructors
from dagster_postgres_connection.catalog.models import RelationKey
from dagster_postgres_connection.catalog.state import write_text_atomically
from dagster_postgres_connection.observe.health import PostgresTableHealth


@whitelist_for_serdes
@record
class PostgresRelationStatistics:
    """One relation as the last sync saw it."""

    database: str
    schema: str
    name: str
    oid: int
    changes: int | None  # n_tup_ins + n_tup_upd + n_tup_del since the statistics were reset
    storage: str | None  # hash of the relfilenodes: changes on TRUNCATE, rewrite, REFRESH
    stats_reset: float | None = None  # pg_stat_database.stats_reset, to tell a reset from a change
    row_count: int | None = None
    row_count_is_exact: bool = False
    size_bytes: int | None = None
    last_changed_at: float | None = None  # when a sync first saw the current data
    observed_at: float = 0.0
    reported: bool = False  # an event was emitted for it (it had an asset when last measured)
    health: PostgresTableHealth | None = None  # scans, dead tuples, maintenance (observe/health.py)

    @property
    def key(self) -> RelationKey:
        return (self.database, self.schema, self.name)

    @property
    def qualified_name(self) -> str:
        return f"{self.database}.{self.schema}.{self.name}"


@whitelist_for_serdes
@record
class PostgresSyncStatistics:
    connection_name: str
    captured_at: float
    relations: Sequence[PostgresRelationStatistics] = ()
    # Data version of each selected view, by `database\x1fschema\x1fname` (`view_version_key`).
    view_versions: Mapping[str, str] = {}

    def view_version(self, key: RelationKey) -> str | None:
        return self.view_versions.get(view_version_key(key))

    @cached_method
    def by_key(self) -> Mapping[RelationKey, PostgresRelationStatistics]:
        return {statistics.key: statistics for statistics in self.relations}


def view_version_key(key: RelationKey) -> str:
    """A view's key in `view_versions` (names may contain dots, never the unit separator)."""
    return "\x1f".join(key)


def statistics_path(snapshot_path: Path) -> Path:
    """Where the statistics of the snapshot at `snapshot_path` live."""
    return snapshot_path.with_name(f"{snapshot_path.name}.statistics")


def load_statistics(path: Path) -> PostgresSyncStatistics | None:
    """The statistics of the previous sync, or None (with a warning when the file is unusable)."""
    if not path.exists():
        return None
    try:
        return deserialize_value(path.read_text(encoding="utf-8"), PostgresSyncStatistics)
    except (OSError, DeserializationError, ValueError, TypeError, KeyError) as error:
        get_dagster_logger().warning(
            f"Ignoring the sync statistics `{path}` ({type(error).__name__}): this sync counts "
            f"again and reports no change; the file is rewritten at its end."
        )
        return None


def write_statistics(statistics: PostgresSyncStatistics, path: Path) -> None:
    write_text_atomically(serialize_value(statistics), path)


compile_record_constructors(globals())  # see catalog/_records.py
