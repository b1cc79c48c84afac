"""On-demand feature sets (`kind: on_demand`) as the loader reads them: the fraud example's
`transaction_risk`, and `featurestore validate` refusing broken copies of it in one line (exit 2)
that names the file and the field. No service needed: the transformation is called on sample
rows, never on stored data."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.fraud_config import edit, fraud_copy

from airflow_provider_featurestore.core.cli import main as cli_main
from airflow_provider_featurestore.core.config import load_config
from airflow_provider_featurestore.core.errors import BadInput

RISK = os.path.join("featuresets", "transaction_risk.yaml")
TRANSFORM = os.path.join("transforms", "transaction_risk.py")


@pytest.fixture
def fraud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    yield from fraud_copy(tmp_path, monkeypatch)


def test_the_example_declares_an_on_demand_set_apart_from_the_materialized_ones(fraud: Path) -> None:
    config = load_config()
    assert [(s.name, s.version) for s in config.feature_sets] == [("accounts", 1), ("transactions", 1)]
    [risk] = config.on_demand
    assert (risk.name, risk.version, risk.mode) == ("transaction_risk", 1, "numpy")
    assert risk.inputs.features == ("transactions:transaction_amount_7d_avg",)
    assert risk.inputs.request == {"amount": "double"}
    assert risk.feature_names == ("amount_vs_7d_avg",)
    assert config.get_on_demand("transaction_risk") is risk
    assert config.get_on_demand("transactions") is None
    with pytest.raises(
        BadInput, match="^feature set 'transaction_risk' is on-demand: computed at request time"
    ):
        config.get("transaction_risk")


@pytest.mark.parametrize(
    "command",
    [
        ["backfill", "transaction_risk", "--start", "2024-01-01", "--end", "2024-01-02"],
        ["intervals", "transaction_risk"],
        ["jobs", "transaction_risk"],
        ["status", "transaction_risk"],
        ["get-online", "transaction_risk", "--key", "accountID=A1"],
        ["check", "transaction_risk"],
        ["purge", "transaction_risk", "--key", "accountID=A1"],
        ["disable-online", "transaction_risk"],
    ],
    ids=lambda command: command[0],
)
def test_commands_on_stored_data_refuse_an_on_demand_set(
    fraud: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(command) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert line.startswith(f"featurestore {command[0]}: "), line
    assert "feature set 'transaction_risk' is on-demand: computed at request time" in line, line
    assert not (fraud / "data").exists()  # nothing written, not even the interval table


BROKEN = [
    (
        "unknown feature set",
        [(RISK, "transactions:transaction_amount_7d_avg", "payments:amount")],
        "inputs.features[0]: 'payments:amount': no materialized feature set 'payments' (known: accounts, transactions)",
    ),
    (
        "unknown feature",
        [(RISK, "transactions:transaction_amount_7d_avg", "transactions:amount_7d_avg")],
        "inputs.features[0]: 'transactions:amount_7d_avg': transactions v1 has no feature 'amount_7d_avg' "
        "(features: transaction_amount_7d_sum, transaction_7d_count, transaction_amount_7d_avg)",
    ),
    (
        "unknown pinned version",
        [(RISK, "transactions:transaction_amount_7d_avg", "transactions:v2:transaction_amount_7d_avg")],
        "inputs.features[0]: 'transactions:v2:transaction_amount_7d_avg': no materialized feature set "
        "'transactions' version 2",
    ),
    (
        "not a ref",
        [(RISK, "transactions:transaction_amount_7d_avg", "transaction_amount_7d_avg")],
        "inputs.features[0]: 'transaction_amount_7d_avg' is not a feature ref",
    ),
    (
        "request field type",
        [(RISK, "amount: double", "amount: money")],
        "inputs.request.amount: 'money' is not one of string, int",
    ),
    (
        "module not importable",
        [(RISK, "transforms.transaction_risk:", "transforms.risk:")],
        "transformation: cannot import module 'transforms.risk': No module named 'transforms.risk'",
    ),
    (
        "no such function",
        [(RISK, ":amount_vs_average", ":ratio")],
        "transformation: module 'transforms.transaction_risk' has no function 'ratio'",
    ),
    (
        "output misses a declared feature",
        [
            (
                RISK,
                "  - {name: amount_vs_7d_avg, type: double}",
                "  - {name: amount_vs_7d_avg, type: double}\n  - {name: amount_zscore, type: double}",
            )
        ],
        "transformation: transforms.transaction_risk:amount_vs_average on 3 sample rows: its output misses "
        "declared feature(s) amount_zscore (it returned columns: amount_vs_7d_avg)",
    ),
    (
        "function reads an undeclared request field",
        [(RISK, "amount: double", "value: double")],
        "transformation: transforms.transaction_risk:amount_vs_average on 3 sample rows: raised KeyError: 'amount'",
    ),
    (
        "output of the wrong type",
        [(TRANSFORM, '{"amount_vs_7d_avg": ratio}', '{"amount_vs_7d_avg": ratio.astype(str)}')],
        "transformation: transforms.transaction_risk:amount_vs_average on 3 sample rows: feature "
        "amount_vs_7d_avg is not double",
    ),
    (
        "output clashes with a request field",
        [(RISK, "{name: amount_vs_7d_avg, type: double}", "{name: amount, type: double}")],
        "features[0].name: 'amount' is already used by inputs.request.amount",
    ),
    (
        "name of a materialized set",
        [(RISK, "name: transaction_risk\nversion: 1", "name: transactions\nversion: 2")],
        "name: 'transactions' is also a materialized feature set's name",
    ),
    (
        "no inputs",
        [(RISK, "    - transactions:transaction_amount_7d_avg\n", "    []\n")],
        "inputs.features: ",
    ),
    (
        "no source allowed",
        [(RISK, "version: 1\n", "version: 1\nsource: {format: parquet, path: x}\n")],
        "source: unknown field",
    ),
    (
        "unknown kind",
        [(RISK, "kind: on_demand", "kind: streaming")],
        "kind: 'streaming' is not one of materialized, on_demand",
    ),
    ("unknown mode", [(RISK, "mode: numpy", "mode: arrow")], "mode: 'arrow' is not one of pandas, numpy"),
]


@pytest.mark.parametrize(("edits", "message"), [(e, m) for _, e, m in BROKEN], ids=[n for n, _, _ in BROKEN])
def test_validate_refuses_a_broken_on_demand_set_in_one_line(
    fraud: Path, edits: list[tuple[str, str, str]], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for path, old, new in edits:
        edit(path, old, new)
    assert cli_main(["validate"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert line.startswith(f"featurestore validate: {RISK}: {message}"), line


def test_a_pandas_transformation_gets_a_dataframe(fraud: Path) -> None:
    edit(RISK, "mode: numpy", "mode: pandas")
    edit(
        TRANSFORM,
        "    amount = columns",
        '    assert type(columns).__name__ == "DataFrame", type(columns)\n    amount = columns',
    )
    assert len(load_config().on_demand) == 1


def test_a_key_scoped_to_an_on_demand_set_must_read_its_inputs(
    fraud: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """amount / average reveals the average: a key that may read transaction_risk must be
    allowed transactions too."""
    digest = "ab" * 32
    Path("keys.txt").write_text(f"sha256:{digest} accounts,transaction_risk\n")
    with open("featurestore.yaml", "a") as config:
        config.write("feature_server:\n  api_key_file: keys.txt\n")
    assert cli_main(["validate"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.endswith(
        "keys.txt:1: transaction_risk is computed from transactions, which this key may not read; "
        "add transactions to its scope or leave transaction_risk out"
    ), line
    Path("keys.txt").write_text(f"sha256:{digest} transactions,transaction_risk\n")
    assert cli_main(["validate"]) == 0
    assert "feature server: 1 API key(s)" in capsys.readouterr().out
