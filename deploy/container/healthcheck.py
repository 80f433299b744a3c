"""The image's HEALTHCHECK: exit 0 when the worker's GET /ready answers 200, else 1.

Standard library only (the slim image has no curl). The port is ORCHESTRATOR_WEB_PORT; the
host is ORCHESTRATOR_WEB_HOST unless that is a bind-all address, then the loopback.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

BIND_ALL = {"", "0.0.0.0", "::", "[::]"}


def ready_url(environ: dict[str, str]) -> str:
    """The /ready URL of the worker configured by ``environ``."""
    host = environ.get("ORCHESTRATOR_WEB_HOST", "127.0.0.1")
    if host in BIND_ALL:
        host = "127.0.0.1"
    port = environ.get("ORCHESTRATOR_WEB_PORT", "6066")
    return f"http://{host}:{port}/ready"


def main() -> int:
    url = ready_url(dict(os.environ))
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:  # 503 while starting is an HTTPError
        print(f"{url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
