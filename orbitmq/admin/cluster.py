"""The cluster's brokers and their configuration.

- brokers: GET_BROKER_CLUSTER_INFO (106) from the NameServer, then GET_BROKER_RUNTIME_INFO (28) of each
  master and slave: version, TPS in and out (``putTps`` / ``getTransferredTps``, first value = last 10 s),
  disk usage (``commitLogDiskRatio``); a broker that does not answer is listed with its error;
- config: GET_BROKER_CONFIG (26, a properties body) and UPDATE_BROKER_CONFIG (25). The broker accepts only
  its documented run-time keys and refuses any key naming a path, a program or a network endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orbitmq.admin.base import AdminBase, json_object
from orbitmq.core.errors import ClientError, OrbitError
from orbitmq.protocol.codes import RequestCode

__all__ = ["BrokerStatus", "ClusterAdmin", "parse_properties"]


def parse_properties(text: str) -> dict[str, str]:
    """``key=value`` lines (the broker's config body) → dict; comments and blank lines skipped."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line and line[0] not in "#!" and "=" in line:
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def _first_rate(text: str | None) -> float | None:
    try:
        return float(text.split()[0]) if text else None
    except (ValueError, IndexError):
        return None


@dataclass(frozen=True, slots=True)
class BrokerStatus:
    cluster: str
    broker_name: str
    broker_id: int
    addr: str
    runtime: Mapping[str, str]  # GET_BROKER_RUNTIME_INFO's table; empty when it did not answer
    error: str | None = None

    @property
    def version(self) -> str:
        return self.runtime.get("brokerVersionDesc", "-")

    @property
    def put_tps(self) -> float | None:
        return _first_rate(self.runtime.get("putTps"))

    @property
    def get_tps(self) -> float | None:
        return _first_rate(self.runtime.get("getTransferredTps"))

    @property
    def disk_ratio(self) -> float | None:
        try:
            return float(self.runtime["commitLogDiskRatio"])
        except (KeyError, ValueError):
            return None

    def to_json(self) -> dict[str, Any]:
        return {"cluster": self.cluster, "brokerName": self.broker_name, "brokerId": self.broker_id,
                "addr": self.addr, "version": self.version, "putTps": self.put_tps, "getTps": self.get_tps,
                "diskRatio": self.disk_ratio, "runtime": dict(self.runtime), "error": self.error}  # fmt: skip


class ClusterAdmin(AdminBase):
    async def runtime_info(self, addr: str) -> dict[str, str]:
        body = json_object(await self._invoke(addr, RequestCode.GET_BROKER_RUNTIME_INFO), "runtime info")
        table = body.get("table") or {}
        return {str(k): str(v) for k, v in table.items()}

    async def brokers(self, cluster: str | None = None) -> list[BrokerStatus]:
        """Every registered broker (of ``cluster``) with its runtime info."""
        info = await self.cluster_info()
        table = info.get("brokerAddrTable") or {}
        out = []
        for cname, names in sorted((info.get("clusterAddrTable") or {}).items()):
            if cluster is not None and cname != cluster:
                continue
            for name in sorted(names or []):
                for bid, addr in sorted(
                    ((table.get(name) or {}).get("brokerAddrs") or {}).items(), key=lambda kv: int(kv[0])
                ):
                    try:
                        runtime, error = await self.runtime_info(str(addr)), None
                    except OrbitError as exc:
                        runtime, error = {}, str(exc)
                    out.append(BrokerStatus(str(cname), str(name), int(bid), str(addr), runtime, error))
        return out

    async def broker_config(self, addr: str) -> dict[str, str]:
        response = await self._invoke(addr, RequestCode.GET_BROKER_CONFIG)
        return parse_properties(response.body_bytes().decode("utf-8", errors="replace"))

    async def update_broker_config(self, addr: str, changes: Mapping[str, str]) -> dict[str, str]:
        """Apply ``changes`` (all or nothing, the broker decides) and return the broker's config after it."""
        if not changes:
            raise ClientError("no config change given")
        for key, value in changes.items():
            if not key or any(c in key + value for c in "\n\r"):
                raise ClientError(f"bad config entry {key!r}={value!r}")
        body = "".join(f"{k}={v}\n" for k, v in changes.items()).encode()
        await self._invoke(addr, RequestCode.UPDATE_BROKER_CONFIG, body=body)
        return await self.broker_config(addr)
