"""``docs/telephony.md`` lists every captured scenario with its expected record; this checks the
table against ``tests/fixtures/ami/<scenario>/expected.json``.

After a capture lands or changes:  ``.venv/bin/python -m tests.ami.test_telephony_doc --write``
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "telephony.md"
FIXTURES = ROOT / "tests" / "fixtures" / "ami"
BEGIN, END = "<!-- scenarios:begin -->", "<!-- scenarios:end -->"
HEADER = ("| Scenario | Status | Queue wait (s) | Talk (s) | Answered by | Parts (who, talk s) | Caller ID |\n"
          "|---|---|---|---|---|---|---|")


def _secs(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


def rows_from_fixtures() -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    for path in sorted(FIXTURES.glob("*/expected.json")):
        spec: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        lines = []
        for c in spec["calls"]:
            parts = ", ".join(f"{p.get('user') or p['agent']} {_secs(p['talk_s'])}" for p in c.get("parts") or []) or "—"
            caller = c.get("caller") or {}
            lines.append(f"| `{path.parent.name}` | {c['status']} | {_secs(c.get('wait_s'))} | {_secs(c.get('talk_s'))} "
                         f"| {c.get('answered_by_user') or '—'} | {parts} | {caller.get('presentation', '—')} |")
        rows[path.parent.name] = lines
    return rows


def table() -> str:
    return "\n".join([HEADER, *(line for lines in rows_from_fixtures().values() for line in lines)])


def rows_in_doc() -> dict[str, list[str]]:
    text = DOC.read_text(encoding="utf-8")
    block = text[text.index(BEGIN) + len(BEGIN):text.index(END)]
    rows: dict[str, list[str]] = {}
    for line in block.strip().splitlines():
        m = re.match(r"\|\s*`([^`]+)`", line)
        if m:
            rows.setdefault(m.group(1), []).append(line.strip())
    return rows


def test_the_scenario_table_matches_the_fixtures() -> None:
    doc, fixtures = rows_in_doc(), rows_from_fixtures()
    missing = sorted(set(fixtures) - set(doc))
    assert not missing, f"docs/telephony.md lacks {missing}; run: python -m tests.ami.test_telephony_doc --write"
    for name, lines in fixtures.items():
        assert doc[name] == lines, (f"docs/telephony.md says {doc[name]} for {name}, expected.json says {lines}; "
                                    "run: python -m tests.ami.test_telephony_doc --write")


if __name__ == "__main__" and "--write" in sys.argv:
    text = DOC.read_text(encoding="utf-8")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{BEGIN}\n{table()}\n{END}{tail}", encoding="utf-8")
    print(f"wrote {len(rows_from_fixtures())} scenarios into {DOC.relative_to(ROOT)}")
