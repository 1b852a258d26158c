# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Typed WMI over WS-Man: queries (WQL, or enumeration with a client-side filter on WinRM 1.0), hotfix records,
file facts, OS facts, pending restart. The registry through StdRegProv is ``stdregprov.py``.
"""

from __future__ import annotations

import datetime
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from ...article.model import Architecture, FileFacts, OsFacts, registry_key_id
from ...errors import (
    ArgumentError,
    ClassNotFoundError,
    FilterNotSupportedError,
    InstanceNotFoundError,
    KbfixError,
    TransportError,
)
from .. import escape, registry_path
from ..base import LOG_STEPS, RestartScope
from ..indicators import (
    pending_restart_from,
    pending_restart_plan,
)
from ..registry_path import parse_key
from . import replies, wsman
from .client import WinRMClient
from .stdregprov import key_exists, read_value

T = TypeVar("T")
HIVES = registry_path.HIVES  # the hive table, as callers of this module knew it

# Pending-restart indicators and the source names reported in HostFacts.reboot_pending_sources.


# ---------------------------------------------------------------------------------------------------
# Queries (WQL, or plain enumeration + client-side filter on WinRM 1.0)


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Query:
    """``SELECT props FROM class [WHERE prop='a' OR prop='b']``, built once so the WQL and the client-side
    filter used without WQL (WinRM 1.0) cannot disagree."""

    class_name: str
    properties: tuple[str, ...] = ()  # () = SELECT *
    match_property: str | None = None
    match_values: tuple[str, ...] = ()
    namespace: str = "root/cimv2"

    def __post_init__(self) -> None:
        for ident in (self.class_name, *self.properties, *([self.match_property] if self.match_property else [])):
            if not _IDENT.fullmatch(ident):
                raise ArgumentError("query", f"{ident!r} is not a WMI class or property name")

    def wql(self) -> str:
        columns = ",".join(self.properties) if self.properties else "*"
        # Identifiers are checked in __post_init__ and values go through escape.wql_string.
        text = f"SELECT {columns} FROM {self.class_name}"  # noqa: S608
        if self.match_property and self.match_values:
            text += " WHERE " + escape.wql_or(self.match_property, self.match_values)
        return text

    def matches(self, obj: replies.WmiObject) -> bool:
        if not self.match_property or not self.match_values:
            return True
        # WQL string comparison is case-insensitive.
        actual = replies.as_str(obj.get(self.match_property))
        return actual is not None and actual.casefold() in {v.casefold() for v in self.match_values}


# A filtered query every WMI host answers: a host that refuses even this refuses filters as such (WinRM 1.0).
_FILTER_PROBE = "SELECT Version FROM Win32_OperatingSystem"
_PROBE_LOCK = threading.Lock()


def _filters_refused(client: WinRMClient) -> bool:
    """Whether the host refuses WQL filters, asked after one query's filter fault. That fault alone decides
    nothing: the query may be at fault (a bad WHERE, a class the host lacks), so the host is marked filter-less
    only when it also refuses ``_FILTER_PROBE``, once per client; the answer sticks either way."""
    with _PROBE_LOCK:  # concurrent queries (os_details) failing together probe once
        if client.supports_filter is None:
            try:
                client.enumerate(wsman.wmi_resource("root/cimv2", "*"), _FILTER_PROBE)
                client.supports_filter = True
            except FilterNotSupportedError:
                client.supports_filter = False
    return client.supports_filter is False


def _filtered(client: WinRMClient, namespace: str, class_name: str, wql: str) -> list[replies.WmiObject]:
    """One WQL enumeration; a class the namespace lacks is named in the error."""
    try:
        items = client.enumerate(wsman.wmi_resource(namespace, "*"), wql)
    except ClassNotFoundError as exc:
        raise ClassNotFoundError(f"{client.host}: {namespace} has no class {class_name}: {exc}", code=exc.code,
                                 subcode=exc.subcode, action=exc.action) from None
    client.supports_filter = True
    return items


def query(client: WinRMClient, q: Query) -> list[replies.WmiObject]:
    if client.supports_filter is not False:
        try:
            return _filtered(client, q.namespace, q.class_name, q.wql())
        except FilterNotSupportedError:
            if not _filters_refused(client):
                raise
            client.log(LOG_STEPS, f"{client.host}: WQL filters are not supported (WinRM 1.0): enumerating instead")
    return [o for o in client.enumerate(wsman.wmi_resource(q.namespace, q.class_name)) if q.matches(o)]


def run_concurrently(client: WinRMClient, calls: Sequence[Callable[[], T]]) -> list[T]:
    """Run independent calls at once, bounded by the client's in-flight limit; the first error wins."""
    if len(calls) <= 1:
        return [c() for c in calls]
    with ThreadPoolExecutor(max_workers=min(len(calls), client.settings.max_in_flight)) as pool:
        futures = [pool.submit(c) for c in calls]
        return [f.result() for f in futures]


