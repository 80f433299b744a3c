"""deploy/container/Dockerfile, checked without Docker: what a reviewer of the image would check."""

from __future__ import annotations

import fnmatch
import http.server
import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
from dockerfile_parse import DockerfileParser

from orchestrator.core.scoring import DEFAULT_INTENTS
from orchestrator.runtime.settings import load_intent_specs, load_rules
from tests.unit.deploy_support import DEPLOY, ROOT, settings_from_env, unknown_env_names

pytestmark = pytest.mark.unit

CONTAINER = DEPLOY / "container"
DOCKERFILE = CONTAINER / "Dockerfile"
HEALTHCHECK_SCRIPT = CONTAINER / "healthcheck.py"


@pytest.fixture(scope="module")
def dockerfile() -> DockerfileParser:
    return DockerfileParser(path=str(DOCKERFILE), cache_content=False)


def final_stage(parser: DockerfileParser) -> list[dict]:
    """The instructions after the last FROM (what the image is made of at run time)."""
    last_from = max(i for i, ins in enumerate(parser.structure) if ins["instruction"] == "FROM")
    return parser.structure[last_from:]


def instructions(stage: list[dict], name: str) -> list[str]:
    return [ins["value"] for ins in stage if ins["instruction"] == name]


def exec_form(value: str) -> list[str]:
    parsed = json.loads(value)
    assert isinstance(parsed, list), f"{value!r} is not in exec form (a JSON list)"
    return parsed


def test_builds_in_two_stages_from_one_pinned_python_311_slim_image(dockerfile: DockerfileParser) -> None:
    assert dockerfile.is_multistage
    bases = set(dockerfile.parent_images)
    assert len(bases) == 1, f"builder and runtime must share a base, got {bases}"
    base = bases.pop()
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-[a-z]+)?", base), (
        f"{base}: pin a full Python 3.11 patch version of a slim image, e.g. python:3.11.14-slim-bookworm")


def test_runs_as_a_fixed_non_root_uid(dockerfile: DockerfileParser) -> None:
    users = instructions(final_stage(dockerfile), "USER")
    assert users, "the runtime stage has no USER: the worker would run as root"
    user, _, group = users[-1].partition(":")
    # Numeric, so that Kubernetes' runAsNonRoot can verify it, and the one the manifests use.
    assert user.isdigit() and user != "0", f"USER {users[-1]}: a numeric uid other than 0"
    assert group.isdigit() and group != "0"
    assert user == "10001"


def test_health_check_runs_the_ready_probe_with_python(dockerfile: DockerfileParser) -> None:
    checks = instructions(final_stage(dockerfile), "HEALTHCHECK")
    assert checks, "the runtime stage has no HEALTHCHECK"
    options, _, command = checks[-1].partition("CMD")
    assert exec_form(command.strip()) == ["python", "/opt/orchestrator/healthcheck.py"]
    assert "--start-period" in options


def test_starts_orchestrator_worker(dockerfile: DockerfileParser) -> None:
    stage = final_stage(dockerfile)
    entrypoint = exec_form(instructions(stage, "ENTRYPOINT")[-1])
    cmd = exec_form(instructions(stage, "CMD")[-1])
    assert entrypoint + cmd == ["orchestrator", "worker"]


def test_data_dir_is_the_volume(dockerfile: DockerfileParser) -> None:
    volumes = [v for value in instructions(final_stage(dockerfile), "VOLUME") for v in exec_form(value)]
    assert volumes == [dockerfile.envs["ORCHESTRATOR_DATA_DIR"]]


def copies(dockerfile: DockerfileParser) -> list[tuple[list[str], str]]:
    """(sources, destination) of every COPY from the build context (not from another stage)."""
    found = []
    for ins in dockerfile.structure:
        if ins["instruction"] != "COPY" or "--from=" in ins["value"]:
            continue
        *sources, destination = ins["value"].split()
        found.append((sources, destination))
    return found


def _matches(pattern: str, path: str) -> bool:
    """A .dockerignore pattern matches the path or one of its parent directories; ``**/`` at the
    start matches at any depth."""
    parts = path.split("/")
    if pattern.startswith("**/"):
        pattern = pattern[3:]
        candidates = ["/".join(parts[j:i + 1]) for i in range(len(parts)) for j in range(i + 1)]
    else:
        candidates = ["/".join(parts[:i + 1]) for i in range(len(parts))]
    return any(fnmatch.fnmatchcase(c, pattern) for c in candidates)


def dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore ``patterns`` leave ``path`` (relative to the context) out: the last
    matching pattern wins and ``!`` includes again."""
    excluded = False
    for pattern in patterns:
        if _matches(pattern.removeprefix("!").rstrip("/"), path):
            excluded = not pattern.startswith("!")
    return excluded


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_everything_copied_exists_and_is_in_the_build_context(dockerfile: DockerfileParser) -> None:
    patterns = dockerignore_patterns()
    sources = [s for srcs, _ in copies(dockerfile) for s in srcs]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
        files = [source] if (ROOT / source).is_file() else [
            str(f.relative_to(ROOT)) for f in (ROOT / source).rglob("*") if f.is_file()
            and "__pycache__" not in f.parts]
        left_out = [f for f in files if dockerignore_excludes(f, patterns)]
        assert not left_out, f"COPY {source}: .dockerignore leaves out {left_out[:5]}"


def test_dockerignore_keeps_the_rest_out() -> None:
    patterns = dockerignore_patterns()
    for path in ("var/kafka/data/x", ".venv/bin/python", "tests/unit/test_events.py", ".git/HEAD",
                 "benchmarks/results/event_to_action.json", "orchestrator/__pycache__/cli.pyc"):
        assert dockerignore_excludes(path, patterns), f"{path} would be sent to the build"


def test_environment_names_real_settings_with_valid_values(dockerfile: DockerfileParser) -> None:
    env = dockerfile.envs
    assert unknown_env_names(env) == []
    settings = settings_from_env(env)
    assert settings.web_host == "0.0.0.0"  # reachable by the HEALTHCHECK, Prometheus and peers
    assert str(settings.data_dir) == "/var/lib/orchestrator"


def test_baked_in_rules_and_intents_are_the_shipped_ones(dockerfile: DockerfileParser) -> None:
    destinations = {destination: sources for sources, destination in copies(dockerfile)}
    assert destinations[dockerfile.envs["ORCHESTRATOR_RULES_DIR"]] == ["rules"]
    intents_source = destinations[dockerfile.envs["ORCHESTRATOR_INTENTS_FILE"]]
    assert intents_source == ["deploy/container/intents.yaml"]
    load_rules(ROOT / "rules")  # valid, or this raises naming the file and rule
    # The image scores what a worker without an intents file scores.
    assert load_intent_specs(ROOT / intents_source[0]) == DEFAULT_INTENTS


# ------------------------------------------------------------------------- the health check
class _ReadyHandler(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/ready" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def ready_server() -> Iterator[tuple[int, type[_ReadyHandler]]]:
    handler = type("Handler", (_ReadyHandler,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()


def run_healthcheck(port: int, host: str = "0.0.0.0") -> int:
    env = {"ORCHESTRATOR_WEB_HOST": host, "ORCHESTRATOR_WEB_PORT": str(port), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, str(HEALTHCHECK_SCRIPT)], env=env, capture_output=True,
                          timeout=30).returncode


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
def test_health_check_follows_ready(ready_server: tuple[int, type[_ReadyHandler]], status: int,
                                    healthy: bool) -> None:
    port, handler = ready_server
    handler.status = status
    assert (run_healthcheck(port) == 0) is healthy


def test_health_check_asks_the_configured_host(ready_server: tuple[int, type[_ReadyHandler]]) -> None:
    port, _ = ready_server
    assert run_healthcheck(port, host="127.0.0.1") == 0


def test_health_check_fails_when_nothing_listens() -> None:
    assert run_healthcheck(1) == 1  # port 1: nothing there


def test_health_check_asks_the_loopback_when_bound_to_all_addresses() -> None:
    sys.path.insert(0, str(CONTAINER))
    try:
        from healthcheck import ready_url
    finally:
        sys.path.remove(str(CONTAINER))
    assert ready_url({"ORCHESTRATOR_WEB_HOST": "0.0.0.0", "ORCHESTRATOR_WEB_PORT": "6067"}) == \
        "http://127.0.0.1:6067/ready"
    assert ready_url({"ORCHESTRATOR_WEB_HOST": "worker-1"}) == "http://worker-1:6066/ready"
