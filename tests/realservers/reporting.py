"""The servers' logs in the report of every test that fails while they run."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from .services import Site, running_site

LOG_LIMIT = 20_000


class FailureLogs:
    """A pytest plugin: what each log gained during a failed test, added to its report."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.offsets: dict[str, int] = {}

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        report = yield
        if call.when == "setup":
            self.offsets = {name: _size(path) for name, path in self.site.logs().items()}
        if report.failed:
            for name, path in self.site.logs().items():
                report.sections.append((f"{name} log", self._since_setup(name, path)))
        return report

    def _since_setup(self, name: str, path: Path) -> str:
        if not path.exists():
            return "(no log)"
        with path.open("rb") as log:
            log.seek(max(self.offsets.get(name, 0), _size(path) - LOG_LIMIT))
            return log.read().decode(errors="replace") or "(nothing logged)"


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


@contextmanager
def site_for_tests(
    config: pytest.Config, server_names: tuple[str, ...] = ("A", "B")
) -> Iterator[Site]:
    """:func:`running_site`, with its logs reported on each failure while it runs."""
    with running_site(server_names) as site:
        plugin = FailureLogs(site)
        config.pluginmanager.register(plugin)
        try:
            yield site
        finally:
            config.pluginmanager.unregister(plugin)
