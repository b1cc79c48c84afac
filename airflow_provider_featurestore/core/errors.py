"""Error types shared by every layer.

`BadInput` is the user's mistake (exit status 2, nothing written); its message is one line
that names the file, field or argument at fault. `ServiceUnavailable` is a store that cannot be
reached (exit status 1; the line names the store, never its password, and what to start or
fix). Everything else is a job failure or a bug.
"""

from __future__ import annotations

import re


class BadInput(Exception):
    """Bad user input: a config file, a spec, a CLI argument or a form value.

    The message is a single line naming what is at fault and, where it helps, what to do.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split("\n")))


class ConfigError(BadInput):
    """A config file or feature set spec is invalid; the message starts with the file."""

    def __init__(self, file: str, field: str | None, message: str) -> None:
        self.file = file
        self.field = field
        where = f"{file}: {field}: " if field else f"{file}: "
        super().__init__(where + message)


class ServiceUnavailable(Exception):
    """A store (the online store, the interval table's database) cannot be reached or refuses
    us; the one-line message names it without its password and says what to do."""


# Where a job's error quotes the Python worker's traceback after the exception it ended with
# (spark_jobs/materialize.py writes it so): a console line stops there.
WORKER_DETAIL = " (in a Python worker; "
CONSOLE_ERROR_CHARS = 300


def console_error(error: str, limit: int = CONSOLE_ERROR_CHARS) -> str:
    """A job's error as a progress line shows it: the exception without the worker traceback
    quoted after it, at most `limit` characters. The job record keeps the whole text (the status
    page and `featurestore jobs --json` show it)."""
    head = error.split(WORKER_DETAIL, 1)[0]
    return head if len(head) <= limit else head[: limit - 3] + "..."


_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s/@:]*:)[^\s/@]+@")
_QUERY_PASSWORD = re.compile(r"(?i)\b(password=)[^\s&'\"]+")


def redact_credentials(text: str) -> str:
    """`text` with the password of every URL in it (`redis://user:pw@host`, `?password=pw`) as
    `***`: a last guard on what becomes a job record's error or a log line, since an exception
    from a client library may quote the URL it was given."""
    return _QUERY_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", text))
