"""Internal: the authoring module under a name that the ``program`` decorator (exported
by the package as ``softplc.program``) does not shadow."""

from typing import TYPE_CHECKING

__all__ = ["prog"]

if TYPE_CHECKING:
    # mypy resolves the submodule itself; the runtime lookup below is needed because the
    # package attribute ``softplc.program`` is the decorator, not the module.
    import softplc.program as prog
else:
    import importlib

    prog = importlib.import_module("softplc.program")
