"""Turning statistics and schema diffs into Dagster's standard events.

Data: `AssetObservation` (or `AssetMaterialization`) with `dagster/row_count`,
`dagster/last_updated_timestamp`, our size, and the data version (`observe/versions.py`) in
Dagster's `dagster/data_version` tag. Shape: `AssetCheckEvaluation` of the
`schema_unchanged` check, with the diff as metadata.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from dagster import (
    AssetCheckEvaluation,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetKey,
    AssetMaterialization,
    AssetObservation,
    MetadataValue,
)
from dagster._core.definitions.data_version import DATA_VERSION_TAG
from dagster._core.definitions.metadata import NamespacedMetadataSet, TableMetadataSet

from dagster_postgres_connection.catalog.models import PostgresRelation
from dagster_postgres_connection.observe.health import health_metadata
from dagster_postgres_connection.observe.schema_changes import diff_relation
from dagster_postgres_connection.observe.state import PostgresRelationStatistics

SCHEMA_CHECK_NAME = "schema_unchanged"
LAST_UPDATED_KEY = "dagster/last_updated_timestamp"


class PostgresObservationMetadataSet(NamespacedMetadataSet):
    """Our keys on sync events, next to `dagster/row_count`.

    `row_count_is_exact` says whether `dagster/row_count` is a `count(*)` or the planner's
    estimate (tables above `exact_row_count_threshold`); `data_changed` is false on the cheap
    observations that only repeat the last values.
    """

    row_count_is_exact: bool | None = None
    size_bytes: int | None = None  # pg_total_relation_size: heap + TOAST + indexes
    data_changed: bool | None = None

    @classmethod
    def namespace(cls) -> str:
        return "dagster-postgres-connection"


def data_event(
    asset_key: AssetKey,
    statistics: PostgresRelationStatistics,
    *,
    data_changed: bool,
    materialize: bool,
    data_version: str | None = None,
) -> AssetObservation | AssetMaterialization:
    """The event for one relation. Repeats (`data_changed=False`) are always observations:
    a materialization would tell freshness policies the data was just written."""
    metadata: dict[str, object] = {
        **TableMetadataSet(row_count=statistics.row_count),
        **PostgresObservationMetadataSet(
            row_count_is_exact=statistics.row_count_is_exact,
            size_bytes=statistics.size_bytes,
            data_changed=data_changed,
        ),
    }
    if statistics.last_changed_at is not None:
        metadata[LAST_UPDATED_KEY] = MetadataValue.timestamp(statistics.last_changed_at)
    metadata.update(health_metadata(statistics.health))
    metadata = {key: value for key, value in metadata.items() if value is not None}
    tags = version_tags(data_version)
    if materialize and data_changed:
        return AssetMaterialization(asset_key=asset_key, metadata=metadata, tags=tags)  # type: ignore[arg-type]
    return AssetObservation(asset_key=asset_key, metadata=metadata, tags=tags)  # type: ignore[arg-type]


def version_tags(data_version: str | None) -> dict[str, str]:
    """Dagster's `dagster/data_version` tag, as an observable source asset's events carry it."""
    return {DATA_VERSION_TAG: data_version} if data_version is not None else {}


def view_event(
    asset_key: AssetKey, data_version: str, *, changed_at: float, materialize: bool
) -> AssetObservation | AssetMaterialization:
    """A view whose inputs changed: no numbers of its own, only the version and the time."""
    metadata = {
        **PostgresObservationMetadataSet(data_changed=True),
        LAST_UPDATED_KEY: MetadataValue.timestamp(changed_at),
    }
    tags = version_tags(data_version)
    if materialize:
        return AssetMaterialization(asset_key=asset_key, metadata=metadata, tags=tags)
    return AssetObservation(asset_key=asset_key, metadata=metadata, tags=tags)


@dataclass(frozen=True)
class SchemaCheckOutcome:
    """The `schema_unchanged` verdict for one relation, before it becomes an event."""

    passed: bool
    description: str
    metadata: Mapping[str, MetadataValue]

    def to_evaluation(self, asset_key: AssetKey, severity: AssetCheckSeverity) -> AssetCheckEvaluation:
        """For the sync job, which reports checks it did not plan (only those whose state moved)."""
        return AssetCheckEvaluation(
            asset_key=asset_key, check_name=SCHEMA_CHECK_NAME, passed=self.passed,
            severity=severity, description=self.description, metadata=dict(self.metadata),
        )

    def to_result(self, asset_key: AssetKey, severity: AssetCheckSeverity) -> AssetCheckResult:
        """For the check's own execution (launched from the asset's Checks tab)."""
        return AssetCheckResult(
            asset_key=asset_key, check_name=SCHEMA_CHECK_NAME, passed=self.passed,
            severity=severity, description=self.description, metadata=dict(self.metadata),
        )


def schema_check_outcome(
    previous: PostgresRelation | None, current: PostgresRelation | None, *, renamed_to: str | None
) -> SchemaCheckOutcome:
    """Fails when the relation changed shape, vanished or was renamed since the previous sync."""
    if current is None:
        if renamed_to is not None:
            return SchemaCheckOutcome(
                passed=False,
                description=f"The relation was renamed to `{renamed_to}`; its asset moves at the next code location reload.",
                metadata={"renamed_to": MetadataValue.text(renamed_to)},
            )
        return SchemaCheckOutcome(
            passed=False,
            description="The relation no longer exists (or the role lost access to it); its asset goes away at the next code location reload.",
            metadata={"dropped": MetadataValue.bool(True)},
        )
    if previous is None:
        return SchemaCheckOutcome(
            passed=True, description="No earlier schema to compare with: this one is the baseline.", metadata={}
        )
    diff = diff_relation(previous, current)
    if not diff:
        return SchemaCheckOutcome(
            passed=True,
            description="Same columns, types, nullability, keys and comments as at the previous sync.",
            metadata={},
        )
    return SchemaCheckOutcome(passed=False, description=diff.describe(), metadata=diff.to_metadata())
