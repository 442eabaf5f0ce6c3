"""The install maps the repository folders into the ``streamhouse`` namespace only."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _run_outside_repo(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False
    )


def test_subpackages_import_under_namespace(tmp_path: Path) -> None:
    result = _run_outside_repo(
        "import streamhouse.broker, streamhouse.sql, streamhouse.engine, streamhouse.workbench",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr


def test_no_top_level_sql_or_engine_module(tmp_path: Path) -> None:
    for name in ("sql", "engine", "broker", "workbench"):
        result = _run_outside_repo(f"import {name}", tmp_path)
        assert result.returncode != 0, f"a top-level module {name!r} is importable"
        assert "ModuleNotFoundError" in result.stderr


def test_every_subpackage_is_declared_for_wheels() -> None:
    """A folder missing from pyproject's package list would be absent from a wheel install."""
    import tomllib

    root = Path(__file__).resolve().parent.parent
    config = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    declared = set(config["packages"])
    found = {
        "streamhouse." + ".".join(init.parent.relative_to(root).parts)
        for top in ("broker", "sql", "engine", "workbench")
        for init in (root / top).rglob("__init__.py")
    }
    assert found == declared
    assert "migrations/*/*.sql" in config["package-data"]["streamhouse.broker.metadata"]
