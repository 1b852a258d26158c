# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Documentation only: the module runs on the controller as the action plugin plugins/action/hotfix.py.

from __future__ import annotations

DOCUMENTATION = r"""
module: hotfix
short_description: Install, detect or remove one Windows hotfix over WinRM, without PowerShell
version_added: 1.0.0
description:
  - Makes sure one hotfix (KB or Q number) is installed or removed on a Windows host, from NT 4.0-era
    C(hotfix.exe) packages through XP / 2003 C(update.exe) packages to C(.msu) packages on Vista and later.
  - Runs on the controller and talks to the host itself over WMI (WS-Management) and the WinRM cmd shell with
    the host's ordinary C(ansible_connection=winrm) settings. No PowerShell is used on the host.
  - Detection reports every source it found (RV(detection.sources)) - V(qfe) (Win32_QuickFixEngineering),
    V(registry) (the era's hotfix record, C(HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Hotfix\Q...) on
    NT 4.0 and 2000, C(HKLM\SOFTWARE\Microsoft\Updates\<product>\<SPn>\KB...) on XP and 2003), V(cbs) (the
    Component Based Servicing package on Vista and later) and, with O(spec), V(files) (the fixed file versions
    of the article are on disk, as after a superseding update that does not record this hotfix).
  - Arguments are checked before any request reaches the host.
author:
  - kbfix.windows developers (!UNKNOWN)
options:
  id:
    description:
      - The hotfix, V(KB977381) or V(Q253729) (case does not matter; a bare number means V(KB)).
    type: str
    required: true
  state:
    description:
      - V(present) installs the package unless a detection source says the hotfix is there.
      - V(absent) removes it - with C(wusa /uninstall) on Windows 7 / 2008 R2, C(pkgmgr /up) on Vista / 2008,
        the C(spuninst.exe) that C(update.exe) left in C($NtUninstallKB...$) on XP / 2003 (the record's
        C(UninstallCommand)), and C(hotfix.exe -y) from C($NtUninstallQ...$) on NT 4.0 / 2000.
    type: str
    choices: [present, absent]
    default: present
  source:
    description:
      - The package file. Required for O(state=present) unless the hotfix is already present.
      - A path on the controller (relative paths searched like C(files/) lookups), uploaded through the cmd shell
        to C(%SystemRoot%\Temp) and removed after installing; a path on the host (V(C:\\updates\\x.msu)); or a UNC
        path (V(\\\\server\\share\\x.msu)) that the host's computer account (or anyone) may read.
      - A file whose name names another hotfix is refused.
      - A controller file is verified before any request - its Authenticode signature must chain to Microsoft's
        root certificates (or a CA in the host variable C(kbfix_package_trust_ca)) with the signing time inside
        the signing certificate's validity; its own version information (KB article, processor architecture,
        language, product) must match the task and the host; its SHA-256 must match O(sha256),
        C(kbfix_package_sha256) or C(kbfix_package_lock) when they name it. C(kbfix_package_unsigned) lists
        the file names that may be installed without a signature (the opt-out, shown in RV(install)).
        Packages on the host or a share are not read by the controller and not verified.
    type: str
  sha256:
    description:
      - The SHA-256 digest the O(source) file on the controller must have; a different file is refused before
        any request.
    type: str
  installer:
    description:
      - The installer family. Default is to tell it from the file name - V(update) for C(update.exe) packages
        (V(WindowsXP-KB828753-x86-ENU.exe), V(WindowsServer2003-KB977381-x86-ENU.exe)), V(hotfix) for NT 4.0
        hotfixes (V(Q253729i.exe)), V(msu) for files ending in C(.msu) (run with C(wusa.exe)).
    type: str
    choices: [update, hotfix, msu]
  arguments:
    description:
      - The installer's switches instead of the unattended defaults - V([/quiet, /norestart]) for V(update) and
        V(msu), V([-m, -q, -z]) for V(hotfix). Without an unattended switch the installer waits for a person
        and is terminated after O(timeout).
    type: list
    elements: str
  allow_pending_reboot:
    description:
      - By default the module fails instead of installing while a restart is pending on the host (pending file
        renames, CBS RebootPending, Windows Update RebootRequired, update.exe's UpdateExeVolatile).
        V(true) installs anyway.
    type: bool
    default: false
  spec:
    description:
      - An article spec (path, searched like C(files/) lookups, or inline data) whose file table is used as
        detection evidence; it must list O(id) among its hotfix ids. Its registry settings and variables are
        not used.
    type: raw
  host_facts:
    description:
      - The host's OS facts as C(kbfix_os) from M(kbfix.windows.facts). Default is the gathered
        C(ansible_facts.kbfix_os), otherwise the host is queried.
    type: dict
  timeout:
    description:
      - Seconds the installer or uninstaller may run before it is terminated and the task fails.
    type: int
    default: 3600
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - kbfix.windows.controller_action
  - kbfix.windows.controller_action.windows_host
  - kbfix.windows.resume
attributes:
  check_mode:
    support: full
    details: Detection runs; nothing is uploaded, installed or removed.
  diff_mode:
    support: full
notes:
  - Installer exit codes - V(0) installed, V(3010) installed and a restart is required, V(2359302) already
    installed (not a change), V(-2145124329) (0x80240017) not applicable to this host (the task fails and says
    so); any other code fails the task with the code and the installer's output.
seealso:
  - module: kbfix.windows.kb_article
"""

