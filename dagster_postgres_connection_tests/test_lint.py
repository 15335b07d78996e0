"""`ruff check` runs as part of the suite, so scripts/test.sh and CI enforce it."""

import subprocess
import sys

import pytest

from dagster_postgres_connection_tests.utils import REPO_ROOT


def test_ruff_check_is_clean() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format=concise", "."],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"ruff check found problems:\n{result.stdout}{result.stderr}", pytrace=False)
