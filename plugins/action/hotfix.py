# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kbfix.windows.hotfix: install, detect or remove one hotfix package (WinRM, or SMB for NT 4.0), without
PowerShell.

The logic is ``plugin_utils.tasks.hotfix_task`` over ``plugin_utils.tasks.installer``; this action checks the
arguments before any request.
"""

from __future__ import annotations

import typing as t
from pathlib import Path

from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import ArgumentError
from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks import hotfix_task, installer, package_settings
from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks.action_base import KbfixAction
from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks.arguments import check_timeout


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
        "reboot_timeout": {"type": "int", "default": 600},
        "sha256": {"type": "str"},
    }

    def execute(self, args: dict[str, t.Any], task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        hotfix = installer.hotfix_id(args["id"], "id")
        check_timeout(args["timeout"], "timeout")
        os_facts = self.task_os_facts(args["host_facts"], task_vars)
        request = self._request(hotfix, args, task_vars, os_facts) if args["source"] else None
        spec = hotfix_task.load_hotfix_spec(args["spec"], hotfix,
                                            lambda path, argument: self.find_spec_file(path, argument, task_vars))
        with self.connected(task_vars) as transport:
            start = transport.request_count
            # Every run starts from detecting the hotfix: after a restart an install that landed is found.
            out = self.resuming(transport, lambda: hotfix_task.apply(
                transport, hotfix_task.Mode(self.check_mode, self.diff_mode), hotfix, request, spec, os_facts, args),
                args)
        out["requests"] = transport.request_count - start
        return out

    # --- arguments ------------------------------------------------------------------------------------

    def _request(self, hotfix: str, args: dict[str, t.Any], task_vars: dict[str, t.Any],
                 os_facts: installer.OsFacts | None) -> installer.InstallRequest:
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
        installer.check_installer_file(location.filename, kind, "source")
        arguments = args["arguments"]
        if arguments is not None:
            installer.check_arguments(kind, location.path, arguments, "arguments")
        request = installer.InstallRequest(
            hotfix_id=hotfix, package=location, installer=kind,
            arguments=tuple(arguments) if arguments is not None else installer.DEFAULT_ARGUMENTS[kind],
            exit_codes=installer.exit_codes(), timeout=float(args["timeout"]),
            policy=package_settings.host_policy(lambda name: self.host_variable(name, task_vars)),
            sha256=package_settings.sha256_argument(args["sha256"], "sha256"),
        )
        # Refused here, before any request, when the package is not genuine (the host's architecture and
        # OS too when its facts are known; they are checked again when installing).
        installer.check_controller_package(request, os_facts)
        return request
