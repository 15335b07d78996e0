"""A new connection's `defs.yaml`: the scaffolder's options and the file they render.

Free of `dagster`, so `dagster-postgres-connection init` reads its defaults without importing
it; `dg scaffold defs` (scaffolder.py) and `init` write the very same file.
"""

import json

from pydantic import BaseModel, Field, field_validator

from dagster_postgres_connection.config import PostgresConnectionSettings

COMPONENT_TYPE = "dagster_postgres_connection.PostgresConnectionComponent"


def default_password_env_var(connection_name: str) -> str:
    """`pagila_prod` -> `PAGILA_PROD_PASSWORD`: one variable per connection, so they never clash."""
    return f"{connection_name.upper()}_PASSWORD"


class PostgresConnectionScaffolderParams(BaseModel):
    """Options of `dg scaffold defs dagster_postgres_connection.PostgresConnectionComponent NAME`."""

    host: str = Field(default="localhost", description="Hostname or IP of the Postgres server.")
    port: int = Field(
        default=PostgresConnectionSettings.model_fields["port"].default,
        description=PostgresConnectionSettings.model_fields["port"].description,
    )
    username: str = Field(default="dagster_reader", description="Read-only role to connect as.")
    password_env_var: str | None = Field(
        default=None,
        description="Environment variable holding the password. Default: `<NAME>_PASSWORD`.",
    )
    databases: list[str] | None = Field(
        default=None, description="Databases to read (repeat the option). Default: every database."
    )

    @field_validator("databases", mode="before")
    @classmethod
    def _json_list(cls, value: object) -> object:
        # `--databases '["a","b"]'` reaches us as one string item; `--databases a --databases b` as a list.
        if isinstance(value, list) and len(value) == 1 and str(value[0]).lstrip().startswith("["):
            return json.loads(value[0])
        return value


def render_defs_yaml(name: str, params: PostgresConnectionScaffolderParams) -> str:
    """The `defs.yaml` of a new connection, with the options a user edits next as comments."""
    password_env_var = params.password_env_var or default_password_env_var(name)
    databases = (
        f"databases: {json.dumps(list(params.databases))}"
        if params.databases
        else "# databases: [pagila]  # default: every database the role may connect to"
    )
    return f"""\
type: {COMPONENT_TYPE}

attributes:
  name: {name}
  host: {json.dumps(params.host)}
  port: {params.port}
  username: {json.dumps(params.username)}
  # Read from the environment (e.g. the project's .env) when connecting; never written here.
  password: "{{{{ env.{password_env_var} }}}}"
  {databases}
  # Regular expressions, case-insensitive, matching whole names; exclude wins over include.
  # `dagster-postgres-connection preview <this file>` shows what they select and why.
  # filters:
  #   schemas: {{include: ["public"]}}
  #   tables: {{exclude: ["tmp_.*"]}}
"""
