"""What a user reads when a code location loads: each warning once, one line per bad pattern.

`dg check defs` runs the load the way a code server does, which builds the definitions twice
(see `load_warnings.py`): warnings must still appear once, and Dagster's own `BetaWarning` for
`execution_type` not at all. Glob-like filter patterns get a warning with the regex to write.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dagster_postgres_connection.config import PostgresFilters
from dagster_postgres_connection.filter_hints import glob_suggestion, glob_warnings
from dagster_postgres_connection_tests.test_examples import EXAMPLES, IGNORED, example_env, run_dg
from dagster_postgres_connection_tests.utils import PgTarget

DEFS_YAML = Path("src", "quickstart", "defs", "pagila_prod", "defs.yaml")
CLI = str(Path(sys.executable).with_name("dagster-postgres-connection"))


@pytest.mark.parametrize(
    "pattern, suggestion",
    [
        ("film*", "film.*"),
        ("sales_*", "sales_.*"),
        ("public.film*", "public.film.*"),
        ("*_tmp", None),  # not a valid regex at all: the load fails on it, naming it
        ("film.*", None),
        ("public\\.film", None),
        ("[a-z]*", None),
        ("(film|actor)*", None),
        ("tmp\\d*", None),
        ("films?", None),  # `?` is a common regex quantifier: never taken for a glob
    ],
)
def test_glob_like_patterns_get_the_regex_to_write(pattern: str, suggestion: str | None) -> None:
    assert glob_suggestion(pattern) == suggestion


def test_glob_warning_names_the_attribute_the_pattern_and_the_fix() -> None:
    filters = PostgresFilters.model_validate({"tables": {"include": ["film*", "actor"]}, "schemas": {"exclude": ["tmp_*"]}})
    assert glob_warnings(filters) == [
        "`filters.schemas.exclude`: pattern 'tmp_*' looks like a glob, but filters are regular expressions "
        "matching the whole name, where `*` repeats the character before it. Write 'tmp_.*' to match any characters there.",
        "`filters.tables.include`: pattern 'film*' looks like a glob, but filters are regular expressions "
        "matching the whole name, where `*` repeats the character before it. Write 'film.*' to match any characters there.",
    ]


@pytest.fixture(name="quickstart")
def quickstart_fixture(tmp_path: Path, pagila: PgTarget) -> tuple[Path, dict[str, str]]:
    """A copy of the quickstart project with its snapshot taken, and its environment."""
    project = tmp_path / "quickstart"
    shutil.copytree(EXAMPLES / "quickstart", project, ignore=IGNORED)
    env = example_env(project, pagila, tmp_path / "dagster_home")
    synced = subprocess.run([CLI, "sync", str(DEFS_YAML)], cwd=project, env=env, capture_output=True, text=True, timeout=120)
    assert synced.returncode == 0, synced.stdout + synced.stderr
    return project, env


def _add_filters(project: Path, filters: str) -> None:
    defs_yaml = project / DEFS_YAML
    defs_yaml.write_text(defs_yaml.read_text() + f"  filters: {filters}\n")


@pytest.mark.slow
def test_dg_check_defs_prints_each_warning_once_and_no_beta_warning(quickstart: tuple[Path, dict[str, str]]) -> None:
    project, env = quickstart
    _add_filters(project, '{tables: {include: ["film*"]}}')
    env = {key: value for key, value in env.items() if key != "POSTGRES_CONNECTION_PASSWORD"}

    checked = run_dg(project, env, "check", "defs")
    output = checked.stdout + checked.stderr
    assert checked.returncode == 0, output
    assert output.count("the environment variable `POSTGRES_CONNECTION_PASSWORD` is not set") == 1, output
    assert output.count("pattern 'film*' looks like a glob") == 1, output
    assert "Write 'film.*'" in output
    assert "BetaWarning" not in output


@pytest.mark.slow
def test_dg_check_defs_reports_a_bad_regex_once(quickstart: tuple[Path, dict[str, str]]) -> None:
    project, env = quickstart
    _add_filters(project, '{tables: {include: ["film("]}}')

    checked = run_dg(project, env, "check", "defs")
    output = checked.stdout + checked.stderr
    assert checked.returncode != 0
    assert "1 validation error for PostgresConnectionComponentModel" in output, output
    # The path is the attribute's own, and its line is the `include:` line itself.
    assert "`attributes.filters.tables.include at " in output and "PostgresFilters" not in output
    assert re.search(r"defs\.yaml:\d+`", output)
    assert "pattern #1 'film(' is not a valid Python regular expression" in output
    # The `str` branch of Dagster's `T | str` attribute types used to add a second, spurious clause.
    assert "Input should be a valid string" not in output and "attributes.filters.str" not in output
