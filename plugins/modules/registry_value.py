# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Documentation only: the module runs on the controller as the action plugin plugins/action/registry_value.py.

from __future__ import annotations

DOCUMENTATION = r"""
module: registry_value
short_description: Ensure a Windows registry value over WinRM without PowerShell
version_added: 1.0.0
description:
  - Reads, sets or removes one registry value through WMI's C(StdRegProv) provider, reached over
    WS-Management with the host's ordinary C(ansible_connection=winrm) settings. Nothing runs in PowerShell,
    so it works on Windows XP, Server 2003 / 2003 R2, Vista, Server 2008 and later alike.
  - Runs on the controller (an action plugin); it never calls the winrm connection's C(exec_command).
  - Idempotent. The value is read first (one typed read) and written only when its type or data differ.
    Every write is read back; a value of another type than O(type) is replaced and reported as changed,
    with both types in RV(before) and RV(after).
  - Arguments are checked before any request is sent; errors name the argument.
  - An empty multistring (C(data=[])) and values of type C(none) are written with C(reg.exe add) through the
    WinRM cmd shell, because C(StdRegProv) has no method for them (C(SetMultiStringValue) refuses an empty
    array).
author:
  - kbfix.windows developers (!UNKNOWN)
options:
  path:
    description:
      - The registry key holding the value.
      - Accepted spellings C(HKLM\SOFTWARE\Example), C(HKEY_LOCAL_MACHINE\SOFTWARE\Example),
        C(HKLM:\SOFTWARE\Example) (PowerShell drive) and C(Registry::HKEY_LOCAL_MACHINE\SOFTWARE\Example).
        Hives C(HKLM), C(HKCU), C(HKU), C(HKCR) and C(HKCC), short or long.
      - C(HKCU) is the hive of the account WinRM authenticates as.
    type: str
    required: true
    aliases: [key]
  name:
    description:
      - The value name, case-insensitive as on Windows. Omitted or empty means the key's default (unnamed)
        value.
    type: str
  type:
    description:
      - The registry type the value must have.
      - C(qword) needs Windows Vista / Server 2008 or later (C(StdRegProv) has no QWORD methods before).
    type: str
    default: string
    choices: [string, expandstring, multistring, dword, qword, binary, none]
  data:
    description:
      - The data. Required with O(state=present), except for O(type=none) (which has no data).
      - V(dword) / V(qword) - an integer, a decimal string (V("60")) or a hex string (V("0x3c")).
        V(0xFFFFFFFF) is the largest dword. A negative number is stored as its two's complement of the same
        width (V(-1) becomes V(4294967295) for a dword); anything out of range is refused.
      - V(binary) - a hex string (V("0a0b0c"), V("0x0a0b0c"), V("hex:0a,0b,0c"), V("0a 0b 0c")) or a list of byte
        values (V([10, 11, 12])); RV(before) and RV(after) show binary data as a hex string.
      - V(multistring) - a list of strings (a single string is one entry); V([]) is an empty multistring.
        Entries cannot be empty strings, because Windows ends a REG_MULTI_SZ at the first empty string.
      - V(expandstring) - written as given (C(%SystemRoot%\x)). C(StdRegProv) returns it expanded
        (C(C:\WINDOWS\x)), so RV(before) and RV(after) show the expanded form; the comparison accepts any
        expansion of each C(%VARIABLE%).
    type: raw
  state:
    description:
      - V(present) makes the value exist with O(type) and O(data); V(absent) deletes it (a missing value or
        key is not an error).
    type: str
    default: present
    choices: [present, absent]
  multistring_mode:
    description:
      - How O(data) applies to a V(multistring) value.
      - V(replace) - the value becomes exactly O(data).
      - V(merge) - every entry of O(data) must be present; other entries stay, missing ones are appended in
        the order given. A value of another type is replaced by O(data).
      - V(remove) - the entries of O(data) are taken out, the rest stay (an emptied value stays as an empty
        multistring). A missing value stays missing; a value of another type is left alone with a warning.
    type: str
    default: replace
    choices: [replace, merge, remove]
  case_insensitive:
    description:
      - Compare multistring entries without regard to case (server names, host names). Applies to
        V(merge), V(remove) and to whether a V(replace) is needed at all.
    type: bool
    default: false
  create_key:
    description:
      - Create O(path) (and missing parents) when it does not exist. With V(false) a missing key fails the
        task, in check mode too.
    type: bool
    default: true
  view:
    description:
      - The registry view. WinRM's WMI plugin has no way to pass the C(__ProviderArchitecture) context that
        selects a view in DCOM WMI, so C(StdRegProv) always works in its B(native) view (64-bit on x64 Windows).
      - V(native) - no check.
      - V(64) - fails on 32-bit Windows, which has no 64-bit view; otherwise the same as V(native).
      - V(32) - the same as V(native) on 32-bit Windows; on 64-bit Windows it fails with a message
        rather than write to the wrong view. Address 32-bit software's keys by their real path
        (C(HKLM\SOFTWARE\Wow6432Node\...)) instead.
      - V(32) and V(64) need the host's architecture, from RV(kbfix.windows.facts#module:ansible_facts.kbfix_os)
        when facts were gathered, else one extra query.
    type: str
    default: native
    choices: [native, '32', '64']
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - kbfix.windows.controller_action
  - kbfix.windows.controller_action.windows_host
  - kbfix.windows.resume
attributes:
  check_mode:
    support: full
    details: Reads the value and reports what would change; nothing is written.
  diff_mode:
    support: full
notes:
  - Verbosity C(-vv) shows each step, C(-vvvv) each WS-Management operation, C(-vvvvv) the request and reply
    payloads. Passwords are never shown.
  - An unreachable host is reported as C(unreachable), rejected credentials as a failure naming the user.
seealso:
  - module: kbfix.windows.facts
  - module: kbfix.windows.kb_article
"""

