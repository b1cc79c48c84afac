"""The config loader on the fraud example and on malformed copies of it (no service needed).

Every malformed variant must fail with one `ConfigError` line that starts with the file
(relative to the working directory) and the field at fault: that line is what
`featurestore validate` prints before exiting 2.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support.fraud import _generator
from support.fraud_config import edit, fraud_copy

from airflow_provider_featurestore.core.cli import main as cli_main
from airflow_provider_featurestore.core.config import (
    COLUMN_TYPES,
    STATUSES,
    STORES,
    Column,
    FeatureStoreConfig,
    load_config,
    resolve_config_path,
)
from airflow_provider_featurestore.core.errors import BadInput, ConfigError

CONFIG = "featurestore.yaml"
ACCOUNTS = os.path.join("featuresets", "accounts.yaml")
TRANSACTIONS = os.path.join("featuresets", "transactions.yaml")


@pytest.fixture
def fraud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    yield from fraud_copy(tmp_path, monkeypatch)


def write(path: str, text: str) -> None:
    Path(path).write_text(text)


# -- the example -----------------------------------------------------------------------


def test_example_loads(fraud: Path) -> None:
    config = load_config()
    assert isinstance(config, FeatureStoreConfig)
    assert config.project == "fraud"
    assert config.config_path == str(fraud / CONFIG)
    assert config.config_dir == str(fraud)
    assert config.feature_sets_dir == str(fraud / "featuresets")
    assert config.offline_path == str(fraud / "data" / "offline")
    assert config.redis_url == "redis://localhost:6379/0"
    assert config.redis_conn_id is None
    assert config.interval_table_url == f"sqlite:///{fraud}/data/intervals.db"
    assert config.engine.type == "embedded"
    assert config.engine.conf == {"spark.sql.shuffle.partitions": "4"}
    assert [(s.name, s.version) for s in config.feature_sets] == [("accounts", 1), ("transactions", 1)]

    tx = config.get("transactions")
    assert tx.index_columns == (Column("accountID", "string"),)
    assert tx.timestamp_column == "timestamp"
    assert tx.source.format == "parquet"
    assert tx.source.path == str(fraud / "data" / "source" / "transactions")
    assert tx.source.timestamp_column == "timestamp"
    assert tx.source.source_delay == 0
    assert tx.source_lookback == 7 * 86400
    assert tx.transformation == "transforms.transactions:transform"
    assert tx.feature_names[:2] == ("transaction_amount_7d_sum", "transaction_7d_count")
    assert {c.type for c in tx.features} <= set(COLUMN_TYPES)
    mat = tx.materialization
    assert (mat.offline, mat.online, mat.schedule) == (True, True, "@daily")
    assert mat.start == 1704067200  # 2024-01-01T00:00:00Z
    assert mat.online_ttl == 30 * 86400
    assert mat.max_job_window == 86400
    assert mat.max_batch_window == 30 * 86400
    assert tx.enabled_stores() == STORES
    assert tx.spec_path == str(fraud / TRANSACTIONS)
    assert callable(tx.load_transformation())

    accounts = config.get("accounts", 1)
    assert accounts.transformation is None and accounts.load_transformation() is None
    assert accounts.feature_names == (
        "account_age_days",
        "account_country",
        "num_payment_rejects_1d_per_user",
        "credit_limit",
        "is_premium",
    )
    assert config.offline_table_path(accounts) == f"{fraud}/data/offline/accounts/v1"
    assert config.online_key_prefix(accounts) == "fraud:accounts:v1:"
    assert STATUSES == ("None", "Pending", "Complete", "Incomplete")


def test_specs_are_hashable(fraud: Path) -> None:
    config = load_config()
    assert len({spec for spec in config.feature_sets}) == 2


def test_env_override(fraud: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEATURESTORE_REDIS_URL", "redis://cache.internal:6380/2")
    assert load_config().redis_url == "redis://cache.internal:6380/2"
    monkeypatch.setenv("FEATURESTORE_REDIS_URL", "")  # empty counts as unset for :-
    assert load_config().redis_url == "redis://localhost:6379/0"


def test_substitution_inside_strings(fraud: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    edit(CONFIG, "path: data/offline", "path: ${FS_TEST_ROOT}/off$$line/${FS_TEST_SUB:-v}")
    monkeypatch.setenv("FS_TEST_ROOT", "s3a://bucket/fs")
    monkeypatch.delenv("FS_TEST_SUB", raising=False)
    assert load_config().offline_path == "s3a://bucket/fs/off$line/v"


def test_substituted_values_are_typed(fraud: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    edit(ACCOUNTS, "version: 1", "version: ${FS_TEST_VERSION}")
    edit(ACCOUNTS, "online: true", "online: ${FS_TEST_ONLINE:-false}")
    monkeypatch.setenv("FS_TEST_VERSION", "3")
    spec = load_config().get("accounts")
    assert spec.version == 3
    assert spec.enabled_stores() == ("offline",)


def test_uri_and_url_rules(fraud: Path, tmp_path: Path) -> None:
    edit(CONFIG, "path: data/offline", f"path: file://{tmp_path}/offline")
    edit(CONFIG, "sqlite:///data/intervals.db", f"sqlite:///{tmp_path}/i.db")
    edit(TRANSACTIONS, "path: data/source/transactions", "path: s3a://bucket/transactions")
    config = load_config()
    assert config.offline_path == f"{tmp_path}/offline"
    assert config.interval_table_url == f"sqlite:///{tmp_path}/i.db"
    assert config.get("transactions").source.path == "s3a://bucket/transactions"
    assert config.offline_table_path(config.get("transactions")) == f"{tmp_path}/offline/transactions/v1"

    edit(CONFIG, f"sqlite:///{tmp_path}/i.db", "postgresql+psycopg2://fs:secret@db:5432/features")
    edit(CONFIG, f"file://{tmp_path}/offline", "abfss://lake@acct.dfs.core.windows.net/fs/")
    config = load_config()
    assert config.interval_table_url == "postgresql+psycopg2://fs:secret@db:5432/features"
    assert config.offline_table_path(config.get("accounts")) == (
        "abfss://lake@acct.dfs.core.windows.net/fs/accounts/v1"
    )


def test_defaults(fraud: Path) -> None:
    write(
        CONFIG,
        "project: minimal\noffline_store: {path: offline_dir}\nonline_store: {conn_id: redis_default}\n",
    )
    edit(TRANSACTIONS, "  offline: true\n", "")
    edit(TRANSACTIONS, "  max_job_window: 1d\n", "")
    edit(TRANSACTIONS, "  max_batch_window: 30d", "  # max_batch_window")
    edit(TRANSACTIONS, "  online_ttl: 30d\n", "")
    config = load_config()
    assert config.feature_sets_dir == str(fraud / "featuresets")
    assert config.interval_table_url == f"sqlite:///{fraud}/data/intervals.db"
    assert config.engine.type == "embedded" and config.engine.conf == {}
    assert (config.redis_url, config.redis_conn_id) == (None, "redis_default")
    mat = config.get("transactions").materialization
    assert (mat.offline, mat.max_job_window, mat.online_ttl) == (True, 86400, None)
    assert mat.max_batch_window == 30 * 86400


def test_get_errors(fraud: Path) -> None:
    shutil.copy(ACCOUNTS, "featuresets/accounts_v2.yaml")
    edit("featuresets/accounts_v2.yaml", "version: 1", "version: 2")
    config = load_config()
    assert config.get("accounts").version == 2
    assert config.get("accounts", 1).version == 1
    with pytest.raises(BadInput, match=r"^feature set 'nope' not found; known: accounts, transactions$"):
        config.get("nope")
    with pytest.raises(BadInput, match=r"^feature set 'accounts' has no version 3; versions: 1, 2$"):
        config.get("accounts", 3)


def test_resolve_config_path(fraud: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_config_path(None) == str(fraud / CONFIG)
    assert resolve_config_path(str(fraud)) == str(fraud / CONFIG)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BadInput) as info:
        resolve_config_path(None)
    assert (
        str(info.value) == "featurestore.yaml: file not found; pass --config PATH or set FEATURESTORE_CONFIG"
    )
    monkeypatch.setenv("FEATURESTORE_CONFIG", str(fraud / CONFIG))
    assert resolve_config_path(None) == str(fraud / CONFIG)
    assert load_config().project == "fraud"
    with pytest.raises(BadInput, match=r"^nowhere\.yaml: file not found$"):
        resolve_config_path("nowhere.yaml")


def test_error_outside_cwd_shows_absolute_path(
    fraud: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    edit(ACCOUNTS, "version: 1", "version: 0")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with pytest.raises(ConfigError) as info:
        load_config(str(fraud / CONFIG))
    assert str(info.value).startswith(f"{fraud / ACCOUNTS}: version: ")


def test_skip_transformation_check(fraud: Path) -> None:
    edit(TRANSACTIONS, "transforms.transactions:transform", "transforms.missing:transform")
    spec = load_config(check_transformations=False).get("transactions")
    with pytest.raises(ConfigError, match=r"^featuresets/transactions\.yaml: transformation: cannot import"):
        spec.load_transformation()


def test_config_module_imports_no_airflow_or_spark() -> None:
    code = (
        "import sys, airflow_provider_featurestore.core.config\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('airflow', 'pyspark')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- malformed variants ----------------------------------------------------------------


def _remove_online_store() -> None:
    edit(CONFIG, "online_store:\n  redis_url: ${FEATURESTORE_REDIS_URL:-redis://localhost:6379/0}\n", "")


def _copy_accounts() -> None:
    shutil.copy(ACCOUNTS, "featuresets/zz_accounts_copy.yaml")


def _broken_module() -> None:
    write("transforms/broken.py", "raise RuntimeError('boom')\n")
    edit(TRANSACTIONS, "transforms.transactions:transform", "transforms.broken:transform")


def _not_callable() -> None:
    with open("transforms/transactions.py", "a") as handle:
        handle.write("\nNOT_A_FUNCTION = 3\n")
    edit(TRANSACTIONS, "transforms.transactions:transform", "transforms.transactions:NOT_A_FUNCTION")


def _no_features() -> None:
    text = Path(TRANSACTIONS).read_text()
    start, end = text.index("features:\n"), text.index("materialization:")
    write(TRANSACTIONS, text[:start] + "features: []\n" + text[end:])


# (id, edit, file, field or None, text the message must contain)
def _append_config(text: str) -> None:
    write(CONFIG, Path(CONFIG).read_text() + text)


MALFORMED: list[tuple[str, Callable[[], None], str, str | None, str]] = [
    (
        "bad_column_type",
        lambda: edit(TRANSACTIONS, "transaction_7d_count, type: long", "transaction_7d_count, type: dbl"),
        TRANSACTIONS,
        "features[1].type",
        "'dbl' is not one of string, int, long, float, double, boolean, timestamp, date",
    ),
    (
        "missing_name",
        lambda: edit(ACCOUNTS, "name: accounts\n", ""),
        ACCOUNTS,
        "name",
        "required field is missing",
    ),
    ("bad_name", lambda: edit(ACCOUNTS, "name: accounts", "name: Accounts"), ACCOUNTS, "name", "'Accounts'"),
    (
        "version_zero",
        lambda: edit(ACCOUNTS, "version: 1", "version: 0"),
        ACCOUNTS,
        "version",
        "positive integer",
    ),
    ("version_text", lambda: edit(ACCOUNTS, "version: 1", "version: one"), ACCOUNTS, "version", "'one'"),
    (
        "unknown_source_format",
        lambda: edit(TRANSACTIONS, "format: parquet", "format: orc"),
        TRANSACTIONS,
        "source.format",
        "'orc' is not one of parquet, delta, csv",
    ),
    (
        "zero_max_batch_window",
        lambda: edit(TRANSACTIONS, "max_batch_window: 30d", "max_batch_window: 0s"),
        TRANSACTIONS,
        "materialization.max_batch_window",
        "longer than 0s",
    ),
    (
        "zero_max_job_window",
        lambda: edit(TRANSACTIONS, "max_job_window: 1d", "max_job_window: 0s"),
        TRANSACTIONS,
        "materialization.max_job_window",
        "longer than 0s",
    ),
    (
        "negative_duration",
        lambda: edit(TRANSACTIONS, "source_lookback: 7d", "source_lookback: -1d"),
        TRANSACTIONS,
        "source_lookback",
        "'-1d' is not a duration",
    ),
    (
        "bad_duration",
        lambda: edit(ACCOUNTS, "online_ttl: 30d", "online_ttl: 7 days"),
        ACCOUNTS,
        "materialization.online_ttl",
        "'7 days' is not a duration",
    ),
    (
        "unitless_duration",
        lambda: edit(ACCOUNTS, "source_delay: 0s", "source_delay: 0"),
        ACCOUNTS,
        "source.source_delay",
        "'0' is not a duration",
    ),
    (
        "unset_env_var",
        lambda: edit(CONFIG, "path: data/offline", "path: ${FS_TEST_SURELY_UNSET}/offline"),
        CONFIG,
        "offline_store.path",
        "environment variable FS_TEST_SURELY_UNSET is not set",
    ),
    (
        "unset_env_var_in_spec",
        lambda: edit(TRANSACTIONS, "format: parquet", "format: ${FS_TEST_SURELY_UNSET}"),
        TRANSACTIONS,
        "source.format",
        "FS_TEST_SURELY_UNSET",
    ),
    (
        "unknown_field",
        lambda: edit(ACCOUNTS, "version: 1\n", "version: 1\ncolour: red\n"),
        ACCOUNTS,
        "colour",
        "unknown field (allowed: name, version, description, index_columns, timestamp_column, source,",
    ),
    (
        "unknown_nested_field",
        lambda: edit(TRANSACTIONS, "  source_delay: 0s\n", "  source_delay: 0s\n  partition_by: day\n"),
        TRANSACTIONS,
        "source.partition_by",
        "unknown field (allowed: format, path, timestamp_column, source_delay, start)",
    ),
    (
        "unknown_config_field",
        lambda: edit(CONFIG, "  type: embedded", "  type: embedded\n  workers: 3"),
        CONFIG,
        "engine.workers",
        "unknown field (allowed: type, conn_id, master, remote, conf)",
    ),
    (
        "duplicate_name_and_version",
        _copy_accounts,
        "featuresets/zz_accounts_copy.yaml",
        "name",
        "feature set 'accounts' version 1 is already defined in featuresets/accounts.yaml",
    ),
    (
        "transformation_module_missing",
        lambda: edit(TRANSACTIONS, "transforms.transactions:transform", "transforms.missing:transform"),
        TRANSACTIONS,
        "transformation",
        "cannot import module 'transforms.missing': No module named 'transforms.missing'",
    ),
    (
        "transformation_module_raises",
        _broken_module,
        TRANSACTIONS,
        "transformation",
        "cannot import module 'transforms.broken': RuntimeError: boom",
    ),
    (
        "transformation_function_missing",
        lambda: edit(TRANSACTIONS, "transforms.transactions:transform", "transforms.transactions:nope"),
        TRANSACTIONS,
        "transformation",
        "module 'transforms.transactions' has no function 'nope'",
    ),
    (
        "transformation_not_callable",
        _not_callable,
        TRANSACTIONS,
        "transformation",
        "is an int, not a function",
    ),
    (
        "transformation_bad_reference",
        lambda: edit(TRANSACTIONS, "transforms.transactions:transform", "transforms/transactions.py"),
        TRANSACTIONS,
        "transformation",
        "module:function",
    ),
    (
        "schedule_without_start",
        lambda: edit(ACCOUNTS, "  start: 2024-01-01\n", ""),
        ACCOUNTS,
        "materialization.start",
        "required when a schedule is set",
    ),
    (
        "start_is_a_number",
        lambda: edit(ACCOUNTS, "start: 2024-01-01", "start: 2024"),
        ACCOUNTS,
        "materialization.start",
        "2024 is not a date",
    ),
    (
        "bad_start",
        lambda: edit(ACCOUNTS, "start: 2024-01-01", "start: soon"),
        ACCOUNTS,
        "materialization.start",
        "'soon' is not a timestamp",
    ),
    (
        "invalid_cron",
        lambda: edit(ACCOUNTS, 'schedule: "@daily"', 'schedule: "61 * * * *"'),
        ACCOUNTS,
        "materialization.schedule",
        "not a cron expression",
    ),
    (
        "six_field_cron",
        lambda: edit(ACCOUNTS, 'schedule: "@daily"', 'schedule: "0 0 * * * *"'),
        ACCOUNTS,
        "materialization.schedule",
        "5 fields",
    ),
    (
        "schedule_once",
        lambda: edit(ACCOUNTS, 'schedule: "@daily"', 'schedule: "@once"'),
        ACCOUNTS,
        "materialization.schedule",
        "'@once' is not a supported preset",
    ),
    (
        "bad_engine_type",
        lambda: edit(CONFIG, "type: embedded", "type: yarn"),
        CONFIG,
        "engine.type",
        "'yarn' is not one of embedded, spark-submit, spark-connect",
    ),
    (
        "spark_connect_without_remote",
        lambda: edit(CONFIG, "type: embedded", "type: spark-connect"),
        CONFIG,
        "engine.remote",
        "required for engine type spark-connect",
    ),
    (
        "spark_submit_without_target",
        lambda: edit(CONFIG, "type: embedded", "type: spark-submit"),
        CONFIG,
        "engine",
        "type spark-submit needs conn_id (an Airflow Spark connection) or master",
    ),
    (
        "both_redis_url_and_conn_id",
        lambda: edit(CONFIG, "online_store:\n", "online_store:\n  conn_id: redis_default\n"),
        CONFIG,
        "online_store",
        "exactly one of redis_url or conn_id",
    ),
    (
        "redis_url_scheme",
        lambda: edit(CONFIG, "${FEATURESTORE_REDIS_URL:-redis://localhost:6379/0}", "http://localhost:6379"),
        CONFIG,
        "online_store.redis_url",
        "not a Redis URL",
    ),
    (
        "online_without_online_store",
        _remove_online_store,
        ACCOUNTS,
        "materialization.online",
        "no online_store",
    ),
    (
        "yaml_syntax_error",
        lambda: edit(
            TRANSACTIONS, "timestamp_column: timestamp\nsource:", "timestamp_column: time: stamp\nsource:"
        ),
        TRANSACTIONS,
        "line 7",
        "invalid YAML",
    ),
    (
        "yaml_duplicate_key",
        lambda: edit(ACCOUNTS, "version: 1\n", "version: 1\nversion: 2\n"),
        ACCOUNTS,
        "line 4",
        "duplicate key 'version'",
    ),
    (
        "feature_named_like_index",
        lambda: edit(TRANSACTIONS, "name: transaction_amount_7d_sum", "name: accountID"),
        TRANSACTIONS,
        "features[0].name",
        "'accountID' is already used by index_columns[0]",
    ),
    (
        "feature_named_like_timestamp",
        lambda: edit(ACCOUNTS, "name: credit_limit", "name: timestamp"),
        ACCOUNTS,
        "features[3].name",
        "already used by timestamp_column",
    ),
    (
        "duplicate_feature_names",
        lambda: edit(ACCOUNTS, "name: credit_limit", "name: account_age_days"),
        ACCOUNTS,
        "features[3].name",
        "already used by features[0]",
    ),
    (
        "timestamp_is_index_column",
        lambda: edit(
            TRANSACTIONS, "timestamp_column: timestamp\nsource", "timestamp_column: accountID\nsource"
        ),
        TRANSACTIONS,
        "timestamp_column",
        "also an index column",
    ),
    (
        "column_name_not_identifier",
        lambda: edit(ACCOUNTS, "{name: accountID", "{name: account-id"),
        ACCOUNTS,
        "index_columns[0].name",
        "'account-id' is not a valid column name",
    ),
    ("no_features", _no_features, TRANSACTIONS, "features", "at least one feature is required"),
    (
        "source_timestamp_differs_without_transformation",
        lambda: edit(
            ACCOUNTS,
            "  timestamp_column: timestamp\n  source_delay",
            "  timestamp_column: ts\n  source_delay",
        ),
        ACCOUNTS,
        "source.timestamp_column",
        "when there is no transformation",
    ),
    (
        "no_store_enabled",
        lambda: (
            edit(ACCOUNTS, "offline: true", "offline: false"),
            edit(ACCOUNTS, "online: true", "online: no"),
        ),
        ACCOUNTS,
        "materialization",
        "enable at least one store",
    ),
    (
        "spark_conf_not_scalar",
        lambda: edit(
            TRANSACTIONS, "max_job_window: 1d\n", "max_job_window: 1d\n  spark_conf: {spark.x: {a: 1}}\n"
        ),
        TRANSACTIONS,
        "materialization.spark_conf.spark.x",
        "expected a string, got a mapping",
    ),
    (
        "missing_feature_sets_folder",
        lambda: shutil.rmtree("featuresets"),
        CONFIG,
        "feature_sets",
        "folder not found: featuresets",
    ),
    (
        "yaml_boolean_for_string",
        lambda: edit(CONFIG, "path: data/offline", "path: off"),
        CONFIG,
        "offline_store.path",
        "expected a string, got False (YAML read it as a bool; put it in quotes)",
    ),
    (
        "bad_project_name",
        lambda: edit(CONFIG, "project: fraud", "project: Fraud-Detection"),
        CONFIG,
        "project",
        "'Fraud-Detection' is not a valid name",
    ),
    (
        "missing_offline_store",
        lambda: edit(CONFIG, "offline_store:\n  path: data/offline", ""),
        CONFIG,
        "offline_store",
        "required field is missing",
    ),
    (
        "bad_interval_table_url",
        lambda: edit(CONFIG, "sqlite:///data/intervals.db", "intervals.db"),
        CONFIG,
        "interval_table.url",
        "not a SQLAlchemy URL",
    ),
    (
        "empty_spec_file",
        lambda: write("featuresets/empty.yaml", ""),
        "featuresets/empty.yaml",
        None,
        "file is empty",
    ),
    (
        "spec_not_a_mapping",
        lambda: write("featuresets/list.yml", "- name: accounts\n"),
        "featuresets/list.yml",
        None,
        "expected a mapping of fields at the top level, got a list",
    ),
    (
        "feature_server_timeout_zero",
        lambda: _append_config("feature_server:\n  header_timeout: 0s\n"),
        CONFIG,
        "feature_server.header_timeout",
        "must be longer than 0s, got '0s'",
    ),
    (
        "feature_server_unknown_field",
        lambda: _append_config("feature_server:\n  api_key: abc\n"),
        CONFIG,
        "feature_server.api_key",
        "unknown field (allowed: api_keys, api_key_file, header_timeout, body_timeout)",
    ),
    (
        "feature_server_keys_not_a_list",
        lambda: _append_config("feature_server:\n  api_keys: {a: b}\n"),
        CONFIG,
        "feature_server.api_keys",
        "expected a list, got a mapping",
    ),
    (
        "config_not_a_mapping",
        lambda: write(CONFIG, "just text\n"),
        CONFIG,
        None,
        "expected a mapping of fields at the top level, got 'just text'",
    ),
]


@pytest.mark.parametrize(
    ("edit_fn", "file", "field", "text"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed(
    fraud: Path,
    edit_fn: Callable[[], None],
    file: str,
    field: str | None,
    text: str,
    capsys: pytest.CaptureFixture,
) -> None:
    edit_fn()
    assert cli_main(["validate"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1, err
    with pytest.raises(ConfigError) as info:
        load_config()
    message = str(info.value)
    assert "\n" not in message
    prefix = f"{file}: {field}: " if field else f"{file}: "
    assert message.startswith(prefix), message
    if field is not None:
        assert not message[len(prefix) :].startswith(tuple("[.")), (
            message
        )  # the whole field, not a prefix of it
    assert text in message, message
    assert (info.value.file, info.value.field) == (file, field)
    assert err == f"featurestore validate: {message}\n"


def test_several_errors_are_counted(fraud: Path) -> None:
    edit(ACCOUNTS, "version: 1", "version: 0")
    edit(ACCOUNTS, "format: parquet", "format: orc")
    with pytest.raises(ConfigError, match=r"^featuresets/accounts\.yaml: version: .* \(and 1 more error\)$"):
        load_config()


# -- generate_data.py ------------------------------------------------------------------


def test_generate_data_is_deterministic(tmp_path: Path) -> None:
    generate = _generator().generate
    kwargs = {"accounts": 20, "transactions_per_day": 50, "start": "2023-12-30", "days": 3}
    counts = generate(str(tmp_path / "a"), **kwargs)
    assert counts == {"transactions": 150, "accounts": 60}
    assert generate(str(tmp_path / "b"), **kwargs) == counts
    for table in ("transactions", "accounts"):
        first = pq.read_table(tmp_path / "a" / "source" / table)
        second = pq.read_table(tmp_path / "b" / "source" / table)
        assert first.num_rows == counts[table]
        assert first.equals(second)
        assert first.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")

    tx = pq.read_table(tmp_path / "a" / "source" / "transactions")
    micros = tx.column("timestamp").cast(pa.int64()).to_pylist()
    assert any(value % 1_000_000 for value in micros)  # sub-second precision is really there
    assert min(micros) >= 1703894400 * 1_000_000  # 2023-12-30
    assert max(micros) < 1704153600 * 1_000_000  # 2024-01-02
    accounts = pq.read_table(tmp_path / "a" / "source" / "accounts")
    assert all(
        value % 86_400_000_000 == 0 for value in accounts.column("timestamp").cast(pa.int64()).to_pylist()
    )
    assert accounts.schema.field("account_age_days").type == pa.int32()

    different = generate(str(tmp_path / "c"), seed=7, **kwargs)
    assert different == counts
    assert not pq.read_table(tmp_path / "c" / "source" / "transactions").equals(tx)


def test_generated_accounts_match_the_spec(fraud: Path, tmp_path: Path) -> None:
    """The accounts spec has no transformation, so the source must hold its declared types."""
    types = {
        "string": pa.string(),
        "int": pa.int32(),
        "long": pa.int64(),
        "double": pa.float64(),
        "boolean": pa.bool_(),
    }
    _generator().generate(str(tmp_path / "out"), accounts=3, transactions_per_day=5, days=1)
    schema = pq.read_schema(next((tmp_path / "out" / "source" / "accounts").glob("*.parquet")))
    spec = load_config().get("accounts")
    for column in (*spec.index_columns, *spec.features):
        assert schema.field(column.name).type == types[column.type], column
    assert schema.field(spec.timestamp_column).type == pa.timestamp("us", tz="UTC")
