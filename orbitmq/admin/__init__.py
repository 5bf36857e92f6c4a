"""orbitmq.admin: administration of a running cluster over the remoting protocol (:class:`AdminClient`)."""

from orbitmq.admin.base import DEFAULT_CLUSTER, BrokerRef
from orbitmq.admin.client import AdminClient
from orbitmq.admin.cluster import BrokerStatus
from orbitmq.admin.groups import GroupChange, GroupDescription, GroupSettings, Member, QueueLag
from orbitmq.admin.messages import FoundMessage, SentMessage
from orbitmq.admin.modes import REQUEST_MODES, BrokerModes, GroupModes, ModeChange
from orbitmq.admin.offsets import ResetResult
from orbitmq.admin.offsync import OffsetChange, OffsetEntry, export_document, parse_document
from orbitmq.admin.topics import MESSAGE_TYPES, BrokerTopicChange, QueueStatus, TopicSettings

__all__ = [
    "DEFAULT_CLUSTER",
    "MESSAGE_TYPES",
    "REQUEST_MODES",
    "AdminClient",
    "BrokerModes",
    "BrokerRef",
    "BrokerStatus",
    "BrokerTopicChange",
    "FoundMessage",
    "GroupChange",
    "GroupDescription",
    "GroupModes",
    "GroupSettings",
    "Member",
    "ModeChange",
    "OffsetChange",
    "OffsetEntry",
    "QueueLag",
    "QueueStatus",
    "ResetResult",
    "SentMessage",
    "TopicSettings",
    "export_document",
    "parse_document",
]
