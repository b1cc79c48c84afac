"""Error types shared by every layer.

`BadInput` is the user's mistake (exit status 2, nothing written); its message is one line
that names the file, field or argument at fault. Everything else is a job or system failure.
"""

from __future__ import annotations


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
