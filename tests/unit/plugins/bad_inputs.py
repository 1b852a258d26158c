# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bad-input generator: an explicit table of bad values per kind of argument, crossed with every argument
of the six modules and the article roles' variables (issue 14). Each case names the argument its error must
name; ``test_bad_input.py`` runs them through the real action plugins, ``tests/integration/modules/
test_bad_input_hosts.py`` a sample through ansible-playbook and the legal-but-special values against winsim.

Kept out on purpose (issue 15, fixed in parallel): registry data above the envelope size (item 3), `"` and
`..` in file_version paths (item 4), spec paths outside the collection (item 5), cmd metacharacters in the
reboot message (item 6).
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any

ROLES = Path(__file__).resolve().parents[3] / "roles"
KB828753 = str(ROLES / "kb828753" / "files" / "kb828753.yml")
KB938475 = str(ROLES / "kb938475" / "files" / "kb938475.yml")
NUL = "a\x00b"
NON_UTF8 = "caf\udce9"  # how Python (and Ansible) carry a byte that is not UTF-8: a lone surrogate
HUGE = "x" * 100_000
WQL_META = ["'", "\\", "%", "_", '"']
CMD_META = ["&", "|", "^", "<", ">", "%PATH%", '"']
# What a quoted cmd.exe path cannot carry (escape.cmd_path); & and ^ are legal inside the quotes and reach the
# host literally (test_bad_input_hosts.py).
CMD_REFUSED = ["|", "<", ">", "%PATH%", '"']


@dataclass(frozen=True)
class Case:
    module: str
    args: dict[str, Any]
    field: str  # the argument the error must name
    why: str
    check_mode: bool = False
    host_vars: dict[str, Any] = dataclass_field(default_factory=dict)  # inventory variables over host_vars()

    @property
    def id(self) -> str:
        return f"{self.module}:{self.field}:{self.why}"


# --- bad values by kind -------------------------------------------------------------------------------

WRONG_TYPE_FOR_STR: list[tuple[Any, str]] = [({"a": 1}, "a mapping"), (["a", "b"], "a list")]
BAD_STRINGS: list[tuple[Any, str]] = [(NUL, "NUL"), (NON_UTF8, "non-UTF-8"), (HUGE, "100,000 characters")]
BAD_BOOLS: list[tuple[Any, str]] = [("maybe", "not a boolean"), ([True], "a list"), ({"a": 1}, "a mapping"),
                                    (2, "the number 2"), ("", "empty")]
BAD_CHOICES: list[tuple[Any, str]] = [("bogus", "unknown choice"), ("", "empty"), (NUL, "NUL"),
                                      (["present"], "a list"), (7, "a number")]


def bad_ints(low: int, high: int | None) -> list[tuple[Any, str]]:
    values: list[tuple[Any, str]] = [("ten", "not a number"), (1.5, "a fraction"), ("1.5", "a fraction as text"),
                                     ([1], "a list"), ({"a": 1}, "a mapping"), (True, "a boolean"),
                                     (low - 1, "below the minimum"), (-(2**63), "hugely negative")]
    if high is not None:
        values += [(high + 1, "above the maximum"), (2**64, "2**64")]
    return values


BAD_REGISTRY_PATHS: list[tuple[Any, str]] = [
    ("HKXX\\SOFTWARE\\x", "unknown hive"), ("HKEY_NOWHERE\\x", "unknown long hive"), ("", "empty"),
    ("SOFTWARE\\Microsoft", "no hive"), ("\\\\server\\HKLM\\SOFTWARE", "remote registry path"),
    ("HKLM\\SOFTWARE\\" + "k" * 300, "a key name of 300 characters"), ("HKLM\\SOFTWARE\\" + NUL, "NUL"),
    ("HKLM\\SOFTWARE\\" + NON_UTF8, "non-UTF-8"), ("HKLM\\" + HUGE, "100,000 characters"),
    *WRONG_TYPE_FOR_STR, (5, "a number"),
]
BAD_REGISTRY_NAMES: list[tuple[Any, str]] = [(NUL, "NUL"), (NON_UTF8, "non-UTF-8"), ("n" * 20_000, "20,000 characters"),
                                             *WRONG_TYPE_FOR_STR]
