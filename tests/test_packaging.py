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
