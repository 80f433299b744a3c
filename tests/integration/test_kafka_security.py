"""A worker joins a secured cluster: SASL_SSL with SCRAM-SHA-512, certificates checked, ACLs.

The broker is a second local one, started here with a SASL_SSL listener, a certificate made
by the test, SCRAM users stored when its storage is formatted, and an authorizer that lets the
engine's user do what the ACLs of README "Kafka security" grant it, and nothing else.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import TopicAuthorizationFailedError

from orchestrator.demo import start_worker_process, stop_process
from orchestrator.localkafka import LocalBroker
from orchestrator.runtime.kafka_security import KafkaAccessError, client_options
from orchestrator.runtime.settings import Settings
from orchestrator.runtime.topics import ensure_topics
from tests.e2e.conftest import Traffic, WorkerProcess, free_port, settings_from_env
from tests.tls import make_certificates

MECHANISM = "SCRAM-SHA-512"
ENGINE_USER, ENGINE_PASSWORD = "engine", "engine-secret-4f1c"
ADMIN_USER, ADMIN_PASSWORD = "admin", "admin-secret-9b2e"  # a super user: the broker itself, the test
APP_ID = "orchestrator"
#: The ACLs of the engine's principal, as README's "Kafka security" gives them (kafka-acls.sh).
ENGINE_ACLS = [
    ["--operation", "Read", "--operation", "Describe", "--operation", "Create",
     "--topic", "clickstream", "--topic", "contact-centre", "--topic", "action-feedback"],
    ["--operation", "Write", "--operation", "Describe", "--operation", "Create",
     "--topic", "customer-context", "--topic", "dead-letter", "--topic", "decisions-held-out"],
    ["--operation", "Write", "--operation", "Describe", "--operation", "Create",
     "--topic", "actions.", "--resource-pattern-type", "prefixed"],
    ["--operation", "Read", "--operation", "Write", "--operation", "Describe", "--operation", "Create",
     "--topic", "rules"],
    ["--operation", "Read", "--operation", "Write", "--operation", "Describe", "--operation", "Create",
     "--topic", f"{APP_ID}-", "--resource-pattern-type", "prefixed"],
    ["--operation", "Read", "--operation", "Describe", "--group", APP_ID],
]


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
    bootstrap = f"127.0.0.1:{port}"
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
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            # ANONYMOUS: the broker's own requests on the loopback PLAINTEXT controller listener.
            "super.users": f"User:{ADMIN_USER};User:ANONYMOUS",
        },
        scram_credentials=[f"{MECHANISM}=[name={ADMIN_USER},password={ADMIN_PASSWORD}]",
                           f"{MECHANISM}=[name={ENGINE_USER},password={ENGINE_PASSWORD}]"],
        client_options=client_options(_admin_settings(bootstrap, tls.ca)))
    try:
        broker.start(timeout=120)
        admin_config = home / "admin.properties"
        admin_config.write_text(
            f"security.protocol=SASL_SSL\nsasl.mechanism={MECHANISM}\n"
            "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{ADMIN_USER}" password="{ADMIN_PASSWORD}";\n'
            f"ssl.truststore.type=PEM\nssl.truststore.location={tls.ca}\n")
        for acl in ENGINE_ACLS:
            broker.run_tool("kafka.admin.AclCommand", "--bootstrap-server", bootstrap,
                            "--command-config", str(admin_config), "--add",
                            "--allow-principal", f"User:{ENGINE_USER}", *acl)
        yield SecuredBroker(broker, bootstrap, tls.ca, password_file)
    finally:
        broker.stop()


def _admin_settings(bootstrap: str, ca: Path) -> Settings:
    return settings_from_env({**_security_env(bootstrap, ca),
                              "ORCHESTRATOR_KAFKA_SASL_USERNAME": ADMIN_USER,
                              "ORCHESTRATOR_KAFKA_SASL_PASSWORD": ADMIN_PASSWORD})


def _security_env(bootstrap: str, ca: Path, **extra: str) -> dict[str, str]:
    return {"ORCHESTRATOR_BOOTSTRAP_SERVERS": bootstrap,
            "ORCHESTRATOR_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "ORCHESTRATOR_KAFKA_SASL_MECHANISM": MECHANISM,
            "ORCHESTRATOR_KAFKA_SASL_USERNAME": ENGINE_USER,
            "ORCHESTRATOR_KAFKA_SSL_CAFILE": str(ca), **extra}


def _worker_env(secured: SecuredBroker, **extra: str) -> dict[str, str]:
    return {**_security_env(secured.bootstrap, secured.ca, **extra),
            "ORCHESTRATOR_APP_ID": APP_ID, "ORCHESTRATOR_WEB_PORT": str(free_port())}


async def test_worker_on_a_sasl_ssl_listener_comes_up_ready_and_decides(
        secured_broker: SecuredBroker, tmp_path: Path) -> None:
    env = _worker_env(secured_broker,
                      ORCHESTRATOR_KAFKA_SASL_PASSWORD_FILE=str(secured_broker.password_file))
    settings = settings_from_env(env)
    worker = WorkerProcess(settings, env, tmp_path)
    # The engine may not write its inputs: the test's clients log in as another user.
    traffic = Traffic(_admin_settings(secured_broker.bootstrap, secured_broker.ca))
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
        # The authorizer holds the engine to its ACLs: it reads its inputs, it may not write them.
        producer = AIOKafkaProducer(**client_options(settings), request_timeout_ms=10_000)
        await producer.start()
        try:
            with pytest.raises(TopicAuthorizationFailedError):
                await producer.send_and_wait(settings.topic_clickstream, b"{}", key=b"v-secure")
        finally:
            await producer.stop()
    finally:
        await traffic.stop()
        worker.stop()


def test_worker_with_a_wrong_password_stops_at_start_naming_the_refused_login(
        secured_broker: SecuredBroker, tmp_path: Path) -> None:
    env = _worker_env(secured_broker, ORCHESTRATOR_KAFKA_SASL_PASSWORD="not-the-password")
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


@pytest.mark.parametrize(("change", "named"), [
    ({"ORCHESTRATOR_KAFKA_SSL_CAFILE": None}, "the broker's TLS certificate was not accepted"),
    ({"ORCHESTRATOR_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256"},
     "the broker does not offer this SASL mechanism"),
    ({"ORCHESTRATOR_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "ORCHESTRATOR_KAFKA_SSL_CAFILE": None},
     "the listener does not answer in SASL_PLAINTEXT"),
], ids=["untrusted-certificate", "mechanism-not-offered", "no-tls-to-a-tls-listener"])
async def test_a_client_the_cluster_refuses_is_told_why_in_bounded_time(
        secured_broker: SecuredBroker, change: dict[str, str | None], named: str) -> None:
    env = {**_security_env(secured_broker.bootstrap, secured_broker.ca),
           "ORCHESTRATOR_KAFKA_SASL_PASSWORD": ENGINE_PASSWORD, **change}
    settings = settings_from_env({k: v for k, v in env.items() if v is not None})
    began = time.monotonic()
    with pytest.raises(KafkaAccessError) as refused:
        await ensure_topics(settings)
    print(f"{time.monotonic() - began:.1f} s: {refused.value}")
    assert named in str(refused.value)
    assert time.monotonic() - began < 60
