# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``kbfix.windows.hotfix`` task: detect one hotfix, install or remove it, detect again.

Pure library: no Ansible imports. The action plugin checks the arguments and opens the transport.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from pathlib import Path

from ..article.model import OsFacts
from ..article.spec import ArticleSpec, load_spec_data
from ..errors import ArgumentError
from ..transport.base import Transport
from .article_runner import load_spec_file
from .installer import Detection, InstallRequest, detect, install, pending_restart_refusal, uninstall


@dataclass(frozen=True)
class Mode:
    check: bool = False
    diff: bool = False


def load_hotfix_spec(value: t.Any, hotfix: str, find_file: t.Callable[[str, str], str]) -> ArticleSpec | None:
    """The ``spec`` argument: a spec path (found like ``files/`` lookups) or inline data naming ``hotfix``."""
    if value is None:
        return None
    if isinstance(value, str):
        spec = load_spec_file(Path(find_file(value, "spec")), "spec")
    elif isinstance(value, dict):
        spec = load_spec_data(value, "spec")
    else:
        raise ArgumentError("spec", f"must be a spec path or inline spec data, got {value!r}")
    if hotfix not in spec.hotfix_ids:
        raise ArgumentError("spec", f"{spec.id} names the hotfix ids {', '.join(spec.hotfix_ids)}, not {hotfix}")
    return spec


def apply(transport: Transport, mode: Mode, hotfix: str, request: InstallRequest | None,
          spec: ArticleSpec | None, os_facts: OsFacts | None, args: dict[str, t.Any]) -> dict[str, t.Any]:
    os_facts = os_facts or transport.os_facts()
    before = detect(transport, os_facts, hotfix, spec)
    out: dict[str, t.Any] = {"id": hotfix, "state": args["state"], "changed": False,
                             "detection_before": before.to_dict()}
    if args["state"] == "present":
        work = _present(transport, mode, hotfix, request, before, os_facts, args, out)
    else:
        work = _absent(transport, mode, hotfix, before, os_facts, args, out)
    after = detect(transport, os_facts, hotfix, spec) if work and not mode.check else before
    out.update(installed=after.installed, present=after.present, detection=after.to_dict())
    # A CBS package waiting for the restart is not in effect yet, whoever installed it.
    out["reboot_required"] = bool(out.get("reboot_required")) or after.install_pending
    if out["changed"] and mode.diff:
        word = "present" if args["state"] == "present" else "absent"
        other = "absent" if word == "present" else "present"
        out["diff"] = {"before_header": hotfix, "after_header": hotfix,
                       "before": f"{hotfix}: {other}\n", "after": f"{hotfix}: {word}\n"}
    return out


def _present(transport: Transport, mode: Mode, hotfix: str, request: InstallRequest | None,
             before: Detection, os_facts: OsFacts, args: dict[str, t.Any],
             out: dict[str, t.Any]) -> bool:
    if before.present:
        out["msg"] = f"{hotfix} is present ({', '.join(before.sources)})"
        return False
    if request is None:
        raise ArgumentError("source", f"is required: {hotfix} is not installed on {transport.host}")
    if before.reboot_pending and not args["allow_pending_reboot"]:
        raise pending_restart_refusal(transport, hotfix, before.reboot_pending_sources)
    out["changed"] = True
    if mode.check:
        out["msg"] = f"{hotfix} would be installed from {request.package.filename}"
        return False
    done = install(transport, request, os_facts)
    out["install"] = done.to_dict()
    out["changed"] = done.changed
    out["reboot_required"] = done.restart_required
    out["msg"] = f"{hotfix}: {request.package.filename} exited with {done.exit_code} ({done.meaning})"
    return True


def _absent(transport: Transport, mode: Mode, hotfix: str, before: Detection, os_facts: OsFacts,
            args: dict[str, t.Any], out: dict[str, t.Any]) -> bool:
    if not before.installed:
        out["msg"] = f"{hotfix} is not installed"
        if before.files_current:
            out["msg"] += " (its files are current, e.g. from a later update: nothing to remove)"
        return False
    out["changed"] = True
    if mode.check:
        out["msg"] = f"{hotfix} would be removed"
        return False
    done = uninstall(transport, os_facts, before, float(args["timeout"]))
    out["uninstall"] = done.to_dict()
    out["changed"] = done.meaning != "already_absent"
    out["reboot_required"] = done.restart_required
    out["msg"] = f"{hotfix}: removed ({done.meaning})"
    return True
