"""``hotline legal …``: search, import, export and seed the legal library."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hotline.cli import CliError
from hotline.db import session_scope
from hotline.i18n import Text, current_language, translator
from legal_library import service
from legal_library.importer import ImportRefused
from legal_library.search import search


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    legal = sub.add_parser("legal", help="legal quick-reference: search, import, export, seed")
    ls = legal.add_subparsers(dest="legal_command", required=True)
    p = ls.add_parser("search", help="find documents and articles (13/2022, nđ 76, điều 185 blhs, bạo lực…)")
    p.add_argument("query", nargs="+")
    p.add_argument("--issue", action="append", default=[], help="only articles tagged for this issue code")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_search)
    p = ls.add_parser("import", help="import the full text of a document (plain text or saved HTML) as a draft")
    p.add_argument("path")
    p.add_argument("--document", help="the document number, when the text does not show it (13/2022/QH15)")
    p.add_argument("--publish", action="store_true", help="publish at once instead of leaving a draft for review")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_import)
    p = ls.add_parser("publish", help="publish a reviewed draft version")
    p.add_argument("version_id", type=int)
    p.set_defaults(handler=cmd_publish)
    p = ls.add_parser("export", help="write the whole library (documents, structure, notes, tags) as JSON")
    p.add_argument("--out", help="file to write; standard output when omitted")
    p.set_defaults(handler=cmd_export)
    p = ls.add_parser("seed", help="load the starter library (idempotent)")
    p.add_argument("--file", help="load this library file instead of the starter library")
    p.set_defaults(handler=cmd_seed)


def _print_result(result: dict[str, Any]) -> None:
    for d in result["documents"]:
        status = d["status"]
        mark = "" if status["verified"] else f" [{service.UNVERIFIED[0]} / {service.UNVERIFIED[1]}]"
        print(f"{d['label']}: {d['title_vi']}")
        print(f"    {status['label_vi']} / {status['label_en']}{mark}")
    for a in result["articles"]:
        mark = "" if a["heading_verified"] else f" [{service.UNVERIFIED[0]}]"
        doc = a["document"]
        print(f"#{a['id']} {a['label']}. {a['heading']}{mark}")
        if a["note"]:
            nmark = "" if a["note"]["verified"] else f" [{service.UNVERIFIED[0]}]"
            print("    " + str(Text("Meaning%(mark)s: %(text)s", mark=nmark, text=a["note"]["meaning_vi"])))
            if a["note"]["next_step_vi"]:
                print("    " + str(Text("What to do: %(text)s", text=a["note"]["next_step_vi"])))
        if doc["status"]["code"] != "in_force":
            print(f"    ! {doc['status']['label_vi']} / {doc['status']['label_en']}")
    if result["message"]:
        print(translator(current_language.get())(result["message"]["en"]))  # the msgid, in the current language


def cmd_search(args: argparse.Namespace) -> int:
    query = " ".join(args.query)
    try:
        with session_scope() as session:
            result = search(session, query, issues=args.issue, limit=args.limit)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    if args.json:
        json.dump(result, sys.stdout, ensure_ascii=False, indent=1)
        print()
    else:
        _print_result(result)
    return 0 if result["documents"] or result["articles"] else 1


def cmd_import(args: argparse.Namespace) -> int:
    path = Path(args.path)
    if not path.is_file():
        raise CliError(str(Text("%(path)s is not a file", path=str(path))))
    try:
        with session_scope() as session:
            result = service.import_text(session, data=path.read_bytes(), filename=path.name,
                                         document_number=args.document, created_by="cli",
                                         publish_now=args.publish)
            version_id, state, number = result.version.id, result.version.state, result.document.number
    except (ImportRefused, service.LegalError) as exc:
        raise CliError(f"{path.name}: {exc}") from exc
    report = result.report
    if args.json:
        json.dump({"version_id": version_id, "state": state, "document": number, "report": report},
                  sys.stdout, ensure_ascii=False, indent=1)
        print()
    else:
        print(f"{number}: " + str(Text("version #%(version)s (%(state)s)", version=version_id, state=state)))
        print("  " + str(Text("%(chapters)d chapters, %(sections)d sections, %(articles)d articles, %(clauses)d "
                              "clauses, %(points)d points", **{k: report[k] for k in
                                                              ("chapters", "sections", "articles", "clauses", "points")})))
        for d in report["duplicates"]:
            print("  ! " + str(Text("Điều %(number)s: duplicated article number at lines %(lines)s",
                                    number=d["number"], lines=str(d["lines"]))))
        for u in report["unplaced"]:
            print("  ? " + str(Text("line %(line)s: %(reason)s: %(text)s", line=u["line"],
                                    reason=service.report_reason(u), text=u["text"][:80])))
        for w in report["warnings"]:
            print("  ~ " + str(Text("line %(line)s: %(reason)s", line=w["line"], reason=service.report_reason(w))))
        if state == "draft":
            print("  " + str(Text("Review it at %(url)s, then publish (%(command)s)",
                                  url=f"/legal/admin/versions/{version_id}",
                                  command=f"hotline legal publish {version_id}")))
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    try:
        with session_scope() as session:
            version = service.publish(session, version_id=args.version_id, actor="cli")
            print(Text("published version #%(version)s", version=version.id))
    except service.LegalError as exc:
        raise CliError(str(exc)) from exc
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    with session_scope() as session:
        data = service.export_library(session)
    text = json.dumps(data, ensure_ascii=False, indent=1) + "\n"
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"{len(data['documents'])} documents written to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    try:
        with session_scope() as session:
            if args.file:
                try:
                    data = json.loads(Path(args.file).read_text(encoding="utf-8"))
                except (OSError, json.JSONDecodeError) as exc:
                    raise CliError(f"{args.file}: cannot read a JSON library file ({exc})") from exc
                counts = service.load_library(session, data=data)
            else:
                counts = service.seed(session)
    except ValidationError as exc:
        raise CliError(f"the library file is not valid: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from exc
    print(f"{counts['documents']} documents ({counts['created']} new), {counts['versions']} new versions, "
          f"{counts['articles']} articles, {counts['notes']} notes, {counts['tags']} tags")
    return 0
