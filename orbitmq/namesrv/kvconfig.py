"""The NameServer's KV config (PUT/GET/DELETE_KV_CONFIG, GET_KVLIST_BY_NAMESPACE): namespace → key → value.

Held in memory only: RocketMQ persists it to ``kvConfigPath``, but OrbitMQ's NameServer keeps no files
(brokers re-register every 30 s; the KV config is an admin convenience, mostly for order-topic config).
"""

from __future__ import annotations

from typing import Final

__all__ = ["NAMESPACE_ORDER_TOPIC_CONFIG", "KvConfigTable"]

#: Namespace whose entries are returned to brokers on registration (``NamesrvUtil``).
NAMESPACE_ORDER_TOPIC_CONFIG: Final = "ORDER_TOPIC_CONFIG"


class KvConfigTable:
    def __init__(self) -> None:
        self._tables: dict[str, dict[str, str]] = {}

    def put(self, namespace: str, key: str, value: str) -> None:
        self._tables.setdefault(namespace, {})[key] = value

    def get(self, namespace: str, key: str) -> str | None:
        return self._tables.get(namespace, {}).get(key)

    def delete(self, namespace: str, key: str) -> bool:
        table = self._tables.get(namespace)
        if table is None or key not in table:
            return False
        del table[key]
        if not table:
            # Unlike Java we drop the empty namespace, so GET_KVLIST answers QUERY_NOT_FOUND for it.
            del self._tables[namespace]
        return True

    def namespace(self, namespace: str) -> dict[str, str] | None:
        """A copy of the namespace's table, or None if it has no entries."""
        table = self._tables.get(namespace)
        return dict(table) if table is not None else None