EXAMPLES = r"""
- name: Keep reconnecting to the file servers for two minutes (KB828753)
  kbfix.windows.registry_value:
    path: HKLM\SYSTEM\CurrentControlSet\Services\LanmanWorkstation\Parameters
    name: ReconnectTimeout
    type: dword
    data: 120

- name: Make sure the file server is listed by every name it is reached by, keeping other entries
  kbfix.windows.registry_value:
    path: HKLM\SYSTEM\CurrentControlSet\Services\LanmanWorkstation\Parameters
    name: ReconnectableServers
    type: multistring
    data: [fs01, fs01.corp.example.com, 192.0.2.10]
    multistring_mode: merge
    case_insensitive: true

- name: Take a retired server out of the list
  kbfix.windows.registry_value:
    path: HKLM\SYSTEM\CurrentControlSet\Services\LanmanWorkstation\Parameters
    name: ReconnectableServers
    type: multistring
    data: [oldfs]
    multistring_mode: remove
    case_insensitive: true

- name: A dword given in hex, written only if the key already exists
  kbfix.windows.registry_value:
    path: HKLM:\SYSTEM\CurrentControlSet\Services\LanmanServer\Parameters
    name: AsynchronousCredits
    type: dword
    data: "0x100"
    create_key: false

- name: Binary data as a hex string
  kbfix.windows.registry_value:
    path: HKLM\SOFTWARE\Example
    name: Blob
    type: binary
    data: "de:ad:be:ef"

- name: Remove a value
  kbfix.windows.registry_value:
    path: HKLM\SOFTWARE\Example
    name: Obsolete
    state: absent
"""

RETURN = r"""
waited_for_restart:
  description:
    - One line per time the host went down during the task and the task waited for it (O(reboot_timeout)) and
      started again from a fresh read, with the reason it was lost.
  returned: when the host went down during the task and came back
  type: list
  elements: str
path:
  description: The key, normalised to the short hive form.
  returned: success
  type: str
  sample: HKLM\SYSTEM\CurrentControlSet\Services\LanmanWorkstation\Parameters
name:
  description: The value name as given (empty for the default value).
  returned: success
  type: str
  sample: ReconnectTimeout
before:
  description: The value before the task, C(null) when it did not exist. Binary data is a hex string.
  returned: success
  type: dict
  sample: {"type": "string", "data": "60"}
  contains:
    type:
      description: The registry type (one of the O(type) choices).
      type: str
    data:
      description: The data (integer, string, list of strings, hex string, or null for type none).
      type: raw
after:
  description: The value after the task (in check mode, what it would be); C(null) when it does not exist.
  returned: success
  type: dict
  sample: {"type": "dword", "data": 120}
key_created:
  description: Whether the key was (or in check mode would be) created.
  returned: success
  type: bool
  sample: false
diff:
  description: With C(--diff), RV(before) and RV(after) with the path and name, for Ansible's diff output.
  returned: diff mode
  type: dict
"""
