"""The ``orchestrator`` command: broker, worker, simulator and demo."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click

from orchestrator.localkafka import BrokerError, LocalBroker
from orchestrator.runtime.settings import Settings, SettingsError, load_settings


def _fail_cleanly(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the errors users can fix into one readable line and exit code 2."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from orchestrator.runtime.kafka_security import KafkaAccessError
        from orchestrator.runtime.local_state import LocalStateError
        from orchestrator.runtime.topics import TopicError

        try:
            return func(*args, **kwargs)
        except (SettingsError, BrokerError, TopicError, KafkaAccessError, LocalStateError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)

    return wrapper


def _kafka_port(settings: Settings) -> int:
    first = settings.bootstrap_servers.split(",")[0]
    host, _, port = first.rpartition(":")
    if host not in ("127.0.0.1", "localhost") or not port.isdigit():
        raise SettingsError(
            f"ORCHESTRATOR_BOOTSTRAP_SERVERS={settings.bootstrap_servers!r}: the local broker "
            "listens on 127.0.0.1:<port>; point the engine at another cluster without "
            "'orchestrator kafka'")
    return int(port)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Real-time customer-journey orchestration on Kafka."""


# ---------------------------------------------------------------------- kafka
@cli.group()
def kafka() -> None:
    """The local single-node Kafka broker (KRaft, 127.0.0.1)."""


@kafka.command("start")
@click.option("--port", type=int, default=None, help="default: from the bootstrap servers")
@_fail_cleanly
def kafka_start(port: int | None) -> None:
    """Fetch (first time), start, and wait until the broker answers. Idempotent."""
    broker = LocalBroker(port=port or _kafka_port(load_settings()))
    import time

    began = time.monotonic()
    status, started = broker.start()
    took = time.monotonic() - began
    if started:
        click.echo(f"Kafka started in {took:.1f} s (pid {status.pid}) on 127.0.0.1:{broker.port}")
    else:
        click.echo(status.describe())
    click.echo(f"log: {broker.log_path}")


@kafka.command("stop")
@click.option("--port", type=int, default=None)
@_fail_cleanly
def kafka_stop(port: int | None) -> None:
    """Shut the broker down cleanly."""
    broker = LocalBroker(port=port or _kafka_port(load_settings()))
    click.echo("Kafka stopped" if broker.stop() else "Kafka was not running")


@kafka.command("status")
@click.option("--port", type=int, default=None)
@_fail_cleanly
def kafka_status(port: int | None) -> None:
    """Say whether the broker runs; exit 1 when nothing answers."""
    status = LocalBroker(port=port or _kafka_port(load_settings())).status()
    click.echo(status.describe())
    sys.exit(0 if status.answers else 1)


# ---------------------------------------------------------------------- worker
def _settings_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed([
        click.option("--bootstrap-servers", default=None, help="Kafka host:port[,host:port]"),
        click.option("--app-id", default=None, help="consumer group / internal topic prefix"),
    ]):
        func = option(func)
    return func


@cli.command()
@_settings_options
@click.option("--web-port", type=int, default=None, help="HTTP port (health, metrics)")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="table storage (default var/worker-<web port>)")
@click.option("--store", type=click.Choice(["rocksdb", "memory"]), default=None)
@click.option("--partitions", type=int, default=None)
@click.option("--log-level", default=None)
@click.option("--reset-local-state", is_flag=True,
              help="delete this worker's data dir first (after checking it is one), so that its "
                   "tables are rebuilt from the broker: for a broker that lost its data")
@_fail_cleanly
def worker(reset_local_state: bool, **flags: Any) -> None:
    """Run one worker of the engine until SIGINT/SIGTERM."""
    from orchestrator.runtime.worker import run_worker

    run_worker(load_settings(**flags), reset_state=reset_local_state)


# ---------------------------------------------------------------------- simulate
@cli.command()
@_settings_options
@click.option("--rate", type=float, default=20.0, show_default=True, help="records per second")
@click.option("--duration", type=float, default=60.0, show_default=True, help="seconds")
@click.option("--seed", type=int, default=None,
              help="same seed, same people and event ids (default: new every run)")
@click.option("--malformed", type=float, default=0.0, show_default=True,
              help="fraction of records sent malformed (they go to the dead-letter topic)")
