# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A controller without pywinrm, defusedxml or impacket: every plugin still imports (ansible-doc, the sanity
import test), and using the WinRM or the SMB transport fails before any request with an error naming the
package to install.

Each case runs in a fresh interpreter in which the package cannot be imported: ``sys.modules[name] = None``
makes Python's import system raise ``ImportError`` for it, exactly as on a controller that lacks it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PREFIX = "ansible_collections.kbfix.windows.plugins"
PASSWORD = "S3cret!pw-do-not-log"

# Imports every action plugin and every plugin_utils module, then opens the WinRM transport the way an action
# does (Ansible's winrm connection plugin with its options set) and prints what happened as JSON.
PROGRAM = textwrap.dedent("""
    import importlib, json, pkgutil, sys
    password = sys.argv[1]
    for name in sys.argv[2:]:
        sys.modules[name] = None
    import ansible_collections.kbfix.windows.plugins.plugin_utils as pu
    from ansible.parsing.dataloader import DataLoader
    from ansible.playbook.play_context import PlayContext
    from ansible.plugins.loader import connection_loader
    from ansible.template import Templar

    imported = []
    for info in pkgutil.walk_packages(pu.__path__, pu.__name__ + "."):
        importlib.import_module(info.name)
        imported.append(info.name)
    for action in ("facts", "file_version", "hotfix", "kb_article", "reboot", "registry_value"):
        importlib.import_module("ansible_collections.kbfix.windows.plugins.action." + action)
        imported.append(action)
    from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import MissingRequirementError
    from ansible_collections.kbfix.windows.plugins.plugin_utils.transport import select
    from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.smb import settings as smb_settings
    from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.smb import transport as smb
    from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import client, replies

    variables = {"ansible_host": "127.0.0.1", "ansible_user": "u", "ansible_password": password}
    conn = connection_loader.get("winrm", PlayContext(), new_stdin=None)
    conn.set_options(var_options=conn._resolve_option_variables(variables, Templar(loader=DataLoader(),
                                                                                   variables=variables)))
    smb_variables = {**variables, "kbfix_transport": "smb"}
    result = {"imported": imported}
    for label, use in (("open_transport", lambda: select.open_transport(conn, variables, lambda *_: None)),
                       ("open_smb", lambda: select.open_transport(None, smb_variables, lambda *_: None)),
                       ("smb_transport", lambda: smb.SMBTransport(smb_settings.SMBSettings(
                           host="127.0.0.1", username="u", password=password))),
                       ("client", lambda: client.WinRMClient(client.WinRMSettings(host="127.0.0.1",
                                                                                  password=password))),
                       ("parse_reply", lambda: replies.parse_reply(b"<a/>"))):
        try:
            use()
        except MissingRequirementError as exc:
            result[label] = {"package": exc.package, "message": str(exc)}
        except Exception as exc:
            result[label] = {"other": repr(exc)}
        else:
            result[label] = {"ok": True}
    print(json.dumps(result))
""")


def run_without(*modules: str) -> dict[str, object]:
    proc = subprocess.run([sys.executable, "-c", PROGRAM, PASSWORD, *modules], capture_output=True, text=True,
                          cwd=ROOT, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout.splitlines()[-1])
    return result


@pytest.mark.parametrize(("blocked", "package"), [
    (("winrm",), "pywinrm"),
    (("requests", "requests.exceptions"), "pywinrm"),  # pywinrm's own dependency: install pywinrm
    (("defusedxml",), "defusedxml"),
])
def test_missing_package_is_named_when_the_transport_is_used(blocked: tuple[str, ...], package: str) -> None:
    result = run_without(*blocked)
    imported = result["imported"]
    assert isinstance(imported, list)
    assert f"{PREFIX}.plugin_utils.transport.winrm.client" in imported
    assert "kb_article" in imported and len([n for n in imported if "." not in n]) == 6
    for label in ("open_transport", "client"):
        failure = result[label]
        assert isinstance(failure, dict) and failure.get("package") == package, (label, failure)
        message = failure["message"]
        assert f"needs the Python package {package}" in message
        assert f"{sys.executable} -m pip install {package}" in message
        assert any(repr(name) in message for name in blocked)  # which import failed, also a dependency
        assert PASSWORD not in message


def test_replies_are_never_parsed_without_defusedxml() -> None:
    # No fallback to xml.etree, which would accept entity expansion from an untrusted reply.
    failure = run_without("defusedxml")["parse_reply"]
    assert isinstance(failure, dict) and failure.get("package") == "defusedxml", failure


def test_with_the_packages_installed_nothing_is_reported() -> None:
    # The same program with nothing blocked: the guard does not fire on a complete controller. The client and
    # the transport are built (no request is sent); the reply "<a/>" is refused as XML, not as a missing package.
    result = run_without()
    assert result["open_transport"] == {"ok": True}
    assert result["open_smb"] == {"ok": True}
    assert result["smb_transport"] == {"ok": True}
    assert result["client"] == {"ok": True}
    parse = result["parse_reply"]
    assert isinstance(parse, dict) and "not a SOAP 1.2 envelope" in str(parse.get("other")), parse


@pytest.mark.parametrize("blocked", [("impacket",), ("impacket.dcerpc.v5.rrp",)])
def test_missing_impacket_is_named_when_the_smb_transport_is_opened(blocked: tuple[str, ...]) -> None:
    # The SMB modules import without impacket (they are among those walked), and so does WinRM: a controller
    # that reaches only NT 4.0 hosts may lack pywinrm, one that reaches none may lack impacket.
    result = run_without(*blocked)
    imported = result["imported"]
    assert isinstance(imported, list)
    for module in ("session", "registry", "transport"):
        assert f"{PREFIX}.plugin_utils.transport.smb.{module}" in imported
    assert len([n for n in imported if "." not in n]) == 6
    assert result["open_transport"] == {"ok": True}  # the WinRM transport does not need impacket
    for label in ("open_smb", "smb_transport"):
        failure = result[label]
        assert isinstance(failure, dict) and failure.get("package") == "impacket", (label, failure)
        message = failure["message"]
        assert "the SMB transport needs the Python package impacket" in message
        assert f"{sys.executable} -m pip install impacket" in message
        assert repr(blocked[0]) in message
        assert PASSWORD not in message
