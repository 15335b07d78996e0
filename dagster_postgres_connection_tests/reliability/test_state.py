"""State: the snapshot survives crashes and bad files, and loads without Postgres.

- A process killed while writing never leaves a truncated snapshot: the previous one loads.
- A truncated, corrupt or incompatible snapshot fails with a message saying how to fix it,
  and a re-sync does fix it.
- With Postgres unreachable, the code location loads from the last snapshot; when it tried to
  refresh (`refresh_if_dev` under `dg dev`), a warning says how old that snapshot is.
"""

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from dagster._utils.test.definitions import scoped_definitions_load_context
from dagster.components.testing import create_defs_folder_sandbox
from dagster.components.testing.utils import DefsFolderSandbox
from dagster_shared.record import copy

from dagster_postgres_connection import PostgresConnectionComponent
from dagster_postgres_connection.catalog.models import SNAPSHOT_FORMAT_VERSION
from dagster_postgres_connection.catalog.reader import read_catalog
from dagster_postgres_connection.catalog.state import load_snapshot, write_snapshot
from dagster_postgres_connection.errors import PostgresSnapshotError
from dagster_postgres_connection.testing import find_free_port
from dagster_postgres_connection_tests.reliability.conftest import PASSWORD_ENV, SettingsFactory
from dagster_postgres_connection_tests.utils import PgTarget

COMPONENT_TYPE = "dagster_postgres_connection.PostgresConnectionComponent"
STATE_GLOB = ".local_defs_state/*/state"

# Rewrites the same snapshot forever; the parent kills it at a random moment.
_WRITER = """
import sys
from pathlib import Path
from dagster_postgres_connection.catalog.state import load_snapshot, write_snapshot
source, target = Path(sys.argv[1]), Path(sys.argv[2])
snapshot = load_snapshot(source)
print("ready", flush=True)
while True:
    write_snapshot(snapshot, target)
"""


def _attributes(target: PgTarget, **extra: Any) -> dict[str, Any]:
    return {
        "name": "state_test",
        "host": target.host,
        "port": target.port,
        "username": target.user,
        "password": f"{{{{ env.{PASSWORD_ENV} }}}}",
        "databases": [target.database],
        "filters": {"tables": {"include": ["film", "actor", "film_actor"]}, "views": {"include": ["film_list"]}},
        **extra,
    }


@pytest.fixture(name="sandbox")
def sandbox_fixture(pagila: PgTarget, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[DefsFolderSandbox, Path]]:
    monkeypatch.setenv(PASSWORD_ENV, pagila.password)
    monkeypatch.delenv("DAGSTER_IS_DEV_CLI", raising=False)
    with create_defs_folder_sandbox() as sandbox:
        path = sandbox.scaffold_component(
            component_cls=PostgresConnectionComponent,
            defs_yaml_contents={"type": COMPONENT_TYPE, "attributes": _attributes(pagila)},
        )
        yield sandbox, path


def _set_attributes(path: Path, **changes: Any) -> None:
    defs_yaml = path / "defs.yaml"
    document = yaml.safe_load(defs_yaml.read_text())
    document["attributes"].update(changes)
    defs_yaml.write_text(yaml.safe_dump(document, allow_unicode=True))


@contextmanager
def _loaded(sandbox: DefsFolderSandbox, path: Path) -> Iterator[tuple[PostgresConnectionComponent, dg.Definitions]]:
    with scoped_definitions_load_context(), sandbox.load_component_and_build_defs(defs_path=path) as (component, defs):
        assert isinstance(component, PostgresConnectionComponent)
        yield component, defs


def _keys(sandbox: DefsFolderSandbox, path: Path) -> set[str]:
    with _loaded(sandbox, path) as (_, defs):
        return {spec.key.to_user_string() for spec in defs.resolve_all_asset_specs()}


def _state_file(sandbox: DefsFolderSandbox) -> Path:
    (state,) = sandbox.project_root.rglob(STATE_GLOB)
    return state


