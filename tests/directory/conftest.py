"""Directory test helpers: run the CLI, load the sample file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hotline.cli import main

DATA = Path(__file__).parent / "data"


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    def run(*argv: str) -> tuple[int, str, str]:
        code = main(["--log-format", "console", *argv])
        out = capsys.readouterr()
        return code, out.out, out.err
    return run


@pytest.fixture
def loaded(env, cli):
    code, out, err = cli("directory", "import", str(DATA / "sample.csv"))
    assert code == 0, err
    code, out, err = cli("directory", "seed")
    assert code == 0, err
    return cli


def search_ids(cli, *argv: str) -> list[str]:
    code, out, err = cli("directory", "search", *argv, "--json")
    assert code == 0, err
    return [r["id"] for r in json.loads(out)["results"]]


def search_json(cli, *argv: str) -> dict:
    code, out, err = cli("directory", "search", *argv, "--json")
    assert code == 0, err
    return json.loads(out)


@pytest.fixture(autouse=True)
def _fresh_search_caches() -> None:
    """Each test starts with empty tables, so the per-process vocabulary cache starts empty too."""
    from directory.search import clear_caches

    clear_caches()
