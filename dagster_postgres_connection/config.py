"""Connection settings and filters: plain pydantic models, validated once, at load.

The component (YAML) and the Python factory both end up here, so validation and messages are
written once. The password is never held here: only the name of the environment variable it
is read from, when connecting.
"""

import os
import re
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from dagster_postgres_connection.errors import PostgresConfigError

# Dagster group names (and so connection names) accept exactly these characters.
CONNECTION_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_]+$")

SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]

_Model = TypeVar("_Model", bound=BaseModel)


def validated(connection: str, model: type[_Model], values: Mapping[str, Any], prefix: str = "") -> _Model:
    """`model.model_validate(values)`, every problem named by its attribute in one error.

    The Python factory and the CLI's flags report invalid settings this way, e.g.
    "Invalid configuration of connection `x`: `port`: ...".

    Args:
        prefix: Put before each attribute, e.g. `profiling.`.
    """
    try:
        return model.model_validate(dict(values))
    except ValidationError as error:
        problems = "; ".join(
            f"`{prefix}{'.'.join(str(p) for p in e['loc'])}`: {e['msg'].removeprefix('Value error, ')}"
            for e in error.errors()
        )
        raise PostgresConfigError(f"Invalid configuration of connection `{connection}`: {problems}") from None


def valid_patterns(patterns: Sequence[str], *, example: str, attribute: str = "") -> tuple[str, ...]:
    """`patterns` as a tuple once each compiles (case-insensitive, as they are matched); else
    one error naming the pattern, its position and `example`s of valid ones.

    Args:
        attribute: Put before the message, e.g. "`freshness.relations` ".
    """
    for index, pattern in enumerate(patterns):
        try:
            re.compile(pattern, re.IGNORECASE)
        except re.error as error:
            raise ValueError(
                f"{attribute}pattern #{index + 1} {pattern!r} is not a valid Python regular expression "
                f"({error}). Fix or escape it, e.g. {example}."
            ) from None
    return tuple(patterns)


def suggest_connection_name(name: str) -> str:
    """`pagila-prod.eu` -> `pagila_prod_eu`: the mapping we suggest for unusable characters."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name.strip()) or "postgres"


def validate_connection_name(name: str) -> str:
    if not name or not name.strip():
        raise ValueError("`name` is empty: give the connection a name, e.g. `name: pagila_prod`.")
    if not CONNECTION_NAME_PATTERN.match(name):
        raise ValueError(
            f"`name` {name!r} contains characters Dagster cannot use in a group name or code "
            f"location: use only letters, digits and underscores, e.g. "
            f"`name: {suggest_connection_name(name)}`."
        )
    return name


def validate_port(port: int) -> int:
    if not 1 <= port <= 65535:
        raise ValueError(f"`port` {port} is out of range: use 1-65535 (Postgres' default is 5432).")
    return port


def validate_owners_by_role(owners_by_role: Mapping[str, str]) -> dict[str, str]:
    """Each value must be a Dagster owner: an email address or `team:<name>`."""
    for role, owner in owners_by_role.items():
        if not (owner.startswith("team:") or "@" in owner):
            raise ValueError(
                f"`owners_by_role.{role}` is {owner!r}: a Dagster owner is an email address or "
                f"`team:<name>`, e.g. `{role}: team:{role}`."
            )
    return dict(owners_by_role)


def _non_empty_host(host: str) -> str:
    if not host.strip():
        raise ValueError("`host` is empty: give the server's hostname, IP or unix socket directory.")
    return host


def _non_empty_databases(databases: Sequence[str] | None) -> Sequence[str] | None:
    if databases is None:
        return None
    if not databases:
        raise ValueError("`databases` is an empty list: list databases or leave it out to sync all.")
    return tuple(databases)


def _at_least_one(value: int, info: ValidationInfo) -> int:
    if value < 1:
        raise ValueError(f"`{info.field_name}` must be at least 1.")
    return value


# Each setting's validation travels with its type, so every model that declares the setting
# (the settings, the component's attributes derived from them) validates it the same way.
ConnectionName = Annotated[str, AfterValidator(validate_connection_name)]
Host = Annotated[str, AfterValidator(_non_empty_host)]
Port = Annotated[int, AfterValidator(validate_port)]
Databases = Annotated[Sequence[str] | None, AfterValidator(_non_empty_databases)]
AtLeastOne = Annotated[int, AfterValidator(_at_least_one)]
OwnersByRole = Annotated[Mapping[str, str], AfterValidator(validate_owners_by_role)]


class NameFilter(BaseModel):
    """Include/exclude lists of Python regular expressions for one level of the catalog.

    Patterns are case-insensitive and must match the whole name (fullmatch). An empty
    `include` means "everything"; `exclude` wins over `include`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    include: Sequence[str] = Field(
        default=(),
        description="Regular expressions; a name is selected when one of them matches it whole. Empty: all.",
        examples=[["public", "sales_.*"]],
    )
    exclude: Sequence[str] = Field(
        default=(),
        description="Regular expressions; a name matching one of them is never selected, even if included.",
        examples=[["tmp_.*"]],
    )

    @field_validator("include", "exclude")
    @classmethod
    def _compile_each(cls, patterns: Sequence[str]) -> Sequence[str]:
        return valid_patterns(patterns, example="`tmp_.*` or `sales\\.2024`")

    @cached_property
    def include_regexes(self) -> tuple[re.Pattern[str], ...]:
        """`include`, compiled case-insensitive (match them with `fullmatch`)."""
        return tuple(re.compile(p, re.IGNORECASE) for p in self.include)

    @cached_property
    def exclude_regexes(self) -> tuple[re.Pattern[str], ...]:
        """`exclude`, compiled case-insensitive (match them with `fullmatch`)."""
        return tuple(re.compile(p, re.IGNORECASE) for p in self.exclude)