BAD_DATA: dict[str, list[tuple[Any, str]]] = {
    # Negative numbers are legal: the two's complement of the same width (registry_args).
    "dword": [(-(2**31) - 1, "below -2**31"), (2**32, "2**32"), (2**64, "2**64"), ("0x1FFFFFFFF", "hex above 32 bits"),
              ("sixty", "not a number"), (1.5, "a fraction"), ([1], "a list"), ({"a": 1}, "a mapping"),
              (True, "a boolean"), ("", "empty"), (NUL, "NUL"), ("1" * 400, "400 digits")],
    "qword": [(-(2**63) - 1, "below -2**63"), (2**64, "2**64"), (2**70, "2**70"),
              ("0x1FFFFFFFFFFFFFFFF", "hex above 64 bits"),
              ("big", "not a number"), (2.5, "a fraction"), ([1], "a list"), (True, "a boolean"), ("", "empty")],
    "binary": [([256], "a byte above 255"), ([-1], "a negative byte"), (["zz"], "not hex"), ("xyz", "odd hex"),
               ({"a": 1}, "a mapping"), ([1.5], "a fractional byte"), ([True], "a boolean byte")],
    "multistring": [(["a", ""], "an empty entry"), (["a", NUL], "NUL in an entry"), ([True], "a boolean entry"),
                    ({"a": 1}, "a mapping"), ([["a"]], "a nested list"), ([NON_UTF8], "non-UTF-8 entry"),
                    ([None], "a null entry")],
    "string": [(NUL, "NUL"), (NON_UTF8, "non-UTF-8"), (["a"], "a list"), ({"a": 1}, "a mapping")],
    "expandstring": [(NUL, "NUL"), (NON_UTF8, "non-UTF-8"), (["a"], "a list"), ({"a": 1}, "a mapping")],
}
# Characters Windows forbids in paths, and MAX_PATH, are issue 15 item 4 (file_version path rules), fixed in
# parallel: not here.
BAD_HOST_PATHS: list[tuple[Any, str]] = [
    ("mrxsmb.sys", "relative"), ("", "empty"), ("C:", "a bare drive"), ("C:" + NUL, "NUL"),
    ("C:\\" + NON_UTF8 + ".dll", "non-UTF-8"), *WRONG_TYPE_FOR_STR,
]
BAD_VERSIONS: list[tuple[Any, str]] = [("1.2", "two parts"), ("a.b.c.d", "not numbers"), ("1.2.3.4.5", "five parts"),
                                       ("99999.0.0.0", "a part above 65535"), ("", "empty"), (NUL, "NUL"),
                                       ("-1.0.0.0", "negative"), ("1.2.3.4'", "a quote"), ({"a": 1}, "a mapping")]
BAD_DATES: list[tuple[Any, str]] = [("27-Sep-2003", "not ISO"), ("2003-13-01", "month 13"),
                                    ("2003-02-30", "30 February"), ("", "empty"), ("yesterday", "words"),
                                    (NUL, "NUL"), ({"a": 1}, "a mapping")]
BAD_HOTFIX_IDS: list[tuple[Any, str]] = [
    ("", "empty"), ("KB", "no number"), ("KBabc", "letters"), ("KB1' OR '1'='1", "WQL injection"),
    ("KB1%", "WQL wildcard %"), ("KB1_", "WQL wildcard _"), ("KB1\\", "backslash"), ('KB1"', "double quote"),
    ("KB1&calc", "cmd &"), ("KB1|calc", "cmd |"), ("KB1^", "cmd ^"), ("KB1<x", "cmd <"), ("KB1>x", "cmd >"),
    ("KB%PATH%", "cmd variable"), ("KB" + "9" * 60, "60 digits"), ("KB1" + NUL, "NUL"), ("KB" + NON_UTF8, "non-UTF-8"),
    ("828753 KB", "trailing word"), ({"a": 1}, "a mapping"), (["KB1"], "a list"),
]
# Package sources on the host or a share: cmd metacharacters and quotes cannot reach a cmd.exe line safely.
BAD_SOURCES: list[tuple[Any, str]] = [
    *((f"C:\\updates\\x{m}y\\WindowsXP-KB828753-x86-ENU.exe", f"cmd {m} in a host path") for m in CMD_REFUSED),
    *((f"\\\\fs01\\sh{m}are\\WindowsXP-KB828753-x86-ENU.exe", f"cmd {m} in a UNC path") for m in CMD_REFUSED),
    ("C:\\updates\\" + NUL + ".exe", "NUL"), ("C:\\updates\\" + NON_UTF8 + ".exe", "non-UTF-8"),
    ("C:\\updates\\WindowsXP-KB999999-x86-ENU.exe", "a package of another hotfix"),
    ("/nonexistent/WindowsXP-KB828753-x86-ENU.exe", "a controller file that does not exist"),
    ("C:\\updates\\KB828753.zip", "not an installer"), ("C:\\updates\\WindowsXP-KB828753-x86-ENU.msu.txt",
                                                          "an installer name with another extension"),
    *WRONG_TYPE_FOR_STR,
]
BAD_ARGUMENT_LISTS: list[tuple[Any, str]] = [
    *(([f"/log:C:\\a{m}b.log"], f"cmd {m} in an argument") for m in ('"', "%PATH%", "%")),
    ([NUL], "NUL"), ([NON_UTF8], "non-UTF-8"), (["x" * 9000], "longer than a cmd.exe line"),
    ([["a"]], "a nested list"), ([{"a": 1}], "a mapping"), ("/quiet\n/norestart", "a newline"),
    (["/quiet\r\nshutdown /s"], "CR LF in an argument"),
]
BAD_MESSAGES: list[tuple[Any, str]] = [("100% done", "%"), ('say "hi"', "double quote"), ("x" * 128, "128 characters"),
                                       (NUL, "NUL"), (NON_UTF8, "non-UTF-8"), ("a\r\nb", "CR LF"),
                                       *WRONG_TYPE_FOR_STR]

