"""The softplc pytest plugin, registered through the ``pytest11`` entry point: installing
softplc is enough to have it.

It gives tests the fixture ``plc``, a factory of test benches closed after the test::

    def test_pump_starts_below_the_low_limit(plc):
        bench = plc("programs/tank.py")              # or plc(Tank(), plant=TankPlant())
        bench.force(level=30.0)
        bench.run_until("pump", timeout="1s")

and two options:

* ``--softplc-keep-traces DIR``: every bench records a trace while it runs, into
  ``DIR/<test id>/``; the traces of a passing test are deleted, those of a failing test
  kept (without the option they are recorded and kept in a temporary folder). Their
  paths are printed in the failure report, in a section ``softplc traces``.
* ``--softplc-update-golden``: registered for golden traces, which come in a later
  version.

The plugin does no engine work when it loads: the bench machinery is imported when a
test first makes a bench.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from softplc.testing import _registry

__all__ = ["BenchFactory", "plc"]


def pytest_addoption(parser: pytest.Parser) -> None:
    """Registers the plugin's options."""
    group = parser.getgroup("softplc", "softplc test benches")
    group.addoption(
        "--softplc-keep-traces",
        metavar="DIR",
        default=None,
        help="record the benches' traces into DIR/<test id>/ and keep those of failing "
        "tests (the failure report prints their paths)",
    )
    group.addoption(
        "--softplc-update-golden",
        action="store_true",
        default=False,
        help="write golden traces anew instead of comparing with them (golden traces "
        "come in a later version of softplc)",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Opens the test's scope: benches made from now on belong to it, and record into
    ``DIR/<test id>/`` (``--softplc-keep-traces DIR``) or a temporary folder."""
    dest = item.config.getoption("softplc_keep_traces")
    _registry.begin(item.nodeid, Path(dest) if dest else None)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keeps the traces of a failing test and names them in its report; forgets those
    of a passing one when the test is over."""
    report = yield
    scope = _registry.current()
    if scope is None or scope.test_id != item.nodeid:
        return report
    if report.failed and scope.kept_paths is None:
        scope.failed = True
        paths = scope.trace_paths()  # finishes the files of benches still open
        scope.kept_paths = paths
        if paths:
            where = (
                ""
                if item.config.getoption("softplc_keep_traces")
                else " (in a temporary folder: --softplc-keep-traces DIR keeps them in DIR)"
            )
            report.sections.append(
                ("softplc traces", f"traces of this test{where}:\n" + "\n".join(paths))
            )
    if call.when == "teardown":
        if not scope.failed:
            scope.trace_paths()  # stops what is still recording
            scope.discard()
        _registry.end()
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Removes the session's trace folder when nothing is left in it."""
    _registry.end_session()


class BenchFactory:
    """What the fixture ``plc`` gives: call it to make a bench.

    ``plc("programs/tank.py", cycle="10ms", mode="reference")`` runs a program file
    (looked up as given, then from the rootdir, then beside the test file), with its
    plant model; ``plc(Tank(), Other(), plant=TankPlant())`` runs program instances.
    Other options as :meth:`softplc.testing.Bench.from_file`. Every bench is closed
    after the test, and a fault no run call reported fails the test then.
    """

    def __init__(self, base: list[Path]) -> None:
        self._base = base
        self.made: list[Any] = []

    def __call__(self, *sources: Any, **options: Any) -> Any:
        from softplc.testing._bench import bench_from

        bench = bench_from(*sources, base=self._base, **options)
        self.made.append(bench)
        return bench

    def close(self) -> None:
        """Closes every bench; raises the first fault left unreported."""
        first: BaseException | None = None
        for b in self.made:
            try:
                b.check_no_fault()
            except BaseException as e:  # noqa: BLE001 (reported once all are closed)
                first = first or e
            finally:
                b.close()
        if first is not None:
            raise first


@pytest.fixture
def plc(request: pytest.FixtureRequest) -> Iterator[BenchFactory]:
    """A factory of virtual-time test benches (:class:`BenchFactory`), closed after the
    test."""
    factory = BenchFactory([Path(request.config.rootpath), Path(request.path).parent])
    yield factory
    factory.close()
