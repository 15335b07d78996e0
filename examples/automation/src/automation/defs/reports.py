"""Your own assets downstream of Postgres tables: they run when the tables' data changes.

`pagila_prod_change_sensor` reports a runless materialization of `rental` when rows are
inserted, updated or deleted (or it is truncated); `AutomationCondition.eager()` then requests
`rentals_report`, once per change, and never while `rental` is untouched.
"""

import dagster as dg

RENTAL = dg.AssetKey(["pagila_prod", "pagila", "public", "rental"])


@dg.asset(deps=[RENTAL], automation_condition=dg.AutomationCondition.eager())
def rentals_report(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """Stands for whatever you compute from `rental` (a dbt model, a report, an export)."""
    event = context.instance.get_latest_materialization_event(RENTAL)
    materialization = event.asset_materialization if event is not None else None
    version = (materialization.tags or {}).get("dagster/data_version", "") if materialization else ""
    context.log.info(f"`rental` is at data version {version!r}.")
    return dg.MaterializeResult(metadata={"rental_data_version": version})


# Automation conditions are evaluated by an automation sensor in the daemon. Dagster adds a
# `default_automation_condition_sensor` (30 s), which a deployment may have turned off; this one
# is explicit and on.
automation = dg.AutomationConditionSensorDefinition(
    "pagila_prod_automation",
    target=dg.AssetSelection.assets(rentals_report),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
)
