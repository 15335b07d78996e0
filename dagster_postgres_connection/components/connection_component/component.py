"""PostgresConnectionComponent: the YAML / `dg` surface over the catalog core.

Thin on purpose: it turns attributes into `PostgresConnectionSettings`, reads the catalog into
its state file on refresh, and builds Definitions from that state. Loading never needs the
database once a snapshot exists (`refresh_if_dev` defaults to false); the very first load,
with no snapshot yet, reads the catalog once.
"""

import hashlib
import os
import re
import time
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any

import dagster as dg
from dagster.components import DefsStateConfig, DefsStateConfigArgs, ResolvedDefsStateConfig
from dagster.components.resolved.errors import ResolutionException
from dagster.components.utils.project_paths import get_local_state_path
from dagster.components.utils.translation import (
    ComponentTranslator,
    TranslationFn,
    TranslationFnResolver,
    create_component_translator_cls,
)
from dagster_shared.serdes.objects.models.defs_state_info import DefsStateManagementType
from pydantic import BaseModel, Field, ValidationError, create_model, model_validator

from dagster_postgres_connection.catalog.reader import read_catalog
from dagster_postgres_connection.catalog.state import load_snapshot, write_snapshot
from dagster_postgres_connection.components.connection_component.attributes_model import (
    with_single_branch_errors,
)
from dagster_postgres_connection.components.connection_component.scaffolder import (
    PostgresConnectionScaffolder,
)
from dagster_postgres_connection.config import (
    PostgresConnectionSettings,
    PostgresPassword,
)
from dagster_postgres_connection.definitions import build_connection_definitions, describe_age
from dagster_postgres_connection.errors import (
    PostgresConfigError,
    PostgresConnectionError,
    PostgresSnapshotError,
)
from dagster_postgres_connection.load_warnings import warn_at_load
from dagster_postgres_connection.observe.config import (
    PostgresProfilingSettings,
    PostgresSyncSettings,
)
from dagster_postgres_connection.observe.versioned_state import state_storage_of
from dagster_postgres_connection.translator import DagsterPostgresTranslator, PostgresRelationProps

_ENV_TEMPLATE = re.compile(
    r"""^\s*\{\{\s*env(?:\.(?P<attr>[A-Za-z_][A-Za-z0-9_]*)|\(\s*['"](?P<call>[^'"]+)['"]\s*\))\s*\}\}\s*$"""
)


def _resolve_password(context: dg.ResolutionContext, template: Any) -> PostgresPassword | None:
    """`"{{ env.NAME }}"` -> the variable's name; the secret itself is read only when connecting
    (a load from a snapshot needs none: CI and deploy checks usually run without secrets)."""
    if template is None:
        return None
    match = _ENV_TEMPLATE.match(str(template))
    if not match:
        raise ResolutionException(
            '`password` must name an environment variable, e.g. `password: "{{ env.POSTGRES_CONNECTION_PASSWORD }}"` '
            "(or use `password_env_var: POSTGRES_CONNECTION_PASSWORD`): a password is never written into defs.yaml."
        )
    return PostgresPassword(env_var=match.group("attr") or match.group("call"))


def _described(resolver: dg.Resolver, description: str) -> dg.Resolver:
    """Adds a description to a resolver whose constructor takes none (`TranslationFnResolver`)."""
    resolver.description = description
    return resolver


def _attributes_of_settings(*models: type[BaseModel]) -> type[dg.Model]:
    """A `dg.Model` with every field of `models` as a YAML attribute (the password aside): same
    name, type, default and description. Descriptions go in `dg.Resolver.default`, where `dg`
    reads them for fields with a default."""
    fields: dict[str, Any] = {}
    for model in models:
        for name, field in model.model_fields.items():
            if name == "password":  # the component's own two forms, below
                continue
            factory = field.default_factory
            if field.is_required():
                info, examples = Field(), field.examples
            elif factory is not None:
                info, examples = Field(default_factory=factory), field.examples
            else:
                info, examples = Field(default=field.default), field.examples or [field.default]
            resolver = dg.Resolver.default(description=field.description, examples=examples)
            # The bare type: values may still be `{{ env(...) }}` text when `dg` checks the YAML;
            # the settings' own validation runs on the resolved values (`_valid_settings`).
            fields[name] = (Annotated[field.annotation, resolver], info)
    return create_model("PostgresConnectionAttributes", __base__=dg.Model, **fields)


