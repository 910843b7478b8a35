"""The importer on texts laid out like official ones (our own samples), and on bad input."""

from __future__ import annotations

import pytest

from legal_library import importer
from legal_library.importer import ImportRefused, parse
from legal_library.service import report_reason


def test_plain_text_is_split_into_chapters_sections_articles_clauses_and_points(samples):
    parsed = parse((samples / "luat_mau.txt").read_text("utf-8"))
    assert parsed.number == "99/2030/QH99"
    assert parsed.title == "LUẬT PHÒNG, CHỐNG BẠO LỰC MẪU"
    assert [a.number for a in parsed.articles] == ["1", "2", "3", "4", "5"]
    report = parsed.report()
    assert (report["chapters"], report["sections"], report["clauses"], report["points"]) == (2, 2, 5, 6)
    assert report["unplaced"] == [] and report["duplicates"] == [] and report["warnings"] == []
    art2 = parsed.articles[1]
    assert (art2.heading, art2.chapter, art2.chapter_title) == ("Hành vi bạo lực mẫu", "I", "NHỮNG QUY ĐỊNH CHUNG")
    assert [p.letter for p in art2.clauses[0].points] == ["a", "b", "c", "d", "đ", "e"]
    assert art2.clauses[0].points[4].text == "Kiểm soát thu nhập để tạo ra sự phụ thuộc;"
    art3, art4 = parsed.articles[2], parsed.articles[3]
    assert (art3.chapter, art3.section, art3.section_title) == ("II", "1", "BIỆN PHÁP BẢO VỆ")
    assert (art4.section, art4.section_title) == ("2", "HỖ TRỢ NGƯỜI BỊ BẠO LỰC")
    assert art4.body == "Người bị bạo lực được trợ giúp pháp lý miễn phí theo quy định."
    # The signature block ends the body: the signer's name is not glued to the last article.
    assert "Nguyễn" not in parsed.articles[-1].clauses[-1].text


def test_saved_html_is_read_without_scripts_and_with_entities_decoded(samples):
    parsed = parse((samples / "nghi_dinh_mau.html").read_text("utf-8"))
    assert parsed.number == "98/2030/NĐ-CP"
    assert [a.number for a in parsed.articles] == ["1", "2", "3"]  # not the "Điều 99" inside <script>
    art2 = parsed.articles[1]
    assert art2.clauses[0].text == '"Địa chỉ tin cậy" là nơi tạm lánh an toàn & kín đáo.'
    assert [p.letter for p in art2.clauses[1].points] == ["a", "b", "c"]
    assert parsed.articles[2].heading == "Tổng đài 111"


def test_duplicates_are_reported_not_merged_and_unplaced_lines_are_reported_and_kept(samples):
    parsed = parse((samples / "trung_lap.txt").read_text("utf-8"))
    assert parsed.duplicates == [{"number": "2", "lines": [7, 12]}]
    assert [(a.number, a.heading, a.duplicate) for a in parsed.articles] == [
        ("1", "Phạm vi", False), ("2", "Đối tượng", True), ("2", "Đối tượng lặp lại", True)]
    # Reasons are kept as English msgids with their values, shown in the reader's language.
    reasons = {u["line"]: report_reason(u).translate("en") for u in parsed.unplaced}
    assert "clause outside any article" in reasons[4]
    assert "not a Vietnamese point letter" in reasons[11]
    # Kept, not lost: the "f)" line stays in the text of the point before it.
    assert "f) Ký hiệu điểm" in parsed.articles[1].clauses[0].points[-1].text
    assert any("point c) in Điều 2 where b) was expected" in report_reason(w).translate("en") for w in parsed.warnings)
    assert any("điểm c) của Điều 2 không đúng thứ tự (mong đợi b))" in report_reason(w).translate("vi")
               for w in parsed.warnings)


def test_a_text_without_articles_is_refused_with_the_reason(samples):
    with pytest.raises(ImportRefused, match="không tìm thấy dòng “Điều N.”"):
        parse((samples / "khong_phai_luat.txt").read_text("utf-8"))
    with pytest.raises(ImportRefused, match="tệp rỗng"):
        parse("   \n\n")


def test_a_file_that_is_not_utf8_is_refused():
    with pytest.raises(ImportRefused, match="không phải văn bản UTF-8"):
        importer.decode("Điều 1. Phạm vi".encode("cp1258", errors="replace") + b"\xff\xfe\x00"[1:])
    assert importer.decode("\ufeffĐiều 1.".encode("utf-8")) == "Điều 1."


@pytest.mark.parametrize("letters", [importer.POINT_LETTERS])
def test_vietnamese_point_letters_are_read_in_order(letters):
    body = "\n".join(f"{ch}) điểm {ch};" for ch in letters)
    parsed = parse(f"Luật số: 1/2030/QH99\nĐiều 1. Thử\n1. Khoản:\n{body}")
    assert [p.letter for p in parsed.articles[0].clauses[0].points] == letters
    assert parsed.warnings == [] and parsed.unplaced == []