# --- hotfixes ----------------------------------------------------------------------------------------


def qfe_hotfixes(client: WinRMClient, hotfix_ids: Iterable[str]) -> dict[str, list[replies.WmiObject]]:
    """Win32_QuickFixEngineering records for these ids (one WQL with an OR of ids). Keyed by upper-case
    id; ids without a record are absent. On XP/2003 this class reads the ``Updates\\<product>\\SPn``
    registry records; on Vista and later it lists CBS packages only."""
    ids = tuple(dict.fromkeys(i.strip().upper() for i in hotfix_ids if i.strip()))
    if not ids:
        return {}
    q = Query("Win32_QuickFixEngineering", ("HotFixID", "ServicePackInEffect", "Description", "InstalledOn"),
              "HotFixID", ids)
    found: dict[str, list[replies.WmiObject]] = {}
    for obj in query(client, q):
        hotfix = (replies.as_str(obj.get("HotFixID")) or "").strip().upper()
        if hotfix in ids:
            found.setdefault(hotfix, []).append(obj)
    return found


_UPDATES_RECORD = re.compile(r"HKLM\\SOFTWARE\\Microsoft\\Updates\\[^\\]+\\(?P<sp>[^\\]+)\\(?P<id>[^\\]+)", re.I)
_HOTFIX_RECORD = re.compile(r"HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Hotfix\\(?P<id>[^\\]+)", re.I)


@dataclass(frozen=True)
class QfeRecord:
    """A legacy hotfix record key that Win32_QuickFixEngineering reports as an instance."""

    hotfix_id: str  # upper case
    service_pack: str | None  # the SPn of an Updates\<product>\SPn\KB record


def qfe_record(os: OsFacts, key: str) -> QfeRecord | None:
    r"""On NT 4.0 to Server 2003 the QFE provider's instances *are* the registry records under
    ``...\Windows NT\CurrentVersion\Hotfix\<id>`` and ``...\Updates\<product>\<SPn>\<id>`` (HotFixID = the
    key name, ServicePackInEffect = SPn), so one QFE query answers whether such keys exist. The product
    part is not in the instance; a KB number belongs to one product. Vista and later list CBS only."""
    if int(os.version.split(".")[0]) >= 6:
        return None
    path = str(parse_key(key))
    match = _UPDATES_RECORD.fullmatch(path)
    if match:
        return QfeRecord(match["id"].upper(), match["sp"].upper())
    match = _HOTFIX_RECORD.fullmatch(path)
    return QfeRecord(match["id"].upper(), None) if match else None


def qfe_has_record(found: Mapping[str, list[replies.WmiObject]], record: QfeRecord) -> bool:
    for obj in found.get(record.hotfix_id, []):
        sp = (replies.as_str(obj.get("ServicePackInEffect")) or "").strip().upper()
        if record.service_pack is None or sp == record.service_pack:
            return True
    return False


# --- files -----------------------------------------------------------------------------------------

_FILE_PROPERTIES = ("Name", "Version", "FileSize", "LastModified")
_FILES_PER_QUERY = 50  # keeps each WQL (and its envelope) far below MaxEnvelopeSize