@click.option("--persona", default=None, help="only this persona (default: a realistic mix)")
@_fail_cleanly
def simulate(rate: float, duration: float, seed: int | None, malformed: float, persona: str | None,
             **flags: Any) -> None:
    """Send persona traffic to the input topics."""
    from orchestrator.runtime.topics import ensure_topics
    from orchestrator.simulate.personas import PERSONAS
    from orchestrator.simulate.traffic import run_traffic

    if persona is not None and persona not in PERSONAS:
        raise SettingsError(f"--persona {persona!r}: choose one of {', '.join(PERSONAS)}")
    if rate <= 0:
        raise SettingsError("--rate must be above 0")
    settings = load_settings(**flags)
    asyncio.run(ensure_topics(settings))
    if seed is None:
        import time

        seed = time.time_ns() % 2**31
    sent = asyncio.run(run_traffic(settings, rate=rate, duration=duration, seed=seed,
                                   malformed=malformed, persona=persona))
    click.echo(f"sent {sent} records")


# ---------------------------------------------------------------------- rules
@cli.group()
def rules() -> None:
    """Rule sets: validate them, publish them to every worker."""


def _load_rules_path(path: Path, refusal: str = "invalid rule set") -> Any:
    """The rule set of a directory or of one file; exit 2 naming every problem if it is bad.

    Whatever is wrong with the files, the answer is the problems, never a traceback (the
    loader raises nothing but RuleSetError).
    """
    from orchestrator.core.rules import RuleSetError, load_rule_directory, load_rule_file

    try:
        return load_rule_directory(path) if path.is_dir() else load_rule_file(path)
    except RuleSetError as exc:
        click.echo(f"{refusal} in {path}:\n{exc}", err=True)
        sys.exit(2)


def _load_journeys(path: Path, rule_set: Any, refusal: str = "invalid journeys") -> Any:
    """The journeys of a rule directory's ``journeys/`` (None: it has none); exit 2 naming every
    problem if they are bad."""
    from orchestrator.core.journeys import load_journey_directory
    from orchestrator.core.rules import RuleSetError

    directory = path / "journeys"
    if not path.is_dir() or not directory.exists():
        return None
    try:
        return load_journey_directory(directory, rule_set.lookups)
    except RuleSetError as exc:
        click.echo(f"{refusal} in {directory}:\n{exc}", err=True)
        sys.exit(2)


@rules.command("validate")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
def rules_validate(path: Path) -> None:
    """Check a rule directory (or one file); exit 2 with every problem named if it is bad."""
    rule_set = _load_rules_path(path)
    click.echo(f"valid: version {rule_set.version}, {len(rule_set.rules)} rules")
    for rule in rule_set.describe():
        click.echo(f"  {rule['id']:<36} {rule['channel']:<16} {rule['action']:<20} {rule['file']}")
    journeys = _load_journeys(path, rule_set)
    if journeys is not None:
        click.echo(f"valid: journeys {journeys.version}, {len(journeys.journeys)} journeys")
        for journey in journeys.describe():
            click.echo(f"  {journey['id']:<36} {len(journey['steps']):>2} steps  {journey['file']}")


@rules.command("publish")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@_settings_options
@_fail_cleanly
def rules_publish(path: Path, **flags: Any) -> None:
    """Validate a rule directory (with its journeys/) and publish it to the rules topic (every
    worker swaps to it)."""
    from orchestrator.runtime.rules_feed import publish_rule_set
    from orchestrator.runtime.topics import ensure_topics

    settings = load_settings(**flags)
    # Before anything connects: an invalid set goes nowhere.
    rule_set = _load_rules_path(path, "not published: invalid rule set")
    journeys = _load_journeys(path, rule_set, "not published: invalid journeys")
    asyncio.run(ensure_topics(settings))
    asyncio.run(publish_rule_set(settings, rule_set, journeys))
    published = f" and {len(journeys.journeys)} journeys" if journeys is not None else ""
    click.echo(f"published rule set {rule_set.version} ({len(rule_set.rules)} rules){published} "
               f"to {settings.topic_rules}")


# ---------------------------------------------------------------------- replay
@cli.command()
@click.argument("records", type=click.File("r"), default="-")
@click.option("--output", "-o", type=click.File("wb"), default="-", show_default=True,
              help="where the JSON lines go")
