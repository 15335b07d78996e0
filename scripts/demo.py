"""The demo behind scripts/demo.sh: embedded PostgreSQL 18 + Pagila + ``dg dev``.

Starts (or reuses) PostgreSQL 18 on 127.0.0.1:55432 with its data in ``.tmp/demo-pg/``,
loads Pagila into ``pagila`` once, creates the read-only role ``dagster_reader`` with a
password generated once (``.tmp/demo-pg/reader_password``), refreshes the snapshot of
``examples/quickstart``, runs its sync job ``pagila_prod_sync`` once (so the UI opens on row
counts, last updates and check results instead of "Never materialized"), then runs ``dg dev``
on 127.0.0.1:3000 until Ctrl-C or ``scripts/demo.sh --stop``.

``dg dev`` runs as a child in its own process group, with default SIGINT/SIGTERM handlers, its
group id in ``.tmp/demo-dg.pid``. A shell's background job starts with SIGINT ignored, and
Dagster maps SIGTERM to the SIGINT handler, so ``dg dev`` inherited from such a launcher could
not be stopped by ``kill`` and killing it orphaned the webserver, daemon and code server. Now
Ctrl-C (or SIGTERM to this process) is forwarded to the group, and ``--stop`` signals the group
itself: SIGTERM, then SIGKILL after a grace period, then PostgreSQL stops.

Environment: ``DEMO_PG_PORT`` (55432), ``DEMO_UI_PORT`` (3000), ``DEMO_DIR`` (``.tmp``: the
server's data, the Dagster instance and the pid file), ``DEMO_PROJECT_DIR`` (the project to
serve, ``examples/quickstart``; the tests serve a copy), ``DAGSTER_HOME``
(``$DEMO_DIR/dagster-home``).
"""

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from dagster_postgres_connection.testing import EmbeddedPostgres, EmbeddedPostgresError

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_DIR = Path(os.environ.get("DEMO_DIR") or REPO_ROOT / ".tmp").resolve()
DATA_DIR = DEMO_DIR / "demo-pg"
PASSWORD_FILE = DATA_DIR / "reader_password"
PID_FILE = DEMO_DIR / "demo-dg.pid"  # the process group of `dg dev`
PROJECT_DIR = Path(os.environ.get("DEMO_PROJECT_DIR") or REPO_ROOT / "examples" / "quickstart").resolve()
SYNC_JOB = "pagila_prod_sync"  # the quickstart's connection `pagila_prod`
VERSION = 18
DATABASE = "pagila"
READER_ROLE = "dagster_reader"
HOST = "127.0.0.1"
STOP_GRACE_SECONDS = 20.0  # dagster dev stops its webserver, daemon and code server in ~2-5 s


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def port_from_env(name: str, default: int) -> int:
    raw = os.environ.get(name, str(default))
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        sys.exit(f"error: {name}={raw!r} is not a TCP port number")
    return int(raw)


def reader_password() -> str:
    """The role's password, generated on the first run and kept for the next ones."""
    if PASSWORD_FILE.exists():
        return PASSWORD_FILE.read_text().strip()
    password = secrets.token_urlsafe(18)
    PASSWORD_FILE.touch(mode=0o600)
    PASSWORD_FILE.write_text(password + "\n")
    return password


# -- the process group of `dg dev` ---------------------------------------------------------


