# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kbfix.windows.reboot: restart a host through the WinRM cmd shell and wait for a new boot time."""

from __future__ import annotations

import datetime
import time
import typing as t

from ansible_collections.kbfix.windows.plugins.plugin_utils import cmdshell, wmi
from ansible_collections.kbfix.windows.plugins.plugin_utils.action_base import KbfixAction
from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import (
    ArgumentError,
    HostUnreachableError,
    TransportError,
)
from ansible_collections.kbfix.windows.plugins.plugin_utils.winrm import WinRMClient, with_settings
from ansible_collections.kbfix.windows.plugins.plugin_utils.wsman import InstanceNotFoundError

# shutdown.exe of XP / Server 2003 accepts a delay of 0-600 seconds and a comment of at most 127 characters
# (Vista and later: 10 years and 512); the lower limits hold on every supported Windows.
MAX_DELAY = 600
MAX_MESSAGE = 127
MAX_CONNECT_TIMEOUT = 300


def check_args(args: dict[str, t.Any]) -> None:
    if args["reboot_timeout"] < 1:
        raise ArgumentError("reboot_timeout", "must be at least 1 second")
    if not 1 <= args["connect_timeout"] <= MAX_CONNECT_TIMEOUT:
        raise ArgumentError("connect_timeout", f"must be between 1 and {MAX_CONNECT_TIMEOUT} seconds")
    if not 0 <= args["pre_reboot_delay"] <= MAX_DELAY:
        raise ArgumentError("pre_reboot_delay", f"must be between 0 and {MAX_DELAY} seconds "
                                                "(the range shutdown.exe accepts on XP and Server 2003)")
    msg = args["msg"]
    if len(msg) > MAX_MESSAGE:
        raise ArgumentError("msg", f"is {len(msg)} characters; shutdown.exe on XP / 2003 takes at most {MAX_MESSAGE}")
    # cmd.exe expands % and ends quoting at ", so neither can travel inside the /c comment.
    for bad in ('"', "%"):
        if bad in msg:
            raise ArgumentError("msg", f"cannot contain {bad!r} (cmd.exe would reinterpret it)")
    if any(ord(c) < 32 for c in msg):
        raise ArgumentError("msg", "cannot contain control characters (line breaks end the command line)")


def shutdown_args(delay: int, msg: str) -> list[str]:
    args = ["/r", "/f", "/t", str(delay)]
    return [*args, "/c", msg] if msg else args


class ActionModule(KbfixAction):
    ARGUMENT_SPEC: t.ClassVar[dict[str, t.Any]] = {
        "mode": {"type": "str", "default": "always", "choices": ["always", "if_required"]},
        "reboot_timeout": {"type": "int", "default": 600},
        "connect_timeout": {"type": "int", "default": 5},
        "pre_reboot_delay": {"type": "int", "default": 2},
        "msg": {"type": "str", "default": "Reboot initiated by Ansible"},
    }

    def execute(self, args: dict[str, t.Any], task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        check_args(args)
        client = self.winrm_client()
        result: dict[str, t.Any] = {"changed": False, "rebooted": False, "reboot_required": None,
                                    "reboot_pending_sources": []}
        if args["mode"] == "if_required":
            pending, sources = wmi.pending_restart(client, self.os_facts(client, task_vars))
            result.update(reboot_required=pending, reboot_pending_sources=list(sources))
            if not pending:
                result["msg"] = "no restart pending"
                return result
        result["changed"] = True
        if self.check_mode:
            result["msg"] = "the host would restart (check mode)"
            if self.diff_mode:
                result["diff"] = _diff(_boot_time(client).isoformat(), "(a new boot time)", result)
            return result
        result.update(self._reboot(client, args, task_vars))
        if self.diff_mode:
            result["diff"] = _diff(result["previous_boot"], result["last_boot"], result)
        return result

    def _reboot(self, client: WinRMClient, args: dict[str, t.Any], task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        started = time.monotonic()
        before = _boot_time(client)
        delay = args["pre_reboot_delay"]
        self.log(2, f"{client.host}: restarting in {delay}s (booted {before.isoformat()})")
        try:
            cmdshell.run(client, "shutdown", shutdown_args(delay, args["msg"]), timeout=120)
        except (HostUnreachableError, InstanceNotFoundError) as exc:
            # The boot time was just read, so a host that stops answering now is going down: with a short
            # delay the restart wins the race against the shell's Receive (connection refused or reset
            # while it is down, "shell not found" once WinRM is back). Anything else is a real failure.
            self.log(2, f"{client.host}: the connection dropped as the restart began ({exc})")
        client.close()
        # The timeout counts from the moment the host goes down, so a long pre_reboot_delay does not eat it.
        time.sleep(delay)
        probe = with_settings(client, connection_timeout=float(args["connect_timeout"]))
        after = cmdshell.wait_for_new_boot(probe, before, timeout=args["reboot_timeout"])
        # Facts a play may hold are stale now: refresh boot time and pending restart (a CBS servicing
        # operation can need a second restart).
        pending, sources = wmi.pending_restart(client, self.os_facts(client, task_vars))
        return {
            "rebooted": True, "elapsed": round(time.monotonic() - started, 1),
            "previous_boot": before.isoformat(), "last_boot": after.isoformat(),
            "msg": f"restarted; booted at {after.isoformat()}",
            "ansible_facts": {"kbfix_last_boot": after.isoformat(), "kbfix_reboot_pending": pending,
                              "kbfix_reboot_pending_sources": list(sources)},
        }


def _boot_time(client: WinRMClient) -> datetime.datetime:
    before = wmi.last_boot_time(client)
    if before is None:
        raise TransportError(f"{client.host}: Win32_OperatingSystem reports no LastBootUpTime")
    return before


def _diff(before_boot: str, after_boot: str, result: dict[str, t.Any]) -> dict[str, t.Any]:
    """What a restart changes: the boot time, and (when they were read) the pending-restart indicators."""
    before: dict[str, t.Any] = {"last_boot": before_boot}
    after: dict[str, t.Any] = {"last_boot": after_boot}
    if result.get("reboot_required") is not None:
        before["reboot_pending_sources"] = result["reboot_pending_sources"]
        facts = result.get("ansible_facts")
        after["reboot_pending_sources"] = facts["kbfix_reboot_pending_sources"] if facts else "(after restart)"
    return {"before": before, "after": after}
