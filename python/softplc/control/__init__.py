"""The control channel of running runtimes: see what a running program does, change
it, and stop it, from another process.

* :class:`Client`: a Python client with the engine's verbs;
* :class:`ControlServer`: what ``softplc run`` serves (one per runtime);
* :func:`list_runtimes`: the runtimes of this user (``softplc ps``).
"""

from softplc.control.client import Client
from softplc.control.paths import RuntimeInfo, list_runtimes, runtime_dir
from softplc.control.server import ControlServer

__all__ = ["Client", "ControlServer", "RuntimeInfo", "list_runtimes", "runtime_dir"]
