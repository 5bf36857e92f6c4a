"""Back-pressure: at inflight_requests_max running requests the server stops reading that connection."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from orbitmq.net import Connection, RemotingClient
from orbitmq.protocol.codes import ResponseCode
from orbitmq.protocol.frame import encode_command_bytes

from .conftest import ECHO, GATED, Harness, RawPeer, request, until


async def test_fifth_request_waits_until_one_of_four_finishes(
    make_server: Callable[..., Awaitable[Harness]],
    raw_peers: Callable[[str], Awaitable[RawPeer]],
) -> None:
    h = await make_server(inflight_requests_max=4)
    peer = await raw_peers(h.addr)
    # All five in one write, so the fifth is already in the server's hands when the bound is reached.
    await peer.send(b"".join(encode_command_bytes(request(GATED, i, opaque=i)) for i in range(1, 6)))
    await h.gate.wait_entered(4)
    (server_side,) = h.server.connections
    assert server_side.inflight_requests == 4
    assert server_side.reading_paused

    # A full round trip on another connection gives the server every chance to (wrongly) start the fifth.
    other = RemotingClient()
    try:
        assert (await other.invoke(h.addr, request(ECHO, 1), timeout_s=5)).code == ResponseCode.SUCCESS
    finally:
        await other.close()
    assert sorted(h.gate.entered) == [1, 2, 3, 4], "the fifth request must not be dispatched yet"

    h.gate.release(2)
    await h.gate.wait_entered(5)
    assert h.gate.entered[4] == 5
    first = await peer.read_command()
    assert (first.opaque, first.ext_fields["gated"]) == (2, "2")

    h.gate.release_all()
    rest = [await peer.read_command() for _ in range(4)]
    assert sorted(r.opaque for r in rest) == [1, 3, 4, 5]
    assert all(r.code == ResponseCode.SUCCESS for r in rest)
    await until(lambda: server_side.inflight_requests == 0)
    assert not server_side.reading_paused


async def test_reading_resumes_for_later_requests(
    make_server: Callable[..., Awaitable[Harness]],
    raw_peers: Callable[[str], Awaitable[RawPeer]],
) -> None:
    """After the bound was hit and drained, the same connection keeps serving pipelined requests."""
    h = await make_server(inflight_requests_max=2)
    peer = await raw_peers(h.addr)
    await peer.send(b"".join(encode_command_bytes(request(ECHO, i, opaque=i)) for i in range(1, 51)))
    got = [await peer.read_command() for _ in range(50)]
    assert sorted(r.opaque for r in got) == list(range(1, 51))
    assert all(r.ext_fields["n"] == str(r.opaque) for r in got)


async def test_peer_that_does_not_read_stops_being_read(
    make_server: Callable[..., Awaitable[Harness]],
    raw_peers: Callable[[str], Awaitable[RawPeer]],
) -> None:
    """Answers pile up in the transport only to its high-water mark: then the server stops reading requests
    from that peer, so a client that sends without reading cannot make the server buffer without bound."""
    h = await make_server()
    peer = await raw_peers(h.addr)
    body = b"x" * (256 * 1024)
    count = 64  # 16 MiB of answers: far more than socket buffers plus the transport's high-water mark
    peer.writer.transport.set_write_buffer_limits(high=64 * 1024 * 1024)  # our side must not block first
    peer.writer.write(
        b"".join(encode_command_bytes(request(ECHO, i, body=body, opaque=i)) for i in range(count))
    )
    (server_side,) = await _connections(h)
    await until(lambda: server_side.reading_paused)
    assert h.server.counters.requests_received < count
    got = [await peer.read_command() for _ in range(count)]
    assert sorted(r.opaque for r in got) == list(range(count))
    assert all(r.body == body for r in got)
    assert h.server.counters.requests_received == count


async def _connections(h: Harness) -> list[Connection]:
    await until(lambda: len(h.server.connections) == 1)
    return list(h.server.connections)
