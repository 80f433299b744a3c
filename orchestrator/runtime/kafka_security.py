"""How every Kafka client of the engine joins the cluster: TLS and SASL options from Settings.

One place turns the ``kafka_*`` settings into what the clients take: Faust's
``broker_credentials`` (:func:`faust_credentials`) and keyword arguments for aiokafka's
producer, consumer and admin client (:func:`client_options`). Both are built from the same
settings, so the Faust app (its consumer, producer, topic creation and table changelogs) and the
engine's own clients always authenticate alike. :func:`explain_refusal` says, after a client
could not start, what the cluster objected to.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import faust
from aiokafka import errors as kafka_errors
from aiokafka.conn import create_conn
from aiokafka.helpers import create_ssl_context
from faust.types.auth import CredentialsT

from orchestrator.runtime.settings import ENV_PREFIX, Settings, SettingsError

_PROBE_TIMEOUT_S = 15.0


class KafkaAccessError(RuntimeError):
    """The cluster could not be reached or refused the engine; the message says what to fix."""


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context of the broker connections (None without TLS).

    Broker certificates are verified against ``kafka_ssl_cafile`` (the system's CAs without
    it), with host names checked unless ``kafka_ssl_check_hostname`` is off; a client
    certificate is presented when ``kafka_ssl_certfile`` is set.
    """
    if not settings.kafka_uses_ssl:
        return None
    try:
        context = create_ssl_context(cafile=settings.kafka_ssl_cafile,
                                     certfile=settings.kafka_ssl_certfile,
                                     keyfile=settings.kafka_ssl_keyfile)
    except (ssl.SSLError, OSError) as exc:
        # The files exist (checked with the settings) but are not usable PEM.
        raise SettingsError(
            f"Kafka security: the TLS files cannot be used ({exc}); check {ENV_PREFIX}"
            f"KAFKA_SSL_CAFILE, _CERTFILE and _KEYFILE hold PEM certificates and an "
            f"unencrypted PEM key") from None
    context.check_hostname = settings.kafka_ssl_check_hostname
    return context


def client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for AIOKafkaProducer, AIOKafkaConsumer and AIOKafkaAdminClient:
    ``bootstrap_servers`` and the security options."""
    options: dict[str, Any] = {"bootstrap_servers": settings.bootstrap_servers,
                               "security_protocol": settings.kafka_security_protocol}
    context = ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if settings.kafka_uses_sasl:
        secret = settings.kafka_sasl_secret
        options.update(sasl_mechanism=settings.kafka_sasl_mechanism,
                       sasl_plain_username=settings.kafka_sasl_username,
                       sasl_plain_password=secret.get_secret_value() if secret else None)
    return options


def faust_credentials(settings: Settings) -> CredentialsT | None:
    """Faust's ``broker_credentials`` for the settings (None: PLAINTEXT).

    Faust hands them to every aiokafka client it makes (consumer, producer, and the client
    that creates topics and table changelogs) through ``credentials_to_aiokafka_auth``.
    """
    context = ssl_context(settings)
    if settings.kafka_uses_sasl:
        secret = settings.kafka_sasl_secret
        # With a context Faust's SASLCredentials speak SASL_SSL, without one SASL_PLAINTEXT.
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=secret.get_secret_value() if secret else None,
            ssl_context=context, mechanism=settings.kafka_sasl_mechanism)
    if context is not None:
        return faust.SSLCredentials(context)
    return None


async def explain_refusal(settings: Settings) -> str:
    """Connect to each bootstrap server as the clients do; say why none would take us.

    aiokafka only logs why a bootstrap server refused a connection and then reports that it
    could not bootstrap; this repeats one connection per server to name the cause (a refused
    login, an untrusted certificate, a server that does not answer).
    """
    options = client_options(settings)
    options.pop("bootstrap_servers")
    reasons = []
    for server in settings.bootstrap_server_list:
        host, _, port = server.rpartition(":")
        try:
            conn = await asyncio.wait_for(
                create_conn(host.strip("[]"), int(port), request_timeout_ms=int(_PROBE_TIMEOUT_S * 1000),
                            **options), _PROBE_TIMEOUT_S)
        except Exception as exc:  # every cause is reported, none is raised from here
            reasons.append(f"{server}: {_describe(exc, settings)}")
            continue
        conn.close()
        reasons.append(f"{server}: connected and logged in, but the cluster metadata could not "
                       f"be read (is it a broker of the cluster?)")
    return "; ".join(reasons)


def _describe(exc: BaseException, settings: Settings) -> str:
    """A connection failure in words, with the settings that would fix it."""
    sasl = (f"{ENV_PREFIX}KAFKA_SASL_USERNAME, {ENV_PREFIX}KAFKA_SASL_PASSWORD (or _PASSWORD_FILE) "
            f"and {ENV_PREFIX}KAFKA_SASL_MECHANISM")
    if isinstance(exc, kafka_errors.SaslAuthenticationFailed):
        return (f"authentication failed: the broker refused the {settings.kafka_sasl_mechanism} "
                f"login of user {settings.kafka_sasl_username!r} ({exc}); check {sasl}")
    if isinstance(exc, kafka_errors.UnsupportedSaslMechanismError):
        return f"the broker does not offer this SASL mechanism ({exc}); check {sasl}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"the broker's TLS certificate was not accepted ({exc.verify_message}); set "
                f"{ENV_PREFIX}KAFKA_SSL_CAFILE to the CA that signed it, and connect by a name "
                f"the certificate holds (or {ENV_PREFIX}KAFKA_SSL_CHECK_HOSTNAME=false)")
    if isinstance(exc, ssl.SSLError):
        return f"the TLS handshake failed ({exc}); does this listener speak TLS?"
    if isinstance(exc, asyncio.TimeoutError | kafka_errors.KafkaConnectionError):
        return (f"the listener does not answer in {settings.kafka_security_protocol} ({exc or 'timed out'});"
                f" check {ENV_PREFIX}KAFKA_SECURITY_PROTOCOL matches the listener")
    if isinstance(exc, OSError):
        return f"cannot connect ({exc.strerror or exc})"
    return f"{type(exc).__name__}: {exc}"
