"""Bad configuration fails fast, naming the field, before any connection is attempted; runtime
mistakes (password, host, database) fail once, naming the field to fix; filters that select
nothing warn instead of loading silently empty.

(The exact wording of each static message is pinned in `test_component_errors.py`; here the
point is that they win the race against a server that would hang.)
"""

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from dagster._utils.test.definitions import scoped_definitions_load_context
from dagster.components.testing import create_defs_folder_sandbox

from dagster_postgres_connection import PostgresConnectionComponent
from dagster_postgres_connection_tests.reliability.conftest import PASSWORD_ENV
from dagster_postgres_connection_tests.utils import PgTarget

COMPONENT_TYPE = "dagster_postgres_connection.PostgresConnectionComponent"


def _attributes(**changes: Any) -> dict[str, Any]:
    attributes = {
        "name": "bad_config",
        "username": "dagster_reader",
        "password": f"{{{{ env.{PASSWORD_ENV} }}}}",
        "connect_timeout_seconds": 30,
    }
    attributes.update(changes)
    return {k: v for k, v in attributes.items() if v is not None}


@contextmanager
def _load(attributes: dict[str, Any]) -> Iterator[Any]:
    with create_defs_folder_sandbox() as sandbox:
        path = sandbox.scaffold_component(
            component_cls=PostgresConnectionComponent,
            defs_yaml_contents={"type": COMPONENT_TYPE, "attributes": attributes},
        )
        with scoped_definitions_load_context(), sandbox.load_component_and_build_defs(defs_path=path) as loaded:
            yield loaded


def _load_error(attributes: dict[str, Any]) -> tuple[str, float]:
    started = time.monotonic()
    with pytest.raises(Exception) as raised, _load(attributes):
        pass
    elapsed = time.monotonic() - started
    messages, error = [], raised.value
    while error is not None:
        messages.append(str(error))
        error = error.__cause__ or error.__context__
    return "\n".join(messages), elapsed


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch, pagila: PgTarget) -> None:
    monkeypatch.setenv(PASSWORD_ENV, pagila.password)
    monkeypatch.delenv("DPC_UNSET_PASSWORD_VARIABLE", raising=False)


@pytest.mark.parametrize(
    "changes, fragments",
    [
        ({"filters": {"tables": {"include": ["sales_(2024"]}}}, ["tables", "include", "'sales_(2024'", "not a valid Python regular expression"]),
        ({"hostname": "db.internal"}, ["hostname", "Extra inputs are not permitted"]),
        ({"name": ""}, ["`name` is empty"]),
        ({"name": "pagila-prod.eu"}, ["`name` 'pagila-prod.eu'", "letters, digits and underscores", "`name: pagila_prod_eu`"]),
        ({"port": 70000}, ["`port` 70000 is out of range", "1-65535"]),
        ({"password": "{{ env.DPC_UNSET_PASSWORD_VARIABLE }}"}, ["`password`", "`DPC_UNSET_PASSWORD_VARIABLE` is not set"]),
        ({"max_concurrent_connections": 0}, ["`max_concurrent_connections` must be at least 1"]),
    ],
    ids=["invalid-regex", "unknown-attribute", "empty-name", "unusable-name", "port-out-of-range", "missing-env-var", "zero-connections"],
)
def test_invalid_configuration_fails_before_connecting(
    silent_listener: tuple[str, int], changes: dict[str, Any], fragments: list[str]
) -> None:
    """The host is a server that never answers: only a validation error can end the load quickly."""
    host, port = silent_listener
    message, elapsed = _load_error(_attributes(**{"host": host, "port": port, **changes}))
    assert elapsed < 10, f"validation came after a connection attempt ({elapsed:.1f} s)"
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.parametrize(
    "changes, fragments",
    [
        ({"username": "dagster_reader"}, ["password authentication failed", f"`{PASSWORD_ENV}` holds the password of role `dagster_reader`"]),
        ({"host": "dpc-no-such-host.invalid"}, ["Check `host`: `dpc-no-such-host.invalid` does not resolve"]),
        ({"databases": ["no_such_database"]}, ["`no_such_database` does not exist", "fix `databases`"]),
        ({"databases": None, "filters": {"databases": {"include": ["nothing_matches_this"]}}}, ["No database of", "is selected", "`filters.databases`"]),
    ],
    ids=["wrong-password", "unknown-host", "missing-database", "databases-filter-selects-nothing"],
)
def test_runtime_mistakes_fail_the_first_load_naming_the_field(
    pagila: PgTarget, monkeypatch: pytest.MonkeyPatch, changes: dict[str, Any], fragments: list[str]
) -> None:
    if "username" in changes:
        monkeypatch.setenv(PASSWORD_ENV, "not-the-password")
    base = {"host": pagila.host, "port": pagila.port, "databases": [pagila.database]}
    message, _ = _load_error(_attributes(**{**base, **changes}))
    for fragment in fragments:
        assert fragment in message, message
    assert "no catalog snapshot yet" in message  # and says it is the first sync that failed


def test_relation_filters_that_select_nothing_warn(pagila: PgTarget, caplog: pytest.LogCaptureFixture) -> None:
    attributes = _attributes(
        host=pagila.host, port=pagila.port, databases=[pagila.database],
        filters={"tables": {"include": ["no_such_table_.*"]}, "views": {"include": ["no_such_view"]}},
    )
    with caplog.at_level(logging.WARNING), _load(attributes) as (_, defs):
        assert list(defs.resolve_all_asset_specs()) == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("`bad_config` selects no relation" in w and "`filters`" in w for w in warnings), warnings
