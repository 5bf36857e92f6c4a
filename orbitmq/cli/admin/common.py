"""Shared pieces of the ``orbitmq admin`` nouns: argument types, tables, times."""

from __future__ import annotations

import argparse
import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["JSON_FLAG", "Outcome", "count", "fmt_ms", "key_value", "non_negative", "table"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a verb prints (text, or a JSON-able value) and the exit code (1 = done, but not all of it)."""

    value: object
    exit_code: int = 0


#: A parent parser giving every verb ``--json``.
JSON_FLAG = argparse.ArgumentParser(add_help=False)
JSON_FLAG.add_argument("--json", action="store_true", help="machine-readable output (JSON)")


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def count(low: int, high: int, what: str) -> Any:
    """An argparse type: an integer in [low, high]."""

    def parse(text: str) -> int:
        value = _int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what} must be {low}..{high}, got {value}")
        return value

    return parse


def non_negative(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be ≥ 0, got {value}")
    return value


def key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return key.strip(), value.strip()


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned columns separated by two spaces, a header row first."""
    cells = [list(map(str, headers)), *[["-" if c is None else str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells)


def fmt_ms(ms: int | None) -> str:
    """Epoch milliseconds as local ISO time to the millisecond; ``-`` for none."""
    if not ms or ms <= 0:
        return "-"
    return datetime.datetime.fromtimestamp(ms / 1000).isoformat(timespec="milliseconds")
