"""Run real ansible-playbook processes against winsim hosts and read back what happened."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import client as winrm
from winsim.testing import Endpoint

HERE = Path(__file__).resolve().parent


def client_for(ep: Endpoint) -> winrm.WinRMClient:
    """A WinRM client for one winsim host, as the modules build it (library tests that skip Ansible)."""
    return winrm.WinRMClient(winrm.WinRMSettings(host=ep.address, port=ep.port, username=ep.username,
                                                 password=ep.password))


@dataclass
class TaskResult:
    host: str
    task: str
    action: str
    status: str  # ok | changed | failed | unreachable | skipped
    result: dict[str, Any]


@dataclass
class PlaybookRun:
    rc: int
    stdout: str
    stderr: str
    results: list[TaskResult] = field(default_factory=list)

    def for_task(self, task: str, host: str | None = None) -> list[TaskResult]:
        return [r for r in self.results if r.task == task and (host is None or r.host == host)]

    def one(self, task: str, host: str | None = None) -> TaskResult:
        found = self.for_task(task, host)
        assert len(found) == 1, (
            f"expected one result for {task!r}/{host}, got {len(found)}\n{self.stdout}\n{self.stderr}")
        return found[0]

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_playbook(playbook: str | Path, inventory: Path, workdir: Path, *, extra_vars: dict[str, Any] | None = None,
                 check: bool = False, diff: bool = False, verbosity: int = 0, limit: str | None = None,
                 env: dict[str, str] | None = None, timeout: float = 300) -> PlaybookRun:
    """Run ansible-playbook. ``playbook`` is a path or the YAML text of a playbook."""
    workdir.mkdir(parents=True, exist_ok=True)
    if isinstance(playbook, str) and "\n" in playbook:
        path = workdir / "playbook.yml"
        path.write_text(textwrap.dedent(playbook), encoding="utf-8")
    else:
        path = Path(playbook)
    results_file = workdir / "results.jsonl"
    if results_file.exists():
        results_file.unlink()
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), str(path)]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    if verbosity:
        cmd.append("-" + "v" * verbosity)
    if limit:
        cmd += ["--limit", limit]
    run_env = dict(os.environ)
    run_env.update({
        "KBFIX_TEST_RESULTS": str(results_file),
        "ANSIBLE_CALLBACK_PLUGINS": str(HERE / "callback_plugins"),
        "ANSIBLE_RETRY_FILES_ENABLED": "false",
        "ANSIBLE_HOST_KEY_CHECKING": "false",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCAL_TEMP": str(workdir / "tmp"),
    })
    if env:
        run_env.update(env)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=run_env, cwd=workdir, timeout=timeout, check=False)
    results = []
    if results_file.exists():
        for line in results_file.read_text(encoding="utf-8").splitlines():
            data = json.loads(line)
            results.append(TaskResult(**data))
    return PlaybookRun(proc.returncode, proc.stdout, proc.stderr, results)


def closed_port() -> int:
    """A local TCP port nobody listens on (bound, then released): connections to it are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stop_answering(inventory: Path, *hosts: str) -> None:
    """Point the inventory entries of ``hosts`` at a port nobody listens on: to Ansible the hosts are off."""
    data = yaml.safe_load(inventory.read_text(encoding="utf-8"))
    for group in data["all"]["children"].values():
        for name, variables in group.get("hosts", {}).items():
            if name in hosts:
                variables["ansible_port"] = closed_port()
    inventory.write_text(yaml.safe_dump(data), encoding="utf-8")
