"""The web_* settings checked together at a worker's start (orchestrator/runtime/web_security.py)."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from orchestrator.core.access import Role
from orchestrator.runtime import web_security
from orchestrator.runtime.settings import ENV_PREFIX, SettingsError, load_settings
from orchestrator.runtime.web_security import WebSecurity, load_web_security

TOKEN = "t" * 40
SECRET = "w" * 32


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ORCHESTRATOR_ variable, and the local secret file of this test only."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    monkeypatch.setattr(web_security, "LOCAL_SECRET_FILE", tmp_path / "var" / "web-worker-secret")


@pytest.fixture
def tokens_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens"
    path.write_text(f"context-reader {TOKEN}\n")
    return path


def security(**settings: Any) -> WebSecurity:
    return load_web_security(load_settings(**settings))


def refused(**settings: Any) -> str:
    with pytest.raises(SettingsError) as error:
        security(**settings)
    return str(error.value)


def test_a_loopback_worker_without_files_is_open_and_shares_a_local_secret_per_app() -> None:
    first, again, other_app = security(), security(), security(app_id="another")
    assert first.tokens is None
    assert first.worker_secret == again.worker_secret != other_app.worker_secret
    assert len(first.worker_secret) == 32
    kept = web_security.LOCAL_SECRET_FILE
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert first.canonical_url(6066) == "http://127.0.0.1:6066"


def test_the_local_secret_file_is_kept_when_it_exists() -> None:
    web_security.LOCAL_SECRET_FILE.parent.mkdir(parents=True)
    web_security.LOCAL_SECRET_FILE.write_text("x" * 64 + "\n")
    before = security().worker_secret
    web_security.LOCAL_SECRET_FILE.write_text("y" * 64)
    assert security().worker_secret != before  # derived from the file, not made up per run


def test_a_worker_serving_other_machines_needs_a_tokens_file() -> None:
    message = refused(web_host="10.1.2.3", web_worker_secret=SECRET)
    assert "ORCHESTRATOR_WEB_HOST='10.1.2.3'" in message
    assert "ORCHESTRATOR_WEB_TOKENS_FILE" in message


def test_a_worker_serving_other_machines_needs_a_worker_secret(tokens_file: Path) -> None:
    message = refused(web_host="10.1.2.3", web_tokens_file=tokens_file)
    assert "ORCHESTRATOR_WEB_WORKER_SECRET_FILE" in message


def test_a_worker_bound_to_every_interface_needs_an_advertised_host(tokens_file: Path) -> None:
    for host in ("0.0.0.0", "::"):
        message = refused(web_host=host, web_tokens_file=tokens_file, web_worker_secret=SECRET)
        assert "ORCHESTRATOR_WEB_ADVERTISED_HOST" in message
    assert "not an address" in refused(web_host="0.0.0.0", web_advertised_host="0.0.0.0",
                                       web_tokens_file=tokens_file, web_worker_secret=SECRET)
    given = security(web_host="0.0.0.0", web_advertised_host="worker-1.orchestrator",
                     web_tokens_file=tokens_file, web_worker_secret=SECRET, web_port=7000)
    assert given.canonical_url(7000) == "http://worker-1.orchestrator:7000"
    assert given.tokens is not None and given.tokens.role_of(TOKEN) is Role.CONTEXT_READER
    assert given.worker_secret == SECRET.encode()


def test_an_ipv6_address_is_announced_in_brackets() -> None:
    assert security(web_host="::1").canonical_url(6066) == "http://[::1]:6066"


def test_a_bad_tokens_file_is_refused_naming_the_file_and_the_line(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"# clients\nreader {TOKEN}\n")
    message = refused(web_tokens_file=path)
    assert str(path) in message and "line 2" in message and "unknown role" in message
    assert "cannot read the tokens file" in refused(web_tokens_file=tmp_path / "missing")


def test_a_short_secret_or_two_secrets_are_refused(tmp_path: Path, tokens_file: Path) -> None:
    assert "at least 32" in refused(web_worker_secret="short")
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    assert "not both" in refused(web_worker_secret=SECRET, web_worker_secret_file=secret_file)
    read = security(web_host="10.1.2.3", web_tokens_file=tokens_file, web_worker_secret_file=secret_file)
    assert read.worker_secret == SECRET.encode()  # the trailing newline is not part of it


def test_https_needs_a_certificate_and_its_key_that_load(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("not a certificate")
    assert "both" in refused(web_tls_certfile=cert)
    assert "both" in refused(web_tls_keyfile=cert)
    message = refused(web_tls_certfile=cert, web_tls_keyfile=cert)
    assert "ORCHESTRATOR_WEB_TLS_CERTFILE" in message and "cannot load" in message
    assert "only used with HTTPS" in refused(web_tls_cafile=cert)


def test_plain_http_is_the_default() -> None:
    plain = security()
    assert (plain.scheme, plain.server_ssl, plain.client_ssl) == ("http", None, None)


def test_a_host_that_is_not_a_host_name_or_address_is_refused_by_the_settings() -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(web_advertised_host="http://worker-1:6066")
    assert "--web-advertised-host=" in str(error.value)
    assert "without scheme, port or brackets" in str(error.value)
