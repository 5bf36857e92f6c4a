"""AdminClient and ``orbitmq admin`` against a real NameServer and two brokers."""
