"""Secrets: every entry point runs with a known password, and all it prints, logs, raises,
reprs, attaches as metadata or writes to disk is searched for that password: 0 hits.

Covered: component load (first sync), refresh, reload; the Python factory with a snapshot file;
the CLI (`preview`, `check`, `sync`, with `--debug` and `--json`) in-process and one real
subprocess; a failed login (in every entry point); failed TLS handshakes. Logs are captured at
DEBUG for every logger, SQLAlchemy's engine included.
"""

import asyncio
import contextlib
import logging
import subprocess
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import dagster as dg
import pytest
from click.testing import CliRunner
from dagster._utils.error import serializable_error_info_from_exc_info
from dagster._utils.test.definitions import scoped_definitions_load_context
from dagster.components.testing import create_defs_folder_sandbox

from dagster_postgres_connection import PostgresConnectionComponent, build_postgres_connection_defs
from dagster_postgres_connection.catalog.connection import build_url, create_catalog_engine
from dagster_postgres_connection.catalog.reader import read_catalog
from dagster_postgres_connection.cli import cli
from dagster_postgres_connection.errors import PostgresConnectionError
from dagster_postgres_connection_tests.debian_postgres import DebianPostgres
from dagster_postgres_connection_tests.reliability.conftest import (
    PASSWORD_ENV,
    SettingsFactory,
)
from dagster_postgres_connection_tests.utils import PgTarget

WRONG_PASSWORD = "Wr0ng-Known-pw#42!"


class Evidence:
    """Everything an entry point showed or left behind, labelled, to search for secrets."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, label: str, value: object) -> None:
        self.items.append((label, value if isinstance(value, str) else repr(value)))

    def add_error(self, label: str, error: BaseException) -> None:
        """The message, repr, formatted traceback (with chained causes and contexts) and
        Dagster's serializable error info, which is what the UI shows."""
        self.add(f"{label} str", str(error))
        self.add(f"{label} repr", repr(error))
        self.add(f"{label} traceback", "".join(traceback.format_exception(type(error), error, error.__traceback__)))
        seen: BaseException | None = error
        while seen is not None:
            self.add(f"{label} chain", f"{type(seen).__name__}: {seen} {seen.args!r}")
            seen = seen.__cause__ or seen.__context__
        self.add(f"{label} dagster", serializable_error_info_from_exc_info((type(error), error, error.__traceback__)).to_string())

    def add_files(self, label: str, root: Path) -> int:
        files = [path for path in root.rglob("*") if path.is_file()]
        for path in files:
            self.add(f"{label} {path.relative_to(root)}", path.read_bytes().decode("utf-8", "replace"))
        return len(files)

    def leaks(self, *secrets: str) -> list[str]:
        forms = {form for secret in secrets for form in (secret, quote(secret, safe=""), quote_plus(secret))}
        return [label for label, text in self.items for form in forms if form in text]


@pytest.fixture(name="evidence")
def evidence_fixture() -> Iterator[Evidence]:
    """Collects every log record of every logger at DEBUG while the test runs."""
    evidence = Evidence()

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            evidence.add(f"log {record.name}", self.format(record))

    handler = Collect(level=logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s %(args)s"))
    root = logging.getLogger()
    loggers = [root, logging.getLogger("sqlalchemy.engine"), logging.getLogger("sqlalchemy.pool"), logging.getLogger("dagster")]
    levels = [logger.level for logger in loggers]
    root.addHandler(handler)
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    try:
        yield evidence
    finally:
        root.removeHandler(handler)
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _defs_yaml(target: PgTarget, **extra: Any) -> dict[str, Any]:
    return {
        "type": "dagster_postgres_connection.PostgresConnectionComponent",
        "attributes": {
            "name": "secrets_test",
            "host": target.host,
            "port": target.port,
            "username": target.user,
            "password": f"{{{{ env.{PASSWORD_ENV} }}}}",
            "databases": [target.database],
            **extra,
        },
    }


@contextlib.contextmanager
def _sandbox(target: PgTarget) -> Iterator[tuple[Any, Path]]:
    with create_defs_folder_sandbox() as sandbox:
        path = sandbox.scaffold_component(component_cls=PostgresConnectionComponent, defs_yaml_contents=_defs_yaml(target))
        yield sandbox, path


def _run_cli(evidence: Evidence, label: str, *args: str) -> int:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=True)
    evidence.add(f"cli {label} output", result.output)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        evidence.add_error(f"cli {label}", result.exception)
    return result.exit_code


