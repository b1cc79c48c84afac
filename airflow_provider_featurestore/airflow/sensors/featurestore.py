"""`FeatureStoreSensor`: a task that waits until a feature window is Complete in the stores.

Thin, like the operators: it renders its fields, builds `FeatureStoreHook` (so the config and
conn_ids are found exactly as the operators find them), and asks the core's
`FeatureStore.readiness`; the verdict itself is `core/readiness.py`, shared with the trigger.

Failures that waiting or retrying cannot fix (a bad argument; with `fail_when_incomplete`,
Incomplete time that no job is working on) raise `AirflowFailException`: the task fails at once,
without retries, naming what to fix. A database that cannot be reached is an ordinary error, so
the task's retries apply.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_featurestore.airflow.hooks.featurestore import FeatureStoreHook
from airflow_provider_featurestore.airflow.triggers.featurestore import (
    BAD_INPUT,
    FeatureStoreReadinessTrigger,
)
from airflow_provider_featurestore.core import form_values
from airflow_provider_featurestore.core.errors import BadInput
from airflow_provider_featurestore.core.readiness import Readiness, Verdict

BAD_ARGUMENTS = "bad FeatureStoreSensor arguments"


class FeatureStoreSensor(BaseSensorOperator):
    """Waits until `[start, end)` of a feature set version is Complete in `stores`.

    :param feature_set: the feature set's name (templated).
    :param version: its version (templated); default: the latest, as a backfill picks it.
    :param stores: `"offline"`, `"online"`, a list or `"offline,online"` (templated); default:
        every store the version enables and nobody disabled (`featurestore disable-online`).
    :param start: the window's start, inclusive (templated; ISO-8601 text, a datetime or epoch
        seconds; naive is UTC); default: the run's `data_interval_start`.
    :param end: the window's end, exclusive (templated); default: the run's `data_interval_end`.
    :param config_path: the featurestore.yaml; default as the operators: the Airflow Variable
        `featurestore_config`, then $FEATURESTORE_CONFIG.
    :param poll_interval: seconds (or a timedelta) between two looks at the interval table: the
        trigger's polling, or the reschedule interval with `deferrable=False`.
    :param fail_when_incomplete: fail at once (no retries) when part of the window is Incomplete
        and none of it is Pending: no running job will complete it, a backfill must. Default:
        keep waiting (a backfill may come) until `timeout`.
    :param deferrable: True (default): look once, then wait in the triggerer, holding no worker
        slot. False: poke in `mode="reschedule"`, freeing the slot between pokes.
    """

    template_fields = ("feature_set", "version", "stores", "start", "end")
    ui_color = "#d8f0d8"

    def __init__(
        self,
        *,
        feature_set: str,
        version: int | str | None = None,
        stores: str | list[str] | None = None,
        start: Any = None,
        end: Any = None,
        config_path: str | None = None,
        poll_interval: float | timedelta = 60.0,
        fail_when_incomplete: bool = False,
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        if not deferrable:
            kwargs.setdefault("mode", "reschedule")
        super().__init__(poke_interval=poll_interval, **kwargs)
        self.feature_set, self.version, self.stores = feature_set, version, stores
        self.start, self.end = start, end
        self.config_path = config_path
        self.fail_when_incomplete = fail_when_incomplete
        self.deferrable = deferrable

    def execute(self, context: Any) -> None:
        if not self.deferrable:
            return super().execute(context)  # pokes, in reschedule mode
        readiness, config_path = self.look(context)
        if self.decide(readiness):
            return None
        self.defer(
            trigger=FeatureStoreReadinessTrigger(
                feature_set=readiness.feature_set,
                version=readiness.version,
                stores=list(readiness.stores),
                start=readiness.start,
                end=readiness.end,
                config_path=config_path,
                poll_interval=self.poke_interval,
                fail_when_incomplete=self.fail_when_incomplete,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def poke(self, context: Any) -> bool:
        readiness, _config_path = self.look(context)
        return self.decide(readiness)

    def execute_complete(self, context: Any, event: dict[str, str]) -> None:
        """Resumed from the trigger: succeed on "ready", fail (no retries) on anything decided."""
        verdict, message = event.get("verdict"), event.get("message", "")
        if verdict == Verdict.READY:
            self.log.info(message)
            return
        if verdict == BAD_INPUT:
            raise AirflowFailException(f"{BAD_ARGUMENTS}: {message}")
        if verdict == Verdict.FAIL:
            raise AirflowFailException(message)
        raise AirflowException(f"unexpected event from FeatureStoreReadinessTrigger: {event!r}")

    def look(self, context: Any) -> tuple[Readiness, str]:
        """The window's readiness and the config file it was read from (the trigger reads the
        same file); AirflowFailException in one line on a bad argument."""
        hook = FeatureStoreHook(self.config_path, check_transformations=False)
        try:
            readiness = hook.store.readiness(
                self.feature_set,
                self.window_edge("start", self.start, context),
                self.window_edge("end", self.end, context),
                version=form_values.version(self.version),
                stores=self.stores or None,
                prefix="",
            )
            return readiness, hook.location.path
        except BadInput as exc:
            raise AirflowFailException(f"{BAD_ARGUMENTS}: {exc}") from None
        finally:
            hook.close()

    def decide(self, readiness: Readiness) -> bool:
        """True when ready, False while waiting; AirflowFailException on a failing verdict."""
        verdict = readiness.verdict(self.fail_when_incomplete)
        if verdict is Verdict.FAIL:
            raise AirflowFailException(readiness.failure())
        self.log.info(readiness.describe())
        return verdict is Verdict.READY

    @staticmethod
    def window_edge(name: str, value: Any, context: Any) -> Any:
        """`value`, or when it is empty the run's data interval edge of the same name."""
        if value not in form_values.EMPTY:
            return value
        edge = context.get(f"data_interval_{name}")
        if edge is None:
            raise BadInput(
                f"{name}: not given, and this run has no data interval (a manual or asset-triggered "
                f"run): pass {name}"
            )
        return edge
