# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Documentation only: the module runs on the controller as the action plugin plugins/action/package_lock.py.

from __future__ import annotations

DOCUMENTATION = r"""
module: package_lock
short_description: Verify a directory of hotfix packages and record their SHA-256 in a lock file
version_added: 1.0.0
description:
  - Verifies every C(.exe) and C(.msu) package in O(path) on the controller as M(kbfix.windows.hotfix) and
    M(kbfix.windows.kb_article) do before installing one - the Authenticode signature chains to Microsoft's root
    certificates (or a CA in C(kbfix_package_trust_ca)) with the signing time inside the certificate's validity,
    unless the file name is listed in C(kbfix_package_unsigned); the package's own version information
    (KB article, architecture, language) agrees with its file name.
  - Writes O(dest), a YAML lock file with the SHA-256 of each package. Point C(kbfix_package_lock) at it and
    every later task refuses a package whose bytes differ, before any request reaches a host.
  - Fails, writing nothing, when any package is refused; the message names the file and the reason.
  - Contacts no host. Run it on C(localhost) (or with C(delegate_to) C(localhost)).
author:
  - kbfix.windows developers (!UNKNOWN)
options:
  path:
    description:
      - The directory of packages on the controller.
    type: str
    required: true
  dest:
    description:
      - The lock file to write on the controller (rewritten only when its content changes).
    type: str
    required: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - kbfix.windows.controller_action
  - kbfix.windows.controller_action.windows_host
attributes:
  check_mode:
    support: full
    details: Verifies the packages and reports whether the lock file would change, without writing it.
  diff_mode:
    support: none
notes:
  - Verification needs the C(osslsigncode) program on the controller (Debian and Ubuntu package C(osslsigncode)).
seealso:
  - module: kbfix.windows.hotfix
  - module: kbfix.windows.kb_article
"""

EXAMPLES = r"""
- name: Record the hashes of the verified packages
  kbfix.windows.package_lock:
    path: "{{ playbook_dir }}/packages"
    dest: "{{ playbook_dir }}/packages.lock.yml"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
dest:
  description: The lock file.
  returned: success
  type: str
packages:
  description:
    - One entry per package - V(file), V(sha256), V(signature) (V(verified) or V(unsigned_allowed)),
      V(signed_by) (signer, chain, signing time) and V(identity) (what its version information says).
  returned: success
  type: list
  elements: dict
"""
