"""What other domains read through ``directory.service``: the reference given to a caller and
how a service accepts referrals."""

from __future__ import annotations

import pytest

from directory import service
from hotline.db import session_scope
from tests.directory.conftest import DATA


def test_reference_for_never_shows_a_confidential_address(env, cli):
    assert cli("directory", "import", str(DATA / "sample.csv"))[0] == 0
    with session_scope() as session:
        ref = service.reference_for(session, "qn-shelter")
        assert ref["kind"] == "directory" and ref["ref_id"] == "qn-shelter"
        assert ref["label"].startswith("Nhà tạm lánh Quảng Ngãi")
        assert ref["phone"].replace(" ", "") == "0912345678"
        assert "Bí Mật" not in ref["address"] and "Quảng Ngãi" in ref["address"]
        legal = service.reference_for(session, "qn-legal")
        assert "45 Hùng Vương" in legal["address"] and "Phường Cẩm Thành" in legal["address"]
        with pytest.raises(service.NotFound):
            service.reference_for(session, "nope")


def test_referral_targets(env, cli):
    assert cli("directory", "import", str(DATA / "sample.csv"))[0] == 0
    with session_scope() as session:
        hook = service.referral_target(session, "qn-shelter")
        assert hook["accepts"] and hook["method"] == "webhook"
        assert hook["webhook_url"] == "https://partner.example.org/hook" and hook["webhook_secret"] == "0123456789abcdef0123"
        assert service.referral_target(session, "qn-legal")["email"] == "tgpl@example.org"
        assert service.referral_target(session, "dn-shelter")["sms"] == "+84905111223"
        assert service.referral_target(session, "hn-police")["accepts"] is False


def test_seed_is_idempotent_and_has_the_national_numbers(env, cli):
    code, out, err = cli("directory", "seed")
    assert code == 0 and "34 tỉnh/thành phố" in out
    code, out, err = cli("directory", "seed")
    assert "0 mới" in out and "không đổi" in out
    for number in ("111", "113", "114", "115"):
        code, out, err = cli("directory", "search", number)
        assert f"vn-{number}" in out
