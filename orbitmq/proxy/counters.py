"""Plain counters of the proxy (stdlib only), read by the metrics exporter.

Long polling names follow the pop-with-notify design (issue 7, step 7): ``long_polls`` counts client
receives that were allowed to wait (``is_long_polling``), ``short_polling_hits`` the receives answered by the
first, non-waiting pop (``is_short_polling_hit``), ``pop_with_notify`` the long polls served by notifications,
``false_empties`` empty answers given while a message was already waiting.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ProxyCounters"]


@dataclass(slots=True)
class ProxyCounters:
    grpc_requests: int = 0  # every RPC (a Telemetry stream counts once)
    grpc_errors: int = 0  # answers with a status other than OK / MESSAGE_NOT_FOUND
    messages_sent: int = 0
    receives: int = 0  # ReceiveMessage calls
    long_polls: int = 0  # receives that could wait (poll time > 0): is_long_polling
    short_polling_hits: int = 0  # answered by the first, non-waiting pop: is_short_polling_hit
    pop_with_notify: int = 0  # long polls served by NOTIFICATION to every broker
    plain_long_polls: int = 0  # long polls served by one broker's long-poll pop (adaptive switch)
    notifications: int = 0  # NOTIFICATION requests sent to brokers
    notify_pops: int = 0  # pops after a broker said it has messages
    notify_pops_empty: int = 0  # ...that found nothing (another consumer was faster): re-armed
    empty_receives: int = 0  # receives answered MESSAGE_NOT_FOUND
    false_empties: int = 0  # empty answers while a message was already waiting (seen afterwards)
    messages_received: int = 0  # messages delivered to clients
    messages_to_dlq: int = 0  # forwarded to %DLQ% after max attempts
    acks: int = 0
    ack_errors: int = 0
    invisible_changes: int = 0
    renewals: int = 0  # auto-renew extensions of push consumers' handles
    renewal_failures: int = 0
    transaction_checks: int = 0  # orphaned-transaction checks pushed to producers
    registration_failures: int = 0  # consumer heartbeats/unregistrations to brokers that failed
    telemetry_streams: int = 0  # open now
