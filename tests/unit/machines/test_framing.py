"""The message-framing machine (ack and read): pure, no sockets, no clock."""

from __future__ import annotations

from typing import List, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reactor.machines import (
    ACK,
    AckMachine,
    EndOfStream,
    Event,
    MachineError,
    MessageReceived,
    ReadMachine,
    Rejected,
    TimedOut,
)
from reactor.machines.framing import TRANSITIONS, State, Trigger


def feed(machine, data: bytes, splits: List[int], eof: bool = True) -> List[Event]:
    """Feed ``data`` cut at ``splits``; return every event in order."""
    events: List[Event] = []
    if machine.state is State.NEW:
        events += machine.start(0.0)
    cuts = sorted(set(s for s in splits if 0 < s < len(data)))
    for start, end in zip([0] + cuts, cuts + [len(data)]):
        if machine.finished:
            break
        events += machine.receive_data(data[start:end], 1.0)
    if eof and not machine.finished:
        events += machine.receive_eof(2.0)
    return events


def one_byte_splits(data: bytes) -> List[int]:
    return list(range(1, len(data)))


SAMPLE = b"Half a league, half a league ... \0second\r\nthird\n\n\0last"


def test_messages_end_at_nul_newline_and_eof() -> None:
    events = feed(ReadMachine(), SAMPLE, [])
    assert events == [
        MessageReceived(b"Half a league, half a league ... "),
        MessageReceived(b"second"),
        MessageReceived(b"third"),
        MessageReceived(b"last"),
        EndOfStream(),
    ]


def test_one_byte_delivery_equals_one_piece() -> None:
    assert feed(ReadMachine(), SAMPLE, one_byte_splits(SAMPLE)) == feed(ReadMachine(), SAMPLE, [])


def test_every_single_split_offset_gives_the_same_events() -> None:
    whole = feed(ReadMachine(), SAMPLE, [])
    for offset in range(1, len(SAMPLE)):
        assert feed(ReadMachine(), SAMPLE, [offset]) == whole, offset


def test_hundred_messages_coalesced_in_one_segment() -> None:
    data = b"".join(b"message %d\0" % i for i in range(100))
    events = feed(ReadMachine(), data, [])
    assert events[:-1] == [MessageReceived(b"message %d" % i) for i in range(100)]
    assert events[-1] == EndOfStream()


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300).map(lambda b: b.replace(b"x", b"\n")),
       splits=st.lists(st.integers(0, 300), max_size=20),
       limit=st.integers(1, 40))
def test_property_any_split_same_events(data: bytes, splits: List[int], limit: int) -> None:
    whole = feed(ReadMachine(max_message=limit), data, [])
    assert feed(ReadMachine(max_message=limit), data, splits) == whole
    assert feed(ReadMachine(max_message=limit), data, one_byte_splits(data)) == whole


def test_ack_sends_exactly_the_18_byte_acknowledgement_first() -> None:
    machine = AckMachine()
    assert machine.data_to_send() == b""
    machine.start(0.0)
    assert machine.data_to_send() == b"You are connected!" == ACK
    assert len(ACK) == 18
    assert machine.data_to_send() == b""  # handed over once


def test_ack_reports_every_message_and_stays_open() -> None:
    machine = AckMachine()
    machine.start(0.0)
    assert machine.receive_data(b"one\ntwo\n", 1.0) == [MessageReceived(b"one"),
                                                        MessageReceived(b"two")]
    assert not machine.finished
    assert machine.receive_data(b"three", 2.0) == []
    assert machine.receive_eof(3.0) == [MessageReceived(b"three"), EndOfStream()]
    assert machine.finished


def test_non_utf8_is_readable() -> None:
    events = feed(ReadMachine(), b"caf\xe9 \xff\0", [])
    assert events[0].text == "caf\\xe9 \\xff"  # type: ignore[attr-defined]


