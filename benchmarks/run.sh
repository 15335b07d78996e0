#!/usr/bin/env bash
# One command for the whole comparison (not part of scripts/test.sh or CI):
#   bash benchmarks/run.sh [--sizes 1000,10000] [--with-50k] [--skip-datahub] [--skip-naive]
# Uses the project's .venv (created with the dev extra when missing); run.py installs DataHub
# into benchmarks/.venv-datahub on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
  .venv/bin/pip install -q -e '.[dev]'
fi
exec .venv/bin/python benchmarks/run.py "$@"
