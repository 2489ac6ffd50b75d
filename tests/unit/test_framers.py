"""reactor.framing: every split of a stream gives the same frames, one byte
at a time included; limits hold; malformed input is refused."""

from __future__ import annotations

from typing import Callable, List, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reactor.framing import (
    FrameError,
    Framer,
    FrameTooLong,
    LengthPrefixFramer,
    LineFramer,
    NetstringFramer,
    RecordFramer,
)
from reactor.testing import chunks

DELIMITERS = [b"\n", b"\r\n", b"\0", b"--end--"]


def feed_split(framer: Framer, stream: bytes, cuts: List[int]) -> Tuple[List[bytes], object]:
    """Feed ``stream`` cut at ``cuts``; return every frame delivered (from
    feed() or an error's frames) and the error, if any.  Also checks that
    the framer never holds more than its limit plus the chunk just fed."""
    frames: List[bytes] = []
    points = [0] + sorted(set(c for c in cuts if 0 < c < len(stream))) + [len(stream)]
    for start, end in zip(points, points[1:]):
        try:
            frames += framer.feed(stream[start:end])
        except FrameError as exc:
            return frames + exc.frames, type(exc)
        if framer.max_length is not None:
            assert framer.pending <= framer.max_length + (end - start) + 8
    return frames, None


def line_frames(delimiter: bytes) -> st.SearchStrategy:
    """Lines that can be framed: the delimiter's first occurrence in
    ``line + delimiter`` is the one added."""
    line = st.binary(max_size=40) | st.lists(
        st.sampled_from([delimiter[:1], delimiter[1:2] or b"x", b"x"]), max_size=20).map(b"".join)
    return st.lists(line.filter(lambda b: (b + delimiter).find(delimiter) == len(b)),
                    max_size=12)


FRAMERS: List[Tuple[str, Callable[[], Framer], st.SearchStrategy]] = [
    *[(f"line {d!r}", lambda d=d: LineFramer(d, max_length=64), line_frames(d))
      for d in DELIMITERS],
    *[(f"length {n}", lambda n=n: LengthPrefixFramer(n, max_length=64),
       st.lists(st.binary(max_size=40), max_size=12)) for n in (1, 2, 4, 8)],
    ("length little", lambda: LengthPrefixFramer(2, "little", max_length=64),
     st.lists(st.binary(max_size=40), max_size=12)),
    ("netstring", lambda: NetstringFramer(max_length=64),
     st.lists(st.binary(max_size=40), max_size=12)),
    ("record", lambda: RecordFramer(7),
     st.lists(st.binary(min_size=7, max_size=7), max_size=12)),
]


@pytest.mark.parametrize("name,make,frames_strategy", FRAMERS, ids=[f[0] for f in FRAMERS])
@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_every_split_gives_the_same_frames(name: str, make: Callable[[], Framer],
                                           frames_strategy: st.SearchStrategy,
                                           data: st.DataObject) -> None:
    frames = data.draw(frames_strategy)
    stream = b"".join(make().encode(frame) for frame in frames)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=20))
    assert feed_split(make(), stream, cuts) == (frames, None)
    assert feed_split(make(), stream, list(range(len(stream)))) == (frames, None)


@pytest.mark.parametrize("name,make,frames_strategy",
                         [f for f in FRAMERS if not f[0].startswith("record")],
                         ids=[f[0] for f in FRAMERS if not f[0].startswith("record")])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_a_frame_over_the_limit_is_refused_the_same_way_whatever_the_split(
        name: str, make: Callable[[], Framer], frames_strategy: st.SearchStrategy,
        data: st.DataObject) -> None:
    before = data.draw(frames_strategy)
    big = b"x" * data.draw(st.integers(65, 200))
    unlimited = make()
    unlimited.max_length = None
    stream = b"".join(make().encode(f) for f in before) + unlimited.encode(big)
    stream += data.draw(st.binary(max_size=30))  # whatever follows
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=20))
    assert feed_split(make(), stream, cuts) == (before, FrameTooLong)
    assert feed_split(make(), stream, list(range(len(stream)))) == (before, FrameTooLong)


