"""``hotline legal …`` through hotline.cli.main, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import shutil

from sqlalchemy import func, select

from hotline.cli import main
from hotline.db import session_scope
from legal_library.models import LegalArticle, LegalDocument, LegalTerm, LegalVersion


def test_search_json_and_text(seeded, capsys):
    assert main(["legal", "search", "điều", "185", "blhs", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["articles"][0]["label"] == "Điều 185 Bộ luật Hình sự 100/2015/QH13"
    assert main(["legal", "search", "nđ 144"]) == 0
    text = capsys.readouterr().out
    assert "thay bằng 282/2025/NĐ-CP" in text and "[chưa kiểm chứng / unverified]" in text
    assert main(["legal", "search", "không có gì như thế này"]) == 1
    assert "Không tìm thấy kết quả" in capsys.readouterr().out


def test_unknown_issue_is_a_user_error(seeded, capsys):
    assert main(["legal", "search", "x", "--issue", "dv.nothing"]) == 2
    assert "Mã vấn đề không có: 'dv.nothing'" in capsys.readouterr().err


def test_import_makes_a_draft_then_publish_keeps_the_earlier_version(env, samples, capsys):
    path = samples / "luat_mau.txt"
    assert main(["legal", "import", str(path), "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["state"] == "draft" and first["document"] == "99/2030/QH99"
    assert first["report"]["articles"] == 5
    # A draft is not searchable until it is published.
    assert main(["legal", "search", "cấm tiếp xúc", "--json"]) == 1
    capsys.readouterr()
    assert main(["legal", "publish", str(first["version_id"])]) == 0
    assert "đã công bố phiên bản #" in capsys.readouterr().out
    assert main(["legal", "search", "cấm tiếp xúc 99/2030", "--json"]) == 0
    hit = json.loads(capsys.readouterr().out)["articles"][0]
    assert hit["label"] == "Điều 3 Luật 99/2030/QH99"
    # Import again, publish at once: the first version is archived, not deleted.
    assert main(["legal", "import", str(path), "--publish", "--json"]) == 0
    second = json.loads(capsys.readouterr().out)
    with session_scope() as session:
        states = dict(session.execute(select(LegalVersion.version_no, LegalVersion.state)).all())
        assert states == {1: "archived", 2: "published"}
        assert session.scalar(select(func.count(LegalArticle.id))) == 10
        current = session.scalar(select(func.count(LegalArticle.id)).where(LegalArticle.is_current.is_(True)))
        assert current == 5
        indexed = session.scalar(select(func.count(func.distinct(LegalTerm.article_id))))
        assert indexed == 5  # only the current articles are indexed
    assert second["version_id"] != first["version_id"]
    assert main(["legal", "publish", str(first["version_id"])]) == 2
    assert "chỉ bản nháp mới được công bố" in capsys.readouterr().err


def test_import_reports_duplicates_and_refuses_to_publish_them(env, samples, capsys):
    assert main(["legal", "import", str(samples / "trung_lap.txt")]) == 0
    out = capsys.readouterr().out
    assert "! Điều 2 trùng số ở các dòng [7, 12]" in out
    assert "? dòng 4: khoản nằm ngoài điều: " in out
    with session_scope() as session:
        version_id = session.scalar(select(LegalVersion.id))
    assert main(["legal", "publish", str(version_id)]) == 2
    assert "bản nháp có số điều bị trùng (2)" in capsys.readouterr().err


def test_import_refusals(env, samples, tmp_path, capsys):
    assert main(["legal", "import", str(samples / "khong_phai_luat.txt")]) == 2
    assert "không giống văn bản pháp luật" in capsys.readouterr().err
    nameless = tmp_path / "khong_so.txt"
    nameless.write_text("Điều 1. Phạm vi\nNội dung.\n", encoding="utf-8")
    assert main(["legal", "import", str(nameless)]) == 2
    assert "--document" in capsys.readouterr().err
    assert main(["legal", "import", str(nameless), "--document", "95/2030/QH99"]) == 0
    assert main(["legal", "import", str(tmp_path / "missing.txt")]) == 2
    with session_scope() as session:
        assert session.scalar(select(func.count(LegalDocument.id))) == 1


def test_html_import(env, samples, tmp_path, capsys):
    copy = tmp_path / "nd.html"
    shutil.copy(samples / "nghi_dinh_mau.html", copy)
    assert main(["legal", "import", str(copy), "--publish", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["document"] == "98/2030/NĐ-CP" and out["report"]["points"] == 3
    with session_scope() as session:
        doc = session.scalar(select(LegalDocument))
        assert doc.doc_type == "decree"


def test_seed_is_idempotent_and_export_round_trips(env, tmp_path, capsys):
    assert main(["legal", "seed"]) == 0
    assert main(["legal", "seed"]) == 0
    assert "0 new versions" in capsys.readouterr().out
    out = tmp_path / "library.json"
    assert main(["legal", "export", "--out", str(out)]) == 0
    data = json.loads(out.read_text("utf-8"))
    penal = next(d for d in data["documents"] if d["number"] == "100/2015/QH13")
    art185 = next(a for a in penal["articles"] if a["number"] == "185")
    assert "dv.physical" in art185["issues"] and art185["note"]["next_step_vi"]
    decree = next(d for d in data["documents"] if d["number"] == "144/2021/NĐ-CP")
    assert (decree["superseded_by"], decree["superseded_from"]) == ("282/2025/NĐ-CP", "2025-12-15")
    # Loading the export back changes nothing.
    assert main(["legal", "seed", "--file", str(out)]) == 0
    assert "16 documents (0 new), 0 new versions" in capsys.readouterr().out
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "something else", "documents": []}), encoding="utf-8")
    assert main(["legal", "seed", "--file", str(bad)]) == 2
    assert "not a legal library file" in capsys.readouterr().err


def test_export_to_stdout(seeded, capsys):
    assert main(["legal", "export"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["format"] == "hotline-legal-library" and len(data["documents"]) == 16
