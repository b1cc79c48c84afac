"""`featurestore_feature_freshness_seconds`: how far each feature set version's store lags
behind now, as `featurestore status` computes it (core/freshness.py), exposed at scrape time.

The interval table is read through a `Refreshed`, at most every `MAX_AGE` seconds and only when
scraped, never per lookup. The lag itself is computed at each scrape from the Complete time
read (now minus the end of the Complete time reaching furthest), so between reads it still
grows with the clock as `status` would show it. A store with nothing Complete is `+Inf`: it
is infinitely stale, and an alert `> SLA` fires for it as `status` calls it late. A store
switched off by `disable-online` has no series (as `status` leaves it out). When the interval
table cannot be read, the last rows read are kept (the lags keep growing) and a warning logged.

Core-level: prometheus-client and the core, no Airflow.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Iterator

import sqlalchemy as sa
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from airflow_provider_featurestore.core import freshness
from airflow_provider_featurestore.core.errors import BadInput, ServiceUnavailable
from airflow_provider_featurestore.core.featurestore import FeatureStore
from airflow_provider_featurestore.core.refreshed import Refreshed
from airflow_provider_featurestore.core.timeutil import now_epoch

NAME = "featurestore_feature_freshness_seconds"
HELP = (
    "Now minus the end of the Complete time reaching furthest, per feature set version and store, "
    "as featurestore status reports it; +Inf when nothing is Complete."
)
LABELS = ["feature_set", "version", "store"]
MAX_AGE = 5.0  # seconds between two reads of the interval table

log = logging.getLogger(__name__)


class FreshnessCollector(Collector):
    """The freshness gauge of every feature set version and store `store` materializes."""

    def __init__(self, store: FeatureStore, max_age: float = MAX_AGE) -> None:
        specs = list(store.config.feature_sets)
        self._rows = Refreshed(lambda: freshness.assess(store.table, specs), max_age)
        self._last: list[freshness.Freshness] = []

    def describe(self) -> list[GaugeMetricFamily]:
        """The family without samples: registering it reads nothing."""
        return [GaugeMetricFamily(NAME, HELP, labels=LABELS)]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(NAME, HELP, labels=LABELS)
        try:
            self._last = self._rows.get()
        except (sa.exc.SQLAlchemyError, ServiceUnavailable, BadInput) as exc:
            log.warning("featurestore_feature_freshness_seconds: the interval table cannot be read: %s", exc)
        now = now_epoch()
        for row in self._last:
            lag = dataclasses.replace(row, now=now).lag_s
            family.add_metric(
                [row.feature_set, str(row.version), row.store], math.inf if lag is None else float(lag)
            )
        yield family
