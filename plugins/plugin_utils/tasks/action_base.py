# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The base of every kbfix.windows action plugin.

Each action only says what is specific to it (``ARGUMENT_SPEC`` and ``execute``); this base validates the
arguments (before any request reaches the host), opens the host's transport (WinRM from its ordinary
``ansible_connection: winrm`` settings, or SMB), and converts the collection's exceptions into a task result in
exactly one place (``result_from_error``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import typing as t
from pathlib import Path

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ..article.model import OsFacts
from ..errors import (
    ArgumentError,
    CodedError,
    HostUnreachableError,
    KbfixError,
    RemoteCommandError,
)
from ..transport import select
from ..transport.base import Transport
from . import arguments, article_runner, catalogue, redact, resume

display = Display()

# plugins/plugin_utils/tasks/action_base.py -> the collection's root directory.
COLLECTION_ROOT = Path(__file__).resolve().parents[3]
SPEC_DIRS_VARIABLE = "kbfix_spec_dirs"


def _import_before_fork() -> None:
    """Ansible's strategy imports each action plugin in the controller's main process (to read its
    ``BYPASS_HOST_LOOP``) and then forks one worker per host and task. What is imported here is inherited by
    every worker; what the task imports itself is imported again in each of them: the winrm connection plugin
    and pywinrm under it (requests, requests_ntlm, pyspnego, cryptography) cost more CPU per host and task
    than our own work (docs/performance.md). The SMB transport's impacket stays lazy: few hosts need it."""
    from ansible.plugins.loader import connection_loader

    select.import_implementations()
    connection_loader.get("ansible.builtin.winrm", class_only=True)


_import_before_fork()


def result_from_error(exc: KbfixError) -> dict[str, t.Any]:
    """The one conversion point from the exception hierarchy to an Ansible task result.

    Unreachable is not failed: Ansible counts and reports the two differently (``unreachable=1`` in the recap,
    the host is removed from the rest of the play), so a host that does not answer must say so.
    """
    if isinstance(exc, HostUnreachableError):
        return {"unreachable": True, "changed": False, "msg": str(exc)}
    result: dict[str, t.Any] = {"failed": True, "changed": False, "msg": str(exc)}
    if isinstance(exc, ArgumentError):
        result["argument"] = exc.field
    if isinstance(exc, CodedError) and exc.code is not None:
        result["wsman_fault_code"] = exc.code
    if isinstance(exc, RemoteCommandError):
        result.update(rc=exc.exit_code, stdout=exc.stdout, stderr=exc.stderr)
    return result


class KbfixAction(ActionBase):  # type: ignore[misc]  # ansible-core ships no type stubs
    """Validates arguments, supports check mode and diff, converts errors. Subclasses implement ``execute``."""

    ARGUMENT_SPEC: t.ClassVar[dict[str, t.Any]] = {}
    MUTUALLY_EXCLUSIVE: t.ClassVar[list[list[str]]] = []
    REQUIRED_IF: t.ClassVar[list[t.Any]] = []
    REQUIRED_ONE_OF: t.ClassVar[list[list[str]]] = []
    REQUIRED_TOGETHER: t.ClassVar[list[list[str]]] = []

    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp: t.Any = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        task_vars = task_vars or {}
        result = self._run_task(tmp, task_vars)
        # No password or no_log value in anything the task returns, whatever message quoted it.
        hidden = redact.secrets(self.ARGUMENT_SPEC, self._task.args, task_vars, self._connection)
        return t.cast(dict[str, t.Any], redact.scrub(result, hidden))

    def _run_task(self, tmp: t.Any, task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        result: dict[str, t.Any] = super().run(tmp, task_vars)
        del tmp  # ansible-core deprecated it; nothing here uses a remote temp dir
        try:
            arguments.check_raw(self.ARGUMENT_SPEC, self._task.args)
        except ArgumentError as exc:
            result.update(result_from_error(exc))
            return result
        try:
            _validation, args = self.validate_argument_spec(
                argument_spec=self.ARGUMENT_SPEC,
                mutually_exclusive=self.MUTUALLY_EXCLUSIVE,
                required_if=self.REQUIRED_IF,
                required_one_of=self.REQUIRED_ONE_OF,
                required_together=self.REQUIRED_TOGETHER,
            )
        except AnsibleActionFail as exc:
            result.update(failed=True, changed=False, msg=str(exc.message))
            return result
        try:
            result.update(self.execute(args, task_vars))
        except KbfixError as exc:
            result.update(result_from_error(exc))
        return result

    def execute(self, args: dict[str, t.Any], task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        raise NotImplementedError

    # Helpers for subclasses -------------------------------------------------------------------------------

    @property
    def check_mode(self) -> bool:
        return bool(self._task.check_mode)

    @property
    def diff_mode(self) -> bool:
        return bool(self._task.diff)

    @property
    def host_label(self) -> str:
        return str(self._play_context.remote_addr or self._task.get_name())

    def log(self, level: int, message: str) -> None:
        """Documented verbosity: 2 = steps, 4 = each WS-Man operation, 5 = raw payloads (credentials redacted)."""
        display.verbose(message, host=self.host_label, caplevel=level - 1)

    @contextlib.contextmanager
    def connected(self, task_vars: dict[str, t.Any], **overrides: t.Any) -> t.Iterator[Transport]:
        """How this host is reached (``transport.select``): WinRM from its ordinary ``ansible_connection: winrm``
        settings, or SMB for ``kbfix_transport: smb``; closed when the block ends, however it ends (the SMB
        session logs off, WinRM's connections close). The transport's log hook is ``self.log``, so ``-vv``
        shows steps, ``-vvvv`` each operation and ``-vvvvv`` payloads (credentials redacted by the transport)."""
        transport = select.open_transport(self._connection, self._host_settings(task_vars), self.log, **overrides)
        try:
            yield transport
        finally:
            transport.close()

    @staticmethod
    def resuming(transport: Transport, work: t.Callable[[], dict[str, t.Any]],
                 args: dict[str, t.Any]) -> dict[str, t.Any]:
        """``work()`` started again from a fresh read when the host goes down during the task and answers again
        within the ``reboot_timeout`` argument (``resume.run_task``): for modules where that is safe."""
        timeout = args["reboot_timeout"]
        arguments.check_timeout(timeout, "reboot_timeout", minimum=0)
        return resume.run_task(transport, work, timeout=float(timeout))

    def _host_settings(self, task_vars: dict[str, t.Any]) -> dict[str, t.Any]:
        # Ansible templates the connection plugin's options (WinRM's), not the variables a transport reads
        # itself: an inventory may say ``kbfix_smb_port: "{{ ansible_port }}"`` or vault a password.
        wanted = [k for k in task_vars if select.reads_variable(k)]
        return {**task_vars, **{k: self._templar.template(task_vars[k]) for k in wanted}}

    def templated(self, task_vars: dict[str, t.Any], names: t.Iterable[str]) -> dict[str, t.Any]:
        """``task_vars`` with the named collection variables templated: action plugins receive them raw, so an
        inventory's ``kbfix_spec_dirs: ["{{ playbook_dir }}/specs"]`` would otherwise arrive as the template."""
        out = dict(task_vars)
        for name in names:
            if name in out:
                out[name] = self._templar.template(out[name])
        return out

    def host_variable(self, name: str, task_vars: dict[str, t.Any]) -> t.Any:
        """One host variable, templated (action plugins receive variables raw), None when it is not set. Only
        the named variable is rendered: a play's other variables cost nothing per task."""
        if name not in task_vars:
            return None
        try:
            return self._templar.template(task_vars[name])
        except AnsibleError as exc:
            raise ArgumentError(name, f"cannot be templated: {exc.message}") from None

    def find_controller_file(self, path: str, argument: str) -> str:
        """A controller path, relative ones searched like ``files/`` lookups (the role's ``files/``, then the
        playbook's directory). Directories are found too."""
        arguments.check_controller_path(path, argument)
        try:
            return str(self._find_needle("files", path))
        except AnsibleError as exc:
            raise ArgumentError(argument, f"{path!r} was not found on the controller: {exc.message}") from None

    def find_spec_file(self, path: str, argument: str, task_vars: dict[str, t.Any]) -> str:
        """An article spec named by a task, resolved only within the spec search path (``spec_roots``), so a
        task cannot make the controller read (and report on) any file it can read. Nothing of the file's
        content reaches the error, only the field and the name given."""
        if not isinstance(path, str) or not path.strip() or "\x00" in path:
            raise ArgumentError(argument, "a spec file name is required")
        if not path.endswith((".yml", ".yaml")):
            raise ArgumentError(argument, f"{path!r} is not an article spec: give a .yml file name (found in a "
                                          "role's files/, the playbook's directory or kbfix_spec_dirs)")
        roots = self.spec_roots(task_vars)
        candidate = Path(path)
        if candidate.is_absolute():
            found = candidate
        else:
            found = Path(self.find_controller_file(path, argument))
        real = found.resolve()
        if not any(real.is_relative_to(root) for root in roots):
            raise ArgumentError(argument, f"{path!r} is outside the spec search path (the collection's roles, the "
                                          "current role, the playbook's directory and kbfix_spec_dirs)")
        if not real.is_file():
            raise ArgumentError(argument, f"{path!r} is not a file")
        return str(real)

    def spec_roots(self, task_vars: dict[str, t.Any]) -> list[Path]:
        """Where article specs may come from: this collection's roles, the running role, the playbook's
        directory, and the directories listed in ``kbfix_spec_dirs`` (the documented explicit path)."""
        roots = [COLLECTION_ROOT / "roles", Path(self._loader.get_basedir())]
        role = getattr(self._task, "_role", None)
        if role is not None and getattr(role, "_role_path", None):
            roots.append(Path(role._role_path))
        # The user's article directories are searched for articles, so their specs may be loaded too.
        roots.extend(self.article_dirs(task_vars))
        extra = self.templated(task_vars, [SPEC_DIRS_VARIABLE]).get(SPEC_DIRS_VARIABLE) or []
        if isinstance(extra, str):
            extra = [extra]
        arguments.check_text(extra, SPEC_DIRS_VARIABLE)  # a NUL would end in the OS's "embedded null byte"
        if not isinstance(extra, list) or not all(isinstance(d, str) and Path(d).is_absolute() for d in extra):
            raise ArgumentError(SPEC_DIRS_VARIABLE, "must be a list of absolute controller directories")
        roots.extend(Path(d) for d in extra)
        return [root.resolve() for root in roots]

    def article_dirs(self, task_vars: dict[str, t.Any]) -> list[Path]:
        """The directories of ``kbfix_article_paths`` (relative ones from the playbook's directory)."""
        value = self.host_variable(catalogue.ARTICLE_PATHS_VARIABLE, task_vars)
        return catalogue.article_dirs(value, Path(self._loader.get_basedir()))

    @staticmethod
    def known_os_facts(task_vars: dict[str, t.Any]) -> OsFacts | None:
        """``ansible_facts.kbfix_os`` as ``kbfix.windows.facts`` left it (``OsFacts.to_dict()``), or None when
        facts were not gathered (or do not have that shape) for this host."""
        facts = task_vars.get("ansible_facts")
        known = facts.get("kbfix_os") if isinstance(facts, dict) else None
        if not isinstance(known, dict):
            return None
        try:
            os_facts = article_runner.os_facts_from_mapping(known, "kbfix_os")
        except ArgumentError:
            return None
        # The facts module's boot time (the reboot module refreshes it) lets the engine tell an unrelated
        # pending restart from the article's own.
        boot = facts.get("kbfix_last_boot") if isinstance(facts, dict) else None
        return dataclasses.replace(os_facts, last_boot=article_runner.parse_boot_time(boot))

    @staticmethod
    def known_restart(task_vars: dict[str, t.Any]) -> list[str] | None:
        """``ansible_facts.kbfix_reboot_pending_sources`` as ``kbfix.windows.facts`` (or ``kbfix.windows.reboot``)
        left it, or None when it is not there or not a list of strings (then the host is asked)."""
        facts = task_vars.get("ansible_facts")
        sources = facts.get("kbfix_reboot_pending_sources") if isinstance(facts, dict) else None
        if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
            return None
        return list(sources)

    def task_os_facts(self, host_facts: dict[str, t.Any] | None, task_vars: dict[str, t.Any]) -> OsFacts | None:
        """A ``host_facts`` argument (checked, errors name ``host_facts.<key>``) before the gathered facts;
        None when neither is there and the host must be asked."""
        if host_facts is not None:
            return article_runner.os_facts_from_mapping(host_facts, "host_facts")
        return self.known_os_facts(task_vars)

    def os_facts(self, transport: Transport, task_vars: dict[str, t.Any]) -> OsFacts:
        """OS facts gathered earlier in the play, else queried from the host."""
        known = self.known_os_facts(task_vars)
        if known is not None:
            return known
        return transport.os_facts()