# --- cases per module --------------------------------------------------------------------------------------

REG = "HKLM\\SOFTWARE\\kbfix-bad"


def registry_value_cases() -> list[Case]:
    cases = []
    base: dict[str, Any] = {"path": REG, "name": "V", "type": "string", "data": "x"}
    for value, why in BAD_REGISTRY_PATHS:
        for state in ("present", "absent"):
            for view in ("native", "32", "64"):
                cases.append(Case("registry_value", {**base, "path": value, "state": state, "view": view}, "path",
                                  f"{why} ({state}, view {view})"))
    for value, why in BAD_REGISTRY_NAMES:
        for state in ("present", "absent"):
            for reg_type in ("string", "dword"):
                data = "x" if reg_type == "string" else 1
                cases.append(Case("registry_value", {**base, "name": value, "state": state, "type": reg_type,
                                                     "data": data}, "name", f"{why} ({state}, {reg_type})"))
    for reg_type, values in BAD_DATA.items():
        for value, why in values:
            for create in (True, False):
                cases.append(Case("registry_value", {**base, "type": reg_type, "data": value, "create_key": create},
                                  "data", f"{reg_type}: {why} (create_key {create})"))
    for field in ("type", "state", "multistring_mode", "view"):
        for value, why in BAD_CHOICES:
            cases.append(Case("registry_value", {**base, field: value}, field, why))
    for field in ("case_insensitive", "create_key"):
        for value, why in BAD_BOOLS:
            cases.append(Case("registry_value", {**base, field: value}, field, why))
    for reg_type in ("dword", "qword", "multistring", "binary"):
        cases.append(Case("registry_value", {**base, "type": reg_type, "data": None}, "data", f"{reg_type}: missing"))
    cases.append(Case("registry_value", {**base, "type": "dword", "data": 1, "multistring_mode": "merge"},
                      "multistring_mode", "merge on a dword"))
    cases.append(Case("registry_value", {**base, "bogus": 1}, "bogus", "unknown argument"))
    return cases


def file_version_cases() -> list[Case]:
    cases = []
    base: dict[str, Any] = {"paths": ["C:\\WINDOWS\\system32\\drivers\\mrxsmb.sys"],
                            "minimum_version": ["5.1.2600.1276"]}
    for value, why in BAD_HOST_PATHS:
        criteria_sets: list[tuple[dict[str, Any], str]] = [
            ({"minimum_version": ["1.0.0.0"]}, "minimum"), ({"exact_version": "1.0.0.0"}, "exact"),
            ({"size": 5}, "size"), ({"minimum_version": ["1.0.0.0"], "report_only": True}, "report")]
        for criteria, label in criteria_sets:
            cases.append(Case("file_version", {**criteria, "paths": [value]}, "paths", f"{why} ({label})"))
            cases.append(Case("file_version", {**criteria, "paths": ["C:\\ok.dll", value]}, "paths",
                              f"second entry {why} ({label})"))
    for value, why in BAD_VERSIONS:
        cases.append(Case("file_version", {**base, "minimum_version": [value]}, "minimum_version", why))
        cases.append(Case("file_version", {"paths": base["paths"], "exact_version": value}, "exact_version", why))
        cases.append(Case("file_version", {**base, "branch_floor": value}, "branch_floor", why))
    for value, why in BAD_DATES:
        cases.append(Case("file_version", {"paths": base["paths"], "size": 5, "date": value}, "date", why))
    for value, why in bad_ints(0, None):
        cases.append(Case("file_version", {"paths": base["paths"], "size": value}, "size", why))
    for value, why in BAD_BOOLS:
        cases.append(Case("file_version", {**base, "report_only": value}, "report_only", why))
    cases.append(Case("file_version", {"paths": []}, "paths", "no paths"))
    cases.append(Case("file_version", {**base, "exact_version": "1.2.3.4"}, "exact_version", "with minimum_version"))
    return cases


