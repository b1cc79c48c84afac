"""The states a materialization job moves through: queued -> running -> succeeded | failed, or
cancelled from queued or running (`featurestore cancel`, a killed Airflow task).

A `str`-valued enum, so a state is stored in the `fs_jobs.state` column, printed and written to
JSON as the same lowercase word the contract names, and compares equal to that word.
"""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    """One job's state; only `QUEUED` and `RUNNING` jobs hold a lease and Pending time."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"  # stopped on request: its unfinished time is Incomplete at once


# The states of a job still holding its lease: the ones a heartbeat renews and an expiry ends.
LIVE_JOB_STATES: tuple[JobState, ...] = (JobState.QUEUED, JobState.RUNNING)
