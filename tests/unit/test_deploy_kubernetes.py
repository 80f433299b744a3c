"""deploy/kubernetes/, checked offline: every manifest against its schema (core kinds with
kubernetes-validate's bundled schemas, Strimzi's and the Prometheus Operator's kinds against
their CRDs' openAPIV3Schema, vendored in tests/schemas/), and against the code: the topics the
engine creates, the settings it reads, the alerts shipped in deploy/prometheus/."""

from __future__ import annotations

import copy
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import certifi
import jsonschema
import kubernetes_validate
import pytest
import yaml

from orchestrator.runtime.settings import Settings, load_rules
from tests.unit.deploy_support import (
    DEPLOY,
    ROOT,
    SCHEMAS,
    engine_topics,
    settings_from_env,
    unknown_env_names,
    yaml_documents,
)

pytestmark = pytest.mark.unit

KUBERNETES = DEPLOY / "kubernetes"
#: Validated against this Kubernetes API version (kubernetes-validate bundles 1.25 ... 1.37).
KUBERNETES_VERSION = "1.30.0"
CRD_FILES = [*sorted((SCHEMAS / "strimzi-1.0.1").glob("*.yaml")),
             *sorted((SCHEMAS / "prometheus-operator-v0.93.0").glob("*.yaml"))]
CORE_GROUPS = {"v1", "apps/v1"}


def manifests() -> list[tuple[Path, dict[str, Any]]]:
    return [(path, doc) for path in sorted(KUBERNETES.glob("*.yaml")) for doc in yaml_documents(path)]


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in manifests() if doc["kind"] == kind]


def one(kind: str) -> dict[str, Any]:
    (doc,) = of_kind(kind)
    return doc


