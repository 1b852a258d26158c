# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Documentation only: the module runs on the controller as the action plugin plugins/action/article_list.py.

from __future__ import annotations

DOCUMENTATION = r"""
module: article_list
short_description: List the KB articles the fleet playbooks know, and where each comes from
version_added: 1.1.0
description:
  - Lists every article that M(kbfix.windows.kb_article) can name by id, that is what C(kbfix.windows.audit)
    and C(kbfix.windows.remediate) audit and remediate by default. They are the collection's own article
    roles, and every article in the directories of C(kbfix_article_paths) (each article role
    C(kbNNNNNN/files/kbNNNNNN.yml) and each spec file C(kbNNNNNN.yml) there).
  - Reads spec files on the controller only; no host is contacted, so it runs against C(localhost).
  - Fails, naming the problem, when a directory does not exist, a spec there does not load (the file is named),
    or an article id is found twice (both places are named).
author:
  - kbfix.windows developers (!UNKNOWN)
options:
  paths:
    description:
      - The article directories to search besides the collection's roles. Relative paths are taken from the
        playbook's directory.
      - Omitted, the host variable C(kbfix_article_paths) is used, as M(kbfix.windows.kb_article) uses it.
    type: list
    elements: str
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - kbfix.windows.controller_action
attributes:
  check_mode:
    support: full
    details: Only reads controller files.
  diff_mode:
    support: none
  platform:
    platforms: all
seealso:
  - module: kbfix.windows.kb_article
"""

EXAMPLES = r"""
- name: List the articles of the collection and of ./articles
  kbfix.windows.article_list:
    paths: [articles]
  register: known
  delegate_to: localhost
  run_once: true

- name: Show each article and where it comes from
  ansible.builtin.debug:
    msg: "{{ item.id }}: {{ item.origin }} {{ item.path }}"
  loop: "{{ known.articles }}"
"""

RETURN = r"""
articles:
  description: The known articles, by id.
  returned: success
  type: list
  elements: dict
  contains:
    id:
      description: The article id.
      type: str
      sample: KB828753
    title:
      description: The article's title from its spec.
      type: str
    path:
      description: The spec file on the controller.
      type: str
      sample: /home/me/articles/kb123456/files/kb123456.yml
    origin:
      description: V(collection) for the collection's own articles, V(user) for those found in O(paths).
      type: str
      sample: user
    search_dir:
      description: The directory of O(paths) (or C(kbfix_article_paths)) it was found in; null for the collection's.
      type: str
    variables:
      description: The host variables the article reads when named by id (C(<role>_<name>)).
      type: list
      elements: str
      sample: [kb828753_reconnectable_servers, kb828753_reconnect_timeout]
"""
