"""Resetting a worker's local state deletes its data dir and nothing that is not one."""

from __future__ import annotations

import fcntl
from pathlib import Path

import pytest

from orchestrator.runtime.local_state import LocalStateError, reset_local_state, stale_state_message


def data_dir(root: Path) -> Path:
    tables = root / "worker-6066" / "v1" / "tables" / "profiles-0.db"
    tables.mkdir(parents=True)
    (tables / "LOCK").write_bytes(b"")
    (tables / "000001.sst").write_bytes(b"rows")
    return root / "worker-6066"


def test_a_data_dir_is_deleted_whole(tmp_path: Path) -> None:
    path = data_dir(tmp_path)
    assert reset_local_state(path) is True
    assert not path.exists() and tmp_path.exists()


def test_nothing_to_reset_when_the_data_dir_does_not_exist(tmp_path: Path) -> None:
    assert reset_local_state(tmp_path / "never-made") is False


@pytest.mark.parametrize("stranger", ["notes.txt", "src", "v1x"])
def test_a_directory_holding_anything_but_faust_version_dirs_is_refused_and_kept(
        tmp_path: Path, stranger: str) -> None:
    path = data_dir(tmp_path)
    if "." in stranger:
        (path / stranger).write_text("mine")
    else:
        (path / stranger).mkdir()
    with pytest.raises(LocalStateError, match=f"does not look like a worker's data dir.*{stranger}"):
        reset_local_state(path)
    assert (path / "v1" / "tables").is_dir()


def test_a_directory_without_tables_or_a_link_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty" / "v1").mkdir(parents=True)
    with pytest.raises(LocalStateError, match="no table data"):
        reset_local_state(tmp_path / "empty")
    (tmp_path / "link").symlink_to(data_dir(tmp_path))
    with pytest.raises(LocalStateError, match="not a directory"):
        reset_local_state(tmp_path / "link")
    assert (tmp_path / "worker-6066" / "v1" / "tables").is_dir()


def test_a_data_dir_open_in_a_running_worker_is_refused(tmp_path: Path) -> None:
    import multiprocessing

    path = data_dir(tmp_path)
    lock = path / "v1" / "tables" / "profiles-0.db" / "LOCK"
    ready, done = multiprocessing.Event(), multiprocessing.Event()
    holder = multiprocessing.Process(target=_hold_lock, args=(str(lock), ready, done))
    holder.start()
    try:
        assert ready.wait(10)
        with pytest.raises(LocalStateError, match="open in a running worker"):
            reset_local_state(path)
    finally:
        done.set()
        holder.join(10)
    assert reset_local_state(path) is True


def _hold_lock(lock: str, ready, done) -> None:  # RocksDB's own lock: a POSIX record lock
    with open(lock, "r+b") as handle:
        fcntl.lockf(handle, fcntl.LOCK_EX)
        ready.set()
        done.wait(10)


def test_the_stale_state_message_names_the_data_dir_and_the_command() -> None:
    message = stale_state_message(Path("/srv/w1"), "The persisted offset for changelog topic "
                                  "partition p-0 is higher\nthan the last offset")
    assert "/srv/w1" in message and "orchestrator worker --reset-local-state" in message
    assert "persisted offset for changelog topic partition p-0 is higher" in message