def hotfix_cases() -> list[Case]:
    cases = []
    base: dict[str, Any] = {"id": "KB828753", "source": "\\\\fs01\\updates\\WindowsXP-KB828753-x86-ENU.exe"}
    for value, why in BAD_HOTFIX_IDS:
        for state in ("present", "absent"):
            cases.append(Case("hotfix", {**base, "id": value, "state": state}, "id", f"{why} ({state})"))
        for kind in ("update", "hotfix", "msu"):
            cases.append(Case("hotfix", {**base, "id": value, "installer": kind}, "id", f"{why} ({kind})"))
    for value, why in BAD_SOURCES:
        for kind in (None, "update", "hotfix", "msu"):
            chosen = {"installer": kind} if kind else {}
            cases.append(Case("hotfix", {**base, "source": value, **chosen}, "source", f"{why} ({kind or 'by name'})"))
    for value, why in BAD_ARGUMENT_LISTS:
        cases.append(Case("hotfix", {**base, "arguments": value}, "arguments", why))
    for field in ("state", "installer"):
        for value, why in BAD_CHOICES:
            cases.append(Case("hotfix", {**base, field: value}, field, why))
    for value, why in BAD_BOOLS:
        cases.append(Case("hotfix", {**base, "allow_pending_reboot": value}, "allow_pending_reboot", why))
    for value, why in bad_ints(1, 86400):
        cases.append(Case("hotfix", {**base, "timeout": value}, "timeout", why))
    for value, why in (("6.0", "not a mapping"), ({"version": "5.1"}, "a two-part version"),
                       ({"version": "5.1.2600", "service_pack": "one"}, "service_pack not a number"),
                       ({"version": "5.1.2600", "architecture": "arm"}, "unknown architecture"),
                       ({"bogus": 1}, "unknown key")):
        cases.append(Case("hotfix", {**base, "host_facts": value}, "host_facts", why))
    return cases


def reboot_cases() -> list[Case]:
    cases = []
    for value, why in BAD_CHOICES:
        cases.append(Case("reboot", {"mode": value}, "mode", why))
    for field, low, high in (("reboot_timeout", 1, 86400), ("connect_timeout", 1, 600),
                             ("pre_reboot_delay", 0, 600)):
        for value, why in bad_ints(low, high):
            for mode in ("always", "if_required"):
                cases.append(Case("reboot", {field: value, "mode": mode}, field, f"{why} ({mode})"))
    for value, why in BAD_MESSAGES:
        cases.append(Case("reboot", {"msg": value}, "msg", why))
    return cases


def facts_cases() -> list[Case]:
    return [Case("facts", {name: value}, name, "facts takes no arguments")
            for name in ("gather_subset", "filter", "path", "host")
            for value in ("all", NUL, ["x"])]


# The modules that wait for a host restarting under them (tasks/resume.py): any valid arguments besides.
RESUMING_MODULES: dict[str, dict[str, Any]] = {
    "facts": {}, "registry_value": {"path": REG, "name": "V", "type": "string", "data": "x"},
    "file_version": {"paths": ["C:\\WINDOWS\\system32\\drivers\\mrxsmb.sys"]}, "hotfix": {"id": "KB828753"},
}


def reboot_timeout_cases() -> list[Case]:
    return [Case(module, {**base, "reboot_timeout": value}, "reboot_timeout", why)
            for module, base in RESUMING_MODULES.items() for value, why in bad_ints(0, 86400)]


