"""A transferred call's parts (who, talk time) on the record page and in ``hotline calls export``."""

from __future__ import annotations

import json
from pathlib import Path

from hotline.cli import main
from tests.ami.conftest import Rig
from tests.ami.test_conformance import FIXTURES, _record, _users, expected, replay
from tests.helpers import login


def test_blind_transfer_parts_on_the_record_page_and_in_the_export(client, rig: Rig, tmp_path: Path) -> None:
    spec = expected(FIXTURES / "blind_transfer")
    _users(spec)  # tvv1, tvv2 mapped to their member interfaces (password Conformance-Pass-2026!)
    replay(rig, FIXTURES / "blind_transfer" / "filtered.ami", spec)
    (want,) = spec["calls"]
    call = _record(want["linkedid"])
    assert call is not None

    out = tmp_path / "calls.jsonl"
    assert main(["calls", "export", "--format", "jsonl", "--out", str(out)]) == 0
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert [p["counsellor"] for p in row["parts"]] == ["tvv1", "tvv2"]
    assert [abs(p["talk_seconds"] - w["talk_s"]) <= 1 for p, w in zip(row["parts"], want["parts"], strict=True)] == [True, True]

    token = login(client, "tvv1", "Conformance-Pass-2026!")
    opened = client.post(f"/records/for-call/{call.id}", headers={"X-CSRF-Token": token, "Accept": "application/json"})
    assert opened.status_code == 200, opened.text
    page = client.get(opened.json()["url"])
    assert page.status_code == 200
    assert 'id="call-parts"' in page.text and page.text.count('data-agent="') == 2
