"""Documentation that users read: `dg`'s component docs and the README's reference.

`dg utils inspect-component` and `dg list components` run as subprocesses, as a user runs them,
so a description lost between our pydantic fields and Dagster's derived YAML model shows here.
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dagster_postgres_connection import PostgresConnectionComponent

COMPONENT = "dagster_postgres_connection.PostgresConnectionComponent"
DG = str(Path(sys.executable).with_name("dg"))


def run_dg(*args: str) -> str:
    result = subprocess.run(
        [DG, *args], capture_output=True, text=True, timeout=180, env={**os.environ, "DAGSTER_DISABLE_TELEMETRY": "1"}
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(name="yaml_schema", scope="module")
def yaml_schema_fixture() -> dict[str, Any]:
    """The `attributes:` JSON schema that `dg utils inspect-component` prints."""
    schema = json.loads(run_dg("utils", "inspect-component", COMPONENT, "--defs-yaml-json-schema"))
    return schema["properties"]["attributes"]


def test_every_attribute_is_described_in_dg(yaml_schema: dict[str, Any]) -> None:
    properties = yaml_schema["properties"]
    assert set(properties) == set(PostgresConnectionComponent.model_fields)
    undescribed = sorted(name for name, field in properties.items() if not field.get("description"))
    assert not undescribed, f"attributes without a description in `dg utils inspect-component`: {undescribed}"


def test_filter_fields_are_described_in_dg(yaml_schema: dict[str, Any]) -> None:
    definitions = yaml_schema["$defs"]
    for model in ("PostgresFilters", "NameFilter"):
        fields = definitions[model]["properties"]
        assert fields and all(field.get("description") for field in fields.values()), (model, fields)


def test_defaults_and_examples_reach_dg(yaml_schema: dict[str, Any]) -> None:
    properties = yaml_schema["properties"]
    assert properties["port"]["default"] == 5432
    assert properties["port"]["examples"] == [5432]
    assert properties["connect_timeout_seconds"]["default"] == 10
    assert properties["databases"]["examples"] == [["pagila"]]
    assert set(yaml_schema["required"]) == {"name", "host", "username"}


def test_component_is_listed_with_its_summary() -> None:
    listed = json.loads(run_dg("list", "components", "--json"))["items"]
    summaries = {item["key"]: item["summary"] for item in listed}
    assert summaries[COMPONENT] == PostgresConnectionComponent.__doc__.strip().splitlines()[0]
