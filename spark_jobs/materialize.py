"""The spark-submit entry point of the materialization job: read the batch, run it, report.

It is the only code here that is not the provider's library: the job itself (readers, the
transformation, the writers) is `airflow_provider_featurestore.core.materialization.spark_job`,
which the in-process engines call directly. This folder installs as
`airflow_provider_featurestore.spark_jobs` (setup.cfg maps it), never as a top-level `spark_jobs`
package, and the spark-submit engine finds this file by that module name.
"""

from __future__ import annotations

import argparse
import os
import sys

from airflow_provider_featurestore.core.config import load_config
from airflow_provider_featurestore.core.materialization.job_model import RESULT_MARKER, BatchSpec, ChunkResult
from airflow_provider_featurestore.core.materialization.spark_job import (
    materialize_batch,
    quiet_pandas_warning,
)


def main(argv: list[str] | None = None) -> int:
    """`spark-submit spark_jobs/materialize.py --batch-file PATH [--result-dir DIR]`.

    The batch is read from a file because it carries the online store's URL with its password:
    a command line is visible to every local user (`ps`) and recorded by Spark (the driver's
    `sun.java.command` in the Spark UI and event log). Each chunk report is written to DIR as it
    happens (one file each, renamed into place, so the submitter reads whole files while the
    batch runs) and printed as a marker line (read from the driver's output where DIR is not
    shared, as in cluster deploy mode).
    """
    parser = argparse.ArgumentParser(prog="materialize.py")
    parser.add_argument(
        "--batch-file",
        required=True,
        help="the BatchSpec as a JSON file: this path, else its name in the driver's working "
        "folder or among the application's files (cluster deploy mode: shipped with --files)",
    )
    parser.add_argument("--result-dir", help="write each ChunkResult as JSON into this folder")
    args = parser.parse_args(argv)
    sequence = iter(range(1_000_000))
    failed = []

    def report(result: ChunkResult) -> None:
        text = result.to_json()
        if args.result_dir:
            final = os.path.join(args.result_dir, f"{next(sequence):06d}-{result.job_id}.json")
            with open(final + ".tmp", "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(final + ".tmp", final)
        print(RESULT_MARKER + text, flush=True)
        if result.done and result.error:
            failed.append(result.job_id)

    quiet_pandas_warning()  # also in PYTHONWARNINGS from the submitter; not every launcher sets it
    from pyspark.sql import SparkSession

    # engine.conf, spark_conf and the application's name arrive from the submitter; only UTC is
    # insisted on here.
    spark = SparkSession.builder.config("spark.sql.session.timeZone", "UTC").getOrCreate()
    try:
        batch = read_batch_file(args.batch_file)
        materialize_batch(spark, batch, report, load_config(batch.config_path))
    finally:
        spark.stop()
    return 1 if failed else 0


def read_batch_file(path: str) -> BatchSpec:
    """The BatchSpec at `path` (client deploy mode: the submitter's own file), else the file of
    that name shipped with `--files` (cluster deploy mode: in the driver's working folder on
    YARN, in SparkFiles' folder elsewhere)."""
    name = os.path.basename(path)
    candidates = [path, os.path.join(os.getcwd(), name)]
    found = next((c for c in candidates if os.path.isfile(c)), None)
    if found is None:
        from pyspark import SparkFiles

        found = SparkFiles.get(name)
    with open(found, encoding="utf-8") as handle:
        return BatchSpec.from_json(handle.read())


if __name__ == "__main__":
    sys.exit(main())
