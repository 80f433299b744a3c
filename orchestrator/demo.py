"""``orchestrator demo``: everything needed to watch the engine decide, in one command."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import orjson
from aiokafka import AIOKafkaConsumer

from orchestrator.core.access import Role
from orchestrator.demo_site import DemoSite
from orchestrator.localkafka import LocalBroker
from orchestrator.runtime.kafka_security import client_options
from orchestrator.runtime.settings import PROJECT_ROOT, Settings, load_settings
from orchestrator.runtime.topics import ensure_topics
from orchestrator.simulate.traffic import SentRecord, run_traffic


def run_demo(*, rate: float, duration: float | None, web_port: int, malformed: float,
             page_port: int = 6080) -> int:
    """Run the demo; return the exit code. Stops only what it started."""
    _interrupt_on(signal.SIGINT, signal.SIGTERM)
    settings = load_settings(web_port=web_port)
    broker = LocalBroker(port=int(settings.bootstrap_servers.rsplit(":", 1)[1]),
                         client_options=client_options(settings))
    began = time.monotonic()
    _, started_broker = broker.start()
    click.echo(f"Kafka {'started' if started_broker else 'already running'} "
               f"on {settings.bootstrap_servers} ({time.monotonic() - began:.1f} s); "
               f"log: {broker.log_path}")
    worker: subprocess.Popen[bytes] | None = None
    try:
        asyncio.run(ensure_topics(settings))
        log_dir = PROJECT_ROOT / "var" / "demo"
        log_dir.mkdir(parents=True, exist_ok=True)
        worker, worker_log = start_worker_process(settings, log_dir)
        click.echo(f"worker starting (http://127.0.0.1:{web_port}, log: {worker_log}) ...")
        wait_until_ready(web_port, worker, timeout=120, tls=client_tls(settings))
        click.echo("worker ready; sending traffic. Ctrl-C stops everything.\n")
        asyncio.run(_watch(settings, rate, duration, malformed, seed=time.time_ns() % 2**31,
                           site=DemoSite(settings, page_port)))
        return 0
    except KeyboardInterrupt:
        click.echo("\nstopping ...")
        return 0
    except RuntimeError as exc:
        click.echo(f"error: {exc}; see {PROJECT_ROOT / 'var' / 'demo'}", err=True)
        if worker is not None and worker.poll() is not None:
            click.echo(f"the worker's last words ({worker_log}):", err=True)
            click.echo(last_error_lines(worker_log), err=True)
        return 1
    finally:
        if worker is not None:
            stop_process(worker)
            click.echo("worker stopped")
        if started_broker:
            broker.stop()
            click.echo("Kafka stopped")


def _interrupt_on(*signals: signal.Signals) -> None:
    """Ctrl-C or a supervisor's SIGTERM both end the demo through the same clean-up, even when
    the shell that started it ignores SIGINT (as it does for background jobs)."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    for sig in signals:
        signal.signal(sig, interrupt)


def start_worker_process(settings: Settings, log_dir: Path,
                         extra_env: dict[str, str] | None = None, extra_args: Sequence[str] = (),
                         ) -> tuple[subprocess.Popen[bytes], Path]:
    """Start ``orchestrator worker`` (with ``extra_args``) as a child process, logging to a file."""
    log_path = log_dir / f"worker-{settings.web_port}.log"
    env = {**os.environ, **(extra_env or {})}
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "worker", "--web-port", str(settings.web_port),
             "--app-id", settings.app_id, "--bootstrap-servers", settings.bootstrap_servers,
             *extra_args],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            cwd=PROJECT_ROOT, start_new_session=True)
    return proc, log_path


def last_error_lines(log_path: Path, limit: int = 12) -> str:
    """The end of a worker's log from its last ``error:`` line (what the worker said when it
    refused to run), or its last ``limit`` lines when it said none."""
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"(log unreadable: {exc})"
    starts = [i for i, line in enumerate(lines) if line.startswith("error:")]
    tail = lines[starts[-1]:] if starts else lines
    return "\n".join(tail[-limit:]) if tail else "(empty log)"


def wait_until_ready(web_port: int, proc: subprocess.Popen[bytes], timeout: float,
                     tls: ssl.SSLContext | None = None) -> None:
    """Poll ``/ready`` (over HTTPS with ``tls``) until it says yes; fail early if the worker exits."""
    deadline = time.monotonic() + timeout
    url = f"{'https' if tls else 'http'}://127.0.0.1:{web_port}/ready"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited with code {proc.returncode} while starting")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2,
                                                                  context=tls) as response:
            if response.status == 200:
                return
        time.sleep(0.25)
    raise RuntimeError(f"worker was not ready within {timeout:.0f} s")


