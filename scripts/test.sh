#!/usr/bin/env bash
# README "command 2": set up (idempotent) and run the whole test suite.
# Extra arguments go to pytest, e.g. scripts/test.sh -k pagila -x
# DPC_PG_VERSIONS=18 runs against PostgreSQL 18 only (default: 16 and 18).
set -euo pipefail
# shellcheck source=scripts/_bootstrap.sh
source "$(dirname "${BASH_SOURCE[0]}")/_bootstrap.sh"

dpc_bootstrap
dpc_ensure_chromium
dpc_ensure_debian_postgres
cd "$DPC_REPO_ROOT"

status=0
"$DPC_PYTHON" -m pytest -ra "$@" || status=$?
if [ "$status" -eq 5 ]; then
    # pytest's "no tests collected": a typo in -k or a broken collection must not pass CI.
    dpc_die "pytest collected no tests (exit 5)"
fi
exit "$status"
