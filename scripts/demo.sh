#!/usr/bin/env bash
# README "command 1": PostgreSQL 18 with Pagila on 127.0.0.1:55432 and the Dagster UI on
# http://127.0.0.1:3000 (DEMO_PG_PORT / DEMO_UI_PORT change the ports).
# Postgres keeps running after Ctrl-C and is reused next time; scripts/demo.sh --stop stops
# Dagster (also when started in the background) and Postgres.
set -euo pipefail
# shellcheck source=scripts/_bootstrap.sh
source "$(dirname "${BASH_SOURCE[0]}")/_bootstrap.sh"

# Stopping needs no install step: only the first run sets the venv up.
if [ "${1:-}" != "--stop" ] || [ ! -x "$DPC_PYTHON" ]; then
    dpc_bootstrap
fi
exec "$DPC_PYTHON" "$DPC_REPO_ROOT/scripts/demo.py" "$@"
