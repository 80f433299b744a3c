"""`orchestrator rules validate|publish` on bad rule files: the problems, no traceback, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import cli

from .factories import RULES_DIR

HOSTILE = {
    "aliases.yaml": "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]\n" for n in range(1, 9)) + "rules: []\n",
    "deep.yaml": "rules:\n  - id: deep\n    description: d\n    channel: web\n    action: a\n"
                 "    when: " + "{all: [" * 300 + "{field: event.type, eq: page_view}" + "]}" * 300 + "\n",
    "nul.yaml": "rules:\n  - id: nul\n    description: \"a\x00\"\n",
    "number.yaml": "rules:\n  - id: big\n    priority: " + "9" * 5000 + "\n",
}
EXPECTED = {
    "aliases.yaml": "YAML nodes",
    "deep.yaml": "rule 'deep': when.all[0]",
    "nul.yaml": "rule 'nul': description: not valid YAML: character U+0000",
    "number.yaml": "rule 'big': priority: a number of 5000 characters",
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("ORCHESTRATOR_"):
            monkeypatch.delenv(name)


def hostile_file(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.write_text(HOSTILE[name])
    return path


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_validate_prints_the_problem_without_a_traceback_and_exits_2(tmp_path: Path, name: str) -> None:
    result = CliRunner().invoke(cli, ["rules", "validate", str(hostile_file(tmp_path, name))])
    assert result.exit_code == 2, result.output
    assert EXPECTED[name] in result.stderr
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)  # a clean exit, not an error that escaped


def test_validate_of_a_file_that_is_not_utf8_names_it(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("rules:\n  - id: caf\xe9\n".encode("latin-1"))
    result = CliRunner().invoke(cli, ["rules", "validate", str(path)])
    assert result.exit_code == 2
    assert f"{path}: not UTF-8: byte 0xe9" in result.stderr


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_publish_refuses_before_connecting_to_anything(tmp_path: Path, name: str) -> None:
    hostile_file(tmp_path, name)
    # Nothing listens on port 1: reaching for the broker would fail differently.
    result = CliRunner().invoke(cli, ["rules", "publish", str(tmp_path),
                                      "--bootstrap-servers", "127.0.0.1:1"])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"not published: invalid rule set in {tmp_path}:")
    assert EXPECTED[name] in result.stderr
    assert "Traceback" not in result.output


def test_validate_of_the_shipped_rules_succeeds() -> None:
    result = CliRunner().invoke(cli, ["rules", "validate", str(RULES_DIR)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("valid: version ")
