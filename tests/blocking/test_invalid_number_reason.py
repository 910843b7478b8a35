"""#17 bad input, said in the reader's language: a block on an invalid number is refused with a reason a
person can act on (too short, no Vietnamese number like it…), all Vietnamese on a Vietnamese page and on
the command line, all English on an English page; never ``phonenumbers``' English or the raw text quoted
(``'12345' is not a valid number in its numbering plan`` was shown inside the Vietnamese refusal)."""

from __future__ import annotations

import html

import pytest

from hotline import phone
from hotline.cli import main
from hotline.i18n import translator
from tests.blocking.test_blocking import _active_ids, _block, supervisor  # noqa: F401 - the fixture

vi, en = translator("vi"), translator("en")
CASES = [("12345", phone.TOO_SHORT), ("0912 345 67", phone.NOT_VIETNAMESE), ("091234567890123456", phone.TOO_LONG),
         ("không có số", phone.NO_DIGITS), ("0912+345678", phone.PLUS_INSIDE), ("+999 1234567", phone.NO_SUCH_COUNTRY),
         ("+1 555 0100", phone.NOT_IN_PLAN)]


@pytest.mark.parametrize(("number", "reason"), CASES)
def test_the_page_says_why_in_vietnamese_then_in_english(client, supervisor, number, reason):  # noqa: F811
    page = html.unescape(_block(client, supervisor, number=number).text)
    assert f"Đây không phải là số điện thoại hợp lệ: {vi(reason)}." in page
    assert vi(reason) != reason and reason not in page and "numbering plan" not in page and repr(number) not in page
    client.post("/language", data={"lang": "en", "next": "/blocking", "csrf_token": supervisor})
    page = html.unescape(_block(client, supervisor, number=number).text)
    assert f"This is not a valid phone number: {reason}." in page and vi(reason) not in page
    assert _active_ids() == []


@pytest.mark.parametrize(("number", "reason"), CASES[:2])
def test_the_cli_says_why_in_vietnamese(client, capsys, number, reason):
    capsys.readouterr()
    assert main(["block", "add", number, "--for", "1d", "--reason", "Gọi quấy rối"]) == 2
    err = capsys.readouterr().err
    assert vi(reason) in err and reason not in err and "numbering plan" not in err


def test_every_reason_has_its_vietnamese():
    for reason in (phone.NO_DIGITS, phone.PLUS_INSIDE, phone.NOT_A_NUMBER, phone.TOO_SHORT, phone.TOO_LONG,
                   phone.NO_SUCH_COUNTRY, phone.NOT_VIETNAMESE, phone.NOT_IN_PLAN):
        assert vi(reason) != reason, reason
    assert phone.why_invalid("0912 345 678") == "" and phone.why_invalid("1") == phone.TOO_SHORT
