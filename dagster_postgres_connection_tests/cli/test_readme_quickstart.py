"""The README's quickstart and what the CLI prints tell one story.

The README's `init` command is run as written; the steps it prints must be the README's next
code block, line for line, and the project's own README must show them too. The `psql` line
must reach a non-default server (`-h`/`-p`), and `grant-sql` must run with the README's flags.
"""

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from dagster_postgres_connection.cli import cli
from dagster_postgres_connection_tests.utils import REPO_ROOT

README = REPO_ROOT / "README.md"


def quickstart_blocks() -> list[list[str]]:
    """The bash code blocks of the "Quickstart against your own Postgres" section, dedented."""
    text = README.read_text()
    section = text.split("## Quickstart against your own Postgres", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^ *```bash\n(.*?)^ *```", section, flags=re.MULTILINE | re.DOTALL)
    return [[line.strip() for line in block.splitlines() if line.strip()] for block in blocks]


def test_readme_shows_the_steps_init_prints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = quickstart_blocks()
    init_block = next(i for i, block in enumerate(blocks) if block[0].startswith("dagster-postgres-connection init "))
    args = shlex.split(blocks[init_block][0])[1:]
    assert blocks[init_block][1] == f"cd {args[1]}"

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    printed = result.output.split(":\n", 1)[1].splitlines()  # after "Next, in <dir>:"
    assert printed == blocks[init_block + 1]
    assert printed[0] == 'pip install -e ".[dev]"              # the project, with dg and the webserver (or: uv sync --extra dev)'
    assert "(or: dg utils refresh-defs-state)" in printed[4]
    project_readme = (tmp_path / args[1] / "README.md").read_text()
    assert "\n".join(printed) in project_readme


def test_readme_grants_reach_a_non_default_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (grant_block,) = [block for block in quickstart_blocks() if block[0].startswith("dagster-postgres-connection grant-sql")]
    psql = shlex.split(grant_block[1].split("#")[0])
    assert psql[0] == "psql" and "-h" in psql and "-p" in psql and psql[psql.index("-f") + 1] == "grants.sql"

    monkeypatch.chdir(tmp_path)
    generate = shlex.split(grant_block[0].split(">")[0])[1:]
    result = CliRunner().invoke(cli, generate, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "GRANT CONNECT ON DATABASE analytics TO dagster_reader;" in result.output
