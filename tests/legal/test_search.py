"""Search as counsellors type it, on SQLite and PostgreSQL: numbers, articles, abbreviations,
words with and without diacritics, issue codes, and the supersession chain."""

from __future__ import annotations

import pytest
from freezegun import freeze_time

from hotline.db import session_scope
from legal_library import service
from legal_library.search import search, suggest


def _search(q: str, **kw):
    with session_scope() as session:
        return search(session, q, **kw)


def _labels(result) -> list[str]:
    return [a["label"] for a in result["articles"]]


BY_NUMBER = [
    ("13/2022", "13/2022/QH15"),
    ("13/2022/QH15", "13/2022/QH15"),
    ("nđ 76", "76/2023/NĐ-CP"),
    ("ND 76", "76/2023/NĐ-CP"),
    ("nghị định 76", "76/2023/NĐ-CP"),
    ("76/2023", "76/2023/NĐ-CP"),
    ("73/2006", "73/2006/QH11"),
    ("02/2007", "02/2007/QH12"),
    ("2/2007", "02/2007/QH12"),
]


def test_by_number(seeded):
    for query, number in BY_NUMBER:
        result = _search(query)
        assert result["documents"][0]["number"] == number, query


BY_ARTICLE = [
    ("điều 185", "Điều 185 Bộ luật Hình sự 100/2015/QH13"),
    ("dieu 185", "Điều 185 Bộ luật Hình sự 100/2015/QH13"),
    ("185 blhs", "Điều 185 Bộ luật Hình sự 100/2015/QH13"),
    ("BLHS 141", "Điều 141 Bộ luật Hình sự 100/2015/QH13"),
    ("Điều 47 Luật Trẻ em", "Điều 47 Luật 102/2016/QH13"),
    ("art. 3 13/2022", "Điều 3 Luật 13/2022/QH15"),
    ("art 8 hngđ", "Điều 8 Luật 52/2014/QH13"),
    ("điều 7 tgpl", "Điều 7 Luật 11/2017/QH14"),
    ("pcblgđ điều 3", "Điều 3 Luật 13/2022/QH15"),
    ("điều 141 penal code", "Điều 141 Bộ luật Hình sự 100/2015/QH13"),
]


def test_by_article(seeded):
    for query, label in BY_ARTICLE:
        result = _search(query)
        assert _labels(result) == [label], query


def test_article_number_alone_lists_every_document_that_has_it(seeded):
    labels = _labels(_search("art. 3"))
    assert labels == ["Điều 3 Luật 13/2022/QH15"]
    assert set(_labels(_search("điều 5"))) == {"Điều 5 Luật 73/2006/QH11", "Điều 5 Luật 52/2014/QH13"}


def test_words_ignore_diacritics_and_case_and_the_last_word_is_a_prefix(seeded):
    for query in ("cấm tiếp xúc", "cam tiep xuc", "CẤM TIẾP XÚC", "cam tiep x", "Cấm  tiếp   xúc!"):
        assert _labels(_search(query))[0] == "Điều 22 Luật 13/2022/QH15", query
    # Headings weigh most: the article named by the words comes first.
    assert _labels(_search("hiếp dâm"))[0] == "Điều 141 Bộ luật Hình sự 100/2015/QH13"
    # The words of our notes find articles too: "72 giờ" is only in the note on Art. 141.
    assert _labels(_search("72 giờ")) == ["Điều 141 Bộ luật Hình sự 100/2015/QH13"]
    assert "Điều 22 Luật 13/2022/QH15" in _labels(_search("kế hoạch an toàn"))


def test_words_found_in_text_stored_without_diacritics(seeded, samples):
    text = "Luật số: 96/2030/QH99\nĐiều 1. Tro giup khan cap\n1. Noi dung dieu nay.\n"
    with session_scope() as session:
        service.import_text(session, data=text, publish_now=True)
    assert _labels(_search("trợ giúp khẩn cấp")) == ["Điều 1 Luật 96/2030/QH99"]


def test_results_show_heading_and_our_note_first(seeded):
    a = _search("điều 3 pcblgđ")["articles"][0]
    assert a["heading"] == "Hành vi bạo lực gia đình"
    assert a["note"]["meaning_vi"].startswith("Liệt kê các hành vi")
    assert a["note"]["verified"] is False  # our notes are marked until someone checks them
    assert a["heading_verified"] is True
    assert {"dv.physical", "dv.economic"} <= {i["code"] for i in a["issues"]}