# The connection's and the sync job's settings, as attributes.
_SettingsAttributes = _attributes_of_settings(PostgresConnectionSettings, PostgresSyncSettings)


@dg.scaffold_with(PostgresConnectionScaffolder)
class PostgresConnectionComponent(dg.StateBackedComponent, _SettingsAttributes, dg.Resolvable):
    """Every table, view, materialized view and foreign table of a Postgres server as assets.

    The catalog is read into a snapshot (`dg utils refresh-defs-state`, or automatically on the
    first load); the code location then loads from it without contacting Postgres. The job
    `<name>_sync` (scheduled with `sync_schedule`) refreshes that snapshot and reports row
    counts, sizes, last-update times and `schema_unchanged` checks; `profiling:` adds a
    `<name>_profile` job.

    Example:
        .. code-block:: yaml

            type: dagster_postgres_connection.PostgresConnectionComponent
            attributes:
              name: pagila_prod
              host: db.internal
              port: 5432
              username: dagster_reader
              password: "{{ env.POSTGRES_CONNECTION_PASSWORD }}"
              databases: [pagila]
              filters:
                schemas: {include: ["public", "sales_.*"]}
                tables: {exclude: ["tmp_.*"]}
              sync_schedule: "*/30 * * * *"
              timezone: Europe/Paris
              profiling:
                relations: {include: ['public\\.(film|rental)']}
                sample_percent: 1

    Scaffold one with ``dg scaffold defs dagster_postgres_connection.PostgresConnectionComponent
    pagila_prod --host db.internal --username dagster_reader --databases pagila`` (or a whole
    project with ``dagster-postgres-connection init pagila_prod``).
    """

    password: Annotated[
        PostgresPassword | None,
        dg.Resolver(
            _resolve_password,
            model_field_type=str,
            inject_before_resolve=False,
            description='Password as an environment variable template: `"{{ env.POSTGRES_CONNECTION_PASSWORD }}"`. Exactly one of `password` and `password_env_var`.',
            examples=["{{ env.POSTGRES_CONNECTION_PASSWORD }}"],
        ),
    ] = Field(default=None, repr=False)
    password_env_var: Annotated[
        str | None,
        dg.Resolver.default(
            description="Name of the environment variable holding the password (the Dagster+ form's field). Exactly one of `password` and `password_env_var`.",
            examples=["POSTGRES_CONNECTION_PASSWORD"],
        ),
    ] = None
    profiling: Annotated[
        PostgresProfilingSettings | None,
        dg.Resolver.default(
            description="Opt-in column profiles (null fraction, distinct count, min/max, mean) in a separate `<name>_profile` job: `relations` regexes, `sample_percent`, `row_limit`, `statement_timeout_seconds`, `distinct_count`, `profile_schedule`.",
            examples=[{"relations": {"include": ["public\\.(film|rental)"]}, "sample_percent": 1, "row_limit": 100000}],
        ),
    ] = None
    translation: Annotated[
        TranslationFn[PostgresRelationProps] | None,
        _described(
            TranslationFnResolver[PostgresRelationProps](template_vars_for_translation_fn=lambda props: {"props": props}),
            "Change key, group, tags, owners, kinds or description per relation; templates see `props` (connection_name, database, schema, name, kind, table_name, relation) and `spec`.",
        ),
    ] = None
    # `dg` shows Dagster's own description of `defs_state` (its resolver's); the README documents our default.
    defs_state: ResolvedDefsStateConfig = Field(
        default_factory=lambda: DefsStateConfigArgs(
            management_type=DefsStateManagementType.LOCAL_FILESYSTEM, refresh_if_dev=False
        ),
        description="Where the catalog snapshot is kept. `refresh_if_dev` defaults to false so `dg dev`/`dg check` load without the database.",
    )

    @classmethod
    def model(cls) -> type[BaseModel]:
        """Dagster's YAML model, reporting one error (not a second `str` one) per bad nested value."""
        return with_single_branch_errors(super().model())

    @model_validator(mode="after")
    def _exactly_one_password(self) -> "PostgresConnectionComponent":
        if (self.password is None) == (self.password_env_var is None):
            raise ValueError(
                "Give exactly one of `password` (\"{{ env.NAME }}\") and `password_env_var` (NAME) "
                f"for connection `{vars(self)['name']}`."
            )
        return self

    @model_validator(mode="after")
    def _valid_settings(self) -> "PostgresConnectionComponent":
        # The settings validate themselves; at load, so a bad value is reported with its attribute.
        try:
            self.settings  # noqa: B018
            self.sync_settings  # noqa: B018
        except ValidationError as error:
            raise ValueError("; ".join(e["msg"].removeprefix("Value error, ") for e in error.errors())) from None
        return self

    @property
    def sync_settings(self) -> PostgresSyncSettings:
        """The `<name>_sync` job's settings, from the sync attributes."""
        return PostgresSyncSettings(**self._attributes_of(PostgresSyncSettings))

    @cached_property
    def settings(self) -> PostgresConnectionSettings:
        """The attributes as the settings the reader, the sync job and the CLI share."""
        password = self.password or PostgresPassword(env_var=str(self.password_env_var))
        return PostgresConnectionSettings(**self._attributes_of(PostgresConnectionSettings), password=password)

    def _attributes_of(self, model: type[BaseModel]) -> dict[str, Any]:
        """This component's values of `model`'s fields: each settings field is also an attribute."""
        return {name: getattr(self, name) for name in model.model_fields if name != "password"}

    @cached_property
    def translator(self) -> DagsterPostgresTranslator:
        """`get_asset_spec` (overridable in a subclass), then the YAML `translation`."""
        return PostgresComponentTranslator(self)

    @cached_property
    def _base_translator(self) -> DagsterPostgresTranslator:
        return DagsterPostgresTranslator()

    def get_asset_spec(self, props: PostgresRelationProps) -> dg.AssetSpec:
        """Override to customise every relation's spec.

        Example:
            .. code-block:: python

                class MyConnection(PostgresConnectionComponent):
                    def get_asset_spec(self, props):
                        spec = super().get_asset_spec(props)
                        return spec.replace_attributes(owners=["team:data"])
        """
        return self._base_translator.get_asset_spec(props)

    @property
    def defs_state_config(self) -> DefsStateConfig:
        """`defs_state`, keyed `PostgresConnectionComponent[<name>]` (Fivetran's and Airbyte's scheme)."""
        return DefsStateConfig.from_args(self.defs_state, default_key=f"{self.__class__.__name__}[{self.settings.name}]")

    def write_state_to_path(self, state_path: Path) -> None:
        """Reads the catalog and writes the snapshot (`dg utils refresh-defs-state`)."""
        # Read fully before touching the file: a failed read leaves the previous snapshot in place.
        write_snapshot(read_catalog(self.settings), state_path)

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        """Dagster's load; when a refresh on load (`refresh_if_dev` under `dg dev`) cannot reach
        Postgres, the last local snapshot instead, with a warning saying how old it is."""
        if self.defs_state_config.management_type == DefsStateManagementType.VERSIONED_STATE_STORAGE:
            state_storage_of(None, self.settings.name)  # Dagster's own error blames the framework
        try:
            return super().build_defs(context)
        except PostgresConnectionError as error:
            state_path = self._local_state_path(context)
            if state_path is None or not state_path.exists():
                raise
            age = describe_age(time.time() - state_path.stat().st_mtime)
            warn_at_load(
                f"Could not refresh the catalog of connection `{self.settings.name}` ({error}); "
                f"loading the last snapshot, taken {age} ago."
            )
            return self.build_defs_from_state(context, state_path)

    def password_variable_problem(self) -> str | None:
        """Says which attribute names an unset password variable; None when it is set."""
        variable = self.settings.password.env_var
        if variable in os.environ:
            return None
        attribute = "password" if self.password is not None else "password_env_var"
        return f"`{attribute}`: the environment variable `{variable}` is not set"

    def _local_state_path(self, context: dg.ComponentLoadContext) -> Path | None:
        """Where LOCAL_FILESYSTEM state lives (None for the other management types)."""
        config = self.defs_state_config
        if config.management_type != DefsStateManagementType.LOCAL_FILESYSTEM:
            return None
        return get_local_state_path(config.key, context.project_root)

    def _first_snapshot(self, context: dg.ComponentLoadContext) -> Path:
        """The very first load of a LOCAL_FILESYSTEM connection reads the catalog once, so a new
        project shows its assets without a separate `dg utils refresh-defs-state`."""
        state_path = self._local_state_path(context)
        if state_path is None:
            raise PostgresSnapshotError(
                f"Connection `{self.settings.name}` has no catalog snapshot in its state storage yet: "
                f"run `dg utils refresh-defs-state` (or `dagster-postgres-connection sync`) first."
            )
        missing = self.password_variable_problem()
        if missing:  # said before any connection attempt, naming the attribute
            raise PostgresConfigError(
                f"{missing}, and connection `{self.settings.name}` has no catalog snapshot yet to "
                f"load from. Set it (e.g. in the project's `.env`) to the password of the connecting role."
            )
        try:
            self.write_state_to_path(state_path)
        except PostgresConnectionError as error:
            raise PostgresSnapshotError(
                f"Connection `{self.settings.name}` has no catalog snapshot yet, and reading the "
                f"catalog failed: {error} Fix that, then load again or run `dg utils refresh-defs-state`."
            ) from None
        return state_path

    def build_defs_from_state(self, context: dg.ComponentLoadContext, state_path: Path | None) -> dg.Definitions:
        """Assets, sync job, schedule, checks (and profile job) from the snapshot at `state_path`."""
        if state_path is None:
            state_path = self._first_snapshot(context)
        elif missing := self.password_variable_problem():
            warn_at_load(
                f"{missing}: connection `{self.settings.name}` loads from its catalog snapshot; "
                f"the sync job and refreshes need it."
            )
        key = self._built_definitions_key(context, state_path)
        built = _built_definitions.get(context.path)
        if built is not None and built[0] == key:
            return built[1]
        definitions = self._build_from_snapshot(context, state_path)
        _built_definitions[context.path] = (key, definitions)
        return definitions

    def _built_definitions_key(self, context: dg.ComponentLoadContext, state_path: Path) -> str:
        """What the Definitions are built from: this class, the files declaring this component
        (defs.yaml, with its `translation`), the resolved settings, and the snapshot's bytes."""
        digest = hashlib.sha256(type(self).__qualname__.encode())
        declared = sorted(f for f in context.path.iterdir() if f.is_file()) if context.path.is_dir() else []
        for part in (
            *(f.read_bytes() for f in declared),
            self.settings.model_dump_json().encode(),
            self.sync_settings.model_dump_json().encode(),
            (self.profiling.model_dump_json() if self.profiling else "").encode(),
            state_path.read_bytes(),
        ):
            digest.update(hashlib.sha256(part).digest())
        return digest.hexdigest()

    def _build_from_snapshot(self, context: dg.ComponentLoadContext, state_path: Path) -> dg.Definitions:
        config = self.defs_state_config
        versioned = config.management_type == DefsStateManagementType.VERSIONED_STATE_STORAGE
        return build_connection_definitions(
            self.settings,
            load_snapshot(state_path),
            self.translator,
            sync=self.sync_settings,
            profiling=self.profiling,
            # LOCAL_FILESYSTEM: the sync job refreshes the local snapshot in place, and the next
            # reload shows the result. VERSIONED_STATE_STORAGE: it writes a new version to the
            # instance's defs state storage and asks the code server to reload.
            snapshot_path=self._local_state_path(context),
            versioned_state_key=config.key if versioned else None,
            no_snapshot_path_reason=(
                f"`defs_state.management_type` is {config.management_type.value}: "
                f"the sync job reports and checks, but only a code server start refreshes the "
                f"snapshot, and statistics are not kept between runs"
            ),
        )


# The last Definitions built per component folder, with what they were built from. A code server
# builds a code location twice when it starts (Dagster's INITIALIZATION load, then the
# RECONSTRUCTION of the repository): the second build of the same snapshot and configuration
# reuses the first (about 4 s at 10,000 tables). Anything changed builds anew.
_built_definitions: dict[Path, tuple[str, dg.Definitions]] = {}


class PostgresComponentTranslator(
    create_component_translator_cls(PostgresConnectionComponent, DagsterPostgresTranslator),
    ComponentTranslator[PostgresConnectionComponent],
):
    """Applies a subclass's `get_asset_spec` override, then the YAML `translation` block."""

    def __init__(self, component: PostgresConnectionComponent) -> None:
        self._component = component

    def get_asset_spec(self, props: PostgresRelationProps) -> dg.AssetSpec:
        """The component's spec for `props`, then its `translation` applied."""
        spec = super().get_asset_spec(props)
        if self.component.translation is not None:
            spec = self.component.translation(spec, props)
        return spec
