"""The worker's HTTP security, built from the ``web_*`` settings once, at the worker's start.

The rules (README, "HTTP security"):

- A worker that listens on anything but a loopback address needs a tokens file
  (``web_tokens_file``) and a worker secret (``web_worker_secret`` or ``web_worker_secret_file``):
  it refuses to start without them. On a loopback address (the local demo, tests) both may be
  left out: without tokens every local client may read every page; without a secret the workers
  of one machine share one kept in ``var/web-worker-secret`` (created on first use, mode 0600)
  and each app uses its own HMAC of it with the app id.
- A worker bound to every interface (``0.0.0.0``, ``::``) must be told the host the others reach
  it at (``web_advertised_host``): Faust announces ``<scheme>://<advertised host>:<port>`` to
  the group, and forwarded requests go there.
- ``web_tls_certfile`` and ``web_tls_keyfile`` together make the server speak HTTPS (and the
  announced address https); forwarded requests then verify the other worker's certificate
  against ``web_tls_cafile`` or the system's CAs.

Every problem is a :class:`SettingsError` naming the setting (and for the tokens file the line).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
import ssl
from dataclasses import dataclass
from pathlib import Path

from yarl import URL

from orchestrator.core.access import TokenFileError, TokenTable, parse_tokens
from orchestrator.runtime.settings import ENV_PREFIX, PROJECT_ROOT, Settings, SettingsError

#: Shared by the loopback workers of this checkout that were given no worker secret.
LOCAL_SECRET_FILE = PROJECT_ROOT / "var" / "web-worker-secret"
MIN_SECRET_CHARS = 32
#: Larger files are not a tokens file or a secret (a wrong path, say to a log).
MAX_FILE_BYTES = 1_048_576


@dataclass(frozen=True)
class WebSecurity:
    """What the HTTP pages and the forwarding between workers need to know."""

    #: None: no tokens file; every client may read every page (loopback only).
    tokens: TokenTable | None
    worker_secret: bytes
    #: The host other workers reach this one at.
    advertised_host: str
    #: The server's TLS context; None: plain HTTP.
    server_ssl: ssl.SSLContext | None
    #: How forwarded requests verify another worker's certificate (None: plain HTTP).
    client_ssl: ssl.SSLContext | None
    forward_timeout_s: float
    forward_max_bytes: int

    @property
    def scheme(self) -> str:
        return "https" if self.server_ssl is not None else "http"

    def canonical_url(self, port: int) -> str:
        """The address Faust announces to the other workers of the group."""
        return str(URL.build(scheme=self.scheme, host=self.advertised_host, port=port))


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_every_interface(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def _env(field: str) -> str:
    return ENV_PREFIX + field.upper()


def load_web_security(settings: Settings) -> WebSecurity:
    """Check the ``web_*`` settings together and read the files they name."""
    host = settings.web_host
    local = is_loopback(host)
    tokens = _read_tokens(settings.web_tokens_file) if settings.web_tokens_file else None
    if tokens is None and not local:
        raise SettingsError(
            f"{_env('web_host')}={host!r} serves other machines, so the HTTP pages need "
            f"authentication: set {_env('web_tokens_file')} to a file of '<role> <token>' lines "
            f"(README, 'HTTP security'), or bind a loopback address (127.0.0.1)")
    return WebSecurity(
        tokens=tokens,
        worker_secret=_worker_secret(settings, local),
        advertised_host=_advertised_host(settings),
        server_ssl=_server_ssl(settings),
        client_ssl=_client_ssl(settings),
        forward_timeout_s=settings.web_forward_timeout_s,
        forward_max_bytes=settings.web_forward_max_bytes,
    )


def _advertised_host(settings: Settings) -> str:
    advertised = settings.web_advertised_host
    if advertised is not None and is_every_interface(advertised):
        raise SettingsError(f"{_env('web_advertised_host')}={advertised!r} is not an address other "
                            f"workers can reach: give this worker's host name or IP")
    if advertised is None and is_every_interface(settings.web_host):
        raise SettingsError(
            f"{_env('web_host')}={settings.web_host!r} binds every interface, so other workers "
            f"cannot reach this one at it: set {_env('web_advertised_host')} to the host name or "
            f"IP they reach it at (in Kubernetes, the pod IP)")
    return advertised or settings.web_host


def _read_text(path: Path, setting: str, what: str) -> str:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise SettingsError(f"{_env(setting)}={str(path)!r}: larger than {MAX_FILE_BYTES} "
                                f"bytes, not a {what}")
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{_env(setting)}={str(path)!r}: cannot read the {what}: {exc}") from None


def _read_tokens(path: Path) -> TokenTable:
    text = _read_text(path, "web_tokens_file", "tokens file")
    try:
        return parse_tokens(text)
    except TokenFileError as exc:
        raise SettingsError(f"{_env('web_tokens_file')}: {path}: {exc}") from None


def _worker_secret(settings: Settings, local: bool) -> bytes:
    given, path = settings.web_worker_secret, settings.web_worker_secret_file
    if given is not None and path is not None:
        raise SettingsError(f"set {_env('web_worker_secret')} or {_env('web_worker_secret_file')}, "
                            f"not both")
    if path is not None:
        secret = _read_text(path, "web_worker_secret_file", "worker secret file").strip()
        origin = f"{_env('web_worker_secret_file')}={str(path)!r}"
    elif given is not None:
        secret, origin = given.get_secret_value(), _env("web_worker_secret")
    elif local:
        return _local_secret(settings.app_id)
    else:
        raise SettingsError(
            f"{_env('web_host')}={settings.web_host!r} serves other machines, so the workers need "
            f"a shared secret to sign the requests they forward to each other: set "
            f"{_env('web_worker_secret_file')} (or {_env('web_worker_secret')}) to the same value "
            f"of at least {MIN_SECRET_CHARS} characters on every worker of the app")
    if len(secret) < MIN_SECRET_CHARS:
        raise SettingsError(f"{origin}: the worker secret is {len(secret)} characters; at least "
                            f"{MIN_SECRET_CHARS} are needed (e.g. `openssl rand -hex 32`)")
    return secret.encode()


def _local_secret(app_id: str) -> bytes:
    """This machine's loopback secret for ``app_id``: an HMAC of the shared local file."""
    return hmac.new(_local_secret_file(LOCAL_SECRET_FILE), app_id.encode(), hashlib.sha256).digest()


