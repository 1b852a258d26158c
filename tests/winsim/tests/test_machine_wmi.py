"""winsim.wmi through Host.wmi_*: instances per profile, StdRegProv ReturnValues, OS methods."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from winsim.machine import Host, Instance, WmiError

CIMV2, DEFAULT = "root/cimv2", "root/default"
HKLM = "2147483650"


def make(tmp_path: Path, profile: str, name: str = "host1", **overrides: object) -> Host:
    return Host.create(name, profile, tmp_path / f"{name}.json", **overrides)


def one(host: Host, class_name: str) -> Instance:
    instances = host.wmi_enumerate(CIMV2, class_name)
    assert len(instances) == 1
    return instances[0]


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Host]:
    base = tmp_path_factory.mktemp("wmi")
    names = ("nt4-tse-sp6-x86", "xp-sp1-x86", "2003r2-sp2-x86", "2003r2-sp2-x64", "2008-sp2-x64", "2008r2-rtm-x64",
             "vista-rtm-x86")
    return {p: Host.create(p.replace(".", ""), p, base / f"{p}.json") for p in names}


# --- Win32_OperatingSystem / Win32_ComputerSystem ---------------------------------------------------------


def test_os_architecture_exists_only_from_vista(hosts: dict[str, Host]) -> None:
    assert "OSArchitecture" not in one(hosts["xp-sp1-x86"], "Win32_OperatingSystem").properties
    assert "OSArchitecture" not in one(hosts["2003r2-sp2-x64"], "Win32_OperatingSystem").properties
    assert one(hosts["2008-sp2-x64"], "Win32_OperatingSystem").properties["OSArchitecture"] == "64-bit"
    assert one(hosts["vista-rtm-x86"], "Win32_OperatingSystem").properties["OSArchitecture"] == "32-bit"


def test_operating_system_identity(hosts: dict[str, Host]) -> None:
    r2 = one(hosts["2003r2-sp2-x86"], "Win32_OperatingSystem")
    assert (r2.properties["Version"], r2.properties["BuildNumber"], r2.properties["CSDVersion"]) == \
        ("5.2.3790", "3790", "Service Pack 2")
    assert (r2.properties["ServicePackMajorVersion"], r2.properties["ProductType"]) == (2, 3)
    assert r2.properties["OtherTypeDescription"] == "R2"
    assert r2.properties["WindowsDirectory"] == "C:\\WINDOWS"
    assert r2.properties["SystemDirectory"] == "C:\\WINDOWS\\system32"
    assert r2.cim_types["ServicePackMajorVersion"] == "uint16" and r2.cim_types["LastBootUpTime"] == "datetime"
    vista = one(hosts["vista-rtm-x86"], "Win32_OperatingSystem")
    assert vista.properties["CSDVersion"] is None and vista.properties["OtherTypeDescription"] is None
    assert str(one(hosts["2008r2-rtm-x64"], "Win32_OperatingSystem").properties["Caption"]).endswith("R2 Enterprise ")


def test_last_boot_up_time_is_aware_utc_and_in_the_past(hosts: dict[str, Host]) -> None:
    boot = one(hosts["xp-sp1-x86"], "Win32_OperatingSystem").properties["LastBootUpTime"]
    assert isinstance(boot, dt.datetime) and boot.utcoffset() == dt.timedelta(0)
    assert boot < dt.datetime.now(dt.UTC)


@pytest.mark.parametrize(("profile", "system_type", "role"), [
    ("xp-sp1-x86", "X86-based PC", 0), ("2003r2-sp2-x64", "x64-based PC", 2), ("2008r2-rtm-x64", "x64-based PC", 2),
])
def test_computer_system(hosts: dict[str, Host], profile: str, system_type: str, role: int) -> None:
    props = one(hosts[profile], "Win32_ComputerSystem").properties
    assert (props["SystemType"], props["DomainRole"], props["PartOfDomain"], props["Domain"]) == \
        (system_type, role, False, "WORKGROUP")
    assert props["Name"] == hosts[profile].name.upper()


def test_ia64_system_type(tmp_path: Path) -> None:
    host = make(tmp_path, "2003r2-sp2-x64", os={"architecture": "ia64"}, domain="contoso.local")
    props = one(host, "Win32_ComputerSystem").properties
    assert (props["SystemType"], props["DomainRole"], props["PartOfDomain"]) == \
        ("Itanium (TM) -based System", 3, True)


def test_get_singleton_by_key_or_without_selectors(hosts: dict[str, Host]) -> None:
    host = hosts["xp-sp1-x86"]
    name = str(one(host, "Win32_OperatingSystem").properties["Name"])
    assert host.wmi_get(CIMV2, "Win32_OperatingSystem", {"name": name.upper()}).properties["Name"] == name
    assert host.wmi_get(CIMV2, "Win32_OperatingSystem", {}).properties["Name"] == name
    with pytest.raises(WmiError) as caught:
        host.wmi_get(CIMV2, "Win32_OperatingSystem", {"Name": "other"})
    assert caught.value.kind == "not_found"
    with pytest.raises(WmiError) as caught:
        host.wmi_get(CIMV2, "Win32_OperatingSystem", {"Version": "5.1.2600"})
    assert caught.value.kind == "invalid_parameter"


def test_unknown_classes_namespaces_and_nt4(hosts: dict[str, Host]) -> None:
    for namespace, class_name in ((CIMV2, "Win32_Nothing"), ("root/nothing", "Win32_OperatingSystem"),
                                  (DEFAULT, "Win32_OperatingSystem")):
        with pytest.raises(WmiError) as caught:
            hosts["xp-sp1-x86"].wmi_enumerate(namespace, class_name)
        assert caught.value.kind == "invalid_class"
    with pytest.raises(WmiError) as caught:
        hosts["nt4-tse-sp6-x86"].wmi_enumerate(CIMV2, "Win32_OperatingSystem")
    assert caught.value.kind == "invalid_class"


def test_namespace_spelling_is_flexible(hosts: dict[str, Host]) -> None:
    assert hosts["xp-sp1-x86"].wmi_enumerate("ROOT\\CIMV2", "win32_operatingsystem")


# --- Win32_QuickFixEngineering ----------------------------------------------------------------------------


def qfe(host: Host) -> dict[str, Instance]:
    return {str(i.properties["HotFixID"]): i for i in host.wmi_enumerate(CIMV2, "Win32_QuickFixEngineering")}


def test_xp_qfe_reads_the_updates_keys(hosts: dict[str, Host]) -> None:
    fixes = qfe(hosts["xp-sp1-x86"])
    assert set(fixes) == {"KB823980", "KB824146"}
    props = fixes["KB824146"].properties
    assert (props["ServicePackInEffect"], props["InstalledOn"], props["Description"]) == \
        ("SP2", "9/15/2003", "Windows XP Hotfix - KB824146")
    assert fixes["KB824146"].cim_types["InstalledOn"] == "string"
    got = hosts["xp-sp1-x86"].wmi_get(CIMV2, "Win32_QuickFixEngineering",
                                      {"HotFixID": "kb824146", "ServicePackInEffect": "SP2"})
    assert got.properties["HotFixID"] == "KB824146"
    with pytest.raises(WmiError):
        hosts["xp-sp1-x86"].wmi_get(CIMV2, "Win32_QuickFixEngineering", {"HotFixID": "KB824146"})


def test_nt4_hotfix_key_is_listed_by_qfe(tmp_path: Path) -> None:
    host = make(tmp_path, "nt4-tse-sp6-x86", features={"wmi": True})
    assert qfe(host)["Q242294"].properties["ServicePackInEffect"] == "SP7"


def test_vista_2008_installed_on_is_the_hex_filetime_2008r2_a_date(tmp_path: Path) -> None:
    w2008 = make(tmp_path, "2008-sp2-x64", "w2008")
    installed_on = str(qfe(w2008)["KB958644"].properties["InstalledOn"])
    assert len(installed_on) == 16 and int(installed_on, 16) > 0
    filetime = int(installed_on, 16)
    moment = dt.datetime(1601, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=filetime // 10)
    assert moment.date() == dt.date(2008, 10, 24)
    r2 = make(tmp_path, "2008r2-rtm-x64", "r2", hotfixes={"KB976932": {"installed_on": "2010-02-03T00:00:00Z"}})
    props = qfe(r2)["KB976932"].properties
    assert (props["InstalledOn"], props["ServicePackInEffect"]) == ("2/3/2010", "")


# --- CIM_DataFile -----------------------------------------------------------------------------------------


def test_data_file_enumeration_needs_a_filter(hosts: dict[str, Host]) -> None:
    with pytest.raises(WmiError) as caught:
        hosts["xp-sp1-x86"].wmi_enumerate(CIMV2, "CIM_DataFile")
    assert caught.value.kind == "invalid_parameter"
    names = {i.properties["Name"] for i in hosts["xp-sp1-x86"].wmi_enumerate(CIMV2, "CIM_DataFile", True)}
    assert "c:\\windows\\system32\\drivers\\mrxsmb.sys" in names


def test_data_file_get_by_name(hosts: dict[str, Host]) -> None:
    file = hosts["xp-sp1-x86"].wmi_get(CIMV2, "CIM_DataFile", {"Name": "C:\\WINDOWS\\System32\\Drivers\\MRXSMB.SYS"})
    props = file.properties
    assert props["Name"] == "c:\\windows\\system32\\drivers\\mrxsmb.sys"
    assert props["Version"] == "5.1.2600.1106 (xpsp1.020828-1920)"
    assert (props["FileSize"], props["Extension"], props["FileName"], props["Drive"], props["Path"]) == \
        (410368, "sys", "mrxsmb", "c:", "\\windows\\system32\\drivers\\")
    assert props["LastModified"] == dt.datetime(2002, 8, 29, 10, 41, tzinfo=dt.UTC)
    assert (file.cim_types["FileSize"], file.cim_types["LastModified"]) == ("uint64", "datetime")
    with pytest.raises(WmiError) as caught:
        hosts["xp-sp1-x86"].wmi_get(CIMV2, "CIM_DataFile", {"Name": "C:\\WINDOWS\\nothing.dll"})
    assert caught.value.kind == "not_found"


def test_data_file_without_versioninfo_has_null_version(hosts: dict[str, Host]) -> None:
    mof = hosts["2008-sp2-x64"].wmi_get(CIMV2, "CIM_DataFile", {"Name": "c:\\windows\\system32\\wbem\\dfsrprovs.mof"})
    assert (mof.properties["Version"], mof.properties["FileSize"]) == (None, 66498)


# --- Win32_Service ----------------------------------------------------------------------------------------


def test_services(hosts: dict[str, Host]) -> None:
    services = {str(i.properties["Name"]): i.properties for i in hosts["2008-sp2-x64"].wmi_enumerate(
        CIMV2, "Win32_Service")}
    assert services["DFSR"]["State"] == "Running" and services["DFSR"]["StartMode"] == "Auto"
    assert services["DFSR"]["PathName"] == "C:\\Windows\\system32\\DFSRs.exe"
    assert "srv2" not in services and "MRxSmb" not in services  # drivers are Win32_SystemDriver, not services


# --- StdRegProv -------------------------------------------------------------------------------------------


def reg(host: Host, method: str, namespace: str = DEFAULT, **params: object) -> dict[str, object]:
    return host.wmi_invoke(namespace, "StdRegProv", method, {}, {"hDefKey": HKLM, **params})


LANMAN = "SYSTEM\\CurrentControlSet\\Services\\LanmanWorkstation\\Parameters"


def test_stdregprov_round_trips_every_type(tmp_path: Path) -> None:
    host = make(tmp_path, "2008-sp2-x64")
    key = "SOFTWARE\\Contoso"
    assert reg(host, "CreateKey", sSubKeyName=key) == {"ReturnValue": 0}
    writes: list[tuple[str, str, object]] = [
        ("SetStringValue", "sValue", "text"), ("SetExpandedStringValue", "sValue", "%SystemRoot%\\x"),
        ("SetMultiStringValue", "sValue", ["a", "b"]), ("SetDWORDValue", "uValue", "4294967295"),
        ("SetQWORDValue", "uValue", str(2**40)), ("SetBinaryValue", "uValue", ["1", "255"])]
    for method, param, value in writes:
        params: dict[str, object] = {"hDefKey": HKLM, "sSubKeyName": key, "sValueName": method, param: value}
        assert host.wmi_invoke(DEFAULT, "StdRegProv", method, {}, params)["ReturnValue"] == 0
    assert reg(host, "GetStringValue", sSubKeyName=key, sValueName="setstringvalue")["sValue"] == "text"
    assert reg(host, "GetExpandedStringValue", sSubKeyName=key, sValueName="SetExpandedStringValue")["sValue"] \
        == "C:\\Windows\\x"
    assert reg(host, "GetMultiStringValue", sSubKeyName=key, sValueName="SetMultiStringValue")["sValue"] == ["a", "b"]
    assert reg(host, "GetDWORDValue", sSubKeyName=key, sValueName="SetDWORDValue")["uValue"] == 4294967295
    assert reg(host, "GetQWORDValue", sSubKeyName=key, sValueName="SetQWORDValue")["uValue"] == 2**40
    assert reg(host, "GetBinaryValue", sSubKeyName=key, sValueName="SetBinaryValue")["uValue"] == [1, 255]
    values = reg(host, "EnumValues", sSubKeyName=key)
    assert values["sNames"] == [m for m, _, _ in writes] and values["Types"] == [1, 2, 7, 4, 11, 3]


def test_stdregprov_return_values(tmp_path: Path) -> None:
    host = make(tmp_path, "xp-sp1-x86")
    assert reg(host, "GetDWORDValue", sSubKeyName=LANMAN, sValueName="ReconnectTimeout") == {"ReturnValue": 1}
    assert reg(host, "GetDWORDValue", sSubKeyName=LANMAN + "\\Nope", sValueName="x") == {"ReturnValue": 2}
    assert reg(host, "GetStringValue", sSubKeyName=LANMAN, sValueName="EnableSecuritySignature") == \
        {"ReturnValue": 2147749893}
    assert reg(host, "EnumKey", sSubKeyName="SAM\\SAM") == {"ReturnValue": 5}
    assert host.wmi_invoke(DEFAULT, "StdRegProv", "EnumKey", {}, {"hDefKey": "12345", "sSubKeyName": "x"}) == \
        {"ReturnValue": 6}
    assert reg(host, "SetDWORDValue", sSubKeyName=LANMAN + "\\Nope", sValueName="x", uValue="1") == \
        {"ReturnValue": 2}
    assert reg(host, "DeleteValue", sSubKeyName=LANMAN, sValueName="nothing") == {"ReturnValue": 2}
    assert reg(host, "EnumKey", sSubKeyName=LANMAN) == {"sNames": None, "ReturnValue": 0}


def test_stdregprov_set_then_get_is_case_insensitive(tmp_path: Path) -> None:
    host = make(tmp_path, "xp-sp1-x86")
    assert reg(host, "SetDWORDValue", sSubKeyName=LANMAN.upper(), sValueName="ReconnectTimeout",
               uValue="120")["ReturnValue"] == 0
    assert reg(host, "GetDWORDValue", sSubKeyName=LANMAN.lower(), sValueName="reconnecttimeout") == \
        {"uValue": 120, "ReturnValue": 0}
    servers = ["computer-1", "computer-1.contoso.com", "10.0.0.1"]
    assert reg(host, "SetMultiStringValue", sSubKeyName=LANMAN, sValueName="ReconnectableServers",
               sValue=servers)["ReturnValue"] == 0
    assert host.registry.get("HKLM\\" + LANMAN, "ReconnectableServers").data == servers  # type: ignore[union-attr]


def test_stdregprov_mof_defaults(tmp_path: Path) -> None:
    host = make(tmp_path, "2003r2-sp2-x86")
    # hDefKey defaults to HKLM, SetDWORDValue's uValue to 3 and SetStringValue's sValue to "hello" (the MOF's).
    assert host.wmi_invoke(DEFAULT, "StdRegProv", "SetDWORDValue", {},
                           {"sSubKeyName": LANMAN, "sValueName": "d"}) == {"ReturnValue": 0}
    assert host.wmi_invoke(DEFAULT, "StdRegProv", "SetStringValue", {},
                           {"sSubKeyName": LANMAN, "sValueName": "s"}) == {"ReturnValue": 0}
    assert host.registry.get("HKLM\\" + LANMAN, "d").data == 3  # type: ignore[union-attr]
    assert host.registry.get("HKLM\\" + LANMAN, "s").data == "hello"  # type: ignore[union-attr]


def test_stdregprov_delete_key(tmp_path: Path) -> None:
    host = make(tmp_path, "vista-rtm-x86")
    reg(host, "CreateKey", sSubKeyName="SOFTWARE\\A\\B")
    assert reg(host, "DeleteKey", sSubKeyName="SOFTWARE\\A") == {"ReturnValue": 5}
    assert reg(host, "DeleteKey", sSubKeyName="SOFTWARE\\A\\B") == {"ReturnValue": 0}
    assert reg(host, "DeleteKey", sSubKeyName="SOFTWARE\\A") == {"ReturnValue": 0}
    assert reg(host, "DeleteKey", sSubKeyName="SOFTWARE\\A") == {"ReturnValue": 2}


@pytest.mark.parametrize(("params", "kind"), [
    ({"sSubKeyName": LANMAN, "sValueName": "x", "uValue": "abc"}, "invalid_parameter"),
    ({"sSubKeyName": LANMAN, "sValueName": "x", "uValue": "4294967296"}, "invalid_parameter"),
    ({"sSubKeyName": LANMAN, "sValueName": "x", "uValue": "-1"}, "invalid_parameter"),
])
def test_stdregprov_rejects_bad_input(tmp_path: Path, params: dict[str, object], kind: str) -> None:
    host = make(tmp_path, "xp-sp1-x86")
    with pytest.raises(WmiError) as caught:
        host.wmi_invoke(DEFAULT, "StdRegProv", "SetDWORDValue", {}, params)
    assert caught.value.kind == kind


def test_stdregprov_version_differences(hosts: dict[str, Host]) -> None:
    xp, w2008 = hosts["xp-sp1-x86"], hosts["2008-sp2-x64"]
    with pytest.raises(WmiError) as caught:
        reg(xp, "GetQWORDValue", sSubKeyName=LANMAN, sValueName="x")
    assert caught.value.kind == "invalid_method"
    with pytest.raises(WmiError) as caught:
        reg(xp, "EnumKey", namespace=CIMV2, sSubKeyName=LANMAN)
    assert caught.value.kind == "invalid_class"
    assert reg(w2008, "EnumKey", namespace=CIMV2, sSubKeyName="SYSTEM\\CurrentControlSet\\Services\\DFSR")[
        "sNames"] == ["Parameters"]
    with pytest.raises(WmiError) as caught:
        reg(w2008, "GetSecurityDescriptorOfTheMoon", sSubKeyName=LANMAN)
    assert caught.value.kind == "invalid_method"


def test_stdregprov_check_access(hosts: dict[str, Host]) -> None:
    w2008 = hosts["2008-sp2-x64"]
    cbs = "SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Component Based Servicing"
    assert reg(w2008, "CheckAccess", sSubKeyName=cbs, uRequired="1") == {"bGranted": True, "ReturnValue": 0}
    assert reg(w2008, "CheckAccess", sSubKeyName=cbs, uRequired="2") == {"bGranted": False, "ReturnValue": 5}
    assert reg(w2008, "CheckAccess", sSubKeyName=LANMAN, uRequired="2") == {"bGranted": True, "ReturnValue": 0}
    assert reg(w2008, "CheckAccess", sSubKeyName="SOFTWARE\\Nope", uRequired="1")["ReturnValue"] == 2
    assert reg(w2008, "CreateKey", sSubKeyName=cbs + "\\Mine") == {"ReturnValue": 5}


def test_stdregprov_default_value_and_hives(tmp_path: Path) -> None:
    host = make(tmp_path, "xp-sp1-x86")
    assert host.wmi_invoke(DEFAULT, "StdRegProv", "GetStringValue", {},
                           {"hDefKey": "2147483648", "sSubKeyName": ".txt"}) == {"sValue": "txtfile", "ReturnValue": 0}
    result = host.wmi_invoke(DEFAULT, "StdRegProv", "GetExpandedStringValue", {},
                             {"hDefKey": "2147483649", "sSubKeyName": "Environment", "sValueName": "TEMP"})
    assert result == {"sValue": "C:\\Documents and Settings\\Administrator\\Local Settings\\Temp", "ReturnValue": 0}


# --- methods of Win32_OperatingSystem ---------------------------------------------------------------------


def test_win32shutdown_reboot_flag_reboots(tmp_path: Path) -> None:
    host = make(tmp_path, "2003r2-sp2-x86", reboot_seconds=0.5)
    before = host.boot_time
    name = {"Name": str(one(host, "Win32_OperatingSystem").properties["Name"])}
    assert host.wmi_invoke(CIMV2, "Win32_OperatingSystem", "Win32Shutdown", name, {"Flags": "6"}) == \
        {"ReturnValue": 0}
    assert not host.is_up()
    deadline = time.monotonic() + 5
    while not host.is_up():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert host.boot_time > before
    with pytest.raises(WmiError) as caught:
        host.wmi_invoke(CIMV2, "Win32_OperatingSystem", "Win32Shutdown", name, {})
    assert caught.value.kind == "invalid_parameter"
    with pytest.raises(WmiError) as caught:
        host.wmi_invoke(CIMV2, "Win32_OperatingSystem", "Defragment", name, {})
    assert caught.value.kind == "invalid_method"


def test_reboot_method(tmp_path: Path) -> None:
    host = make(tmp_path, "vista-sp1-x64", reboot_seconds=5)
    assert host.wmi_invoke(CIMV2, "Win32_OperatingSystem", "Reboot", {}, {}) == {"ReturnValue": 0}
    assert not host.is_up()
