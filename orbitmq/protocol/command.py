"""The remoting command: one request or response, as RocketMQ's ``RemotingCommand``.

This module is the data type only; :mod:`orbitmq.protocol.frame` turns it into bytes and back.
``ext_fields`` always holds strings (values arriving as JSON numbers or booleans are normalised the
Java way by the decoder), so handlers read them with the typed accessors below.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from orbitmq.core.errors import ProtocolError
from orbitmq.protocol.codes import ResponseCode, Version

__all__ = ["FLAG_ONEWAY", "FLAG_RESPONSE", "Body", "RemotingCommand"]

FLAG_RESPONSE = 0x1
FLAG_ONEWAY = 0x2

#: A body is bytes, or a sequence of buffers sent back to back (a pull answer is slices of the log).
Body = bytes | bytearray | memoryview | Sequence[bytes | bytearray | memoryview]


@dataclass(slots=True)
class RemotingCommand:
    code: int
    opaque: int = 0
    flag: int = 0
    language: str = "PYTHON"
    version: int = int(Version.V5_3_3)
    remark: str | None = None
    ext_fields: dict[str, str] = field(default_factory=dict)
    body: Body = b""
    #: 0 = JSON, 1 = ROCKETMQ binary. What the frame arrived in; replies are always JSON.
    serialize_type: int = 0

    # -- flags ----------------------------------------------------------------------------------------
    @property
    def is_response(self) -> bool:
        return bool(self.flag & FLAG_RESPONSE)

    @property
    def is_oneway(self) -> bool:
        return bool(self.flag & FLAG_ONEWAY)

    @classmethod
    def request(
        cls, code: int, ext_fields: dict[str, str] | None = None, body: Body = b"", *, oneway: bool = False
    ) -> RemotingCommand:
        return cls(code=code, flag=FLAG_ONEWAY if oneway else 0, ext_fields=ext_fields or {}, body=body)

    def response(
        self,
        code: int = ResponseCode.SUCCESS,
        remark: str | None = None,
        ext_fields: dict[str, str] | None = None,
        body: Body = b"",
    ) -> RemotingCommand:
        """A response to this request: same opaque, response flag set."""
        return RemotingCommand(
            code=int(code),
            opaque=self.opaque,
            flag=FLAG_RESPONSE,
            remark=remark,
            ext_fields=ext_fields if ext_fields is not None else {},
            body=body,
        )

    # -- typed access to ext fields --------------------------------------------------------------------
    def body_bytes(self) -> bytes:
        b = self.body
        if isinstance(b, bytes):
            return b
        if isinstance(b, bytearray | memoryview):
            return bytes(b)
        return b"".join(bytes(p) for p in b)

    def str_field(self, name: str, default: str | None = None) -> str:
        value = self.ext_fields.get(name, default)
        if value is None:
            raise ProtocolError(f"missing header field {name!r} for code {self.code}")
        return value

    def opt_str(self, name: str) -> str | None:
        return self.ext_fields.get(name)

    def int_field(self, name: str, default: int | None = None) -> int:
        value = self.ext_fields.get(name)
        if value is None or value == "":
            if default is None:
                raise ProtocolError(f"missing header field {name!r} for code {self.code}")
            return default
        try:
            return int(value)
        except ValueError:
            raise ProtocolError(f"header field {name!r} is not an integer: {value[:40]!r}") from None

    def opt_int(self, name: str) -> int | None:
        value = self.ext_fields.get(name)
        if value is None or value == "":
            return None
        return self.int_field(name)

    def bool_field(self, name: str, default: bool = False) -> bool:
        value = self.ext_fields.get(name)
        if value is None or value == "":
            return default
        return value.lower() == "true"