def stop_process(proc: subprocess.Popen[Any], timeout: float = 30.0) -> None:
    """SIGTERM, wait, then SIGKILL."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _watch(settings: Settings, rate: float, duration: float | None,
                 malformed: float, seed: int, site: DemoSite) -> None:
    topics = [settings.action_topic(c) for c in settings.channels] + [settings.topic_dead_letter]
    consumer = AIOKafkaConsumer(*topics, **client_options(settings), group_id=None,
                                auto_offset_reset="latest", fetch_max_wait_ms=50)
    await consumer.start()
    personas: dict[str, str] = {}
    latencies: list[float] = []

    def remember(sent: SentRecord) -> None:
        personas[sent.key] = sent.persona

    try:
        await consumer.seek_to_end()
        await site.start()
        click.echo(click.style(f"demo website: {site.url}  (play a visitor; the prompts arrive there)\n",
                               bold=True))
        traffic = asyncio.create_task(run_traffic(
            settings, rate=rate, duration=duration or float("inf"), malformed=malformed,
            seed=seed, on_sent=remember))
        next_summary = time.monotonic() + 15
        while not traffic.done():
            batch = await consumer.getmany(timeout_ms=200)
            received = time.time_ns() / 1e6
            for records in batch.values():
                for record in records:
                    action = _print_record(record, received, personas, latencies, settings)
                    if action is not None:
                        site.action(action, latencies[-1])
                    if record.topic == settings.action_topic("contact-centre"):
                        await _print_context(settings, orjson.loads(record.value)["person_id"])
            if time.monotonic() >= next_summary and latencies:
                _print_summary(latencies)
                next_summary = time.monotonic() + 15
        await traffic
    finally:
        if latencies:
            _print_summary(latencies)
        await site.stop()
        await consumer.stop()


def _print_record(record: Any, received_ms: float, personas: dict[str, str],
                  latencies: list[float], settings: Settings) -> dict[str, Any] | None:
    """Print an action (its latency appended to ``latencies``) or a dead-letter record; return
    the action."""
    value = orjson.loads(record.value)
    if record.topic == settings.topic_dead_letter:
        click.echo(click.style(f"{'dead-letter':>9}  {value['error']:<14} {value['reason'][:90]}",
                               fg="yellow"))
        return None
    latency = received_ms - value["trigger_ts"]
    latencies.append(latency)
    who = value.get("customer_id") or value.get("visitor_id") or value["person_id"]
    persona = personas.get(value.get("visitor_id") or "", personas.get(value["person_id"], "?"))
    detail = value["payload"].get("login_url") or value["payload"].get("url") or ""
    click.echo(f"{latency:7.1f} ms  {value['channel']:<14} {value['action']:<16} {who:<16} "
               f"{persona:<24} {detail}")
    return value


def client_tls(settings: Settings) -> ssl.SSLContext | None:
    """How a local client verifies a worker serving HTTPS (its CA bundle, or its own
    certificate when that is self-signed); None: the worker serves plain HTTP."""
    if settings.web_tls_certfile is None:
        return None
    return ssl.create_default_context(cafile=settings.web_tls_cafile or settings.web_tls_certfile)


def _context_token(tokens_file: Path | None) -> str | None:
    """A token of the worker's tokens file that may read contexts (the demo is its own client)."""
    if tokens_file is None:
        return None
    with contextlib.suppress(OSError):
        for line in tokens_file.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] in (Role.CONTEXT_READER, Role.OPERATOR):
                return parts[1]
    return None


async def _print_context(settings: Settings, person_id: str) -> None:
    """What the contact-centre agent sees with the alert: the live context of the person."""
    tls = client_tls(settings)
    url = (f"{'https' if tls else 'http'}://127.0.0.1:{settings.web_port}/context/"
           f"{urllib.parse.quote(person_id, safe='')}")
    token = _context_token(settings.web_tokens_file)
    request = urllib.request.Request(
        url, headers={"Authorization": f"Bearer {token}"} if token is not None else {})

    def fetch() -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(request, timeout=2, context=tls) as response:
                return orjson.loads(response.read())
        except (OSError, ValueError):
            return None

    context = await asyncio.to_thread(fetch)
    if context is None:
        return
    pages = ", ".join(p["url"] for p in context["recent_pages"][:3]) or "-"
    contacts = ", ".join(f"{c['type']}:{c['reason'] or '-'}" for c in context["recent_contacts"][:2]) or "-"
    click.echo(click.style(f"{'':>9}  context: stage {context['stage']}, web {pages}; calls {contacts}",
                           fg="cyan"))


def _print_summary(latencies: list[float]) -> None:
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))]

    click.echo(click.style(
        f"  -- {len(ordered)} actions; event-to-action p50 {pct(0.5):.1f} ms, "
        f"p99 {pct(0.99):.1f} ms, max {ordered[-1]:.1f} ms", bold=True))