class PostgresFilters(BaseModel):
    """Which databases, schemas, tables and views to bring in.

    `tables` applies to tables, partitioned tables and foreign tables; `views` to views and
    materialized views. Table and view patterns may also match `schema.name` or
    `database.schema.name`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    databases: NameFilter = Field(default_factory=NameFilter, description="Filter on database names.")
    schemas: NameFilter = Field(default_factory=NameFilter, description="Filter on schema names.")
    tables: NameFilter = Field(
        default_factory=NameFilter,
        description="Filter on tables, partitioned tables and foreign tables (`name`, `schema.name` or `database.schema.name`).",
    )
    views: NameFilter = Field(
        default_factory=NameFilter,
        description="Filter on views and materialized views (`name`, `schema.name` or `database.schema.name`).",
    )


class PostgresPassword(BaseModel):
    """Where the password comes from: an environment variable, read only when connecting."""

    model_config = ConfigDict(frozen=True)

    env_var: str

    def get(self) -> str:
        """The password, read from the environment now (raises `PostgresConfigError` if unset)."""
        value = os.environ.get(self.env_var)
        if value is None:
            raise PostgresConfigError(
                f"The environment variable `{self.env_var}` holding the password is not set. "
                f"Set it (e.g. in `.env` next to the project) before loading or syncing."
            )
        return value

    def __repr__(self) -> str:
        return f"PostgresPassword(env_var={self.env_var!r})"

    __str__ = __repr__


class PostgresConnectionSettings(BaseModel):
    """Everything needed to connect and select: the single source of each setting's name, type,
    default, validation and description. The component's YAML attributes, the Python factory's
    keywords, the CLI's defaults and the README's reference table all come from these fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ConnectionName = Field(
        description="Connection name: the asset group, the first part of every asset key, and the code location's name in the example projects. Letters, digits and underscores.",
        examples=["pagila_prod"],
    )
    host: Host = Field(
        description="Hostname or IP of the Postgres server (or a unix socket directory).",
        examples=["localhost"],
    )
    port: Port = Field(default=5432, description="TCP port of the server.", examples=[5432])
    username: str = Field(description="Role to connect as; meant to be read-only.", examples=["dagster_reader"])
    password: PostgresPassword
    databases: Databases = Field(
        default=None,
        description="Databases to read. Default: every database the role may connect to (templates excluded).",
        examples=[["pagila"]],
    )
    filters: PostgresFilters = Field(
        default_factory=PostgresFilters,
        description="Include/exclude regular expressions (case-insensitive, whole-name) for `databases`, `schemas`, `tables` and `views`. Exclude wins.",
        examples=[{"schemas": {"include": ["public"]}, "tables": {"exclude": ["tmp_.*"]}}],
    )
    connect_timeout_seconds: AtLeastOne = Field(
        default=10, description="Give up connecting after this many seconds.", examples=[10]
    )
    statement_timeout_seconds: AtLeastOne = Field(
        default=120, description="`statement_timeout` of every catalog query, in seconds.", examples=[120]
    )
    lock_timeout_seconds: AtLeastOne = Field(
        default=5,
        description="`lock_timeout` of every session, in seconds: never wait long on other sessions' locks.",
        examples=[5],
    )
    sslmode: SslMode | None = Field(
        default=None,
        description="libpq `sslmode` (disable, allow, prefer, require, verify-ca, verify-full). Default: libpq's own (`prefer`).",
        examples=["verify-full"],
    )
    sslrootcert: str | None = Field(
        default=None,
        description="Path of the CA certificate for `verify-ca` / `verify-full`.",
        examples=["/etc/ssl/certs/db-ca.pem"],
    )
    max_concurrent_connections: AtLeastOne = Field(
        default=4, description="At most this many databases are read at once.", examples=[4]
    )
    query_history: bool = Field(
        default=False,
        description="Read `pg_stat_statements` (where installed and readable: `pg_read_all_stats`) at every sync: executed INSERT ... SELECT, CREATE TABLE AS and MERGE statements add lineage, and each relation gets the calls and rows of the statements naming it.",
        examples=[True],
    )
    # How relations are shown; applied when loading, so changing them needs no re-sync.
    expose_partitions: bool = Field(
        default=False,
        description="Make every partition of a partitioned table an asset of its own, with its parent as dep. Default: one asset per partitioned table, its partitions summarised in metadata.",
        examples=[False],
    )
    owners_by_role: OwnersByRole = Field(
        default_factory=dict,
        description="Dagster owner (an email or `team:<name>`) for relations owned by each Postgres role.",
        examples=[{"analytics_owner": "team:analytics", "etl": "data-eng@example.com"}],
    )

    @property
    def location(self) -> str:
        """`host:port`, for messages (never any credential)."""
        return f"{self.host}:{self.port}"
