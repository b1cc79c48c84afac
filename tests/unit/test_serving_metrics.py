"""The pieces of `GET /metrics` that need no server: the `@metrics` key scope (key file, CLI),
the kind of error an HTTP status names, and which client addresses are loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_featurestore.core import cli
from airflow_provider_featurestore.core.errors import BadInput
from airflow_provider_featurestore.core.serving import api_keys
from airflow_provider_featurestore.core.serving.metrics import error_kind, is_loopback_address

pytestmark = pytest.mark.unit

KEYS = [
    "fsk_metrics-only-key-0000001",
    "fsk_accounts-and-metrics-02",
    "fsk_accounts-only-key-00003",
    "fsk_full-key-000000000004",
]


def test_the_metrics_scope_lets_a_key_scrape_and_read_nothing_else(tmp_path: Path) -> None:
    lines = [
        api_keys.hash_line(KEYS[0], metrics=True),
        api_keys.hash_line(KEYS[1], ["accounts"], metrics=True),
        api_keys.hash_line(KEYS[2], ["accounts"]),
        api_keys.hash_line(KEYS[3]),
    ]
    assert lines[0].endswith(" @metrics") and lines[1].endswith(" accounts,@metrics")
    path = tmp_path / "keys.txt"
    path.write_text("\n".join(lines) + "\n")
    keys = api_keys.load([], str(path), {"accounts", "transactions"})
    found = [keys.find(key) for key in KEYS]
    assert all(key is not None for key in found)
    metrics_only, both, accounts, full = found  # type: ignore[misc]
    assert metrics_only.may_scrape and not metrics_only.may_read("accounts")
    assert both.may_scrape and both.may_read("accounts") and not both.may_read("transactions")
    assert not accounts.may_scrape and accounts.may_read("accounts")
    assert full.may_scrape and full.may_read("transactions")  # a key that reads everything


def test_a_feature_set_named_metrics_is_not_the_scope(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    path.write_text(api_keys.hash_line(KEYS[2], ["metrics"]) + "\n")
    key = api_keys.load([], str(path), {"metrics"}).find(KEYS[2])
    assert key is not None and key.may_read("metrics") and not key.may_scrape


def test_an_unknown_scope_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    path.write_text(api_keys.hash_line(KEYS[2], ["@admin"]) + "\n")
    with pytest.raises(BadInput) as refused:
        api_keys.load([], str(path), {"accounts"})
    assert str(refused.value) == f"{path}:1: '@admin' is not a scope; the one scope is @metrics"


def test_api_key_metrics_prints_a_line_of_the_scope(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert cli.main(["api-key", "--metrics"]) == 0
    printed = capsys.readouterr()
    key = printed.out.strip()
    line = printed.err.split("  # ")[0]
    assert line == api_keys.hash_line(key, metrics=True)
    path = tmp_path / "keys.txt"
    path.write_text(printed.err)
    found = api_keys.load([], str(path), set()).find(key)
    assert found is not None and found.may_scrape and found.feature_sets == frozenset()


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (200, None),
        (307, None),
        (400, "bad_request"),
        (401, "unauthorized"),
        (403, "forbidden"),
        (404, "not_found"),
        (408, "timeout"),
        (409, "disabled"),
        (413, "too_large"),
        (418, "client_error"),
        (500, "internal"),
        (501, "not_implemented"),
        (503, "unavailable"),
        (599, "server_error"),
    ],
)
def test_the_kind_of_an_error_is_its_status(status: int, kind: str | None) -> None:
    assert error_kind(status) == kind


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("192.0.2.2", False),
        ("::ffff:192.0.2.2", False),
        ("fe80::1%eth0", False),
        ("localhost", False),  # a name is never trusted
        ("", False),
    ],
)
def test_loopback_addresses(address: str, loopback: bool) -> None:
    assert is_loopback_address(address) is loopback