def test_a_line_over_the_limit_is_noticed_before_its_end_arrives() -> None:
    framer = LineFramer(b"\r\n", max_length=10)
    assert framer.feed(b"0123456789\r") == []  # could still be a line of 10
    with pytest.raises(FrameTooLong) as raised:
        framer.feed(b"X" * 100000)  # no delimiter will save it now
    assert raised.value.limit == 10 and framer.pending == 0
    with pytest.raises(FrameTooLong):
        framer.feed(b"\r\n")  # unusable afterwards


def test_frames_completed_before_the_error_travel_with_it() -> None:
    framer = LengthPrefixFramer(1, max_length=3)
    with pytest.raises(FrameTooLong) as raised:
        framer.feed(b"\x02hi\x01!\x09too long!")
    assert raised.value.frames == [b"hi", b"!"] and raised.value.length == 9


def test_a_delimiter_split_across_feeds() -> None:
    framer = LineFramer(b"--end--")
    out = []
    for piece in chunks(b"one--end--two--e", 3) + [b"nd--three"]:
        out += framer.feed(piece)
    assert out == [b"one", b"two"] and framer.pending == len(b"three")
    assert framer.take_pending() == b"three" and framer.pending == 0
    assert framer.feed(b"four--end--") == [b"four"]  # starts afresh after take_pending


def test_length_prefix_headers_and_limits() -> None:
    assert LengthPrefixFramer(2).encode(b"abc") == b"\x00\x03abc"
    assert LengthPrefixFramer(4, "little").encode(b"a") == b"\x01\x00\x00\x00a"
    assert LengthPrefixFramer(8).feed(b"\x00" * 7 + b"\x02ok") == [b"ok"]
    with pytest.raises(ValueError, match="cannot say 256 bytes"):
        LengthPrefixFramer(1, max_length=None).encode(b"x" * 256)
    with pytest.raises(FrameTooLong):
        LengthPrefixFramer(2, max_length=10).encode(b"x" * 11)
    with pytest.raises(ValueError, match="1, 2, 4 or 8"):
        LengthPrefixFramer(3)
    framer = LengthPrefixFramer(2)
    assert framer.feed(b"\x00\x05he") == [] and framer.pending == 4  # the header counts
    netstring = NetstringFramer()
    assert netstring.feed(b"12:he") == [] and netstring.pending == 5
    assert netstring.feed(b"llo world!,") == [b"hello world!"] and netstring.pending == 0
    assert framer.take_pending() == b"he"
    assert framer.feed(b"\x00\x01z") == [b"z"]  # a fresh header after take_pending


@pytest.mark.parametrize("bad,why", [(b"5x:hello,", "digits"), (b"05:hello,", "leading zero"),
                                     (b":hello,", "starts with its length"),
                                     (b"5:hello;", "ends with ','")])
def test_malformed_netstrings_are_refused(bad: bytes, why: str) -> None:
    for pieces in ([bad], chunks(bad, 1)):  # whole, and a byte at a time
        framer = NetstringFramer()
        with pytest.raises(FrameError, match=why):
            for piece in pieces:
                framer.feed(piece)


def test_netstrings_and_records() -> None:
    assert NetstringFramer().encode(b"hello") == b"5:hello,"
    assert NetstringFramer().feed(b"0:,3:abc,") == [b"", b"abc"]
    with pytest.raises(FrameTooLong):
        NetstringFramer(max_length=100).feed(b"1000")  # refused before the colon
    records = RecordFramer(3)
    assert records.feed(b"abcdefg") == [b"abc", b"def"] and records.pending == 1
    with pytest.raises(ValueError, match="3 bytes"):
        records.encode(b"ab")


def test_line_framer_refuses_what_it_cannot_frame() -> None:
    with pytest.raises(ValueError, match="contain its delimiter"):
        LineFramer().encode(b"two\nlines")
    with pytest.raises(ValueError, match="empty"):
        LineFramer(b"")
    with pytest.raises(ValueError, match="max_length"):
        LineFramer(max_length=-1)
