"""Drivers of the official RocketMQ 5 clients (Python 5.1.2 here, Node 1.0.8 in ../node5) for the compat tests."""
