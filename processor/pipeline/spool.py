"""The spool: the valid rows' payloads of a file, on disk between validation and the transaction, so
that memory stays bounded by a chunk whatever the file's size."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def spool_chunk(spool: IO[bytes], payloads: list[Any]) -> None:
    """Append a chunk's payloads to the spool.

    Named tuples (the usual payload) are written as plain tuples plus their type: pickle handles plain
    tuples in C, but calls back into Python for every named tuple, which doubled the cost of the spool.
    """
    kind = type(payloads[0]) if payloads else None
    named_tuples = kind is not None and issubclass(kind, tuple) and hasattr(kind, "_make")
    if named_tuples and all(type(payload) is kind for payload in payloads):
        pickle.dump((kind, [tuple(payload) for payload in payloads]), spool)
    else:
        pickle.dump((None, payloads), spool)


def read_spool(spool: Path) -> Iterator[list[Any]]:
    """The chunks of payloads ``spool_chunk`` wrote, in order and as they were validated."""
    # This process wrote the spool into its own processing folder moments ago: no foreign pickles.
    with spool.open("rb") as handle:
        while True:
            try:
                kind, payloads = pickle.load(handle)  # noqa: S301
            except EOFError:
                return
            yield payloads if kind is None else list(map(kind._make, payloads))
