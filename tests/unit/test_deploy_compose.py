"""deploy/compose/compose.yaml, checked without Docker: valid against the Compose specification's
schema (vendored: tests/schemas/README.md), and right in the ways a user would find out at
`docker compose up`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.deploy_support import DEPLOY, SCHEMAS, settings_from_env, unknown_env_names

pytestmark = pytest.mark.unit

COMPOSE_DIR = DEPLOY / "compose"
COMPOSE_FILE = COMPOSE_DIR / "compose.yaml"
COMPOSE_SCHEMA = SCHEMAS / "compose-spec" / "compose-spec.json"
WORKERS = ("worker-1", "worker-2")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def engine_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The services that run the worker's image (workers and the simulator)."""
    return {name: s for name, s in services.items() if s.get("image") == "orchestrator:local"}


def test_is_valid_against_the_compose_specification() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--schemafile", str(COMPOSE_SCHEMA), str(COMPOSE_FILE)],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_broken_file(tmp_path: Path, compose: dict[str, Any]) -> None:
    broken = dict(compose, services={**compose["services"], "kafka": {"image": "x", "ports": "9092"}})
    path = tmp_path / "compose.yaml"
    path.write_text(yaml.safe_dump(broken))
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--schemafile", str(COMPOSE_SCHEMA), str(path)],
        capture_output=True, text=True, timeout=120)
    assert result.returncode != 0


def test_runs_what_the_stack_promises(services: dict[str, dict[str, Any]]) -> None:
    assert services["kafka"]["image"] == "apache/kafka:3.9.1"
    assert set(services) == {"kafka", *WORKERS, "simulator", "prometheus", "grafana"}
    assert services["simulator"]["command"][0] == "simulate"


def test_every_image_is_pinned_or_built_here(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        build = service.get("build")
        if build is not None:
            context = (COMPOSE_DIR / build["context"]).resolve()
            assert (context / build["dockerfile"]).is_file(), f"{name}: no {build['dockerfile']}"
            continue
        image = service["image"]
        assert re.search(r":v?\d+\.\d+\.\d+$", image), f"{name}: {image} is not pinned to a version"


def test_engine_services_use_real_settings_with_valid_values(services: dict[str, dict[str, Any]]) -> None:
    engines = engine_services(services)
    assert set(engines) == {*WORKERS, "simulator"}
    for name, service in engines.items():
        env = service["environment"]
        assert unknown_env_names(env) == [], name
        settings_from_env(env)  # raises naming the field for a value a worker would refuse


def test_engine_services_agree_on_the_topics(services: dict[str, dict[str, Any]]) -> None:
    """The workers create the topics at start: everyone must ask for the same partitions."""
    shapes = {(s.bootstrap_servers, s.app_id, s.partitions, s.replication_factor)
              for s in (settings_from_env(service["environment"])
                        for service in engine_services(services).values())}
    assert len(shapes) == 1, shapes


def test_engine_services_reach_the_brokers_internal_listener(services: dict[str, dict[str, Any]]) -> None:
    advertised = services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"].split(",")
    internal = {listener.split("://")[1] for listener in advertised if listener.startswith("INTERNAL://")}
    for name, service in engine_services(services).items():
        assert settings_from_env(service["environment"]).bootstrap_server_list == sorted(internal), name


def test_workers_are_distinct_and_advertise_their_service_name(services: dict[str, dict[str, Any]]) -> None:
    ports, volumes = set(), set()
    for name in WORKERS:
        service = services[name]
        env = service["environment"]
        settings = settings_from_env(env)
        assert settings.web_host == "0.0.0.0"
        assert env["ORCHESTRATOR_WEB_ADVERTISED_HOST"] == name
        assert f"127.0.0.1:{settings.web_port}:{settings.web_port}" in service["ports"]
        data = [v for v in service["volumes"] if v.endswith(":/var/lib/orchestrator")]
        assert len(data) == 1, f"{name}: one data volume at the image's data dir"
        ports.add(settings.web_port)
        volumes.add(data[0])
    assert len(ports) == len(volumes) == len(WORKERS)


def bind_mounts(services: dict[str, dict[str, Any]]) -> list[tuple[str, Path, str]]:
    """(service, host path, container path) of every mount of a path in the repository."""
    mounts = []
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source, target, *_ = volume.split(":")
            if source.startswith("."):
                mounts.append((name, (COMPOSE_DIR / source).resolve(), target))
    return mounts


def test_mounted_files_exist(services: dict[str, dict[str, Any]]) -> None:
    mounts = bind_mounts(services)
    assert mounts
    for name, path, _ in mounts:
        assert path.exists(), f"{name} mounts {path}, which is not in the repository"


def test_named_volumes_are_declared(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    used = {v.split(":")[0] for s in services.values() for v in s.get("volumes", [])
            if not v.startswith((".", "/"))}
    assert used == set(compose["volumes"])


def test_prometheus_scrapes_both_workers_with_the_shipped_alerts(services: dict[str, dict[str, Any]]) -> None:
    mounts = {target: path for name, path, target in bind_mounts(services) if name == "prometheus"}
    config = yaml.safe_load(mounts["/etc/prometheus/prometheus.yml"].read_text())
    assert mounts["/etc/prometheus/alerts.yml"] == DEPLOY / "prometheus" / "alerts.yml"
    assert config["rule_files"] == ["alerts.yml"]
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "orchestrator"  # what the alerts and the dashboard select
    targets = set(job["static_configs"][0]["targets"])
    expected = {f"{services[w]['environment']['ORCHESTRATOR_WEB_ADVERTISED_HOST']}:"
                f"{services[w]['environment']['ORCHESTRATOR_WEB_PORT']}" for w in WORKERS}
    assert targets == expected


def test_grafana_has_prometheus_and_the_dashboard(services: dict[str, dict[str, Any]]) -> None:
    mounts = {target: path for name, path, target in bind_mounts(services) if name == "grafana"}
    provisioning = "/etc/grafana/provisioning"
    (datasources_file,) = [p for t, p in mounts.items() if t.startswith(f"{provisioning}/datasources/")]
    (dashboards_file,) = [p for t, p in mounts.items() if t.startswith(f"{provisioning}/dashboards/")]
    (source,) = yaml.safe_load(datasources_file.read_text())["datasources"]
    assert source["type"] == "prometheus" and source["isDefault"] is True
    assert source["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load(dashboards_file.read_text())["providers"]
    dashboard_dir = provider["options"]["path"]
    dashboards = [p for t, p in mounts.items() if t.startswith(f"{dashboard_dir}/")]
    assert dashboards == [DEPLOY / "grafana" / "orchestrator-dashboard.json"]
