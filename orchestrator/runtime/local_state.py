"""A worker's local table state (its data dir): telling when it is stale, and resetting it.

The tables live in Kafka changelog topics; the data dir is this worker's RocksDB copy of its
partitions, with the changelog offset each copy has reached. When the broker loses its data
(a re-formatted development broker, a new cluster under the same address) while the data dir is
kept, the copy claims offsets the changelog never reached, and Faust refuses to start
(``faust.exceptions.ConsistencyError``). The copy cannot be trusted then: the fix is to delete
it and let the worker rebuild it from the broker, which ``orchestrator worker
--reset-local-state`` does.
"""

from __future__ import annotations

import errno
import fcntl
import re
import shutil
from pathlib import Path

#: Faust keeps tables under ``<data dir>/v<app version>/tables``.
_VERSION_DIR = re.compile(r"^v\d+$")


class LocalStateError(Exception):
    """The local state does not fit the broker, or cannot be reset; the message says what to do."""


def stale_state_message(data_dir: Path, detail: str) -> str:
    """What to tell the user when Faust found the local state ahead of the changelog."""
    first_line = detail.strip().splitlines()[0] if detail.strip() else "persisted offset > highwater"
    return (f"the local table state in {data_dir} is ahead of the broker's changelog topics "
            f"({first_line}): the broker lost its data (re-formatted, or a new cluster at the same "
            f"address) while this data dir was kept. Rebuild the state from the broker: run this "
            f"worker again with the same options plus --reset-local-state (it deletes {data_dir} "
            f"first, nothing else), e.g.\n"
            f"    orchestrator worker --reset-local-state --data-dir {data_dir}")


def check_data_dir(data_dir: Path) -> list[Path]:
    """The Faust version dirs (``v<N>``) of ``data_dir``, after checking that it is a worker's
    data dir and nothing else: a real directory (not a link), holding only ``v<N>``
    directories, at least one with a ``tables`` directory, and no table of it open by a live
    process. Raises :class:`LocalStateError` naming what does not fit."""
    if data_dir.is_symlink() or not data_dir.is_dir():
        raise LocalStateError(f"{data_dir} is not a directory (a link is not followed)")
    entries = sorted(data_dir.iterdir())
    strangers = [e.name for e in entries if not (_VERSION_DIR.match(e.name) and e.is_dir()
                                                 and not e.is_symlink())]
    if strangers:
        raise LocalStateError(f"{data_dir} does not look like a worker's data dir (it holds "
                              f"{', '.join(strangers[:5])}); not deleted")
    if not any((entry / "tables").is_dir() for entry in entries):
        raise LocalStateError(f"{data_dir} holds no table data (no v<N>/tables); not deleted")
    for lock in data_dir.glob("v*/tables/*/LOCK"):
        if _locked(lock):
            raise LocalStateError(f"{lock.parent} is open in a running worker; stop it first")
    return entries


def reset_local_state(data_dir: Path) -> bool:
    """Delete ``data_dir`` once :func:`check_data_dir` accepts it; False when it does not exist.

    The worker then rebuilds its tables from the changelog topics on the broker."""
    if not data_dir.exists() and not data_dir.is_symlink():
        return False
    check_data_dir(data_dir)
    shutil.rmtree(data_dir)
    return True


def _locked(lock_file: Path) -> bool:
    """Whether another process holds RocksDB's lock on ``lock_file`` (a POSIX record lock)."""
    try:
        with open(lock_file, "r+b") as handle:
            try:
                fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EACCES, errno.EAGAIN):
                    return True
                raise
            fcntl.lockf(handle, fcntl.LOCK_UN)
    except FileNotFoundError:
        return False
    return False
