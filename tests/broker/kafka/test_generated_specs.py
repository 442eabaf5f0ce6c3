"""The checked-in spec tables are what Kafka's JSON message specs generate (the codec cannot drift).

``--check`` is run as CI would run it, then against a temporary copy of the repository layout
with an edited ``specs.py`` and with an edited JSON spec, so a stale module is known to fail.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

from streamhouse.broker.kafka import apis
from streamhouse.broker.kafka.protocol.specs import MESSAGES

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "gen_kafka_protocol.py"
SPECS = ROOT.parent / "shared" / "kafka-protocol" / "message-specs"
GENERATED = ROOT / "broker" / "kafka" / "protocol" / "specs.py"


def check(script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script), "--check", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def copy_layout(tmp_path: Path, specs_text: str) -> Path:
    """The generator resolves its output next to its own folder, so copy both."""
    (tmp_path / "scripts").mkdir()
    script = tmp_path / "scripts" / SCRIPT.name
    shutil.copy(SCRIPT, script)
    out = tmp_path / "broker" / "kafka" / "protocol" / "specs.py"
    out.parent.mkdir(parents=True)
    out.write_text(specs_text)
    return script


def test_checked_in_specs_match_the_json_message_specs():
    result = check(SCRIPT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_edited_specs_module_is_reported_stale(tmp_path):
    original = GENERATED.read_text()
    script = copy_layout(tmp_path, original)
    assert check(script, "--specs", str(SPECS)).returncode == 0  # the copy itself is sound
    edited = original.replace("'valid': (0, 12),", "'valid': (0, 13),", 1)
    assert edited != original
    (tmp_path / "broker" / "kafka" / "protocol" / "specs.py").write_text(edited)
    result = check(script, "--specs", str(SPECS))
    assert result.returncode == 1
    assert "stale" in result.stdout


def test_an_edited_json_spec_makes_the_checked_in_module_stale(tmp_path):
    specs = tmp_path / "message-specs"
    shutil.copytree(SPECS, specs)
    path = specs / "MetadataRequest.json"
    text = path.read_text()
    assert '"validVersions": "0-12"' in text
    path.write_text(text.replace('"validVersions": "0-12"', '"validVersions": "0-13"'))
    before = GENERATED.read_text()
    result = check(SCRIPT, "--specs", str(specs))
    assert result.returncode == 1
    assert "stale" in result.stdout
    assert GENERATED.read_text() == before  # --check never writes


def test_every_served_api_has_both_messages_with_its_api_key():
    for api_key, name in apis.NAMES.items():
        for suffix in ("Request", "Response"):
            spec = MESSAGES[name + suffix]
            assert spec["type"] == suffix.lower()
            if suffix == "Request":
                assert spec["api_key"] == api_key
        low, high = apis.SUPPORTED[api_key]
        first, last = MESSAGES[name + "Request"]["valid"]
        assert first <= low <= high and (last is None or high <= last)


def test_the_specs_json_files_parse_with_comments_stripped():
    """The JSON specs carry // comments; the generator's stripper keeps string contents."""
    spec = importlib.util.spec_from_file_location("gen_kafka_protocol", SCRIPT)
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    text = '{"about": "a // not a comment", // a comment\n "x": "\\"//\\""}'
    assert json.loads(gen.strip_comments(text)) == {"about": "a // not a comment", "x": '"//"'}
    assert gen.snake("TopicID") == "topic_id"
    assert gen.snake("PartitionIndex") == "partition_index"
