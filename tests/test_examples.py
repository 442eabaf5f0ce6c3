"""The examples in examples/ run as documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_log_roundtrip_example_survives_a_restart(tmp_path: Path) -> None:
    script = str(EXAMPLES / "log_roundtrip.py")
    first = subprocess.run(
        [sys.executable, script, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert first.returncode == 0, first.stderr
    assert "appended at offset 0; high watermark 2" in first.stdout
    second = subprocess.run(
        [sys.executable, script, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert second.returncode == 0, second.stderr
    assert "appended at offset 2; high watermark 4" in second.stdout
    assert second.stdout.count("b'hello'") == 2
