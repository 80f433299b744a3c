"""Client options and Faust credentials built from the Kafka security settings."""

from __future__ import annotations

import ssl
from pathlib import Path

import faust
import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from faust.types.auth import AuthProtocol, SASLMechanism

from orchestrator.localkafka.broker import override_properties
from orchestrator.runtime.kafka_security import client_options, faust_credentials
from orchestrator.runtime.settings import Settings, SettingsError
from tests.tls import CertificateFiles, make_certificates


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> CertificateFiles:
    return make_certificates(tmp_path_factory.mktemp("tls"))


def sasl_ssl(tls: CertificateFiles, **more: object) -> Settings:
    return Settings(bootstrap_servers="kafka-1:9093,kafka-2:9093", kafka_security_protocol="SASL_SSL",
                    kafka_sasl_mechanism="SCRAM-SHA-512", kafka_sasl_username="engine",
                    kafka_sasl_password="s3cret", kafka_ssl_cafile=tls.ca, **more)


def test_plaintext_gives_the_bootstrap_servers_and_no_credentials() -> None:
    settings = Settings(bootstrap_servers="kafka-1:9092")
    assert client_options(settings) == {"bootstrap_servers": "kafka-1:9092",
                                        "security_protocol": "PLAINTEXT"}
    assert faust_credentials(settings) is None


def test_sasl_ssl_gives_the_login_and_a_verifying_tls_context(tls: CertificateFiles) -> None:
    options = client_options(sasl_ssl(tls))
    context = options.pop("ssl_context")
    assert options == {"bootstrap_servers": "kafka-1:9093,kafka-2:9093",
                       "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
                       "sasl_plain_username": "engine", "sasl_plain_password": "s3cret"}
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert [ca["subject"] for ca in context.get_ca_certs()] == [
        ((("commonName", "orchestrator test CA"),),)]


def test_faust_gets_the_same_login_as_the_engines_own_clients(tls: CertificateFiles) -> None:
    settings = sasl_ssl(tls)
    credentials = faust_credentials(settings)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol is AuthProtocol.SASL_SSL
    assert credentials.mechanism is SASLMechanism.SCRAM_SHA_512
    # What Faust hands to each aiokafka client it makes (consumer, producer, topic creation).
    faust_options = dict(credentials_to_aiokafka_auth(credentials))
    ours = client_options(settings)
    for key in ("security_protocol", "sasl_mechanism", "sasl_plain_username", "sasl_plain_password"):
        assert faust_options[key] == ours[key]
    assert isinstance(faust_options["ssl_context"], ssl.SSLContext)
    assert "s3cret" not in repr(credentials)


def test_sasl_plaintext_has_no_tls_context() -> None:
    settings = Settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="PLAIN",
                        kafka_sasl_username="engine", kafka_sasl_password="s3cret")
    assert "ssl_context" not in client_options(settings)
    credentials = faust_credentials(settings)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol is AuthProtocol.SASL_PLAINTEXT
    assert credentials_to_aiokafka_auth(credentials)["sasl_mechanism"] == "PLAIN"


def test_ssl_with_a_client_certificate_and_no_hostname_check(tls: CertificateFiles) -> None:
    settings = Settings(kafka_security_protocol="SSL", kafka_ssl_cafile=tls.ca,
                        kafka_ssl_certfile=tls.server_cert, kafka_ssl_keyfile=tls.server_key,
                        kafka_ssl_check_hostname=False)
    options = client_options(settings)
    assert options["security_protocol"] == "SSL"
    assert "sasl_mechanism" not in options
    assert options["ssl_context"].check_hostname is False
    assert options["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    credentials = faust_credentials(settings)
    assert isinstance(credentials, faust.SSLCredentials)
    assert credentials_to_aiokafka_auth(credentials)["security_protocol"] == "SSL"


def test_the_password_file_is_what_the_clients_log_in_with(tls: CertificateFiles, tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("from-the-file\n")
    settings = Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="engine",
                        kafka_sasl_password_file=secret, kafka_ssl_cafile=tls.ca)
    assert client_options(settings)["sasl_plain_password"] == "from-the-file"
    credentials = faust_credentials(settings)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.password == "from-the-file"


def test_a_ca_file_that_is_not_pem_is_refused_naming_the_settings(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    settings = Settings(kafka_security_protocol="SSL", kafka_ssl_cafile=bad)
    with pytest.raises(SettingsError, match=r"the TLS files cannot be used .*ORCHESTRATOR_KAFKA_SSL_CAFILE"):
        client_options(settings)


def test_broker_properties_are_replaced_in_place_or_appended() -> None:
    text = "# listeners=commented\nlisteners=PLAINTEXT://127.0.0.1:9092\nlog.dirs=/d\n"
    assert override_properties(text, {"listeners": "SASL_SSL://127.0.0.1:9094", "a.b": "c=d"}) == (
        "# listeners=commented\nlisteners=SASL_SSL://127.0.0.1:9094\nlog.dirs=/d\na.b=c=d\n")
