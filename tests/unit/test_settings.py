"""Settings and the rule directory: a bad value stops the command and says which, where and why."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from orchestrator.core.events import Source
from orchestrator.runtime.settings import (
    ENV_PREFIX,
    MAX_RECORD_BYTES_LIMIT,
    PRODUCER_MAX_MESSAGE_BYTES,
    PROJECT_ROOT,
    Settings,
    SettingsError,
    load_intent_specs,
    load_rules,
    load_settings,
)

from .factories import SELF_SERVICE_DOC


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from an environment without any ORCHESTRATOR_ variable."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)


# ---------------------------------------------------------------- load_settings

def test_defaults_load_without_flags_or_environment() -> None:
    settings = load_settings()
    assert settings.web_port == 6066
    assert settings.bootstrap_servers == "127.0.0.1:9092"
    assert settings.channels == ("web", "contact-centre")
    assert settings.rules_dir == PROJECT_ROOT / "rules"


def test_environment_variable_sets_a_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRATOR_WEB_PORT", "7001")
    monkeypatch.setenv("ORCHESTRATOR_CHANNELS", "web")
    settings = load_settings()
    assert settings.web_port == 7001
    assert settings.channels == ("web",)


def test_flag_wins_over_the_environment_and_none_means_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRATOR_WEB_PORT", "7001")
    assert load_settings(web_port=7002).web_port == 7002
    assert load_settings(web_port=None).web_port == 7001


def test_invalid_environment_value_names_the_variable_and_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRATOR_WEB_PORT", "abc")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert "ORCHESTRATOR_WEB_PORT" in message
    assert "'abc'" in message
    assert "valid integer" in message


def test_invalid_flag_value_is_named_as_the_flag() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(web_port=0)
    message = str(caught.value)
    assert "--web-port=0" in message
    assert "ORCHESTRATOR_WEB_PORT" not in message


def test_every_invalid_setting_is_listed_at_once() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(web_port=70000, partitions=0, log_level="loud")
    message = str(caught.value)
    assert message.startswith("invalid configuration:")
    for flag in ("--web-port=70000", "--partitions=0", "--log-level='loud'"):
        assert flag in message


def test_unknown_orchestrator_variable_is_rejected_with_a_did_you_mean_hint(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRATOR_WEB_PROT", "7001")
    hint = r"unknown setting ORCHESTRATOR_WEB_PROT \(did you mean ORCHESTRATOR_WEB_PORT\?\)"
    with pytest.raises(SettingsError, match=hint):
        load_settings()


def test_unknown_variable_unlike_any_setting_is_rejected_without_a_hint(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRATOR_ZZZZZZZZZZZZZZ", "1")
    with pytest.raises(SettingsError, match=r"^unknown setting ORCHESTRATOR_ZZZZZZZZZZZZZZ$"):
        load_settings()


@pytest.mark.parametrize("name", ["click stream", "", "a/b", "x" * 250, "clicks!"])
def test_illegal_topic_name_is_rejected(name: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(topic_clickstream=name)
    assert "--topic-clickstream" in str(caught.value)
    assert "Kafka topic name" in str(caught.value)


def test_illegal_topic_name_from_the_environment_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRATOR_TOPIC_DEAD_LETTER", "dead letter")
    with pytest.raises(SettingsError, match=r"ORCHESTRATOR_TOPIC_DEAD_LETTER='dead letter'"):
        load_settings()


@pytest.mark.parametrize("channels", [(), ("web", "bad channel")])
def test_illegal_channel_list_is_rejected(channels: tuple[str, ...]) -> None:
    with pytest.raises(SettingsError, match="--channels"):
        load_settings(channels=channels)


def test_channels_in_the_environment_are_a_comma_separated_list(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRATOR_CHANNELS", "web, contact-centre,email")
    assert load_settings().channels == ("web", "contact-centre", "email")


def test_an_illegal_channel_in_the_environment_is_an_error_naming_the_variable_and_value(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRATOR_CHANNELS", "web,call centre")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "ORCHESTRATOR_CHANNELS='web,call centre'" in str(caught.value)


def test_a_misspelt_variable_in_lower_case_is_still_reported(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("orchestrator_webport", "7000")
    with pytest.raises(SettingsError, match="did you mean ORCHESTRATOR_WEB_PORT"):
        load_settings()


def test_settings_error_is_a_value_error() -> None:
    assert issubclass(SettingsError, ValueError)


def test_derived_values_follow_the_settings() -> None:
    settings = load_settings(max_record_bytes=1024, max_future_skew_s=5, web_port=7010,
                             channels=("web", "email"))
    assert settings.decode_limits.max_record_bytes == 1024
    assert settings.decode_limits.max_future_ms == 5000
    assert settings.worker_data_dir == PROJECT_ROOT / "var" / "worker-7010"
    assert settings.action_topic("web") == "actions.web"
    assert settings.output_topics == ["dead-letter", "customer-context", "decisions-held-out",
                                      "orchestrator-person-events", "actions.web", "actions.email"]
    assert settings.input_topics == {"clickstream": Source.CLICKSTREAM,
                                     "contact-centre": Source.CONTACT_CENTRE,
                                     "action-feedback": Source.ACTION_FEEDBACK}


def test_max_record_bytes_up_to_what_can_be_forwarded_is_accepted() -> None:
    assert load_settings(max_record_bytes=MAX_RECORD_BYTES_LIMIT).max_record_bytes == MAX_RECORD_BYTES_LIMIT
    # Forwarded inside an envelope that JSON escaping can double, with room for a carried profile.
    assert 2 * MAX_RECORD_BYTES_LIMIT < PRODUCER_MAX_MESSAGE_BYTES


@pytest.mark.parametrize("value", [MAX_RECORD_BYTES_LIMIT + 1, 1_048_576, 10_485_760])
def test_max_record_bytes_over_what_the_producer_can_send_stops_the_start_saying_what_to_set(
        monkeypatch: pytest.MonkeyPatch, value: int) -> None:
    monkeypatch.setenv("ORCHESTRATOR_MAX_RECORD_BYTES", str(value))
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert f"ORCHESTRATOR_MAX_RECORD_BYTES='{value}'" in message
    assert f"set it to {MAX_RECORD_BYTES_LIMIT} or less" in message
    assert f"{PRODUCER_MAX_MESSAGE_BYTES} bytes a message" in message


def test_explicit_data_dir_is_used_as_given(tmp_path: Path) -> None:
    assert load_settings(data_dir=tmp_path).worker_data_dir == tmp_path


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.web_port = 1  # type: ignore[misc]
    assert isinstance(settings, Settings)


# ---------------------------------------------------------------- load_rules

def test_shipped_rule_directory_loads() -> None:
    rule_set = load_rules(load_settings().rules_dir)
    assert rule_set.version == "2026-11-24.2"
    ids = {rule.id for rule in rule_set.rules}
    assert {"self-service-login-prompt", "self-service-direct-link"} <= ids
    assert set(rule_set.documents) == {"rules/web.yaml", "rules/contact_centre.yaml"}


def test_rules_dir_is_a_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ORCHESTRATOR_RULES_DIR", str(tmp_path))
    assert load_settings().rules_dir == tmp_path


def test_rule_file_with_a_bad_field_names_the_file_the_rule_and_the_field(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    doc = yaml.safe_load(yaml.safe_dump(SELF_SERVICE_DOC))
    doc["rules"][0]["caps"]["cooldown_s"] = -1
    (rules / "web.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(SettingsError) as caught:
        load_rules(rules)
    assert str(caught.value) == ("rules/web.yaml: rule 'self-service-login-prompt': caps.cooldown_s: "
                                 "must be at least 0, got -1")


def test_rule_file_that_is_not_yaml_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("rules: [unclosed\n")
    with pytest.raises(SettingsError) as caught:
        load_rules(tmp_path)
    assert str(caught.value).startswith(f"{tmp_path.name}/broken.yaml: not valid YAML")


def test_missing_rule_directory_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nowhere"
    with pytest.raises(SettingsError) as caught:
        load_rules(path)
    assert str(caught.value) == f"{path}: not a directory of rule files"


def test_rule_directory_without_rule_files_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not rules")
    with pytest.raises(SettingsError, match=r"no \*\.yaml rule files"):
        load_rules(tmp_path)


def test_valid_rule_directory_loads_as_written(tmp_path: Path) -> None:
    (tmp_path / "web.yaml").write_text(yaml.safe_dump(SELF_SERVICE_DOC))
    rule_set = load_rules(tmp_path)
    assert rule_set.version == "test-1"
    assert [r.expires_after_ms for r in rule_set.rules] == [600_000, 300_000]


def test_several_bootstrap_servers_are_accepted_and_normalised() -> None:
    settings = load_settings(bootstrap_servers="kafka-1:9092, kafka-2:9092,[::1]:9093")
    assert settings.bootstrap_server_list == ["kafka-1:9092", "kafka-2:9092", "[::1]:9093"]


@pytest.mark.parametrize("servers", ["kafka-1", "kafka-1:9092,", "kafka-1:port", ""])
def test_bootstrap_servers_without_a_port_are_rejected_with_an_example(servers: str) -> None:
    with pytest.raises(SettingsError, match=r"expected host:port\[,host:port...\]"):
        load_settings(bootstrap_servers=servers)


# ---------------------------------------------------------------- intents and scoring

def test_without_an_intents_file_the_four_built_in_intents_are_scored() -> None:
    assert [s.name for s in load_intent_specs(None)] == [
        "login_propensity", "purchase_intent", "contact_need", "churn_risk"]


def test_an_intents_file_replaces_the_built_in_intents(tmp_path: Path) -> None:
    path = tmp_path / "intents.yaml"
    path.write_text("- name: newsletter_signup\n  outcome_event_types: [signup]\n  horizon_s: 3600\n"
                    "  min_labels: 50\n")
    [spec] = load_intent_specs(path)
    assert (spec.name, spec.outcome_event_types, spec.horizon_s, spec.min_labels) == (
        "newsletter_signup", ("signup",), 3600, 50)


@pytest.mark.parametrize(("text", "message"), [
    ("- name: x\n  outcome_event_types: [login]\n  horizon_s: 0\n", r"intent #0 'x': horizon_s"),
    ("- name: x\n  outcome_event_types: [teleport]\n  horizon_s: 60\n", r"unknown event type"),
    ("- name: x\n  outcome_event_types: [login]\n  horizon_s: 60\n  colour: red\n", r"colour: unknown field"),
    ("name: x\n", r"must be a YAML list of intents"),
    ("- [unclosed\n", r"cannot read the intents file"),
])
def test_a_bad_intents_file_is_refused_naming_the_file_the_entry_and_the_field(
        tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "intents.yaml"
    path.write_text(text)
    with pytest.raises(SettingsError, match=message) as raised:
        load_intent_specs(path)
    assert str(path) in str(raised.value)


def test_the_scoring_policy_follows_the_settings() -> None:
    policy = load_settings(model_checkpoint_s=5, label_sweep_tick_s=1, label_sweep_period_s=60,
                           label_idle_after_s=30, label_lateness_s=2).scoring_policy
    assert (policy.checkpoint_s, policy.sweep_tick_s, policy.sweep_period_s, policy.idle_after_s,
            policy.lateness_ms) == (5, 1, 60, 30, 2000)