def test_by_issue_code(seeded):
    labels = _labels(_search("dv.physical"))
    assert "Điều 3 Luật 13/2022/QH15" in labels and "Điều 185 Bộ luật Hình sự 100/2015/QH13" in labels
    assert all("Luật Trẻ em" not in x for x in labels)
    child = _labels(_search("issue:child_abuse"))  # the parent code finds its children's articles too
    assert "Điều 146 Bộ luật Hình sự 100/2015/QH13" in child and "Điều 47 Luật 102/2016/QH13" in child


def test_unknown_issue_code_is_a_clear_error(seeded):
    with pytest.raises(ValueError, match="Mã vấn đề không có: 'dv.nothing'"):
        _search("", issues=["dv.nothing"])


def test_abbreviation_without_a_document_falls_back_to_words(seeded):
    result = _search("bllđ")  # Bộ luật Lao động: not in the starter library
    assert result["understood"]["words"] == ["bo", "luat", "lao", "dong"]
    assert result["understood"]["abbreviations"] == []
    # Every word must match: the Penal Code article whose note speaks of labour exploitation.
    assert _labels(result) == ["Điều 150 Bộ luật Hình sự 100/2015/QH13"]


@freeze_time("2026-01-10")
def test_superseded_decree_is_marked_and_points_to_its_replacement(seeded):
    docs = _search("144/2021")["documents"]
    assert [d["number"] for d in docs] == ["144/2021/NĐ-CP", "282/2025/NĐ-CP"]
    old, new = docs
    assert old["status"]["code"] == "superseded"
    assert old["status"]["label_vi"] == "Hết hiệu lực, đã được thay thế: thay bằng 282/2025/NĐ-CP từ 15/12/2025"
    assert old["replacement"]["id"] == new["id"] and old["replacement"]["from"] == "2025-12-15"
    assert new["status"]["code"] == "in_force"


@freeze_time("2025-12-01")
def test_before_the_replacement_date_the_old_decree_is_still_in_force(seeded):
    old, new = _search("nđ 144")["documents"]
    assert old["status"]["code"] == "to_be_superseded" and old["status"]["current"] is True
    assert "thay bằng 282/2025/NĐ-CP từ 15/12/2025" in old["status"]["label_vi"]
    assert new["status"]["code"] == "not_yet_in_force"


@freeze_time("2026-03-01")
def test_law_02_2007_points_to_13_2022(seeded):
    docs = _search("02/2007")["documents"]
    assert [d["number"] for d in docs] == ["02/2007/QH12", "13/2022/QH15"]
    assert docs[0]["status"]["label_en"] == "Superseded: replaced by 13/2022/QH15 from 01 Jul 2023"
    # Searching the topic lists the law in force before the superseded one.
    numbers = [d["number"] for d in _search("phong chong bao luc gia dinh")["documents"]]
    assert numbers.index("13/2022/QH15") < numbers.index("02/2007/QH12")


def test_suggestions_for_picked_issue_codes(seeded):
    with session_scope() as session:
        result = suggest(session, issues=["trafficking.sexual"])
        labels = _labels(result)
        assert labels[0] == "Điều 150 Bộ luật Hình sự 100/2015/QH13"
        narrowed = suggest(session, issues=["dv"], q="cấm tiếp xúc")
        assert _labels(narrowed) == ["Điều 22 Luật 13/2022/QH15"]
        nothing = suggest(session, issues=["nc.silent"])
        assert nothing["articles"] == [] and nothing["message"]["en"] == "No article is tagged for these issues yet."


def test_reference_for_an_article(seeded):
    with session_scope() as session:
        article_id = search(session, "185 blhs")["articles"][0]["id"]
        ref = service.reference_for(session, article_id)
    assert ref["kind"] == "legal" and ref["ref_id"] == str(article_id)
    assert ref["label"].startswith("Điều 185 Bộ luật Hình sự 100/2015/QH13: Tội ngược đãi")
    with session_scope() as session, pytest.raises(service.LegalError, match="không có điều khoản mã 999999"):
        service.reference_for(session, 999999)


def test_unverified_facts_carry_their_mark(seeded):
    doc = _search("282/2025")["documents"][0]
    assert doc["verified"]["number"] is True
    assert doc["verified"]["in_force_on"] is False
    assert doc["status"]["verified"] is False