# The article roles' variables (roles/kb*/defaults; the fleet playbooks' <role>_<name>), as kb_article receives them.
ROLE_VARIABLES: dict[str, tuple[str, list[tuple[Any, str]]]] = {
    "reconnectable_servers": (KB828753, [
        ([], "an empty list"), ([""], "an empty name"), (["fs01", NUL], "NUL in a name"), ([NON_UTF8], "non-UTF-8"),
        ([{"a": 1}], "a mapping entry"), ({"a": 1}, "a mapping"),
        ([["fs01"]], "a nested list"), (5, "a number")]),
    "reconnect_timeout": (KB828753, bad_ints(1, 4294967295)),
    "asynchronous_credits": (KB938475, bad_ints(1, 65535)),
    "file_server": (KB938475, BAD_BOOLS),
}


def kb_article_cases() -> list[Case]:
    cases = []
    servers = {"reconnectable_servers": ["fs01"]}
    for name, (spec, values) in ROLE_VARIABLES.items():
        required = servers if spec == KB828753 and name != "reconnectable_servers" else (
            {"asynchronous_credits": 256} if spec == KB938475 and name != "asynchronous_credits" else {})
        for value, why in values:
            variables = {**required, name: value}
            for state in ("audited", "enforced"):
                cases.append(Case("kb_article", {"articles": [{"spec": spec, "variables": variables}], "state": state},
                                  name, f"{why} ({state}, per article)"))
            for state in ("audited", "enforced"):
                cases.append(Case("kb_article", {"articles": [spec], "variables": variables, "state": state},
                                  name, f"{why} ({state}, task variables)"))
    for value, why in (([], "no articles"), ([5], "a number"), ([{"spec": 5}], "spec not a path"),
                       ([{"spec": KB828753, "bogus": 1}], "an unknown key"), ([NUL], "NUL"),
                       ([{"variables": {}}], "no spec"), ([{"spec": KB828753, "variables": [1]}], "variables a list")):
        cases.append(Case("kb_article", {"articles": value}, "articles", why))
    article = {"articles": [{"spec": KB828753, "variables": servers}]}
    for value, why in BAD_CHOICES:
        cases.append(Case("kb_article", {**article, "state": value}, "state", why))
        cases.append(Case("kb_article", {**article, "fail_on": [value]}, "fail_on", why))
    for value, why in BAD_BOOLS:
        cases.append(Case("kb_article", {**article, "allow_pending_reboot": value}, "allow_pending_reboot", why))
    for value, why in bad_ints(1, 86400):
        cases.append(Case("kb_article", {**article, "install_timeout": value}, "install_timeout", why))
    for value, why in [*BAD_SOURCES[:len(CMD_REFUSED) * 2], ("C:\\up" + NUL, "NUL")]:
        source = value.rsplit("\\", 1)[0] if isinstance(value, str) and "\\" in value else value
        cases.append(Case("kb_article", {**article, "state": "enforced", "package_source": source},
                          "package_source", why))
    cases.append(Case("kb_article", {**article, "variables": {"unknown_variable": 1}},
                      "unknown_variable", "a variable no article declares"))
    return cases


# --- checked before the host is touched: reg.exe lines, '.'/'..' keys, bounds, connection settings, article
# variables with control characters, controller variables. Each was found after requests had been sent.

LONG_PATH = "C:\\" + "p" * 300  # beyond MAX_PATH
HUGE_HOST_PATH = "C:\\" + HUGE
REG_EXE_REFUSED = ['"', "%", "%PATH%"]  # what a reg.exe argument cannot carry (escape.cmd_quote)
DOT_KEYS = [("HKLM\\SOFTWARE\\..\\..\\SYSTEM\\kbfixtrav", "'..' segments"), ("HKLM\\SOFTWARE\\.\\x", "a '.' segment"),
            ("HKLM\\SOFTWARE\\x\\..", "a trailing '..'")]
