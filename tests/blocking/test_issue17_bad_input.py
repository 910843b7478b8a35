"""Issue #17, bad input: "a block on an invalid number is refused with the reason", from the command line
as on the page (``test_blocking.py`` covers the page and a withheld number on the CLI): an invalid
number, an emergency short code and a withheld number are each refused with their reason, exit status 2,
nothing is blocked or audited, and the dialplan's lookup still lets the caller through."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from blocking.models import NumberBlock
from hotline.audit.models import AuditEntry
from hotline.cli import main
from hotline.db import session_scope

API = {"Authorization": "Bearer test-api-token"}


@pytest.mark.parametrize(("number", "reason"), [
    ("12345", "không phải là số điện thoại hợp lệ"),
    ("0912 345 67", "không phải là số điện thoại hợp lệ"),  # one digit short
    ("không có số", "không phải là số điện thoại hợp lệ"),
    ("113", "Không thể chặn số khẩn cấp"),
    ("111", "Không thể chặn số khẩn cấp"),
    ("anonymous", "Không thể chặn số ẩn danh"),
])
def test_the_cli_refuses_a_block_on_an_invalid_number_with_the_reason(client, capsys, number, reason):
    capsys.readouterr()
    assert main(["block", "add", number, "--for", "1d", "--reason", "Gọi quấy rối"]) == 2
    out = capsys.readouterr()
    assert reason in out.err and out.out == ""
    assert main(["block", "list", "--json"]) == 0 and json.loads(capsys.readouterr().out) == []
    with session_scope() as db:
        assert db.scalar(select(func.count()).select_from(NumberBlock)) == 0
        assert db.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "block.add")) == 0
    answer = client.get("/api/blocking/check", params={"number": number, "call": "1.1"}, headers=API)
    assert answer.status_code == 200 and answer.text == "blocked=0"
