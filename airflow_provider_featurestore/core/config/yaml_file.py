"""Reading one YAML file into a mapping: duplicate keys refused, dates kept as text, `${VAR}`
references substituted, and every failure a one-line ConfigError naming the file (and line)."""

from __future__ import annotations

import os
import re
import typing
from typing import Any

import yaml

from airflow_provider_featurestore.core.config.problems import config_error, field_path, kind

_ENV_REF = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys instead of silently keeping the last one."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if isinstance(key, typing.Hashable) and key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
# Dates stay text: the field's own validator reads them and names the field when one is
# impossible (`start: 2024-02-30`); PyYAML would raise while loading, naming no field.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def read_yaml(path: str) -> dict[str, Any]:
    """A YAML file that must hold a mapping, with `${VAR}` references substituted."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.load(handle, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f"line {mark.line + 1}" if mark else None
        problem = exc.problem or exc.context or "cannot be parsed"
        raise config_error(path, line, f"invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise config_error(path, None, f"invalid YAML: {exc}") from None
    except RecursionError:
        raise config_error(path, None, "invalid YAML: nested too deeply") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise config_error(path, None, f"cannot read file: {exc}") from None
    if data is None:
        raise config_error(path, None, "file is empty")
    if not isinstance(data, dict):
        raise config_error(path, None, f"expected a mapping of fields at the top level, got {kind(data)}")
    return _substitute(data, (), path)


def _substitute(value: Any, loc: tuple[str | int, ...], path: str) -> Any:
    """Replace `${VAR}` / `${VAR:-default}` in every string value; `$$` is a literal `$`."""
    if isinstance(value, dict):
        return {key: _substitute(item, (*loc, str(key)), path) for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute(item, (*loc, i), path) for i, item in enumerate(value)]
    if not isinstance(value, str) or "$" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        found = os.environ.get(name)
        if found is not None and (found or default is None):
            return found
        if default is not None:
            return default
        raise config_error(
            path,
            field_path(loc),
            f"environment variable {name} is not set (write ${{{name}:-default}} for a default)",
        )

    return _ENV_REF.sub(replace, value)
