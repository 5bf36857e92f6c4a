"""Pure parts of offset reset: the offset manager's pending resets and persistence, target computation,
the run-time config guard, and the rate meter behind runtime info."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orbitmq.broker.handlers.reset import reset_targets
from orbitmq.broker.handlers.runtime import RUNTIME_KEYS, check_runtime_update, parse_properties_body
from orbitmq.broker.offsets import ConsumerOffsetManager
from orbitmq.broker.rates import RateMeter
from orbitmq.core.clock import FakeClock
from orbitmq.core.errors import BrokerError
from orbitmq.protocol.codes import ResponseCode


def manager(root: str = "/nonexistent") -> ConsumerOffsetManager:
    return ConsumerOffsetManager(root, FakeClock())


# -- the offset manager ------------------------------------------------------------------------------------
def test_reset_of_a_never_seen_pair_creates_the_entry_and_is_pending() -> None:
    m = manager()
    m.assign_reset_offset("g", "t", 3, 17)
    assert m.query_offset("g", "t", 3) == 17
    assert m.topics_of_group("g") == {"t"}
    assert m.has_offset_reset("g", "t", 3) and not m.has_offset_reset("g", "t", 2)
    assert m.dirty


def test_commits_are_ignored_while_a_reset_is_pending_then_accepted() -> None:
    m = manager()
    m.commit_offset("g", "t", 0, 90)
    m.assign_reset_offset("g", "t", 0, 10)
    assert not m.commit_offset("g", "t", 0, 95)  # a client that has not seen the reset
    assert m.query_offset("g", "t", 0) == 10
    assert m.commit_offset("g", "t", 1, 5)  # other queues are not affected
    assert m.query_then_erase_reset_offset("g", "t", 0) == 10
    assert m.query_then_erase_reset_offset("g", "t", 0) is None
    assert m.commit_offset("g", "t", 0, 12)
    assert m.query_offset("g", "t", 0) == 12


def test_reset_forgets_the_last_pull_position() -> None:
    m = manager()
    m.commit_pull_offset("g", "t", 0, 50)
    m.assign_reset_offset("g", "t", 0, 5)
    assert m.query_pull_offset("g", "t", 0) == 5


def test_reset_listeners_hear_every_queue_and_a_failing_one_does_not_stop_the_reset() -> None:
    m = manager()
    heard: list[tuple[str, str, int, int]] = []

    def broken(*_: object) -> None:
        raise RuntimeError("listener bug")

    m.add_reset_listener(broken)
    m.add_reset_listener(lambda g, t, q, o: heard.append((g, t, q, o)))
    m.assign_reset_offset("g", "t", 0, 1)
    m.assign_reset_offset("g", "t", 1, 2)
    assert heard == [("g", "t", 0, 1), ("g", "t", 1, 2)]
    assert m.query_offsets("g", "t") == {0: 1, 1: 2}


def test_bad_resets_are_refused() -> None:
    m = manager()
    for args in (("g", "t", -1, 0), ("g", "t", 0, -5), ("", "t", 0, 0), ("g", "", 0, 0)):
        with pytest.raises(ValueError):
            m.assign_reset_offset(*args)
    assert m.table() == {}


def test_removing_a_group_or_topic_drops_its_pending_resets() -> None:
    m = manager()
    m.assign_reset_offset("g", "t", 0, 3)
    m.assign_reset_offset("h", "u", 0, 3)
    m.remove_group("g")
    m.remove_topic("u")
    assert m.pending_resets() == {} and m.table() == {}


def test_offsets_and_pending_resets_survive_a_reload(tmp_path: Path) -> None:
    m = manager(str(tmp_path))
    m.commit_offset("g", "old", 0, 4)
    m.assign_reset_offset("g", "never", 2, 9)
    m.persist()
    again = manager(str(tmp_path))
    again.load()
    assert again.query_offset("g", "never", 2) == 9 and again.query_offset("g", "old", 0) == 4
    assert again.has_offset_reset("g", "never", 2)
    assert not again.commit_offset("g", "never", 2, 100)


def test_a_java_file_without_pending_resets_loads() -> None:
    m = manager()
    m.decode_obj({"offsetTable": {"t@g": {"0": 5}}, "dataVersion": {"counter": 1}})
    assert m.query_offset("g", "t", 0) == 5 and m.pending_resets() == {}
    assert "resetOffsetTable" not in m.encode_obj()


# -- targets -----------------------------------------------------------------------------------------------
BOUNDS = {0: (0, 100), 1: (20, 30), 2: (0, 0)}


def targets(offset: int | None, timestamp: int, queues: tuple[int, ...] = (0, 1, 2)) -> dict[int, int]:
    return reset_targets(queues, offset, timestamp, BOUNDS.__getitem__, lambda q, ts: ts // 10)


def test_targets_by_offset_timestamp_and_to_the_end() -> None:
    assert targets(None, -1) == {0: 100, 1: 30, 2: 0}
    assert targets(None, 250) == {0: 25, 1: 25, 2: 0}
    assert targets(None, 0) == {0: 0, 1: 20, 2: 0}  # never below the queue's min
    assert targets(20, 0, (0, 1)) == {0: 20, 1: 20}
    assert targets(30, 0, (1,)) == {1: 30}  # max itself is allowed: "from the next message on"


@pytest.mark.parametrize(("offset", "queues"), [(19, (1,)), (31, (1,)), (50, (0, 1))])
def test_an_offset_out_of_range_is_refused(offset: int, queues: tuple[int, ...]) -> None:
    with pytest.raises(BrokerError) as err:
        targets(offset, 0, queues)
    assert (
        err.value.code == ResponseCode.INVALID_PARAMETER and "not in consume queue range" in err.value.remark
    )


@given(st.integers(0, 2000), st.integers(0, 200), st.integers(0, 200))
def test_targets_always_lie_within_the_queue(ts: int, low: int, span: int) -> None:
    got = reset_targets([0], None, ts, lambda q: (low, low + span), lambda q, t: t // 7)
    assert low <= got[0] <= low + span


# -- run-time config ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "key", ["storePathRootDir", "rocketmqHome", "brokerConfigPath", "namesrvAddr", "filterServerNums",
            "somethingNewPath", "configBlackList", "listenPort", "abortFile", "runCommand", "ROCKETMQ_HOME"],
)  # fmt: skip
def test_keys_naming_paths_commands_or_peers_are_refused(key: str) -> None:
    refused = check_runtime_update(["traceOn", key])
    assert refused is not None and refused.code == ResponseCode.NO_PERMISSION
    assert key in refused.remark and "CVE-2023-33246" in refused.remark


def test_other_keys_need_a_restart_unknown_keys_are_named() -> None:
    later = check_runtime_update(["brokerName"])
    assert later is not None and later.code == ResponseCode.NO_PERMISSION and "restart" in later.remark
    unknown = check_runtime_update(["noSuchKey"])
    assert (
        unknown is not None
        and unknown.code == ResponseCode.INVALID_PARAMETER
        and "noSuchKey" in unknown.remark
    )
    assert check_runtime_update(sorted(RUNTIME_KEYS)) is None


def test_properties_body() -> None:
    text = "# comment\n! also\n\nbrokerPermission=4\ntraceOn : false\nshortPollingTimeMills= 200 \n"
    assert parse_properties_body(text) == {
        "brokerPermission": "4",
        "traceOn": "false",
        "shortPollingTimeMills": "200",
    }
    with pytest.raises(BrokerError):
        parse_properties_body("no separator here")


# -- rates ---------------------------------------------------------------------------------------------------
async def test_rate_meter_averages_whole_seconds() -> None:
    clock = FakeClock()
    meter = RateMeter(clock, horizon_s=60)
    for _ in range(10):
        meter.add(5)
        await clock.advance(1)
    assert meter.total == 50
    assert meter.rate(10) == 5.0
    assert meter.rate(60) == pytest.approx(50 / 60)
    meter.add(1000)  # the current second is not finished: not counted yet
    assert meter.rate(10) == 5.0
    await clock.advance(700)
    assert meter.rate(10) == 0.0 and meter.tps_text() == "0.00 0.00 0.00"
