"""The Kafka security settings: combinations checked at start, the password never shown."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.runtime.settings import SettingsError, load_settings

SASL = {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_username": "engine"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("ORCHESTRATOR_"):
            monkeypatch.delenv(name)


def refusal(**settings: object) -> str:
    with pytest.raises(SettingsError) as caught:
        load_settings(**settings)
    return str(caught.value)


def test_by_default_the_engine_speaks_plaintext_with_no_login() -> None:
    settings = load_settings()
    assert settings.kafka_security_protocol == "PLAINTEXT"
    assert settings.kafka_sasl_secret is None
    assert settings.kafka_ssl_check_hostname is True


def test_sasl_without_a_user_or_a_password_names_the_variables_to_set() -> None:
    message = refusal(kafka_security_protocol="SASL_PLAINTEXT")
    assert ("ORCHESTRATOR_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT needs a user: set "
            "ORCHESTRATOR_KAFKA_SASL_USERNAME") in message
    assert ("needs a password: set ORCHESTRATOR_KAFKA_SASL_PASSWORD or "
            "ORCHESTRATOR_KAFKA_SASL_PASSWORD_FILE") in message


def test_a_password_and_a_password_file_together_are_refused(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret")
    message = refusal(**SASL, kafka_sasl_password="s3cret", kafka_sasl_password_file=secret)
    assert ("set one of ORCHESTRATOR_KAFKA_SASL_PASSWORD and ORCHESTRATOR_KAFKA_SASL_PASSWORD_FILE,"
            " not both") in message


def test_a_login_without_a_sasl_protocol_is_refused_rather_than_ignored(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRATOR_KAFKA_SASL_USERNAME", "engine")
    monkeypatch.setenv("ORCHESTRATOR_KAFKA_SASL_PASSWORD", "s3cret")
    message = refusal(kafka_security_protocol="SSL")
    assert ("ORCHESTRATOR_KAFKA_SASL_USERNAME, ORCHESTRATOR_KAFKA_SASL_PASSWORD given but "
            "ORCHESTRATOR_KAFKA_SECURITY_PROTOCOL=SSL logs in with no SASL") in message
    assert "s3cret" not in message


def test_tls_files_without_a_tls_protocol_are_refused(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("pem")
    message = refusal(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="engine",
                      kafka_sasl_password="x", kafka_ssl_cafile=ca)
    assert "ORCHESTRATOR_KAFKA_SSL_CAFILE given but" in message
    assert "does not use TLS: use SSL or SASL_SSL" in message


@pytest.mark.parametrize("name", ["kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_sasl_password_file"])
def test_a_file_that_does_not_exist_is_named(name: str, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pem"
    given_settings = {**SASL, name: missing}
    if name != "kafka_sasl_password_file":
        given_settings["kafka_sasl_password"] = "x"
    message = refusal(**given_settings)
    assert f"ORCHESTRATOR_{name.upper()}='{missing}': no such file" in message


def test_a_client_key_without_its_certificate_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "client-key.pem"
    key.write_text("pem")
    message = refusal(kafka_security_protocol="SSL", kafka_ssl_keyfile=key)
    assert "set ORCHESTRATOR_KAFKA_SSL_CERTFILE too" in message


def test_unknown_protocol_and_mechanism_are_refused_with_the_choices() -> None:
    assert "'PLAINTEXT', 'SSL', 'SASL_PLAINTEXT' or 'SASL_SSL'" in refusal(kafka_security_protocol="TLS")
    assert "'SCRAM-SHA-512'" in refusal(**SASL, kafka_sasl_password="x", kafka_sasl_mechanism="GSSAPI")


def test_the_password_file_is_read_at_start_without_its_trailing_newline(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret\n")
    settings = load_settings(**SASL, kafka_sasl_password_file=secret)
    secret.write_text("changed later")
    assert settings.kafka_sasl_secret is not None
    assert settings.kafka_sasl_secret.get_secret_value() == "s3cret"


def test_an_empty_password_or_password_file_is_refused(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "password"
    empty.write_text("\n")
    assert f"{empty} is empty" in refusal(**SASL, kafka_sasl_password_file=empty)
    monkeypatch.setenv("ORCHESTRATOR_KAFKA_SASL_PASSWORD", "")
    assert "an empty password" in refusal(**SASL)


@given(tail=st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
                    max_size=40))
def test_the_password_appears_in_no_repr_dump_or_error(tail: str) -> None:
    password = "pw:" + tail  # "pw:" is nowhere else in what is shown
    settings = load_settings(**SASL, kafka_sasl_password=password)
    assert settings.kafka_sasl_secret is not None
    assert settings.kafka_sasl_secret.get_secret_value() == password
    for shown in (repr(settings), str(settings), settings.model_dump_json(),
                  str(settings.model_dump()), str(settings.model_dump(mode="json"))):
        assert password not in shown
    # A refused configuration that holds it (here: a password and no SASL protocol).
    message = refusal(kafka_sasl_password=password, kafka_security_protocol="SSL")
    assert "ORCHESTRATOR_KAFKA_SASL_PASSWORD given" in message
    assert password not in message
