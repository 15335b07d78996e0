"""Documentation that users read: `dg`'s component docs and the README.

`dg utils inspect-component` and `dg list components` run as subprocesses, as a user runs them,
so a description lost between our pydantic fields and Dagster's derived YAML model shows here.
The README's reference table must list every attribute with its default, and its worked filter
examples must select, on the real Pagila, the number of assets they claim.
"""

import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import dagster_postgres_connection
from dagster_postgres_connection import PostgresConnectionComponent, PostgresMetadataSet
from dagster_postgres_connection.assets import relation_props
from dagster_postgres_connection.catalog.models import PostgresCatalogSnapshot
from dagster_postgres_connection.catalog.reader import read_catalog
from dagster_postgres_connection.config import (
    PostgresConnectionSettings,
    PostgresFilters,
    PostgresPassword,
)
from dagster_postgres_connection_tests.utils import REPO_ROOT, PgTarget

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
    assert summaries[COMPONENT] == (PostgresConnectionComponent.__doc__ or "").strip().splitlines()[0]


# --- README ---------------------------------------------------------------------------------

README = REPO_ROOT / "README.md"
WORKED_EXAMPLE = re.compile(r"```yaml\n(filters:\n.*?)```\n→ (\d+) assets", re.DOTALL)


def readme_section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def reference_rows() -> dict[str, list[str]]:
    """`attribute -> [default, what it does, example]` from the configuration reference table."""
    rows = {}
    for line in readme_section("Configuration reference").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`") and cells[0].endswith("`"):
            rows[cells[0].strip("`")] = cells[1:]
    return rows


def test_readme_reference_lists_every_attribute_with_its_default() -> None:
    rows = reference_rows()
    fields = PostgresConnectionComponent.model_fields
    assert set(rows) == set(fields), "README rows vs component fields differ"
    for name, field in fields.items():
        default_cell = rows[name][0]
        if field.is_required():
            assert default_cell == "required", name
        elif isinstance(field.default, bool):
            assert f"`{str(field.default).lower()}`" in default_cell, name
        elif isinstance(field.default, (int, float, str)):
            assert f"`{field.default}`" in default_cell, (name, field.default, default_cell)


def test_readme_documents_every_metadata_key() -> None:
    section = readme_section("What each asset carries")
    missing = [field for field in PostgresMetadataSet.model_fields if f"{field}`" not in section]
    assert not missing, f"PostgresMetadataSet keys missing from the README: {missing}"


def test_readme_links_and_images_exist() -> None:
    text = README.read_text()
    targets = [t for t in re.findall(r"\]\(([^)#]+)\)", text) if not t.startswith(("http://", "https://"))]
    assert any(t.endswith(".png") for t in targets)
    missing = [t for t in targets if not (REPO_ROOT / t).exists()]
    assert not missing, missing
    for script in ("scripts/demo.sh", "scripts/test.sh"):
        assert f"bash {script}" in text and (REPO_ROOT / script).exists()


@pytest.fixture(name="pagila_snapshot", scope="module")
def pagila_snapshot_fixture(pagila: PgTarget) -> PostgresCatalogSnapshot:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DPC_DOCS_PASSWORD", pagila.password)
        return read_catalog(pagila_settings(pagila, PostgresFilters()))


def pagila_settings(pagila: PgTarget, filters: PostgresFilters) -> PostgresConnectionSettings:
    return PostgresConnectionSettings(
        name="pagila_prod", host=pagila.host, port=pagila.port, username=pagila.user,
        password=PostgresPassword(env_var="DPC_DOCS_PASSWORD"), databases=[pagila.database], filters=filters,
    )


def test_readme_filter_examples_select_what_they_say(
    pagila: PgTarget, pagila_snapshot: PostgresCatalogSnapshot
) -> None:
    section = readme_section("Filters")
    unfiltered = int(re.search(r"on Pagila \((\d+) assets without filters", section).group(1))  # type: ignore[union-attr]
    assert len(relation_props(pagila_snapshot, pagila_settings(pagila, PostgresFilters()))) == unfiltered

    examples = WORKED_EXAMPLE.findall(section)
    assert len(examples) >= 5
    for block, count in examples:
        filters = PostgresFilters(**yaml.safe_load(block)["filters"])
        selected = sorted(p.name for p in relation_props(pagila_snapshot, pagila_settings(pagila, filters)))
        assert len(selected) == int(count), (block, selected)


# --- docstrings -----------------------------------------------------------------------------


def public_api() -> dict[str, object]:
    """Classes and functions `dagster_postgres_connection` exports (`__all__`, loaded lazily)."""
    exported = {name: getattr(dagster_postgres_connection, name) for name in dagster_postgres_connection.__all__}
    return {
        name: value
        for name, value in exported.items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and value.__module__.startswith("dagster_postgres_connection")
    }


def undocumented_members(cls: type) -> list[str]:
    missing = []
    for name, member in vars(cls).items():
        if name.startswith("_"):
            continue
        function = getattr(member, "__func__", None) or getattr(member, "fget", None) or getattr(member, "func", None) or member
        if inspect.isfunction(function) and not inspect.getdoc(function):
            missing.append(f"{cls.__name__}.{name}")
    return missing


def test_public_api_has_docstrings() -> None:
    api = public_api()
    assert {"PostgresConnectionComponent", "build_postgres_connection_defs", "DagsterPostgresTranslator"} <= set(api)
    missing = [name for name, value in api.items() if not (value.__doc__ or "").strip()]
    for value in api.values():
        if inspect.isclass(value):
            missing += undocumented_members(value)
    assert not missing, f"public API without a docstring: {missing}"
