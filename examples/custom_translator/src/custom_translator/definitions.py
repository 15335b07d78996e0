from pathlib import Path

import dagster as dg

from dagster_postgres_connection import link_to_existing_assets


@dg.definitions
def defs() -> dg.Definitions:
    # Relations that an asset below already builds (same `dagster/table_name`) are not emitted
    # twice: the views that read them depend on the code asset instead.
    return link_to_existing_assets(dg.load_from_defs_folder(path_within_project=Path(__file__).parent))