@click.option("--rules", "rules_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=Path("rules"), show_default=True, help="rule directory")
@click.option("--intents", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="intent definitions (YAML list); default: the built-in intents")
@click.option("--sweep-every-s", type=float, default=60.0, show_default=True,
              help="event time between sweeps that settle the labels of quiet people")
@click.option("--lateness-s", type=float, default=60.0, show_default=True,
              help="event time allowed for late outcomes before a label is settled negative")
def replay(records: Any, output: Any, rules_dir: Path, intents: Path | None, sweep_every_s: float,
           lateness_s: float) -> None:
    """Run contract records (JSON lines, any order) through the core in event-time order.

    Writes one JSON line per record: the scores served at it, the labels settled, the actions
    decided. A summary of the models goes to stderr. No broker is needed.
    """
    from orchestrator.core.rules import RuleSetError
    from orchestrator.core.scoring import IntentSpecError
    from orchestrator.replay import ReplayInputError, replay_file

    try:
        done = replay_file(records, output, rules_dir, intents=intents,
                           sweep_every_ms=int(sweep_every_s * 1000), lateness_ms=int(lateness_s * 1000))
    except (ReplayInputError, RuleSetError, IntentSpecError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    for quality in done.scorer.quality().values():
        auc = quality["roc_auc"]
        click.echo(f"{quality['intent']:<18} labels {quality['n_labels']:>7} positive "
                   f"{quality['n_positives']:>6} trusted {str(quality['trusted']).lower():<5} "
                   f"progressive AUC {'-' if auc is None else f'{auc:.3f}'}", err=True)


# ---------------------------------------------------------------------- routes
@cli.command()
@click.option("--file", "records", type=click.File("rb"), default=None,
              help="contract records, JSON lines ('-': stdin)")
@click.option("--topic", default=None,
              help="a topic of contract records, read from its beginning to its end as it was "
                   "at the start (instead of --file)")
@click.option("--max-records", type=click.IntRange(1), default=1_000_000, show_default=True,
              help="with --topic: read at most this many records")
@click.option("--max-s", type=click.FloatRange(0.1), default=60.0, show_default=True,
              help="with --topic: read for at most this many seconds")
@_settings_options
@click.option("--goal", type=click.Choice(["login", "purchase", "contact", "cancellation"]),
              default=None, help="one goal (default: all)")
@click.option("--top", type=click.IntRange(1, 1000), default=10, show_default=True)
@click.option("--gap-s", type=click.IntRange(1), default=1800, show_default=True,
              help="a longer pause starts a new case")
@click.option("--min-cases", type=click.IntRange(1), default=5, show_default=True,
              help="sub-sequences held by fewer cases are not listed")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of the report")
@_fail_cleanly
def routes(records: Any, topic: str | None, max_records: int, max_s: float, goal: str | None,
           top: int, gap_s: int, min_cases: int, as_json: bool, **flags: Any) -> None:
    """The typical routes to each goal in a file or a topic of records (micro-journeys)."""
    from orchestrator import routes as report
    from orchestrator.core.routes import GOALS, mine_routes

    if (records is None) == (topic is None):
        raise click.UsageError("give either --file or --topic")
    read = report.ReadReport()
    goals = {goal: GOALS[goal]} if goal else GOALS
    if topic is not None:
        read_from = report.TopicReport()
        try:
            source: Any = asyncio.run(report.read_topic(
                load_settings(**flags), topic, max_records=max_records, max_s=max_s,
                report=read_from, read=read))
        except LookupError as exc:
            click.echo(f"error: {exc.args[0]}", err=True)
            sys.exit(2)
        click.echo(f"read {read_from.records} records from {topic} "
                   f"({read_from.partitions} partitions; stopped at {read_from.stopped})", err=True)
    else:
        source = report.read_lines(records, read)
    found = mine_routes(source, goals, gap_ms=gap_s * 1000, top=top, min_cases=min_cases)
    if read.bad:
        shown = ", ".join(map(str, read.bad[:report.SHOWN_BAD_LINES]))
        click.echo(f"{len(read.bad)} of {read.lines} lines are not JSON records, skipped "
                   f"(lines {shown}{', ...' if len(read.bad) > report.SHOWN_BAD_LINES else ''})",
                   err=True)
    click.echo(report.as_json(found).decode() if as_json else report.as_text(found, top))


# ---------------------------------------------------------------------- demo
@cli.command()
@click.option("--rate", type=float, default=10.0, show_default=True, help="records per second")
@click.option("--duration", type=float, default=None, help="seconds (default: until Ctrl-C)")
@click.option("--web-port", type=int, default=6066, show_default=True)
@click.option("--malformed", type=float, default=0.02, show_default=True)
@click.option("--page-port", type=int, default=6080, show_default=True,
              help="port of the demo website (127.0.0.1)")
@_fail_cleanly
def demo(rate: float, duration: float | None, web_port: int, malformed: float, page_port: int) -> None:
    """Broker + worker + simulated traffic, printing actions and their latency live, and a
    demo website that plays one visitor."""
    from orchestrator.demo import run_demo

    sys.exit(run_demo(rate=rate, duration=duration, web_port=web_port, malformed=malformed,
                      page_port=page_port))


def main() -> None:
    cli()
