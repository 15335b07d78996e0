"""Errors as one line plus a hint, JSON output, and the guarantee that no password is printed.

Every expected failure (configuration, connection, snapshot) becomes `Error: ...` and
`Hint: ...` on stderr with exit code 2; `--debug` adds the traceback. Anything printed on the
error path is scrubbed of the values of the password variables the command has read.
"""

import json
import os
import re
import sys
import traceback
from collections.abc import Iterable
from typing import Any

import click
from pydantic import ValidationError

from dagster_postgres_connection.errors import PostgresConnectionError

EXIT_FAILED_CHECK = 1  # the command ran and found problems (check)
EXIT_ERROR = 2  # the command could not run: configuration, connection (click uses 2 for usage too)

_STRING_POSITION = re.compile(r" at <string>:\d+")

# Names of the environment variables holding passwords, registered when a configuration is read.
_SECRET_ENV_VARS: set[str] = set()


class CliError(Exception):
    """An expected failure: a message naming the object, and a hint on what to do."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def register_secret_env_var(name: str) -> None:
    _SECRET_ENV_VARS.add(name)


def redact(text: str) -> str:
    for name in _SECRET_ENV_VARS:
        secret = os.environ.get(name)
        if secret:
            text = text.replace(secret, "***")
    return text


def describe_error(error: BaseException) -> tuple[str, str | None]:
    """(message, hint) for an expected error."""
    if isinstance(error, CliError):
        return error.message, error.hint
    if isinstance(error, ValidationError):
        # Positions in a YAML string we resolved ourselves (`<string>:2`) would only mislead.
        problems = "; ".join(
            f"`{_STRING_POSITION.sub('', '.'.join(str(part) for part in e['loc']))}`: "
            f"{e['msg'].removeprefix('Value error, ')}"
            for e in error.errors()
        )
        return f"Invalid configuration: {problems}", "Fix the attribute named above."
    # Our own and the component's messages already name the object and say what to do.
    return str(error), None


EXPECTED_ERRORS: tuple[type[BaseException], ...] = (CliError, PostgresConnectionError, ValidationError)


def is_expected(error: BaseException) -> bool:
    """Ours, pydantic's, or a component's `ResolutionException` (a defs.yaml attribute).

    `dagster` is imported only by commands that load a component, and only they can raise a
    `ResolutionException`: checking for it only when `dagster` is loaded keeps `sync` with
    flags and `--help` free of the `dagster` import.
    """
    if isinstance(error, EXPECTED_ERRORS):
        return True
    resolved_errors = sys.modules.get("dagster.components.resolved.errors")
    return resolved_errors is not None and isinstance(error, resolved_errors.ResolutionException)


class DpcGroup(click.Group):
    """Turns expected errors into one line plus a hint; `--debug` adds the traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except BrokenPipeError:
            # Whoever read our output left (`| head`): stop quietly, without a flush error at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(EXIT_ERROR)
        except Exception as error:
            # Unexpected: still one line by default, but say how to see more.
            fail(ctx, error, unexpected=not is_expected(error))


def fail(ctx: click.Context, error: BaseException, *, unexpected: bool = False) -> None:
    message, hint = describe_error(error)
    if unexpected:
        message = f"{type(error).__name__}: {message}"
        hint = hint or "This looks like a bug: run again with --debug and report the traceback."
    if ctx.meta.get("dpc.debug"):
        click.echo(redact("".join(traceback.format_exception(error))), err=True)
    click.echo(redact(f"Error: {' '.join(message.split())}"), err=True)
    if hint:
        click.echo(redact(f"Hint: {hint}"), err=True)
    ctx.exit(EXIT_ERROR)


def debug_option(command: Any) -> Any:
    """`--debug` on the group and on every command: print tracebacks (never the password)."""

    def remember(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        if value:
            ctx.meta["dpc.debug"] = True

    return click.option(
        "--debug", is_flag=True, expose_value=False, is_eager=True, callback=remember,
        help="Show tracebacks on errors (the password is never printed).",
    )(command)


def echo_json(payload: Any) -> None:
    click.echo(json.dumps(payload, indent=2, default=str))


def echo_sql(lines: Iterable[str]) -> None:
    for line in lines:
        click.echo(line)


def is_tty() -> bool:
    return sys.stdout.isatty()
