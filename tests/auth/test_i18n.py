"""Every UI string of the accounts and web foundation has a Vietnamese translation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
OWN = ("hotline/web.py", "hotline/auth/", "hotline/templates/")


def test_every_string_here_is_translated_to_vietnamese(tmp_path: Path) -> None:
    pot = tmp_path / "own.pot"
    pybabel = Path(sys.executable).with_name("pybabel")
    subprocess.run([str(pybabel), "-q", "extract", "-F", "hotline/i18n/babel.cfg", "-k", "_tr:2", "-k", "N_",
                    "-o", str(pot), "hotline"], cwd=ROOT, check=True, capture_output=True)
    extracted = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(pot.open("rb"))
                 if m.id and any(path.startswith(OWN) for path, _line in m.locations)}
    assert len(extracted) > 80
    with (ROOT / "hotline/i18n/vi/LC_MESSAGES/messages.po").open("rb") as fh:
        vi = {(m.id if isinstance(m.id, str) else m.id[0]): m.string for m in read_po(fh, locale="vi") if m.id}
    missing = sorted(i for i in extracted if not vi.get(i) or (isinstance(vi[i], tuple) and not all(vi[i])))
    assert not missing, f"run hotline/i18n/extract.sh and translate these in vi/…/messages.po: {missing}"


def test_catalogue_compiles_from_po_when_mo_is_missing(tmp_path: Path) -> None:
    import shutil

    from hotline import i18n

    folder = tmp_path / "vi" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    shutil.copy(ROOT / "hotline/i18n/vi/LC_MESSAGES/messages.po", folder / "messages.po")
    original = i18n.HERE
    try:
        i18n.HERE = tmp_path
        i18n.reload()
        assert i18n.translator("vi")("Sign in") == "Đăng nhập"
        assert (folder / "messages.mo").exists()
        assert i18n.translator("en")("Sign in") == "Sign in"
        assert i18n.translator("fr-FR")("Sign in") == "Đăng nhập"  # unknown languages fall back to Vietnamese
    finally:
        i18n.HERE = original
        i18n.reload()
