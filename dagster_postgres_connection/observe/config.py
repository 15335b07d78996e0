"""Settings of the sync job (observations, schema checks) and of the opt-in profile job.

Plain pydantic models shared by the YAML component and the Python factory, so validation and
messages are written once, like `config.py` for the connection itself.
"""

import re
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dagster._utils.schedules import is_valid_cron_string
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from dagster_postgres_connection.config import NameFilter, valid_patterns

if TYPE_CHECKING:
    from dagster import FreshnessPolicy

# What a sync reports for a relation whose statistics did not change since the previous sync.
UnchangedRelations = Literal["nothing", "observation"]
SchemaCheckSeverity = Literal["WARN", "ERROR"]
DistinctCount = Literal["sample", "pg_stats"]


class PostgresProfilingSettings(BaseModel):
    """Which relations the profile job reads, and how much of each it may read."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    relations: NameFilter = Field(
        default_factory=NameFilter,
        description="Include/exclude regexes on `name`, `schema.name` or `database.schema.name` of the relations to profile. Empty include: every selected relation.",
        examples=[{"include": ["public\\.(film|rental)"]}],
    )
    sample_percent: float = Field(
        default=10.0,
        description="`TABLESAMPLE SYSTEM` percentage for tables larger than `row_limit` rows (by the planner's estimate); smaller ones are read whole.",
        examples=[1.0],
    )
    row_limit: int = Field(default=100_000, description="At most this many rows are profiled per relation.")
    statement_timeout_seconds: int = Field(default=60, description="`statement_timeout` of each profiling query.")
    distinct_count: DistinctCount = Field(
        default="sample",
        description="`sample`: exact `count(DISTINCT ...)` over the rows profiled; `pg_stats`: the planner's `n_distinct` (needs ANALYZE, costs nothing).",
    )
    profile_schedule: str | None = Field(
        default=None,
        description="Cron expression for the profile job; without it the job only runs when launched.",
        examples=["0 3 * * 0"],
    )

    @field_validator("sample_percent")
    @classmethod
    def _valid_percent(cls, value: float) -> float:
        if not 0 < value <= 100:
            raise ValueError(f"`profiling.sample_percent` {value} must be in (0, 100], e.g. 1 or 10.")
        return value

    @field_validator("row_limit", "statement_timeout_seconds")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("`profiling.row_limit` and `profiling.statement_timeout_seconds` must be at least 1.")
        return value

    @field_validator("profile_schedule")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        return _check_cron(value, "profiling.profile_schedule")


def _cron_expression(value: str | None, info: ValidationInfo) -> str | None:
    return _check_cron(value, str(info.field_name))


def _time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"`timezone` {value!r} is not an IANA time zone: use e.g. `UTC` or `Europe/Paris`.") from None
    return value


def _non_negative(value: int, info: ValidationInfo) -> int:
    if value < 0:
        raise ValueError(f"`{info.field_name}` must be 0 (never count) or more.")
    return value


def _share(value: float, info: ValidationInfo) -> float:
    if not 0 < value <= 1:
        raise ValueError(f"`{info.field_name}` {value} must be a share in (0, 1], e.g. 0.5 for half.")
    return value


# Validation travels with the type: the component's attributes are derived from these fields.
CronExpression = Annotated[str | None, AfterValidator(_cron_expression)]
TimeZone = Annotated[str, AfterValidator(_time_zone)]
NonNegativeCount = Annotated[int, AfterValidator(_non_negative)]
Share = Annotated[float, AfterValidator(_share)]


# The change sensor's floor: a tick costs one statement per database (0.1-0.3 s at 10,000
# tables, benchmarks/README.md); faster polling mostly adds sensor ticks to the instance.
MIN_CHANGE_SENSOR_INTERVAL_SECONDS = 5


class PostgresChangeSensorSettings(BaseModel):
    """The `<name>_change_sensor`: polls Postgres' statistics and reports changed relations."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    minimum_interval_seconds: int = Field(
        default=30,
        description=f"Seconds between two ticks (at least {MIN_CHANGE_SENSOR_INTERVAL_SECONDS}); each tick sends one lock-free statistics statement per database.",
        examples=[30],
    )

    @field_validator("minimum_interval_seconds")
    @classmethod
    def _not_below_floor(cls, value: int) -> int:
        if value < MIN_CHANGE_SENSOR_INTERVAL_SECONDS:
            raise ValueError(
                f"`change_sensor.minimum_interval_seconds` {value} is below the floor of "
                f"{MIN_CHANGE_SENSOR_INTERVAL_SECONDS} s: use e.g. `change_sensor: {{minimum_interval_seconds: 30}}`."
            )
        return value


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$", re.IGNORECASE)
_SECONDS_PER_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: str, attribute: str) -> timedelta:
    """`"90s"`, `"30m"`, `"6h"`, `"1d"`, `"2w"` -> a timedelta."""
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(
            f"`{attribute}` {value!r} is not a duration: write a number and a unit (s, m, h, d, w), e.g. `6h` or `30m`."
        )
    return timedelta(seconds=float(match.group(1)) * _SECONDS_PER_UNIT[match.group(2).lower()])


