# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``kbfix.windows.reboot`` task: check its arguments, decide whether to restart (``if_required`` asks
the pending-restart indicators), restart through the transport (``Transport.restart``) and report boot times,
refreshed facts and a diff.

Pure library: no Ansible imports. The action plugin supplies the transport and a way to get OS facts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..article.model import OsFacts
from ..errors import ArgumentError
from ..transport.base import MAX_REBOOT_DELAY, MAX_REBOOT_MESSAGE, Transport
from .arguments import check_timeout

MODES = ("always", "if_required")
MAX_CONNECT_TIMEOUT = 300
# cmdshell's limits are shutdown.exe's on XP / 2003, the lowest of every supported Windows.
MAX_DELAY = MAX_REBOOT_DELAY
MAX_MESSAGE = MAX_REBOOT_MESSAGE


def check_args(args: Mapping[str, Any]) -> None:
    check_timeout(args["reboot_timeout"], "reboot_timeout")
    if not 1 <= args["connect_timeout"] <= MAX_CONNECT_TIMEOUT:
        raise ArgumentError("connect_timeout", f"must be between 1 and {MAX_CONNECT_TIMEOUT} seconds")
    if not 0 <= args["pre_reboot_delay"] <= MAX_DELAY:
        raise ArgumentError("pre_reboot_delay", f"must be between 0 and {MAX_DELAY} seconds "
                                                "(the range shutdown.exe accepts on XP and Server 2003)")
    check_message(args["msg"])


def check_message(msg: str) -> None:
    if len(msg) > MAX_MESSAGE:
        raise ArgumentError("msg", f"is {len(msg)} characters; shutdown.exe on XP / 2003 takes at most {MAX_MESSAGE}")
    # cmd.exe expands % and ends quoting at ", so neither can travel inside the /c comment.
    for bad in ('"', "%"):
        if bad in msg:
            raise ArgumentError("msg", f"cannot contain {bad!r} (cmd.exe would reinterpret it)")
    if any(ord(c) < 32 for c in msg):
        raise ArgumentError("msg", "cannot contain control characters (line breaks end the command line)")


@dataclass(frozen=True)
class RebootTask:
    """The task's arguments, checked (``from_args``) before any request reaches the host."""

    mode: str
    reboot_timeout: int
    connect_timeout: int
    pre_reboot_delay: int
    msg: str

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> RebootTask:
        check_args(args)
        return cls(args["mode"], args["reboot_timeout"], args["connect_timeout"], args["pre_reboot_delay"],
                   args["msg"])


def run(transport: Transport, task: RebootTask, os_facts: Callable[[], OsFacts], *, check_mode: bool = False,
        diff_mode: bool = False) -> dict[str, Any]:
    """The task result. ``os_facts`` is called only when pending-restart indicators are read (they depend
    on the Windows version), so facts a play already gathered save the query."""
    result: dict[str, Any] = {"changed": False, "rebooted": False, "reboot_required": None,
                              "reboot_pending_sources": []}
    if task.mode == "if_required":
        pending, sources = transport.pending_restart(os_facts())
        result.update(reboot_required=pending, reboot_pending_sources=list(sources))
        if not pending:
            result["msg"] = "no restart pending"
            return result
    result["changed"] = True
    if check_mode:
        result["msg"] = "the host would restart (check mode)"
        if diff_mode:
            result["diff"] = _diff(transport.boot_time().isoformat(), "(a new boot time)", result)
        return result
    result.update(_reboot(transport, task, os_facts))
    if diff_mode:
        result["diff"] = _diff(result["previous_boot"], result["last_boot"], result)
    return result


def _reboot(transport: Transport, task: RebootTask, os_facts: Callable[[], OsFacts]) -> dict[str, Any]:
    started = time.monotonic()
    before = transport.boot_time()
    after = transport.restart(before=before, delay=task.pre_reboot_delay, message=task.msg,
                              timeout=task.reboot_timeout, connect_timeout=float(task.connect_timeout))
    # Facts a play may hold are stale now: refresh boot time and pending restart (a CBS servicing
    # operation can need a second restart).
    pending, sources = transport.pending_restart(os_facts())
    return {
        "rebooted": True, "elapsed": round(time.monotonic() - started, 1),
        "previous_boot": before.isoformat(), "last_boot": after.isoformat(),
        "msg": f"restarted; booted at {after.isoformat()}",
        "ansible_facts": {"kbfix_last_boot": after.isoformat(), "kbfix_reboot_pending": pending,
                          "kbfix_reboot_pending_sources": list(sources)},
    }


def _diff(before_boot: str, after_boot: str, result: Mapping[str, Any]) -> dict[str, Any]:
    """What a restart changes: the boot time, and (when they were read) the pending-restart indicators."""
    before: dict[str, Any] = {"last_boot": before_boot}
    after: dict[str, Any] = {"last_boot": after_boot}
    if result.get("reboot_required") is not None:
        before["reboot_pending_sources"] = result["reboot_pending_sources"]
        facts = result.get("ansible_facts")
        after["reboot_pending_sources"] = facts["kbfix_reboot_pending_sources"] if facts else "(after restart)"
    return {"before": before, "after": after}
