"""The one place that touches asyncua's API (pinned: asyncua==2.1.0), the independent
OPC UA client the tests talk to softplc's server with.

asyncua is asynchronous; :class:`Peer` runs one client on its own event loop thread and
offers blocking calls, so that tests read like the Modbus ones. Status codes come back
by name (``"BadNotWritable"``) in :class:`Refused`; an upgrade of asyncua edits this
file only.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, TypeVar

import asyncua
from asyncua import ua
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from cryptography.x509.oid import ExtendedKeyUsageOID

PINNED = "2.1.0"
if asyncua.__version__ != PINNED:  # pragma: no cover - a reminder, not a failure mode
    raise ImportError(
        f"tests/opcua_peers.py is written for asyncua {PINNED}, found {asyncua.__version__}"
    )

NAMESPACE = "urn:softplc:plc"
CLIENT_URI = "urn:softplc:test-client"

T = TypeVar("T")


class Refused(Exception):
    """The server answered a service with a bad status code (``status`` is its name)."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


def _status_name(e: BaseException) -> str:
    if isinstance(e, ua.UaStatusCodeError):
        return (
            type(e).__name__ if type(e) is not ua.UaStatusCodeError else ua.StatusCode(e.code).name
        )
    raise e


@dataclass(frozen=True)
class Change:
    """One data change notification as the client received it."""

    path: str
    value: Any
    status: str
    source_ts: Any
    received: float  # time.monotonic() at arrival


