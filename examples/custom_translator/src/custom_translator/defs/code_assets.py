"""Assets this project's code builds in Postgres; the connection links to them by table name."""

import dagster as dg


@dg.asset(
    key=["loaders", "film"],
    group_name="loaders",
    kinds={"python", "postgres"},
    # `schema.table` or `database.schema.table`, compared case-insensitively.
    metadata={"dagster/table_name": "public.film"},
)
def film() -> None:
    """Loads the film catalogue from the distributor's feed into `public.film`."""
    raise NotImplementedError("The example shows the wiring; a real loader writes public.film here.")


@dg.asset(
    key=["reports", "rental_by_category"],
    group_name="reports",
    kinds={"sql", "postgres"},
    deps=[dg.AssetKey(["warehouse", "public", "payment"])],
    metadata={"dagster/table_name": "pagila.public.rental_by_category"},
)
def rental_by_category() -> None:
    """`REFRESH MATERIALIZED VIEW public.rental_by_category`, on a schedule of your choice."""
    raise NotImplementedError("The example shows the wiring; a real asset runs the REFRESH here.")
