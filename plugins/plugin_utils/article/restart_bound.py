# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restart-bound registry values (``restart: true``): set on the host, but read by the service yet?

A service reads its parameters when it starts (the redirector its ReconnectableServers, the Server service its
AsynchronousCredits): a value written after the last boot is on the host and not in effect. Windows records
no time per value, only per key: the key's last-write time (``RegQueryInfoKey``'s ``lpftLastWriteTime``; over
the network MS-RRP ``BaseRegQueryInfoKey``). A key written after the last boot is the host's own statement that
something under it changed since the service started, so a matching value there is ``reboot_pending``. A key
written before the boot holds values the service has read. Where the time cannot be read (WinRM: StdRegProv has
no key times and no other class or cmd.exe tool reachable without PowerShell reports them, docs/transport.md)
the verdict stays as the values say and its reason says that this could not be told.

Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import datetime

from .model import HostFacts, PlanStep, RebootDetails, Verdict, registry_key_id
from .spec import ArticleSpec

UNTOLD = ("the value's key has no readable write time on this transport (WinRM's StdRegProv reports none), so "
          "whether it was written after the last boot, and is not read yet, cannot be told")


def judge(spec: ArticleSpec, verdict: Verdict, host: HostFacts) -> Verdict:
    """``verdict`` with each passing restart-bound value's check saying when its key was written; a compliant
    verdict becomes ``reboot_pending`` when one was written after the last boot, or says what it cannot tell."""
    if verdict.status not in ("compliant", "reboot_pending"):
        return verdict
    boot = host.os.last_boot
    checks = list(verdict.checks)
    waiting: list[str] = []
    untold: list[str] = []
    for setting in spec.registry:
        if not setting.restart:
            continue
        index = next((i for i, c in enumerate(checks) if c.id == f"registry:{setting.path}" and c.passed), None)
        if index is None:
            continue
        written = host.key_write_times.get(registry_key_id(setting.key))
        if written is None or boot is None:
            note = UNTOLD if written is None else ("the last boot time is not known, so whether the key was "
                                                   "written after it cannot be told")
            untold.append(setting.path)
        elif written > boot:
            note = (f"its key was written at {_iso(written)}, after the last boot at {_iso(boot)}: the service "
                    "reads it when it starts")
            waiting.append(setting.path)
        else:
            note = f"its key was last written at {_iso(written)}, before the last boot: in effect"
        check = checks[index]
        checks[index] = dataclasses.replace(check, message=f"{check.message}; {note}" if check.message else note)
    if waiting and verdict.status == "compliant":
        reason = (f"{spec.id}'s values are set, but {', '.join(waiting)} was written after the last boot and takes "
                  "effect at the next start")
        step = PlanStep("reboot", "restart: the changes take effect at the next start",
                        RebootDetails(f"{spec.id}: {', '.join(waiting)} written after the last boot"))
        return dataclasses.replace(verdict, status="reboot_pending", reason=reason, checks=checks,
                                   plan=[*verdict.plan, step], restart_required=True)
    reason = verdict.reason
    if untold and verdict.status == "compliant":
        reason += f"; not known whether {', '.join(untold)} is in effect yet: {UNTOLD if boot else 'no boot time'}"
    return dataclasses.replace(verdict, reason=reason, checks=checks)


def _iso(moment: datetime.datetime) -> str:
    return moment.isoformat(timespec="seconds")
