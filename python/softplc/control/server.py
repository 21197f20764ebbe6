"""The control channel of a running runtime.

``softplc run`` serves it on a UNIX socket (0600, see :mod:`softplc.control.paths`),
and on TCP only when asked (loopback unless told otherwise), where the first message
must carry the runtime's token. It runs on an asyncio loop in a thread of its own and
talks to the engine only through the engine's public calls, which never make the scan
wait: reads come from the snapshot the scan publishes at the end of a cycle (values
from one cycle, never torn); writes, forces and state changes are requests the scan
applies at the start of its next cycle.

Operations (``op``) and their arguments:

* ``hello`` (``token``): authenticates a TCP client (UNIX clients need not);
* ``status``: the engine's status, with the runtime's name, pid and program;
* ``variables``: every variable with its address, type, range and ``writable`` flag;
* ``read`` (``names``): values, quality and age of variables, from one cycle;
* ``subscribe`` (``patterns``, ``interval_ms``): updates of the matching variables
  every interval, each from one cycle; ``unsubscribe`` (``sub``);
* ``write`` / ``force`` (``values``: a name -> value map): all checked before any is
  applied (unknown names, types, ranges, ``writable``), so nothing is half-applied;
  ``unforce`` (``names``, or none for all);
* ``stop``, ``run``, ``clear_fault``: the PLC states;
* ``trace_start`` (``path``, ``signals``), ``trace_stop``;
* ``events`` (``since``): engine events;
* ``load`` (``path``, ``dry_run``, ``rollback``): online change (see
  :mod:`softplc.control.online`), when the runtime offers it.

A client that sends garbage, an oversized or truncated message, or vanishes, loses its
own connection and nothing else: other clients and the scan go on. A slow subscriber's
updates are dropped (the newest is kept), never queued without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import functools
import hmac
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from softplc.control import paths
from softplc.control.protocol import MAX_MESSAGE, ProtocolError, encode, read_async
from softplc.errors import ConfigError, SoftPlcError

__all__ = ["ControlServer"]

#: Shortest subscription interval (a faster client is served at this rate).
MIN_INTERVAL_MS = 10
#: Variables one subscription may hold.
MAX_SUBSCRIBED = 100_000
#: Clients served at once.
MAX_CLIENTS = 64


class _Refused(Exception):
    """A request refused with an error answer (the connection stays open)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class ControlServer:
    """Serves an engine's control channel.

    Args:
        engine: the started :class:`softplc.Engine`.
        name: the runtime's name (the socket is ``<name>.sock``).
        exact_name: True: a name already running is an error; False: the next free
            ``name-2``, ``name-3``... is taken (see :attr:`name`).
        program: the program file, for ``status`` and ``softplc ps``.
        tcp: ``HOST:PORT`` to serve on TCP as well (None: UNIX socket only).
        token: the token TCP clients must present (default: a random one, written to
            ``<name>.token`` beside the socket, 0600).
        online: the online-change handler, a callable ``(path, dry_run, rollback) ->
            dict`` (None: ``load`` is refused).
    """

    def __init__(
        self,
        engine: Any,
        *,
        name: str,
        exact_name: bool = True,
        program: str = "",
        tcp: str | None = None,
        token: str | None = None,
        online: Callable[..., dict[str, Any]] | None = None,
    ) -> None:
        self.engine = engine
        self.program = program
        self.online = online
        self._tcp_spec = tcp
        self.token = token or os.urandom(16).hex()
        # Bound now, before the engine starts: the claim on the name.
        self.name, self._unix = paths.claim_socket(name, exact=exact_name)
        self.socket_path = paths.runtime_dir() / f"{self.name}.sock"
        self.tcp_address: tuple[str, int] | None = None
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._servers: list[asyncio.AbstractServer] = []
        self._clients: set[asyncio.Task[None]] = set()
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._vars: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()  # the engine handle is shared with the main thread

    # -- life cycle -------------------------------------------------------------------

    def start(self) -> None:
        """Starts listening (raises ConfigError when the addresses cannot be used)."""
        self._vars = {v["name"]: v for v in self.engine.variables}
        self._thread = threading.Thread(target=self._run, name="softplc-control", daemon=True)
        self._thread.start()
        self._started.wait(10)
        if self._error is not None:
            self.close()
            raise self._error
        info = {
            "pid": os.getpid(),
            "program": self.program,
            "socket": str(self.socket_path),
            "tcp": None
            if self.tcp_address is None
            else f"{self.tcp_address[0]}:{self.tcp_address[1]}",
            "started_unix": time.time(),
        }
        paths.write_info(self.name, info)
        if self._tcp_spec is not None:
            tok = paths.runtime_dir() / f"{self.name}.token"
            fd = os.open(tok, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(self.token)

    def close(self) -> None:
        """Stops serving and removes the socket and registry files. Idempotent."""
        if self._thread is not None and self._loop.is_running():
            fut = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
            with contextlib.suppress(Exception):
                fut.result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        self._thread = None
        self._unix.close()
        d = paths.runtime_dir()
        for p in (self.socket_path, d / f"{self.name}.json", d / f"{self.name}.token"):
            with contextlib.suppress(OSError):
                p.unlink()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._listen())
        except BaseException as e:  # noqa: BLE001 - reported to start(), which raises it
            self._error = e
            self._started.set()
            return
        self._started.set()
        self._loop.run_forever()
        with contextlib.suppress(Exception):
            self._loop.close()

    async def _listen(self) -> None:
        srv = await asyncio.start_unix_server(self._serve_unix, sock=self._unix)
        self._servers.append(srv)
        if self._tcp_spec is not None:
            host, port = _parse_hostport(self._tcp_spec)
            try:
                tsrv = await asyncio.start_server(self._serve_tcp, host=host, port=port)
            except OSError as e:
                raise ConfigError(f"--control-tcp {self._tcp_spec}: {e.strerror or e}") from None
            sock = tsrv.sockets[0].getsockname()
            self.tcp_address = (str(sock[0]), int(sock[1]))
            self._servers.append(tsrv)

    async def _shutdown(self) -> None:
        for s in self._servers:
            s.close()
        for t in list(self._clients):
            t.cancel()
        for s in self._servers:
            with contextlib.suppress(Exception):
                await s.wait_closed()

    # -- connections --------------------------------------------------------------------

    async def _serve_unix(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await self._serve(r, w, authenticated=True)

    async def _serve_tcp(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await self._serve(r, w, authenticated=False)

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, authenticated: bool
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._clients) >= MAX_CLIENTS:
            writer.close()
            return
        self._clients.add(task)
        conn = _Connection(self, writer, authenticated)
        try:
            while True:
                try:
                    msg = await read_async(reader)
                except ProtocolError as e:
                    await conn.send({"id": None, "ok": False, "error": _err("protocol", str(e))})
                    break
                if msg is None:
                    break
                await conn.handle(msg)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            conn.stop()
            self._clients.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    # -- engine access (threads: the loop's, while the main thread may use the engine) --

    def call(self, fn: Callable[[], Any]) -> Any:
        with self._lock:
            return fn()

    def resolve(self, name: Any) -> dict[str, Any]:
        if not isinstance(name, str):
            raise _Refused("unknown", f"a variable name is a string, got {name!r}")
        v = self._vars.get(name)
        if v is not None:
            return v
        matches = [n for n in self._vars if n.rsplit(".", 1)[-1] == name]
        if len(matches) == 1:
            return self._vars[matches[0]]
        if matches:
            raise _Refused("unknown", f"{name!r} is ambiguous: {', '.join(sorted(matches))}")
        import difflib

        close = difflib.get_close_matches(name, list(self._vars), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise _Refused("unknown", f"unknown variable {name!r}{hint}")

    def refresh_variables(self) -> None:
        """After an online change: the variables as they are now."""
        self._vars = {v["name"]: v for v in self.engine.variables}


def _err(kind: str, message: str) -> dict[str, str]:
    return {"type": kind, "message": message}


def _parse_hostport(spec: str) -> tuple[str, int]:
    host, _, port = spec.rpartition(":")
    if not host:
        host = "127.0.0.1"
    try:
        p = int(port)
        if not 0 <= p <= 65535:
            raise ValueError
    except ValueError:
        raise ConfigError(f"--control-tcp {spec!r}: expected HOST:PORT") from None
    return host.strip("[]"), p


def _check_value(v: dict[str, Any], value: Any, *, forcing: bool) -> Any:
    """Checks a value for variable ``v`` as the engine will (type, range, writable),
    so that a request with several values applies all or none."""
    name, ty = v["name"], v["type"]
    if ty == "BOOL":
        if not isinstance(value, bool) and value not in (0, 1):
            raise _Refused("value", f"{name} (BOOL): expected true/false, got {value!r}")
        value = bool(value)
    elif ty in ("REAL", "LREAL"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Refused("value", f"{name} ({ty}): expected a number, got {value!r}")
    elif isinstance(value, bool) or not isinstance(value, int):
        raise _Refused("value", f"{name} ({ty}): expected an integer, got {value!r}")
    if not forcing:
        if not v.get("writable", True):
            raise _Refused("value", f"{name} ({ty}): the variable is not writable from outside")
        lo, hi = v.get("min"), v.get("max")
        if lo is not None and value < lo:
            raise _Refused("value", f"{name} ({ty}): {value} is below the declared minimum {lo}")
        if hi is not None and value > hi:
            raise _Refused("value", f"{name} ({ty}): {value} is above the declared maximum {hi}")
    return value


class _Connection:
    """One client: its requests, and its subscriptions' sender tasks."""

    def __init__(self, server: ControlServer, writer: asyncio.StreamWriter, auth: bool) -> None:
        self.server = server
        self.writer = writer
        self.authenticated = auth
        self.subs: dict[int, asyncio.Task[None]] = {}
        self.next_sub = 1
        self.send_lock = asyncio.Lock()

    async def send(self, msg: dict[str, Any]) -> None:
        async with self.send_lock:
            self.writer.write(encode(msg))
            await self.writer.drain()

    def stop(self) -> None:
        for t in self.subs.values():
            t.cancel()
        self.subs.clear()

    async def handle(self, msg: dict[str, Any]) -> None:
        rid = msg.get("id")
        op = msg.get("op")
        try:
            if not self.authenticated and op != "hello":
                raise _Refused("auth", "authenticate first: {'op': 'hello', 'token': ...}")
            result = await self.dispatch(op, msg)
            answer = {"id": rid, "ok": True, "result": result}
        except _Refused as e:
            answer = {"id": rid, "ok": False, "error": _err(e.kind, str(e))}
        except SoftPlcError as e:
            answer = {"id": rid, "ok": False, "error": _err(type(e).__name__, str(e))}
        try:
            payload = encode(answer)
        except ProtocolError as e:
            payload = encode({"id": rid, "ok": False, "error": _err("too_large", str(e))})
        async with self.send_lock:
            self.writer.write(payload)
            await self.writer.drain()

    async def dispatch(self, op: Any, msg: dict[str, Any]) -> Any:
        s = self.server
        e = s.engine
        if op == "hello":
            token = msg.get("token")
            if not isinstance(token, str) or not hmac.compare_digest(token, s.token):
                raise _Refused("auth", "wrong token")
            self.authenticated = True
            return {"name": s.name}
        if op == "status":
            st = s.call(e.status)
            st.update(name=s.name, pid=os.getpid(), program=s.program)
            return st
        if op == "variables":
            return list(s._vars.values())
        if op == "read":
            names = msg.get("names")
            if not isinstance(names, list) or not names:
                raise _Refused("request", "read needs names: a non-empty list")
            vs = [s.resolve(n) for n in names]
            return _sample(s, vs)
        if op == "subscribe":
            return self.subscribe(msg)
        if op == "unsubscribe":
            t = self.subs.pop(msg.get("sub", -1), None)
            if t is None:
                raise _Refused("request", f"no subscription {msg.get('sub')!r}")
            t.cancel()
            return None
        if op in ("write", "force"):
            values = msg.get("values")
            if not isinstance(values, dict) or not values:
                raise _Refused("request", f"{op} needs values: a non-empty name -> value map")
            checked = [
                (s.resolve(n)["name"], _check_value(s.resolve(n), v, forcing=op == "force"))
                for n, v in values.items()
            ]
            fn = e.write if op == "write" else e.force
            for name, v in checked:
                s.call(functools.partial(fn, name, v))
            return None
        if op == "unforce":
            names = msg.get("names")
            if names is None:
                s.call(e.unforce)
            else:
                for n in [s.resolve(x)["name"] for x in names]:
                    s.call(functools.partial(e.unforce, n))
            return None
        if op in ("stop", "run", "clear_fault"):
            s.call(getattr(e, op))
            return None
        if op == "events":
            since = msg.get("since", 0)
            evs, nxt = s.call(lambda: e.events(int(since)))
            return {"events": evs[-1000:], "next": nxt}
        if op == "trace_start":
            path = msg.get("path")
            if not isinstance(path, str):
                raise _Refused("request", "trace_start needs a path")
            opts = {k: msg[k] for k in ("signals", "decimate") if k in msg}
            s.call(lambda: e.start_trace(path, **opts))
            return {"path": str(Path(path).resolve())}
        if op == "trace_stop":
            return s.call(e.stop_trace)
        if op == "load":
            if s.online is None:
                raise _Refused("unsupported", "this runtime does not offer online change")
            path = msg.get("path")
            if not isinstance(path, str) and not msg.get("rollback"):
                raise _Refused("request", "load needs a path (or rollback: true)")
            online = s.online
            result = await asyncio.get_running_loop().run_in_executor(
                None,
                lambda: online(
                    path, dry_run=bool(msg.get("dry_run")), rollback=bool(msg.get("rollback"))
                ),
            )
            s.refresh_variables()
            return result
        raise _Refused("request", f"unknown operation {op!r}")

    def subscribe(self, msg: dict[str, Any]) -> dict[str, Any]:
        s = self.server
        patterns = msg.get("patterns")
        if not isinstance(patterns, list) or not patterns:
            raise _Refused("request", "subscribe needs patterns: a non-empty list of globs")
        names = [n for n in s._vars if any(fnmatch.fnmatchcase(n, str(p)) for p in patterns)]
        if not names:
            raise _Refused("unknown", f"no variable matches {', '.join(map(str, patterns))}")
        if len(names) > MAX_SUBSCRIBED:
            raise _Refused("request", f"{len(names)} variables: at most {MAX_SUBSCRIBED}")
        interval = max(int(msg.get("interval_ms", 100)), MIN_INTERVAL_MS) / 1000
        sid = self.next_sub
        self.next_sub += 1
        vs = [s._vars[n] for n in names]
        self.subs[sid] = asyncio.ensure_future(self._feed(sid, vs, interval))
        return {"sub": sid, "names": names, "interval_ms": interval * 1000}

    async def _feed(self, sid: int, vs: list[dict[str, Any]], interval: float) -> None:
        loop = asyncio.get_running_loop()
        nxt = loop.time()
        while True:
            sample = await loop.run_in_executor(None, _sample, self.server, vs)
            sample["sub"] = sid
            payload = encode(sample)
            if len(payload) > MAX_MESSAGE:
                return
            # A slow client: skip this update rather than queue it.
            if self.writer.transport.get_write_buffer_size() < 4 * len(payload) + 65536:
                self.writer.write(payload)
            nxt += interval
            await asyncio.sleep(max(0.0, nxt - loop.time()))


def _sample(s: ControlServer, vs: list[dict[str, Any]]) -> dict[str, Any]:
    """Values, quality, age and forced flags of ``vs`` from one snapshot."""
    snap = s.call(s.engine.snapshot)
    forced = s.call(lambda: s.engine.forced)
    names = [v["name"] for v in vs]
    return {
        "cycle": snap.cycles,
        "t_ns": snap.now_ns,
        "values": {n: snap.value(n) for n in names},
        "quality": {v["name"]: _QUALITY.get(int(snap.quality[v["index"]]), "?") for v in vs},
        "age_ns": {v["name"]: max(0, snap.now_ns - int(snap.stamp_ns[v["index"]])) for v in vs},
        "forced": {n: (n in forced) for n in names},
    }


_QUALITY = {0: "good", 1: "bad", 2: "stale"}
