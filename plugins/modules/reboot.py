# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Documentation only: the module runs on the controller as the action plugin plugins/action/reboot.py.

from __future__ import annotations

DOCUMENTATION = r"""
module: reboot
short_description: Restart a Windows host over WinRM without PowerShell and wait for it to come back
version_added: 1.0.0
description:
  - Runs C(shutdown /r /f /t <pre_reboot_delay> /c <msg>) through the WinRM cmd shell, then waits until WinRM
    answers again B(and) C(Win32_OperatingSystem.LastBootUpTime) has changed, so a host that is slow to go
    down is never mistaken for one that came back.
  - With O(mode=if_required) the host restarts only when a restart is pending (the indicators of
    M(kbfix.windows.facts)); otherwise nothing happens and the task reports no change.
  - With O(mode=always) every run restarts the host and reports a change, as ansible.windows.win_reboot does.
  - Afterwards the boot time and pending-restart facts are read again and returned as C(ansible_facts).
author:
  - kbfix.windows developers (!UNKNOWN)
options:
  mode:
    description:
      - V(always) restarts unconditionally; V(if_required) only when a restart is pending.
    type: str
    default: always
    choices: [always, if_required]
  reboot_timeout:
    description:
      - Seconds to wait for the host to come back with a new boot time, counted from the moment it goes down
        (after O(pre_reboot_delay)).
      - >-
        When it runs out the task ends as B(unreachable) with the message
        C(Timed out waiting for <host> to come back after reboot: no new boot time after <reboot_timeout>
        seconds (last error: <last error>)), where C(<host>) is the address WinRM connects to and
        C(<last error>) the last probe's failure (or C(the host still reports the boot time ...)).
    type: int
    default: 600
  connect_timeout:
    description:
      - TCP connect timeout of each probe while waiting, in seconds (1 to 300; probes use at most 5).
    type: int
    default: 5
  pre_reboot_delay:
    description:
      - Seconds between the command and the restart (C(shutdown /t)). 0 to 600, the range shutdown.exe of
        XP and Server 2003 accepts.
    type: int
    default: 2
  msg:
    description:
      - The comment shown to logged-on users and recorded in the event log (C(shutdown /c)). At most 127
        characters (the limit of XP / 2003); no double quotes, C(%) or line breaks, which cmd.exe would
        reinterpret. Empty for none.
    type: str
    default: Reboot initiated by Ansible
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - kbfix.windows.controller_action
  - kbfix.windows.controller_action.windows_host
attributes:
  check_mode:
    support: full
    details: Reads the pending-restart indicators (with O(mode=if_required)) and reports whether the host
      would restart; never restarts it.
  diff_mode:
    support: full
    details: The boot time before and after (and, with O(mode=if_required), the pending-restart indicators).
notes:
  - Needs WinRM 1.1 or later (the cmd shell); WinRM 1.0 has none.
  - The account must be allowed to shut the system down (local Administrators are).
seealso:
  - module: kbfix.windows.facts
  - module: ansible.windows.win_reboot
"""

EXAMPLES = r"""
- name: Restart if an installation left a restart pending
  kbfix.windows.reboot:
    mode: if_required

- name: Restart now, waiting up to 20 minutes for a slow server
  kbfix.windows.reboot:
    reboot_timeout: 1200
    pre_reboot_delay: 0
    msg: Restarting to finish installing KB977381
"""

RETURN = r"""
rebooted:
  description: Whether the host restarted (never in check mode).
  returned: always
  type: bool
reboot_required:
  description: With O(mode=if_required), whether a restart was pending; null with O(mode=always).
  returned: always
  type: bool
reboot_pending_sources:
  description: The pending-restart indicators found before restarting (O(mode=if_required)).
  returned: always
  type: list
  elements: str
  sample: ["PendingFileRenameOperations"]
elapsed:
  description: Seconds from the restart command to the new boot being seen.
  returned: when the host restarted
  type: float
previous_boot:
  description: The boot time before the restart, ISO 8601.
  returned: when the host restarted
  type: str
last_boot:
  description: The new boot time, ISO 8601.
  returned: when the host restarted
  type: str
ansible_facts:
  description: Refreshed C(kbfix_last_boot), C(kbfix_reboot_pending) and C(kbfix_reboot_pending_sources).
  returned: when the host restarted
  type: dict
diff:
  description: With C(--diff), C(last_boot) (and C(reboot_pending_sources)) before and after.
  returned: diff mode, when the host restarted or would restart
  type: dict
"""
