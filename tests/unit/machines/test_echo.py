"""The echo machine: pure, no sockets, no clock."""

from __future__ import annotations

from typing import List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reactor.machines import (
    Echoed,
    EchoMachine,
    EndOfStream,
    IncompleteRecord,
    MachineError,
    TimedOut,
)
from reactor.machines.echo import State


def echo_all(machine: EchoMachine, data: bytes, splits: List[int]) -> bytes:
    machine.start(0.0)
    out = b""
    cuts = sorted(set(s for s in splits if 0 < s < len(data)))
    for start, end in zip([0] + cuts, cuts + [len(data)]):
        machine.receive_data(data[start:end], 1.0)
        out += machine.data_to_send()
    return out


def test_every_byte_comes_back_at_once() -> None:
    machine = EchoMachine()
    machine.start(0.0)
    assert machine.receive_data(b"abc", 1.0) == [Echoed(b"abc")]
    assert machine.data_to_send() == b"abc"
    assert machine.state is State.OPEN


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=2000), splits=st.lists(st.integers(0, 2000), max_size=30),
       size=st.one_of(st.none(), st.integers(1, 300)))
def test_property_output_independent_of_splits(data: bytes, splits: List[int], size) -> None:
    whole = echo_all(EchoMachine(record_size=size), data, [])
    assert echo_all(EchoMachine(record_size=size), data, splits) == whole
    expected = data if size is None else data[:len(data) - len(data) % size]
    assert whole == expected


def test_record_size_holds_bytes_until_a_record_is_complete() -> None:
    machine = EchoMachine(record_size=250)
    machine.start(0.0)
    assert machine.receive_data(b"a" * 100, 1.0) == []
    assert machine.state is State.IN_RECORD and machine.data_to_send() == b""
    assert machine.receive_data(b"b" * 200, 2.0) == [Echoed(b"a" * 100 + b"b" * 150)]
    assert machine.data_to_send() == b"a" * 100 + b"b" * 150
    assert machine.receive_eof(3.0) == [IncompleteRecord(50), EndOfStream()]
    assert machine.finished


def test_record_deadline() -> None:
    machine = EchoMachine(message_timeout=40, record_size=10)
    machine.start(0.0)
    assert machine.deadline is None and machine.handle_timer(1e9) == []  # no record begun
    trickle = EchoMachine(message_timeout=40, record_size=10)
    trickle.start(0.0)
    for t in (20.0, 40.0, 59.0):
        trickle.receive_data(b"x", t)
    assert trickle.deadline == 60.0  # record began at 20 s
    assert trickle.handle_timer(59.999) == []
    assert trickle.handle_timer(60.0) == [TimedOut("message not complete within 40s")]
    assert trickle.finished and trickle.deadline is None
    whole = EchoMachine(message_timeout=40, record_size=2)
    whole.start(0.0)
    whole.receive_data(b"x", 1.0)
    assert whole.deadline == 41.0
    whole.receive_data(b"y", 2.0)  # the record is complete: no deadline
    assert whole.deadline is None


def test_impossible_events_raise() -> None:
    machine = EchoMachine()
    with pytest.raises(MachineError, match="NEW"):
        machine.receive_data(b"x", 0.0)
    machine.start(0.0)
    machine.receive_eof(1.0)
    with pytest.raises(MachineError, match="EOF in state CLOSED"):
        machine.receive_eof(2.0)
    with pytest.raises(ValueError):
        EchoMachine(record_size=0)
