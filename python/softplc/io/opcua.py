"""The OPC UA server: the process image, the engine's state and statistics, and the
Start/Stop/ClearFault methods for MES, historians, dashboards and IoT platforms.

The server runs in the Rust core on its own thread (no Python on its path); this
module builds it. Without configuration it serves policy None with anonymous access,
and only on a loopback address; any other address serves users with a password over
Basic256Sha256 Sign&Encrypt, with the server's certificate created on first start in
``pki_dir``. The address space, the types, the roles and the security notes are in
``docs/opcua.md``.

Example:
    >>> from softplc.io.opcua import opcua_server
    >>> server = opcua_server("opc.tcp://127.0.0.1:0", expose=["tank.*"])
    >>> server.name, server.status()["security"]
    ('opcua', ['None/None'])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from softplc import _native
from softplc.errors import ConfigError
from softplc.io.driver import Driver
from softplc.timefmt import parse_duration

__all__ = ["ROLES", "OpcuaUser", "opcua_server"]

#: What a client may do, least privileged first: ``viewer`` browses, reads and
#: subscribes; ``operator`` also writes variables; ``engineer`` also calls Start, Stop
#: and ClearFault.
ROLES = ("viewer", "operator", "engineer")


@dataclass(frozen=True)
class OpcuaUser:
    """A user of the encrypted endpoint.

    Example:
        >>> OpcuaUser("maint", "s3cret", role="engineer").role
        'engineer'
    """

    name: str
    password: str
    role: str = "viewer"

    def __repr__(self) -> str:  # never show the password
        return f"OpcuaUser({self.name!r}, role={self.role!r})"


def _user(u: OpcuaUser | tuple[str, str, str]) -> tuple[str, str, str]:
    if isinstance(u, OpcuaUser):
        u = (u.name, u.password, u.role)
    if not (isinstance(u, tuple) and len(u) == 3 and all(isinstance(x, str) for x in u)):
        raise ConfigError(f"users: expected OpcuaUser(name, password, role), got {u!r}")
    if u[2] not in ROLES:
        raise ConfigError(f"user {u[0]!r}: unknown role {u[2]!r} (expected one of {ROLES})")
    return u


def opcua_server(
    endpoint: str = "opc.tcp://127.0.0.1:4840",
    *,
    pki_dir: str | Path | None = None,
    users: Sequence[OpcuaUser | tuple[str, str, str]] = (),
    anonymous: str | None = "operator",
    expose: Sequence[str] = (),
    sampling: str | int = "100ms",
    trust_client_certs: bool = False,
    max_sessions: int = 20,
) -> Driver:
    """An OPC UA server driver; hand it to :meth:`softplc.Engine.add_driver` (or
    ``build_engine(drivers=[...])``). It starts and stops with the engine.

    Args:
        endpoint: ``opc.tcp://HOST:PORT[/PATH]``; port 0 picks a free one (see
            :attr:`softplc.io.Driver.address`).
        pki_dir: where the server's certificate and key are kept (created on first
            start) and client certificates are trusted (``trusted/certs``) or
            rejected (``rejected/certs``). Needed for users, and so for any address
            that is not loopback.
        users: :class:`OpcuaUser` entries, served on the Basic256Sha256 Sign&Encrypt
            endpoint.
        anonymous: the role of anonymous clients on a loopback endpoint (one of
            :data:`ROLES`), or None to refuse them. Never served on another address.
        expose: variable names or shell patterns (``tank.*``); empty: every
            variable. A pattern that selects nothing fails the engine's start.
        sampling: how often the image is sampled for clients (``"100ms"``, or
            nanoseconds); at least 10 ms.
        trust_client_certs: trust client certificates without placing them in
            ``trusted/certs`` first (for commissioning only).
        max_sessions: sessions served at once.

    Example:
        >>> s = opcua_server("opc.tcp://127.0.0.1:0", anonymous="viewer", sampling="50ms")
        >>> s.status()["sampling_ms"], s.status()["running"]
        (50, False)
    """
    if not isinstance(endpoint, str):
        raise ConfigError(
            f"endpoint must be a string like 'opc.tcp://127.0.0.1:4840', got {endpoint!r}"
        )
    if anonymous is not None and anonymous not in ROLES:
        raise ConfigError(
            f"anonymous: unknown role {anonymous!r} (expected one of {ROLES} or None)"
        )
    if isinstance(expose, str):
        expose = [expose]
    if not all(isinstance(p, str) for p in expose):
        raise ConfigError(f"expose: expected names or patterns, got {expose!r}")
    sampling_ns = parse_duration(sampling, what="sampling")
    if sampling_ns < 10_000_000:
        raise ConfigError(f"sampling must be at least 10ms, got {sampling!r}")
    if not isinstance(max_sessions, int) or not 1 <= max_sessions <= 1000:
        raise ConfigError(f"max_sessions must be 1..1000, got {max_sessions!r}")
    d, m = _native.io_opcua_server(
        endpoint,
        pki_dir=None if pki_dir is None else str(pki_dir),
        users=[_user(u) for u in users],
        anonymous=anonymous,
        expose=list(expose),
        sampling_ms=sampling_ns // 1_000_000,
        trust_client_certs=bool(trust_client_certs),
        max_sessions=max_sessions,
    )
    return Driver(d, m)
