"""Typed state stores over the worker's tables, with a write-behind cache per partition.

A :class:`TableStore` hands out and takes back decoded objects (a :class:`Profile`, a
:class:`VisitorLink`); it owns their encoding. Writes and deletes are held in memory until
:meth:`TableStore.flush` writes one partition's changes to the table: one table write (one
changelog record, one RocksDB put) per key per flush, however many records changed the key in
between, and no decode/encode of a profile per record while it is held. Reads see held changes
first, so everything in the worker (the journey, the label sweep, ``GET /context``) reads the
latest state.

Why the flush is per partition: a Faust table write goes to the changelog partition and the
RocksDB partition of the record being processed (``current_event()``), so the changes of
partition N are written while a record of partition N is in hand. The agent acknowledges a
record only after its partition was flushed (see ``runtime/app.py``), so the offsets Faust
commits never run ahead of the state written.

Over a plain ``dict`` (tests) the store behaves the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import Generic, TypeVar

import orjson

from orchestrator.core.identity import VisitorLink
from orchestrator.core.profile import Profile

T = TypeVar("T")

_DELETED = object()


class TableStore(Generic[T]):
    """Objects of one kind by key, over a table of bytes."""

    def __init__(self, table: MutableMapping[str, bytes], encode: Callable[[T], bytes],
                 decode: Callable[[bytes], T]) -> None:
        self.table = table
        # A Faust table answers a read by asking its store twice (``in``, then the value) and
        # raises KeyError inside for a key it does not hold; its store (the documented
        # ``Table.data``) answers in one look-up. A plain mapping (tests) is read as it is.
        self._reads: Mapping[str, bytes] = getattr(table, "data", table)
        self._encode = encode
        self._decode = decode
        #: key -> the object to write, or _DELETED; only keys changed since their flush.
        self._held: dict[str, object] = {}
        #: partition -> keys held for it, in the order they were first changed.
        self._held_keys: dict[int, list[str]] = {}

    def get(self, key: str) -> T | None:
        held = self._held.get(key)
        if held is not None:
            return None if held is _DELETED else held  # type: ignore[return-value]
        stored = self._reads.get(key)
        return self._decode(stored) if stored else None

    def put(self, key: str, value: T, partition: int) -> None:
        """Hold ``value`` for ``key`` (on ``partition``) until the partition is flushed."""
        if key not in self._held:
            self._held_keys.setdefault(partition, []).append(key)
        self._held[key] = value

    def delete(self, key: str, partition: int) -> None:
        if key not in self._held:
            self._held_keys.setdefault(partition, []).append(key)
        self._held[key] = _DELETED

    def flush(self, partition: int) -> int:
        """Write the partition's held changes to the table; return how many keys were written.

        Must run while a record of ``partition`` is being processed (Faust writes a table key to
        the changelog partition of the current record)."""
        keys = self._held_keys.pop(partition, None)
        if not keys:
            return 0
        table, held, encode = self.table, self._held, self._encode
        for key in keys:
            value = held.pop(key)
            if value is _DELETED:
                if table.get(key) is not None:
                    del table[key]
            else:
                table[key] = encode(value)  # type: ignore[arg-type]
        return len(keys)

    def held_count(self, partition: int) -> int:
        """Keys of ``partition`` changed since its last flush."""
        keys = self._held_keys.get(partition)
        return len(keys) if keys else 0

    def held_partitions(self) -> list[int]:
        return [partition for partition, keys in self._held_keys.items() if keys]

    def discard(self, partitions: Iterable[int]) -> None:
        """Forget held changes of partitions taken away (a rebalance): their records were not
        acknowledged, so the partition's new owner processes them again from the last commit."""
        for partition in partitions:
            for key in self._held_keys.pop(partition, ()):
                self._held.pop(key, None)


def encode_profile(profile: Profile) -> bytes:
    """A profile as the ``profiles`` table stores it."""
    # The layout every version so far has written (``Profile.to_layout``): old RocksDB files and
    # changelog records decode unchanged.
    return orjson.dumps(profile.to_layout())


def decode_profile(stored: bytes) -> Profile:
    """A profile from the ``profiles`` table (any layout it has held)."""
    return Profile.from_layout(orjson.loads(stored))


def _encode_link(link: VisitorLink) -> bytes:
    return orjson.dumps(link.to_dict())


def _decode_link(stored: bytes) -> VisitorLink:
    return VisitorLink.from_dict(orjson.loads(stored))


class PersonStore(TableStore[Profile]):
    """Profiles by person id (table ``profiles``)."""

    def __init__(self, table: MutableMapping[str, bytes]) -> None:
        super().__init__(table, encode_profile, decode_profile)


class LinkStore(TableStore[VisitorLink]):
    """Visitor links by visitor id (table ``identity``)."""

    def __init__(self, table: MutableMapping[str, bytes]) -> None:
        super().__init__(table, _encode_link, _decode_link)
