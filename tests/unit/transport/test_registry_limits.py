# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Registry writes bounded before any request (issue 15 item 3): the registry's element size limits and the
host's MaxEnvelopeSizekb (150 KB before WinRM 3.0, 500 KB from 3.0), measured on the real request."""

from __future__ import annotations

import pytest

from ansible_collections.kbfix.windows.plugins.plugin_utils.article.model import RegistryValue
from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import ArgumentError
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport import base
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import client as winrm
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.winrm import stdregprov, wsman

KEY = r"HKLM\SOFTWARE\kbfix"


def offline_client() -> winrm.WinRMClient:
    # Never connects: check_write builds and measures the request without sending it.
    return winrm.WinRMClient(winrm.WinRMSettings(host="127.0.0.1", port=1, username="u", password="p"))


@pytest.mark.parametrize(("version", "limit"), [
    (None, 150 * 1024), ("1.1", 150 * 1024), ("2.0", 150 * 1024), ("3.0", 500 * 1024), ("4.0", 500 * 1024),
    ("garbage", 150 * 1024),
])
def test_envelope_limit_by_winrm_version(version: str | None, limit: int) -> None:
    assert wsman.max_envelope_size(version) == limit


def test_the_host_winrm_version_decides_what_fits() -> None:
    client = offline_client()
    value = RegistryValue("string", "x" * 300_000)
    with pytest.raises(ArgumentError) as info:
        stdregprov.check_write(client, KEY, "Big", value)
    assert info.value.field == "data" and "MaxEnvelopeSizekb 150" in str(info.value)
    stdregprov.check_write(client, KEY, "Big", value, stack_version="3.0")  # fits 500 KB
    with pytest.raises(ArgumentError, match="MaxEnvelopeSizekb 500"):
        stdregprov.check_write(client, KEY, "Big", RegistryValue("string", "&" * 120_000), stack_version="3.0")
    client.stack_version = "3.0"  # learned from Identify
    stdregprov.check_write(client, KEY, "Big", value)
    assert client.request_count == 0


def test_binary_data_is_measured_as_it_is_encoded() -> None:
    # Each byte travels as its own <uValue> element: 10 kB of data is a request over 150 KB.
    with pytest.raises(ArgumentError, match="MaxEnvelopeSizekb 150"):
        stdregprov.check_write(offline_client(), KEY, "Blob", RegistryValue("binary", bytes(10_000)))
    stdregprov.check_write(offline_client(), KEY, "Blob", RegistryValue("binary", bytes(1_000)))


def test_xml_escaping_counts() -> None:
    # '&' is sent as '&amp;': 40,000 of them are a 200 kB request although the string is 40,000 characters.
    with pytest.raises(ArgumentError):
        stdregprov.check_write(offline_client(), KEY, "Amp", RegistryValue("string", "&" * 40_000))
    stdregprov.check_write(offline_client(), KEY, "Plain", RegistryValue("string", "a" * 40_000))


def test_registry_element_limits() -> None:
    with pytest.raises(ArgumentError) as info:
        base.check_registry_value("n" * 16_384, RegistryValue("dword", 1))
    assert info.value.field == "name"
    base.check_registry_value("n" * 16_383, RegistryValue("dword", 1))
    assert base.registry_data_size(RegistryValue("string", "abc")) == 8  # UTF-16 and the terminating NUL
    assert base.registry_data_size(RegistryValue("multistring", ["a", "bc"])) == 12  # a\0bc\0\0
    with pytest.raises(ArgumentError) as info:
        base.check_registry_value("v", RegistryValue("multistring", ["y" * 1000] * 600))
    assert info.value.field == "data" and "1048576" in str(info.value)
