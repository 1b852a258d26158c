# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the action base hides from every task result: no_log options, the host's password variables."""

from __future__ import annotations

import importlib

from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks import redact


def _spec(module: str) -> dict[str, dict[str, object]]:
    action = importlib.import_module(f"ansible_collections.kbfix.windows.plugins.action.{module}")
    spec: dict[str, dict[str, object]] = action.ActionModule.ARGUMENT_SPEC
    return spec


def test_the_upload_password_of_fleet_report_is_masked_wherever_a_message_quotes_it() -> None:
    args = {"upload_url": "https://reports.example.com/", "upload_username": "audit", "upload_password": "Pa55-w0rd"}
    hidden = redact.secrets(_spec("fleet_report"), args, {})
    result = {"msg": "upload refused for audit:Pa55-w0rd", "uploaded": [], "nested": [("Pa55-w0rd", 1)]}
    scrubbed = redact.scrub(result, hidden)
    assert "Pa55-w0rd" not in repr(scrubbed)
    assert scrubbed["msg"] == f"upload refused for audit:{redact.MASK}"
    # the user name is not a secret and stays readable
    assert "audit" in scrubbed["msg"]


def test_host_password_variables_are_masked_longest_first() -> None:
    hidden = redact.secrets({}, {}, {"ansible_password": "abc", "ansible_become_password": "abcdef"})
    assert hidden == ["abcdef", "abc"]
    assert redact.scrub("x abcdef y abc", hidden) == f"x {redact.MASK} y {redact.MASK}"


def test_a_list_given_as_a_password_is_masked_item_by_item_and_whole() -> None:
    hidden = redact.secrets({}, {}, {"ansible_password": ["one", "two"]})
    text = "ansible_password: ['one', 'two'] is not a string"
    assert "one" not in redact.scrub(text, hidden) and "two" not in redact.scrub(text, hidden)
