"""`dg scaffold defs dagster_postgres_connection.PostgresConnectionComponent NAME --host ...`.

Writes a commented `defs.yaml` for a new connection named after its folder (`defs_yaml.py`
renders it, for `dagster-postgres-connection init` too).
"""

import dagster as dg
from dagster.components.component_scaffolding import scaffold_component

from dagster_postgres_connection.components.connection_component.defs_yaml import (
    COMPONENT_TYPE as COMPONENT_TYPE,
    PostgresConnectionScaffolderParams,
    default_password_env_var,
    render_defs_yaml,
)
from dagster_postgres_connection.config import suggest_connection_name


class PostgresConnectionScaffolder(dg.Scaffolder[PostgresConnectionScaffolderParams]):
    """Scaffolds a connection whose `name` is the new folder's name."""

    @classmethod
    def get_scaffold_params(cls) -> type[PostgresConnectionScaffolderParams]:
        return PostgresConnectionScaffolderParams

    def scaffold(self, request: dg.ScaffoldRequest[PostgresConnectionScaffolderParams]) -> None:
        params = request.params or PostgresConnectionScaffolderParams()
        name = suggest_connection_name(request.target_path.name)
        if request.scaffold_format == "yaml" and not request.append:
            (request.target_path / "defs.yaml").write_text(render_defs_yaml(name, params), encoding="utf-8")
        else:  # Dagster's own writer: `component.py`, or another document appended to defs.yaml
            scaffold_component(request, _attributes(name, params))


def _attributes(name: str, params: PostgresConnectionScaffolderParams) -> dict[str, object]:
    attributes: dict[str, object] = {
        "name": name,
        "host": params.host,
        "port": params.port,
        "username": params.username,
        "password_env_var": params.password_env_var or default_password_env_var(name),
    }
    if params.databases:
        attributes["databases"] = list(params.databases)
    return attributes
