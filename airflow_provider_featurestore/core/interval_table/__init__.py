"""The interval table: per feature set version and store, which time is in which status, and
the jobs that move it.

The package's modules, each one part of it:
- `schema`: the SQL tables, the stream key, and the check that a database's tables are ours;
- `connection`: engines, read connections, the stream locks and the opening errors;
- `status_segments`: a stream's status segments, read and written inside a transaction;
- `job_state` and `job_records`: the job states and the job records;
- `table`: `IntervalTable`, the facade the rest of the package uses, one transaction a method.

The names callers import are re-exported here.
"""

from airflow_provider_featurestore.core.interval_table.connection import READONLY, create_engine, engine_url
from airflow_provider_featurestore.core.interval_table.job_records import JobRecord, job_row, new_job_id
from airflow_provider_featurestore.core.interval_table.job_state import LIVE_JOB_STATES, JobState
from airflow_provider_featurestore.core.interval_table.schema import (
    StreamKey,
    jobs,
    metadata,
    segments,
    streams,
)
from airflow_provider_featurestore.core.interval_table.status_segments import BucketedSegments, BucketSum
from airflow_provider_featurestore.core.interval_table.table import DEFAULT_LEASE_SECONDS, IntervalTable

__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "LIVE_JOB_STATES",
    "READONLY",
    "BucketSum",
    "BucketedSegments",
    "IntervalTable",
    "JobRecord",
    "JobState",
    "StreamKey",
    "create_engine",
    "engine_url",
    "job_row",
    "jobs",
    "metadata",
    "new_job_id",
    "segments",
    "streams",
]
