# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Documentation only: the module runs on the controller as the action plugin plugins/action/article_import.py.

from __future__ import annotations

DOCUMENTATION = r"""
module: article_import
short_description: Import a Microsoft KB article into an article role with a checked spec
version_added: 1.0.0
description:
  - Reads a saved Microsoft Knowledge Base article and writes the thin article role C(kbNNNNNN/) into O(dest)
    (C(files/kbNNNNNN.yml), the spec, with C(README.md), C(defaults/main.yml), C(meta/argument_specs.yml),
    C(meta/main.yml) and C(tasks/main.yml)), as the collection's own article roles are.
  - "The article may be the support page saved as HTML, text copied from a browser (table cells run together
    are told apart), the plain-text Q-article of the Windows NT 4.0 era, or Markdown; the shape is detected."
  - It reads the Windows versions the article applies to (Applies to, every table heading with its
    architecture and service pack, I(first corrected in) statements), every row of every file table (version,
    size, date, time, platform, SP requirement, service branch; manifests, C(.mum), C(.cat) and C(.mui) rows
    become informational rows), the restart requirement, hotfix replacement, prerequisites and registry
    sections (a value the article leaves to the administrator becomes a declared variable with its range).
  - Nothing is dropped silently. RV(report) lists every table row and registry line that could not be placed
    and why, every inferred value (also written C((I\)) in the spec, with the reason), and every value marked
    for review (the spec's C(review) list, for example a package file name the article never gives, written
    C(REVIEW-...)).
  - The spec is loaded with the collection's own loader before anything is written; a spec that does not load
    fails the task and nothing is written.
  - Runs on the controller only; the task's host is not contacted. Use it with C(ansible localhost -m) or in a
    play on C(localhost).
author:
  - kbfix.windows developers (!UNKNOWN)
requirements:
  - Nothing beyond ansible-core on the controller; it reaches no host, so it needs none of the transports'
    packages (C(pywinrm), C(pyspnego), C(defusedxml), C(impacket)).
options:
  src:
    description:
      - The saved article on the controller (C(.html), C(.txt) or C(.md)). A relative path is searched like
        C(files/) lookups (the role's C(files/), then the playbook's directory).
    type: path
    required: true
  dest:
    description:
      - The directory in which the role C(kbNNNNNN/) is written (created when missing). A relative path is
        relative to the playbook's directory (the current directory for C(ansible -m)).
      - Name it in C(kbfix_article_paths) so that the fleet playbooks and M(kbfix.windows.kb_article) find the
        article.
    type: path
    required: true
  force:
    description:
      - Replace an existing role of the same article. Without it an existing C(kbNNNNNN/) in O(dest) makes the
        task fail and nothing is written; use C(--check --diff) to see what would change.
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - kbfix.windows.controller_action
attributes:
  check_mode:
    support: full
    details: Imports and checks the spec, returns it and the report, and writes nothing.
  diff_mode:
    support: full
    details: The spec as it would be written, against the existing one in O(dest).
  platform:
    platforms: posix
    details: Runs on the controller.
seealso:
  - module: kbfix.windows.kb_article
"""

EXAMPLES = r"""
- name: Import a saved article into the playbook's articles directory
  kbfix.windows.article_import:
    src: kb123456.html
    dest: "{{ playbook_dir }}/articles"
  delegate_to: localhost
  run_once: true
  register: imported

- name: Show what the importer could not place or had to infer
  ansible.builtin.debug:
    var: imported.report

# From the command line:
#   ansible localhost -m kbfix.windows.article_import -a "src=kb123456.txt dest=articles" --check --diff
"""

RETURN = r"""
path:
  description: The spec file (written, or that would be written in check mode).
  returned: success
  type: str
  sample: /home/me/articles/kb123456/files/kb123456.yml
role:
  description: The role directory.
  returned: success
  type: str
  sample: /home/me/articles/kb123456
spec:
  description: The spec's data as written (dates as C(YYYY-MM-DD)).
  returned: success
  type: dict
report:
  description: What the importer read and what it could not place.
  returned: success
  type: dict
  contains:
    shape:
      description: The article's shape.
      type: str
      sample: browser_text
    unplaced:
      description: Table rows, registry lines and Applies-to products not placed in the spec, each with the reason.
      type: list
      elements: dict
    inferred:
      description: Values the article does not state (field, value, reason); written C((I\)) in the spec.
      type: list
      elements: dict
    review:
      description: Values to check before enforcing (the spec's C(review) list).
      type: list
      elements: dict
    warnings:
      description: The loader's warnings about the spec (a row printed twice).
      type: list
      elements: str
    notes:
      description: Other observations (tables that are not file tables, rows checked by version and size).
      type: list
      elements: str
"""
