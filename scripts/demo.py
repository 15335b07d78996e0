"""The demo behind scripts/demo.sh: embedded PostgreSQL 18 + Pagila + ``dg dev``.

Starts (or reuses) PostgreSQL 18 on 127.0.0.1:55432 with its data in ``.tmp/demo-pg/``,
loads Pagila into ``pagila`` once, creates the read-only role ``dagster_reader`` with a
password generated once (``.tmp/demo-pg/reader_password``), refreshes the snapshot of
``examples/quickstart`` and replaces itself with ``dg dev`` on 127.0.0.1:3000.

Environment: ``DEMO_PG_PORT`` (55432), ``DEMO_UI_PORT`` (3000).
"""

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

from dagster_postgres_connection.testing import EmbeddedPostgres, EmbeddedPostgresError

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = REPO_ROOT / ".tmp" / "demo-pg"
PASSWORD_FILE = DATA_DIR / "reader_password"
PROJECT_DIR = REPO_ROOT / "examples" / "quickstart"
VERSION = 18
DATABASE = "pagila"
READER_ROLE = "dagster_reader"
HOST = "127.0.0.1"


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


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the dagster-postgres-connection demo.")
    parser.add_argument("--stop", action="store_true", help="stop the demo's PostgreSQL and exit")
    args = parser.parse_args()

    pg_port = port_from_env("DEMO_PG_PORT", 55432)
    ui_port = port_from_env("DEMO_UI_PORT", 3000)
    server = EmbeddedPostgres(DATA_DIR, version=VERSION, port=pg_port, persistent=True)
    if args.stop:
        server.stop()
        say(f"PostgreSQL stopped (data kept in {DATA_DIR}; delete it to start from scratch)")
        return 0

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
    # A fixed DAGSTER_HOME keeps runs across demos (and dg dev from creating a temporary
    # one inside the example project).
    dagster_home = Path(os.environ.get("DAGSTER_HOME") or REPO_ROOT / ".tmp" / "dagster-home")
    dagster_home.mkdir(parents=True, exist_ok=True)
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

    say(f"Open http://{HOST}:{ui_port}  (Ctrl-C stops Dagster; PostgreSQL keeps running,")
    say("  is reused next time, and `scripts/demo.sh --stop` stops it)")
    os.chdir(PROJECT_DIR)
    os.execve(dg, [dg, "dev", "--host", HOST, "--port", str(ui_port)], env)


if __name__ == "__main__":
    sys.exit(main())
