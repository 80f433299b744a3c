"""A worker whose local state outlived the broker's data says what to run, and that fixes it."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

from orchestrator.demo import last_error_lines, start_worker_process, stop_process, wait_until_ready
from orchestrator.localkafka import LocalBroker
from tests.e2e.conftest import free_port, settings_from_env
from tests.integration.test_broker_outage import _direct_link_round_trip


async def test_a_worker_with_state_the_broker_lost_names_the_fix_and_reset_local_state_starts_it(
        own_broker: LocalBroker, tmp_path: Path, unique: str) -> None:
    bootstrap = f"127.0.0.1:{own_broker.port}"
    data_dir = tmp_path / "data"
    env = {"ORCHESTRATOR_BOOTSTRAP_SERVERS": bootstrap, "ORCHESTRATOR_APP_ID": f"stale-{unique}",
           "ORCHESTRATOR_WEB_PORT": str(free_port()), "ORCHESTRATOR_DATA_DIR": str(data_dir)}
    settings = settings_from_env(env)
    worker, _ = start_worker_process(settings, tmp_path, env)
    try:
        wait_until_ready(settings.web_port, worker, 120)
        # Six customers on four partitions: one partition's changelog gets two records at least
        # (Faust's consistency check sees only persisted offsets above 0).
        for n in range(6):
            await _direct_link_round_trip(bootstrap, f"before-{n}")
    finally:
        stop_process(worker)
    assert list(data_dir.glob("v*/tables/*.db")), "the worker kept no local state"

    # The broker loses its data: wiped and formatted anew, at the same address.
    await asyncio.to_thread(own_broker.stop)
    shutil.rmtree(own_broker.data)
    await asyncio.to_thread(own_broker.start, 120)

    (tmp_path / "refused").mkdir()
    refused, refused_log = start_worker_process(settings, tmp_path / "refused", env)
    try:
        code = await asyncio.to_thread(refused.wait, 120)
    except subprocess.TimeoutExpired:
        stop_process(refused)
        raise AssertionError("the worker did not stop on stale local state:\n"
                             + last_error_lines(refused_log, 40)) from None
    said = last_error_lines(refused_log)
    assert code == 2, said
    assert said.startswith("error: the local table state in") and str(data_dir) in said
    assert "--reset-local-state" in said

    (tmp_path / "reset").mkdir()
    reset, reset_log = start_worker_process(settings, tmp_path / "reset", env,
                                            extra_args=["--reset-local-state"])
    try:
        wait_until_ready(settings.web_port, reset, 120)
        assert "local state deleted" in reset_log.read_text(errors="replace")
        assert await _direct_link_round_trip(bootstrap, "after") < 60
    finally:
        stop_process(reset)
