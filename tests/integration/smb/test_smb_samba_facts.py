"""What Samba's winreg really returns for the keys NT 4.0 identifies itself with, and what os_facts makes of
it: Samba synthesises CurrentVersion and ProductOptions, so the pre-created NT 4.0 values are hidden there and
os_facts says so instead of guessing a build number."""

from __future__ import annotations

import pytest
from smbhost import SAMBA_SYNTHESISED

from ansible_collections.kbfix.windows.plugins.plugin_utils.article.model import RegistryValue
from ansible_collections.kbfix.windows.plugins.plugin_utils.errors import TransportError
from ansible_collections.kbfix.windows.plugins.plugin_utils.transport.smb.transport import (
    CURRENT_VERSION,
    ENVIRONMENT,
    PRODUCT_OPTIONS,
)


def test_samba_synthesised_values(fixed_host, connect):
    transport = connect(fixed_host)
    for (key, name), data in SAMBA_SYNTHESISED.items():
        assert transport.read_value(key, name) == RegistryValue("string", data), (key, name)


def test_values_written_under_synthesised_keys_are_hidden_but_subkeys_are_not(fixed_host, connect):
    # The offline registry holds them (net registry reads the tdb directly) ...
    offline = fixed_host.net_registry("getvalue", CURRENT_VERSION, "CurrentBuildNumber")
    assert "1381" in offline
    # ... but smbd answers from its own backend for these two keys' values.
    transport = connect(fixed_host)
    assert transport.read_values(CURRENT_VERSION, ["CurrentBuildNumber", "CSDVersion"]) == {
        "CurrentBuildNumber": None, "CSDVersion": None}
    assert transport.read_value(PRODUCT_OPTIONS, "ProductSuite") is None
    assert transport.key_exists(CURRENT_VERSION + r"\Hotfix\Q253729")
    assert transport.read_value(ENVIRONMENT, "PROCESSOR_ARCHITECTURE") == RegistryValue("string", "x86")


def test_os_facts_reports_what_samba_lacks(fixed_host, connect):
    with pytest.raises(TransportError, match=r"CurrentBuildNumber is 'missing'.*Windows 6\.1") as caught:
        connect(fixed_host).os_facts()
    assert fixed_host.host in str(caught.value)


def test_writes_to_synthesised_values_do_not_pretend(fixed_host, connect):
    transport = connect(fixed_host)
    # Samba refuses the write (ERROR_REGISTRY_IO_FAILED, 1016): an error, never a reported change.
    with pytest.raises(TransportError, match=r"BaseRegSetValue on .*CSDVersion returned Win32 error 1016"):
        transport.set_value(CURRENT_VERSION, "CSDVersion", RegistryValue("string", "Service Pack 6"), create=False)
