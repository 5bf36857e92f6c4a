"""The receipt handle the proxy gives gRPC clients: the broker's ``extraInfo`` plus the message's CommitLog
offset, space-separated (nine fields, the Java proxy's ``ReceiptHandle`` layout, grpc-protocol.md §6).

The CommitLog offset lets a FIFO consumer's ForwardMessageToDeadLetterQueue name the message to the broker
(CONSUMER_SEND_MSG_BACK is by physical offset); everything else comes from the extraInfo. Clients treat
the handle as opaque text.
"""

from __future__ import annotations

from dataclasses import dataclass

from orbitmq.core.errors import ProtocolError
from orbitmq.protocol.pop import ExtraInfo
from orbitmq.proxy.status import Code, ProxyError

__all__ = ["ReceiptHandle"]


@dataclass(frozen=True, slots=True)
class ReceiptHandle:
    info: ExtraInfo
    commit_log_offset: int

    @property
    def broker_name(self) -> str:
        return self.info.broker_name

    @property
    def next_visible_ms(self) -> int:
        return self.info.revive_time

    def encode(self) -> str:
        return f"{self.info.encode()} {self.commit_log_offset}"

    @classmethod
    def decode(cls, text: str) -> ReceiptHandle:
        """INVALID_RECEIPT_HANDLE (a ProxyError) for anything the proxy did not hand out."""
        parts = text.split(" ")
        if len(parts) != 9:
            raise ProxyError(Code.INVALID_RECEIPT_HANDLE, f"receipt handle has {len(parts)} fields, not 9")
        try:
            info = ExtraInfo.parse(" ".join(parts[:8]))
            offset = int(parts[8])
        except (ProtocolError, ValueError) as exc:
            raise ProxyError(Code.INVALID_RECEIPT_HANDLE, f"malformed receipt handle: {exc}") from None
        return cls(info, offset)

    def check_not_expired(self, now_ms: int) -> None:
        """The Java proxy refuses a handle whose invisible time has passed (the message may be redelivered
        to someone else by now)."""
        if now_ms > self.next_visible_ms:
            raise ProxyError(Code.INVALID_RECEIPT_HANDLE, "receipt handle is expired")
