"""The dbt models run when the Postgres tables they read change.

`pagila_prod_change_sensor` (`change_sensor:` in `pagila_prod/defs.yaml`) reports a runless
materialization of a table whose data changed, e.g. `rental` after an INSERT; the dbt models
carry `AutomationCondition.eager()` (`translation:` in `pagila_dbt/defs.yaml`), so this sensor
then requests the models that read it, and the models downstream of those, in one `dbt build`.
"""

import dagster as dg

# Automation conditions are evaluated by an automation sensor in the daemon. Dagster adds a
# `default_automation_condition_sensor`, which a deployment may have turned off; this one is
# explicit and on.
automation = dg.AutomationConditionSensorDefinition(
    "pagila_analytics_automation",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
)
