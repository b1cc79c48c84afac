"""The documented interval table URL, `postgresql://` without a driver, against the test suite's
real PostgreSQL: the package opens it with psycopg2 (the postgres extra's driver), and a URL
naming a driver that is not installed is refused in one line saying what to install."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from airflow_provider_featurestore.core.cli import main as cli_main
from airflow_provider_featurestore.core.interval_table import engine_url

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fraud"


def plain(url: str) -> str:
    """`url` as the README documents it: `postgresql://` without a driver."""
    return "postgresql://" + url.split("://", 1)[1]


def fraud_config(tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    root = tmp_path / "fraud"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("data", "__pycache__"))
    config = root / "featurestore.yaml"
    config.write_text(config.read_text().replace("url: sqlite:///data/intervals.db", f"url: '{url}'"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    return str(config)


def test_a_plain_postgresql_url_holds_the_interval_table(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = plain(pg_url)
    assert url.startswith("postgresql://") and "+" not in url.split("://")[0]
    config = fraud_config(tmp_path, url, monkeypatch)
    args = ["backfill", "transactions", "--start", "2024-01-01", "--end", "2024-01-03", "--dry-run"]
    assert cli_main([*args, "--config", config]) == 0  # plans only: claims nothing

    from airflow_provider_featurestore.core.featurestore import FeatureStore

    with FeatureStore(config, check_transformations=False) as store:
        assert store.table.engine.dialect.driver == "psycopg2"
        claimed = store.claim(store.backfill_request("transactions", "2024-01-01", "2024-01-03"))
        assert len(claimed) == 2
    capsys.readouterr()
    assert cli_main(["intervals", "transactions", "--json", "--config", config]) == 0
    statuses = {(x["store"], x["status"]) for x in json.loads(capsys.readouterr().out)}
    assert statuses == {("offline", "Pending"), ("online", "Pending")}
    engine = sa.create_engine(engine_url(pg_url))
    with engine.connect() as conn:  # the rows are in PostgreSQL, in the URL's schema
        assert conn.execute(sa.text("select count(*) from fs_jobs")).scalar() == 2
        assert (conn.execute(sa.text("select count(*) from fs_intervals")).scalar() or 0) > 0
    engine.dispose()


def test_a_url_naming_a_driver_not_installed_is_refused_in_one_line(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if importlib.util.find_spec("psycopg") is not None:
        pytest.skip("psycopg 3 is installed here: its URL would work")
    url = "postgresql+psycopg://" + pg_url.split("://", 1)[1]
    config = fraud_config(tmp_path, url, monkeypatch)
    capsys.readouterr()
    assert cli_main(["intervals", "transactions", "--config", config]) == 2
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert out == "" and len(lines) == 1, err
    assert "interval_table.url postgresql+psycopg://" in lines[0]
    assert "'psycopg' is not installed: pip install 'psycopg[binary]'" in lines[0]
    assert "Traceback" not in err and "unexpected error" not in err
