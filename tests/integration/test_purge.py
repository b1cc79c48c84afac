"""Entity purge (`featurestore purge`): an erasure request removes the entities everywhere.

Real parts only: the fraud example materialized by the embedded engine (Sail) into a real Delta
table and a real Redis, a SQLite interval table; the purge's DELETE and VACUUM are delta-rs's.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
import redis
from deltalake import DeltaTable, write_deltalake
from support.fraud import EXAMPLE, REDIS_URL, day, fraud_store

from airflow_provider_featurestore.core import freshness
from airflow_provider_featurestore.core.cli import main as cli_main
from airflow_provider_featurestore.core.config import Column, load_config
from airflow_provider_featurestore.core.errors import BadInput
from airflow_provider_featurestore.core.featurestore import FeatureStore
from airflow_provider_featurestore.core.interval_table import IntervalTable, JobRecord, JobState, StreamKey
from airflow_provider_featurestore.core.offline_delete import delete_predicate, delete_rows, key_texts
from airflow_provider_featurestore.core.online.codec import python_array
from airflow_provider_featurestore.core.purge import _typed_keys
from airflow_provider_featurestore.core.timeutil import iso, to_epoch

THREE_DAYS = ["backfill", "transactions", "--start", day(6), "--end", day(9)]


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.delenv("FEATURESTORE_DEBUG", raising=False)
    yield from fraud_store(tmp_path, monkeypatch, None)


def cli(root: Path, *args: str) -> int:
    return cli_main([*args, "--config", str(root / "featurestore.yaml")])


def table_path(root: Path) -> str:
    return str(root / "data" / "offline" / "transactions" / "v1")


def rows(table: DeltaTable) -> pd.DataFrame:
    frame = table.to_pandas()
    return frame.sort_values(["accountID", "timestamp"]).reset_index(drop=True)


def redis_state(root: Path) -> dict[str, dict[str, str]]:
    """Every key of the feature set's v1 in Redis (marker included) with its fields."""
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        return {
            k: (client.hgetall(k) if client.type(k) == "hash" else {"": client.get(k)})
            for k in _keys(root, 1)
        }
    finally:
        client.close()


def records(root: Path) -> list:  # type: ignore[type-arg]
    with FeatureStore(str(root / "featurestore.yaml"), check_transformations=False) as store:
        return store.jobs("transactions")


