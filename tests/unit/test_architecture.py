"""The README's module table names every module of the package, and only those."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "airflow_provider_featurestore"


def table_modules() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("| module | its one job |") :].split("\n\n", 1)[0]
    return re.findall(r"^\| `([^`]+\.py)` \| \S", table, flags=re.M)


def tree_modules() -> set[str]:
    modules = {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if p.name != "__init__.py"}
    jobs = {str(p.relative_to(ROOT)) for p in (ROOT / "spark_jobs").glob("*.py") if p.name != "__init__.py"}
    return modules | jobs


def test_the_readme_module_table_matches_the_tree() -> None:
    listed = table_modules()
    assert len(listed) == len(set(listed)), "a module is listed twice"
    assert set(listed) == tree_modules(), (
        f"missing from the README: {sorted(tree_modules() - set(listed))}; "
        f"not in the tree: {sorted(set(listed) - tree_modules())}"
    )