def _load_error(sandbox: DefsFolderSandbox, path: Path) -> str:
    """Every message of the error chain of a failed load; ours must be in it."""
    with pytest.raises(Exception) as raised, _loaded(sandbox, path):
        pass
    chain: list[BaseException] = []
    error: BaseException | None = raised.value
    while error is not None:
        chain.append(error)
        error = error.__cause__ or error.__context__
    assert any(isinstance(e, PostgresSnapshotError) for e in chain), chain
    return "\n".join(str(e) for e in chain)


SELECTED = {f"state_test/pagila/public/{name}" for name in ("film", "actor", "film_actor", "film_list")}


def _first_load(box: DefsFolderSandbox, path: Path) -> set[str]:
    """The first load syncs (no snapshot yet); later loads must give the very same keys."""
    keys = _keys(box, path)
    assert keys >= SELECTED  # plus the relations `film_list` reads, as lineage sources
    return keys


def test_killed_writers_never_leave_a_truncated_snapshot(
    pagila: PgTarget, make_settings: SettingsFactory, tmp_path: Path
) -> None:
    source, target = tmp_path / "source", tmp_path / "state"
    snapshot = read_catalog(make_settings(pagila))
    write_snapshot(snapshot, source)
    write_snapshot(snapshot, target)
    expected = source.read_text()
    for attempt in range(2):
        process = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(source), str(target)], stdout=subprocess.PIPE, text=True
        )
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        # Readers meanwhile always see a whole snapshot, never a file being written.
        for _ in range(50 * (attempt + 1)):
            assert target.read_text() == expected
        os.kill(process.pid, signal.SIGKILL)  # somewhere inside write/flush/fsync/replace
        process.wait()
        assert target.read_text() == expected  # whole: either the previous write or the new one
        assert load_snapshot(target).relations_by_key().keys() == snapshot.relations_by_key().keys()
    # Temporary files of killed writers are the only leftovers, never the state itself.
    assert {p.name for p in tmp_path.iterdir()} - {"source", "state"} <= {
        p.name for p in tmp_path.glob(".state.*.tmp")
    }


