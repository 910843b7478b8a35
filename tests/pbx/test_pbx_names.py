"""Naming the PBX of a centre and of a line (several PBXes): the administrators' line page, the
``hotline centre`` CLI, and ``hotline check`` listing each PBX and where each centre's calls go."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from hotline.calls.models import Call, CallKey
from hotline.centres.models import Centre, Line
from hotline.cli import main
from hotline.db import session_scope
from hotline.ingest.providers.asterisk.simulator import AmiServer
from hotline.settings import reset_settings
from tests.helpers import create_user, login
from tests.routing.conftest import PASSWORD, centres  # noqa: F401 - a fixture

SECRET = "ami-secret-for-pbx-names"


@pytest.fixture
def admin(client, centres):  # noqa: F811 - the fixture imported above
    create_user("admin", PASSWORD, "administrator")
    return login(client, "admin", PASSWORD)


def _form(csrf: str, **extra: str) -> dict[str, str]:
    return {"csrf_token": csrf, "overflow_centre": "", "overflow_wait": "", "always_open": "1",
            "closed_on_holidays": "1", "closed_dates": "", "closed_message": "callback", **extra}


def test_an_administrator_names_a_lines_pbx_and_a_bad_name_is_refused(client, admin, centres):  # noqa: F811
    line_id = centres["number_line"]
    page = client.get(f"/admin/lines/{line_id}")
    assert page.status_code == 200 and "Tổng đài (PBX)" in page.text and 'name="pbx"' in page.text
    bad = client.post(f"/admin/lines/{line_id}", data=_form(admin, pbx="pbx bắc; rm"), follow_redirects=False)
    assert bad.status_code == 422 and "Tên tổng đài là tên dịch vụ nghe" in bad.text
    ok = client.post(f"/admin/lines/{line_id}", data=_form(admin, pbx="north"), follow_redirects=False)
    assert ok.status_code == 303
    with session_scope() as db:
        assert db.get(Line, line_id).pbx == "north"
    listing = client.get("/admin/lines").text
    assert "north" in listing and "bất kỳ" in listing  # the other lines: any PBX
    cleared = client.post(f"/admin/lines/{line_id}", data=_form(admin, pbx=""), follow_redirects=False)
    assert cleared.status_code == 303
    with session_scope() as db:
        assert db.get(Line, line_id).pbx == ""


def test_the_cli_names_a_centres_pbx(env, centres, capsys):  # noqa: F811
    assert main(["centre", "pbx", "hcm", "south"]) == 0
    assert "PBX south" in capsys.readouterr().out
    assert main(["centre", "pbx", "hcm", "bad name"]) != 0
    assert "invalid PBX name" in capsys.readouterr().err
    assert main(["centre", "add", "dn", "Trung tâm Đà Nẵng", "--pbx", "central"]) == 0
    assert main(["centre", "list", "--json"]) == 0
    listed = {c["code"]: c["pbx"] for c in json.loads(capsys.readouterr().out.split("\n", 1)[1])}
    assert listed["hcm"] == "south" and listed["dn"] == "central"
    assert main(["centre", "pbx", "hcm"]) == 0  # no name: any PBX again
    with session_scope() as db:
        assert db.query(Centre).filter_by(code="hcm").one().pbx == ""


def _asterisk_call(linkedid: str) -> None:
    with session_scope() as db:
        call = Call(provider="asterisk", provider_key=linkedid, centre_id=db.query(Centre).filter_by(code="hcm").one().id,
                    received_at=datetime.now(timezone.utc), status="completed")
        db.add(call)
        db.flush()
        db.add(CallKey(provider="asterisk", key=linkedid, kind="call", call_id=call.id))


def _pbx_routing(capsys) -> dict:
    capsys.readouterr()
    main(["check", "--json"])
    [routing] = [c for c in json.loads(capsys.readouterr().out)["checks"] if c["name"] == "pbx-routing"]
    return routing


def test_check_lists_each_pbx_and_where_each_centres_calls_go(tmp_path: Path, env, centres, monkeypatch,  # noqa: F811
                                                              capsys):
    folder = tmp_path / "pbx"
    folder.mkdir()
    with AmiServer(username="hotline", secret=SECRET) as north, AmiServer(username="hotline", secret=SECRET) as south:
        for name, server in (("north", north), ("south", south)):
            (folder / f"{name}.env").write_text(f"HOTLINE_AMI_HOST=127.0.0.1\nHOTLINE_AMI_PORT={server.port}\n"
                                                f"HOTLINE_AMI_USERNAME=hotline\nHOTLINE_AMI_SECRET={SECRET}\n")
        monkeypatch.setenv("HOTLINE_AMI_PBX_DIR", str(folder))
        reset_settings()
        main(["check", "--json"])
        checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
        assert checks["ami:north"]["status"] == checks["ami:south"]["status"] == "ok"
        assert north.logins == south.logins == 1
        # two PBXes, and the default centre (with Asterisk lines) names none: said, with what to do
        assert checks["pbx-routing"]["status"] == "warn"
        assert "names none" in checks["pbx-routing"]["message"]
        assert main(["centre", "pbx", "default", "north"]) == 0
        assert main(["centre", "pbx", "hcm", "east"]) == 0
        capsys.readouterr()
        main(["check", "--json"])
        routing = [c for c in json.loads(capsys.readouterr().out)["checks"] if c["name"] == "pbx-routing"]
        assert [c["status"] for c in routing] == ["warn"]
        assert "centre hcm names PBX 'east'" in routing[0]["message"] and "hotline-ami@east" in routing[0]["fix"]
        assert main(["centre", "pbx", "hcm", "south"]) == 0
        capsys.readouterr()
        main(["check", "--json"])
        [routing_ok] = [c for c in json.loads(capsys.readouterr().out)["checks"] if c["name"] == "pbx-routing"]
        assert routing_ok["status"] == "ok" and routing_ok["details"]["centres"] == {"default": "north", "hcm": "south"}
        # calls whose Linkedids do not name their PBX (no systemname): two PBXes may number two callers alike
        _asterisk_call("south-1796460243.0")
        assert _pbx_routing(capsys)["status"] == "ok"
        _asterisk_call("1796460243.0")
        warned = _pbx_routing(capsys)
        assert warned["status"] == "warn" and "1796460243.0" in warned["message"]
        assert "systemname" in warned["fix"]
