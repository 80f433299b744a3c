"""The local broker's storage is formatted with arguments the tool parses for any cluster id."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.localkafka.broker import format_arguments

pytestmark = pytest.mark.unit


def test_a_cluster_id_that_starts_with_a_dash_is_passed_joined_to_its_option() -> None:
    args = format_arguments("-L48HjaZRVWbsBxp4vfboQ", Path("/k/server.properties"))
    assert "--cluster-id=-L48HjaZRVWbsBxp4vfboQ" in args
    assert "-L48HjaZRVWbsBxp4vfboQ" not in args  # never a bare word the tool reads as an option


def test_scram_credentials_are_added_one_option_each() -> None:
    args = format_arguments("abc", Path("/k/p"), ["SCRAM-SHA-512=[name=a,password=b]"])
    assert args[:2] == ["format", "--cluster-id=abc"]
    assert args[-2:] == ["--add-scram", "SCRAM-SHA-512=[name=a,password=b]"]
