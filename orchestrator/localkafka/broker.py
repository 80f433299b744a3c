"""Fetch, configure, start and stop the local Kafka broker.

The broker is assembled from Maven Central by ``deploy/kafka/pom.xml`` (no tarball download),
formatted for KRaft once, and started detached so that it outlives the command that started it.
Everything it writes lives under ``var/kafka`` in the project.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import shutil
import signal
import socket
import string
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_DIR = PROJECT_ROOT / "deploy" / "kafka"


class BrokerError(RuntimeError):
    """The local broker could not be prepared, started or stopped; the message says why."""


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    pid: int | None
    port: int
    answers: bool
    log_path: Path

    def describe(self) -> str:
        if self.running and self.answers:
            return f"Kafka is running (pid {self.pid}) on 127.0.0.1:{self.port}; log: {self.log_path}"
        if self.answers:
            return f"a Kafka broker answers on 127.0.0.1:{self.port} (not started by this project)"
        if self.running:
            return f"Kafka process {self.pid} is up but 127.0.0.1:{self.port} does not answer yet"
        return f"Kafka is not running on 127.0.0.1:{self.port}"


class LocalBroker:
    """The development broker under ``home`` (default ``var/kafka``), listening on ``port``.

    The controller listens on ``port + 1``. All methods are idempotent.

    A broker with another listener (TLS, SASL) takes ``properties`` that replace or add lines
    of the rendered ``server.properties``, ``scram_credentials`` that ``kafka-storage format``
    stores before the first start (``--add-scram`` arguments, e.g.
    ``SCRAM-SHA-512=[name=app,password=secret]``), and ``client_options`` (aiokafka keyword
    arguments: security protocol, SASL login, SSL context) with which it is asked whether it
    serves.
    """

    def __init__(self, home: Path | None = None, port: int = 9092, heap: str = "1g",
                 libs: Path | None = None, *, properties: Mapping[str, str] | None = None,
                 scram_credentials: Sequence[str] = (),
                 client_options: Mapping[str, Any] | None = None) -> None:
        self.home = (home or PROJECT_ROOT / "var" / "kafka").resolve()
        self.port = port
        self.heap = heap
        self.properties = dict(properties or {})
        self.scram_credentials = tuple(scram_credentials)
        self.client_options = dict(client_options or {})
        # The jars are shared by every broker home of the project: fetched once.
        self.libs = (libs or PROJECT_ROOT / "var" / "kafka" / "libs").resolve()
        self.data = self.home / "data"
        self.logs = self.home / "logs"
        self.config = self.home / "server.properties"
        self.pid_file = self.home / "broker.pid"
        self.log_path = self.logs / "server.log"

    # ------------------------------------------------------------------ status
    def status(self) -> BrokerStatus:
        pid = self._read_pid()
        running = pid is not None and _process_alive(pid)
        return BrokerStatus(running, pid if running else None, self.port, _port_answers(self.port),
                            self.log_path)

    # ------------------------------------------------------------------ start
    def start(self, timeout: float = 90.0) -> tuple[BrokerStatus, bool]:
        """Start the broker unless it runs already; wait until it serves metadata.

        Returns the status and whether this call started it.
        """
        current = self.status()
        if current.answers:
            self._wait_until_serving(timeout)
            return current, False
        if current.running:
            self._wait_until_serving(timeout)
            return self.status(), False
        _require_tool("java", "Java 17+ runs the local Kafka broker")
        self.fetch()
        self.home.mkdir(parents=True, exist_ok=True)
        self._render_config()
        self._format_storage()
        self.logs.mkdir(parents=True, exist_ok=True)
        stdout = open(self.logs / "stdout.log", "ab")  # noqa: SIM115 - handed to the child
        cmd = [
            "java", f"-Xmx{self.heap}", "-Xms256m", "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{DEPLOY_DIR / 'log4j.properties'}",
            f"-Dkafka.logs.dir={self.logs}",
            "-cp", f"{self.libs}/*", "kafka.Kafka", str(self.config),
        ]
        proc = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        stdout.close()
        self.pid_file.write_text(str(proc.pid))
        deadline = time.monotonic() + timeout
        while not _port_answers(self.port):
            if proc.poll() is not None:
                raise BrokerError(
                    f"Kafka exited with code {proc.returncode} while starting; "
                    f"see {self.logs / 'stdout.log'} and {self.log_path}")
            if time.monotonic() > deadline:
                raise BrokerError(f"Kafka did not open 127.0.0.1:{self.port} within {timeout:.0f} s;"
                                  f" see {self.log_path}")
            time.sleep(0.1)
        self._wait_until_serving(max(5.0, deadline - time.monotonic()))
        return self.status(), True

    # ------------------------------------------------------------------ stop
    def stop(self, timeout: float = 60.0) -> bool:
        """Shut the broker down cleanly (SIGTERM, then SIGKILL after ``timeout``).

        Returns whether a running broker was stopped.
        """
        pid = self._read_pid()
        if pid is None or not _process_alive(pid):
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _process_alive(pid):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                break
            time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)
        return True

    # ------------------------------------------------------------------ fetch
    def fetch(self) -> None:
        """Resolve the broker's jars from Maven Central into ``libs`` (only when the pom changed)."""
        pom = DEPLOY_DIR / "pom.xml"
        stamp = self.libs.parent / "libs.sha256"
        digest = hashlib.sha256(pom.read_bytes()).hexdigest()
        if stamp.exists() and stamp.read_text() == digest and any(self.libs.glob("kafka_*.jar")):
            return
        _require_tool("mvn", "Maven fetches the Kafka broker from Maven Central")
        if self.libs.exists():
            shutil.rmtree(self.libs)
        self.libs.parent.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            ["mvn", "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
             f"-DoutputDirectory={self.libs}", "-DincludeScope=runtime"],
            capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise BrokerError("Maven could not fetch Kafka:\n" + (result.stdout + result.stderr)[-3000:])
        stamp.write_text(digest)

    # ------------------------------------------------------------------ helpers
    def _render_config(self) -> None:
        template = string.Template((DEPLOY_DIR / "server.properties.template").read_text())
        self.config.write_text(override_properties(template.substitute(
            port=self.port, controller_port=self.port + 1, data_dir=self.data), self.properties))

    def _format_storage(self) -> None:
        if (self.data / "meta.properties").exists():
            return
        self.data.mkdir(parents=True, exist_ok=True)
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        self.run_tool("kafka.tools.StorageTool",
                      *format_arguments(cluster_id, self.config, self.scram_credentials))

    def run_tool(self, main_class: str, *args: str) -> str:
        """Run one of the broker's own tools (the class behind a ``kafka-*.sh`` script, e.g.
        ``kafka.admin.AclCommand`` for ``kafka-acls.sh``); return its output."""
        result = subprocess.run(
            ["java", "-cp", f"{self.libs}/*",
             f"-Dlog4j.configuration=file:{DEPLOY_DIR / 'log4j.properties'}",
             f"-Dkafka.logs.dir={self.logs}", main_class, *args],
            capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise BrokerError(f"{main_class} {' '.join(args[:2])} failed:\n{result.stdout}{result.stderr}")
        return result.stdout

    def _wait_until_serving(self, timeout: float) -> None:
        asyncio.run(wait_for_metadata(f"127.0.0.1:{self.port}", timeout, self.client_options))

    def _read_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None


def format_arguments(cluster_id: str, config: Path, scram_credentials: Sequence[str] = ()
                     ) -> list[str]:
    """``kafka-storage format`` arguments. The cluster id is joined to its option with ``=``: a
    random id may start with ``-`` (one in 64), which the tool would take for an option."""
    return ["format", f"--cluster-id={cluster_id}", "--config", str(config), "--ignore-formatted",
            *(arg for credential in scram_credentials for arg in ("--add-scram", credential))]


def override_properties(text: str, overrides: Mapping[str, str]) -> str:
    """``text`` (a properties file) with each key of ``overrides`` set: its line replaced in
    place, or appended when the file has none.

    >>> override_properties("a=1\\n# b=2\\nc=3\\n", {"c": "4", "d": "5"})
    'a=1\\n# b=2\\nc=4\\nd=5\\n'
    """
    remaining = dict(overrides)
    lines = []
    for line in text.splitlines():
        key = line.split("=", 1)[0].strip()
        if not line.lstrip().startswith("#") and key in remaining:
            line = f"{key}={remaining.pop(key)}"
        lines.append(line)
    lines.extend(f"{key}={value}" for key, value in remaining.items())
    return "\n".join(lines) + "\n"


async def wait_for_metadata(bootstrap: str, timeout: float,
                            client_options: Mapping[str, Any] | None = None) -> None:
    """Wait until the broker at ``bootstrap`` answers a metadata request with a controller
    (connecting with ``client_options``: aiokafka's security keyword arguments)."""
    from aiokafka.admin import AIOKafkaAdminClient  # the shell's import, not the core's

    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        admin = AIOKafkaAdminClient(**{**(client_options or {}), "bootstrap_servers": bootstrap},
                                    request_timeout_ms=5000)
        try:
            await admin.start()
            await admin.list_topics()
            return
        except Exception as exc:
            last_error = exc
            await asyncio.sleep(0.2)
        finally:
            with contextlib.suppress(Exception):
                await admin.close()
    raise BrokerError(f"Kafka at {bootstrap} did not serve metadata within {timeout:.0f} s: {last_error}")


def _require_tool(name: str, why: str) -> None:
    if shutil.which(name) is None:
        raise BrokerError(f"'{name}' was not found on PATH. {why}; install it and try again.")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still "exists"; treat it as gone.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _port_answers(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0