EXAMPLES = r"""
- name: Install KB977381 on a Server 2008 R2 host from the controller
  kbfix.windows.hotfix:
    id: KB977381
    source: packages/Windows6.1-KB977381-x64.msu
  register: kb

- name: Install KB828753 from a share, with its file table as detection evidence
  kbfix.windows.hotfix:
    id: KB828753
    source: \\fileserver\updates\WindowsXP-KB828753-x86-ENU.exe
    spec: kb828753.yml

- name: Remove KB977381 again
  kbfix.windows.hotfix:
    id: KB977381
    state: absent

- name: Only report where the hotfix shows up
  kbfix.windows.hotfix:
    id: KB938475
  check_mode: true
  register: found
"""

RETURN = r"""
waited_for_restart:
  description:
    - One line per time the host went down during the task and the task waited for it (O(reboot_timeout)) and
      started again from a fresh read, with the reason it was lost.
  returned: when the host went down during the task and came back
  type: list
  elements: str
id:
  description: The hotfix id, normalised.
  returned: always
  type: str
  sample: KB977381
installed:
  description: Whether a record (QFE, registry record, CBS package) shows the hotfix after the task.
  returned: success
  type: bool
present:
  description: RV(installed), or the O(spec) file evidence says the fixed files are on disk.
  returned: success
  type: bool
detection:
  description:
    - Where the hotfix shows up after the task - V(sources) (V(qfe), V(registry), V(cbs), V(files)), V(qfe),
      V(registry_records) (keys), V(cbs_packages) (package name to state), V(file_checks),
      V(files_current), V(evidence_status), V(reboot_pending) and V(reboot_pending_sources).
  returned: success
  type: dict
  contains:
    sources:
      description: The detection sources that found the hotfix, among V(qfe), V(registry), V(cbs) and V(files).
      type: list
      elements: str
      sample: [qfe, registry]
  sample:
    hotfix_id: KB828753
    installed: true
    present: true
    sources: [qfe, registry]
    registry_records: ['HKLM\SOFTWARE\Microsoft\Updates\Windows XP\SP2\KB828753']
    cbs_packages: {}
    reboot_pending: true
    reboot_pending_sources: [PendingFileRenameOperations]
detection_before:
  description: The same as RV(detection), before the task acted.
  returned: success
  type: dict
install:
  description:
    - The install that ran - V(hotfix_id), V(package), V(installer), V(source), V(command), V(exit_code),
      V(result) (V(success), V(restart_required), V(already_installed)), V(restart_required), and V(staged_by),
      how the package reached the host (V(stdin), V(echo) or V(smb) for an upload, checked by size and, where
      the host computes it, SHA-1; V(host) or V(unc) when it was already reachable).
    - V(package_check) - for a controller package, its V(sha256), V(signature) (V(verified), or
      V(unsigned_allowed) when C(kbfix_package_unsigned) let an unsigned package through), V(signed_by) (signer,
      chain, signing time) and V(identity) (what its version information says); V(null) for host and share paths.
  returned: when a package was installed
  type: dict
uninstall:
  description: The removal that ran - V(commands), V(exit_codes), V(result), V(restart_required).
  returned: when the hotfix was removed
  type: dict
reboot_required:
  description: Whether the host must restart to complete the install or removal.
  returned: success
  type: bool
requests:
  description: The number of WinRM requests this task sent.
  returned: always
  type: int
msg:
  description: What happened, in one line.
  returned: always
  type: str
"""
