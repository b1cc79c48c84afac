"""Importing a spec's transformation (`module:function`) from its config folder.

The module lives next to featurestore.yaml, not in an installed package, so the folder goes
first on sys.path. Python caches modules by name, though: once a module called `transforms`
was imported from another feature store in the same process (a test session, a DAG
processor parsing two stores' DAGs), `import transforms.x` would silently return that other
store's code. So a cached module of the same name from another place is dropped first.
"""

from __future__ import annotations

import importlib
import os
import sys
import types
from collections.abc import Callable, Iterator
from importlib.machinery import ModuleSpec, PathFinder
from pathlib import Path
from typing import Any

from airflow_provider_featurestore.core.config.problems import config_error


def import_transformation(reference: str, folder: str, spec_path: str) -> Callable[..., Any]:
    """The function `reference` names, imported from `folder`.

    Raises ConfigError naming the spec file and `transformation` when it cannot be loaded.
    """
    module_name, _, function_name = reference.partition(":")
    try:
        module = _import_from(module_name, folder)
    except (Exception, SystemExit) as exc:  # any failure importing user code is bad input (exit() too)
        reason = str(exc) if isinstance(exc, ImportError) else f"{type(exc).__name__}: {exc}"
        raise config_error(
            spec_path, "transformation", f"cannot import module {module_name!r}: {reason}"
        ) from None
    function = getattr(module, function_name, None)
    if function is None:
        raise config_error(
            spec_path, "transformation", f"module {module_name!r} has no function {function_name!r}"
        )
    if not callable(function):
        kind = type(function).__name__
        article = "an" if kind[:1] in "aeiou" else "a"
        raise config_error(spec_path, "transformation", f"{reference!r} is {article} {kind}, not a function")
    return function


def _import_from(module_name: str, folder: str) -> types.ModuleType:
    """Import `module_name` with `folder` first on sys.path, dropping a cached module of the same
    top-level name that was loaded from elsewhere."""
    folder = os.path.abspath(folder)
    if folder in sys.path:
        sys.path.remove(folder)
    sys.path.insert(0, folder)
    importlib.invalidate_caches()
    root = module_name.partition(".")[0]
    local = PathFinder.find_spec(root, [folder])
    cached = sys.modules.get(root)
    if local is not None and cached is not None and _origin(cached) != _spec_origin(local):
        for name in list(_submodules(root)):
            del sys.modules[name]
    return importlib.import_module(module_name)


def _submodules(root: str) -> Iterator[str]:
    return (name for name in list(sys.modules) if name == root or name.startswith(root + "."))


def _origin(module: types.ModuleType) -> Any:
    file = getattr(module, "__file__", None)
    return (
        str(Path(file).resolve())
        if file
        else tuple(str(Path(p).resolve()) for p in getattr(module, "__path__", ()))
    )


def _spec_origin(spec: ModuleSpec) -> Any:
    if spec.origin and spec.has_location:
        return str(Path(spec.origin).resolve())
    return tuple(str(Path(p).resolve()) for p in spec.submodule_search_locations or ())