def make_client_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed client application certificate and key (DER, PEM) in
    ``directory``, for the encrypted endpoint."""
    cert, key = directory / "client-cert.der", directory / "client-key.pem"
    asyncio.run(
        setup_self_signed_certificate(
            key,
            cert,
            CLIENT_URI,
            "localhost",
            [ExtendedKeyUsageOID.CLIENT_AUTH],
            {"countryName": "DE", "organizationName": "softplc tests", "commonName": "test client"},
        )
    )
    return cert, key


class Peer:
    """An asyncua client on its own event loop thread.

    Args:
        url: ``opc.tcp://HOST:PORT``.
        user, password: log in with a user name (needs ``security``).
        security: ``(cert.der, key.pem)`` of the client: connect with Basic256Sha256
            Sign&Encrypt.
        timeout: per request, seconds.
    """

    def __init__(
        self,
        url: str,
        *,
        user: str | None = None,
        password: str | None = None,
        security: tuple[Path, Path] | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.url = url
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._user, self._password, self._security = user, password, security
        self._timeout = timeout
        self.client: asyncua.Client = self._run(self._make())
        self.ns = 0
        self._subs: list[Any] = []

    async def _make(self) -> asyncua.Client:
        c = asyncua.Client(self.url, timeout=self._timeout)
        c.application_uri = CLIENT_URI
        if self._user is not None:
            c.set_user(self._user)
        if self._password is not None:
            c.set_password(self._password)
        if self._security is not None:
            cert, key = self._security
            await c.set_security_string(f"Basic256Sha256,SignAndEncrypt,{cert},{key}")
        return c

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return fut.result(timeout if timeout is not None else self._timeout * 4)

    def connect(self) -> Self:
        """Opens the session and looks up softplc's namespace index."""
        try:
            self._run(self.client.connect())
        except ua.UaStatusCodeError as e:
            raise Refused(_status_name(e)) from None
        self.ns = self._run(self.client.get_namespace_index(NAMESPACE))
        return self

    def close(self) -> None:
        """Closes the session and stops the loop (idempotent)."""
        if self._loop.is_closed():
            return
        # A server already gone (or a session never opened) leaves nothing to close.
        with contextlib.suppress(ua.UaError, OSError, TimeoutError, ConnectionError):
            self._run(self.client.disconnect(), timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> Self:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- nodes ---------------------------------------------------------------------

    def node_id(self, path: str) -> str:
        """The NodeId text of a variable or object path (``tank.level``, ``@engine``)."""
        return f"ns={self.ns};s={path}"

    def _node(self, path: str) -> Any:
        return self.client.get_node(self.node_id(path))

    def endpoints(self) -> list[tuple[str, str, list[str]]]:
        """The server's endpoints: (policy URI, mode name, user token type names)."""
        eps = self._run(self.client.connect_and_get_server_endpoints())
        return [
            (
                e.SecurityPolicyUri,
                e.SecurityMode.name,
                [t.TokenType.name for t in e.UserIdentityTokens],
            )
            for e in eps
        ]

    def browse(self, path: str | None = None) -> list[tuple[str, str, str]]:
        """Children of a node (the Objects folder when None): (browse name, node class,
        NodeId text), hierarchical references only."""
        node = self.client.nodes.objects if path is None else self._node(path)

        async def go() -> list[tuple[str, str, str]]:
            out = []
            for child in await node.get_children():
                bn = await child.read_browse_name()
                nc = await child.read_node_class()
                out.append((bn.Name, nc.name, child.nodeid.to_string()))
            return out

        return self._run(go())

    def attribute(self, path: str, name: str) -> Any:
        """An attribute's value (``DataType``, ``AccessLevel``, ``ValueRank``, ...)."""
        aid = getattr(ua.AttributeIds, name)
        dv = self._run(self._node(path).read_attribute(aid))
        return dv.Value.Value

    def data_type_name(self, path: str) -> str:
        """The DataType's browse name (``Int16``, ``Duration``)."""
        dt = self.attribute(path, "DataType")

        async def go() -> str:
            return (await self.client.get_node(dt).read_browse_name()).Name

        return self._run(go())

    def property(self, path: str, name: str) -> Any:
        """A property's value (``EURange``, ``EngineeringUnits``)."""

        async def go() -> Any:
            prop = await self._node(path).get_child(f"0:{name}")
            return await prop.read_value()

        return self._run(go())

    # -- values --------------------------------------------------------------------

    def read(self, path: str) -> Any:
        """A variable's value (raises :class:`Refused` on a bad status)."""
        value, status, _ = self.read_full(path)
        if status.startswith("Bad"):
            raise Refused(status)
        return value

    def read_full(self, path: str) -> tuple[Any, str, Any]:
        """(value, status name, SourceTimestamp) of a variable."""

        async def go() -> tuple[Any, str, Any]:
            dv = await self._node(path).read_data_value(raise_on_bad_status=False)
            return dv.Value.Value, dv.StatusCode.name, dv.SourceTimestamp

        return self._run(go())

    def write(self, path: str, value: Any, variant_type: str) -> None:
        """Writes a value as the named VariantType (``Int16``, ``Double``, ...);
        :class:`Refused` with the status name when the server says no."""
        vt = getattr(ua.VariantType, variant_type)
        dv = ua.DataValue(ua.Variant(value, vt))
        try:
            self._run(self._node(path).write_attribute(ua.AttributeIds.Value, dv))
        except ua.UaStatusCodeError as e:
            raise Refused(_status_name(e)) from None

    def call(self, method: str, *args: Any) -> None:
        """Calls a method of the engine object (``Start``, ``Stop``, ``ClearFault``)."""
        engine = self._node("@engine")
        try:
            self._run(engine.call_method(f"{self.ns}:{method}", *args))
        except ua.UaStatusCodeError as e:
            raise Refused(_status_name(e)) from None

    # -- subscriptions ---------------------------------------------------------------

    def subscribe(self, paths: Sequence[str], period_ms: float = 100) -> list[Change]:
        """Subscribes to data changes of ``paths`` at ``period_ms`` (sampling and
        publishing); returns the list the notifications are appended to."""
        changes: list[Change] = []
        by_id = {self.node_id(p): p for p in paths}
        peer = self

        class Handler:
            def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
                dv = data.monitored_item.Value
                changes.append(
                    Change(
                        by_id.get(node.nodeid.to_string(), node.nodeid.to_string()),
                        val,
                        dv.StatusCode.name,
                        dv.SourceTimestamp,
                        time.monotonic(),
                    )
                )

        async def go() -> None:
            params = ua.CreateSubscriptionParameters(
                RequestedPublishingInterval=period_ms,
                RequestedLifetimeCount=1000,
                RequestedMaxKeepAliveCount=10,
                MaxNotificationsPerPublish=0,
                PublishingEnabled=True,
                Priority=0,
            )
            sub = await peer.client.create_subscription(params, Handler())
            nodes = [peer.client.get_node(n) for n in by_id]
            for k in range(0, len(nodes), 500):
                await sub.subscribe_data_change(nodes[k : k + 500], sampling_interval=period_ms)
            peer._subs.append(sub)

        self._run(go(), timeout=60)
        return changes


def wait_for(cond: Callable[[], Any], timeout: float = 5.0, step: float = 0.02) -> bool:
    """Polls ``cond`` until it is true or ``timeout`` seconds passed."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return bool(cond())
