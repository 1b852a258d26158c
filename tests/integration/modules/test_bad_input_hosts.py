# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bad-input generator beyond the in-process run (tests/unit/plugins/test_bad_input.py): a sample of
its cases through real ansible-playbook, and the values that are legal although special (WQL and cmd.exe
metacharacters in registry data, server names, package paths and installer arguments) sent to winsim, which
must hold them literally."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import run_playbook

from winsim import packages
from winsim.testing import Endpoint, Fleet, HostSpec, running_fleet

UNIT_PLUGINS = Path(__file__).resolve().parents[2] / "unit" / "plugins"
sys.path.insert(0, str(UNIT_PLUGINS))
from action_harness import counting_listener, run_action  # noqa: E402
from bad_inputs import KB828753, all_cases  # noqa: E402

pytestmark = pytest.mark.slow

META = "' \\ % _ \" & | ^ < > %PATH% !"  # every WQL and cmd.exe metacharacter the issue lists
SHARE = "\\\\fs01\\sh&a^re"  # & and ^ are legal inside a quoted cmd.exe path


def endpoint_vars(ep: Endpoint) -> dict[str, Any]:
    return {"ansible_host": ep.address, "ansible_port": ep.port, "ansible_user": ep.username,
            "ansible_password": ep.password, "ansible_winrm_transport": "ntlm", "ansible_winrm_scheme": ep.scheme,
            "ansible_connection": "winrm", "inventory_hostname": ep.name}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    share = tmp_path_factory.mktemp("share")
    for name in ("Windows6.0-KB977381-x86.msu", "WindowsXP-KB828753-x86-ENU.exe"):
        packages.write_package(name, share)
    hosts = [HostSpec("xp", "xp-sp2-x86"), HostSpec("xpfix", "xp-sp1-x86", {"installed": ["KB828753"]}),
             HostSpec("xp1", "xp-sp1-x86", {"shares": {SHARE: str(share)}}),
             HostSpec("ws", "2008-sp2-x86", {"shares": {SHARE: str(share)}})]
    with running_fleet(hosts, state_dir=tmp_path_factory.mktemp("bad-input-fleet")) as running:
        yield running


def test_a_sample_of_the_generator_through_ansible_playbook(tmp_path: Path) -> None:
    # Every 15th case that YAML can carry (a lone surrogate cannot be written to a playbook; NUL can, but
    # ansible-core refuses it while parsing, before any module: the in-process run covers both).
    def portable(value: Any) -> bool:
        text = json.dumps(value, ensure_ascii=False)
        return "\\u0000" not in text and all(not 0xD800 <= ord(ch) <= 0xDFFF for ch in text)

    # Cases of inventory variables need an inventory of their own: the in-process run covers them.
    sample = [c for c in all_cases() if portable(c.args) and not c.check_mode and not c.host_vars][::15]
    assert len(sample) >= 40
    tasks = [{"name": f"case {i}", f"kbfix.windows.{c.module}": c.args, "ignore_errors": True}
             for i, c in enumerate(sample)]
    with counting_listener() as listener:
        inventory = tmp_path / "inventory.yml"
        inventory.write_text(yaml.safe_dump({"all": {"hosts": {"target": {
            "ansible_host": "127.0.0.1", "ansible_port": listener.port, "ansible_user": "Administrator",
            "ansible_password": "Not-A-Real-Pass1", "ansible_winrm_transport": "ntlm",
            "ansible_winrm_scheme": "http", "ansible_connection": "winrm"}}}}), encoding="utf-8")
        playbook = tmp_path / "bad.yml"
        playbook.write_text(yaml.safe_dump([{"hosts": "all", "gather_facts": False, "tasks": tasks}], width=10**6),
                            encoding="utf-8")
        run = run_playbook(playbook, inventory, tmp_path / "run", timeout=600)
        assert listener.accepted == 0, "a bad argument reached the host"
    assert "Traceback" not in run.output
    for i, case in enumerate(sample):
        [result] = run.for_task(f"case {i}")
        assert result.status == "failed", (case.id, result.result)
        assert case.field in result.result["msg"], (case.id, result.result["msg"])


def test_metacharacters_in_registry_data_names_and_keys_reach_the_host_literally(fleet: Fleet) -> None:
    ep = fleet.hosts["xp"]
    key = "HKLM\\SOFTWARE\\kbfix meta " + META.replace("\\", "")  # a backslash would start a subkey
    cases = [("string", "S " + META, META), ("expandstring", "E " + META, META),
             ("multistring", "M " + META, [META, "%SystemRoot%", "a'b", "50%_off"])]
    for reg_type, name, data in cases:
        result = run_action("registry_value", {"path": key, "name": name, "type": reg_type, "data": data},
                            endpoint_vars(ep))
        assert result.get("changed") is True, result
    machine = ep.host()
    for reg_type, name, data in cases:
        value = machine.registry.get(key, name)
        assert value is not None and value.data == data, (reg_type, value)
    # Read back through the collection too: a second run finds every value in place.
    for reg_type, name, data in cases:
        again = run_action("registry_value", {"path": key, "name": name, "type": reg_type, "data": data},
                           endpoint_vars(ep))
        assert again.get("changed") is False, again


def test_metacharacters_in_role_variables_reach_the_host_literally(fleet: Fleet) -> None:
    ep = fleet.hosts["xpfix"]  # the hotfix is there: only ReconnectableServers is written
    servers = ["fs'01", "fs%01", "fs_01", "fs&01", "fs^01", "fs<01>", "fs|01", 'fs"01', "%LOGONSERVER%"]
    article = {"spec": KB828753, "variables": {"reconnectable_servers": servers}}
    result = run_action("kb_article", {"articles": [article], "state": "enforced"}, endpoint_vars(ep))
    assert not result.get("failed") and result["changed"], result
    value = ep.host().registry.get("HKLM\\SYSTEM\\CurrentControlSet\\Services\\LanmanWorkstation\\Parameters",
                                   "ReconnectableServers")
    assert value is not None and value.data == servers


def test_cmd_metacharacters_in_package_paths_and_arguments_reach_the_host_literally(fleet: Fleet) -> None:
    ep = fleet.hosts["ws"]
    result = run_action("hotfix", {"id": "KB977381", "source": f"{SHARE}\\Windows6.0-KB977381-x86.msu"},
                        endpoint_vars(ep))
    assert result.get("changed") is True, result
    assert [r["installed"] for r in ep.host().installer_runs] == [True]  # found through the & ^ share path

    ep = fleet.hosts["xp1"]
    log = "C:\\WINDOWS\\kb & 828753^ (x).log"
    result = run_action("hotfix", {"id": "KB828753", "source": f"{SHARE}\\WindowsXP-KB828753-x86-ENU.exe",
                                   "arguments": ["/quiet", "/norestart", f"/log:{log}"]}, endpoint_vars(ep))
    assert result.get("changed") is True, result
    machine = ep.host()
    assert machine.fs.exists(log), "update.exe did not receive its /log: argument literally"
    assert "Exit code 3010" in machine.fs.read(log).decode()