def group_members(group: int) -> list[int]:
    """Live (non-zombie) processes of process group `group`, from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # Fields after the parenthesised command name: state, ppid, pgrp, ...
            state, _ppid, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue
        if int(pgrp) == group and state != "Z":
            members.append(int(stat.parent.name))
    return members


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {key.decode(errors="replace"): value.decode(errors="replace") for key, value in pairs}


def demo_processes(group: int, dagster_home: Path) -> list[int]:
    """Members of `group` that belong to this demo (their DAGSTER_HOME is ours): a pid file left
    behind by a crash must never make `--stop` signal a stranger that reused the number."""
    return [pid for pid in group_members(group) if _environ(pid).get("DAGSTER_HOME") == str(dagster_home)]


def _signal_group(group: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signum)


def stop_group(group: int, first_signal: int, dagster_home: Path) -> bool:
    """`first_signal` to the group, SIGKILL to what is left after the grace period.

    Returns True when none of the demo's processes is left.
    """
    if not demo_processes(group, dagster_home):
        return True
    _signal_group(group, first_signal)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while demo_processes(group, dagster_home) and time.monotonic() < deadline:
        time.sleep(0.2)
    if demo_processes(group, dagster_home):
        say(f"Dagster did not stop within {STOP_GRACE_SECONDS:.0f} s: killing process group {group}")
        _signal_group(group, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while demo_processes(group, dagster_home) and time.monotonic() < deadline:
            time.sleep(0.2)
    return not demo_processes(group, dagster_home)


def _own_group_with_default_signals() -> None:
    """Runs in the child before `dg`: its own process group (so that it and everything it starts
    can be signalled at once), and default SIGINT/SIGTERM whatever the launcher ignored."""
    os.setpgid(0, 0)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def read_pid_file() -> int | None:
    try:
        return int(PID_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def run_dg_dev(dg: str, ui_port: int, env: dict[str, str], dagster_home: Path) -> int:
    """Runs `dg dev` in its own process group until it exits; Ctrl-C, SIGTERM and SIGHUP sent to
    this process stop the whole group."""
    process = subprocess.Popen(
        [dg, "dev", "--host", HOST, "--port", str(ui_port)],
        cwd=PROJECT_DIR,
        env=env,
        preexec_fn=_own_group_with_default_signals,
    )
    group = process.pid
    PID_FILE.write_text(f"{group}\n")

    def forward(signum: int, _frame: FrameType | None) -> None:
        # Ctrl-C reaches only the terminal's foreground group (this process): pass it on as
        # the same signal, which `dagster dev` handles by stopping its children.
        stop_group(group, signal.SIGINT if signum == signal.SIGINT else signal.SIGTERM, dagster_home)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    try:
        code = process.wait()  # retried after each forwarded signal (PEP 475)
        # `dg dev` may exit before its children: never leave them behind.
        stop_group(group, signal.SIGTERM, dagster_home)
    finally:
        if read_pid_file() == group:
            PID_FILE.unlink(missing_ok=True)
    return code


def stop(server: EmbeddedPostgres, dagster_home: Path) -> int:
    group = read_pid_file()
    if group is not None:
        if demo_processes(group, dagster_home):
            say(f"Stopping Dagster (process group {group})")
            if not stop_group(group, signal.SIGTERM, dagster_home):
                sys.exit(f"error: processes of process group {group} survived SIGKILL: {group_members(group)}")
            say("Dagster stopped")
        PID_FILE.unlink(missing_ok=True)
    server.stop()
    say(f"PostgreSQL stopped (data kept in {DATA_DIR}; delete it to start from scratch)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the dagster-postgres-connection demo.")
    parser.add_argument("--stop", action="store_true", help="stop the demo's Dagster and PostgreSQL and exit")
    args = parser.parse_args()

    pg_port = port_from_env("DEMO_PG_PORT", 55432)
    ui_port = port_from_env("DEMO_UI_PORT", 3000)
    # A fixed DAGSTER_HOME keeps runs across demos (and dg dev from creating a temporary
    # one inside the example project).
    dagster_home = Path(os.environ.get("DAGSTER_HOME") or DEMO_DIR / "dagster-home").resolve()
    server = EmbeddedPostgres(DATA_DIR, version=VERSION, port=pg_port, persistent=True)
    if args.stop:
        return stop(server, dagster_home)

    running = read_pid_file()
    if running is not None and demo_processes(running, dagster_home):
        sys.exit(f"error: the demo's Dagster is already running (process group {running}); "
                 "`bash scripts/demo.sh --stop` stops it")

    started = time.perf_counter()
    try:
        server.start()
    except EmbeddedPostgresError as error:
        sys.exit(
            f"error: {error}\nServer log: {server.log_path}. "
            "Another program on the port? Set DEMO_PG_PORT."
        )
    how = "already running, reused" if server.reused else f"{time.perf_counter() - started:.1f} s"
    say(f"Postgres {VERSION} ready on {HOST}:{server.port} ({how})")

    if server.database_exists(DATABASE):
        say(f"Pagila already loaded in database `{DATABASE}`")
    else:
        started = time.perf_counter()
        server.load_pagila(DATABASE)
        say(f"Pagila loaded ({time.perf_counter() - started:.1f} s)")

    password = reader_password()
    # Every run: cheap, and it keeps the role in step with the password file.
    server.create_readonly_role(READER_ROLE, password, databases=[DATABASE])
    server.require_passwords()
    say(f"Read-only role `{READER_ROLE}` ready (password in {PASSWORD_FILE})")

    if not (PROJECT_DIR / "pyproject.toml").exists():
        sys.exit(f"error: the example project {PROJECT_DIR} is missing")
    dagster_home.mkdir(parents=True, exist_ok=True)
    # Dagster's defaults; an empty file only stops every command warning that there is none.
    (dagster_home / "dagster.yaml").touch()
    env = {
        **os.environ,
        # dg imports the example's package; on a fresh clone it is not pip-installed.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_DIR / "src"), os.environ.get("PYTHONPATH")])),
        "DAGSTER_HOME": str(dagster_home),
        "POSTGRES_CONNECTION_HOST": HOST,
        "POSTGRES_CONNECTION_PORT": str(server.port),
        "POSTGRES_CONNECTION_PASSWORD": password,
    }
    dg = shutil.which("dg", path=str(Path(sys.executable).parent)) or "dg"

    started = time.perf_counter()
    refresh = subprocess.run([dg, "utils", "refresh-defs-state"], cwd=PROJECT_DIR, env=env)
    if refresh.returncode != 0:
        sys.exit(f"error: `dg utils refresh-defs-state` failed in {PROJECT_DIR}")
    print(flush=True)  # dg's progress line does not end with a newline
    say(f"Catalog snapshot refreshed ({time.perf_counter() - started:.1f} s)")

    # One sync, recorded in the demo's instance: row counts, sizes, last updates and the
    # `schema_unchanged` checks are on every asset when the UI opens.
    started = time.perf_counter()
    say(f"Running the sync job `{SYNC_JOB}` once (then every 30 minutes while Dagster runs)")
    sync = subprocess.run([dg, "launch", "--job", SYNC_JOB], cwd=PROJECT_DIR, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if sync.returncode == 0:
        say(f"Synced ({time.perf_counter() - started:.1f} s): row counts, sizes and check results are in the UI")
    else:
        print(sync.stdout[-4000:], file=sys.stderr)
        say(f"warning: `dg launch --job {SYNC_JOB}` failed (output above); the UI opens without its results")

    say(f"Open http://{HOST}:{ui_port}  (Ctrl-C stops Dagster; PostgreSQL keeps running,")
    say("  is reused next time; `bash scripts/demo.sh --stop` stops both)")
    return run_dg_dev(dg, ui_port, env, dagster_home)


if __name__ == "__main__":
    sys.exit(main())
