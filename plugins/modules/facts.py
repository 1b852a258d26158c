# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Documentation only: the module runs on the controller as the action plugin plugins/action/facts.py.

from __future__ import annotations

DOCUMENTATION = r"""
module: facts
short_description: Gather Windows OS, boot, pending-restart and WinRM facts over WinRM without PowerShell
version_added: 1.0.0
description:
  - Reads C(Win32_OperatingSystem) and C(Win32_ComputerSystem) over WS-Management, the pending-restart
    indicators through C(StdRegProv), and the WinRM version from a WS-Management C(Identify), and returns
    them as C(ansible_facts) named C(kbfix_*). Works from Windows XP and Server 2003 on; nothing runs in
    PowerShell.
  - RV(ansible_facts.kbfix_os) is what M(kbfix.windows.kb_article), M(kbfix.windows.file_version) and
    M(kbfix.windows.registry_value) use when present, so run this module once at the start of a play and
    they do not ask again.
  - Six requests (five with O(winrm_version=os_table)) in two concurrent rounds, over one authenticated
    connection when the host answers quickly.
  - >-
    B(Play fact gathering.) Ansible's C(gather_facts) (and C(gather_facts: true)) runs fact modules B(on the
    host) through the connection, which on C(winrm) means PowerShell, and never runs an action plugin. This
    module runs on the controller, so listing it in C(ansible_facts_modules) or C(FACTS_MODULES) makes fact
    gathering fail. The equivalent is one line: C(gather_facts: false) on the play and C(- kbfix.windows.facts:)
    as its first task, as in the examples; the facts then hold for the whole play, and
    M(kbfix.windows.kb_article) reuses them. C(module_defaults) with the C(group/kbfix.windows.windows) action
    group sets common options for it and the other modules.
author:
  - kbfix.windows developers (!UNKNOWN)
options:
  winrm_version:
    description:
      - Where RV(ansible_facts.kbfix_winrm_version) comes from. V(identify) asks the service with an
        authenticated C(Identify); V(os_table) takes it from what the Windows version ships with or can
        install (a lower bound), one request fewer, for plays that do not need it (C(kbfix.windows.audit)).
    type: str
    choices: [identify, os_table]
    default: identify
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.facts
  - ansible.builtin.action_common_attributes.flow
  - kbfix.windows.controller_action
  - kbfix.windows.controller_action.windows_host
  - kbfix.windows.resume
attributes:
  check_mode:
    support: full
    details: Only reads; runs in check mode as usual.
  diff_mode:
    support: none
  facts:
    support: full
notes:
  - >-
    The WinRM version comes from an authenticated C(Identify) (its C(ProductVersion), C(... Stack: 2.0)).
    WinRM 1.0 (the Server 2003 R2 Hardware Management component) does not answer C(Identify); the version is
    then taken from a table of what each Windows ships with or can install, and
    RV(ansible_facts.kbfix_winrm_version_source) says so (V(os_table) instead of V(identify)). The table is a
    lower bound, since WMF 2.0 upgrades XP SP3, 2003 SP2, Vista and 2008 to WinRM 2.0.
  - Verbosity C(-vv) shows a summary line, C(-vvvv) each WS-Management (or SMB/RPC) operation, C(-vvvvv) the
    payloads.
  - On an NT 4.0 host (C(kbfix_transport=smb)) the facts come from the remote registry and the Server service;
    C(kbfix_domain) is empty and C(kbfix_domain_member) null there (not read).
seealso:
  - module: kbfix.windows.kb_article
  - module: kbfix.windows.reboot
"""

EXAMPLES = r"""
# In a play with "gather_facts: false": Ansible's own fact gathering runs PowerShell on the host.
- name: Gather facts over WMI
  kbfix.windows.facts:

- name: Show what was found
  ansible.builtin.debug:
    msg: >-
      {{ ansible_facts.kbfix_os.caption }} SP{{ ansible_facts.kbfix_os.service_pack }}
      ({{ ansible_facts.kbfix_os.architecture }}), WinRM {{ ansible_facts.kbfix_winrm_version }},
      restart pending: {{ ansible_facts.kbfix_reboot_pending }}
"""

RETURN = r"""
waited_for_restart:
  description:
    - One line per time the host went down during the task and the task waited for it (O(reboot_timeout)) and
      started again from a fresh read, with the reason it was lost.
  returned: when the host went down during the task and came back
  type: list
  elements: str
ansible_facts:
  description: Facts added to the host.
  returned: always
  type: dict
  contains:
    kbfix_os:
      description:
        - The operating system, in the shape the engine uses (C(OsFacts)).
        - C(version) is C(major.minor.build); C(product_type) 1 workstation, 2 domain controller, 3 server;
          C(r2) is true on Server 2003 R2; C(system_root) is the Windows directory.
      type: dict
      sample: {"version": "5.1.2600", "service_pack": 1, "architecture": "x86", "product_type": 1,
               "caption": "Microsoft Windows XP Professional", "r2": false, "system_root": "C:\\WINDOWS"}
    kbfix_hostname:
      description: The computer name (C(Win32_ComputerSystem.Name)).
      type: str
      sample: XP1
    kbfix_domain:
      description: The domain the host belongs to, or its workgroup name.
      type: str
      sample: WORKGROUP
    kbfix_domain_member:
      description: Whether the host is joined to a domain (from C(DomainRole)); null when not reported.
      type: bool
    kbfix_system_type:
      description: C(Win32_ComputerSystem.SystemType), which tells the architecture before Vista.
      type: str
      sample: X86-based PC
    kbfix_last_boot:
      description: When the host last booted, ISO 8601 with offset.
      type: str
      sample: "2024-03-01T08:15:00+00:00"
    kbfix_reboot_pending:
      description: Whether a restart is pending.
      type: bool
    kbfix_reboot_pending_sources:
      description:
        - The indicators found, among C(PendingFileRenameOperations) (Session Manager), C(CBS RebootPending)
          (Vista and later), C(WindowsUpdate RebootRequired) and C(UpdateExeVolatile) (XP and Server 2003, update.exe).
      type: list
      elements: str
    kbfix_winrm_version:
      description: The WinRM stack version; null on an NT 4.0 host reached over SMB (C(kbfix_transport=smb)).
      type: str
      sample: "2.0"
    kbfix_winrm_version_source:
      description:
        - V(identify) when the host said so, V(os_table) when it was inferred from the OS version, V(smb) on a
          host reached over SMB (NT 4.0 has no WinRM).
      type: str
"""
