"""What a plan that claimed nothing says before it ends skipped.

A run whose window has no time to materialize (a native `airflow backfill create` over Complete
days, a `--reprocess-behavior completed` rerun without `force`, time another run holds Pending)
shows its plan, and everything after it, skipped; the plan's log says in one line what the
window holds and how to recompute it. The plan leaves an XCom (`NOTHING_TO_DO_KEY`) so that the
tasks after it, which run whatever happened upstream, know it skipped rather than failed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_featurestore.core.intervals import COMPLETE, NONE, PENDING
from airflow_provider_featurestore.core.timeutil import iso

if TYPE_CHECKING:
    from airflow_provider_featurestore.core.featurestore import BackfillRequest, FeatureStore

NOTHING_TO_DO_KEY = "nothing_to_do"
SCHEDULED_HINT = "to recompute, backfill with --reprocess-behavior completed and the Param force=true"
FORM_HINT = "to recompute, add Complete to data_status"


def window_statuses(store: FeatureStore, request: BackfillRequest) -> tuple[list[str], list[str]]:
    """The statuses met inside the request's window over its stores (None where nothing is
    stored), and the ids of the jobs holding any of it Pending."""
    found: set[str] = set()
    pending: set[str] = set()
    for name in request.stores:
        covered = 0
        for seg in store.table.segments(request.key, name, request.start, request.end):
            overlap = min(seg.end, request.end) - max(seg.start, request.start)
            if overlap <= 0:
                continue
            covered += overlap
            found.add(seg.status)
            if seg.status == PENDING and seg.job_id:
                pending.add(seg.job_id)
        if covered < request.end - request.start:
            found.add(NONE)
    return sorted(found), sorted(pending)


def nothing_to_do(store: FeatureStore, request: BackfillRequest, *, scheduled: bool) -> str:
    """One line: the window, what it is for which stores, whose Pending it is, how to recompute."""
    spec = request.spec
    if request.start >= request.end:
        start = iso(spec.source.start or request.start)
        return (
            f"{spec.name} v{spec.version}: nothing to do: the run's window ends before source.start {start}"
        )
    found, pending = window_statuses(store, request)
    line = (
        f"{spec.name} v{spec.version}: nothing to do: [{iso(request.start)}, {iso(request.end)}) is "
        f"{' or '.join(found) or 'empty'} for stores {', '.join(request.stores)}"
    )
    if pending:
        line += f"; the Pending time belongs to job(s) {', '.join(pending)} of another run"
    if COMPLETE in found and COMPLETE not in request.statuses:
        line += f"; {SCHEDULED_HINT if scheduled else FORM_HINT}"
    return line
