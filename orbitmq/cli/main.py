"""The ``orbitmq`` command. Flags, files and environment are read here and nowhere else.

Every server prints ``orbitmq <component> ready on HOST:PORT`` once it accepts connections, stops cleanly on
SIGTERM/SIGINT (flush, checkpoint, exit 0), and takes port 0 to mean "pick a free port".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from orbitmq.broker.app import BrokerApp
from orbitmq.broker.config import BrokerConfig
from orbitmq.cli.admin import add_admin_parser, run_admin
from orbitmq.cli.config import (
    broker_config,
    namesrv_config,
    proxy_config,
    read_properties,
    split_by_component,
    store_config,
)
from orbitmq.cli.logs import configure_logging
from orbitmq.core.errors import ConfigError, OrbitError
from orbitmq.namesrv.app import NamesrvApp
from orbitmq.namesrv.config import NamesrvConfig
from orbitmq.proxy import ClusterBackend, ProxyApp, ProxyConfig
from orbitmq.store import FlushDiskType, StoreConfig

__all__ = ["main"]

log = logging.getLogger("orbitmq.cli")


@dataclass
class Component:
    """A server the command runs: its name, how to start and stop it, and where it listens."""

    name: str
    start: Callable[[], Awaitable[None]]
    stop: Callable[[], Awaitable[None]]
    address: Callable[[], str | None]
    #: The running app (NamesrvApp, BrokerApp, ...) once started, for the metrics collector.
    app: Callable[[], Any] = field(default=lambda: None)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-c", dest="config", metavar="FILE", help="RocketMQ-style properties file (key=value lines)"
    )
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="key=value", help="set one key")
    p.add_argument(
        "--log-level",
        default=None,
        help="DEBUG, INFO, WARNING, ... (default: the logLevel key, else $ORBITMQ_LOG_LEVEL, else INFO)",
    )


def _metrics_port(p: argparse.ArgumentParser, default: int | None) -> None:
    p.add_argument(
        "--metrics-port",
        type=int,
        default=default,
        help=f"serve Prometheus metrics at http://HOST:PORT/metrics (0: a free port; negative: off; "
        f"default: {'off' if default is None else default})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="orbitmq", description="A lightweight RocketMQ-compatible broker")
    sub = parser.add_subparsers(dest="command", required=True)

    sa = sub.add_parser("standalone", help="NameServer + Broker (+ Proxy) in one process")
    sa.add_argument("--data-dir", default=os.path.join(os.path.expanduser("~"), ".orbitmq", "data"))
    sa.add_argument("--host", default="127.0.0.1")
    sa.add_argument("--namesrv-port", type=int, default=9876)
    sa.add_argument("--broker-port", type=int, default=10911)
    sa.add_argument("--proxy-port", type=int, default=8081)
    _metrics_port(sa, 5557)
    sa.add_argument("--flush-disk-type", choices=[t.value for t in FlushDiskType], default=None)
    _common(sa)

    ns = sub.add_parser("namesrv", help="run a NameServer")
    ns.add_argument("--host", default="127.0.0.1")
    ns.add_argument("--port", type=int, default=9876)
    _metrics_port(ns, None)
    _common(ns)

    br = sub.add_parser("broker", help="run a Broker")
    br.add_argument("--namesrv", required=True, help="NameServer address(es), host:port[;host:port]")
    br.add_argument("--host", default="127.0.0.1")
    br.add_argument("--port", type=int, default=10911)
    br.add_argument("--name", default=None, help="brokerName (default broker-a)")
    br.add_argument("--cluster", default=None, help="brokerClusterName (default DefaultCluster)")
    br.add_argument("--data-dir", default=os.path.join(os.path.expanduser("~"), ".orbitmq", "broker"))
    br.add_argument("--flush-disk-type", choices=[t.value for t in FlushDiskType], default=None)
    _metrics_port(br, None)
    _common(br)

    pr = sub.add_parser(
        "proxy", help="run a gRPC proxy (RocketMQ 5 clients) in front of a NameServer cluster"
    )
    pr.add_argument("--namesrv", required=True, help="NameServer address(es), host:port[;host:port]")
    pr.add_argument("--host", default="127.0.0.1")
    pr.add_argument("--port", type=int, default=8081)
    _metrics_port(pr, None)
    _common(pr)

    bench = sub.add_parser("bench", help="benchmarks (JSON output)")
    bsub = bench.add_subparsers(dest="workload", required=True)
    bs = bsub.add_parser(
        "store", help="CommitLog append/read throughput and recovery time vs the disk's limits"
    )
    bs.add_argument("--seconds", type=float, default=3.0, help="duration of each timed run")
    bs.add_argument("--recovery-mib", type=int, default=256, help="log size written for the recovery run")
    bs.add_argument("--dir", default=None, help="where to create the benchmark's temp dir (which disk)")
    bp = bsub.add_parser("produce", help="remoting sends vs Redis Streams XADD")
    bp.add_argument("--messages", type=int, default=40_000, help="messages per run")
    bf = bsub.add_parser("filter", help="SQL92 filter cost per message vs the tag filter")
    bf.add_argument("--messages", type=int, default=20_000, help="messages filtered per pass")
    bf.add_argument("--rounds", type=int, default=5, help="passes per measurement (the best one counts)")
    bf.add_argument("--quick", action="store_true", help="a few hundred messages, one pass (for tests)")
    bc = bsub.add_parser("consume", help="SDK push consumers vs Redis Streams XREADGROUP+XACK")
    bc.add_argument("--backlog", type=int, default=20_000, help="messages the drain run consumes")
    bc.add_argument("--rate", type=int, default=500, help="open-loop send rate, messages/s")
    bc.add_argument("--seconds", type=float, default=10.0, help="steady open-loop run before the leaves")
    bc.add_argument("--rounds", type=int, default=3, help="times a member of the group of 4 leaves")
    bc.add_argument("--quick", action="store_true", help="a few seconds, to check the benchmark works")
    bt = bsub.add_parser(
        "timer", help="timed messages: scheduling rate and delivery lateness vs delay levels"
    )
    bt.add_argument("--count", type=int, default=1_000_000, help="timed messages scheduled")
    bt.add_argument("--spread", type=float, default=60.0, help="seconds their delivery times spread over")
    bt.add_argument("--quick", action="store_true", help="20,000 messages over 3 s (for tests)")
    bx = bsub.add_parser("txn", help="transactional sends (half + commit) vs plain sends, SDK over remoting")
    bx.add_argument("--messages", type=int, default=20_000, help="messages per run")
    bx.add_argument("--concurrency", type=int, default=32, help="sends in flight")
    bx.add_argument("--quick", action="store_true", help="a few hundred messages (for tests)")
    bo = bsub.add_parser("offsets", help="offset sync to a standby cluster by time vs a plain offset copy")
    bo.add_argument("--groups", type=int, default=20, help="consumer groups with positions")
    bo.add_argument("--topics", type=int, default=10, help="topics of 8 queues each")
    bo.add_argument("--quick", action="store_true", help="2 groups, 2 topics (for tests)")
    br = bsub.add_parser(
        "rebalance", help="POP-aware rebalance vs upstream's broker-side rebalance of all topics"
    )
    br.add_argument("--interval", type=float, default=5.0, help="members' rebalance interval (s)")
    br.add_argument("--window", type=float, default=30.0, help="steady-state window (s)")
    br.add_argument("--changes", type=int, default=8, help="membership changes timed")
    br.add_argument("--quick", action="store_true", help="1 s interval, 3 s window, 2 changes (for tests)")
    bl = bsub.add_parser(
        "longpoll",
        help="proxy long polling: pop-with-notify vs plain, two brokers; proxy vs remoting throughput",
    )
    bl.add_argument("--quick", action="store_true", help="a few seconds, to check the benchmark works")
    bu = bsub.add_parser("startup", help="time-to-ready and idle memory of 'orbitmq standalone'")
    bu.add_argument(
        "--runs", type=int, default=5, help="standalone starts (each with a bare-Python baseline)"
    )
    bu.add_argument("--idle", type=float, default=2.0, help="seconds idle before memory is read")
    bu.add_argument("--quick", action="store_true", help="one short run (for tests)")
    bpop = bsub.add_parser("pop", help="pop + batch ack, sync vs async CK/ACK, vs Redis XREADGROUP+XACK")
    bpop.add_argument("--backlog", type=int, default=200_000, help="messages drained per run")
    bpop.add_argument("--consumers", type=int, default=4, help="consumer connections")
    bpop.add_argument("--batch", type=int, default=32, help="messages per pop (and per XREADGROUP)")
    bpop.add_argument("--no-redis", action="store_true", help="skip the Redis Streams peer")
    bpop.add_argument("--quick", action="store_true", help="a 2,000-message backlog (for tests)")
    add_admin_parser(sub)
    return parser


# -- component builders ----------------------------------------------------------------------------------
def _namesrv_component(app: NamesrvApp) -> Component:
    return Component("namesrv", app.start, app.stop, lambda: f"{app.config.host}:{app.port}", lambda: app)


class _Served(Protocol):
    @property
    def address(self) -> str: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def _deferred_component(name: str, make: Callable[[], _Served]) -> Component:
    """A component built when it starts: in standalone mode the broker needs the NameServer's real port
    first, and the proxy needs the running broker."""
    holder: list[_Served] = []

    async def start() -> None:
        holder.append(make())
        await holder[0].start()

    async def stop() -> None:
        if holder:
            await holder[0].stop()

    return Component(
        name,
        start,
        stop,
        lambda: holder[0].address if holder else None,
        lambda: holder[0] if holder else None,
    )


def _broker_component(make: Callable[[], BrokerApp]) -> Component:
    return _deferred_component("broker", make)


def _metrics_component(host: str, port: int | None, servers: list[Component]) -> list[Component]:
    """The ``/metrics`` endpoint over ``servers`` (none when the port is unset or negative)."""
    if port is None or port < 0:
        return []
    from orbitmq.cli.metrics import MetricsHttpServer, OrbitCollector, metrics_registry

    collector = OrbitCollector()
    for comp in servers:
        if comp.name == "namesrv":
            collector.add_namesrv(comp.app)
        elif comp.name == "broker":
            collector.add_broker(comp.app)
        elif comp.name == "proxy":
            collector.add_proxy(comp.app)
    http = MetricsHttpServer(metrics_registry(collector), host, port)
    return [Component("metrics", http.start, http.stop, lambda: http.address, lambda: http)]


def _proxy_component(make: Callable[[], ProxyApp]) -> Component:
    return _deferred_component("proxy", make)


def _store_and_broker_configs(
    parts: dict[str, dict[str, str]], data_dir: str, flush: str | None, base: BrokerConfig
) -> tuple[StoreConfig, BrokerConfig]:
    scfg = store_config(parts["store"], StoreConfig(store_path_root_dir=data_dir))
    if flush:
        scfg = replace(scfg, flush_disk_type=FlushDiskType(flush))
    os.makedirs(scfg.store_path_root_dir, exist_ok=True)
    return scfg, broker_config(parts["broker"], base)


def standalone_components(args: argparse.Namespace) -> list[Component]:
    props = read_properties(args.config, args.sets)
    parts = split_by_component(props, ["store", "namesrv", "broker", "proxy", "process"])
    ncfg = namesrv_config(parts["namesrv"], NamesrvConfig(host=args.host, port=args.namesrv_port))
    pcfg = proxy_config(parts["proxy"], ProxyConfig(grpc_server_port=args.proxy_port))
    if args.proxy_port != 8081 or "grpcServerPort" not in parts["proxy"]:
        pcfg = replace(pcfg, grpc_server_port=args.proxy_port)
    base = BrokerConfig(broker_ip1=args.host, listen_port=args.broker_port)
    scfg, bcfg = _store_and_broker_configs(parts, args.data_dir, args.flush_disk_type, base)
    if args.broker_port != 10911 or "listenPort" not in parts["broker"]:
        bcfg = replace(bcfg, listen_port=args.broker_port)
    namesrv = NamesrvApp(ncfg)

    brokers: list[BrokerApp] = []

    def make_broker() -> BrokerApp:
        brokers.append(BrokerApp(replace(bcfg, namesrv_addr=(f"{ncfg.host}:{namesrv.port}",)), scfg))
        return brokers[-1]

    def make_proxy() -> ProxyApp:
        from orbitmq.proxy.backends.local import LocalBackend

        return ProxyApp(pcfg, LocalBackend(brokers[-1]), host=args.host)

    servers = [_namesrv_component(namesrv), _broker_component(make_broker), _proxy_component(make_proxy)]
    return servers + _metrics_component(args.host, args.metrics_port, servers)


def broker_components(args: argparse.Namespace) -> list[Component]:
    props = read_properties(args.config, args.sets)
    parts = split_by_component(props, ["store", "broker", "process"])
    base = BrokerConfig(broker_ip1=args.host, listen_port=args.port)
    scfg, bcfg = _store_and_broker_configs(parts, args.data_dir, args.flush_disk_type, base)
    overrides: dict[str, object] = {"namesrv_addr": tuple(a for a in args.namesrv.split(";") if a)}
    if args.name:
        overrides["broker_name"] = args.name
    if args.cluster:
        overrides["broker_cluster_name"] = args.cluster
    bcfg = replace(bcfg, **overrides)  # type: ignore[arg-type]
    servers = [_broker_component(lambda: BrokerApp(bcfg, scfg))]
    return servers + _metrics_component(args.host, args.metrics_port, servers)


def namesrv_components(args: argparse.Namespace) -> list[Component]:
    props = read_properties(args.config, args.sets)
    parts = split_by_component(props, ["namesrv", "process"])
    cfg = namesrv_config(parts["namesrv"], NamesrvConfig(host=args.host, port=args.port))
    servers = [_namesrv_component(NamesrvApp(cfg))]
    return servers + _metrics_component(args.host, args.metrics_port, servers)


def proxy_components(args: argparse.Namespace) -> list[Component]:
    props = read_properties(args.config, args.sets)
    parts = split_by_component(props, ["proxy", "process"])
    cfg = proxy_config(parts["proxy"], ProxyConfig(grpc_server_port=args.port))
    if args.port != 8081 or "grpcServerPort" not in parts["proxy"]:
        cfg = replace(cfg, grpc_server_port=args.port)
    cfg = replace(cfg, namesrv_addr=tuple(a for a in args.namesrv.split(";") if a))

    def make() -> ProxyApp:
        refresh = cfg.topic_route_service_cache_refresh_seconds
        return ProxyApp(cfg, ClusterBackend(cfg.namesrv_addr, route_refresh_s=refresh), host=args.host)

    servers = [_proxy_component(make)]
    return servers + _metrics_component(args.host, args.metrics_port, servers)


# -- running servers -------------------------------------------------------------------------------------
async def serve(kind: str, components: Sequence[Component]) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    started: list[Component] = []
    try:
        for comp in components:
            await comp.start()
            started.append(comp)
            addr = comp.address()
            if addr is not None and (kind == "standalone" or comp.name != kind):
                print(f"orbitmq {comp.name} ready on {addr}", flush=True)
        first = next((c.address() for c in components if c.address() is not None), None)
        print(f"orbitmq {kind} ready on {first}", flush=True)
        log.info(
            "%s running; SIGTERM or SIGINT stops it", kind, extra={"event": "started", "component": kind}
        )
        await stop.wait()
        log.info("%s stopping", kind, extra={"event": "stopping", "component": kind})
    finally:
        for comp in reversed(started):
            try:
                await comp.stop()
            except Exception:
                log.exception("stopping %s failed", comp.name)
                raise
    return 0


def _run(coro: Awaitable[int]) -> int:
    try:
        import uvloop

        return uvloop.run(coro)  # type: ignore[arg-type]
    except ImportError:
        return asyncio.run(coro)  # type: ignore[arg-type]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        configure_logging(args, os.environ)
        if args.command == "admin":
            return run_admin(args)
        if args.command == "standalone":
            return _run(serve("standalone", standalone_components(args)))
        if args.command == "namesrv":
            return _run(serve("namesrv", namesrv_components(args)))
        if args.command == "broker":
            return _run(serve("broker", broker_components(args)))
        if args.command == "proxy":
            return _run(serve("proxy", proxy_components(args)))
        if args.command == "bench":
            from orbitmq.cli.bench import run_bench

            print(json.dumps(run_bench(args), indent=2))
            return 0
    except ConfigError as exc:
        print(f"orbitmq: configuration error: {exc}", file=sys.stderr)
        return 2
    except OrbitError as exc:
        print(f"orbitmq: {exc}", file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
