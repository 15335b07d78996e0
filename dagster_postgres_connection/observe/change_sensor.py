"""`<name>_change_sensor`: relations whose data changed, reported as Dagster sees new data.

Each tick sends one statement per database, `RELATION_VERSIONS` (pg_class and the
statistics functions: no lock, no `count(*)`, no catalog read), turns its rows into data versions
(`versions.py`, views from the dependencies kept at load), and compares them with the versions
in the sensor's cursor. Only relations whose version moved get an event; when none did, the
tick is skipped and the cursor stays as it is.

Why runless `AssetMaterialization`s and not observations: the relations are plain `AssetSpec`s
(Dagster does not run them), and for such assets `AutomationCondition.eager()` (its
`newly_updated` part) and Dagster's `FreshnessPolicy` look at materializations only: an
observation, even one with a new data version, triggers nothing downstream. A runless
materialization of an external asset means "this data was updated outside Dagster", which is
what Dagster's own documentation reports for external assets. Each carries the data version,
so the sync (which observes, or materializes with `emit_materializations`) does not report the
same change as new data again (`sync.materialized_versions`).

The first tick after the sensor starts (empty cursor) only records a baseline, as does the
first tick that sees a relation new to the code location: "changed" means changed while watched.
"""

import base64
import json
import time
import zlib
from collections.abc import Mapping

from dagster import (
    AssetMaterialization,
    DefaultSensorStatus,
    MetadataValue,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from dagster_postgres_connection.catalog.models import RelationKey
from dagster_postgres_connection.errors import PostgresConnectionError
from dagster_postgres_connection.observe.config import PostgresChangeSensorSettings
from dagster_postgres_connection.observe.events import (
    LAST_UPDATED_KEY,
    PostgresObservationMetadataSet,
    version_tags,
)
from dagster_postgres_connection.observe.statistics import read_data_versions
from dagster_postgres_connection.observe.sync import PostgresSyncTarget
from dagster_postgres_connection.observe.versions import ChangeWatch, with_view_versions


def change_sensor_name(connection_name: str) -> str:
    """`<connection>_change_sensor`."""
    return f"{connection_name}_change_sensor"


def encode_cursor(versions: Mapping[str, str]) -> str:
    """Versions by asset key, compressed (10,000 relations: ~0.3 MB of JSON, ~0.1 MB here)."""
    raw = json.dumps(versions, sort_keys=True, separators=(",", ":")).encode()
    return base64.b64encode(zlib.compress(raw, 6)).decode()


def decode_cursor(cursor: str | None) -> dict[str, str] | None:
    """The versions of the previous tick; None without a cursor, or an unreadable one."""
    if not cursor:
        return None
    try:
        return json.loads(zlib.decompress(base64.b64decode(cursor)))
    except (ValueError, zlib.error):
        return None


class ChangeTick:
    """One tick's reading: versions by asset key, what it cost, and what could not be read."""

    def __init__(self) -> None:
        self.versions: dict[str, str] = {}
        self.statements = 0
        self.standby = False
        self.failed: dict[str, str] = {}  # database -> why


def read_changes(target: PostgresSyncTarget, watch: ChangeWatch) -> ChangeTick:
    """The current version of every relation of `target` that has one: one statement per database."""
    tick = ChangeTick()
    tables: dict[RelationKey, str] = {}
    for database, schemas in watch.schemas_by_database.items():
        try:
            versions, standby, statements = read_data_versions(target.settings, database, schemas)
        except PostgresConnectionError as error:
            tick.failed[database] = str(error)
            continue
        tables.update(versions)
        tick.statements += statements
        tick.standby = tick.standby or standby
    versions = with_view_versions(tables, watch.view_deps)
    for key, asset_key in target.asset_keys.items():
        if key in versions:
            tick.versions[asset_key.to_user_string()] = versions[key]
    return tick


def evaluate_change_tick(
    target: PostgresSyncTarget, watch: ChangeWatch, cursor: str | None
) -> tuple[list[AssetMaterialization], str | None, ChangeTick]:
    """The events and the new cursor of one tick (None: keep the cursor, nothing changed)."""
    tick = read_changes(target, watch)
    previous = decode_cursor(cursor)
    if tick.failed and not tick.versions:
        raise PostgresConnectionError(
            f"Change sensor of connection `{target.settings.name}`: no database could be read: "
            + "; ".join(f"`{database}`: {why}" for database, why in tick.failed.items())
        )
    current = dict(tick.versions)
    if previous is not None and tick.failed:
        # Keep what could not be read as it was: its changes show at the next tick that reads it.
        unreadable = {
            asset_key.to_user_string() for key, asset_key in target.asset_keys.items() if key[0] in tick.failed
        }
        current.update({name: version for name, version in previous.items() if name in unreadable})
    if previous is None:
        return [], encode_cursor(current), tick
    changed = sorted((name, version) for name, version in current.items() if previous.get(name, version) != version)
    now = time.time()
    by_name = {asset_key.to_user_string(): asset_key for asset_key in target.asset_keys.values()} if changed else {}
    events = [
        AssetMaterialization(
            asset_key=by_name[name],
            description="Data changed in Postgres (detected by the change sensor).",
            metadata={
                **PostgresObservationMetadataSet(data_changed=True),
                LAST_UPDATED_KEY: MetadataValue.timestamp(now),
            },
            tags=version_tags(version),
        )
        for name, version in changed
    ]
    if not events and set(current) == set(previous):
        return [], None, tick
    return events, encode_cursor(current), tick


def build_change_sensor(target: PostgresSyncTarget, settings: PostgresChangeSensorSettings) -> SensorDefinition:
    """`<name>_change_sensor`, running by default: writing `change_sensor` is the request."""
    watch = target.change_watch
    if watch is None:
        raise ValueError("build_change_sensor needs a target with a `change_watch`.")
    name = target.settings.name

    @sensor(
        name=change_sensor_name(name),
        minimum_interval_seconds=settings.minimum_interval_seconds,
        default_status=DefaultSensorStatus.RUNNING,
        description=(
            f"Reads the statistics of connection `{name}` (one lock-free statement per database) and "
            f"reports a materialization with a new data version for each relation whose data changed."
        ),
    )
    def _change_sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
        started = time.perf_counter()
        events, cursor, tick = evaluate_change_tick(target, watch, context.cursor)
        for database, why in tick.failed.items():
            context.log.warning(f"Database `{database}` not read this tick (its relations keep their versions): {why}")
        seconds = time.perf_counter() - started
        summary = (
            f"{len(tick.versions)} relations read with {tick.statements} statements in {seconds:.2f} s"
            + (" (a standby: versions follow its WAL replay position)" if tick.standby else "")
        )
        if cursor is None:
            return SkipReason(f"No relation changed: {summary}.")
        if not events:
            return SensorResult(cursor=cursor, skip_reason=SkipReason(f"Baseline recorded: {summary}."))
        if context.repository_def is not None:
            # A relation that another asset of the code location builds (a dbt model: see
            # `link_to_existing_assets`) has no asset of ours: its producer reports it. An event
            # under our key would make an asset without a definition, and one under the
            # producer's key would count its own runs as outside changes (eager() downstream
            # would run twice).
            defined = context.repository_def.assets_defs_by_key
            events = [event for event in events if event.asset_key in defined]
            if not events:
                return SensorResult(
                    cursor=cursor,
                    skip_reason=SkipReason(f"Only relations that other assets build changed: {summary}."),
                )
        context.log.info(f"{len(events)} relations changed: {summary}.")
        return SensorResult(asset_events=events, cursor=cursor)

    return _change_sensor
