"""RemotingServer + RemotingClient over real sockets: pipelining, concurrency, errors, both directions."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest

from orbitmq.core.errors import ClientError
from orbitmq.net import Connection, DispatchTable, RemotingClient, RemotingServer, ServerConfig
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.command import FLAG_ONEWAY, RemotingCommand

from .conftest import (
    BAD_FIELD,
    ECHO,
    FAILS,
    GATED,
    REFUSES,
    STEP_TIMEOUT_S,
    Harness,
    RawPeer,
    request,
)


async def test_pipelined_requests_on_one_connection_are_matched_by_opaque(
    harness: Harness, client: RemotingClient
) -> None:
    results = await asyncio.gather(
        *(client.invoke(harness.addr, request(ECHO, i, body=b"b%d" % i), timeout_s=5) for i in range(200))
    )
    for i, resp in enumerate(results):
        assert resp.code == ResponseCode.SUCCESS and resp.is_response
        assert resp.ext_fields["n"] == str(i)
        assert resp.body == b"b%d" % i
    assert harness.server.counters.connections_opened == 1
    assert len(harness.server.connections) == 1
    assert harness.server.counters.requests_received == 200


async def test_responses_come_back_out_of_order(
    harness: Harness, raw_peers: Callable[..., Awaitable[RawPeer]]
) -> None:
    peer = await raw_peers(harness.addr)
    # Opaque 1 yields 6 times in the echo handler, opaque 2 not at all: the answer to 2 must come first.
    await peer.send_commands(request(ECHO, 6, opaque=1), request(ECHO, 7, opaque=2))
    first, second = await peer.read_command(), await peer.read_command()
    assert (first.opaque, second.opaque) == (2, 1)
    assert (first.ext_fields["n"], second.ext_fields["n"]) == ("7", "6")


async def test_slow_handler_does_not_block_fast_ones_on_the_same_socket(
    harness: Harness, client: RemotingClient
) -> None:
    held = asyncio.create_task(client.invoke(harness.addr, request(GATED, "held"), timeout_s=10))
    await harness.gate.wait_entered(1)
    fast = await asyncio.gather(
        *(client.invoke(harness.addr, request(ECHO, i), timeout_s=5) for i in range(20))
    )
    assert [r.ext_fields["n"] for r in fast] == [str(i) for i in range(20)]
    assert not held.done()
    assert len(harness.server.connections) == 1
    harness.gate.release_all()
    resp = await asyncio.wait_for(held, STEP_TIMEOUT_S)
    assert resp.ext_fields == {"gated": "held"}


async def test_unknown_code_is_answered_with_request_code_not_supported(
    harness: Harness, client: RemotingClient
) -> None:
    resp = await client.invoke(harness.addr, RemotingCommand.request(9999), timeout_s=5)
    assert resp.code == ResponseCode.REQUEST_CODE_NOT_SUPPORTED
    assert resp.remark == " request type 9999 not supported"


async def test_handler_exception_is_system_error_and_connection_kept(
    harness: Harness, client: RemotingClient, caplog: pytest.LogCaptureFixture
) -> None:
    conn = await client.connection(harness.addr)
    with caplog.at_level(logging.ERROR, logger="orbitmq.net"):
        resp = await client.invoke(harness.addr, request(FAILS), timeout_s=5)
    assert resp.code == ResponseCode.SYSTEM_ERROR
    assert resp.remark is not None and "disk on fire" in resp.remark
    assert any(r.exc_info and "disk on fire" in str(r.exc_info[1]) for r in caplog.records), (
        "traceback logged"
    )
    assert (await client.invoke(harness.addr, request(ECHO, 1), timeout_s=5)).code == ResponseCode.SUCCESS
    assert await client.connection(harness.addr) is conn and not conn.closed


async def test_malformed_header_field_is_system_error_with_the_reason(
    harness: Harness, client: RemotingClient
) -> None:
    conn = await client.connection(harness.addr)
    resp = await client.invoke(
        harness.addr, RemotingCommand.request(BAD_FIELD, {"queueId": "x1"}), timeout_s=5
    )
    assert resp.code == ResponseCode.SYSTEM_ERROR
    assert resp.remark == "header field 'queueId' is not an integer: 'x1'"
    resp = await client.invoke(harness.addr, RemotingCommand.request(BAD_FIELD), timeout_s=5)
    assert resp.code == ResponseCode.SYSTEM_ERROR and resp.remark is not None and "missing" in resp.remark
    assert not conn.closed


async def test_broker_error_becomes_its_response_code(harness: Harness, client: RemotingClient) -> None:
    resp = await client.invoke(harness.addr, request(REFUSES), timeout_s=5)
    assert resp.code == ResponseCode.TOPIC_NOT_EXIST
    assert resp.remark == "No topic route info in name server for the topic: T"


async def test_oneway_request_gets_no_response(
    harness: Harness, raw_peers: Callable[..., Awaitable[RawPeer]]
) -> None:
    peer = await raw_peers(harness.addr)
    # The oneway echo finishes first (it does not yield); if it were answered, its answer would arrive first.
    await peer.send_commands(request(ECHO, 0, opaque=1, flag=FLAG_ONEWAY), request(ECHO, 6, opaque=2))
    resp = await peer.read_command()
    assert resp.opaque == 2
    assert harness.server.counters.requests_received == 2


UNMATCHED = "matches no request"


async def test_invoke_oneway_reaches_the_handler_and_is_not_answered(
    harness: Harness, client: RemotingClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="orbitmq.net")
    await client.invoke_oneway(harness.addr, request(GATED, "ow"))
    await harness.gate.wait_entered(1)
    harness.gate.release_all()
    await harness.gate.wait_finished(1)
    # An answer would reach the client after the gate opened; a round trip after that flushes it through.
    assert (await client.invoke(harness.addr, request(ECHO, 1), timeout_s=5)).code == 0
    assert not [r for r in caplog.records if UNMATCHED in r.getMessage()]


async def test_client_timeout_raises_but_keeps_the_connection(
    harness: Harness, client: RemotingClient
) -> None:
    conn = await client.connection(harness.addr)
    with pytest.raises(ClientError, match="timed out"):
        await client.invoke(harness.addr, request(GATED, "late"), timeout_s=0.2)
    assert not conn.closed
    assert (await client.invoke(harness.addr, request(ECHO, 3), timeout_s=5)).ext_fields["n"] == "3"
    harness.gate.release_all()
    await harness.gate.wait_finished(1)  # the late response arrives and is dropped quietly
    assert (await client.invoke(harness.addr, request(ECHO, 4), timeout_s=5)).ext_fields["n"] == "4"
    assert await client.connection(harness.addr) is conn


async def test_server_to_client_request_round_trip(harness: Harness) -> None:
    seen: list[RemotingCommand] = []

    async def notify(cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        seen.append(cmd)
        return cmd.response(ext_fields={"ack": cmd.str_field("consumerGroup")})

    table = DispatchTable()
    table.register(RequestCode.NOTIFY_CONSUMER_IDS_CHANGED, notify)
    client = RemotingClient(dispatch=table)
    try:
        await client.invoke(harness.addr, request(ECHO), timeout_s=5)  # opens the connection
        (server_side,) = harness.server.connections
        push = RemotingCommand.request(RequestCode.NOTIFY_CONSUMER_IDS_CHANGED, {"consumerGroup": "G"})
        resp = await server_side.request(push, timeout_s=5)
        assert resp.code == ResponseCode.SUCCESS and resp.ext_fields == {"ack": "G"}
        assert seen[0].opaque == resp.opaque
        # A code the client does not handle is answered with 3, like on the server.
        resp = await server_side.request(RemotingCommand.request(RequestCode.GET_CONSUMER_RUNNING_INFO), 5)
        assert resp.code == ResponseCode.REQUEST_CODE_NOT_SUPPORTED
    finally:
        await client.close()


async def test_server_request_times_out_and_fails_on_close(harness: Harness) -> None:
    gate_table = DispatchTable()
    held = asyncio.Event()

    async def never(cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        await held.wait()
        return cmd.response()

    gate_table.register(RequestCode.GET_CONSUMER_RUNNING_INFO, never)
    client = RemotingClient(dispatch=gate_table)
    try:
        await client.invoke(harness.addr, request(ECHO), timeout_s=5)
        (server_side,) = harness.server.connections
        with pytest.raises(ClientError, match="timed out"):
            await server_side.request(RemotingCommand.request(RequestCode.GET_CONSUMER_RUNNING_INFO), 0.2)
        pending = asyncio.create_task(
            server_side.request(RemotingCommand.request(RequestCode.GET_CONSUMER_RUNNING_INFO), 10)
        )
        await asyncio.sleep(0)
        await client.close_connection(harness.addr)
        with pytest.raises(ClientError, match="closed"):
            await asyncio.wait_for(pending, STEP_TIMEOUT_S)
        with pytest.raises(ClientError):
            server_side.send_oneway(RemotingCommand.request(RequestCode.NOTIFY_CONSUMER_IDS_CHANGED))
    finally:
        held.set()
        await client.close()


async def test_server_oneway_to_client_is_handled_and_not_answered(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="orbitmq.net")
    got = asyncio.Event()

    async def notify(cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        got.set()
        return cmd.response()

    table = DispatchTable()
    table.register(RequestCode.NOTIFY_CONSUMER_IDS_CHANGED, notify)
    client = RemotingClient(dispatch=table)
    try:
        await client.invoke(harness.addr, request(ECHO), timeout_s=5)
        (server_side,) = harness.server.connections
        server_side.send_oneway(RemotingCommand.request(RequestCode.NOTIFY_CONSUMER_IDS_CHANGED, {"g": "G"}))
        await asyncio.wait_for(got.wait(), STEP_TIMEOUT_S)
        # An answer would be sent before the client's next request, and logged as unmatched by the server.
        assert (await client.invoke(harness.addr, request(ECHO, 1), timeout_s=5)).code == 0
        assert client.counters.requests_received == 1
        assert not [r for r in caplog.records if UNMATCHED in r.getMessage()]
    finally:
        await client.close()


async def test_connection_api_and_callbacks(make_server: Callable[..., Awaitable[Harness]]) -> None:
    opened: list[Connection] = []
    closed: list[Connection] = []
    gate_harness = await make_server()
    server = RemotingServer(
        ServerConfig(port=0),
        gate_harness.server.dispatch,
        on_connect=opened.append,
        on_disconnect=closed.append,
    )
    await server.start()
    client = RemotingClient()
    try:
        addr = f"127.0.0.1:{server.port}"
        await client.invoke(addr, request(ECHO), timeout_s=5)
        (conn,) = opened
        assert conn.remote_addr[0] == "127.0.0.1" and conn.local_addr == ("127.0.0.1", server.port)
        assert isinstance(conn.id, int) and not conn.closed and conn.attributes == {}
        conn.attributes["clientID"] = "x@1"
        callback_seen: list[Connection] = []
        conn.add_close_callback(callback_seen.append)
        await client.close_connection(addr)
        await asyncio.wait_for(conn.wait_closed(), STEP_TIMEOUT_S)
        assert conn.closed and closed == [conn] and callback_seen == [conn]
        assert server.connections == []
        # The next invoke reconnects lazily.
        assert (await client.invoke(addr, request(ECHO, 2), timeout_s=5)).ext_fields["n"] == "2"
        assert len(opened) == 2
    finally:
        await client.close()
        await server.stop()
    assert server.counters.connections_opened == server.counters.connections_closed == 2


async def test_server_side_close_is_seen_by_the_client_which_reconnects(
    harness: Harness, client: RemotingClient
) -> None:
    conn = await client.connection(harness.addr)
    (server_side,) = harness.server.connections
    server_side.close()
    await asyncio.wait_for(conn.wait_closed(), STEP_TIMEOUT_S)
    resp = await client.invoke(harness.addr, request(ECHO, 5), timeout_s=5)
    assert resp.ext_fields["n"] == "5"
    assert await client.connection(harness.addr) is not conn


async def test_many_callers_share_one_connect(harness: Harness, client: RemotingClient) -> None:
    conns = await asyncio.gather(*(client.connection(harness.addr) for _ in range(10)))
    assert len({id(c) for c in conns}) == 1
    assert client.addresses == [harness.addr]


async def test_connect_failures_are_client_errors(harness: Harness) -> None:
    port = harness.server.port
    await harness.server.stop()
    client = RemotingClient(connect_timeout_s=1)
    try:
        with pytest.raises(ClientError, match="connect to"):
            await client.invoke(f"127.0.0.1:{port}", request(ECHO), timeout_s=2)
        with pytest.raises(ClientError, match="invalid remoting address"):
            await client.invoke("no-port", request(ECHO), timeout_s=2)
    finally:
        await client.close()
    with pytest.raises(ClientError, match="closed"):
        await client.invoke(f"127.0.0.1:{port}", request(ECHO), timeout_s=2)


async def test_outgoing_requests_say_python_and_version(
    harness: Harness, client: RemotingClient, raw_peers: Callable[..., Awaitable[RawPeer]]
) -> None:
    """Requests carry our version; their language is PYTHON unless the caller speaks for a client of another
    language (the proxy heart-beating a Node consumer says NODE_JS)."""
    seen: list[RemotingCommand] = []

    async def capture(cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        seen.append(cmd)
        return cmd.response()

    harness.server.dispatch.register(77, capture)
    await client.invoke(harness.addr, RemotingCommand(code=77, version=1), timeout_s=5)
    await client.invoke(harness.addr, RemotingCommand(code=77, language="NODE_JS", version=1), timeout_s=5)
    assert [(c.language, c.version) for c in seen] == [("PYTHON", 479), ("NODE_JS", 479)]
    assert seen[0].opaque > 0


async def test_stop_closes_connections_and_cancels_stuck_requests(
    make_server: Callable[..., Awaitable[Harness]], client: RemotingClient
) -> None:
    h = await make_server(shutdown_grace_s=0.1)
    conn = await client.connection(h.addr)
    held = asyncio.create_task(client.invoke(h.addr, request(GATED), timeout_s=10))
    await h.gate.wait_entered(1)
    await asyncio.wait_for(h.server.stop(), STEP_TIMEOUT_S)
    with pytest.raises(ClientError, match="closed"):
        await asyncio.wait_for(held, STEP_TIMEOUT_S)
    assert conn.closed and h.server.connections == []
