# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one option of the modules that start over when the host goes down under them (facts, file_version,
hotfix, registry_value): written once so the four cannot describe the wait differently."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  reboot_timeout:
    description:
      - Seconds to wait for a host that goes down in the middle of the task (restarted by someone else, or
        crashed), seen as a refused or reset connection, or as the HTTP 400 a restarted WinRM gives to a
        session it no longer knows. Once it answers again the task starts over from a fresh read of the
        host's state, so nothing done before is done twice, and the result says so in RV(waited_for_restart).
      - When it does not answer in time the host is reported unreachable with the reason it was lost and
        the last error. V(0) reports it unreachable at once.
    type: int
    default: 600
"""
