"""Cutting data the way TCP might."""

from __future__ import annotations

import random
from typing import List, Optional, Sequence, Union

__all__ = ["chunks", "random_chunks"]


def chunks(data: bytes, sizes: Union[int, Sequence[int]]) -> List[bytes]:
    """``data`` cut into pieces: all of ``sizes`` bytes, or of each size in
    turn (the last size repeats).  ``b"".join(chunks(d, s)) == d``."""
    pieces: List[bytes] = []
    sequence = [sizes] if isinstance(sizes, int) else list(sizes)
    if not sequence or min(sequence) < 1:
        raise ValueError("chunk sizes must be at least 1")
    start = 0
    while start < len(data):
        size = sequence[min(len(pieces), len(sequence) - 1)]
        pieces.append(bytes(data[start:start + size]))
        start += size
    return pieces


def random_chunks(data: bytes, seed: Optional[int] = None, max_size: int = 16) -> List[bytes]:
    """``data`` cut at random places into pieces of 1 to ``max_size`` bytes;
    the same ``seed`` gives the same cuts."""
    rng = random.Random(seed)
    return chunks(data, [rng.randint(1, max_size) for _ in range(len(data) or 1)])