# ------------------------------------------------------------------------------- schemas
def closed(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with unknown properties refused wherever it lists the known ones.

    Kubernetes prunes fields a CRD's schema does not list, silently: a misspelt field would be
    dropped at apply time. Refusing them here makes the misspelling fail the test instead.
    """
    schema = copy.deepcopy(schema)

    def close(node: Any) -> None:
        if isinstance(node, dict):
            if ("properties" in node and "additionalProperties" not in node
                    and not node.get("x-kubernetes-preserve-unknown-fields")):
                node["additionalProperties"] = False
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(schema)
    return schema


@cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> the CRD's openAPIV3Schema, closed."""
    found = {}
    for path in CRD_FILES:
        for crd in yaml_documents(path):
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if version["served"]:
                    found[(f"{group}/{version['name']}", kind)] = closed(version["schema"]["openAPIV3Schema"])
    return found


def schema_errors(doc: dict[str, Any]) -> list[str]:
    """Why ``doc`` is not a valid resource of its kind (empty when it is)."""
    if doc["apiVersion"] in CORE_GROUPS:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            return [f"{'.'.join(map(str, exc.path))}: {exc.message}"]
        return []
    schema = crd_schemas().get((doc["apiVersion"], doc["kind"]))
    if schema is None:
        return [f"no schema for {doc['apiVersion']} {doc['kind']}"]
    validator = jsonschema.Draft7Validator(schema)
    return [f"{'.'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(doc)]


@pytest.mark.parametrize(("path", "doc"), manifests(),
                         ids=[f"{p.name}:{d['kind']}/{d['metadata']['name']}" for p, d in manifests()])
def test_manifest_is_valid(path: Path, doc: dict[str, Any]) -> None:
    assert schema_errors(doc) == []


def test_the_schemas_refuse_what_is_wrong() -> None:
    """The validation can fail: a misspelt field, a wrong type, an unknown kind."""
    topic = copy.deepcopy(of_kind("KafkaTopic")[0])
    topic["spec"]["partition"] = topic["spec"].pop("partitions")
    assert schema_errors(topic)
    user = copy.deepcopy(one("KafkaUser"))
    user["spec"]["authentication"]["type"] = "scram-sha-1"
    assert schema_errors(user)
    stateful_set = copy.deepcopy(one("StatefulSet"))
    stateful_set["spec"]["replicas"] = "three"
    assert schema_errors(stateful_set)
    assert schema_errors({"apiVersion": "kafka.strimzi.io/v1beta2", "kind": "Kafka", "metadata": {}})


def test_everything_is_in_one_namespace() -> None:
    namespaces = {doc["metadata"].get("namespace") for _, doc in manifests() if doc["kind"] != "Namespace"}
    assert namespaces == {one("Namespace")["metadata"]["name"]}


# ------------------------------------------------------------------------------- the worker
def worker_container() -> dict[str, Any]:
    (container,) = one("StatefulSet")["spec"]["template"]["spec"]["containers"]
    return container


def worker_env() -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in worker_container()["env"]}


def secret_mounts() -> list[str]:
    """Where the worker's container mounts Secrets (files that exist only in the pod)."""
    spec = one("StatefulSet")["spec"]["template"]["spec"]
    secret_volumes = {v["name"] for v in spec["volumes"] if "secret" in v}
    return [m["mountPath"] for m in worker_container()["volumeMounts"]
            if m["name"] in secret_volumes]


@cache
def worker_settings() -> Settings:
    """The worker's settings, with each file from a mounted Secret replaced by a stand-in file
    (its path is the pod's; Settings checks that the file exists) and a pod IP for the
    downward API's."""
    stand_ins = Path(tempfile.mkdtemp(prefix="secret-mounts-"))
    env = {}
    for name, value in worker_env().items():
        if value == {"fieldRef": {"fieldPath": "status.podIP"}}:
            value = "10.0.0.7"  # the downward API's pod IP, in the pod
        if not isinstance(value, str):
            continue
        if any(value.startswith(mount + "/") for mount in secret_mounts()):
            stand_in = stand_ins / name
            # A CA file needs PEM certificates (certifi's bundle stands in), a tokens file its
            # lines, a password or a worker secret any 32+ characters.
            secret = "s" * 40
            if name.endswith("CAFILE"):
                stand_in.write_bytes(Path(certifi.where()).read_bytes())
            else:
                stand_in.write_text(f"operator {secret}\n" if name.endswith("TOKENS_FILE") else secret)
            value = str(stand_in)
        env[name] = value
    return settings_from_env(env)


def test_worker_env_names_are_settings_with_valid_values() -> None:
    assert unknown_env_names(worker_env()) == []
    worker_settings()  # raises naming the field for a value the worker would refuse


def test_worker_binds_all_addresses_and_advertises_its_pod_ip() -> None:
    env = worker_env()
    assert worker_settings().web_host == "0.0.0.0"
    assert env["ORCHESTRATOR_WEB_ADVERTISED_HOST"] == {"fieldRef": {"fieldPath": "status.podIP"}}


def test_worker_keeps_its_tables_on_its_own_volume() -> None:
    stateful_set = one("StatefulSet")
    (claim,) = stateful_set["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in worker_container()["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == str(worker_settings().data_dir)


def test_worker_runs_as_the_images_user() -> None:
    dockerfile = (DEPLOY / "container" / "Dockerfile").read_text()
    security = one("StatefulSet")["spec"]["template"]["spec"]["securityContext"]
    assert f"USER {security['runAsUser']}:{security['runAsGroup']}" in dockerfile
    assert security["runAsNonRoot"] is True


def test_every_file_setting_points_into_a_mounted_volume() -> None:
    mounts = [m["mountPath"] for m in worker_container()["volumeMounts"]]
    files = {k: v for k, v in worker_env().items() if k.endswith(("_FILE", "_CAFILE"))}
    assert files
    for name, path in files.items():
        assert any(path.startswith(f"{mount}/") for mount in mounts), f"{name}={path}: not mounted"


def test_worker_reaches_the_kafka_tls_listener_as_its_kafka_user() -> None:
    kafka, user = one("Kafka"), one("KafkaUser")
    cluster = kafka["metadata"]["name"]
    (listener,) = kafka["spec"]["kafka"]["listeners"]
    assert listener["tls"] is True and listener["authentication"]["type"] == "scram-sha-512"
    env = worker_env()
    assert worker_settings().bootstrap_servers == f"{cluster}-kafka-bootstrap:{listener['port']}"
    assert env["ORCHESTRATOR_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["ORCHESTRATOR_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert env["ORCHESTRATOR_KAFKA_SASL_USERNAME"] == user["metadata"]["name"]
    secrets = {v["name"]: v["secret"]["secretName"]
               for v in one("StatefulSet")["spec"]["template"]["spec"]["volumes"] if "secret" in v}
    assert user["metadata"]["name"] in secrets.values()  # the User Operator's Secret
    assert f"{cluster}-cluster-ca-cert" in secrets.values()
    assert user["metadata"]["labels"]["strimzi.io/cluster"] == cluster


def test_services_select_the_worker_pods() -> None:
    stateful_set = one("StatefulSet")
    labels = stateful_set["spec"]["template"]["metadata"]["labels"]
    port_names = {p["name"] for p in worker_container()["ports"]}
    services = {s["metadata"]["name"]: s for s in of_kind("Service")}
    assert services[stateful_set["spec"]["serviceName"]]["spec"]["clusterIP"] == "None"
    for service in services.values():
        assert service["spec"]["selector"].items() <= labels.items()
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names


def test_probes_ask_ready() -> None:
    container = worker_container()
    for probe in ("startupProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["path"] == "/ready"


def test_no_more_workers_than_partitions() -> None:
    assert one("StatefulSet")["spec"]["replicas"] <= worker_settings().partitions


def test_resources_request_one_core_and_bound_memory() -> None:
    resources = worker_container()["resources"]
    assert resources["requests"]["cpu"] == "1"  # benchmarks/README.md: ~1 core at 1,000 events/s
    assert resources["requests"]["memory"] == resources["limits"]["memory"]
    assert "cpu" not in resources["limits"]  # throttling would add latency


# ------------------------------------------------------------------------------- topics and ACLs
def rule_channels() -> set[str]:
    return {rule["channel"] for rule in load_rules(ROOT / "rules").describe()}


def declared_topics() -> dict[str, dict[str, Any]]:
    return {t["spec"].get("topicName", t["metadata"]["name"]): t["spec"] for t in of_kind("KafkaTopic")}


def test_topics_are_the_ones_the_code_creates() -> None:
    settings = worker_settings()
    expected = engine_topics(settings, rule_channels())
    declared = declared_topics()
    assert sorted(declared) == sorted(expected)
    for name, spec in expected.items():
        topic = declared[name]
        assert topic["partitions"] == spec.partitions, name
        assert topic["replicas"] == settings.replication_factor, name
        assert {k: str(v) for k, v in topic.get("config", {}).items()} == spec.config, name


def test_topics_belong_to_the_cluster() -> None:
    cluster = one("Kafka")["metadata"]["name"]
    assert {t["metadata"]["labels"]["strimzi.io/cluster"] for t in of_kind("KafkaTopic")} == {cluster}
    assert {p["metadata"]["labels"]["strimzi.io/cluster"] for p in of_kind("KafkaNodePool")} == {cluster}


def allowed(resource_type: str, name: str) -> set[str]:
    """The operations the engine's KafkaUser may do on a resource (literal and prefix ACLs)."""
    operations: set[str] = set()
    for acl in one("KafkaUser")["spec"]["authorization"]["acls"]:
        resource = acl["resource"]
        if resource["type"] != resource_type or acl.get("type", "allow") != "allow":
            continue
        literal = resource.get("patternType", "literal") == "literal"
        if (name == resource["name"]) if literal else name.startswith(resource["name"]):
            operations |= set(acl["operations"])
    return operations


def test_the_engines_user_may_do_what_the_engine_does_and_no_more() -> None:
    settings = worker_settings()
    topics = engine_topics(settings, rule_channels())
    internal = {name for name in topics if name.startswith(f"{settings.app_id}-")}
    assert settings.person_events_topic in internal
    for name in settings.input_topics:
        assert allowed("topic", name) == {"Read", "Describe"}, name  # producers have their own users
    for name in set(settings.output_topics) - internal:
        assert {"Write", "Describe"} <= allowed("topic", name) <= {"Write", "Describe", "Create"}, name
    for name in internal:
        assert allowed("topic", name) == {"Read", "Write", "Describe", "Create"}, name
    assert allowed("topic", settings.topic_rules) == {"Read", "Write", "Describe"}
    assert allowed("topic", "actions.some-new-channel") >= {"Create", "Write"}
    assert "Read" in allowed("group", settings.app_id)
    assert allowed("topic", "some-other-teams-topic") == set()
    assert allowed("group", "some-other-group") == set()


# ------------------------------------------------------------------------------- monitoring
def test_prometheus_rule_carries_the_shipped_alerts() -> None:
    shipped = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    assert one("PrometheusRule")["spec"]["groups"] == shipped["groups"], (
        "deploy/kubernetes/50-monitoring.yaml: copy the groups of deploy/prometheus/alerts.yml")


def test_pod_monitor_scrapes_the_workers_as_job_orchestrator() -> None:
    monitor = one("PodMonitor")
    labels = one("StatefulSet")["spec"]["template"]["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] in {p["name"] for p in worker_container()["ports"]}
    assert endpoint["path"] == "/metrics"
    # The alerts and the dashboard select job="orchestrator".
    assert {"targetLabel": "job", "replacement": "orchestrator"} in endpoint["relabelings"]
