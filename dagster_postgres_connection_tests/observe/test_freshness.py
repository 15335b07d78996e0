"""`freshness:` attaches Dagster's `FreshnessPolicy` (time window) to the matching relations,
from YAML and from Python; bad rules fail at load naming the attribute. (A policy failing on a
table left untouched, evaluated by a real daemon: e2e/test_automation.py.)"""

from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.freshness import TimeWindowFreshnessPolicy

from dagster_postgres_connection.errors import PostgresConfigError
from dagster_postgres_connection_tests.observe.conftest import CONNECTION, build_defs
from dagster_postgres_connection_tests.observe.test_component_sync import attributes, load
from dagster_postgres_connection_tests.test_component_errors import load_error_text
from dagster_postgres_connection_tests.utils import PgTarget, scaffolded_connection

RULES = [
    {"relations": ["public\\.(rental|payment)"], "fail_window": "6h", "warn_window": "1h"},
    # The first matching rule wins: `rental` keeps 6h; whole names, case-insensitive.
    {"relations": ["RENTAL", "film.*"], "fail_window": "1d"},
]


def _policies(defs: dg.Definitions, database: str) -> dict[str, dg.FreshnessPolicy | None]:
    specs = defs.resolve_all_asset_specs()
    return {
        spec.key.path[-1]: spec.freshness_policy
        for spec in specs
        if spec.key.path[:3] == [CONNECTION, database, "public"]
    }


def _window(policy: dg.FreshnessPolicy | None) -> tuple[timedelta, timedelta | None]:
    assert isinstance(policy, TimeWindowFreshnessPolicy)
    return policy.fail_window.to_timedelta(), policy.warn_window.to_timedelta() if policy.warn_window else None


def _check(policies: dict[str, dg.FreshnessPolicy | None]) -> None:
    assert _window(policies["rental"]) == (timedelta(hours=6), timedelta(hours=1))
    assert _window(policies["payment"]) == (timedelta(hours=6), timedelta(hours=1))
    for name in ("film", "film_actor", "film_category", "film_list"):
        assert _window(policies[name]) == (timedelta(days=1), None)
    assert policies["actor"] is None and policies["nicer_but_slower_film_list"] is None


def test_python_freshness_rules_attach_time_window_policies(db: PgTarget, tmp_path: Path) -> None:
    _check(_policies(build_defs(db, tmp_path / "snapshot", freshness=RULES), db.database))


def test_yaml_freshness_rules_attach_the_same_policies(db: PgTarget) -> None:
    with scaffolded_connection(attributes(db, freshness=RULES)) as (sandbox, path):
        _check(_policies(load(sandbox, path), db.database))


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"relations": ["(("], "fail_window": "6h"}, "`freshness.relations` pattern #1 '((' is not a valid Python regular expression"),
        ({"relations": ["x"], "fail_window": "30s"}, "`freshness.fail_window` '30s' is below Dagster's minimum of 1 minute"),
        ({"relations": ["x"], "fail_window": "soon"}, "`freshness.fail_window` 'soon' is not a duration"),
        ({"relations": ["x"], "fail_window": "1h", "warn_window": "2h"}, "`freshness.warn_window` '2h' must be at least 1 minute and shorter than `fail_window` '1h'"),
    ],
    ids=["regex", "below-minimum", "not-a-duration", "warn-after-fail"],
)
def test_bad_freshness_rules_name_the_attribute_and_the_fix(
    db: PgTarget, tmp_path: Path, rule: dict[str, object], message: str
) -> None:
    with pytest.raises(PostgresConfigError) as raised:
        build_defs(db, tmp_path / "snapshot", freshness=[rule])
    assert message in str(raised.value)
    assert message in load_error_text(attributes(db, freshness=[rule]))