def _local_secret_file(path: Path) -> bytes:
    """The content of ``path``, created with a random secret if absent. Written to a private
    temporary file and hard-linked into place, so a worker starting at the same moment reads
    either no file or the whole of one, and all of them end up with the same secret."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_hex(32))
            try:
                os.link(temporary, path)
            except FileExistsError:
                pass  # another worker was first: use its secret
            finally:
                temporary.unlink()
        secret = path.read_bytes().strip()
    except OSError as exc:
        raise SettingsError(f"cannot keep the local worker secret in {path}: {exc}; set "
                            f"{_env('web_worker_secret_file')}") from None
    if len(secret) < MIN_SECRET_CHARS:
        raise SettingsError(f"{path} holds no usable worker secret; delete it (it is recreated)")
    return secret


def _server_ssl(settings: Settings) -> ssl.SSLContext | None:
    cert, key = settings.web_tls_certfile, settings.web_tls_keyfile
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise SettingsError(f"HTTPS needs both {_env('web_tls_certfile')} and "
                            f"{_env('web_tls_keyfile')}; only one is set")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile=cert, keyfile=key)
    except (OSError, ssl.SSLError) as exc:
        raise SettingsError(f"{_env('web_tls_certfile')}={str(cert)!r}, {_env('web_tls_keyfile')}="
                            f"{str(key)!r}: cannot load the certificate and key: {exc}") from None
    return context


def _client_ssl(settings: Settings) -> ssl.SSLContext | None:
    if settings.web_tls_certfile is None:
        if settings.web_tls_cafile is not None:
            raise SettingsError(f"{_env('web_tls_cafile')} is only used with HTTPS "
                                f"({_env('web_tls_certfile')}, {_env('web_tls_keyfile')})")
        return None
    try:
        return ssl.create_default_context(cafile=settings.web_tls_cafile)
    except (OSError, ssl.SSLError) as exc:
        raise SettingsError(f"{_env('web_tls_cafile')}={str(settings.web_tls_cafile)!r}: cannot "
                            f"load the CA bundle: {exc}") from None
