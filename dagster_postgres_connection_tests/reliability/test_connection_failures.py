"""Server-level failures end the sync once, with one message, however many databases are listed."""

import logging
import time

import pytest

from dagster_postgres_connection.catalog.reader import read_catalog
from dagster_postgres_connection.errors import PostgresUnreachableError
from dagster_postgres_connection.testing import find_free_port
from dagster_postgres_connection_tests.reliability.conftest import SettingsFactory
from dagster_postgres_connection_tests.utils import PgTarget

# Eight databases: a per-database retry would show up as eight messages (and eight waits).
DATABASES = ["pagila", *(f"db_{i}" for i in range(7))]


def _fail_once(settings_factory: SettingsFactory, target: PgTarget, caplog: pytest.LogCaptureFixture, **overrides: object) -> tuple[str, float]:
    settings = settings_factory(target, databases=DATABASES, **overrides)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING), pytest.raises(PostgresUnreachableError) as raised:
        read_catalog(settings)
    elapsed = time.monotonic() - started
    assert not [r for r in caplog.records if "Skipping" in r.getMessage()], "failure was reported per database"
    return str(raised.value), elapsed


def test_wrong_password_fails_once_naming_the_env_var(
    pagila: PgTarget, make_settings: SettingsFactory, caplog: pytest.LogCaptureFixture
) -> None:
    message, _ = _fail_once(make_settings, pagila, caplog, password="wrong-Password-123")
    assert message.count("password authentication failed") == 1, message
    assert "`DPC_RELIABILITY_PASSWORD`" in message and "`dagster_reader`" in message
    assert "wrong-Password-123" not in message and pagila.password not in message
    # libpq's message ends its sentence before our hint starts.
    assert 'password authentication failed for user "dagster_reader". Check that the environment variable' in message


def test_empty_password_variable_is_named_as_empty(
    pagila: PgTarget, make_settings: SettingsFactory, caplog: pytest.LogCaptureFixture
) -> None:
    message, _ = _fail_once(make_settings, pagila, caplog, password="")
    assert message.endswith(
        "The environment variable `DPC_RELIABILITY_PASSWORD` is empty: set it to the password of role `dagster_reader`."
    ), message


def test_unknown_host_fails_once_naming_host(
    pagila: PgTarget, make_settings: SettingsFactory, caplog: pytest.LogCaptureFixture
) -> None:
    message, _ = _fail_once(make_settings, pagila, caplog, host="dpc-no-such-host.invalid")
    assert message.count("Could not connect") == 1, message
    assert "Check `host`: `dpc-no-such-host.invalid` does not resolve." in message


def test_refused_port_fails_once_naming_host_and_port(
    pagila: PgTarget, make_settings: SettingsFactory, caplog: pytest.LogCaptureFixture
) -> None:
    port = find_free_port()
    message, elapsed = _fail_once(make_settings, pagila, caplog, port=port)
    assert message.count("Could not connect") == 1, message
    assert f"Nothing listens on `127.0.0.1:{port}`" in message
    # libpq's two lines, each a sentence: "Connection refused. Is the server running ...? Nothing ..."
    assert "Connection refused. Is the server running" in message, message
    assert elapsed < 2


def test_silent_server_times_out_once_within_connect_timeout(
    pagila: PgTarget,
    make_settings: SettingsFactory,
    silent_listener: tuple[str, int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    host, port = silent_listener
    message, elapsed = _fail_once(make_settings, pagila, caplog, host=host, port=port, connect_timeout_seconds=2)
    # libpq's minimum is 2 s; queued databases are not retried after the first failure.
    assert 1.5 <= elapsed < 6, elapsed
    assert message.count("Could not connect") == 1, message
    assert "did not answer within 2 s" in message and "`connect_timeout_seconds`" in message


def test_listing_databases_fails_once_too(
    pagila: PgTarget, make_settings: SettingsFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Without `databases`, the server is asked for its list first: that failure is the only one."""
    settings = make_settings(pagila, databases=None, password="wrong-Password-123")
    with caplog.at_level(logging.WARNING), pytest.raises(PostgresUnreachableError) as raised:
        read_catalog(settings)
    assert str(raised.value).count("password authentication failed") == 1
    assert not caplog.records