def purge_json(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    capsys.readouterr()
    assert cli(root, "purge", "transactions", *args, "--json") == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return json.loads(out)


def test_a_purge_of_two_accounts_leaves_no_trace_and_every_other_row_unchanged(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(root, *THREE_DAYS) == 0
    before = rows(DeltaTable(table_path(root)))
    online_before = redis_state(root)
    # Two accounts from a chunk's online key sample: the check would call them lost if left there.
    sampled = [key for r in records(root) for key, _expires in r.result.get("online_sample", [])]
    prefix = sampled[0].rsplit(":", 1)[0] + ":"
    gone = sorted({key.removeprefix(prefix) for key in sampled})[:2]
    assert len(gone) == 2 and all(before["accountID"].isin([a]).sum() > 0 for a in gone)
    version_before = DeltaTable(table_path(root)).version()

    done = purge_json(root, capsys, "--key", f"accountID={gone[0]}", "--key", f"accountID={gone[1]}")
    [v1] = done["versions"]
    assert done["keys"] == 2
    assert v1["offline"]["rows_deleted"] == int(before["accountID"].isin(gone).sum())
    assert v1["offline"]["commit"] == version_before + 1  # one commit for both keys
    assert v1["online"] == {"keys_deleted": 2, "samples_updated": v1["online"]["samples_updated"]}
    assert v1["online"]["samples_updated"] >= 1

    # Offline: neither account in the latest version, every other row exactly as it was.
    after = rows(DeltaTable(table_path(root)))
    pd.testing.assert_frame_equal(after, before[~before["accountID"].isin(gone)].reset_index(drop=True))
    # Time travel still reads them until VACUUM: the output said so.
    assert DeltaTable(table_path(root), version=version_before).to_pandas()["accountID"].isin(gone).any()
    # Online: both entity keys gone (the hash holds the values and the _event_time guard), the
    # marker and every other key untouched, field for field.
    online_after = redis_state(root)
    purged_keys = {prefix + account for account in gone}
    assert purged_keys <= set(online_before) and not purged_keys & set(online_after)
    assert online_after == {k: v for k, v in online_before.items() if k not in purged_keys}
    # Nothing of the keys kept in plain text: not in the samples, the purge's record, or the log.
    jobs = records(root)
    assert not any(key in purged_keys for r in jobs for key, _ in r.result.get("online_sample", []))
    record = jobs[0]
    assert (record.reads, record.state, record.id) == ("purge", "succeeded", v1["job_id"])
    shown = record.to_json()
    assert (shown["operation"], shown["purge"]["keys"], len(shown["purge"]["key_digests"])) == ("purge", 2, 2)
    text = json.dumps([shown, record.result])
    delete_commit = (
        Path(table_path(root)) / "_delta_log" / f"{v1['offline']['commit']:020d}.json"
    ).read_text()
    assert not any(account in text or account in delete_commit for account in gone)

    # The consistency check finds nothing lost (the DELETE commit is no foreign write, the purged
    # keys no lost state), and the statuses are as the backfill left them.
    statuses = _statuses(root)
    capsys.readouterr()
    assert cli(root, "check", "transactions", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["consistent"] is True and report["lost"] == []
    assert statuses == {"offline": [(day(6), day(9), "Complete")], "online": [(day(6), day(9), "Complete")]}
    assert _statuses(root) == statuses

    # Again, with --vacuum: nothing more to delete; the files older versions need are removed.
    again = purge_json(
        root, capsys, "--key", f"accountID={gone[1]}", "--key", f"accountID={gone[0]}", "--vacuum"
    )
    [v1] = again["versions"]
    assert (v1["offline"]["rows_deleted"], v1["offline"]["commit"], v1["online"]["keys_deleted"]) == (
        0,
        None,
        0,
    )
    assert v1["offline"]["vacuumed_files"] > 0
    latest = DeltaTable(table_path(root))
    readable = []
    for version in range(latest.version() + 1):
        try:
            frame = DeltaTable(table_path(root), version=version).to_pandas()
        except OSError:  # its files were vacuumed: it can no longer be read
            continue
        readable.append(version)
        assert not frame["accountID"].isin(gone).any(), version
    assert version_before not in readable and latest.version() in readable
    pd.testing.assert_frame_equal(rows(latest), after)
    assert redis_state(root) == online_after
    assert cli(root, "check", "transactions") == 0
    assert [r.reads for r in records(root)][:2] == ["purge", "purge"]


def _statuses(root: Path) -> dict[str, list[tuple[str, str, str]]]:
    with FeatureStore(str(root / "featurestore.yaml"), check_transformations=False) as store:
        return {
            s: [(iso(i.start), iso(i.end), i.status) for i in items]
            for s, items in store.intervals("transactions").items()
        }


def test_a_purge_is_refused_while_time_is_pending_and_bad_keys_delete_nothing(
    root: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli(root, "backfill", "transactions", "--start", day(8), "--end", day(9)) == 0
    before, online, jobs = rows(DeltaTable(table_path(root))), redis_state(root), len(records(root))

    # Time Pending under a job claimed through the interval table (as a running backfill holds it).
    with FeatureStore(str(root / "featurestore.yaml"), check_transformations=False) as store:
        spec = store.spec("transactions")
        [claimed] = store.table.claim(
            StreamKey(spec.name, spec.version),
            to_epoch(day(9)),
            to_epoch(day(10)),
            ["None"],
            ["offline"],
            86400,
        )
    capsys.readouterr()
    assert cli(root, "purge", "transactions", "--key", "accountID=A0001") == 2
    out, err = capsys.readouterr()
    [line] = err.splitlines()
    assert f"offline [{day(9)}, {day(10)}) is Pending under job {claimed.id}" in line
    assert f"featurestore cancel transactions --job {claimed.id}" in line and "nothing was purged" in line

    # Bad arguments: one line naming --key (or the option), exit 2.
    for args in (
        ["--key", "merchant=M1"],
        ["--key", "accountID"],
        ["--key", "accountID=A0001,merchant=M1"],
        ["--key", "accountID=A0001", "--all-versions", "--version", "1"],
        ["--key", "accountID=A0001", "--retention-hours", "5"],
    ):
        assert cli(root, "purge", "transactions", *args) == 2, args
        [line] = capsys.readouterr().err.splitlines()
        assert line.startswith("featurestore purge: --") and "Traceback" not in line, line
    assert rows(DeltaTable(table_path(root))).equals(before) and redis_state(root) == online
    assert len(records(root)) == jobs + 1  # the claimed job; no purge record

    # Once the job has ended, a hostile value deletes nothing it does not name (no such account).
    with FeatureStore(str(root / "featurestore.yaml"), check_transformations=False) as store:
        store.table.finish_job(claimed.id, {}, error="ended by the test")
    done = purge_json(root, capsys, "--key", "accountID=A0001' OR '1'='1", "--key", "accountID=%:*")
    assert (
        done["versions"][0]["offline"]["rows_deleted"],
        done["versions"][0]["online"]["keys_deleted"],
    ) == (0, 0)
    assert rows(DeltaTable(table_path(root))).equals(before) and redis_state(root) == online

    # An online store that cannot be reached: exit 1 before anything is deleted, no record.
    monkeypatch.setenv("FEATURESTORE_REDIS_URL", "redis://127.0.0.1:1/0")
    jobs = len(records(root))
    assert cli(root, "purge", "transactions", "--key", "accountID=A0001") == 1
    [line] = capsys.readouterr().err.splitlines()
    assert "cannot reach the online store at redis://127.0.0.1:1/0" in line
    assert rows(DeltaTable(table_path(root))).equals(before) and len(records(root)) == jobs
    monkeypatch.setenv("FEATURESTORE_REDIS_URL", REDIS_URL)
    # A Delta log delta-rs cannot read: exit 1 naming the table, Redis untouched, a failed record.
    newest = sorted((Path(table_path(root)) / "_delta_log").glob("*.json"))[-1]
    newest.write_text("not json\n")
    assert cli(root, "purge", "transactions", "--key", "accountID=A0001") == 1
    [line] = capsys.readouterr().err.splitlines()
    assert f"cannot open the offline table at {table_path(root)}" in line and "run the purge again" in line
    assert redis_state(root) == online
    failed = records(root)[0]
    assert (failed.is_purge, failed.state, failed.error.split(":")[0]) == (
        True,
        "failed",
        "OfflineDeleteFailed",
    )
    assert "A0001" not in json.dumps([failed.to_json(), failed.result])
    with FeatureStore(str(root / "featurestore.yaml"), check_transformations=False) as store:
        counts = {r.failed_jobs_24h for r in freshness.assess(store.table, [store.spec("transactions")])}
    assert counts == {1}  # the job the test ended; a failed purge is no failed materialization job


HOSTILE = ["A1' OR '1'='1", "x'); DROP TABLE t; --", "back\\slash'", "%:*?[]", "é ünicode", "A1"]


def test_the_delete_predicate_holds_digests_only_and_matches_exactly_the_keys(tmp_path: Path) -> None:
    """Hostile values in a real Delta table: each purged exactly, its neighbours untouched, and
    none in the DELETE's commit. Two index columns (string, long): both must match."""
    path = str(tmp_path / "hostile")
    data = pa.table(
        {
            "accountID": [*HOSTILE, *HOSTILE],
            "merchant": pa.array([1] * len(HOSTILE) + [2] * len(HOSTILE), pa.int64()),
            "day": ["a", "b"] * len(HOSTILE),
        }
    )
    write_deltalake(path, data, partition_by=["day"])
    example = load_config(str(EXAMPLE / "featurestore.yaml"), check_transformations=False).get("transactions")
    two = (Column(name="accountID", type="string"), Column(name="merchant", type="long"))
    spec = dataclasses.replace(example, index_columns=two)
    keys = [{"accountID": value, "merchant": "1"} for value in HOSTILE[:5]]
    arrays, texts = _typed_keys(spec, keys)
    done = delete_rows(path, delete_predicate(spec, "ab12", texts), vacuum=False, retention_hours=0)
    assert (done.rows, done.commit) == (5, 1)
    left = DeltaTable(path).to_pyarrow_table().to_pylist()
    assert sorted((r["accountID"], r["merchant"]) for r in left) == sorted(
        [("A1", 1), *((value, 2) for value in HOSTILE)]
    )
    commit = (Path(path) / "_delta_log" / f"{1:020d}.json").read_text().splitlines()
    [info] = [json.loads(line)["commitInfo"] for line in commit if "commitInfo" in line]
    predicate = info["operationParameters"]["predicate"]  # the rows left keep the values (merchant 2)
    assert "sha256" in predicate and not any(value in predicate for value in HOSTILE[:5])
    assert key_texts(
        spec, [python_array(["x"], spec.index_columns[0]), python_array([7], spec.index_columns[1])]
    ) == [("x", "7")]
    for bad, word in (
        ({"accountID": "A1"}, "no value for merchant"),
        ({"accountID": "A1", "merchant": 1, "x": 2}, "'x'"),
    ):
        with pytest.raises(BadInput, match=f"^--key: .*{word}"):
            _typed_keys(spec, [bad])
    with pytest.raises(BadInput, match="^--key: .*merchant.*not an integer|^--key: .*merchant"):
        _typed_keys(spec, [{"accountID": "A1", "merchant": "M1"}])


def test_all_versions_purges_each_version_in_its_own_commit_and_record(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = (root / "featuresets" / "transactions.yaml").read_text()
    (root / "featuresets" / "transactions_v2.yaml").write_text(spec.replace("version: 1", "version: 2"))
    for version in ("1", "2"):
        assert (
            cli(root, "backfill", "transactions", "--version", version, "--start", day(8), "--end", day(9))
            == 0
        )
    v2_path = str(root / "data" / "offline" / "transactions" / "v2")
    account = rows(DeltaTable(table_path(root)))["accountID"].iloc[0]
    assert any(k.endswith(f":v1:{account}") for k in _keys(root, 1))

    latest = purge_json(root, capsys, "--key", f"accountID={account}")  # default: the latest version
    assert [v["version"] for v in latest["versions"]] == [2]
    assert not rows(DeltaTable(v2_path))["accountID"].eq(account).any()
    assert rows(DeltaTable(table_path(root)))["accountID"].eq(account).any()

    both = purge_json(root, capsys, "--key", f"accountID={account}", "--all-versions")
    assert [(v["version"], v["offline"]["rows_deleted"] > 0) for v in both["versions"]] == [
        (1, True),
        (2, False),
    ]
    assert not rows(DeltaTable(table_path(root)))["accountID"].eq(account).any()
    with FeatureStore(str(root / "featurestore.yaml"), check_transformations=False) as store:
        v2 = [r.is_purge for r in store.jobs("transactions", 2)]
        v1 = [r.is_purge for r in store.jobs("transactions", 1)]
        assert (v2[:2], v1[:2]) == ([True, True], [True, False])  # a record per version purged
        keys = {store.online_layout(store.spec("transactions", v)).prefix + account for v in (1, 2)}
        with store.online_store() as online:
            assert online.missing_keys(sorted(keys)) == keys  # v1's key, there before, is gone too
    assert cli(root, "check", "transactions", "--version", "1") == 0
    assert cli(root, "check", "transactions", "--version", "2") == 0


def _keys(root: Path, version: int) -> list[str]:
    with FeatureStore(str(root / "featurestore.yaml"), check_transformations=False) as store:
        prefix = store.online_layout(store.spec("transactions", version)).prefix
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        return list(client.scan_iter(f"{prefix}*", count=1000))
    finally:
        client.close()


def test_purged_keys_leave_the_key_samples_on_each_database(table_url: str) -> None:
    """`drop_sampled_keys` finds keys with LIKE's own characters, quotes and non-ASCII in the
    stored JSON, on SQLite and PostgreSQL, and rewrites only the records that held one."""
    table = IntervalTable(table_url)
    key = StreamKey("transactions", 1)
    tricky = ["p:v1:a%b", "p:v1:c_d", "p:v1:e/f", 'p:v1:"q"\\', "p:v1:é", "p:v1:x"]
    other = StreamKey("transactions", 2)
    try:
        for number, (stream, sample) in enumerate([(key, tricky[:3]), (key, tricky[3:]), (other, tricky)]):
            record = JobRecord(
                id=f"job{number}",
                feature_set=stream.feature_set,
                version=stream.version,
                start=0,
                end=86400,
                stores=("online",),
                state=JobState.SUCCEEDED,
                result={"online_sample": [[k, None] for k in sample], "online_marker": True},
            )
            table.add_record(record)
        assert (
            table.drop_sampled_keys(key, ["p:v1:a_b", "p:v1:a%", "p:v1:zz"]) == 0
        )  # LIKE wildcards match nothing
        assert table.drop_sampled_keys(key, ["p:v1:a%b", 'p:v1:"q"\\', "p:v1:é"]) == 2
        samples = {r.id: [k for k, _ in r.result["online_sample"]] for r in table.jobs(key)}
        assert samples == {"job0": ["p:v1:c_d", "p:v1:e/f"], "job1": ["p:v1:x"]}
        assert table.job("job0").result["online_marker"] is True
        assert [k for k, _ in table.job("job2").result["online_sample"]] == tricky  # another version
    finally:
        table.close()
