"""A worker joins a secured cluster: SASL_SSL with SCRAM-SHA-512, certificates checked.

The broker is a second local one, started here with a SASL_SSL listener, a certificate made
by the test and SCRAM users stored when its storage is formatted.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.demo import start_worker_process, stop_process
from orchestrator.localkafka import LocalBroker
from orchestrator.runtime.kafka_security import client_options
from tests.e2e.conftest import Traffic, WorkerProcess, free_port, settings_from_env
from tests.tls import make_certificates

MECHANISM = "SCRAM-SHA-512"
ENGINE_USER, ENGINE_PASSWORD = "engine", "engine-secret-4f1c"
ADMIN_USER, ADMIN_PASSWORD = "admin", "admin-secret-9b2e"  # the broker's own inter-broker login


@dataclass(frozen=True)
class SecuredBroker:
    broker: LocalBroker
    bootstrap: str
    ca: Path
    password_file: Path  # the engine's password, as a mounted secret would hold it


@pytest.fixture(scope="module")
def secured_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredBroker]:
    home = tmp_path_factory.mktemp("secured-kafka")
    tls = make_certificates(home / "tls")
    port = free_port(2)
    password_file = home / "engine-password"
    password_file.write_text(ENGINE_PASSWORD + "\n")
    env = _security_env(f"127.0.0.1:{port}", tls.ca, ORCHESTRATOR_KAFKA_SASL_PASSWORD_FILE=str(password_file))
    broker = LocalBroker(
        home=home / "kafka", port=port, heap="512m",
        properties={
            "listeners": f"SASL_SSL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{port + 1}",
            "advertised.listeners": f"SASL_SSL://127.0.0.1:{port}",
            "listener.security.protocol.map": "SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "SASL_SSL",
            "sasl.enabled.mechanisms": MECHANISM,
            "sasl.mechanism.inter.broker.protocol": MECHANISM,
            f"listener.name.sasl_ssl.{MECHANISM.lower()}.sasl.jaas.config":
                "org.apache.kafka.common.security.scram.ScramLoginModule required "
                f'username="{ADMIN_USER}" password="{ADMIN_PASSWORD}";',
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(tls.server_pem),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(tls.ca),
        },
        scram_credentials=[f"{MECHANISM}=[name={ADMIN_USER},password={ADMIN_PASSWORD}]",
                           f"{MECHANISM}=[name={ENGINE_USER},password={ENGINE_PASSWORD}]"],
        client_options=client_options(settings_from_env(env)))
    try:
        broker.start(timeout=120)
        yield SecuredBroker(broker, f"127.0.0.1:{port}", tls.ca, password_file)
    finally:
        broker.stop()


def _security_env(bootstrap: str, ca: Path, **extra: str) -> dict[str, str]:
    return {"ORCHESTRATOR_BOOTSTRAP_SERVERS": bootstrap,
            "ORCHESTRATOR_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "ORCHESTRATOR_KAFKA_SASL_MECHANISM": MECHANISM,
            "ORCHESTRATOR_KAFKA_SASL_USERNAME": ENGINE_USER,
            "ORCHESTRATOR_KAFKA_SSL_CAFILE": str(ca), **extra}


def _worker_env(secured: SecuredBroker, unique: str, **extra: str) -> dict[str, str]:
    return {**_security_env(secured.bootstrap, secured.ca, **extra),
            "ORCHESTRATOR_APP_ID": f"secured-{unique}", "ORCHESTRATOR_WEB_PORT": str(free_port())}


async def test_worker_on_a_sasl_ssl_listener_comes_up_ready_and_decides(
        secured_broker: SecuredBroker, tmp_path: Path, unique: str) -> None:
    env = _worker_env(secured_broker, unique,
                      ORCHESTRATOR_KAFKA_SASL_PASSWORD_FILE=str(secured_broker.password_file))
    settings = settings_from_env(env)
    worker = WorkerProcess(settings, env, tmp_path)
    # The test's own clients log in with the password itself rather than the file.
    traffic = Traffic(settings_from_env(
        {**_security_env(secured_broker.bootstrap, secured_broker.ca),
         "ORCHESTRATOR_KAFKA_SASL_PASSWORD": ENGINE_PASSWORD}))
    try:
        worker.start(tmp_path / "data")
        await traffic.start()
        await traffic.page_view("secure-1", "v-secure", "/billing/faq", "billing",
                                customer_id="c-secure")
        link = await traffic.wait_for(settings.action_topic("web"),
                                      lambda a: a["trigger_event_id"] == "secure-1", timeout=60)
        assert link["action"] == "direct_link"
        assert link["customer_id"] == "c-secure"
        assert ENGINE_PASSWORD not in worker.log_tail(100_000)
    finally:
        await traffic.stop()
        worker.stop()


def test_worker_with_a_wrong_password_stops_at_start_naming_the_refused_login(
        secured_broker: SecuredBroker, tmp_path: Path, unique: str) -> None:
    env = _worker_env(secured_broker, unique, ORCHESTRATOR_KAFKA_SASL_PASSWORD="not-the-password")
    settings = settings_from_env(env)
    began = time.monotonic()
    proc, log_path = start_worker_process(settings, tmp_path, env)
    try:
        code = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        stop_process(proc)
        raise AssertionError("the worker hung instead of failing: "
                             + log_path.read_text(errors="replace")[-3000:]) from None
    took = time.monotonic() - began
    log = log_path.read_text(errors="replace")
    print(f"wrong password refused after {took:.1f} s:\n{log[-1500:]}")
    assert code == 2, log[-3000:]
    error = next(line for line in log.splitlines() if line.startswith("error: "))
    assert "authentication failed" in error
    assert f"{MECHANISM} login of user {ENGINE_USER!r}" in error
    assert "ORCHESTRATOR_KAFKA_SASL_PASSWORD" in error
    assert "not-the-password" not in log
