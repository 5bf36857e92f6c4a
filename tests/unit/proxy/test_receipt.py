"""The proxy's receipt handle: the broker's extraInfo plus the CommitLog offset, opaque to clients."""

from __future__ import annotations

import pytest

from orbitmq.protocol.pop import ExtraInfo
from orbitmq.proxy.receipt import ReceiptHandle
from orbitmq.proxy.status import Code, ProxyError


def test_round_trip_and_expiry() -> None:
    info = ExtraInfo(5, 1_700_000_000_000, 30_000, 3, "0", "broker-a", 2, 7)
    handle = ReceiptHandle(info, 12345)
    text = handle.encode()
    assert text == "5 1700000000000 30000 3 0 broker-a 2 7 12345"
    back = ReceiptHandle.decode(text)
    assert back == handle and back.broker_name == "broker-a" and back.next_visible_ms == 1_700_000_030_000
    back.check_not_expired(1_700_000_030_000)
    with pytest.raises(ProxyError) as err:
        back.check_not_expired(1_700_000_030_001)
    assert err.value.code == Code.INVALID_RECEIPT_HANDLE


@pytest.mark.parametrize("text", ["", "garbage", "5 1 2 3 0 b 2 7", "5 1 2 3 9 b 2 7 1", "a 1 2 3 0 b 2 7 1"])
def test_anything_else_is_an_invalid_receipt_handle(text: str) -> None:
    with pytest.raises(ProxyError) as err:
        ReceiptHandle.decode(text)
    assert err.value.code == Code.INVALID_RECEIPT_HANDLE
