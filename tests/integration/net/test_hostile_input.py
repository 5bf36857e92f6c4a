"""Hostile peers: each is closed (with one log line) and nobody else notices."""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Awaitable, Callable

import orjson
import pytest

from orbitmq.net import RemotingClient
from orbitmq.protocol.codes import ResponseCode
from orbitmq.protocol.frame import encode_command_bytes

from .conftest import ECHO, GATED, STEP_TIMEOUT_S, Harness, RawPeer, raw_frame, request, until

RawConnect = Callable[[str], Awaitable[RawPeer]]

TLS_CLIENT_HELLO = bytes.fromhex("16030100f5010000f103035f") + b"\x00" * 64
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x12\x04\x00\x00\x00\x00\x00"

HOSTILE = [
    pytest.param(b"\xde\xad\xbe\xef" * 16, "smaller than", id="garbage"),
    pytest.param(
        struct.pack(">i", 16 * 1024 * 1024 + 1) + b"\x00\x00\x00\x10",
        "exceeds frame_bytes_max",
        id="oversized",
    ),
    pytest.param(
        struct.pack(">iI", 10, 100) + b"\x00" * 6,
        "header length 100 exceeds frame length 10",
        id="header>frame",
    ),
    pytest.param(raw_frame(b'{"code": 1, '), "invalid JSON header", id="invalid-json"),
    pytest.param(raw_frame(b'["code", 1]'), "JSON header is a array, not an object", id="json-not-object"),
    pytest.param(raw_frame(orjson.dumps({"code": "ten"})), "'code' is a string", id="json-wrong-type"),
    pytest.param(HTTP2_PREFACE, "HTTP/2 preface on remoting port", id="http2-preface"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1 request on remoting port", id="http1"),
    pytest.param(TLS_CLIENT_HELLO, "TLS ClientHello on remoting port", id="tls-client-hello"),
]


@pytest.mark.parametrize(("payload", "reason"), HOSTILE)
async def test_hostile_bytes_close_only_that_connection(
    harness: Harness,
    client: RemotingClient,
    raw_peers: RawConnect,
    caplog: pytest.LogCaptureFixture,
    payload: bytes,
    reason: str,
) -> None:
    # A well-behaved client with a request held in flight, open before the attack.
    bystander = await client.connection(harness.addr)
    held = asyncio.create_task(client.invoke(harness.addr, request(GATED, "held"), timeout_s=10))
    await harness.gate.wait_entered(1)

    attacker = await raw_peers(harness.addr)
    with caplog.at_level(logging.WARNING, logger="orbitmq.net"):
        await attacker.send(payload)
        leftover = await attacker.wait_closed_by_server()
    assert leftover == b"", "no answer to a bad frame, just a close"
    assert harness.server.counters.bad_frames == 1
    lines = [r.getMessage() for r in caplog.records if reason in r.getMessage()]
    assert len(lines) == 1, caplog.text
    host, port = attacker.writer.get_extra_info("sockname")[:2]
    assert f"{host}:{port}" in lines[0], "the log line names the peer"

    # A new connection is served ...
    fresh = await raw_peers(harness.addr)
    await fresh.send_commands(request(ECHO, 42, opaque=5))
    resp = await fresh.read_command()
    assert (resp.opaque, resp.code, resp.ext_fields["n"]) == (5, ResponseCode.SUCCESS, "42")
    # ... and the bystander kept its connection and its in-flight request.
    assert not bystander.closed
    assert (await client.invoke(harness.addr, request(ECHO, 1), timeout_s=5)).ext_fields["n"] == "1"
    harness.gate.release_all()
    assert (await asyncio.wait_for(held, STEP_TIMEOUT_S)).ext_fields == {"gated": "held"}
    assert await client.connection(harness.addr) is bystander


async def test_bad_frame_after_good_ones_closes_the_connection(
    harness: Harness, raw_peers: RawConnect
) -> None:
    peer = await raw_peers(harness.addr)
    await peer.send(encode_command_bytes(request(ECHO, 1, opaque=1)) + raw_frame(b"[]"))
    # The good request is answered (if the close does not win the race), then the connection closes.
    rest = await peer.wait_closed_by_server()
    assert harness.server.counters.bad_frames == 1
    assert rest == b"" or rest.startswith(struct.pack(">i", len(rest) - 4))


async def test_partial_frame_then_silence_is_closed_after_idle_timeout(
    make_server: Callable[..., Awaitable[Harness]],
    raw_peers: RawConnect,
    caplog: pytest.LogCaptureFixture,
) -> None:
    h = await make_server(idle_timeout_s=0.3)
    client = RemotingClient()
    try:
        held = asyncio.create_task(client.invoke(h.addr, request(GATED, "held"), timeout_s=10))
        await h.gate.wait_entered(1)
        bystander = await client.connection(h.addr)

        peer = await raw_peers(h.addr)
        with caplog.at_level(logging.INFO, logger="orbitmq.net"):
            await peer.send(encode_command_bytes(request(ECHO, 1))[:11])
            await peer.wait_closed_by_server()
        assert h.server.counters.idle_closed == 1
        assert "idle for" in caplog.text
        # The bystander was quiet just as long, but a request in flight is not idleness.
        assert not bystander.closed
        h.gate.release_all()
        assert (await asyncio.wait_for(held, STEP_TIMEOUT_S)).ext_fields == {"gated": "held"}
        fresh = await raw_peers(h.addr)
        await fresh.send_commands(request(ECHO, 7, opaque=3))
        assert (await fresh.read_command()).ext_fields["n"] == "7"
    finally:
        await client.close()


async def test_client_disconnecting_mid_request_is_logged_not_fatal(
    harness: Harness, raw_peers: RawConnect, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="orbitmq.net")
    peer = await raw_peers(harness.addr)
    await peer.send_commands(request(GATED, "gone", opaque=9))
    await harness.gate.wait_entered(1)
    (server_side,) = harness.server.connections
    peer.writer.transport.abort()
    await asyncio.wait_for(server_side.wait_closed(), STEP_TIMEOUT_S)
    harness.gate.release_all()
    await harness.gate.wait_finished(1)
    await until(lambda: harness.server.counters.responses_dropped == 1)  # the handler's task drops its answer
    assert "closed before the response to code 2 opaque 9" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    fresh = await raw_peers(harness.addr)
    await fresh.send_commands(request(ECHO, 8, opaque=1))
    assert (await fresh.read_command()).ext_fields["n"] == "8"
