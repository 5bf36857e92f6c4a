"""Property test of revive matching (issue 5): random interleavings of pop, ack, change of invisible time,
revive scans, persistence of the revive progress and restarts, against a simple model in which each
message is delivered until acked and never lost.

The system under test is the real matching core (``ReviveQueueState`` over ``PopCheckPoint`` / ``AckMsg``)
fed from an append-only revive log, as the revive service feeds it: a revive writes the retry copy, then a
batch-ack marker into the log, and a restart rebuilds the state from the last *persisted* revive progress
(which may be stale). The model tracks every delivery unit (a message in the topic or a retry copy):
available, in flight under one current checkpoint, acked, or revived.

Checked after every step: a unit is revived only if it is in flight under the revived checkpoint and was not
acked with its current handle in time (no spurious redelivery), and the revive progress never passes a
checkpoint whose unit is still in flight. At the end, time runs on and consumers pop and ack everything:
every message must end up acked (none lost).
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from orbitmq.broker.pop.records import AckMsg, CkKey, PopCheckPoint
from orbitmq.broker.pop.revive_state import ReviveQueueState

GROUP, BROKER = "G", "b"


@dataclass
class Unit:
    msg: int  # message id (kept by retry copies)
    topic: str
    offset: int
    state: str = "available"  # available | inflight | acked | revived
    ck: CkKey | None = None  # current checkpoint while in flight


@dataclass(frozen=True)
class Handle:
    unit: tuple[str, int]
    ck: CkKey
    invisible: int


class ReviveModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 1_000_000
        self.log: list[tuple[str, object]] = []  # the revive queue: ("ck", PopCheckPoint) | ("ack", AckMsg)
        self.state = ReviveQueueState(0)
        self.persisted = 0  # revive progress as last written to consumerOffset.json
        self.units: dict[tuple[str, int], Unit] = {}
        self.next_offset = {"T": 0, "R": 0}
        self.handles: list[Handle] = []
        self.messages = 0
        self.acked_msgs: set[int] = set()
        self.deliveries = 0

    # -- helpers -----------------------------------------------------------------------------------------
    def _new_unit(self, topic: str, msg: int) -> None:
        offset = self.next_offset[topic]
        self.next_offset[topic] += 1
        self.units[(topic, offset)] = Unit(msg, topic, offset)

    def _append_ck(self, ck: PopCheckPoint) -> None:
        ck.revive_offset = len(self.log)
        self.log.append(("ck", ck))

    def _scan(self) -> None:
        while self.state.next_offset < len(self.log):
            kind, rec = self.log[self.state.next_offset]
            if kind == "ck":
                assert isinstance(rec, PopCheckPoint)
                copy = PopCheckPoint(**{f: getattr(rec, f) for f in rec.__dataclass_fields__})
                copy.queue_offset_diff = list(rec.queue_offset_diff)
                self.state.on_checkpoint(copy)
            else:
                assert isinstance(rec, AckMsg)
                self.state.on_ack(rec)
            self.state.read_up_to(self.state.next_offset + 1)

    # -- rules -------------------------------------------------------------------------------------------
    @rule(n=st.integers(1, 4))
    def produce(self, n: int) -> None:
        for _ in range(n):
            self._new_unit("T", self.messages)
            self.messages += 1

    @rule(topic=st.sampled_from(["T", "R"]), n=st.integers(1, 4), invisible=st.integers(1, 30))
    def pop(self, topic: str, n: int, invisible: int) -> None:
        batch = sorted(
            (u for u in self.units.values() if u.topic == topic and u.state == "available"),
            key=lambda u: u.offset,
        )[:n]
        if not batch:
            return
        so = batch[0].offset
        ck = PopCheckPoint(so, self.now, invisible * 1000, len(batch), 0, topic, GROUP, BROKER,
                           [u.offset - so for u in batch])  # fmt: skip
        self._append_ck(ck)
        for u in batch:
            u.state, u.ck = "inflight", ck.key
            self.handles.append(Handle((topic, u.offset), ck.key, invisible * 1000))
            self.deliveries += 1

    @precondition(lambda self: self.handles)
    @rule(data=st.data())
    def ack(self, data: st.DataObject) -> None:
        h = data.draw(st.sampled_from(self.handles))
        unit = self.units[h.unit]
        self.log.append(
            ("ack", AckMsg(h.ck.start_offset, GROUP, h.ck.topic, 0, h.ck.pop_time, BROKER, (unit.offset,)))
        )
        # Acked with the current handle before the unit was revived (even if after its invisible time ended):
        # done. Otherwise (revived already, or a stale handle) it changes nothing.
        if unit.state == "inflight" and unit.ck == h.ck:
            unit.state = "acked"
            self.acked_msgs.add(unit.msg)
        self.handles.remove(h)

    @precondition(lambda self: self.handles)
    @rule(data=st.data(), invisible=st.integers(0, 30))
    def change_invisible(self, data: st.DataObject, invisible: int) -> None:
        h = data.draw(st.sampled_from(self.handles))
        unit = self.units[h.unit]
        if unit.state != "inflight" or unit.ck != h.ck:
            return  # only a live handle is changed (a stale one would add a second checkpoint: a duplicate)
        pt = max(self.now, h.ck.pop_time + 1)
        ck = PopCheckPoint(unit.offset, pt, invisible * 1000, 1, 0, unit.topic, GROUP, BROKER, [0])
        self._append_ck(ck)  # the new checkpoint first...
        self.log.append(
            ("ack", AckMsg(h.ck.start_offset, GROUP, h.ck.topic, 0, h.ck.pop_time, BROKER, (unit.offset,)))
        )
        unit.ck = ck.key  # ...then the old one is acked
        self.handles.remove(h)
        self.handles.append(Handle(h.unit, ck.key, invisible * 1000))

    @rule(seconds=st.integers(0, 20))
    def advance(self, seconds: int) -> None:
        self.now += seconds * 1000

    @rule()
    def revive(self) -> None:
        self._scan()
        for pending in self.state.due(self.now):
            ck = pending.ck
            offsets = pending.unacked_offsets()
            for offset in offsets:
                unit = self.units[(ck.topic, offset)]
                assert unit.state == "inflight" and unit.ck == ck.key, f"spurious revive of {unit}"
                unit.state = "revived"
                self._new_unit("R", unit.msg)  # the retry copy
            self.log.append(
                ("ack", AckMsg(ck.start_offset, GROUP, ck.topic, 0, ck.pop_time, BROKER, tuple(offsets)))
            )
            self.state.revived(ck.key, offsets)

    @rule()
    def persist_progress(self) -> None:
        self.persisted = self.state.commit_offset()

    @rule()
    def restart(self) -> None:
        self.state = ReviveQueueState(self.persisted)

    # -- invariants --------------------------------------------------------------------------------------
    @invariant()
    def progress_never_passes_an_inflight_checkpoint(self) -> None:
        commit = self.state.commit_offset()
        for offset in range(commit):
            kind, rec = self.log[offset]
            if kind == "ck":
                assert isinstance(rec, PopCheckPoint)
                live = [u for u in self.units.values() if u.state == "inflight" and u.ck == rec.key]
                assert not live, f"revive progress {commit} passed checkpoint {rec.key} of {live}"

    def teardown(self) -> None:
        """Time runs on; consumers pop and ack everything; every message must end up acked."""
        for _ in range(200):
            self.now += 31_000
            self.revive()
            while any(u.state == "available" for u in self.units.values()):
                for topic in ("T", "R"):
                    self.pop(topic, 4, 30)
                for h in list(self.handles):
                    if self.units[h.unit].state == "inflight" and self.units[h.unit].ck == h.ck:
                        self.ack_handle(h)
            if not any(u.state in ("available", "inflight") for u in self.units.values()):
                break
        assert self.acked_msgs == set(range(self.messages)), "a message was lost"

    def ack_handle(self, h: Handle) -> None:
        unit = self.units[h.unit]
        self.log.append(
            ("ack", AckMsg(h.ck.start_offset, GROUP, h.ck.topic, 0, h.ck.pop_time, BROKER, (unit.offset,)))
        )
        unit.state = "acked"
        self.acked_msgs.add(unit.msg)
        self.handles.remove(h)


ReviveModel.TestCase.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestReviveModel = ReviveModel.TestCase
