"""Tolerant parsing of JSON produced by Java's fastjson (remoting-protocol.md section 5).

fastjson writes non-String map keys unquoted: ``Map<Long,String>`` becomes ``{0:"127.0.0.1:10911"}`` and
``Map<MessageQueue,Long>`` becomes ``{{"brokerName":"b","queueId":0,"topic":"t"}:123}``. Standard parsers
reject both, so bodies from Java processes (register-broker bodies with static-topic mappings, admin
requests, consumer running info) go through :func:`loads`:

- standard JSON is handed to orjson (fast path, the common case);
- anything else goes through a small recursive-descent parser that also accepts unquoted integer keys
  (parsed to ``int``), unquoted identifier keys (``str``), object keys (:class:`ObjectKey`, a hashable
  read-only mapping), array keys (``tuple``), single-quoted strings and trailing commas.

Only :class:`~orbitmq.core.errors.ProtocolError` escapes for malformed input.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, Final

import orjson

from orbitmq.core.errors import ProtocolError

__all__ = ["NESTING_DEPTH_MAX", "ObjectKey", "loads"]

#: Deeper nesting than this is refused (Java bodies are a few levels deep; this guards the recursion).
NESTING_DEPTH_MAX: Final = 256

_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_DQ_CHUNK = re.compile(r'[^"\\\x00-\x1f]*')
_SQ_CHUNK = re.compile(r"[^'\\\x00-\x1f]*")
_HEX4 = re.compile(r"[0-9a-fA-F]{4}")
_ESCAPES: Final = {
    '"': '"',
    "'": "'",
    "\\": "\\",
    "/": "/",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
}
_LITERALS: Final[dict[str, Any]] = {"true": True, "false": False, "null": None}


class ObjectKey(Mapping[Any, Any]):
    """A JSON object that appeared as a map key; hashable, read-only, equal to a dict with the same items.

    Nested objects and arrays inside it are frozen too (``ObjectKey`` and ``tuple``), so it can be hashed.
    """

    __slots__ = ("_hash", "_items")

    def __init__(self, items: Mapping[Any, Any]) -> None:
        self._items: dict[Any, Any] = {k: _freeze(v) for k, v in items.items()}
        self._hash = hash(frozenset(self._items.items()))

    def __getitem__(self, key: Any) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"ObjectKey({self._items!r})"


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return ObjectKey(value)
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse standard or fastjson-flavoured JSON; raise ProtocolError if it is neither."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    if isinstance(data, str):
        text = data
    else:
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"JSON body is not UTF-8: {exc}") from None
    return _Parser(text).parse_document()


class _Parser:
    __slots__ = ("pos", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    # -- helpers -----------------------------------------------------------------------------------------
    def _error(self, what: str) -> ProtocolError:
        snippet = self.text[self.pos : self.pos + 20]
        return ProtocolError(f"bad JSON at offset {self.pos}: {what} (near {snippet!r})")

    def _skip_ws(self) -> None:
        m = _WS.match(self.text, self.pos)
        assert m is not None  # the pattern matches the empty string
        self.pos = m.end()

    def _peek(self) -> str:
        self._skip_ws()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    # -- grammar -----------------------------------------------------------------------------------------
    def parse_document(self) -> Any:
        value = self._value(0)
        if self._peek():
            raise self._error("trailing data")
        return value

    def _value(self, depth: int) -> Any:
        if depth > NESTING_DEPTH_MAX:
            raise self._error("nesting too deep")
        c = self._peek()
        if c == "{":
            return self._object(depth + 1)
        if c == "[":
            return self._array(depth + 1)
        if c in ('"', "'"):
            return self._string(c)
        if c == "-" or c.isdigit():
            return self._number()
        m = _IDENT.match(self.text, self.pos)
        if m is not None and m.group() in _LITERALS:
            self.pos = m.end()
            return _LITERALS[m.group()]
        raise self._error("expected a value" if c else "unexpected end of input")

    def _object(self, depth: int) -> dict[Any, Any]:
        self.pos += 1  # "{"
        result: dict[Any, Any] = {}
        while True:
            c = self._peek()
            if c == "}":
                self.pos += 1
                return result
            key = self._key(c, depth)
            if self._peek() != ":":
                raise self._error("expected ':' after an object key")
            self.pos += 1
            result[key] = self._value(depth)
            c = self._peek()
            if c == ",":
                self.pos += 1
            elif c != "}":
                raise self._error("expected ',' or '}' in an object")

    def _key(self, c: str, depth: int) -> Any:
        if c in ('"', "'"):
            return self._string(c)
        if c == "-" or c.isdigit():
            return self._number()
        if c in ("{", "["):
            return _freeze(self._value(depth))
        m = _IDENT.match(self.text, self.pos)
        if m is None:
            raise self._error("expected an object key")
        self.pos = m.end()
        return m.group()

    def _array(self, depth: int) -> list[Any]:
        self.pos += 1  # "["
        result: list[Any] = []
        while True:
            if self._peek() == "]":
                self.pos += 1
                return result
            result.append(self._value(depth))
            c = self._peek()
            if c == ",":
                self.pos += 1
            elif c != "]":
                raise self._error("expected ',' or ']' in an array")

    def _number(self) -> int | float:
        m = _NUMBER.match(self.text, self.pos)
        if m is None:
            raise self._error("bad number")
        self.pos = m.end()
        if m.group(1) is None and m.group(2) is None:
            return int(m.group())
        return float(m.group())

    def _string(self, quote: str) -> str:
        text = self.text
        chunk = _DQ_CHUNK if quote == '"' else _SQ_CHUNK
        self.pos += 1
        parts: list[str] = []
        while True:
            m = chunk.match(text, self.pos)
            assert m is not None  # the pattern matches the empty string
            parts.append(m.group())
            self.pos = m.end()
            if self.pos >= len(text):
                raise self._error("unterminated string")
            c = text[self.pos]
            if c == quote:
                self.pos += 1
                return "".join(parts)
            if c != "\\":
                raise self._error("control character in a string")
            parts.append(self._escape())

    def _escape(self) -> str:
        self.pos += 1  # the backslash
        if self.pos >= len(self.text):
            raise self._error("unterminated escape")
        c = self.text[self.pos]
        if c in _ESCAPES:
            self.pos += 1
            return _ESCAPES[c]
        if c != "u":
            raise self._error(f"bad escape \\{c}")
        code = self._hex4()
        # A high surrogate followed by an escaped low surrogate is one code point (UTF-16 as Java writes it).
        if 0xD800 <= code < 0xDC00 and self.text.startswith("\\u", self.pos):
            saved = self.pos
            self.pos += 1
            low = self._hex4()
            if 0xDC00 <= low < 0xE000:
                return chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00))
            self.pos = saved
        return chr(code)

    def _hex4(self) -> int:
        m = _HEX4.match(self.text, self.pos + 1)
        if m is None:
            raise self._error("bad \\u escape")
        self.pos = m.end()
        return int(m.group(), 16)