@pytest.mark.parametrize("chunking", ["whole", "bytes"])
def test_over_long_message_is_rejected_without_buffering_past_the_limit(chunking: str) -> None:
    machine = ReadMachine(max_message=10)
    data = b"ok\n" + b"y" * 1000
    splits = one_byte_splits(data) if chunking == "bytes" else []
    events = feed(machine, data, splits)
    assert events == [MessageReceived(b"ok"), Rejected("message longer than 10 bytes")]
    assert machine.finished
    assert len(machine._buffer) == 0


def test_limit_counts_the_message_not_its_crlf() -> None:
    for splits in ([], [3], one_byte_splits(b"abc\r\n")):
        assert feed(ReadMachine(max_message=3), b"abc\r\n", splits)[0] == MessageReceived(b"abc")
    assert feed(ReadMachine(max_message=3), b"abc\r", [])[0] == Rejected(
        "message longer than 3 bytes")


def test_message_deadline_fires_at_not_before() -> None:
    machine = ReadMachine(message_timeout=30)
    machine.start(100.0)
    assert machine.deadline is None  # no message begun
    machine.receive_data(b"x", 110.0)
    assert machine.deadline == 140.0
    assert machine.handle_timer(139.999) == []
    assert machine.handle_timer(140.0) == [TimedOut("message not complete within 30s")]
    assert machine.finished and machine.deadline is None
    assert machine.handle_timer(150.0) == []  # harmless once finished


@pytest.mark.parametrize("timeout", [0, None])
def test_zero_or_none_disables_the_message_timeout(timeout: Optional[float]) -> None:
    machine = ReadMachine(message_timeout=timeout)
    machine.start(0.0)
    machine.receive_data(b"unfinished", 1.0)
    assert machine.deadline is None
    assert machine.handle_timer(1e9) == []


def test_message_deadline_stops_a_trickler() -> None:
    machine = ReadMachine(message_timeout=25)
    machine.start(0.0)
    t = 0.0
    for _ in range(3):  # one byte every 9 s: never idle, never done
        t += 9
        machine.receive_data(b"z", t)
        assert machine.handle_timer(t) == []
    assert machine.deadlines.message_started == 9.0
    assert machine.deadline == 34.0
    assert machine.handle_timer(34.0) == [TimedOut("message not complete within 25s")]


def test_completed_message_clears_the_message_deadline() -> None:
    machine = ReadMachine(message_timeout=5)
    machine.start(0.0)
    machine.receive_data(b"abc", 1.0)
    assert machine.deadline == 6.0
    machine.receive_data(b"\n", 2.0)
    assert machine.deadline is None
    machine.receive_data(b"\nnext", 3.0)
    assert machine.deadline == 8.0


def test_states_follow_the_table() -> None:
    machine = ReadMachine()
    assert machine.state is State.NEW
    machine.start(0.0)
    assert machine.state is State.IDLE
    machine.receive_data(b"part", 1.0)
    assert machine.state is State.IN_MESSAGE
    machine.receive_data(b"\n", 1.0)
    assert machine.state is State.IDLE
    machine.receive_eof(2.0)
    assert machine.state is State.CLOSED
    assert all(next_state in State for next_state in TRANSITIONS.values())


@pytest.mark.parametrize("action", ["data", "eof", "start"])
def test_impossible_event_names_state_and_event(action: str) -> None:
    machine = ReadMachine()
    machine.start(0.0)
    machine.receive_eof(1.0)
    with pytest.raises(MachineError) as info:
        if action == "data":
            machine.receive_data(b"late", 2.0)
        elif action == "eof":
            machine.receive_eof(2.0)
        else:
            machine.start(2.0)
    assert "CLOSED" in str(info.value) and info.value.state is State.CLOSED
    assert info.value.trigger in Trigger
    assert info.value.trigger.name in str(info.value)


def test_data_before_start_is_an_error() -> None:
    with pytest.raises(MachineError, match="in state NEW"):
        ReadMachine().receive_data(b"x", 0.0)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        ReadMachine(max_message=0)
    with pytest.raises(ValueError):
        ReadMachine(message_timeout=-1)
