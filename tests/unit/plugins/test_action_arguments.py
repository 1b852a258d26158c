# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad arguments fail with a message naming the argument, before anything reaches the host.

Each case runs the real action plugin (argument spec, base class, execute) with the host pointed at a TCP
listener that counts connections: it must count none.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from action_harness import CountingListener, counting_listener, host_vars, run_action


@pytest.fixture(scope="module")
def listener() -> Iterator[CountingListener]:
    with counting_listener() as counting:
        yield counting

CASES: list[tuple[str, dict[str, Any], str]] = [
    # (module, args, text the message must contain)
    ("registry_value", {}, "missing required arguments: path"),
    ("registry_value", {"path": r"HKXX\SOFTWARE\X", "data": "a"}, "path: "),
    ("registry_value", {"path": r"HKLM\SOFTWARE\X", "type": "sz", "data": "a"}, "type must be one of"),
    ("registry_value", {"path": r"HKLM\SOFTWARE\X", "type": "dword", "data": "sixty"}, "data: 'sixty' is not a dword"),
    ("registry_value", {"path": r"HKLM\SOFTWARE\X", "type": "dword", "data": 2**32}, "data: 4294967296 does not fit"),
    ("registry_value", {"path": r"HKLM\SOFTWARE\X", "type": "dword"}, "data: is required"),
    ("registry_value", {"path": r"HKLM\SOFTWARE\X", "type": "dword", "data": 1, "multistring_mode": "merge"},
     "multistring_mode: merge works on multistring values only"),
    ("registry_value", {"path": r"HKLM\SOFTWARE\X", "type": "multistring", "data": ["a", ""]}, "data[1]: "),
    ("registry_value", {"path": r"HKLM\SOFTWARE\X", "data": "a", "view": "16"}, "view must be one of"),
    ("registry_value", {"path": r"HKLM\SOFTWARE\X", "data": "a", "bogus": 1}, "Unsupported parameters"),
    ("file_version", {}, "missing required arguments: paths"),
    ("file_version", {"paths": ["mrxsmb.sys"]}, "paths[0]: "),
    ("file_version", {"paths": [r"C:\x.dll"], "minimum_version": "1.2"}, "minimum_version[0]: "),
    ("file_version", {"paths": [r"C:\x.dll"], "minimum_version": "1.2.3.4", "exact_version": "1.2.3.4"},
     "mutually exclusive: minimum_version|exact_version"),
    ("file_version", {"paths": [r"C:\x.dll"], "size": 5, "date": "27-Sep-2003"}, "date: "),
    ("file_version", {"paths": [r"C:\x.dll"], "size": "big"}, "size"),
    ("facts", {"gather_subset": "all"}, "Unsupported parameters"),
    ("reboot", {"mode": "sometimes"}, "mode must be one of"),
    ("reboot", {"pre_reboot_delay": 601}, "pre_reboot_delay: must be between 0 and 600"),
    ("reboot", {"reboot_timeout": 0}, "reboot_timeout: must be between 1 and 86400"),
    ("reboot", {"connect_timeout": 0}, "connect_timeout: "),
    ("reboot", {"msg": "100% done"}, "msg: cannot contain '%'"),
    ("reboot", {"msg": 'say "hi"'}, "msg: cannot contain '\"'"),
    ("reboot", {"msg": "x" * 128}, "msg: is 128 characters"),
]


@pytest.mark.parametrize(("module", "args", "fragment"), CASES)
def test_bad_arguments_fail_before_any_request(module: str, args: dict[str, Any], fragment: str,
                                                listener: CountingListener) -> None:
    result = run_action(module, args, host_vars(listener.port))
    assert result.get("failed") is True, result
    assert fragment in result["msg"], result["msg"]
    assert not result.get("unreachable")
    assert listener.accepted == 0, "the task reached the host before its arguments were checked"


def test_arguments_named_by_kbfix_checks_are_returned_separately(listener: CountingListener) -> None:
    result = run_action("registry_value", {"path": r"HKLM\X", "type": "binary", "data": [1, 300]},
                        host_vars(listener.port))
    assert result["argument"] == "data[1]"
    assert listener.accepted == 0


def test_a_host_without_winrm_connection_is_refused_with_a_clear_message() -> None:
    result = run_action("facts", {}, {"ansible_connection": "local"}, connection="local")
    assert result["failed"] is True
    assert result["argument"] == "ansible_connection"
    assert "needs ansible_connection=winrm" in result["msg"]
