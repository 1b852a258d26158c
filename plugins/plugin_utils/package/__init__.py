# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Package authenticity on the controller: Authenticode signatures, pinned hashes and what a package says
about itself, checked before any byte of it reaches a host. No transport, no Ansible: files and certificates.
"""
