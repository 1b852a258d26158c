# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a kbfix.windows action plugin in-process, the way TaskExecutor does, against a TCP listener that
only counts connections: a task whose arguments are refused must never reach it."""

from __future__ import annotations

import socket
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ansible.parsing.dataloader import DataLoader
from ansible.playbook.play_context import PlayContext
from ansible.playbook.task import Task
from ansible.plugins.loader import action_loader, connection_loader, init_plugin_loader
from ansible.template import Templar

with warnings.catch_warnings():
    # Other test modules in the same process may have set up the collection loader already.
    warnings.filterwarnings("ignore", message="AnsibleCollectionFinder has already been configured")
    init_plugin_loader()


class CountingListener:
    """A TCP port that accepts and closes connections, counting them; with ``record`` it first keeps what the
    client sends up to the end of its HTTP headers (``received``)."""

    def __init__(self, record: bool = False) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.record = record
        self.received = bytearray()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            if self.record:
                self._read_headers(conn)
            conn.close()

    def _read_headers(self, conn: socket.socket) -> None:
        conn.settimeout(1.0)
        try:
            while b"\r\n\r\n" not in self.received and (chunk := conn.recv(65536)):
                self.received += chunk
        except OSError:
            pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@contextmanager
def counting_listener(record: bool = False) -> Iterator[CountingListener]:
    listener = CountingListener(record)
    try:
        yield listener
    finally:
        listener.close()


def host_vars(port: int, **extra: Any) -> dict[str, Any]:
    return {"ansible_host": "127.0.0.1", "ansible_port": port, "ansible_user": "Administrator",
            "ansible_password": "Not-A-Real-Pass1", "ansible_winrm_transport": "ntlm", "ansible_winrm_scheme": "http",
            "ansible_connection": "winrm", **extra}


def run_action(module: str, args: dict[str, Any], variables: dict[str, Any], *, check_mode: bool = False,
               connection: str = "winrm") -> dict[str, Any]:
    loader = DataLoader()
    play_context = PlayContext()
    conn = connection_loader.get(connection, play_context, new_stdin=None)
    templar = Templar(loader=loader, variables=variables)
    conn.set_options(var_options=conn._resolve_option_variables(variables, templar))
    task = Task()
    task.action = f"kbfix.windows.{module}"
    task.args = dict(args)
    task.check_mode = check_mode
    action = action_loader.get(f"kbfix.windows.{module}", task=task, connection=conn, play_context=play_context,
                               loader=loader, templar=templar, shared_loader_obj=None)
    result: dict[str, Any] = action.run(task_vars=variables)
    return result