# Inventory variables of the connection, for both transports: (variables, the variable the error names, why).
WINRM_SETTINGS: list[tuple[dict[str, Any], str, str]] = [
    ({"ansible_host": "127.0.0.1\r\nX-Probe: 1"}, "ansible_host", "CR LF in the host"),
    ({"ansible_host": "127.0.0.1/x"}, "ansible_host", "a slash in the host"),
    ({"ansible_host": "a b"}, "ansible_host", "a space in the host"),
    ({"ansible_port": 70000}, "ansible_port", "port above 65535"), ({"ansible_port": 0}, "ansible_port", "port 0"),
    ({"ansible_winrm_path": "/wsman\r\nX-Probe: 1"}, "ansible_winrm_path", "CR LF in the path"),
    ({"ansible_winrm_path": "wsman"}, "ansible_winrm_path", "a path without its slash"),
    ({"ansible_winrm_path": "/ws man"}, "ansible_winrm_path", "a space in the path"),
    ({"ansible_user": "Admin\x00x"}, "ansible_user", "NUL in the user"),
    ({"ansible_user": "Admin\r\nistrator"}, "ansible_user", "CR LF in the user"),
    ({"ansible_user": "u" * 2000}, "ansible_user", "a 2,000-character user"),
    ({"ansible_password": "Not-A-Real-Pass1\x00"}, "ansible_password", "NUL in the password"),
    ({"ansible_password": "Not-A-Real-Pass1\r\n"}, "ansible_password", "CR LF in the password"),
    ({"ansible_password": "Not-A-Real-Pass1" * 20}, "ansible_password", "a 320-character password"),
]
SMB_SETTINGS: list[tuple[dict[str, Any], str, str]] = [
    (v, f, w) for v, f, w in WINRM_SETTINGS if f in ("ansible_host", "ansible_user", "ansible_password")]


def checked_first_cases() -> list[Case]:
    cases = []
    reg = {"path": REG, "name": "V"}
    for char in REG_EXE_REFUSED:
        for reg_type, data in (("none", None), ("multistring", [])):
            extra = {"type": reg_type} if data is None else {"type": reg_type, "data": data}
            cases.append(Case("registry_value", {**reg, **extra, "name": f"a{char}b"}, "name",
                              f"{char} in a {reg_type} name (reg.exe)"))
            cases.append(Case("registry_value", {**reg, **extra, "path": f"{REG}\\a{char}b"}, "path",
                              f"{char} in a {reg_type} key (reg.exe)"))
    for path, why in DOT_KEYS:
        for state in ("present", "absent"):
            cases.append(Case("registry_value", {**reg, "path": path, "data": "x", "state": state}, "path",
                              f"{why} ({state})"))
    for value, why in bad_ints(0, 86400):
        cases.append(Case("kb_article", {"articles": [KB828753], "variables": {"reconnectable_servers": ["fs01"]},
                                         "reboot_timeout": value}, "reboot_timeout", why))
    for value, why in bad_ints(0, 2**64 - 1):
        cases.append(Case("file_version", {"paths": ["C:\\a.dll"], "size": value}, "size", f"{why} (uint64)"))
    for path, why in ((LONG_PATH, "300 characters"), (HUGE_HOST_PATH, "100,000 characters")):
        cases.append(Case("file_version", {"paths": [path], "minimum_version": "1.0.0.0"}, "paths", why))
        cases.append(Case("hotfix", {"id": "KB828753", "source": path + "\\WindowsXP-KB828753-x86-ENU.exe"},
                          "source", why))
        cases.append(Case("kb_article", {"articles": [KB828753], "state": "enforced", "package_source": path,
                                         "variables": {"reconnectable_servers": ["fs01"]}}, "package_source", why))
    cases.append(Case("hotfix", {"id": "KB828753", "source": HUGE + "WindowsXP-KB828753-x86-ENU.exe"}, "source",
                      "a 100,000-character controller path"))
    cases.append(Case("kb_article", {"articles": [KB828753], "state": "enforced", "package_source": HUGE,
                                     "variables": {"reconnectable_servers": ["fs01"]}}, "package_source",
                      "a 100,000-character controller path"))
    for entry, why in (("fs01\r\nfs02", "CR LF"), ("fs01\n", "LF"), ("fs\t01", "a tab")):
        cases.append(Case("kb_article", {"articles": [KB828753], "variables": {"reconnectable_servers": [entry]}},
                          "reconnectable_servers[0]", f"{why} in a server name"))
    cases.append(Case("kb_article", {"articles": [KB828753], "variables": {"reconnectable_servers": ["fs01"]}},
                      "kbfix_spec_dirs", "NUL in a spec directory", host_vars={"kbfix_spec_dirs": ["/a\x00b"]}))
    smb = {"kbfix_transport": "smb"}
    module_args = {"facts": {}, "registry_value": {**reg, "data": "x"}, "file_version": {"paths": ["C:\\a.dll"],
                   "minimum_version": "1.0.0.0"}, "hotfix": {"id": "KB828753"}, "reboot": {"mode": "if_required"},
                   "kb_article": {"articles": [KB828753], "variables": {"reconnectable_servers": ["fs01"]}}}
    for module, args in module_args.items():
        for variables, variable, why in WINRM_SETTINGS:
            cases.append(Case(module, args, variable, f"{why} (WinRM)", host_vars=variables))
        for variables, variable, why in SMB_SETTINGS:
            cases.append(Case(module, args, variable, f"{why} (SMB)", host_vars={**smb, **variables}))
    return cases


