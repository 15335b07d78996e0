"""Fixtures of the reliability suite: settings for the read-only role and a silent TCP listener.

`debian_postgres` (TLS) lives in `dagster_postgres_connection_tests/debian_postgres.py`.
"""

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from dagster_postgres_connection.config import PostgresConnectionSettings, PostgresPassword
from dagster_postgres_connection.testing import LOCALHOST
from dagster_postgres_connection_tests.utils import PgTarget

PASSWORD_ENV = "DPC_RELIABILITY_PASSWORD"

SettingsFactory = Callable[..., PostgresConnectionSettings]


@pytest.fixture(name="make_settings")
def make_settings_fixture(monkeypatch: pytest.MonkeyPatch) -> SettingsFactory:
    """``make_settings(target, **overrides)``: settings of the read-only role for ``target``.

    The password goes into ``PASSWORD_ENV``, as a user would configure it; pass
    ``password="..."`` to put another one there (failure tests).
    """

    def make(target: PgTarget, *, password: str | None = None, **overrides: Any) -> PostgresConnectionSettings:
        monkeypatch.setenv(PASSWORD_ENV, target.password if password is None else password)
        values: dict[str, Any] = {
            "name": "reliability",
            "host": target.host,
            "port": target.port,
            "username": target.user,
            "password": PostgresPassword(env_var=PASSWORD_ENV),
            "databases": [target.database],
            "connect_timeout_seconds": 5,
        }
        values.update(overrides)
        return PostgresConnectionSettings(**values)

    return make


@pytest.fixture(name="silent_listener")
def silent_listener_fixture() -> Iterator[tuple[str, int]]:
    """``(host, port)`` of a TCP server that accepts connections and never says a word.

    The kernel completes the handshake (so no "connection refused"); the accepting thread just
    holds the sockets until the test ends, like a firewall or a hung server would.
    """
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind((LOCALHOST, 0))
    server.listen(16)
    server.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept_forever() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                held.append(server.accept()[0])

    thread = threading.Thread(target=accept_forever, name="silent-listener", daemon=True)
    thread.start()
    try:
        yield LOCALHOST, int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=5)
        for sock in held:
            sock.close()
        server.close()


# -- Debian's PostgreSQL with a self-signed certificate -------------------------------------

