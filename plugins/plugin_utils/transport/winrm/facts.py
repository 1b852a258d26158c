# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``kbfix_*`` facts of ``kbfix.windows.facts``: OS, boot, domain, pending restart and the WinRM stack
version (from an authenticated Identify, else guessed from the OS version).

Pure library: no Ansible imports.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET  # only walks a tree replies.parse_reply built with defusedxml
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ...article.model import OsFacts
from ...errors import AuthenticationError, HostUnreachableError, KbfixError
from ..base import LOG_STEPS
from . import wmi, wsman
from .client import WinRMClient

# DSP0226's namespace, which Windows answers with (Test-WSMan shows it as "wsmid"). MS-WSMV's namespace table
# spells it ".../identify/1/..." and some clients copied that, so replies in either are read.
NS_IDENTITY = "http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd"
NS_IDENTITY_MS_WSMV = "http://schemas.dmtf.org/wbem/wsman/identify/1/wsmanidentity.xsd"
_STACK = re.compile(r"Stack:\s*(\d+(?:\.\d+)*)")
# Win32_ComputerSystem.DomainRole: 0 standalone workstation, 1 member workstation, 2 standalone server,
# 3 member server, 4 backup DC, 5 primary DC.
_DOMAIN_MEMBER_ROLES = frozenset({1, 3, 4, 5})


@dataclass(frozen=True)
class _IdentifyRequest(wsman.Request):
    """The WS-Management Identify request (DSP0226 section 11): a body-only envelope, no Action, no ResourceURI.

    Sent authenticated, on the client's connections: Windows answers an unauthenticated Identify only with the
    ``WSMANIDENTIFY: unauthenticated`` HTTP header and then zeroes the OS part of ProductVersion
    (``OS: 0.0.0 SP: 0.0 Stack: 2.0``)."""

    def to_xml(self, to: str, message_id: str, operation_timeout: float = 20,
               max_envelope_size: int = wsman.DEFAULT_MAX_ENVELOPE_SIZE, locale: str = "en-US") -> bytes:
        del to, message_id, operation_timeout, max_envelope_size, locale
        return (f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{wsman.NS_SOAP}" '
                f'xmlns:wsmid="{NS_IDENTITY}"><s:Header/><s:Body><wsmid:Identify/></s:Body></s:Envelope>'
                ).encode()


IDENTIFY = _IdentifyRequest(name="Identify", action="", resource_uri="")


def stack_version(product_version: str) -> str | None:
    """``OS: 6.1.7601 SP: 1.0 Stack: 2.0`` -> ``2.0``."""
    match = _STACK.search(product_version)
    return match.group(1) if match else None


def identify(client: WinRMClient) -> str | None:
    """The WinRM stack version from an authenticated Identify, None when the service does not answer it
    (WinRM 1.0 speaks the 2005 WS-Management draft, which has no Identify)."""
    try:
        reply = client.send(IDENTIFY, idempotent=True)
    except (HostUnreachableError, AuthenticationError):
        raise
    except KbfixError as exc:
        client.log(LOG_STEPS, f"{client.host}: Identify failed ({exc}); WinRM version from the OS table")
        return None
    version = stack_from_reply(reply.body)
    client.stack_version = version or client.stack_version
    return version


def stack_from_reply(body: ET.Element) -> str | None:
    for namespace in (NS_IDENTITY, NS_IDENTITY_MS_WSMV):
        for element in body.iter(f"{{{namespace}}}ProductVersion"):
            return stack_version(element.text or "")
    return None


def winrm_version_from_os(os: OsFacts) -> str:
    """The WinRM version an OS ships with or, before Vista SP1, the first one it can install. A lower bound
    and a guess (WMF 2.0 upgrades XP SP3 / 2003 SP2 / Vista / 2008 to 2.0): used only without Identify."""
    parts = tuple(int(p) for p in os.version.split("."))
    if parts[:2] >= (6, 2):
        return "3.0"
    if parts[:2] == (6, 1):
        return "2.0"
    if parts[:2] == (6, 0):
        return "1.1"
    if parts[:2] == (5, 2) and os.r2:
        return "1.0"  # the 2003 R2 "Hardware Management" component
    return "1.1"  # XP SP2+ / 2003 SP1+ with KB936059


def _domain(details: wmi.OsDetails) -> tuple[str, bool | None]:
    role = details.domain_role
    return details.domain, None if role is None else role in _DOMAIN_MEMBER_ROLES


def gather(client: WinRMClient, *, ask_version: bool = True) -> dict[str, Any]:
    """Every ``kbfix_*`` fact, always read fresh: they exist to refresh what a play knows.

    ``ask_version=False`` leaves out the Identify request and takes the WinRM version from the OS table
    (``kbfix_winrm_version_source: os_table``): one request fewer for plays that do not need the version."""
    if ask_version:
        # Two independent reads at once (well below the client's in-flight bound).
        with ThreadPoolExecutor(max_workers=2) as pool:
            details_future = pool.submit(wmi.os_details, client)
            stack_future = pool.submit(identify, client)
            details, stack = details_future.result(), stack_future.result()
    else:
        details, stack = wmi.os_details(client), None
    domain, joined = _domain(details)
    pending, sources = wmi.pending_restart(client, details.facts)
    version, source = (stack, "identify") if stack else (winrm_version_from_os(details.facts), "os_table")
    client.log(LOG_STEPS, f"{details.hostname}: {details.facts.caption} {details.facts.version} "
                          f"SP{details.facts.service_pack} {details.facts.architecture}, WinRM {version} ({source})")
    return {
        "kbfix_os": details.facts.to_dict(),
        "kbfix_hostname": details.hostname,
        "kbfix_domain": domain,
        "kbfix_domain_member": joined,
        "kbfix_system_type": details.system_type,
        "kbfix_last_boot": details.last_boot.isoformat() if details.last_boot else None,
        "kbfix_reboot_pending": pending,
        "kbfix_reboot_pending_sources": list(sources),
        "kbfix_winrm_version": version,
        "kbfix_winrm_version_source": source,
    }
