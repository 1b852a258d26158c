# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Documentation only: the module runs on the controller as the action plugin plugins/action/file_version.py.

from __future__ import annotations

DOCUMENTATION = r"""
module: file_version
short_description: Check Windows file versions, sizes and dates over WinRM without PowerShell
version_added: 1.0.0
description:
  - Reads the version, size and modification date of one or many files with a single WMI C(CIM_DataFile)
    query over WS-Management (on WinRM 1.0, which has no WQL, one Get per file), and judges each file.
  - Versions are compared branch-aware, as vulnerability scanners do. A minimum applies to the files on its
    B(build line) (C(major.minor.build), e.g. C(6.0.6001) is Vista SP1 / Server 2008 RTM, C(6.0.6002) SP2).
    A file on a B(newer) build line than every minimum is compliant (a later service pack or release
    supersedes the fix); on an older line, or a line without a minimum, it is not.
  - On the build line, a minimum covers the versions from its B(branch floor) up. On Windows 6.x the
    revision tells the branch and the floor is derived (16000 for GDR, 20000 for LDR/QFE builds, so
    C(6.0.6001.22565) covers C(6.0.6001.20000) and up); on XP / 2003 GDR and QFE numbers interleave and
    the floor is the start of the build line unless O(branch_floor) says otherwise. A file is judged by the
    minimum whose floor is the highest at or below its version; below every floor it is not compliant.
    Give one minimum per branch (e.g. a GDR and an LDR version) to judge both; a file on a branch without a
    minimum of its own is judged by the nearest lower branch's.
  - Fails when a file is not compliant, unless O(report_only). Never changes anything.
author:
  - kbfix.windows developers (!UNKNOWN)
options:
  paths:
    description:
      - Absolute paths of the files (C(C:\WINDOWS\system32\drivers\mrxsmb.sys)), local to the host.
      - May start with C(%SystemRoot%), C(%windir%) or C(%SystemDrive%), expanded from the OS facts
        (RV(kbfix.windows.facts#module:ansible_facts.kbfix_os) when gathered, else one query), or with
        C(%ProgramFiles%), C(%ProgramFiles(x86)%), C(%CommonProgramFiles%), C(%CommonProgramFiles(x86)%),
        read from C(HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion). Other variables are refused.
      - Forward slashes are turned into backslashes. UNC paths are refused (CIM_DataFile sees local files only).
    type: list
    elements: str
    required: true
    aliases: [path]
  minimum_version:
    description:
      - The lowest compliant version, four parts (C(5.1.2600.1276)); or a list of them, one per build line
        or branch (C(["6.0.6001.18300", "6.0.6001.22565"])). See the description for how a file is matched
        to a minimum.
      - Mutually exclusive with O(exact_version), O(size) and O(date).
    type: list
    elements: str
  branch_floor:
    description:
      - The lowest version of the branch O(minimum_version) belongs to, when it cannot be derived from the
        number (XP / 2003). A file on the same build line below it is not compliant. Only with a single
        O(minimum_version), on its build line and not above it.
    type: str
  exact_version:
    description:
      - The version every file must have exactly (the four numbers; a build tag is ignored).
    type: str
  size:
    description:
      - The expected size in bytes, for articles that give no version. With O(date), a file is compliant
        when it has this size B(or) was modified at or after O(date) (the article's file, or a later one that
        replaced it).
      - From V(0) to V(18446744073709551615) (C(CIM_DataFile.FileSize) is a uint64).
    type: int
  date:
    description:
      - The article's file date, C(YYYY-MM-DD), optionally with a time C(HH:MM) and a UTC offset (UTC when
        none is given). A file modified at or after it is compliant. Quote it in YAML.
    type: str
  report_only:
    description:
      - Report non-compliant files without failing the task.
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - kbfix.windows.controller_action
  - kbfix.windows.controller_action.windows_host
  - kbfix.windows.resume
attributes:
  check_mode:
    support: full
    details: The module only reads; check mode changes nothing in its behaviour.
  diff_mode:
    support: none
notes:
  - Without O(minimum_version), O(exact_version), O(size) or O(date) the module only reports, and a file is
    compliant when it exists.
  - Verbosity C(-vv) shows steps, C(-vvvv) each WS-Management operation, C(-vvvvv) the payloads.
seealso:
  - module: kbfix.windows.kb_article
  - module: kbfix.windows.facts
"""

EXAMPLES = r"""
- name: The KB828753 redirector binaries on XP SP1
  kbfix.windows.file_version:
    paths:
      - '%SystemRoot%\system32\cscdll.dll'
      - '%SystemRoot%\system32\drivers\mrxsmb.sys'
      - '%SystemRoot%\system32\drivers\rdbss.sys'
    minimum_version: 5.1.2600.1276

- name: Dfsrs.exe on Server 2008, GDR and LDR judged separately, reported without failing
  kbfix.windows.file_version:
    paths: '%SystemRoot%\system32\Dfsrs.exe'
    minimum_version: [6.0.6001.18300, 6.0.6001.22565]
    report_only: true
  register: dfsr

- name: Mpr.dll of KB253729 has no version; the article gives its size and date
  kbfix.windows.file_version:
    paths: C:\WINNT\system32\mpr.dll
    size: 60176
    date: "2000-02-08 19:27"
"""

RETURN = r"""
waited_for_restart:
  description:
    - One line per time the host went down during the task and the task waited for it (O(reboot_timeout)) and
      started again from a fresh read, with the reason it was lost.
  returned: when the host went down during the task and came back
  type: list
  elements: str
compliant:
  description: Whether every file is compliant.
  returned: always
  type: bool
noncompliant:
  description: The paths (as given) of the files that are not compliant.
  returned: always
  type: list
  elements: str
files:
  description: One entry per path, in the order given.
  returned: success
  type: list
  elements: dict
  contains:
    path:
      description: The path as given.
      type: str
    expanded_path:
      description: The path with variables expanded, as queried.
      type: str
      sample: C:\WINDOWS\system32\drivers\mrxsmb.sys
    exists:
      description: Whether the file exists.
      type: bool
    version:
      description: The four-part version, null when the file has none (or does not exist).
      type: str
      sample: 5.1.2600.1276
    file_version:
      description: The FileVersion string as the host reports it, build tag included.
      type: str
      sample: 5.1.2600.1276 (xpsp2.030422-1633)
    branch:
      description: The servicing branch (C(gdr), C(ldr), C(baseline) or C(unknown)); on XP / 2003 it comes from
        the build tag.
      type: str
    size:
      description: Size in bytes.
      type: int
    date:
      description: Last modification time, ISO 8601 in UTC.
      type: str
    compliant:
      description: Whether the file meets the criteria.
      type: bool
    reason:
      description: Why, in one line.
      type: str
      sample: 5.1.2600.1106 < 5.1.2600.1276
msg:
  description: A summary naming each non-compliant file and why.
  returned: always
  type: str
"""
