"""Headless Debian Chromium driven by Playwright, failing on any error the Dagster UI shows.

Chromium is the system package (`apt-get install -y chromium`), not Playwright's download:
the machines this runs on have no internet. Every GraphQL answer the page receives is checked
(an `errors` list or a `PythonError`-like type fails the test), and so is the visible text.
"""

import contextlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("DPC_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1600, "height": 1000}

# What the Dagster UI writes when something failed (taken from its bundle, dagster-webserver 1.13).
ERROR_TEXTS = (
    "Unexpected GraphQL error",
    "An unexpected error occurred",
    "An error occurred",
    "Error loading",
    "Asset not found",
    "PythonError",
)


def require_chromium() -> None:
    """Skips with an install hint when Chromium or Playwright is missing, except in CI."""
    problems = []
    if not CHROMIUM.exists():
        problems.append(f"{CHROMIUM} is missing (install it with `apt-get install -y chromium`, or set DPC_CHROMIUM)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problems.append("the `playwright` package is missing (`pip install -e .[test]`)")
    if not problems:
        return
    message = "Screenshot test needs Chromium: " + "; ".join(problems) + "."
    if os.environ.get("CI") == "true":
        pytest.fail(message + " CI must run it.")
    pytest.skip(message)


def _error_typenames(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "__typename" and isinstance(item, str) and item.endswith("Error"):
                yield item
            else:
                yield from _error_typenames(item)
    elif isinstance(value, list):
        for item in value:
            yield from _error_typenames(item)


@dataclass
class UiErrors:
    """Problems seen while the page was open, as readable lines."""

    problems: list[str] = field(default_factory=list)

    def check_graphql(self, operation: str, body: Any) -> None:
        if isinstance(body, dict) and body.get("errors"):
            self.problems.append(f"GraphQL {operation}: errors {json.dumps(body['errors'])[:500]}")
        for typename in _error_typenames(body):
            self.problems.append(f"GraphQL {operation}: returned {typename}")


class Browser:
    """One page of a fresh Chromium profile, with its GraphQL answers checked."""

    def __init__(self, page: Any, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.errors = UiErrors()
        page.on("response", self._on_response)

    def _on_response(self, response: Any) -> None:
        if not response.url.endswith("/graphql") or response.request.method != "POST":
            return
        operation = (response.request.post_data_json or {}).get("operationName") or "?"
        try:
            body = response.json()
        except Exception as error:  # an HTML error page or a cut-off answer
            self.errors.problems.append(f"GraphQL {operation}: HTTP {response.status}, no JSON ({error})")
            return
        self.errors.check_graphql(operation, body)

    def open(self, path: str, *, wait_for: str) -> None:
        """Loads `path` and waits until the element `wait_for` (a Playwright selector) is visible
        and the network is quiet."""
        from playwright.sync_api import expect

        self.page.goto(self.base_url + path, wait_until="networkidle", timeout=90_000)
        try:
            self.page.locator(wait_for).first.wait_for(state="visible", timeout=60_000)
        except Exception as error:
            text = " ".join(self.page.inner_text("body").split())[:1500]
            raise AssertionError(
                f"{path}: `{wait_for}` never became visible ({type(error).__name__}). "
                f"GraphQL problems: {self.errors.problems}. The page shows: {text}"
            ) from None
        self.page.wait_for_load_state("networkidle", timeout=60_000)
        with contextlib.suppress(AssertionError):
            # Rows fill their status lazily; a spinner left in a screenshot is no error, so wait, don't fail.
            expect(self.page.get_by_text("Loading...")).to_have_count(0, timeout=30_000)
        self.page.wait_for_timeout(1000)  # let graphs finish their layout animation

    def assert_no_error_state(self) -> None:
        body_text = self.page.inner_text("body")
        shown = [text for text in ERROR_TEXTS if text in body_text]
        problems = self.errors.problems + [f"page shows {text!r}" for text in shown]
        assert not problems, f"The Dagster UI at {self.page.url} is in an error state: {problems}"

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path))
        return path


@contextmanager
def chromium_page(base_url: str, user_data_dir: Path) -> Iterator[Browser]:
    """A page of Debian's Chromium with a fresh profile in `user_data_dir`."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(user_data_dir),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport=VIEWPORT,  # type: ignore[arg-type]
        )
        try:
            yield Browser(context.new_page(), base_url)
        finally:
            context.close()
