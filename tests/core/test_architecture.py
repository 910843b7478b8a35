"""The layout rules of ARCHITECTURE.md, checked on the source: core never imports a domain (only the
composition root, ``hotline/domains.py``, does), every domain is declared there once, and a domain
keeping personal data declares its retention step."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOMAIN_PACKAGES = ("directory", "legal_library", "referral", "daily_log", "webhooks", "blocking", "callbacks")
COMPOSITION_ROOT = ROOT / "hotline" / "domains.py"

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _core_files() -> list[Path]:
    return sorted(p for p in (ROOT / "hotline").rglob("*.py") if p != COMPOSITION_ROOT)


def _domain_imports(path: Path, root: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            # importlib.import_module("referral.views"), util.find_spec("directory"): a hidden import
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ("import_module", "find_spec", "__import__") and isinstance(node.args[0].value, str):
                names = [node.args[0].value]
        for name in names:
            if name.split(".")[0] in DOMAIN_PACKAGES:
                found.append(f"{path.relative_to(root)}:{node.lineno}: {name}")
    return found


def test_core_imports_no_domain_except_the_composition_root(env) -> None:
    offending = [hit for path in _core_files() for hit in _domain_imports(path)]
    assert offending == [], "core must reach domains through hotline/domains.py only:\n" + "\n".join(offending)


def test_no_find_spec_guessing(env) -> None:
    """A domain missing or misspelt fails loudly instead of being skipped."""
    guessing = [str(p.relative_to(ROOT)) for p in _core_files() if "find_spec" in p.read_text(encoding="utf-8")]
    assert guessing == []


def test_the_architecture_check_catches_a_domain_import(env, tmp_path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import json\nfrom referral import service\ndef f():\n    import importlib\n"
                   "    return importlib.import_module('directory.views')\n", encoding="utf-8")
    hits = _domain_imports(bad, tmp_path)
    assert [h.split(": ")[1] for h in hits] == ["referral", "directory.views"]


def test_every_domain_package_is_declared_once(env) -> None:
    from hotline import domains

    names = [d.name for d in domains.DOMAINS]
    assert len(names) == len(set(names))
    packages = {d.package.__name__ for d in domains.DOMAINS}
    assert set(DOMAIN_PACKAGES) <= packages
    # every package with a migrations folder has its branch wired, and nothing else
    on_disk = {p.parent.name for p in ROOT.glob("*/migrations") if p.parent.name in DOMAIN_PACKAGES}
    assert {d.package.__name__ for d in domains.DOMAINS if d.own_migrations} == on_disk
    # every package with its own catalogue has it merged in
    with_po = {".".join(p.parent.parent.relative_to(ROOT).parts) for p in ROOT.glob("**/i18n/vi.po")
               if ".venv" not in p.parts}
    assert with_po <= set(domains.catalogue_packages())


# Personal data: what a caller said (encrypted free text) or who they are (numbers, names).
PERSONAL_NAMES = re.compile(r"^(caller_?(number|name|id)?|phone_number|msisdn|full_name|notes?)$")
# Core's own tables (call records, calls, raw provider events, dead letters) are purged by
# hotline.security.service.run_retention itself, not by a declared step.
RETAINED_BY_CORE = {"hotline"}


def _personal_columns(module: object) -> list[str]:
    from hotline.db import EncryptedBytes, EncryptedJSON, EncryptedText

    out = []
    for obj in vars(module).values():
        table = getattr(obj, "__table__", None)
        if table is None or getattr(obj, "__module__", None) != getattr(module, "__name__", None):
            continue
        for col in table.columns:
            if isinstance(col.type, (EncryptedText, EncryptedBytes, EncryptedJSON)) or PERSONAL_NAMES.match(col.name):
                out.append(f"{table.name}.{col.name}")
    return out


def test_a_domain_with_personal_data_declares_a_retention_step(env) -> None:
    from hotline import domains

    missing = {}
    for domain in domains.DOMAINS:
        personal = [c for m in domain.models for c in _personal_columns(m)]
        if personal and domain.name not in RETAINED_BY_CORE and not domain.wiring.retention:
            missing[domain.name] = personal
    assert missing == {}, f"domains keeping personal data without a retention step: {missing}"


def test_the_retention_check_sees_personal_tables(env) -> None:
    from hotline import domains

    referral = next(d for d in domains.DOMAINS if d.name == "referral")
    assert any(c.startswith("referral_referrals.") for m in referral.models for c in _personal_columns(m))
    assert [s.name for s in referral.wiring.retention] == ["referrals"]
