"""Configuration validation: each mistake names the attribute and the fix."""

import re

import dagster as dg
import pytest

from dagster_postgres_connection import build_postgres_connection_defs
from dagster_postgres_connection.config import PostgresConnectionSettings, PostgresPassword
from dagster_postgres_connection.errors import PostgresConfigError
from dagster_postgres_connection.factory import build_postgres_connection_settings


def settings(**overrides: object) -> PostgresConnectionSettings:
    values: dict = {"name": "conn", "host": "localhost", "username": "reader", "password": dg.EnvVar("X")}
    values.update(overrides)
    return build_postgres_connection_settings(**values)


@pytest.mark.parametrize(
    "overrides, fragments",
    [
        ({"port": 70000}, ["`port`", "70000", "1-65535"]),
        ({"port": 0}, ["`port`", "1-65535"]),
        ({"name": ""}, ["`name`", "empty"]),
        ({"name": "pagila-prod.eu"}, ["`name`", "letters, digits and underscores", "pagila_prod_eu"]),
        ({"host": " "}, ["`host`", "empty"]),
        ({"databases": []}, ["`databases`", "empty list"]),
        ({"filters": {"tables": {"include": ["tmp_(" ]}}}, ["filters.tables.include", "'tmp_('", "not a valid Python regular expression"]),
        ({"filters": {"schemas": {"includes": ["x"]}}}, ["filters.schemas.includes", "Extra inputs are not permitted"]),
        ({"sslmode": "sometimes"}, ["`sslmode`"]),
    ],
    ids=["port-high", "port-zero", "empty-name", "bad-name", "empty-host", "empty-databases", "bad-regex", "unknown-filter-key", "bad-sslmode"],
)
def test_bad_settings_name_the_attribute_and_fix(overrides: dict, fragments: list[str]) -> None:
    with pytest.raises(PostgresConfigError) as error:
        settings(**overrides)
    for fragment in fragments:
        assert fragment in str(error.value)


def test_literal_password_is_refused_in_python() -> None:
    with pytest.raises(PostgresConfigError, match=re.escape('`password` must be `dg.EnvVar("NAME")`')):
        build_postgres_connection_defs(name="c", host="h", username="u", password="hunter2")  # type: ignore[arg-type]


def test_missing_password_variable_is_named_when_connecting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DPC_NOT_SET", raising=False)
    with pytest.raises(PostgresConfigError, match="`DPC_NOT_SET` holding the password is not set"):
        PostgresPassword(env_var="DPC_NOT_SET").get()


def test_password_object_never_shows_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DPC_SECRET", "s3cr3t-value")
    resolved = settings(password=dg.EnvVar("DPC_SECRET"))
    for text in (repr(resolved), str(resolved), resolved.model_dump_json(), repr(resolved.password)):
        assert "s3cr3t-value" not in text
    assert resolved.password.get() == "s3cr3t-value"
