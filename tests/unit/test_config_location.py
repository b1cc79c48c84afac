"""One resolver for the config's path: the argument, then the Airflow Variable featurestore_config
(here Airflow's own environment-variable backend), then FEATURESTORE_CONFIG; it says which."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_featurestore.airflow.hooks.connections import AirflowConnections
from airflow_provider_featurestore.core.config.location import locate_config
from airflow_provider_featurestore.core.errors import ConfigError


def test_the_argument_then_the_variable_then_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    given, by_variable, by_env = (tmp_path / name for name in ("given.yaml", "variable.yaml", "env.yaml"))
    for path in (given, by_variable, by_env):
        path.write_text("project: p\n")
    airflow = AirflowConnections()
    monkeypatch.setenv("AIRFLOW_VAR_FEATURESTORE_CONFIG", str(by_variable))
    monkeypatch.setenv("FEATURESTORE_CONFIG", str(by_env))
    assert locate_config(str(given), resolver=airflow) == locate_config(str(given))
    assert locate_config(str(given)).source == "--config"
    found = locate_config(resolver=airflow)
    assert (found.path, found.source) == (str(by_variable), "the Airflow Variable featurestore_config")
    monkeypatch.delenv("AIRFLOW_VAR_FEATURESTORE_CONFIG")
    found = locate_config(resolver=airflow)
    assert (found.path, found.source) == (str(by_env), "FEATURESTORE_CONFIG")


def test_a_missing_file_says_what_named_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FEATURESTORE_CONFIG", raising=False)
    monkeypatch.setenv("AIRFLOW_VAR_FEATURESTORE_CONFIG", str(tmp_path / "gone.yaml"))
    airflow = AirflowConnections()
    with pytest.raises(ConfigError, match=r"^gone\.yaml: file not found \(named by the Airflow Variable "):
        locate_config(resolver=airflow)
    monkeypatch.delenv("AIRFLOW_VAR_FEATURESTORE_CONFIG")
    with pytest.raises(ConfigError) as caught:
        locate_config(argument="config_path", resolver=airflow)
    assert str(caught.value) == (
        "featurestore.yaml: file not found; set the Airflow Variable featurestore_config or FEATURESTORE_CONFIG"
    )