def _file_from(path: str, obj: replies.WmiObject | None) -> FileFacts:
    if obj is None:
        return FileFacts(path=path, exists=False)
    version = replies.as_str(obj.get("Version")) or None
    return FileFacts(path=path, exists=True, version=version, size=replies.as_int(obj.get("FileSize")),
                     modified=replies.as_datetime(obj.get("LastModified")))


def file_facts(client: WinRMClient, paths: Sequence[str]) -> dict[str, FileFacts]:
    """Facts for many files in one CIM_DataFile query (keyed by ``path.casefold()``). Files the host does
    not return do not exist. Without WQL (WinRM 1.0) each file is a Get by its ``Name`` key, because
    enumerating CIM_DataFile would list every file on the disk."""
    unique = list(dict.fromkeys(paths))
    if not unique:
        return {}
    for p in unique:
        escape.wql_string(p, "path")  # refuse unsendable paths before any request
    if client.supports_filter is not False:
        try:
            return _files_by_wql(client, unique)
        except FilterNotSupportedError:
            if not _filters_refused(client):
                raise
            client.log(LOG_STEPS, f"{client.host}: WQL filters are not supported (WinRM 1.0): one Get per file")
    facts = run_concurrently(client, [partial(_file_by_get, client, p) for p in unique])
    return {f.path.casefold(): f for f in facts}


def _files_by_wql(client: WinRMClient, paths: list[str]) -> dict[str, FileFacts]:
    result: dict[str, FileFacts] = {}
    for start in range(0, len(paths), _FILES_PER_QUERY):
        chunk = tuple(paths[start:start + _FILES_PER_QUERY])
        # Selected properties: the reply is w:XmlFragment items, whose LastModified is an unqualified Datetime.
        items = _filtered(client, "root/cimv2", "CIM_DataFile", Query("CIM_DataFile", _FILE_PROPERTIES, "Name",
                                                                      chunk).wql())
        by_name = {(replies.as_str(o.get("Name")) or "").casefold(): o for o in items}
        for p in chunk:
            result[p.casefold()] = _file_from(p, by_name.get(p.casefold()))
    return result


def _file_by_get(client: WinRMClient, path: str) -> FileFacts:
    try:
        obj = client.get(wsman.wmi_resource("root/cimv2", "CIM_DataFile"), {"Name": path})
    except InstanceNotFoundError:
        return FileFacts(path=path, exists=False)
    return _file_from(path, obj)


# --- OS facts ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OsDetails:
    facts: OsFacts
    last_boot: datetime.datetime | None
    hostname: str
    system_type: str
    os_architecture: str | None  # Win32_OperatingSystem.OSArchitecture, None before Vista
    domain: str = ""  # Win32_ComputerSystem.Domain (the workgroup when not joined)
    domain_role: int | None = None  # Win32_ComputerSystem.DomainRole


def architecture(version: str, os_architecture: str | None, system_type: str | None) -> Architecture:
    """OSArchitecture exists from Vista (6.0) on; before, Win32_ComputerSystem.SystemType tells the
    architecture of the running OS ("X86-based PC" for 32-bit Windows even on 64-bit hardware)."""
    st = (system_type or "").casefold()
    if "itanium" in st or "ia64" in st or "ia-64" in st:
        return "ia64"
    if os_architecture and int(version.split(".")[0]) >= 6:
        # OSArchitecture is localised ("64-bit", "64 bits"), so look at the digits only.
        if "64" in os_architecture:
            return "x64"
        if "32" in os_architecture:
            return "x86"
    if "x64" in st or "amd64" in st or "em64t" in st:
        return "x64"
    if "x86" in st:
        return "x86"
    raise KbfixError(f"cannot tell the architecture from OSArchitecture={os_architecture!r}, "
                     f"SystemType={system_type!r}")


_OS_QUERY = Query("Win32_OperatingSystem")  # SELECT *: OSArchitecture does not exist before Vista
# The facts module's domain comes from the same instance: one read of Win32_ComputerSystem per host.
_CS_QUERY = Query("Win32_ComputerSystem", ("Name", "SystemType", "Domain", "DomainRole"))