def test_no_entry_point_leaks_the_password(
    pagila: PgTarget, make_settings: SettingsFactory, evidence: Evidence, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(pagila)  # puts the real password into PASSWORD_ENV
    evidence.add("settings", settings)
    evidence.add("settings json", settings.model_dump_json())
    evidence.add("url", build_url(settings, pagila.database))
    engine, _ = create_catalog_engine(settings, pagila.database)
    evidence.add("engine", engine)
    engine.dispose()

    # Component: first load (syncs), refresh, reload from the snapshot.
    with _sandbox(pagila) as (sandbox, path):
        with scoped_definitions_load_context(), sandbox.load_component_and_build_defs(defs_path=path) as (component, defs):
            assert isinstance(component, PostgresConnectionComponent)
            evidence.add("component repr", repr(component))
            evidence.add("component str", str(component))
            evidence.add("component dump", component.model_dump())
            evidence.add("component settings", component.settings)
            asyncio.run(component.refresh_state(sandbox.project_root))
        with scoped_definitions_load_context(), sandbox.load_component_and_build_defs(defs_path=path) as (_, defs):
            specs = defs.resolve_all_asset_specs()
            assert len(specs) > 20
            for spec in specs:
                evidence.add(f"spec {spec.key.to_user_string()}", spec)
                evidence.add(f"metadata {spec.key.to_user_string()}", {k: str(v) for k, v in spec.metadata.items()})
        # The CLI on the same project: preview, check, sync (also --debug and --json).
        defs_yaml = str(path / "defs.yaml")
        assert _run_cli(evidence, "preview", "preview", defs_yaml) == 0
        assert _run_cli(evidence, "preview json", "preview", "--json", defs_yaml) == 0
        assert _run_cli(evidence, "check", "--debug", "check", defs_yaml) in (0, 1)
        assert _run_cli(evidence, "check json", "check", "--json", defs_yaml) in (0, 1)
        assert _run_cli(evidence, "sync", "sync", "--debug", defs_yaml) == 0
        written = evidence.add_files("project", sandbox.project_root)
        assert written >= 2  # defs.yaml and the snapshot, at least

    # Factory with a snapshot file.
    snapshot_path = tmp_path / "factory" / "snapshot.json"
    defs = build_postgres_connection_defs(
        name="secrets_factory", host=pagila.host, port=pagila.port, username=pagila.user,
        password=dg.EnvVar(PASSWORD_ENV), databases=[pagila.database], snapshot_path=snapshot_path,
    )
    for spec in defs.resolve_all_asset_specs():
        evidence.add(f"factory spec {spec.key.to_user_string()}", spec)
    evidence.add("snapshot", read_catalog(settings))
    evidence.add_files("tmp", tmp_path)

    assert len(evidence.items) > 100
    assert evidence.leaks(pagila.password) == []


def test_failed_logins_never_show_the_password(
    pagila: PgTarget, make_settings: SettingsFactory, evidence: Evidence, tmp_path: Path
) -> None:
    settings = make_settings(pagila, password=WRONG_PASSWORD)
    with pytest.raises(PostgresConnectionError) as raised:
        read_catalog(settings)
    evidence.add_error("read_catalog", raised.value)

    with pytest.raises(PostgresConnectionError) as raised:
        build_postgres_connection_defs(
            name="secrets_factory", host=pagila.host, port=pagila.port, username=pagila.user,
            password=dg.EnvVar(PASSWORD_ENV), databases=[pagila.database],
        )
    evidence.add_error("factory", raised.value)

    with _sandbox(pagila) as (sandbox, path):
        with pytest.raises(Exception) as load_error:
            with scoped_definitions_load_context(), sandbox.load_component_and_build_defs(defs_path=path):
                pass
        evidence.add_error("component load", load_error.value)
        defs_yaml = str(path / "defs.yaml")
        for command in (["--debug", "preview"], ["--debug", "check"], ["sync", "--debug"]):
            assert _run_cli(evidence, " ".join(command), *command, defs_yaml) == 2
        # One real process, as a user would run it: stdout and stderr.
        process = subprocess.run(
            [sys.executable, "-m", "dagster_postgres_connection", "sync", "--debug", defs_yaml],
            capture_output=True, text=True, check=False, timeout=120,
        )
        evidence.add("subprocess stdout", process.stdout)
        evidence.add("subprocess stderr", process.stderr)
        assert process.returncode == 2 and "password authentication failed" in process.stderr + process.stdout
        evidence.add_files("project", sandbox.project_root)

    assert "password authentication failed" in str(raised.value)
    assert evidence.leaks(WRONG_PASSWORD, pagila.password) == []


def test_failed_tls_handshakes_never_show_the_password(
    pagila: PgTarget, debian_postgres: DebianPostgres, make_settings: SettingsFactory, evidence: Evidence
) -> None:
    for label, settings in (
        ("verify-full", make_settings(debian_postgres.target, sslmode="verify-full", sslrootcert=str(debian_postgres.root_cert))),
        ("wrong root", make_settings(debian_postgres.target, sslmode="verify-ca", sslrootcert=str(debian_postgres.wrong_root_cert))),
        ("no tls on server", make_settings(pagila, sslmode="require")),
    ):
        with pytest.raises(PostgresConnectionError) as raised:
            read_catalog(settings)
        evidence.add_error(label, raised.value)
    assert len(evidence.items) > 10
    assert evidence.leaks(debian_postgres.target.password, pagila.password) == []


def test_the_search_finds_a_password_in_any_spelling() -> None:
    """Control: the search would see the password as is, or URL-encoded as in a DSN."""
    for text in (f"password={WRONG_PASSWORD}", f"postgresql://u:{quote_plus(WRONG_PASSWORD)}@h/db"):
        evidence = Evidence()
        evidence.add("sample", text)
        assert evidence.leaks(WRONG_PASSWORD) == ["sample"]
