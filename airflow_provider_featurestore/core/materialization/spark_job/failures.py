"""A chunk's failure as the one line its job record and the progress output show."""

from __future__ import annotations

import re

from airflow_provider_featurestore.core.errors import WORKER_DETAIL, redact_credentials

_RAISED = re.compile(r"\b[A-Za-z_][\w.]*(?:Error|Exception|Unavailable|Exit|Interrupt|Failure|Timeout): .*")


def one_line(exc: BaseException) -> str:
    """The failure in one line. An exception raised in a Python worker reaches the driver wrapped
    in the worker's traceback (PythonException); the exception it ends with comes first here,
    the traceback after it, so a truncated view still says what went wrong. A URL's password in
    it is masked: this text becomes a job record's error and a line of the driver's output."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    message = f"{type(exc).__name__}: {text}"
    if "Traceback (most recent call last)" in text:
        frames = text.rfind('File "')
        raised = _RAISED.search(text, frames if frames >= 0 else 0)
        if raised is not None:
            message = f"{raised.group(0)}{WORKER_DETAIL}{message})"
    return redact_credentials(message)[:2000]
