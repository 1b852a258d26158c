# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""facts: the Identify exchange and the OS-table fallback; reboot: the shutdown command line; the base class'
OS-facts reuse. No host needed."""

from __future__ import annotations

import datetime
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.kbfix.windows.plugins.plugin_utils.article.model import OsFacts
from ansible_collections.kbfix.windows.plugins.plugin_utils.tasks.action_base import KbfixAction
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport import escape
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import cmdshell, replies, wsman
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import facts as host_facts

IDENTIFY_REPLY = """<s:Envelope xml:lang="en-US" xmlns:s="http://www.w3.org/2003/05/soap-envelope">
<s:Header/><s:Body><wsmid:IdentifyResponse xmlns:wsmid="{ns}">
<wsmid:ProtocolVersion>http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd</wsmid:ProtocolVersion>
<wsmid:ProductVendor>Microsoft Corporation</wsmid:ProductVendor>
<wsmid:ProductVersion>OS: 6.1.7601 SP: 1.0 Stack: 2.0</wsmid:ProductVersion>
</wsmid:IdentifyResponse></s:Body></s:Envelope>"""


def test_identify_request_is_the_dsp0226_envelope() -> None:
    xml = host_facts.IDENTIFY.to_xml("http://h:5985/wsman", "uuid:X")
    root = ET.fromstring(xml)
    body = root.find(f"{{{wsman.NS_SOAP}}}Body")
    assert body is not None
    assert [child.tag for child in body] == [f"{{{host_facts.NS_IDENTITY}}}Identify"]
    header = root.find(f"{{{wsman.NS_SOAP}}}Header")
    assert header is not None and len(header) == 0  # no Action, no ResourceURI: that is what makes it Identify


@pytest.mark.parametrize("namespace", [host_facts.NS_IDENTITY, host_facts.NS_IDENTITY_MS_WSMV])
def test_stack_version_from_an_identify_reply(namespace: str) -> None:
    parsed = replies.parse_reply(IDENTIFY_REPLY.format(ns=namespace).encode())
    assert parsed.reply is not None
    assert host_facts.stack_from_reply(parsed.reply.body) == "2.0"


def test_stack_version_text() -> None:
    assert host_facts.stack_version("OS: 5.2.3790 SP: 2.0 Stack: 1.1") == "1.1"
    assert host_facts.stack_version("OS: 10.0.17763 SP: 0.0 Stack: 3.0") == "3.0"
    assert host_facts.stack_version("OS: 0.0.0 SP: 0.0") is None  # an unauthenticated reply has no stack


@pytest.mark.parametrize(("version", "r2", "expected"), [
    ("5.1.2600", False, "1.1"), ("5.2.3790", False, "1.1"), ("5.2.3790", True, "1.0"), ("6.0.6001", False, "1.1"),
    ("6.1.7600", False, "2.0"), ("6.3.9600", False, "3.0"),
])
def test_winrm_version_table(version: str, r2: bool, expected: str) -> None:
    assert host_facts.winrm_version_from_os(OsFacts(version, 2, "x86", 3, r2=r2)) == expected


def test_shutdown_command_line() -> None:
    line = escape.cmd_line("shutdown", cmdshell.shutdown_args(0, "Restarting for KB977381"))
    assert line == 'shutdown /r /f /t 0 /c "Restarting for KB977381"'
    assert cmdshell.shutdown_args(30, "") == ["/r", "/f", "/t", "30"]


def test_known_os_facts_come_from_the_facts_module_shape() -> None:
    xp = OsFacts("5.1.2600", 1, "x86", 1, "Microsoft Windows XP Professional")
    assert KbfixAction.known_os_facts({"ansible_facts": {"kbfix_os": xp.to_dict()}}) == xp
    # With kbfix_last_boot the boot time comes along; a value without a zone is not trusted.
    booted = {"kbfix_os": xp.to_dict(), "kbfix_last_boot": "2024-03-01T06:00:00+00:00"}
    found = KbfixAction.known_os_facts({"ansible_facts": booted})
    assert found is not None and found.last_boot == datetime.datetime(2024, 3, 1, 6, 0, tzinfo=datetime.UTC)
    naive = KbfixAction.known_os_facts({"ansible_facts": {**booted, "kbfix_last_boot": "2024-03-01T06:00:00"}})
    assert naive is not None and naive.last_boot is None
    assert KbfixAction.known_os_facts({}) is None
    assert KbfixAction.known_os_facts({"ansible_facts": {"kbfix_os": {"version": "5.1.2600"}}}) is None
    assert KbfixAction.known_os_facts({"ansible_facts": {"kbfix_os": "5.1"}}) is None
