"""The public test API and the CLI: a fleet in its own process, its inventory, its state across restarts."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import winrm
import yaml

from winsim.testing import ControlError, HostSpec, running_fleet

HOSTS = [HostSpec("xp1", "xp-sp2-x86"), HostSpec("srv1", "2008-sp2-x64"), HostSpec("nt4", "nt4-tse-sp6-x86")]
WINSIM_DIR = Path(__file__).resolve().parent.parent


def run_cmd(ep: object, command: str) -> winrm.Response:
    session = winrm.Session(ep.url, auth=(ep.username, ep.password), transport="ntlm")  # type: ignore[attr-defined]
    return session.run_cmd(command)


def test_fleet_serves_remembers_and_stops(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with running_fleet(HOSTS, state_dir=state) as fleet:
        assert set(fleet.hosts) == {"xp1", "srv1", "nt4"}
        srv = fleet.hosts["srv1"]
        assert (srv.scheme, srv.address, srv.path, srv.winrm_version) == ("http", "127.0.0.1", "/wsman", "2.0")
        result = run_cmd(srv, r"reg add HKLM\SOFTWARE\winsim /v Marker /t REG_DWORD /d 7 /f")
        assert result.status_code == 0, result.std_err
        assert srv.counters()["by_action"]["Command"] == 1
        assert srv.host().registry.get("HKLM\\SOFTWARE\\winsim", "Marker").data == 7  # snapshot of the machine
        assert run_cmd(fleet.hosts["xp1"], "ver").std_out.startswith(b"\r\nMicrosoft Windows XP")
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", fleet.hosts["nt4"].port), timeout=2)
        ports = {name: ep.port for name, ep in fleet.hosts.items()}
        pid = fleet.run_control("ping")["pid"]
    assert not _alive(pid)
    assert json.loads((state / "fleet.json").read_text())["hosts"][0]["name"] == "xp1"

    with running_fleet(None, state_dir=state) as again:  # the same state directory: the same hosts
        assert {name: ep.port for name, ep in again.hosts.items()} == ports
        result = run_cmd(again.hosts["srv1"], r"reg query HKLM\SOFTWARE\winsim /v Marker")
        assert b"0x7" in result.std_out
        assert again.hosts["srv1"].counters()["by_action"]["Command"] == 1  # counters belong to one run


def test_inventory_is_an_ordinary_winrm_inventory(tmp_path: Path) -> None:
    with running_fleet(HOSTS, state_dir=tmp_path / "state", https=True) as fleet:
        path = fleet.inventory(tmp_path / "inventory.yml")
        srv = fleet.hosts["srv1"]
        assert srv.cert_path is not None and srv.cert_path.exists()
        session = winrm.Session(srv.url, auth=(srv.username, srv.password), transport="basic",
                                ca_trust_path=str(srv.cert_path))  # the certificate is valid for 127.0.0.1
        assert session.run_cmd("hostname").std_out.strip() == b"srv1"
    document = yaml.safe_load(path.read_text())
    assert document["all"]["vars"]["ansible_connection"] == "winrm"
    groups = document["all"]["children"]
    assert set(groups) == {"winsim_xp_sp2_x86", "winsim_2008_sp2_x64", "winsim_nt4_tse_sp6_x86"}
    srv_vars = groups["winsim_2008_sp2_x64"]["hosts"]["srv1"]
    assert srv_vars == {
        "ansible_host": "127.0.0.1", "ansible_port": srv.port, "ansible_user": srv.username,
        "ansible_password": srv.password, "ansible_winrm_transport": "ntlm", "ansible_winrm_scheme": "https",
        "winsim_profile": "2008-sp2-x64", "ansible_winrm_server_cert_validation": "ignore",
    }
    assert "nt4" in groups["winsim_nt4_tse_sp6_x86"]["hosts"]  # listed, unreachable over WinRM as in reality
    listed = subprocess.run([Path(sys.executable).with_name("ansible-inventory"), "-i", str(path), "--list"],
                            capture_output=True, text=True, check=False, env=_ansible_env(tmp_path))
    assert listed.returncode == 0, listed.stderr
    hostvars = json.loads(listed.stdout)["_meta"]["hostvars"]
    assert hostvars["srv1"]["ansible_port"] == srv.port
    assert hostvars["nt4"]["ansible_connection"] == "winrm"


def test_the_fleet_process_is_stopped_when_the_test_fails(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="test failed"), running_fleet(HOSTS[:1], state_dir=tmp_path) as fleet:
        pid = fleet.run_control("ping")["pid"]
        raise RuntimeError("test failed")
    assert not _alive(pid)


def test_shutdown_through_the_control_channel_saves_the_hosts(tmp_path: Path) -> None:
    with running_fleet(HOSTS[:1], state_dir=tmp_path) as fleet:
        pid = fleet.run_control("ping")["pid"]
        assert fleet.run_control("shutdown") == {"ok": True}
        deadline = time.monotonic() + 20
        while _alive(pid):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert (tmp_path / "hosts" / "xp1.json").exists()
    assert not (tmp_path / "fleet-ready.json").exists()


def test_faults_and_counters_through_the_control_channel(tmp_path: Path) -> None:
    with running_fleet(HOSTS[1:2], state_dir=tmp_path, latency_ms=50) as fleet:
        srv = fleet.hosts["srv1"]
        srv.set_faults(quota_fault={"action": "Create"})
        with pytest.raises(winrm.exceptions.WSManFaultError) as caught:
            run_cmd(srv, "ver")
        assert caught.value.wsman_fault_code == 2150859174
        assert srv.run_control("get_faults") == {"quota_fault": {"action": "Create", "count": 0, "skip": 0}}
        start = time.monotonic()
        assert run_cmd(srv, "ver").status_code == 0
        assert time.monotonic() - start >= 0.25  # fleet-wide latency: 50 ms on each of the >= 5 requests
        assert srv.counters()["by_action"]["Create"] == 2
        srv.reset_counters()
        assert srv.counters() == {"requests": 0, "by_action": {}, "auth_requests": 0, "shells_open": 0,
                                 "injected": {}}
        with pytest.raises(ControlError):
            srv.run_control("no_such_operation")


def test_cli_fleet(tmp_path: Path) -> None:
    base = _free_port_range(3)
    inventory = tmp_path / "inv.yml"
    command = [sys.executable, "-m", "winsim", "fleet", "--state-dir", str(tmp_path / "state"), "--hosts", "3",
               "--profiles", "xp-sp1-x86,2008r2-rtm-x64", "--base-port", str(base), "--inventory", str(inventory)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(WINSIM_DIR), os.environ.get("PYTHONPATH", "")]))
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not inventory.exists():
            assert process.poll() is None, process.communicate()[0].decode()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        groups = yaml.safe_load(inventory.read_text())["all"]["children"]
        hosts = {name: v for group in groups.values() for name, v in group["hosts"].items()}
        assert {name: (v["ansible_port"], v["winsim_profile"]) for name, v in hosts.items()} == {
            "win0001": (base, "xp-sp1-x86"), "win0002": (base + 1, "2008r2-rtm-x64"),
            "win0003": (base + 2, "xp-sp1-x86")}
        ep = type("Ep", (), {"url": f"http://127.0.0.1:{base + 1}/wsman", "username": hosts["win0002"]["ansible_user"],
                             "password": hosts["win0002"]["ansible_password"]})()
        assert run_cmd(ep, "hostname").std_out.strip() == b"win0002"
    finally:
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=30)[0].decode()
    assert process.returncode == 0, output
    assert len(json.loads((tmp_path / "state" / "fleet.json").read_text())["hosts"]) == 3


def _alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie (exited, not yet reaped by running_fleet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _free_port_range(count: int) -> int:
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base + count >= 65535:
            continue
        sockets = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no free port range")


def _ansible_env(tmp_path: Path) -> dict[str, str]:
    return dict(os.environ, ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
                ANSIBLE_HOME=str(tmp_path / "ansible-home"), ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
