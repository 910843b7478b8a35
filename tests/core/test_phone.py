"""Vietnamese phone-number rules (DOMAIN.md, "Phone numbers")."""

import pytest

from hotline.phone import CallerIdStatus, mask, number_hash, parse_caller


@pytest.mark.parametrize("raw", [
    "0912 345 678", "+84912345678", "0084912345678", "0912.345.678", "0912-345-678",
    "84912345678", "084912345678", "sip:0912345678@pbx.local;user=phone", "tel:+84912345678",
    "(+84) 912 345 678",
])
def test_every_written_form_of_a_mobile_is_one_number(raw):
    n = parse_caller(raw)
    assert n.status is CallerIdStatus.PRESENT
    assert n.normalized == "+84912345678"
    assert n.masked == "0912 *** 678"


@pytest.mark.parametrize("raw,status", [
    ("anonymous", CallerIdStatus.WITHHELD), ("Restricted", CallerIdStatus.WITHHELD),
    ("unknown", CallerIdStatus.WITHHELD), ("sip:anonymous@carrier.example", CallerIdStatus.WITHHELD),
    ("", CallerIdStatus.UNAVAILABLE), (None, CallerIdStatus.UNAVAILABLE), ("<unknown>", CallerIdStatus.UNAVAILABLE),
    ("12345", CallerIdStatus.INVALID), ("09123", CallerIdStatus.INVALID), ("abc", CallerIdStatus.INVALID),
])
def test_withheld_missing_and_invalid_ids_get_a_status_and_no_hash(raw, status):
    n = parse_caller(raw)
    assert n.status is status
    assert n.normalized is None
    assert n.hash("k") is None
    if status is CallerIdStatus.INVALID:
        assert n.reason  # says what was wrong


def test_two_withheld_calls_are_never_the_same_caller():
    assert parse_caller("anonymous").hash("k") is None
    assert parse_caller("Restricted").hash("k") is None


@pytest.mark.parametrize("code", ["111", "113", "114", "115"])
def test_short_codes_are_kept_as_dialled(code):
    n = parse_caller(code)
    assert n.status is CallerIdStatus.PRESENT and n.normalized == code and n.masked == code


def test_landlines_keep_their_area_code():
    n = parse_caller("0260 3862 333")  # 0260: former Kon Tum
    assert n.normalized == "+842603862333"
    assert n.masked == "0260 *** 333"


def test_hash_is_keyed_and_stable():
    a = number_hash("+84912345678", "key-1")
    assert a == parse_caller("0912345678").hash("key-1")
    assert a != number_hash("+84912345678", "key-2")
    assert "912345678" not in a


def test_mask_hides_the_middle_digits():
    assert mask("+84901234567") == "0901 *** 567"
    assert "234" not in mask("+84901234567")
