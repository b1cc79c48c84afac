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


_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s/@:]*:)[^\s/@]+@")
_QUERY_PASSWORD = re.compile(r"(?i)\b(password=)[^\s&'\"]+")


def redact_credentials(text: str) -> str:
    """`text` with the password of every URL in it (`redis://user:pw@host`, `?password=pw`) as
    `***`: a last guard on what becomes a job record's error or a log line, since an exception
    from a client library may quote the URL it was given."""
    return _QUERY_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", text))
