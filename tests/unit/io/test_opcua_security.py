"""OPC UA security: policy None and anonymous on loopback only; users over
Basic256Sha256 Sign&Encrypt with a certificate created on first start; client
certificates trusted by moving them to ``trusted/``; roles per user."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import softplc.io as sio
from conftest import wait_until
from opcua_peers import Peer, Refused, make_client_certificate
from softplc import INT, Engine

B256 = "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256"
NONE = "http://opcfoundation.org/UA/SecurityPolicy#None"


@pytest.fixture
def engine() -> Iterator[Any]:
    made: list[Engine] = []

    def make(server: sio.Driver) -> tuple[Engine, str]:
        e = Engine(clock="real", cycle="10ms")
        made.append(e)
        e.declare("s.x", "memory", INT)
        e.add_task("main", period="10ms")
        e.add_driver(server)
        e.start()
        assert server.address is not None
        return e, f"opc.tcp://127.0.0.1:{server.address[1]}"

    yield make
    for e in made:
        e.close()


USERS = [
    sio.OpcuaUser("eng", "engineer-pw", "engineer"),
    sio.OpcuaUser("view", "viewer-pw", "viewer"),
]


def test_without_configuration_only_policy_none_and_anonymous_are_offered(engine):
    _, url = engine(sio.opcua_server("opc.tcp://127.0.0.1:0"))
    c = Peer(url)
    try:
        assert c.endpoints() == [(NONE, "None_", ["Anonymous"])]
    finally:
        c.close()


def test_users_log_in_over_basic256sha256_with_a_certificate_made_on_first_start(
    engine, tmp_path: Path
):
    pki = tmp_path / "pki"
    server = sio.opcua_server("opc.tcp://127.0.0.1:0", pki_dir=pki, users=USERS, anonymous="viewer")
    e, url = engine(server)
    cert = pki / "own" / "cert.der"
    assert cert.stat().st_size > 0 and (pki / "private" / "private.pem").exists()
    c = Peer(url)
    try:
        eps = c.endpoints()
    finally:
        c.close()
    assert (NONE, "None_", ["Anonymous"]) in eps
    assert (B256, "SignAndEncrypt", ["UserName"]) in eps
    assert server.status()["security"] == ["None/None", "Basic256Sha256/SignAndEncrypt"]

    client = make_client_certificate(tmp_path)
    # An unknown client certificate is refused and kept in rejected/ for review.
    with pytest.raises(Exception):  # noqa: B017 - asyncua reports it in several ways
        Peer(url, user="eng", password="engineer-pw", security=client).connect().close()
    rejected = list((pki / "rejected").glob("*.der"))
    assert len(rejected) == 1
    trusted = pki / "trusted"
    trusted.mkdir(exist_ok=True)
    shutil.move(str(rejected[0]), trusted / rejected[0].name)

    with Peer(url, user="eng", password="engineer-pw", security=client) as c:
        c.write("s.x", 5, "Int16")
        assert wait_until(lambda: e.read("s.x") == 5)
        c.call("Stop")
        assert wait_until(lambda: e.state == "STOP")
        c.call("Start")
        assert wait_until(lambda: e.state == "RUN")
    with Peer(url, user="view", password="viewer-pw", security=client) as c:
        # Values are sampled (every 100 ms): the write shows at the next sample.
        assert wait_until(lambda: c.read("s.x") == 5)
        with pytest.raises(Refused) as r:
            c.write("s.x", 6, "Int16")
        assert r.value.status == "BadUserAccessDenied"
        with pytest.raises(Refused) as r:
            c.call("Stop")
        assert r.value.status == "BadUserAccessDenied"
    with pytest.raises(Refused):
        Peer(url, user="eng", password="wrong", security=client).connect()
    e.close()
    # A second start keeps the certificate clients have learned to trust.
    first = cert.read_bytes()
    engine(sio.opcua_server("opc.tcp://127.0.0.1:0", pki_dir=pki, users=USERS))
    assert cert.read_bytes() == first


def test_any_other_address_serves_only_users_over_sign_and_encrypt(engine, tmp_path: Path):
    pki = tmp_path / "pki"
    server = sio.opcua_server(
        "opc.tcp://0.0.0.0:0",
        pki_dir=pki,
        users=USERS,
        anonymous=None,
        trust_client_certs=True,
    )
    _, url = engine(server)
    c = Peer(url)
    try:
        assert c.endpoints() == [(B256, "SignAndEncrypt", ["UserName"])]
    finally:
        c.close()
    with pytest.raises(Exception):  # noqa: B017 - no endpoint for policy None
        Peer(url).connect().close()
    client = make_client_certificate(tmp_path)
    with Peer(url, user="eng", password="engineer-pw", security=client) as c:
        assert c.read("s.x") == 0
        assert c.read("@engine.State") == "RUN"


def test_a_server_without_a_certificate_directory_writes_nothing_where_it_runs(
    engine, tmp_path: Path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    e, url = engine(sio.opcua_server("opc.tcp://127.0.0.1:0"))
    with Peer(url) as c:
        assert c.read("s.x") == 0
    e.close()
    assert list(tmp_path.iterdir()) == []
