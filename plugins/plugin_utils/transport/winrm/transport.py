# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The WinRM implementation of ``transport.base.Transport``: WMI over WS-Management for facts and registry,
the WinRM cmd shell (WinRS) for processes, uploads and restarts. No PowerShell on the host.

This class only composes the modules beside it (``wmi``, ``cmdshell``, ``collect``, ``facts``); each of them
documents the Windows behaviour it relies on.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

from ...article.model import FactRequest, FileFacts, HostFacts, OsFacts, RegistryType, RegistryValue
from ...booleans import parse_bool
from ...errors import NotFoundError, WriteVerificationError
from .. import escape
from ..base import LOG_STEPS, CommandResult, LogFn, PackageSource, RegistryChange, RestartScope, StagedPackage
from ..smb.settings import SMBSettings
from ..smb.settings import settings_from_vars as smb_settings_from_vars
from . import cmdshell, collect, facts, stdregprov, upload, wmi
from .client import WinRMClient, client_for, require_packages
from .settings import settings_for_host

T = TypeVar("T")

UPLOAD_SMB_VARIABLE = "kbfix_upload_smb"  # also in transport/select.py HOST_VARIABLES (templated there)

KIND = "winrm"


class WinRMTransport:
    """One host over WinRM. Wraps the shared ``WinRMClient`` (keep-alive connections, in-flight bound).
    ``smb_upload``: the host's SMB settings when it opted in to package copies over SMB (``kbfix_upload_smb``)."""

    def __init__(self, client: WinRMClient, smb_upload: SMBSettings | None = None) -> None:
        self.client = client
        self.smb_upload = smb_upload

    def __repr__(self) -> str:
        return f"WinRMTransport({self.client!r})"

    @property
    def kind(self) -> str:
        return KIND

    @property
    def host(self) -> str:
        return self.client.host

    @property
    def request_count(self) -> int:
        return self.client.request_count

    @property
    def max_in_flight(self) -> int:
        return self.client.settings.max_in_flight

    def log(self, level: int, message: str) -> None:
        self.client.log(level, message)

    def close(self) -> None:
        self.client.close()

    def run_concurrently(self, calls: Sequence[Callable[[], T]]) -> list[T]:
        return wmi.run_concurrently(self.client, calls)

    # --- facts ------------------------------------------------------------------------------------

    def os_facts(self) -> OsFacts:
        return wmi.os_facts(self.client)

    def host_facts(self, *, ask_version: bool = True) -> dict[str, object]:
        return facts.gather(self.client, ask_version=ask_version)

    def gather(self, os: OsFacts, request: FactRequest, *, restart_scope: RestartScope = "article") -> HostFacts:
        return collect.gather(self.client, os, request, restart_scope=restart_scope)

    def file_facts(self, paths: Sequence[str]) -> dict[str, FileFacts]:
        return wmi.file_facts(self.client, paths)

    def pending_restart(self, os: OsFacts, scope: RestartScope = "full") -> tuple[bool, tuple[str, ...]]:
        return wmi.pending_restart(self.client, os, scope)

    def boot_time(self) -> datetime.datetime:
        return cmdshell.boot_time(self.client)

    # --- registry -------------------------------------------------------------------------------

    def read_value(self, key: str, name: str, expected: RegistryType | None = None) -> RegistryValue | None:
        return stdregprov.read_value(self.client, key, name, expected)

    def read_values(self, key: str, names: Iterable[str]) -> dict[str, RegistryValue | None]:
        return stdregprov.read_values(self.client, key, names)

    def key_exists(self, key: str) -> bool:
        return stdregprov.key_exists(self.client, key)

    def enum_keys(self, key: str) -> list[str] | None:
        return stdregprov.enum_keys(self.client, key)

    def set_value(self, key: str, name: str, value: RegistryValue, *, create: bool = False) -> RegistryChange:
        if value.type == "multistring" and not value.data:
            return self._set_empty_multistring(key, name, create)
        return stdregprov.set_value(self.client, key, name, value, create=create,
                                    write_none=partial(cmdshell.reg_add_none, self.client))

    def _set_empty_multistring(self, key: str, name: str, create: bool) -> RegistryChange:
        # StdRegProv.SetMultiStringValue refuses an empty sValue array (a WS-Man array with no elements is a
        # null parameter), so an empty REG_MULTI_SZ is written by reg.exe, which every WinRM-capable Windows
        # has. reg.exe creates missing keys itself, so without ``create`` the key must exist already.
        before = stdregprov.read_value(self.client, key, name, "multistring")
        if before is not None and before.type == "multistring" and not before.data:
            return RegistryChange(False, before, before)
        if not create and not stdregprov.key_exists(self.client, key):
            raise NotFoundError(f"{self.host}: registry key {key} does not exist and create_key is false")
        target = ["/ve"] if name == "" else ["/v", name]
        cmdshell.run(self.client, "reg", ["add", key, *target, "/t", "REG_MULTI_SZ", "/d", "", "/f"], timeout=120,
                     repeatable=True)
        after = stdregprov.read_value(self.client, key, name, "multistring")
        if after is None or after.type != "multistring" or after.data:
            raise WriteVerificationError(f"{self.host}: wrote an empty multistring to {key}\\{name} but read back "
                                         f"{'(absent)' if after is None else f'{after.type} {after.data!r}'}")
        return RegistryChange(True, before, after)

    def check_write(self, key: str, name: str, value: RegistryValue) -> None:
        stdregprov.check_write(self.client, key, name, value)

    def delete_value(self, key: str, name: str) -> RegistryChange:
        return stdregprov.delete_value(self.client, key, name)

    # --- processes ------------------------------------------------------------------------------

    def stage_package(self, source: PackageSource, destination: str) -> StagedPackage:
        if source.data is not None and self.smb_upload is not None:
            from ..smb import copy  # impacket is loaded only for hosts that opt in

            escape.cmd_path(destination, "destination")
            requests = copy.put_file(self.smb_upload, destination, source.data, self.log, source.system_root)
            self.log(LOG_STEPS, f"{self.host}: copied {len(source.data)} bytes to {destination} over SMB in "
                                f"{requests} SMB requests")
            done = upload.check_copied(self.client, source.data, destination, "smb", certutil=source.certutil)
            return StagedPackage(done.path, done.method, done.size, done.sha1, uploaded=True)
        return upload.stage_package(self.client, source, destination)

    def run_command(self, line: str, *, timeout: float, success_codes: Sequence[int] | None = (0,),
                    expected_codes: Sequence[int] = ()) -> CommandResult:
        del expected_codes  # the cmd shell reports every exit code as it is
        return cmdshell.run_line(self.client, line, timeout=timeout, success_codes=success_codes)

    def delete_file(self, path: str) -> None:
        cmdshell.delete_file(self.client, path)

    def restart(self, *, timeout: float, delay: int = 0, message: str = "", connect_timeout: float | None = None,
                before: datetime.datetime | None = None) -> datetime.datetime:
        return cmdshell.reboot(self.client, timeout=timeout, delay=delay, message=message,
                               connect_timeout=connect_timeout, before=before)


def open_for(task_vars: Mapping[str, Any], log: LogFn, *, connection: Any = None, **overrides: Any) -> WinRMTransport:
    """The transport ``transport.select`` opens for a WinRM host: settings from the task's Ansible connection and
    the host's variables (``settings.settings_for_host``), the shared client for them, not yet connected.
    A WinRM version the facts module found (``kbfix_winrm_version``) bounds the request size before any
    request of this task (stdregprov.check_write)."""
    require_packages()  # before the connection plugin's option processing, which needs pywinrm
    client = client_for(settings_for_host(connection, task_vars, **overrides), log=log)
    facts_known = task_vars.get("ansible_facts")
    version = facts_known.get("kbfix_winrm_version") if isinstance(facts_known, Mapping) else None
    if isinstance(version, str) and client.stack_version is None:
        client.stack_version = version
    smb_upload = None
    if parse_bool(task_vars.get(UPLOAD_SMB_VARIABLE, False), UPLOAD_SMB_VARIABLE, blank_is_false=True):
        smb_upload = smb_settings_from_vars(task_vars)  # checked now, before any request; impacket loads later
    return WinRMTransport(client, smb_upload)
