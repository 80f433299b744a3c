"""One settings object for every command, validated at start.

Values come from command-line flags, then ``ORCHESTRATOR_*`` environment variables, then the
defaults below. A bad value stops the command with a message that names the setting, the value
and what to fix (:class:`SettingsError`).
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic_settings
import yaml
from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from orchestrator.core.events import DecodeLimits, Source
from orchestrator.core.rules import RuleSet, RuleSetError, load_rule_directory
from orchestrator.core.scoring import DEFAULT_INTENTS, IntentSpec, IntentSpecError, load_intents
from orchestrator.runtime.scoring import ScoringPolicy

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ENV_PREFIX = "ORCHESTRATOR_"
_TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
#: A host name, an IPv4 address or an IPv6 address (without brackets).
_HOST = re.compile(r"^([A-Za-z0-9.-]{1,253}|[0-9A-Fa-f:.]{2,45})$")
_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:]+\]|[A-Za-z0-9.-]+):\d{1,5}$")
#: The largest message the worker's producer sends (Faust's producer_max_request_size default;
#: Kafka's own default limit, message.max.bytes, is about 1 MiB).
PRODUCER_MAX_MESSAGE_BYTES = 1_000_000
#: Room in a forwarded record for its envelope and a carried anonymous profile.
FORWARD_HEADROOM_BYTES = 200_000
#: The largest input record the worker can pass on: a record of a logged-in visitor is re-sent
#: to the person-events topic inside a JSON envelope, where escaping (quotes, backslashes,
#: whitespace) can double it.
MAX_RECORD_BYTES_LIMIT = (PRODUCER_MAX_MESSAGE_BYTES - FORWARD_HEADROOM_BYTES) // 2


class SettingsError(ValueError):
    """Configuration that cannot be used; the message says which setting and why."""


class Settings(BaseSettings):
    """Everything a worker, the simulator and the demo need to know."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    bootstrap_servers: str = Field("127.0.0.1:9092", description="Kafka bootstrap host:port list")
    app_id: str = Field("orchestrator", pattern=r"^[A-Za-z0-9._-]{1,100}$",
                        description="consumer group and prefix of internal topics")
    partitions: int = Field(4, ge=1, le=1024,
                            description="partitions of the input topics and the tables")
    replication_factor: int = Field(1, ge=1, le=7, description="of the topics the engine creates")
    topic_clickstream: str = "clickstream"
    topic_contact_centre: str = "contact-centre"
    topic_action_feedback: str = "action-feedback"
    topic_dead_letter: str = "dead-letter"
    topic_actions_prefix: str = "actions."
    topic_customer_context: str = "customer-context"
    topic_rules: str = "rules"
    topic_held_out: str = "decisions-held-out"
    decision_retention_s: int = Field(
        7 * 24 * 3600, ge=3600, le=10 * 365 * 24 * 3600,
        description="retention of the actions.<channel> and decisions-held-out topics the engine "
                    "creates: how long their records (which name the person) are kept")
    topic_person_events: str | None = Field(
        None, description="internal: records re-keyed to their person (at and after login); "
                          "default <app_id>-person-events")
    context_flush_ms: int = Field(
        250, ge=10, le=60_000,
        description="changes to a person's context are coalesced and published this often")
    # Comma-separated in the environment: ORCHESTRATOR_CHANNELS=web,contact-centre,email
    channels: Annotated[tuple[str, ...], NoDecode] = ("web", "contact-centre")
    store: Literal["rocksdb", "memory"] = "rocksdb"
    data_dir: Path | None = Field(None, description="table storage; default var/worker-<web port>")
    # -- web: the worker's HTTP server, who may read it, and forwarding between workers
    # (checked together at the worker's start: runtime/web_security.py)
    web_host: str = Field("127.0.0.1", description="HTTP bind address")
    web_port: int = Field(6066, ge=1, le=65535)
    web_advertised_host: str | None = Field(
        None, description="the host other workers reach this one at; default web_host (required when "
                    "web_host is 0.0.0.0 or ::)")
    web_tokens_file: Path | None = Field(
        None, description="'<role> <token>' lines (roles context-reader, operator); required "
                          "unless web_host is a loopback address")
    web_worker_secret: SecretStr | None = Field(
        None, description="shared by all workers of the app: signs requests forwarded between "
                          "them; at least 32 characters")
    web_worker_secret_file: Path | None = Field(
        None, description="file holding web_worker_secret (either may be given, not both)")
    web_tls_certfile: Path | None = Field(None, description="PEM certificate chain: serve HTTPS")
    web_tls_keyfile: Path | None = Field(None, description="PEM private key of web_tls_certfile")
    web_tls_cafile: Path | None = Field(
        None, description="PEM CA bundle that verifies other workers' certificates when "
                          "forwarding; default: the system's")
    web_forward_timeout_s: float = Field(5.0, gt=0, le=60,
                                         description="a forwarded request's total time limit")
    web_forward_max_bytes: int = Field(1_048_576, ge=65_536, le=67_108_864,
                                       description="largest answer read from another worker")
    rules_dir: Path = PROJECT_ROOT / "rules"
    journeys: bool = Field(True, description="run the journeys of journeys_dir (off: rules only)")
    journeys_dir: Path | None = Field(
        None, description="directory of journey files; default: the journeys/ of rules_dir "
                          "(none there: no journeys)")
    journey_tick_ms: int = Field(
        250, ge=20, le=10_000,
        description="how often each partition's due journey timers are looked at")
    journey_firings_per_tick: int = Field(
        8, ge=1, le=10_000,
        description="at most this many people's due timers fire per partition per tick; when "
                    "more are due, a follow-up tick is queued behind the records waiting, so "
                    "ordinary events never wait behind a whole burst of timers")
    journey_firings_per_record: int = Field(
        1, ge=0, le=1_000,
        description="at most this many people's due timers fire after each record of a "
                    "partition while none of its ticks is on the way (under traffic timers "
                    "fire there, without ticks); 0: on ticks only")
    max_record_bytes: int = Field(65_536, ge=256,
                                  description="larger records are dead-lettered; at most "
                                              f"{MAX_RECORD_BYTES_LIMIT} (what can be forwarded)")
    max_future_skew_s: int = Field(3600, ge=0)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    session_timeout_s: float = Field(
        10.0, ge=6, le=300,
        description="a worker that stops heartbeating loses its partitions after this long")
    producer_linger_ms: float = Field(0.0, ge=0, le=1000,
                                      description="how long the producer waits to batch records")
    producer_batch_bytes: int = Field(
        262_144, ge=16_384, le=1_000_000,
        description="largest batch of records the producer sends to one partition at once")
    consumer_fetch_max_wait_ms: int = Field(
        20, ge=1, le=1500,
        description="below consumer_batch_from_rate: how long the broker may hold a fetch of "
                    "partitions without new records")
    consumer_fetch_min_bytes: int = Field(
        1, ge=1, le=1_048_576,
        description="below consumer_batch_from_rate: how many bytes of records the broker waits "
                    "for (at most consumer_fetch_max_wait_ms) before it answers a fetch")
    consumer_batch_from_rate: float = Field(
        200.0, ge=0,
        description="records per second of the agent's topics (inputs and person-events) from "
                    "which fetches gather batches (0: always)")
    consumer_batch_fetch_max_wait_ms: int = Field(
        5, ge=1, le=1500,
        description="from consumer_batch_from_rate: how long the broker may hold a fetch to "
                    "gather consumer_batch_fetch_min_bytes")
    consumer_batch_fetch_min_bytes: int = Field(
        16_384, ge=1, le=1_048_576,
        description="from consumer_batch_from_rate: how many bytes of records a fetch gathers")
    consumer_busy_from_rate: float = Field(
        800.0, ge=0,
        description="records per second of the agent's topics from which a batched fetch waits "
                    "only consumer_busy_fetch_max_wait_ms (never below consumer_batch_from_rate)")
    consumer_busy_fetch_max_wait_ms: int = Field(
        2, ge=1, le=1500,
        description="from consumer_busy_from_rate: how long the broker may hold a fetch to "
                    "gather consumer_batch_fetch_min_bytes (the batched wait: no busy tier)")
    state_flush_ms: int = Field(
        1000, ge=1, le=10_000,
        description="a partition's changed profiles and links are written to the tables (and "
                    "its records acknowledged) at most this long after the first change")
    state_flush_records: int = Field(
        5000, ge=1, le=100_000,
        description="... or once this many records of the partition were handled")
    state_flush_keys: int = Field(
        256, ge=1, le=100_000,
        description="... or once this many of the partition's keys (people, links, journey "
                    "states) are changed: bounds the pause a flush makes")
    scoring: bool = Field(True, description="score intents with online models (off: no scores)")
    intents_file: Path | None = Field(
        None, description="YAML list of intents (name, outcome_event_types, horizon_s, ...); "
                          "default: the four built-in intents")
    model_checkpoint_s: float = Field(30.0, ge=1, le=3600,
                                      description="checkpoint a partition's models this often")
    label_sweep_tick_s: float = Field(5.0, ge=0.1, le=600,
                                      description="how often quiet people's labels are swept")
    label_sweep_period_s: float = Field(600.0, ge=1, le=86_400,
                                        description="every person is visited once per period")
    label_idle_after_s: float = Field(
        60.0, ge=1, le=86_400,
        description="an input this long without records lets event time advance with the clock")
    label_lateness_s: float = Field(60.0, ge=0, le=86_400,
                                    description="how late an outcome may arrive and still count")
    routes_window_s: int = Field(86_400, ge=60, le=30 * 86_400,
                                 description="GET /routes mines the cases of this much event time")
    routes_max_cases: int = Field(
        50_000, ge=0, le=1_000_000,
        description="open cases, and closed ones, the worker's route miner holds at most (0: off)")

    # ---- Kafka security: how every client of the engine (the Faust app, the admin client, the
    # rules feed, the simulator, the demo) joins a secured cluster; turned into client options
    # by runtime/kafka_security.py. Checked together at start (_kafka_security_is_usable).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="SSL: TLS; SASL_*: a SASL login (over TLS for SASL_SSL)")
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "SCRAM-SHA-512", description="SASL mechanism (SCRAM-SHA-512: what Strimzi's KafkaUser uses)")
    kafka_sasl_username: str | None = Field(None, min_length=1, description="SASL user")
    kafka_sasl_password: SecretStr | None = Field(
        None, description="SASL password (or kafka_sasl_password_file)")
    kafka_sasl_password_file: Path | None = Field(
        None, description="file holding the SASL password (a mounted secret), read at start")
    kafka_ssl_cafile: Path | None = Field(
        None, description="PEM CA bundle the broker certificates are checked against; "
                          "default: the system's trusted CAs")
    kafka_ssl_certfile: Path | None = Field(
        None, description="PEM client certificate (TLS client authentication)")
    kafka_ssl_keyfile: Path | None = Field(
        None, description="PEM private key of the client certificate")
    kafka_ssl_check_hostname: bool = Field(
        True, description="the broker certificate must name the host connected to")
    # The password of either source, once the settings are valid (a file is read once, at start).
    _kafka_sasl_secret: SecretStr | None = PrivateAttr(None)

    @field_validator("topic_clickstream", "topic_contact_centre", "topic_action_feedback",
                     "topic_dead_letter", "topic_customer_context", "topic_rules",
                     "topic_held_out")
    @classmethod
    def _legal_topic(cls, value: str) -> str:
        if not _TOPIC_NAME.match(value):
            raise ValueError("a Kafka topic name is 1-249 characters of letters, digits, . _ -")
        return value

    @field_validator("max_record_bytes")
    @classmethod
    def _sendable(cls, value: int) -> int:
        if value > MAX_RECORD_BYTES_LIMIT:
            raise ValueError(
                f"{value} bytes is more than the worker can forward: a record is re-sent inside "
                f"an envelope, JSON escaping can double it, and the producer sends at most "
                f"{PRODUCER_MAX_MESSAGE_BYTES} bytes a message; set it to {MAX_RECORD_BYTES_LIMIT} "
                f"or less")
        return value

    @field_validator("topic_person_events")
    @classmethod
    def _legal_optional_topic(cls, value: str | None) -> str | None:
        if value is not None and not _TOPIC_NAME.match(value):
            raise ValueError("a Kafka topic name is 1-249 characters of letters, digits, . _ -")
        return value

    @field_validator("web_host", "web_advertised_host")
    @classmethod
    def _legal_host(cls, value: str | None) -> str | None:
        if value is not None and not _HOST.match(value):
            raise ValueError("expected a host name or an IP address, without scheme, port or "
                             "brackets (e.g. 10.0.0.7, worker-1.orchestrator, ::1)")
        return value

    @field_validator("bootstrap_servers")
    @classmethod
    def _host_port_list(cls, value: str) -> str:
        servers = [part.strip() for part in value.split(",")]
        if not servers or not all(_HOST_PORT.match(server) for server in servers):
            raise ValueError("expected host:port[,host:port...], e.g. kafka-1:9092,kafka-2:9092")
        return ",".join(servers)

    @field_validator("channels", mode="before")
    @classmethod
    def _split_channels(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("channels")
    @classmethod
    def _legal_channels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value or not all(_TOPIC_NAME.match(c) for c in value):
            raise ValueError("channels are non-empty names of letters, digits, . _ -")
        return value

    @field_validator("kafka_sasl_password")
    @classmethod
    def _non_empty_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            raise ValueError("an empty password: set the password, or leave the variable unset")
        return value

    @model_validator(mode="after")
    def _kafka_security_is_usable(self) -> Settings:
        problems = kafka_security_problems(self)
        if problems:
            raise ValueError("\n  ".join(problems))
        if self.kafka_sasl_password_file is not None:
            self._kafka_sasl_secret = SecretStr(_read_secret_file(self.kafka_sasl_password_file))
        else:
            self._kafka_sasl_secret = self.kafka_sasl_password
        return self

    # ------------------------------------------------------------------ derived
    @property
    def worker_data_dir(self) -> Path:
        return self.data_dir or PROJECT_ROOT / "var" / f"worker-{self.web_port}"

    @property
    def journey_directory(self) -> Path | None:
        """Where the worker's journeys are read from at start (None: journeys are off)."""
        if not self.journeys:
            return None
        return self.journeys_dir or self.rules_dir / "journeys"

    @property
    def bootstrap_server_list(self) -> list[str]:
        return self.bootstrap_servers.split(",")

    @property
    def kafka_uses_sasl(self) -> bool:
        return self.kafka_security_protocol.startswith("SASL_")

    @property
    def kafka_uses_ssl(self) -> bool:
        return self.kafka_security_protocol in ("SSL", "SASL_SSL")

    @property
    def kafka_sasl_secret(self) -> SecretStr | None:
        """The SASL password, from ``kafka_sasl_password`` or the file (read at start)."""
        return self._kafka_sasl_secret

    @property
    def decode_limits(self) -> DecodeLimits:
        return DecodeLimits(self.max_record_bytes, self.max_future_skew_s * 1000)

    @property
    def scoring_policy(self) -> ScoringPolicy:
        return ScoringPolicy(
            checkpoint_s=self.model_checkpoint_s, sweep_tick_s=self.label_sweep_tick_s,
            sweep_period_s=self.label_sweep_period_s, idle_after_s=self.label_idle_after_s,
            lateness_ms=int(self.label_lateness_s * 1000))

    @property
    def person_events_topic(self) -> str:
        return self.topic_person_events or f"{self.app_id}-person-events"

    def action_topic(self, channel: str) -> str:
        return f"{self.topic_actions_prefix}{channel}"

    @property
    def input_topics(self) -> dict[str, Source]:
        return {
            self.topic_clickstream: Source.CLICKSTREAM,
            self.topic_contact_centre: Source.CONTACT_CENTRE,
            self.topic_action_feedback: Source.ACTION_FEEDBACK,
        }

    @property
    def output_topics(self) -> list[str]:
        return [self.topic_dead_letter, self.topic_customer_context, self.topic_held_out,
                self.person_events_topic,
                *(self.action_topic(c) for c in self.channels)]


_SASL_FIELDS = ("kafka_sasl_username", "kafka_sasl_password", "kafka_sasl_password_file")
_SSL_FILE_FIELDS = ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile")
#: Settings whose values are never shown, not even in an error about them.
SECRET_FIELDS = frozenset({"kafka_sasl_password"})


def kafka_security_problems(settings: Settings) -> list[str]:
    """What is wrong with the Kafka security settings taken together, each with what to do."""
    env = {name: ENV_PREFIX + name.upper() for name in (*_SASL_FIELDS, *_SSL_FILE_FIELDS)}
    protocol = f"{ENV_PREFIX}KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol}"
    problems = []
    if settings.kafka_uses_sasl:
        if settings.kafka_sasl_username is None:
            problems.append(f"{protocol} needs a user: set {env['kafka_sasl_username']}")
        if settings.kafka_sasl_password is None and settings.kafka_sasl_password_file is None:
            problems.append(f"{protocol} needs a password: set {env['kafka_sasl_password']} "
                            f"or {env['kafka_sasl_password_file']}")
        if settings.kafka_sasl_password is not None and settings.kafka_sasl_password_file is not None:
            problems.append(f"set one of {env['kafka_sasl_password']} and "
                            f"{env['kafka_sasl_password_file']}, not both")
    else:
        # Ignoring them would connect without the login the operator asked for.
        given = [env[name] for name in _SASL_FIELDS if getattr(settings, name) is not None]
        if given:
            problems.append(f"{', '.join(given)} given but {protocol} logs in with no SASL: "
                            f"use SASL_SSL or SASL_PLAINTEXT, or remove them")
    if not settings.kafka_uses_ssl:
        given = [env[name] for name in _SSL_FILE_FIELDS if getattr(settings, name) is not None]
        if given:
            problems.append(f"{', '.join(given)} given but {protocol} does not use TLS: "
                            f"use SSL or SASL_SSL, or remove them")
    if settings.kafka_ssl_keyfile is not None and settings.kafka_ssl_certfile is None:
        problems.append(f"{env['kafka_ssl_keyfile']} is the key of a client certificate: "
                        f"set {env['kafka_ssl_certfile']} too")
    for name in ("kafka_sasl_password_file", *_SSL_FILE_FIELDS):
        path = getattr(settings, name)
        if path is not None and not path.is_file():
            problems.append(f"{ENV_PREFIX + name.upper()}={str(path)!r}: no such file")
    return problems


def _read_secret_file(path: Path) -> str:
    try:
        # A trailing newline (echo > file) is not part of the password.
        secret = path.read_text().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{ENV_PREFIX}KAFKA_SASL_PASSWORD_FILE: cannot read {path}: "
                         f"{type(exc).__name__}") from None
    if not secret:
        raise ValueError(f"{ENV_PREFIX}KAFKA_SASL_PASSWORD_FILE: {path} is empty")
    return secret


