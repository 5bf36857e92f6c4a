"""OrbitMQ: a lightweight, RocketMQ-compatible messaging system."""

__version__ = "0.1.0"
__all__ = ["__version__"]
