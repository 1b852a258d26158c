# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kbfix.windows.hotfix: install, detect or remove one hotfix package over WinRM, without PowerShell.

The logic is ``plugin_utils.installer``; this action checks the arguments before any request and shapes
the result.
"""

from __future__ import annotations

import typing as t
from pathlib import Path

from ansible_collections.kbfix.windows.plugins.plugin_utils import installer, wmi
from ansible_collections.kbfix.windows.plugins.plugin_utils.action_base import KbfixAction
from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import ArgumentError
from ansible_collections.kbfix.windows.plugins.plugin_utils.model import OsFacts
from ansible_collections.kbfix.windows.plugins.plugin_utils.spec import ArticleSpec, load_spec, load_spec_data
from ansible_collections.kbfix.windows.plugins.plugin_utils.winrm import WinRMClient


class ActionModule(KbfixAction):
    ARGUMENT_SPEC: t.ClassVar[dict[str, t.Any]] = {
        "id": {"type": "str", "required": True},
        "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
        "source": {"type": "str"},
        "installer": {"type": "str", "choices": list(installer.INSTALLER_KINDS)},
        "arguments": {"type": "list", "elements": "str"},
        "allow_pending_reboot": {"type": "bool", "default": False},
        "spec": {"type": "raw"},
        "host_facts": {"type": "dict"},
        "timeout": {"type": "int", "default": 3600},
    }

    def execute(self, args: dict[str, t.Any], task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        hotfix = installer.hotfix_id(args["id"], "id")
        if args["timeout"] <= 0:
            raise ArgumentError("timeout", "must be a positive number of seconds")
        request = self._request(hotfix, args) if args["source"] else None
        spec = self._spec(args["spec"], hotfix)
        os_facts = self.task_os_facts(args["host_facts"], task_vars)
        client = self.winrm_client()
        start = client.request_count
        try:
            out = self._apply(client, hotfix, request, spec, os_facts, args)
        finally:
            client.close()
        out["requests"] = client.request_count - start
        return out

    def _apply(self, client: WinRMClient, hotfix: str, request: installer.InstallRequest | None,
               spec: ArticleSpec | None, os_facts: OsFacts | None, args: dict[str, t.Any]) -> dict[str, t.Any]:
        os_facts = os_facts or wmi.os_facts(client)
        before = installer.detect(client, os_facts, hotfix, spec)
        out: dict[str, t.Any] = {"id": hotfix, "state": args["state"], "changed": False,
                                 "detection_before": before.to_dict()}
        if args["state"] == "present":
            work = self._present(client, hotfix, request, before, os_facts, args, out)
        else:
            work = self._absent(client, hotfix, before, os_facts, args, out)
        after = installer.detect(client, os_facts, hotfix, spec) if work and not self.check_mode else before
        out.update(installed=after.installed, present=after.present, detection=after.to_dict())
        # A CBS package waiting for the restart is not in effect yet, whoever installed it.
        out["reboot_required"] = bool(out.get("reboot_required")) or after.install_pending
        if out["changed"] and self.diff_mode:
            word = "present" if args["state"] == "present" else "absent"
            other = "absent" if word == "present" else "present"
            out["diff"] = {"before_header": hotfix, "after_header": hotfix,
                           "before": f"{hotfix}: {other}\n", "after": f"{hotfix}: {word}\n"}
        return out

    def _present(self, client: WinRMClient, hotfix: str, request: installer.InstallRequest | None,
                 before: installer.Detection, os_facts: OsFacts, args: dict[str, t.Any],
                 out: dict[str, t.Any]) -> bool:
        if before.present:
            out["msg"] = f"{hotfix} is present ({', '.join(before.sources)})"
            return False
        if request is None:
            raise ArgumentError("source", f"is required: {hotfix} is not installed on {client.host}")
        if before.reboot_pending and not args["allow_pending_reboot"]:
            raise installer.pending_restart_refusal(client, hotfix, before.reboot_pending_sources)
        out["changed"] = True
        if self.check_mode:
            out["msg"] = f"{hotfix} would be installed from {request.package.filename}"
            return False
        done = installer.install(client, request, os_facts)
        out["install"] = done.to_dict()
        out["changed"] = done.changed
        out["reboot_required"] = done.restart_required
        out["msg"] = f"{hotfix}: {request.package.filename} exited with {done.exit_code} ({done.meaning})"
        return True

    def _absent(self, client: WinRMClient, hotfix: str, before: installer.Detection, os_facts: OsFacts,
                args: dict[str, t.Any], out: dict[str, t.Any]) -> bool:
        if not before.installed:
            out["msg"] = f"{hotfix} is not installed"
            if before.files_current:
                out["msg"] += " (its files are current, e.g. from a later update: nothing to remove)"
            return False
        out["changed"] = True
        if self.check_mode:
            out["msg"] = f"{hotfix} would be removed"
            return False
        done = installer.uninstall(client, os_facts, before, float(args["timeout"]))
        out["uninstall"] = done.to_dict()
        out["changed"] = done.meaning != "already_absent"
        out["reboot_required"] = done.restart_required
        out["msg"] = f"{hotfix}: removed ({done.meaning})"
        return True

    # --- arguments ------------------------------------------------------------------------------------

    def _request(self, hotfix: str, args: dict[str, t.Any]) -> installer.InstallRequest:
        text: str = args["source"]
        if installer.source_kind(text) == "controller":
            found = self.find_controller_file(text, "source")
            if not Path(found).is_file():
                raise ArgumentError("source", f"{found} is not a package file")
            location = installer.PackageLocation("controller", found)
        else:
            location = installer.remote_location(text, "source")
        installer.check_package_name(location.filename, hotfix, "source")
        kind: installer.InstallerKind = args["installer"] or installer.detect_installer(location.filename, "source")
        arguments = args["arguments"]
        return installer.InstallRequest(
            hotfix_id=hotfix, package=location, installer=kind,
            arguments=tuple(arguments) if arguments is not None else installer.DEFAULT_ARGUMENTS[kind],
            exit_codes=installer.exit_codes(), timeout=float(args["timeout"]),
        )

    def _spec(self, value: t.Any, hotfix: str) -> ArticleSpec | None:
        if value is None:
            return None
        if isinstance(value, str):
            path = Path(self.find_controller_file(value, "spec"))
            spec = load_spec(path)
        elif isinstance(value, dict):
            spec = load_spec_data(value, "spec")
        else:
            raise ArgumentError("spec", f"must be a spec path or inline spec data, got {value!r}")
        if hotfix not in spec.hotfix_ids:
            raise ArgumentError("spec", f"{spec.id} names the hotfix ids {', '.join(spec.hotfix_ids)}, not {hotfix}")
        return spec