class PostgresFreshnessRule(BaseModel):
    """Relations that should change at least every `fail_window`: Dagster's `FreshnessPolicy`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    relations: Sequence[str] = Field(
        description="Regular expressions (as in `filters`: case-insensitive, whole `name`, `schema.name` or `database.schema.name`) of the relations this rule applies to.",
        examples=[["public\\.(rental|payment)"]],
    )
    fail_window: str = Field(
        description="The relation is failing its freshness policy when its data has not changed for this long (at least `1m`), e.g. `6h`.",
        examples=["6h"],
    )
    warn_window: str | None = Field(
        default=None,
        description="Warn when its data has not changed for this long (at least `1m`, shorter than `fail_window`), e.g. `1h`.",
        examples=["1h"],
    )

    @field_validator("relations")
    @classmethod
    def _compile_each(cls, patterns: Sequence[str]) -> Sequence[str]:
        if not patterns:
            raise ValueError("`freshness.relations` is empty: list regexes of the relations, e.g. `[public\\.rental]`.")
        return valid_patterns(patterns, example="`public\\.rental`", attribute="`freshness.relations` ")

    @model_validator(mode="after")
    def _valid_windows(self) -> "PostgresFreshnessRule":
        fail = parse_duration(self.fail_window, "freshness.fail_window")
        if fail < timedelta(minutes=1):
            raise ValueError(f"`freshness.fail_window` {self.fail_window!r} is below Dagster's minimum of 1 minute: use e.g. `1m` or `6h`.")
        if self.warn_window is not None:
            warn = parse_duration(self.warn_window, "freshness.warn_window")
            if not timedelta(minutes=1) <= warn < fail:
                raise ValueError(
                    f"`freshness.warn_window` {self.warn_window!r} must be at least 1 minute and shorter "
                    f"than `fail_window` {self.fail_window!r}, e.g. `fail_window: 6h, warn_window: 1h`."
                )
        return self

    @cached_property
    def regexes(self) -> tuple[re.Pattern[str], ...]:
        return tuple(re.compile(pattern, re.IGNORECASE) for pattern in self.relations)

    @cached_property
    def policy(self) -> "FreshnessPolicy":
        """`FreshnessPolicy.time_window(fail_window, warn_window)`, built once per rule."""
        from dagster import FreshnessPolicy
        return FreshnessPolicy.time_window(
            fail_window=parse_duration(self.fail_window, "freshness.fail_window"),
            warn_window=parse_duration(self.warn_window, "freshness.warn_window") if self.warn_window else None,
        )

    def matches(self, database: str, schema: str, name: str) -> bool:
        candidates = (name, f"{schema}.{name}", f"{database}.{schema}.{name}")
        return any(regex.fullmatch(candidate) for regex in self.regexes for candidate in candidates)


class PostgresSyncSettings(BaseModel):
    """How the sync job reports on the connection's relations."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sync_schedule: CronExpression = Field(
        default=None,
        description="Cron expression: run the sync job on this schedule. Without it the job exists but only runs when launched.",
        examples=["*/30 * * * *"],
    )
    timezone: TimeZone = Field(default="UTC", description="IANA time zone of `sync_schedule`.", examples=["Europe/Paris"])
    emit_materializations: bool = Field(
        default=False,
        description="The sync job reports changed relations as materializations (for freshness policies and automation) instead of observations; never a data version already materialized (e.g. by `change_sensor`, which always materializes).",
    )
    unchanged_relations: UnchangedRelations = Field(
        default="nothing",
        description="What a relation whose data did not change reports: `nothing` (small event log) or a cheap `observation` repeating the last values.",
    )
    exact_row_count_threshold: NonNegativeCount = Field(
        default=1_000_000,
        description="Changed tables whose planner estimate is below this are counted with `count(*)`; larger ones report the estimate.",
    )
    mass_disappearance_threshold: Share = Field(
        default=0.5,
        description="Fail the sync, keeping the snapshot, when more than this share of relations vanished at once (revoked grants, wrong database). Force with run config `force: true`.",
    )
    schema_check_severity: SchemaCheckSeverity = Field(
        default="WARN", description="Severity of a failed `schema_unchanged` check."
    )
    change_sensor: PostgresChangeSensorSettings | None = Field(
        default=None,
        description="Define `<name>_change_sensor` (running by default): every `minimum_interval_seconds` it reads the statistics of every selected relation (one lock-free statement per database) and reports a runless materialization, with its new data version, for each relation whose data changed, so `AutomationCondition.eager()` downstream runs. Off when not set.",
        examples=[{"minimum_interval_seconds": 30}],
    )
    freshness: Sequence[PostgresFreshnessRule] = Field(
        default=(),
        description="Dagster `FreshnessPolicy`s: a list of `{relations: [regex, ...], fail_window: 6h, warn_window: 1h}`; the first rule matching a relation gives its policy. Freshness counts from the latest materialization: use with `change_sensor` (or `emit_materializations`).",
        examples=[[{"relations": ["public\\.(rental|payment)"], "fail_window": "6h", "warn_window": "1h"}]],
    )
    schema_checks: bool = Field(
        default=True,
        description="Define a `schema_unchanged` check per asset. `false`: no checks (cheaper to load at thousands of assets, see benchmarks/README.md); the sync still logs created, dropped, renamed and changed relations.",
        examples=[False],
    )


def _check_cron(value: str | None, attribute: str) -> str | None:
    if value is not None and not is_valid_cron_string(value):
        raise ValueError(
            f"`{attribute}` {value!r} is not a valid cron expression: use five fields, e.g. `*/30 * * * *`."
        )
    return value
