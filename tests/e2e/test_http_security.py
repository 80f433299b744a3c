"""Two real workers bound to every interface, behind tokens, forwarding to each other signed.

The set-up a cluster uses: ``WEB_HOST=0.0.0.0`` with the address the others reach a worker at in
``WEB_ADVERTISED_HOST``, a tokens file and a shared worker secret file; then once more over HTTPS.
That a forwarded request is never forwarded again, that an oversized or failed answer gives a
502, and a worker with another secret are specified over real HTTP between wired apps in
tests/agents/test_http_security.py (two real workers do not disagree on demand).
"""

from __future__ import annotations

import http.client
import json
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from orchestrator.demo import client_tls
from orchestrator.runtime.partitioning import partition_of
from tests.e2e.conftest import Traffic, WorkerProcess, another_worker, settings_from_env
from tests.e2e.test_identity_context import eventually

READER = "reader-" + "r" * 36
OPERATOR = "operator-" + "o" * 36


def customers_on_every_partition(partitions: int) -> list[str]:
    """One customer id per partition, so that each worker owns some of them."""
    chosen: dict[int, str] = {}
    n = 0
    while len(chosen) < partitions:
        chosen.setdefault(partition_of(f"c-{n}", partitions), f"c-{n}")
        n += 1
    return list(chosen.values())


def get(url: str, token: str | None = None, tls: ssl.SSLContext | None = None
        ) -> tuple[int, dict[str, Any], Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10,
                                    context=tls) as response:
            return response.status, _json(response), response.headers
    except urllib.error.HTTPError as error:
        return error.code, _json(error), error.headers


def _json(response: Any) -> dict[str, Any]:
    """The JSON body; ``{}`` for another kind of page (metrics, Faust's plain 404)."""
    body = response.read()
    return json.loads(body) if response.headers.get_content_type() == "application/json" else {}


def secured(worker: WorkerProcess, tmp_path: Path, **extra_env: str) -> WorkerProcess:
    """``worker`` with a tokens file, a worker secret file and a bind to every interface."""
    tokens, secret = tmp_path / "tokens", tmp_path / "worker-secret"
    tokens.write_text(f"context-reader {READER}\noperator {OPERATOR}\n")
    secret.write_text("e2e-worker-secret-" + "s" * 32 + "\n")
    env = {**worker.env, "ORCHESTRATOR_WEB_HOST": "0.0.0.0",
           "ORCHESTRATOR_WEB_ADVERTISED_HOST": "127.0.0.1",
           "ORCHESTRATOR_WEB_TOKENS_FILE": str(tokens),
           "ORCHESTRATOR_WEB_WORKER_SECRET_FILE": str(secret), **extra_env}
    return WorkerProcess(settings_from_env(env), env, worker.log_dir)


async def _every_customer_is_served_by_both_workers_only_with_a_token(
        first: WorkerProcess, second: WorkerProcess, traffic: Traffic) -> None:
    settings = first.settings
    tls = client_tls(settings)
    scheme = "https" if tls else "http"
    customers = customers_on_every_partition(settings.partitions)
    for customer in customers:
        await traffic.send(settings.topic_contact_centre, customer, event_id=f"k-{customer}",
                           type="case_opened", customer_id=customer, channel="phone",
                           reason="billing")
    bases = [f"{scheme}://127.0.0.1:{w.settings.web_port}" for w in (first, second)]

    def served(base: str, customer: str) -> None:
        status, body, _ = get(f"{base}/context/{customer}", READER, tls)
        assert (status, body.get("person_id")) == (200, customer), (base, customer, status, body)

    for base in bases:
        for customer in customers:
            await eventually(lambda base=base, customer=customer: served(base, customer), timeout=60)

    for base in bases:
        status, body, headers = get(f"{base}/context/{customers[0]}", tls=tls)
        assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
        assert set(body) == {"error"}
        assert get(f"{base}/rules", READER, tls)[0] == 403
        assert get(f"{base}/rules", OPERATOR, tls)[0] == 200
        assert get(f"{base}/metrics", tls=tls)[0] == 200  # Prometheus scrapes without a token
        assert get(f"{base}/table/profiles/{customers[0]}/", tls=tls)[0] == 404
        for customer in customers:  # a client's person parameter is not honoured
            status, body, _ = get(f"{base}/context/nobody?person={customer}", READER, tls)
            assert (status, body) == (404, {"error": "no person is known by this id"})


async def test_two_workers_bound_to_every_interface_serve_contexts_to_token_holders_only(
        worker: WorkerProcess, traffic: Traffic, tmp_path: Path) -> None:
    first = secured(worker, tmp_path)
    second = another_worker(first, tmp_path)
    try:
        first.start(tmp_path / "a")
        second.start(tmp_path / "b")
        await _every_customer_is_served_by_both_workers_only_with_a_token(first, second, traffic)
    finally:
        second.stop()
        first.stop()


async def test_two_workers_serve_and_forward_over_https(
        worker: WorkerProcess, traffic: Traffic, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    first = secured(worker, tmp_path, ORCHESTRATOR_WEB_TLS_CERTFILE=str(cert),
                    ORCHESTRATOR_WEB_TLS_KEYFILE=str(key), ORCHESTRATOR_WEB_TLS_CAFILE=str(cert))
    second = another_worker(first, tmp_path)
    try:
        first.start(tmp_path / "a")
        second.start(tmp_path / "b")
        await _every_customer_is_served_by_both_workers_only_with_a_token(first, second, traffic)
        plain = f"http://127.0.0.1:{first.settings.web_port}/health"
        try:
            urllib.request.urlopen(plain, timeout=5)
            raise AssertionError("plain HTTP was answered by a worker serving HTTPS")
        except (urllib.error.URLError, ConnectionError, http.client.HTTPException):
            pass
    finally:
        second.stop()
        first.stop()
