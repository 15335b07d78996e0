from pathlib import Path

import dagster as dg

from dagster_postgres_connection import link_to_existing_assets


@dg.definitions
def defs() -> dg.Definitions:
    # One graph: the tables and views dbt builds are dbt's assets (the connection emits no
    # second asset for them), dbt's sources are the connection's table assets, and the views
    # the connection finds downstream of dbt models depend on the dbt assets.
    return link_to_existing_assets(dg.load_from_defs_folder(path_within_project=Path(__file__).parent))
