"""Change detection on a real streaming standby (pg_basebackup + streaming replication).

A standby's `pg_stat_user_tables` counters stay at 0 while it replays the primary's inserts, so
the data versions there follow the WAL replay position (`observe/queries.py`): inserts on the
primary show up as a new version read from the standby, and a quiet primary gives the same
version tick after tick. The sync job runs there as it does on a primary (a standby refuses any
write, so a sync that succeeds there wrote nothing).
"""

import time
from pathlib import Path

import dagster as dg
import pytest

from dagster_postgres_connection import build_postgres_connection_defs
from dagster_postgres_connection.catalog.reader import read_catalog
from dagster_postgres_connection.factory import build_postgres_connection_settings
from dagster_postgres_connection.observe.statistics import read_data_versions
from dagster_postgres_connection.observe.versions import ChangeWatch, with_view_versions
from dagster_postgres_connection_tests.observe.conftest import data_events, run_job, summary
from dagster_postgres_connection_tests.standby_postgres import (  # noqa: F401 (fixture, used by name)
    DATABASE,
    PrimaryAndStandby,
    primary_and_standby_fixture,
)

PASSWORD_ENV = "DPC_TEST_STANDBY_PASSWORD"
CONNECTION = "replica"
# The primary logs a running-transactions record up to 15 s after its last write (for hot
# standby snapshots): the replay position is still moving until then.
QUIET_AFTER_WRITE_SECONDS = 17


@pytest.fixture(name="standby_password", autouse=True)
def standby_password_fixture(primary_and_standby: PrimaryAndStandby, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, primary_and_standby.standby.password)


def _settings_kwargs(pair: PrimaryAndStandby) -> dict[str, object]:
    target = pair.standby
    return {
        "name": CONNECTION, "host": target.host, "port": target.port, "username": target.user,
        "password": dg.EnvVar(PASSWORD_ENV), "databases": [DATABASE],
    }


def _versions(pair: PrimaryAndStandby) -> tuple[dict[str, str], bool, int]:
    settings = build_postgres_connection_settings(**_settings_kwargs(pair))  # type: ignore[arg-type]
    watch = ChangeWatch.of(read_catalog(settings).relations(), {(DATABASE, "public", n) for n in ("orders", "customers", "order_totals")})
    tables, standby, statements = read_data_versions(settings, DATABASE, watch.schemas_by_database[DATABASE])
    versions = with_view_versions(tables, watch.view_deps)
    return {key[2]: version for key, version in versions.items()}, standby, statements


def test_inserts_on_the_primary_give_a_new_version_read_from_the_standby(primary_and_standby: PrimaryAndStandby) -> None:
    pair = primary_and_standby
    before, standby, statements = _versions(pair)
    assert standby and statements == 1
    assert set(before) == {"orders", "customers", "order_totals"}

    pair.primary_execute("INSERT INTO orders (total) SELECT i FROM generate_series(1, 5) i")
    after, _, _ = _versions(pair)
    assert after["orders"] != before["orders"]
    assert after["order_totals"] != before["order_totals"]  # the view follows its table

    # A quiet primary: the same versions tick after tick.
    time.sleep(QUIET_AFTER_WRITE_SECONDS)
    settled, _, _ = _versions(pair)
    time.sleep(3)
    assert _versions(pair)[0] == settled


def test_sync_on_the_standby_reports_the_primary_s_inserts(
    primary_and_standby: PrimaryAndStandby, tmp_path: Path
) -> None:
    pair = primary_and_standby
    defs = build_postgres_connection_defs(snapshot_path=tmp_path / "snapshot", **_settings_kwargs(pair))  # type: ignore[arg-type]
    with dg.instance_for_test() as instance:
        first = run_job(defs, instance, f"{CONNECTION}_sync")
        assert first.success
        rows_before = data_events(first)["orders"].metadata["dagster/row_count"].value
        pair.primary_execute("INSERT INTO orders (total) VALUES (42), (43)")
        second = run_job(defs, instance, f"{CONNECTION}_sync")
        assert second.success  # a standby refuses writes: the sync wrote nothing there
        events = data_events(second)
        assert events["orders"].metadata["dagster/row_count"].value == rows_before + 2
        assert events["orders"].metadata["dagster-postgres-connection/data_changed"].value is True
        assert "order_totals" in events
        assert summary(second)["standby"] is True and summary(first)["standby"] is True
