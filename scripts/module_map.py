"""Print the package's modules: lines of code and which of the project's modules each imports.

Run `python scripts/module_map.py` from the checkout. It reads the source with `ast`, so imports
inside functions count too, and runs nothing of the project. `--markdown` prints the table for
the README. Used to check the README's module table against the tree, and to show how the
dependencies look before and after a change.
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("airflow_provider_featurestore", "spark_jobs")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def project_imports(path: Path, known: set[str]) -> set[str]:
    """The project's modules that `path` imports, at any depth of its code."""
    importer = module_name(path)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = resolve(importer, path.name == "__init__.py", node)
            # `from pkg import mod` imports pkg.mod; `from pkg import name` imports pkg
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != importer:
                found.add(target)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="a Markdown table")
    args = parser.parse_args()
    files = sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))
    known = {module_name(p) for p in files}
    short = len("airflow_provider_featurestore.")
    short_name = lambda m: m[short:] if m.startswith(PACKAGES[0]) else m  # noqa: E731
    for path in files:
        name = module_name(path)
        lines = sum(1 for line in path.read_text().splitlines() if line.strip())
        imports = sorted(short_name(m) or "(package)" for m in project_imports(path, known))
        label = short_name(name) or "(package)"
        if args.markdown:
            print(f"| `{label}` | {lines} | {', '.join(imports)} |")
        else:
            print(f"{label:42} {lines:5}  {' '.join(imports)}")


if __name__ == "__main__":
    main()
