"""Bad defs.yaml input fails at load with a message naming the attribute and the fix.

None of these cases needs a database: they fail before any connection is attempted.
"""

from typing import Any

import pytest
from dagster.components.testing import create_defs_folder_sandbox

from dagster_postgres_connection import PostgresConnectionComponent

BASE = {"name": "conn", "host": "localhost", "username": "reader", "password": "{{ env.DPC_TEST_PW }}"}


def load_error_text(attributes: dict[str, Any]) -> str:
    """Loads a component with these attributes; returns every message of the error chain."""
    with create_defs_folder_sandbox() as sandbox:
        path = sandbox.scaffold_component(
            component_cls=PostgresConnectionComponent,
            defs_yaml_contents={"type": "dagster_postgres_connection.PostgresConnectionComponent", "attributes": attributes},
        )
        with pytest.raises(Exception) as raised:
            with sandbox.load_component_and_build_defs(defs_path=path):
                pass
    messages, error = [], raised.value
    while error is not None:
        messages.append(str(error))
        error = error.__cause__ or error.__context__
    return "\n".join(messages)


@pytest.fixture(autouse=True)
def password_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DPC_TEST_PW", "not-used")
    monkeypatch.delenv("DPC_MISSING_PW", raising=False)


@pytest.mark.parametrize(
    "attributes, fragments",
    [
        ({**BASE, "filters": {"tables": {"include": ["tmp_("]}}}, ["filters", "tables", "include", "'tmp_('", "not a valid Python regular expression"]),
        ({**BASE, "hostname": "db"}, ["attributes.hostname", "Extra inputs are not permitted"]),
        ({**BASE, "filters": {"schemas": {"includes": ["x"]}}}, ["includes", "Extra inputs are not permitted"]),
        ({**BASE, "password": "{{ env.DPC_MISSING_PW }}"}, ["`password`", "`DPC_MISSING_PW` is not set"]),
        ({**{k: v for k, v in BASE.items() if k != "password"}, "password_env_var": "DPC_MISSING_PW"}, ["`password_env_var`", "`DPC_MISSING_PW` is not set"]),
        ({**BASE, "password": "hunter2"}, ["`password` must name an environment variable", "{{ env.POSTGRES_CONNECTION_PASSWORD }}"]),
        ({**BASE, "password_env_var": "DPC_TEST_PW"}, ["exactly one of `password`", "`password_env_var`"]),
        ({k: v for k, v in BASE.items() if k != "password"}, ["exactly one of `password`"]),
        ({**BASE, "port": 99999}, ["`port` 99999 is out of range", "1-65535"]),
        ({**BASE, "name": "pagila-prod"}, ["`name` 'pagila-prod'", "letters, digits and underscores", "pagila_prod"]),
        ({**BASE, "name": ""}, ["`name` is empty"]),
    ],
    ids=["bad-regex", "unknown-attribute", "unknown-filter-key", "missing-env-var", "missing-password-env-var",
         "literal-password", "both-passwords", "no-password", "bad-port", "bad-name", "empty-name"],
)
def test_bad_input_fails_at_load_naming_attribute_and_fix(attributes: dict[str, Any], fragments: list[str]) -> None:
    text = load_error_text(attributes)
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in:\n{text}"


def test_literal_password_never_echoed_back() -> None:
    text = load_error_text({**BASE, "password": "hunter2-literal"})
    assert "hunter2-literal" not in text


def test_a_bad_pattern_is_one_error_without_a_template_clause() -> None:
    """Dagster types each attribute `T | str` (for templates); a bad regex used to get a second,
    spurious "Input should be a valid string" error for the `str` branch."""
    text = load_error_text({**BASE, "filters": {"tables": {"include": ["film("]}}, "profiling": {"relations": {"include": ["x("]}}})
    assert "2 validation errors for PostgresConnectionComponentModel" in text, text
    assert "pattern #1 'film(' is not a valid Python regular expression" in text
    assert "pattern #1 'x(' is not a valid Python regular expression" in text
    assert "valid string" not in text and ".str" not in text
    assert "attributes.filters.tables.include" in text and "PostgresFilters." not in text


def test_an_empty_nested_attribute_is_one_error() -> None:
    """`filters:` left empty in YAML is null: one error for the model, none per union member."""
    text = load_error_text({**BASE, "filters": None})
    assert "1 validation error for PostgresConnectionComponentModel" in text, text
    assert "valid dictionary or instance of PostgresFilters" in text


def test_attributes_may_still_be_templates(monkeypatch: pytest.MonkeyPatch) -> None:
    """The single-branch validation keeps the template branch: a string is validated as a template."""
    from dagster_postgres_connection.components.connection_component.component import (
        PostgresConnectionComponent as Component,
    )

    model = Component.model()
    assert model.model_validate({**BASE, "filters": "{{ env.X }}"}).filters == "{{ env.X }}"  # type: ignore[attr-defined]
    assert model.model_validate({**BASE, "profiling": None}).profiling is None  # type: ignore[attr-defined]