@pytest.mark.parametrize(
    "damage, fragments",
    [
        (lambda text: text[: len(text) // 2], ["corrupt or was written by an incompatible version"]),
        (lambda text: "", ["corrupt or was written by an incompatible version"]),
        (lambda text: text.replace("PostgresCatalogSnapshot", "PostgresCatalogSnapshotV9"), ["corrupt or was written by an incompatible version"]),
        (lambda text: json.dumps({**json.loads(text), "format_version": SNAPSHOT_FORMAT_VERSION + 996}), ["format 999", "upgrade"]),
    ],
    ids=["truncated", "empty", "unknown-record", "newer-format"],
)
def test_a_bad_snapshot_fails_clearly_and_a_resync_fixes_it(
    sandbox: tuple[DefsFolderSandbox, Path], damage: Any, fragments: list[str]
) -> None:
    box, path = sandbox
    expected = _first_load(box, path)
    state = _state_file(box)
    damaged = damage(state.read_text())
    assert damaged != state.read_text()
    state.write_text(damaged)

    message = _load_error(box, path)
    for fragment in [*fragments, "dg utils refresh-defs-state", str(state)]:
        assert fragment in message, message

    # What `dg utils refresh-defs-state` does: load the component (not its definitions), refresh.
    with scoped_definitions_load_context(), box.build_component_tree() as tree:
        component = tree.load_component(path)
        assert isinstance(component, PostgresConnectionComponent)
        asyncio.run(component.refresh_state(box.project_root))
    assert _keys(box, path) == expected


def test_unreachable_postgres_loads_the_last_snapshot_without_connecting(
    sandbox: tuple[DefsFolderSandbox, Path], silent_listener: tuple[str, int]
) -> None:
    box, path = sandbox
    expected = _first_load(box, path)
    host, port = silent_listener
    _set_attributes(path, host=host, port=port, connect_timeout_seconds=30)
    started = time.monotonic()
    assert _keys(box, path) == expected
    assert time.monotonic() - started < 10, "loading tried to reach Postgres"


def test_failed_refresh_at_load_keeps_the_snapshot_and_says_how_old_it_is(
    sandbox: tuple[DefsFolderSandbox, Path], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    box, path = sandbox
    expected = _first_load(box, path)
    state = _state_file(box)
    two_hours_ago = time.time() - 2 * 3600 - 60
    os.utime(state, (two_hours_ago, two_hours_ago))
    _set_attributes(path, port=find_free_port(), defs_state={"management_type": "LOCAL_FILESYSTEM", "refresh_if_dev": True})
    monkeypatch.setenv("DAGSTER_IS_DEV_CLI", "1")  # as under `dg dev`
    with caplog.at_level(logging.WARNING):
        assert _keys(box, path) == expected
    warnings = [r.getMessage() for r in caplog.records if "Could not refresh" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
    assert "`state_test`" in warnings[0] and "taken 2.0 h ago" in warnings[0] and "Nothing listens" in warnings[0]


def test_a_load_from_the_snapshot_needs_no_password(
    sandbox: tuple[DefsFolderSandbox, Path], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """CI and deploy checks run without secrets: with a snapshot, an unset variable only warns."""
    box, path = sandbox
    expected = _first_load(box, path)
    monkeypatch.delenv(PASSWORD_ENV)
    with caplog.at_level(logging.WARNING):
        assert _keys(box, path) == expected
    warnings = [r.getMessage() for r in caplog.records if PASSWORD_ENV in r.getMessage()]
    assert warnings == [
        f"`password`: the environment variable `{PASSWORD_ENV}` is not set: connection `state_test` "
        "loads from its catalog snapshot; the sync job and refreshes need it."
    ]


def test_without_a_snapshot_an_unset_password_variable_fails_before_connecting(
    sandbox: tuple[DefsFolderSandbox, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    box, path = sandbox
    monkeypatch.delenv(PASSWORD_ENV)
    _set_attributes(path, port=find_free_port())  # nothing listens: only our check can fail it
    with pytest.raises(Exception) as raised, _loaded(box, path):
        pass
    chain, error = [], raised.value
    while error is not None:
        chain.append(str(error))
        error = error.__cause__ or error.__context__
    text = "\n".join(chain)
    assert f"`password`: the environment variable `{PASSWORD_ENV}` is not set" in text, text
    assert "has no catalog snapshot yet" in text and "Nothing listens" not in text, text
    assert not list(box.project_root.rglob(STATE_GLOB))


def _column_schema(box: DefsFolderSandbox, path: Path) -> object:
    with _loaded(box, path) as (_, defs):
        key = dg.AssetKey(["state_test", "pagila", "public", "film"])
        return defs.resolve_assets_def(key).get_asset_spec(key).metadata["dagster/column_schema"]


def test_a_second_build_of_the_same_snapshot_and_configuration_is_reused(
    sandbox: tuple[DefsFolderSandbox, Path], pagila: PgTarget
) -> None:
    """A code server builds a code location twice as it starts: the second build is the first's.
    A changed snapshot or defs.yaml builds anew."""
    box, path = sandbox
    _first_load(box, path)
    first = _column_schema(box, path)
    assert _column_schema(box, path) is first

    state = _state_file(box)
    snapshot = load_snapshot(state)
    write_snapshot(copy(snapshot, captured_at=snapshot.captured_at + 1), state)  # same catalog, new bytes
    rebuilt = _column_schema(box, path)
    assert rebuilt is not first and rebuilt == first

    _set_attributes(path, translation={"group_name": "renamed"})
    with _loaded(box, path) as (_, defs):
        groups = {spec.key.path[-1]: spec.group_name for spec in defs.resolve_all_asset_specs()}
    assert {groups[name] for name in ("film", "actor", "film_actor", "film_list")} == {"renamed"}
