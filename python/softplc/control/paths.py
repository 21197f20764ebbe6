"""Where running runtimes can be found: their sockets and registry files.

Each runtime started by ``softplc run`` listens on a UNIX socket named after it, in the
user's runtime directory: ``$XDG_RUNTIME_DIR/softplc/`` when that variable names a
directory of ours, else ``/tmp/softplc-<uid>/`` (created 0700). Beside the socket,
``<name>.json`` records the process id, the program and the control addresses, which
``softplc ps`` lists. The socket is 0600: only the user who started the runtime can
talk to it.
"""

from __future__ import annotations

import errno
import json
import os
import re
import socket
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from softplc.errors import ConfigError

__all__ = [
    "RuntimeInfo",
    "check_name",
    "claim_socket",
    "list_runtimes",
    "name_from",
    "runtime_dir",
    "socket_path",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_name(name: str) -> str:
    """A runtime name: letters, digits, ``_``, ``.`` and ``-``, at most 64 characters."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(
            f"runtime name {name!r}: use letters, digits, '_', '.' and '-' (at most 64, "
            "starting with a letter or digit)"
        )
    return name


def name_from(text: str) -> str:
    """A valid runtime name made from ``text`` (a program file's stem): characters a
    name may not hold become ``-``."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "-", text).lstrip("._-")[:64]
    return cleaned or "softplc"


def _ours(path: Path) -> bool:
    st = path.stat()
    return st.st_uid == os.getuid() and stat.S_ISDIR(st.st_mode)


def runtime_dir(*, create: bool = False) -> Path:
    """The directory of this user's runtime sockets (see the module docs)."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and Path(xdg).is_dir() and _ours(Path(xdg)):
        d = Path(xdg) / "softplc"
    else:
        d = Path("/tmp") / f"softplc-{os.getuid()}"
    if create:
        try:
            d.mkdir(mode=0o700, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"cannot create the runtime directory {d}: {e}") from None
    if d.exists():
        if not _ours(d):
            raise ConfigError(
                f"runtime directory {d} is not a directory of this user: refusing to use it"
            )
        if stat.S_IMODE(d.stat().st_mode) & 0o077:
            os.chmod(d, 0o700)
    return d


def socket_path(name: str) -> Path:
    """The socket of runtime ``name``."""
    return runtime_dir() / f"{check_name(name)}.sock"


def claim_socket(name: str, *, exact: bool = True) -> tuple[str, socket.socket]:
    """Binds the listening socket of runtime ``name`` and returns the name and socket.

    Binding is the claim: two runtimes starting at once cannot both get a name. A name
    whose socket answers is running: with ``exact`` that is an error, otherwise the
    next free ``name-2``, ``name-3``, ... is taken (the default name of ``softplc run``,
    so that one program file can run twice). A socket nobody answers on is stale (its
    runtime ended without cleaning up) and is replaced; a path that is not a socket of
    this user is never touched.
    """
    check_name(name)
    d = runtime_dir(create=True)
    for n in range(1, 1000):
        candidate = name if n == 1 else f"{name}-{n}"
        if len(candidate) > 64:
            break
        path = d / f"{candidate}.sock"
        for _ in range(3):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.bind(str(path))
            except OSError as e:
                sock.close()
                if e.errno not in (errno.EADDRINUSE, errno.EEXIST):
                    raise ConfigError(f"cannot create the control socket {path}: {e}") from None
                if _running(path):
                    break  # taken: next candidate (or the error below)
                continue  # stale and removed: bind again
            os.chmod(path, 0o600)
            sock.listen(16)
            return candidate, sock
        if exact:
            info = _read_info(path.with_suffix(".json"))
            pid = f" (pid {info['pid']})" if info else ""
            raise ConfigError(
                f"a runtime named {name!r} is already running{pid}: give this one another --name"
            )
    raise ConfigError(f"no free runtime name like {name!r}: give one with --name")


def _running(path: Path) -> bool:
    """True when a runtime answers on ``path``; removes it when it is a stale socket of
    ours; refuses to touch anything else."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return False
    if not stat.S_ISSOCK(st.st_mode) or st.st_uid != os.getuid():
        raise ConfigError(f"{path} exists and is not a socket of this user: refusing to touch it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        path.unlink(missing_ok=True)
        return False
    except OSError as e:
        raise ConfigError(f"{path}: {e}") from None
    finally:
        probe.close()
    return True


@dataclass(frozen=True)
class RuntimeInfo:
    """A runtime as ``softplc ps`` lists it."""

    name: str
    pid: int
    program: str
    socket: str
    tcp: str | None
    started_unix: float
    alive: bool


def _read_info(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_info(name: str, info: dict[str, Any]) -> Path:
    """Writes ``<name>.json`` beside the socket (0600)."""
    path = runtime_dir(create=True) / f"{name}.json"
    tmp = path.with_suffix(f".json.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(info, f)
    os.replace(tmp, path)
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def list_runtimes() -> list[RuntimeInfo]:
    """The runtimes of this user on this machine (stale entries show ``alive=False``)."""
    d = runtime_dir()
    if not d.is_dir():
        return []
    out = []
    for p in sorted(d.glob("*.json")):
        data = _read_info(p)
        if data is None:
            continue
        pid = int(data.get("pid", 0))
        out.append(
            RuntimeInfo(
                name=p.stem,
                pid=pid,
                program=str(data.get("program", "")),
                socket=str(data.get("socket", "")),
                tcp=data.get("tcp"),
                started_unix=float(data.get("started_unix", 0.0)),
                alive=_alive(pid) and Path(str(data.get("socket", ""))).exists(),
            )
        )
    return out
