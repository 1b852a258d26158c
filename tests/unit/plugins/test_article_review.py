# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a spec leaves for a person reaches the task result: rows printed twice and review items are warnings,
and a package whose file is the importer's REVIEW- placeholder is audited but never installed."""

from __future__ import annotations

import copy
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from ansible_collections.kbfix.windows.plugins.plugin_utils import errors
from ansible_collections.kbfix.windows.plugins.plugin_utils.article import engine, snapshot
from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks import article_runner, installer
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import client as winrm

KB828753 = Path(__file__).resolve().parents[3] / "roles" / "kb828753" / "files" / "kb828753.yml"
XP_SNAPSHOT = {
    "name": "xp",
    "os": {"version": "5.1.2600", "service_pack": 1, "architecture": "x86", "product_type": 1,
           "caption": "Microsoft Windows XP Professional"},
    "files": {"C:\\WINDOWS\\system32\\drivers\\mrxsmb.sys": {"version": "5.1.2600.1106 (xpsp1.020828-1920)"}},
}


def spec_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(KB828753.read_text())
    data = copy.deepcopy(data)
    data.update(changes)
    return data


def prepare(data: dict[str, Any]) -> list[article_runner.PreparedArticle]:
    return article_runner.prepare([article_runner.ArticleRequest(data, {}, "articles[0]")],
                                  {"reconnectable_servers": ["fs01"]})


def test_rows_printed_twice_and_review_items_are_warnings() -> None:
    data = spec_data(review=[{"field": "packages[0].file", "reason": "the article gives no file name"}])
    data["files"].append(dict(data["files"][0]))
    warnings = article_runner.article_warnings(prepare(data))
    assert warnings == [
        f"KB828753 (articles[0].spec): files[{len(data['files']) - 1}] repeats files[0] "
        f"({data['files'][0]['name']}, {data['files'][0]['os']}): kept once",
        "KB828753 (articles[0].spec): review packages[0].file: the article gives no file name",
    ]
    assert article_runner.article_warnings(prepare(spec_data())) == []


def test_a_review_placeholder_package_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    data = spec_data()
    data["packages"][0]["file"] = "REVIEW-KB828753-xp-x86"
    (tmp_path / "REVIEW-KB828753-xp-x86").write_bytes(b"MZ")
    prepared = prepare(data)
    recorded = snapshot.host_snapshot_from_data(XP_SNAPSHOT, "snapshot")
    facts = recorded.answer(article_runner.merged_request(prepared, recorded.state.os))
    verdicts = [engine.evaluate(p.spec, facts, p.variables) for p in prepared]
    assert verdicts[0].status == "noncompliant"  # the audit works
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = winrm.WinRMClient(winrm.WinRMSettings(host="127.0.0.1", port=port, username="u", password="p",
                                                   retries=0))
    options = article_runner.Options(state="enforced",
                                     package_source=installer.PackageLocation("controller", str(tmp_path)))
    with pytest.raises(errors.ArticleFault) as caught:
        article_runner.enforce(client, facts, prepared, verdicts, options)
    assert "'REVIEW-KB828753-xp-x86' is a placeholder" in str(caught.value)
    assert client.request_count == 0
