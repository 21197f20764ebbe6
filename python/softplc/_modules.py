"""Internal: the authoring module under a name that the ``program`` decorator (exported
by the package as ``softplc.program``) does not shadow."""

import importlib

prog = importlib.import_module("softplc.program")
