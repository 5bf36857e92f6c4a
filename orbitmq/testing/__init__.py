"""Testing helpers: :class:`EmbeddedOrbitMQ` (a server in your test process), its pytest fixtures
(:mod:`orbitmq.testing.pytest_plugin`), fault-injecting file operations (:mod:`orbitmq.testing.faults`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orbitmq.testing.embedded import EmbeddedOrbitMQ

__all__ = ["EmbeddedOrbitMQ"]


def __getattr__(name: str) -> Any:
    # Imported on first use: the pytest plugin is loaded by every pytest run of a project that installs
    # orbitmq, and must not import the whole server until a test asks for it.
    if name == "EmbeddedOrbitMQ":
        from orbitmq.testing.embedded import EmbeddedOrbitMQ

        return EmbeddedOrbitMQ
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
