"""A consumer group's per-topic message request mode (PULL or POP) on every broker of a cluster
(docs/pop-rebalance.md): SET_MESSAGE_REQUEST_MODE (401) and GET_ALL_MESSAGE_REQUEST_MODE (402).

Like upstream's ``mqadmin setConsumeMode``, a mode is set on every master of the cluster: each broker
assigns the queues it is asked about with its own table, and a broker that kept another mode would
answer differently from the others. Showing reads every master and reports, per topic, what each says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from orbitmq.admin.base import DEFAULT_CLUSTER, AdminBase, json_object
from orbitmq.core.errors import ClientError, ProtocolError
from orbitmq.protocol.codes import RequestCode

__all__ = ["REQUEST_MODES", "BrokerModes", "GroupModes", "ModeAdmin", "ModeChange"]

REQUEST_MODES: Final = ("PULL", "POP")


@dataclass(frozen=True, slots=True)
class ModeChange:
    """One broker after a SET_MESSAGE_REQUEST_MODE."""

    broker_name: str
    broker_addr: str
    topic: str
    mode: str
    pop_share_queue_num: int

    def to_json(self) -> dict[str, Any]:
        return {"brokerName": self.broker_name, "brokerAddr": self.broker_addr, "topic": self.topic,
                "mode": self.mode, "popShareQueueNum": self.pop_share_queue_num}  # fmt: skip


@dataclass(frozen=True, slots=True)
class BrokerModes:
    """What one broker holds for the group: topic → (mode, popShareQueueNum), and its default for the rest."""

    broker_name: str
    broker_addr: str
    modes: dict[str, tuple[str, int]]
    default_mode: str
    default_pop_share_queue_num: int


@dataclass(frozen=True, slots=True)
class GroupModes:
    group: str
    brokers: list[BrokerModes] = field(default_factory=list)

    def topics(self) -> list[str]:
        return sorted({t for b in self.brokers for t in b.modes})

    def consistent(self, topic: str) -> bool:
        """Every broker gives ``topic`` the same mode and share (explicitly or by its default)."""
        return (
            len({b.modes.get(topic, (b.default_mode, b.default_pop_share_queue_num)) for b in self.brokers})
            <= 1
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "brokers": [
                {"brokerName": b.broker_name, "brokerAddr": b.broker_addr, "defaultMode": b.default_mode,
                 "defaultPopShareQueueNum": b.default_pop_share_queue_num,
                 "modes": {t: {"mode": m, "popShareQueueNum": s} for t, (m, s) in sorted(b.modes.items())}}
                for b in self.brokers
            ],
        }  # fmt: skip


class ModeAdmin(AdminBase):
    async def set_request_mode(
        self,
        group: str,
        topic: str,
        mode: str,
        *,
        pop_share_queue_num: int = 0,
        cluster: str = DEFAULT_CLUSTER,
    ) -> list[ModeChange]:
        """Set ``topic``'s mode for ``group`` on every master of ``cluster``. The brokers tell the group's
        online OrbitMQ consumers at once (403); others learn it at their next rebalance."""
        if mode not in REQUEST_MODES:
            raise ClientError(f"unknown request mode {mode!r}: expected PULL or POP")
        body = orjson.dumps({"topic": topic, "consumerGroup": group, "mode": mode,
                             "popShareQueueNum": pop_share_queue_num})  # fmt: skip
        out = []
        for name, addr in (await self.cluster_masters(cluster)).items():
            await self._invoke(addr, RequestCode.SET_MESSAGE_REQUEST_MODE, None, body)
            out.append(ModeChange(name, addr, topic, mode, pop_share_queue_num))
        return out

    async def request_modes(self, group: str, cluster: str | None = None) -> GroupModes:
        """The group's modes on every master (of ``cluster`` when given)."""
        result = GroupModes(group)
        for broker in await self.masters(cluster):
            resp = await self._invoke(
                broker.addr, RequestCode.GET_ALL_MESSAGE_REQUEST_MODE, {"consumerGroup": group}
            )
            body = json_object(resp, "message request modes")
            table = body.get("messageRequestModeMap") or {}
            if not isinstance(table, dict):
                raise ProtocolError("messageRequestModeMap is not an object")
            modes: dict[str, tuple[str, int]] = {}
            try:
                for topic, groups in table.items():
                    entry = groups.get(group) if isinstance(groups, dict) else None
                    if isinstance(entry, dict):  # an upstream broker answers every group: keep ours
                        modes[str(topic)] = (
                            str(entry.get("mode", "PULL")),
                            int(entry.get("popShareQueueNum", 0)),
                        )
                # An upstream broker sends no default; its shipped default is PULL.
                default_share = int(resp.ext_fields.get("defaultPopShareQueueNum", "-1"))
            except (TypeError, ValueError) as exc:
                raise ProtocolError(f"malformed message request modes from {broker.name}: {exc}") from exc
            default_mode = resp.ext_fields.get("defaultMessageRequestMode", "PULL")
            result.brokers.append(BrokerModes(broker.name, broker.addr, modes, default_mode, default_share))
        return result
