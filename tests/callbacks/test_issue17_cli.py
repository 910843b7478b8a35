"""``hotline callbacks list`` (issue #17's worklist from the command line) says what each item is in
Vietnamese words, not its codes (``missed``, ``abandoned``, ``claimed``: those stay in ``--json``)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from callbacks import service
from hotline.cli import main
from hotline.db import session_scope
from hotline.i18n import Text
from tests.callbacks.conftest import MORNING, missed
from tests.live.conftest import sign_in

pytestmark = pytest.mark.usefixtures("clock")


def test_the_cli_list_says_the_kind_and_who_holds_an_item_in_words(client, staff, capsys):
    missed("0912345678", MORNING - timedelta(minutes=30))
    missed("0987654321", MORNING - timedelta(minutes=20), agent="PJSIP/tvv2")
    with session_scope() as db:
        service.build(db)
    token = sign_in(client, "tvv1")
    capsys.readouterr()
    assert main(["callbacks", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 2 and {r["kind"] for r in rows} <= {"missed", "abandoned"}
    first = rows[0]["id"]
    assert client.post(f"/callbacks/{first}/claim", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    assert main(["callbacks", "list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    words = {r["kind"]: Text(service.KIND_LABELS[r["kind"]]).translate("vi") for r in rows}
    for line, row in zip(lines, rows, strict=True):
        assert line.startswith(f"#{row['id']}  {row['number']}") and words[row["kind"]] in line
        assert f"  {row['kind']}  " not in line and "open" not in line.split() and "claimed" not in line.split()
        assert "0/3" in line
    assert "TVV1 đã nhận" in lines[0] and "đã nhận" not in lines[1]
