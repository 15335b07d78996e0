# shellcheck shell=bash
# Shared set-up for scripts/test.sh and scripts/demo.sh; sourced, not run.
# Gives a .venv with this project installed editable with its [test] extra (which includes
# [dev]: the embedded PostgreSQL, dg, the webserver). Idempotent and fast when nothing changed:
# pip runs again only when pyproject.toml changed since the last successful install.

DPC_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DPC_VENV="$DPC_REPO_ROOT/.venv"
DPC_PYTHON="$DPC_VENV/bin/python"

dpc_log() { printf '==> %s\n' "$*" >&2; }
dpc_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

dpc_bootstrap() {
    local python="${PYTHON:-python3}"
    if [ ! -x "$DPC_PYTHON" ]; then
        command -v "$python" >/dev/null 2>&1 || dpc_die "$python not found: install Python 3.10+ (or set PYTHON=/path/to/python3)"
        "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
            || dpc_die "Python 3.10+ is required; $python is $("$python" --version 2>&1)"
        dpc_log "Creating $DPC_VENV"
        "$python" -m venv "$DPC_VENV" || dpc_die "could not create the venv (on Debian: apt-get install python3-venv)"
    fi
    local stamp="$DPC_VENV/.dpc-install-stamp" want
    want="$(sha256sum "$DPC_REPO_ROOT/pyproject.toml" | cut -d' ' -f1) -e .[test]"
    # The metadata check catches a venv where someone uninstalled the project since.
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] \
        || ! "$DPC_PYTHON" -c 'import importlib.metadata as m; m.version("dagster-postgres-connection")' 2>/dev/null; then
        dpc_log "Installing the project with its [test] extra into .venv (pip, quiet)"
        "$DPC_PYTHON" -m pip install --quiet --disable-pip-version-check -e "$DPC_REPO_ROOT[test]" \
            || dpc_die "pip install failed (see above)"
        printf '%s\n' "$want" >"$stamp"
    fi
}

# Chromium for the e2e screenshot tests (Playwright drives /usr/bin/chromium).
dpc_ensure_chromium() {
    local chromium="${DPC_CHROMIUM:-/usr/bin/chromium}"
    [ -x "$chromium" ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        printf 'warning: %s is missing and only root can install it here; the e2e screenshot tests will fail.\n' "$chromium" >&2
        printf '         Install it with: sudo apt-get install -y chromium\n' >&2
        return 0
    fi
    dpc_log "Installing chromium with apt-get (for the e2e screenshot tests)"
    local log
    log="$(mktemp)"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        rm -f "$log"
        dpc_die "apt-get install chromium failed (output above)"
    fi
    rm -f "$log"
    [ -x "$chromium" ] || dpc_die "apt-get installed chromium but $chromium is still missing"
}

# Debian's PostgreSQL server (with SSL and postgres_fdw, which the bundled binaries lack) for
# the TLS tests in dagster_postgres_connection_tests/reliability/test_tls.py. They start their
# own throw-away cluster; the package's default cluster is not created.
dpc_ensure_debian_postgres() {
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && command -v openssl >/dev/null && return 0
    if [ "$(id -u)" -ne 0 ]; then
        printf 'warning: Debian'"'"'s PostgreSQL server is missing and only root can install it here; the TLS tests will be skipped.\n' >&2
        printf '         Install it with: sudo apt-get install -y postgresql openssl\n' >&2
        return 0
    fi
    dpc_log "Installing Debian's postgresql and openssl with apt-get (for the TLS tests)"
    mkdir -p /etc/postgresql-common
    [ -e /etc/postgresql-common/createcluster.conf ] || echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.conf
    local log
    log="$(mktemp)"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql openssl; } >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        rm -f "$log"
        dpc_die "apt-get install postgresql failed (output above)"
    fi
    rm -f "$log"
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || dpc_die "apt-get installed postgresql but no initdb under /usr/lib/postgresql"
}