def load_settings(**overrides: Any) -> Settings:
    """Build settings from flags (``overrides``, None meaning "not given") and the environment."""
    given = {k: v for k, v in overrides.items() if v is not None}
    _reject_unknown_env()
    try:
        return Settings(**given)
    except ValidationError as exc:
        raise SettingsError(_explain(exc, given)) from None
    except pydantic_settings.SettingsError as exc:  # the environment could not even be parsed
        raise SettingsError(f"invalid configuration: {exc}") from None


def load_rules(path: Path) -> RuleSet:
    """Read and validate the rule directory (every ``*.yaml`` in it)."""
    try:
        return load_rule_directory(path)
    except RuleSetError as exc:
        raise SettingsError(str(exc)) from None


def load_intent_specs(path: Path | None) -> tuple[IntentSpec, ...]:
    """The intents to score: the built-in ones, or those of a YAML file (a list of mappings)."""
    if path is None:
        return DEFAULT_INTENTS
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SettingsError(f"{path}: cannot read the intents file: {exc}") from None
    if not isinstance(data, list):
        raise SettingsError(f"{path}: must be a YAML list of intents, not {type(data).__name__}")
    try:
        return load_intents(data)
    except IntentSpecError as exc:
        raise SettingsError(f"{path}: {exc}") from None


def _reject_unknown_env() -> None:
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    for name in os.environ:
        # Variables are read case-insensitively, so misspellings are looked for the same way.
        upper = name.upper()
        if upper.startswith(ENV_PREFIX) and upper not in known:
            close = difflib.get_close_matches(upper, sorted(known), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise SettingsError(f"unknown setting {name}{hint}")


def _explain(exc: ValidationError, given: dict[str, Any]) -> str:
    lines = ["invalid configuration:"]
    for error in exc.errors(include_url=False):
        message = error["msg"].removeprefix("Value error, ")
        if not error["loc"]:  # a check of several settings: the message names them
            lines.append(f"  {message}")
            continue
        field = str(error["loc"][0])
        env = ENV_PREFIX + field.upper()
        origin = (f"--{field.replace('_', '-')}" if field in given else env)
        value = given.get(field, os.environ.get(env))
        if value is not None and field in SECRET_FIELDS:
            value = "**********"
        shown = f"={value!r}" if value is not None else ""
        lines.append(f"  {origin}{shown}: {message}")
    return "\n".join(lines)
