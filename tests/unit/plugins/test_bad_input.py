# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bad-input generator (bad_inputs.py): over a thousand bad task arguments across the six modules and
the article roles' variables, each through the real action plugin (argument spec, base class, execute), the
host pointed at a TCP listener that counts connections. Every one must fail with a message naming the
argument, reach nothing, and leak nothing (no traceback, no password)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from action_harness import CountingListener, counting_listener, host_vars, run_action
from bad_inputs import all_cases

PASSWORD = "Not-A-Real-Pass1"  # action_harness.host_vars
CASES = all_cases()


@pytest.fixture(scope="module")
def listener() -> Iterator[CountingListener]:
    with counting_listener() as counting:
        yield counting


def test_the_generator_covers_every_module_with_over_a_thousand_cases() -> None:
    assert len(CASES) >= 1000
    by_module = Counter(c.module for c in CASES)
    assert set(by_module) == {"registry_value", "file_version", "hotfix", "reboot", "facts", "kb_article",
                              "package_lock"}
    fields = {c.field for c in CASES}
    assert {"reconnectable_servers", "reconnect_timeout", "asynchronous_credits", "file_server"} <= fields


def test_every_bad_argument_is_refused_naming_it_before_any_request(listener: CountingListener) -> None:
    # One test over all cases rather than one per case: 1,400 pytest items would cost more than the cases.
    wrong = []
    for case in CASES:
        before = listener.accepted
        try:
            variables = host_vars(listener.port, kbfix_smb_port=listener.port, **case.host_vars)
            result = run_action(case.module, case.args, variables, check_mode=case.check_mode)
        except Exception as exc:  # an exception escaping the action is itself the finding
            wrong.append(f"{case.id}: raised {type(exc).__name__}: {str(exc)[:200]}")
            continue
        msg = str(result.get("msg", ""))
        if listener.accepted != before:
            wrong.append(f"{case.id}: reached the host ({msg[:200]})")
        elif result.get("failed") is not True or result.get("unreachable"):
            wrong.append(f"{case.id}: not refused: {msg[:200]}")
        elif case.field not in msg:
            wrong.append(f"{case.id}: the message does not name {case.field!r}: {msg[:200]}")
        elif "Traceback" in msg or "exception" in result or PASSWORD in str(result):
            wrong.append(f"{case.id}: leaks a traceback or the password: {msg[:200]}")
    assert not wrong, f"{len(wrong)} of {len(CASES)} cases:\n" + "\n".join(wrong[:60])
    assert listener.accepted == 0
