"""The quickstart's Postgres connection in Python, without `defs.yaml`.

`dg.EnvVar` names the password's variable: it is read when connecting, never held in code.
The catalog snapshot is kept in `.local_defs_state/` (git-ignored) and loaded from there
without contacting Postgres; delete it, or run the connection's sync job, to re-read the catalog.
"""

import os
from pathlib import Path

import dagster as dg

from dagster_postgres_connection import build_postgres_connection_defs

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dg.definitions
def defs() -> dg.Definitions:
    # Inside the function, so importing this module never connects to Postgres.
    return build_postgres_connection_defs(
        name="pagila_prod",
        host=os.environ.get("POSTGRES_CONNECTION_HOST", "localhost"),
        port=int(os.environ.get("POSTGRES_CONNECTION_PORT", "5432")),
        username="dagster_reader",
        password=dg.EnvVar("POSTGRES_CONNECTION_PASSWORD"),
        databases=["pagila"],
        snapshot_path=PROJECT_ROOT / ".local_defs_state" / "pagila_prod.snapshot",
    )
