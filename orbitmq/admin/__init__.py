"""orbitmq.admin: administration of a running cluster over the remoting protocol (topics for now)."""

from orbitmq.admin.client import (
    DEFAULT_CLUSTER,
    MESSAGE_TYPES,
    AdminClient,
    BrokerTopicChange,
    TopicSettings,
)

__all__ = ["DEFAULT_CLUSTER", "MESSAGE_TYPES", "AdminClient", "BrokerTopicChange", "TopicSettings"]