def os_details(client: WinRMClient) -> OsDetails:
    os_items, cs_items = run_concurrently(client, [lambda: query(client, _OS_QUERY), lambda: query(client, _CS_QUERY)])
    if not os_items or not cs_items:
        raise TransportError(f"{client.host}: Win32_OperatingSystem or Win32_ComputerSystem returned nothing")
    osi, csi = os_items[0], cs_items[0]
    version = replies.as_str(osi.get("Version")) or ""
    if not re.fullmatch(r"\d+\.\d+\.\d+", version):
        raise TransportError(f"{client.host}: unexpected Win32_OperatingSystem.Version {version!r}")
    os_arch = replies.as_str(osi.get("OSArchitecture")) if "OSArchitecture" in osi else None
    system_type = replies.as_str(csi.get("SystemType")) or ""
    facts = OsFacts(
        version=version,
        service_pack=replies.as_int(osi.get("ServicePackMajorVersion")) or 0,
        architecture=architecture(version, os_arch, system_type),
        product_type=replies.as_int(osi.get("ProductType")) or 1,
        caption=(replies.as_str(osi.get("Caption")) or "").strip(),
        r2=(replies.as_str(osi.get("OtherTypeDescription")) or "").strip().upper() == "R2",
        system_root=replies.as_str(osi.get("WindowsDirectory")) or "C:\\WINDOWS",
        # Already in this reply (SELECT *): the engine compares it with the fixed files' write times.
        last_boot=replies.as_datetime(osi.get("LastBootUpTime")),
    )
    return OsDetails(facts, facts.last_boot,
                     replies.as_str(csi.get("Name")) or replies.as_str(osi.get("CSName")) or "", system_type, os_arch,
                     replies.as_str(csi.get("Domain")) or "", replies.as_int(csi.get("DomainRole")))


def os_facts(client: WinRMClient) -> OsFacts:
    return os_details(client).facts


def last_boot_time(client: WinRMClient) -> datetime.datetime | None:
    items = query(client, Query("Win32_OperatingSystem", ("LastBootUpTime",)))
    return replies.as_datetime(items[0].get("LastBootUpTime")) if items else None


def win32_shutdown(client: WinRMClient, flags: int) -> int:
    """Win32_OperatingSystem.Win32Shutdown(Flags) on the OS instance (6 = forced reboot). Returns the
    method's ReturnValue. Needs the instance's key (Name), so one enumeration first."""
    items = query(client, Query("Win32_OperatingSystem", ("Name",)))
    if not items:
        raise TransportError(f"{client.host}: no Win32_OperatingSystem instance")
    name = replies.as_str(items[0].get("Name")) or ""
    out = client.invoke(wsman.wmi_resource("root/cimv2", "Win32_OperatingSystem"), "Win32Shutdown",
                        {"Flags": flags}, selectors={"Name": name}, write=True)
    return replies.as_int(out.get("ReturnValue")) or 0


# --- pending restart ------------------------------------------------------------------------------

# "article": the indicators the seed articles' installers leave (update.exe / hotfix.exe queue renames,
# wusa stages a CBS package); what an audit of an article needs, at the fewest requests.
# "full": also what other agents leave (Windows Update's RebootRequired, update.exe's volatile key), for the
# facts and reboot modules, which answer "does this host need a restart" whoever asked for it.


def pending_restart(client: WinRMClient, os: OsFacts,
                    scope: RestartScope = "full") -> tuple[bool, tuple[str, ...]]:
    """Whether a restart is pending and which indicators say so; the reads go out together."""
    plan = pending_restart_plan(os, scope)
    workers = max(1, min(len(plan.values) + len(plan.keys), client.settings.max_in_flight))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        value_reads = {(registry_key_id(k), n.casefold()): pool.submit(read_value, client, k, n, t)
                       for k, n, t in plan.values}
        key_reads = {registry_key_id(k): pool.submit(key_exists, client, k) for k in plan.keys}
        values = {k: f.result() for k, f in value_reads.items()}
        keys = {k: f.result() for k, f in key_reads.items()}
    return pending_restart_from(values, keys)
