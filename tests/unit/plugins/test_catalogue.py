# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The known articles: the collection's roles and the user's directories (``kbfix_article_paths``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import ArgumentError
from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks import article_runner, catalogue

ROLES = Path(__file__).resolve().parents[3] / "roles"
KB828753 = ROLES / "kb828753" / "files" / "kb828753.yml"


def own_spec(article_id: str) -> dict[str, Any]:
    """The KB828753 spec under another id: a user's article of the same shape."""
    data: dict[str, Any] = yaml.safe_load(KB828753.read_text(encoding="utf-8"))
    data["article"]["id"] = article_id
    data["hotfix"]["ids"] = [article_id]
    return data


def write(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def user_dir(tmp_path: Path) -> Path:
    write(tmp_path / "articles" / "kb900001" / "files" / "kb900001.yml", own_spec("KB900001"))  # an article role
    write(tmp_path / "articles" / "kb900002.yml", own_spec("KB900002"))  # a spec file
    write(tmp_path / "articles" / "notes.yml", {"not": "a spec"})  # not named like an article: not read
    return tmp_path / "articles"


def test_user_articles_sit_beside_the_collections(user_dir: Path, tmp_path: Path) -> None:
    dirs = catalogue.article_dirs(["articles"], tmp_path)  # relative: from the playbook's directory
    known = catalogue.known_articles(ROLES, dirs)
    assert sorted(known) == ["KB253729", "KB828753", "KB900001", "KB900002", "KB938475", "KB977381"]
    role, spec = known["KB900001"], known["KB900002"]
    assert (role.origin, role.prefix, role.search_dir) == ("user", "kb900001", str(user_dir))
    assert (spec.origin, spec.prefix, spec.path) == ("user", "kb900002", user_dir / "kb900002.yml")
    assert known["KB828753"].to_dict() == {
        "id": "KB828753", "title": known["KB828753"].title, "path": str(KB828753), "origin": "collection",
        "search_dir": None, "variables": ["kb828753_reconnectable_servers", "kb828753_reconnect_timeout"]}


def test_a_user_article_named_by_id_reads_its_own_host_variables(user_dir: Path) -> None:
    known = catalogue.known_articles(ROLES, [user_dir])
    asked: list[str] = []
    request = catalogue.article_request(known, "kb900002", "articles[0]", {}, lambda n: asked.append(n))
    assert request.spec == user_dir / "kb900002.yml"
    assert asked == ["kb900002_reconnectable_servers", "kb900002_reconnect_timeout"]
    with pytest.raises(ArgumentError, match=r"'KB900003' is not a known article .*kbfix_article_paths"):
        catalogue.article_request(known, "KB900003", "articles[0]", {}, lambda n: None)


def test_all_stands_for_every_article_not_named_otherwise(user_dir: Path) -> None:
    known = catalogue.known_articles(ROLES, [user_dir])
    expanded = catalogue.expand_all(["kb900002", "ALL", "local.yml"], known)
    assert expanded[0] == ("articles[0]", "kb900002") and expanded[-1] == ("articles[2]", "local.yml")
    assert [item for _label, item in expanded[1:-1]] == ["KB253729", "KB828753", "KB900001", "KB938475", "KB977381"]
    assert expanded[1][0] == "articles[1](KB253729)"
    requests = [catalogue.article_request(known, item, label, {}, lambda n: None)
                for label, item in expanded[:-1]]
    prepared = article_runner.prepare(requests, {})
    assert sorted(p.id for p in prepared) == ["KB253729", "KB828753", "KB900001", "KB900002", "KB938475",
                                             "KB977381"]


def test_a_path_that_is_not_a_directory_fails_naming_it(tmp_path: Path) -> None:
    (tmp_path / "file.yml").write_text("x", encoding="utf-8")
    for value, message in ((["missing"], "'missing' is not a directory (relative to"),
                           ([str(tmp_path / "file.yml")], "file.yml' is not a directory"),
                           ([""], "must be a directory path"), ({"a": 1}, "must be a list of directories")):
        with pytest.raises(ArgumentError, match=re.escape(message)) as caught:
            catalogue.article_dirs(value, tmp_path)
        assert caught.value.field.startswith("kbfix_article_paths")
    assert catalogue.article_dirs(str(tmp_path), Path("/")) == [tmp_path.resolve()]  # one directory, as a string
    assert catalogue.article_dirs(None, tmp_path) == []


def test_an_article_found_twice_fails_naming_both_places(user_dir: Path, tmp_path: Path) -> None:
    other = write(tmp_path / "more" / "kb900001.yml", own_spec("KB900001"))
    with pytest.raises(ArgumentError) as caught:
        catalogue.known_articles(ROLES, [user_dir, tmp_path / "more"])
    assert caught.value.field == "kbfix_article_paths"
    assert caught.value.message == (f"KB900001 is found twice: {user_dir / 'kb900001' / 'files' / 'kb900001.yml'} "
                                    f"and {other}; keep one")
    mine = write(tmp_path / "mine" / "kb828753.yml", own_spec("KB828753"))
    twice = f"KB828753 is found twice: {KB828753} (this collection) and {mine}"
    with pytest.raises(ArgumentError, match=re.escape(twice)):
        catalogue.known_articles(ROLES, [tmp_path / "mine"])


def test_a_spec_that_does_not_load_fails_naming_the_file(user_dir: Path) -> None:
    broken = own_spec("KB900009")
    broken["files"][0]["version"] = "5.1"
    path = write(user_dir / "kb900009.yml", broken)
    with pytest.raises(ArgumentError) as caught:
        catalogue.known_articles(ROLES, [user_dir])
    assert caught.value.field == "kbfix_article_paths[0]"
    assert caught.value.message.startswith(f"{path}: kb900009.yml: files[0].version:")