def in_check_mode(cases: list[Case]) -> list[Case]:
    """The same cases with --check: a check run must refuse them just as early."""
    return [Case(c.module, c.args, c.field, f"{c.why}, check mode", True, c.host_vars) for c in cases]


# --- package arguments: hashes, trust, the opt-out, the lock file (package authenticity) -------------------

BAD_SHA256: list[tuple[Any, str]] = [
    ("abc", "too short"), ("g" * 64, "not hexadecimal"), ("0" * 63, "63 digits"), ("0" * 65, "65 digits"),
    ("", "empty"), (NUL, "NUL"), (NON_UTF8, "non-UTF-8"), *WRONG_TYPE_FOR_STR,
]
PACKAGE_VARIABLES: dict[str, list[tuple[Any, str]]] = {
    "kbfix_package_trust_ca": [("/nonexistent/ca.pem", "no such file"), (5, "a number"), ({"a": 1}, "a mapping"),
                               ([5], "a list of numbers"), (["/nonexistent/ca.pem"], "a list naming no file"),
                               ([""], "an empty name")],
    "kbfix_package_sha256": [(["x"], "a list"), ("abc", "a string"), ({"a.exe": "abc"}, "a short digest"),
                             ({"a.exe": 5}, "a number digest"), ({"dir/a.exe": "0" * 64}, "a path, not a name"),
                             ({"": "0" * 64}, "an empty name"), ({"a.exe": NUL}, "NUL digest")],
    "kbfix_package_unsigned": [("Q253729i.exe", "a string"), ([5], "a number"), ([""], "an empty name"),
                               ({"a": 1}, "a mapping")],
    "kbfix_package_lock": [(5, "a number"), ("/nonexistent/packages.lock.yml", "no such file"), ("", "empty"),
                           (KB828753, "a spec, not a lock file"), (["a"], "a list")],
}


def package_cases() -> list[Case]:
    """Every package argument path: hotfix's sha256 and the host variables both modules read (hotfix with a
    source, kb_article in either state), and the package_lock module's own arguments."""
    cases = []
    base: dict[str, Any] = {"id": "KB828753", "source": "\\\\fs01\\updates\\WindowsXP-KB828753-x86-ENU.exe"}
    for value, why in BAD_SHA256:
        cases.append(Case("hotfix", {**base, "sha256": value}, "sha256", why))
    article = {"articles": [{"spec": KB828753, "variables": {"reconnectable_servers": ["fs01"]}}]}
    for name, values in PACKAGE_VARIABLES.items():
        for value, why in values:
            cases.append(Case("hotfix", base, name, f"{why} (hotfix)", host_vars={name: value}))
            for state in ("audited", "enforced"):
                cases.append(Case("kb_article", {**article, "state": state}, name, f"{why} ({state})",
                                  host_vars={name: value}))
    for name in ("path", "dest"):
        other = {"dest": "/tmp/kbfix-bad.lock.yml"} if name == "path" else {"path": str(ROLES)}
        for value, why in [(NUL, "NUL"), *WRONG_TYPE_FOR_STR, ("", "empty")]:
            cases.append(Case("package_lock", {**other, name: value}, name, why))
    for value, why in (("/nonexistent/packages", "no such directory"), (KB828753, "a file, not a directory"),
                       (str(ROLES), "a directory without packages")):
        cases.append(Case("package_lock", {"path": value, "dest": "/tmp/kbfix-bad.lock.yml"}, "path", why))
    return cases


def all_cases() -> list[Case]:
    cases = [*registry_value_cases(), *file_version_cases(), *hotfix_cases(), *reboot_cases(), *facts_cases(),
             *kb_article_cases(), *reboot_timeout_cases(), *checked_first_cases(), *package_cases()]
    return cases + in_check_mode([c for c in cases if c.module in ("kb_article", "registry_value", "hotfix")])
