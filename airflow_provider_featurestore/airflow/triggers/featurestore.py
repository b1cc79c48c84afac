"""`FeatureStoreReadinessTrigger`: waits in the triggerer until a feature window is decided.

Every `poll_interval` seconds it reads the window's statuses through `FeatureStoreHook` (the
same config and connections as the operators) and asks the core's `readiness.py` for the
verdict. The hook and the interval table are synchronous (SQLAlchemy), so each look runs in a
worker thread (`asyncio.to_thread`): the triggerer's event loop, shared by every deferred task,
never waits on a database.

The event's payload is `{"verdict": "ready" | "fail" | "bad_input", "message": one line}`;
`FeatureStoreSensor.execute_complete` turns it into success or a failure. An error reaching the
database is not decided here: it fails the trigger, and the task with it (its retries apply).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_featurestore.airflow.hooks.featurestore import FeatureStoreHook
from airflow_provider_featurestore.core.errors import BadInput
from airflow_provider_featurestore.core.readiness import Readiness, Verdict

BAD_INPUT = "bad_input"


def event_payload(readiness: Readiness, verdict: Verdict) -> dict[str, str]:
    """What a decided window sends back to the task: the verdict and its one-line message."""
    message = readiness.failure() if verdict is Verdict.FAIL else readiness.describe()
    return {"verdict": str(verdict), "message": message}


class FeatureStoreReadinessTrigger(BaseTrigger):
    """Fires once `[start, end)` of a feature set version is Complete in `stores`, or (with
    `fail_when_incomplete`) once part of it is Incomplete and none of it Pending.

    :param feature_set: the feature set's name.
    :param version: its version (resolved by the sensor: never "the latest" here, so a new
        version deployed while the task waits does not change what it waits for).
    :param stores: the stores that must be Complete.
    :param start: the window's start, epoch seconds (inclusive).
    :param end: the window's end, epoch seconds (exclusive).
    :param config_path: the config file, as the sensor's hook resolved it.
    :param poll_interval: seconds between two looks at the interval table.
    :param fail_when_incomplete: fire a "fail" event on Incomplete time with nothing Pending.
    """

    def __init__(
        self,
        *,
        feature_set: str,
        version: int,
        stores: list[str],
        start: int,
        end: int,
        config_path: str,
        poll_interval: float = 60.0,
        fail_when_incomplete: bool = False,
    ) -> None:
        super().__init__()
        self.feature_set, self.version, self.stores = feature_set, version, list(stores)
        self.start, self.end = start, end
        self.config_path = config_path
        self.poll_interval = poll_interval
        self.fail_when_incomplete = fail_when_incomplete

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "feature_set": self.feature_set,
                "version": self.version,
                "stores": self.stores,
                "start": self.start,
                "end": self.end,
                "config_path": self.config_path,
                "poll_interval": self.poll_interval,
                "fail_when_incomplete": self.fail_when_incomplete,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = FeatureStoreHook(self.config_path, check_transformations=False)
        try:
            while True:
                payload = await asyncio.to_thread(self.look, hook)
                if payload is not None:
                    yield TriggerEvent(payload)
                    return
                await asyncio.sleep(self.poll_interval)
        finally:
            await asyncio.to_thread(hook.close)

    def look(self, hook: FeatureStoreHook) -> dict[str, str] | None:
        """One look at the interval table (blocking: called in a worker thread): the event's
        payload once the window is decided, None while it is not."""
        try:
            readiness = hook.store.readiness(
                self.feature_set,
                self.start,
                self.end,
                version=self.version,
                stores=self.stores,
                prefix="",
            )
        except BadInput as exc:  # the config changed under a waiting task (a spec or store gone)
            return {"verdict": BAD_INPUT, "message": str(exc)}
        verdict = readiness.verdict(self.fail_when_incomplete)
        if verdict is Verdict.WAIT:
            self.log.info("%s; looking again in %s s", readiness.describe(), self.poll_interval)
            return None
        return event_payload(readiness, verdict)
