"""The `featurestore` console script.

Why a module of its own: the command line imports pyarrow, pyspark and SQLAlchemy, which takes
a second or two; a Ctrl-C in that time would otherwise print a traceback from deep inside an
import. Here the interrupt is handled before anything heavy is imported.
"""

from __future__ import annotations

import os
import sys


def run() -> None:
    """Import the command line and run it; an interrupt while starting exits 130 in one line.

    After an interrupt the process ends at once, once its output is flushed: the jobs are
    recorded by then, and the engine's client threads may otherwise wait minutes at exit for
    a query the interrupt abandoned (pyspark's release calls to a server still running it).
    """
    try:
        from airflow_provider_featurestore.core import cli

        status = cli.main()
    except KeyboardInterrupt:
        sys.stderr.write("featurestore: interrupted\n")
        status = 130
    if (
        "airflow_provider_featurestore.cli" in sys.modules
        and sys.modules["airflow_provider_featurestore.cli"].interrupted()
    ):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)
