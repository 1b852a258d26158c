# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kbfix.windows.kb_article auditing KB253729 through real ansible-playbook runs against real Samba hosts.

Samba synthesises the values of ``...\\Windows NT\\CurrentVersion`` (it says Windows 6.1), so the NT 4.0 OS
facts are given through ``host_facts`` (docs/transport.md, "Test host: Samba"); everything else (Mpr.dll
through C$, the Hotfix\\Q253729 key and PendingFileRenameOperations through the winreg pipe) is read from smbd.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import yaml
from harness import run_playbook

SPEC = str(Path(__file__).resolve().parents[3] / "roles" / "kb253729" / "files" / "kb253729.yml")
NT4_TSE = {"version": "4.0.1381", "service_pack": 6, "architecture": "x86", "product_type": 3,
           "caption": "Microsoft Windows NT Server 4.0 Terminal Server (Service Pack 6)", "system_root": "C:\\WINNT"}
WRONG_PASSWORD = "not-the-Passw0rd"

AUDIT = """
- hosts: all
  gather_facts: false
  tasks:
    - name: audit
      kbfix.windows.kb_article:
        articles: ["{{ spec }}"]
        host_facts: "{{ nt4_tse }}"
"""


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens once the socket is closed


def test_kb253729_audit_through_ansible_playbook(fixed_host: Any, unfixed_host: Any, tmp_path: Path) -> None:
    def entry(host: Any, **overrides: Any) -> dict[str, Any]:
        values = host.inventory_vars(kbfix_transport="smb", **overrides)
        values.pop("inventory_hostname")
        return values

    hosts = {
        "fixed": entry(fixed_host),
        "unfixed": entry(unfixed_host),
        "wrongpass": entry(fixed_host, ansible_password=WRONG_PASSWORD),
        "noshare": entry(fixed_host),
        "closed": entry(fixed_host, kbfix_smb_port=_closed_port(), kbfix_smb_retries=0),
    }
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": hosts}}), encoding="utf-8")
    # A system root on a drive the host does not share: Mpr.dll cannot be read (share missing).
    nt4_noshare = {**NT4_TSE, "system_root": "E:\\WINNT"}
    run = run_playbook(AUDIT, inventory, tmp_path / "run", verbosity=5, extra_vars={
        "spec": SPEC, "nt4_tse": NT4_TSE})
    noshare = run_playbook(AUDIT, inventory, tmp_path / "noshare", limit="noshare", extra_vars={
        "spec": SPEC, "nt4_tse": nt4_noshare})

    def verdict(result: Any) -> dict[str, Any]:
        return dict(result.result["verdicts"][0])

    assert verdict(run.one("audit", "fixed"))["status"] == "compliant", run.output[-3000:]
    unfixed = verdict(run.one("audit", "unfixed"))
    assert unfixed["status"] == "noncompliant" and unfixed["plan"][0]["action"] == "install_package"
    wrong = run.one("audit", "wrongpass")
    assert wrong.status == "failed", wrong.result
    assert f"rejected the credentials of user {fixed_host.username!r}" in wrong.result["msg"], wrong.result
    closed = run.one("audit", "closed")
    assert closed.status == "unreachable" and "connection refused" in closed.result["msg"], closed.result
    missing = verdict(noshare.one("audit", "noshare"))
    assert missing["status"] == "unknown" and any("Mpr.dll" in m for m in missing["missing"]), missing
    # -vvvvv shows each SMB/RPC operation, and no password, right or wrong.
    assert "BaseRegOpenKey" in run.output
    assert fixed_host.password not in run.output and WRONG_PASSWORD not in run.output
