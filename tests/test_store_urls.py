"""SQLite URLs as SQLAlchemy spells them, the same in Store.open and the CLI's --db:
``sqlite:///relative.db`` (relative to the current directory), ``sqlite:////abs/path.db``
(absolute), and a bare path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pushwire.store import Store, StoreInputError


@pytest.fixture
def cwd(tmp_path, monkeypatch) -> Path:
    here = tmp_path / "cwd"
    here.mkdir()
    monkeypatch.chdir(here)
    return here


def _opened(url: str) -> None:
    with Store.open(url) as store:
        store.put_application("ios", provider="apns", topic="com.example.app")


def test_three_slashes_is_relative_to_the_current_directory(cwd):
    _opened("sqlite:///relative.db")
    assert (cwd / "relative.db").is_file()
    assert not Path("/relative.db").exists()
    _opened("sqlite:///sub/../nested.db")
    assert (cwd / "nested.db").is_file()


def test_four_slashes_is_absolute(cwd, tmp_path):
    target = tmp_path / "elsewhere" / "abs.db"
    target.parent.mkdir()
    url = "sqlite:///" + str(target)
    assert url.startswith("sqlite:////")
    _opened(url)
    assert target.is_file()
    assert not (cwd / str(target).lstrip("/")).exists()
    with Store.open(url) as store:
        assert store.database.display_url == url
        assert [a.name for a in store.applications()] == ["ios"]


def test_a_bare_path_relative_or_absolute(cwd, tmp_path):
    _opened("bare.db")
    assert (cwd / "bare.db").is_file()
    _opened(str(tmp_path / "bare-abs.db"))
    assert (tmp_path / "bare-abs.db").is_file()
    with Store.open("bare.db") as store:
        assert store.database.display_url == "sqlite:///bare.db"


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "sqlite:////"])
def test_a_url_without_a_path_is_a_typed_error(url):
    with pytest.raises(StoreInputError, match="no path"):
        Store.open(url)


def test_a_host_is_refused_with_both_spellings_in_the_message():
    with pytest.raises(StoreInputError, match=r"sqlite:////abs/path\.db") as e:
        Store.open("sqlite://dbhost/store.db")
    assert e.value.field == "url"


def test_the_cli_db_option_reads_urls_the_same_way(cwd):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pushwire.cli",
            "endpoints",
            "add-app",
            "ios",
            "--provider",
            "apns",
            "--topic",
            "com.example.app",
            "--db",
            "sqlite:///cli.db",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (cwd / "cli.db").is_file()
    with Store.open(str(cwd / "cli.db")) as store:
        assert [a.name for a in store.applications()] == ["ios"]
