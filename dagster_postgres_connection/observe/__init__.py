"""Keeping a connection alive: the sync job (observations, schema checks, snapshot refresh),
its schedule, and the opt-in profile job."""

from dagster_postgres_connection.observe.config import (
    PostgresProfilingSettings as PostgresProfilingSettings,
    PostgresSyncSettings as PostgresSyncSettings,
)
from dagster_postgres_connection.observe.events import (
    PostgresObservationMetadataSet as PostgresObservationMetadataSet,
)
from dagster_postgres_connection.observe.sync import (
    PostgresSyncTarget as PostgresSyncTarget,
    sync_job_name as sync_job_name,
)
from dagster_postgres_connection.observe.sync_job import (
    build_observe_definitions as build_observe_definitions,
)
