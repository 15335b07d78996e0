"""TLS: `sslmode` and `sslrootcert` reach libpq, against a server with a self-signed certificate."""

import pytest

from dagster_postgres_connection.catalog.reader import read_catalog
from dagster_postgres_connection.errors import PostgresUnreachableError
from dagster_postgres_connection_tests.debian_postgres import DebianPostgres
from dagster_postgres_connection_tests.reliability.conftest import SettingsFactory
from dagster_postgres_connection_tests.utils import PgTarget


def _reader_sessions(debian_postgres: DebianPostgres) -> list[str]:
    """`connection authorized` log lines of the read-only role, e.g. `... SSL enabled (protocol=TLSv1.3 ...)`."""
    lines = debian_postgres.log_path.read_text(errors="replace").splitlines()
    return [line for line in lines if "connection authorized: user=tls_reader" in line]


@pytest.mark.parametrize("sslmode", ["require", "prefer"])
def test_encrypting_modes_sync_against_a_self_signed_server(
    debian_postgres: DebianPostgres, make_settings: SettingsFactory, sslmode: str
) -> None:
    before = len(_reader_sessions(debian_postgres))
    snapshot = read_catalog(make_settings(debian_postgres.target, sslmode=sslmode))
    assert [r.qualified_name for r in snapshot.relations()] == ["tls_db.public.orders"]
    assert [c.name for c in snapshot.relations()[0].columns] == ["id", "total"]
    sessions = _reader_sessions(debian_postgres)[before:]
    assert sessions and all("SSL enabled" in line for line in sessions), sessions


def test_require_against_a_server_without_tls_fails_clearly(
    pagila: PgTarget, make_settings: SettingsFactory
) -> None:
    with pytest.raises(PostgresUnreachableError) as raised:
        read_catalog(make_settings(pagila, sslmode="require"))
    message = str(raised.value)
    assert "server does not support SSL" in message
    assert "use `sslmode: prefer`" in message


def test_verify_ca_with_the_right_root_certificate_syncs(
    debian_postgres: DebianPostgres, make_settings: SettingsFactory
) -> None:
    settings = make_settings(
        debian_postgres.target, sslmode="verify-ca", sslrootcert=str(debian_postgres.root_cert)
    )
    snapshot = read_catalog(settings)
    assert [r.qualified_name for r in snapshot.relations()] == ["tls_db.public.orders"]


@pytest.mark.parametrize(
    "sslmode, root_cert, expected",
    [
        ("verify-full", "root_cert", ["dpc-tls-test-server", "127.0.0.1", "`host`", "`sslmode: verify-ca`"]),
        ("verify-ca", "wrong_root_cert", ["certificate verify failed", "`sslrootcert`"]),
        ("verify-full", None, ["root certificate file", "Set `sslrootcert`"]),
    ],
    ids=[
        "verify-full_certificate_names_another_host",
        "verify-ca_wrong_root_certificate",
        "verify-full_without_a_root_certificate",
    ],
)
def test_verifying_modes_fail_clearly_and_say_what_to_change(
    debian_postgres: DebianPostgres,
    make_settings: SettingsFactory,
    sslmode: str,
    root_cert: str | None,
    expected: list[str],
) -> None:
    """`root_cert` names the DebianPostgres field of the `sslrootcert` file, if any."""
    options = {"sslrootcert": str(getattr(debian_postgres, root_cert))} if root_cert else {}
    settings = make_settings(debian_postgres.target, sslmode=sslmode, **options)
    with pytest.raises(PostgresUnreachableError) as raised:
        read_catalog(settings)
    message = str(raised.value)
    for part in expected:
        assert part in message, message
    assert debian_postgres.target.password not in message
