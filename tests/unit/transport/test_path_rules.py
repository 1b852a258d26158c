# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One set of path rules for every path argument (issue 15 item 4): file_version paths, hotfix source,
kb_article package_source, and the directories of article specs."""

from __future__ import annotations

import pytest

from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import ArgumentError
from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks import file_check, installer
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport import escape

BAD = [
    ('C:\\Windows\\"x.dll', '\'"\''),
    ("C:\\Windows\\..\\x.dll", "'..'"),
    ("C:\\Windows\\.\\x.dll", "'..'"),
    ("C:/Windows/../x.dll", "'..'"),
    ("C:\\Windows\\x.dll\x00.txt", "control character"),
    ("C:\\Windows\\x.dll\r\n", "control character"),
    ("C:\\Windows\\\\x.dll", "empty path segment"),
    ("C:\\Windows\\x.dll:stream", "':'"),
    ("C:\\Windows\\x?.dll", "'?'"),
    ("C:\\Windows\\x*.dll", "'*'"),
    ("C:\\Windows\\x|y.dll", "'|'"),
    ("C:\\Windows\\x<y.dll", "'<'"),
    ("Windows\\x.dll", "not an absolute path"),
]


@pytest.mark.parametrize(("path", "reason"), BAD)
def test_file_version_paths_follow_the_shared_rules(path: str, reason: str) -> None:
    with pytest.raises(ArgumentError) as info:
        file_check.check_paths(["C:\\ok.dll", path])
    assert info.value.field == "paths[1]"
    assert reason in str(info.value)


@pytest.mark.parametrize(("path", "reason"), [*BAD, ("C:\\pkgs\\100%.msu", "'%'")])
def test_package_sources_follow_the_same_rules(path: str, reason: str) -> None:
    if reason == "not an absolute path":
        reason = "not a host path"  # a relative path is a controller path
    for field in ("source", "package_source"):
        with pytest.raises(ArgumentError) as info:
            installer.remote_location(path, field)
        assert info.value.field == field
        assert reason in str(info.value)


def test_unc_sources_follow_the_same_rules() -> None:
    for path in ("\\\\srv\\share\\..\\c$\\x.msu", '\\\\srv\\share\\"x.msu', "\\\\srv\\\\x.msu", "\\\\\\share"):
        with pytest.raises(ArgumentError) as info:
            installer.remote_location(path, "source")
        assert info.value.field == "source"
    assert installer.remote_location("\\\\srv\\share\\kb/x.msu", "source").path == "\\\\srv\\share\\kb\\x.msu"


def test_wql_wildcards_are_allowed_where_the_path_travels_only_in_wql_literals() -> None:
    # file_version sends paths only as CIM_DataFile Name='...' equality, where % and _ are literal.
    assert file_check.check_paths(["C:\\kbfix\\a_b%c.dll", "%SystemRoot%\\system32\\x_y.dll"]) == [
        "C:\\kbfix\\a_b%c.dll", "%SystemRoot%\\system32\\x_y.dll"]
    assert escape.wql_string("C:\\kbfix\\a_b%c.dll") == "'C:\\\\kbfix\\\\a_b%c.dll'"


def test_good_paths_are_normalised() -> None:
    assert escape.host_path("C:/Windows/System32/") == "C:\\Windows\\System32\\"
    assert escape.host_path(" C:\\x.dll ") == "C:\\x.dll"
    assert escape.host_path("%SystemRoot%\\x.dll", variables=True) == "%SystemRoot%\\x.dll"
    with pytest.raises(ArgumentError, match="UNC"):
        escape.host_path("\\\\srv\\share\\x.dll", "paths[0]", unc=False)
    with pytest.raises(ArgumentError, match="not an absolute path"):
        escape.host_path("%SystemRoot%\\x.dll", "source")
