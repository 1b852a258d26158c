"""Root test configuration.

Install ansible-core's collection loader before anything imports ``ansible_collections.kbfix.windows``:
some tests load plugins through Ansible (which installs the loader), others import plugin_utils directly.
Imported first as a plain namespace package, the collection would have no metadata once Ansible's finder
takes over ("collection metadata was not loaded"), so the loader must own those imports from the start,
the way ansible-test's own pytest plugin arranges it.
"""

from __future__ import annotations

import os
from pathlib import Path

from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

_REPO = Path(__file__).resolve().parent.parent
_COLLECTIONS = Path(os.environ.get("ANSIBLE_COLLECTIONS_PATH", _REPO / ".cache" / "collections")).resolve()

_AnsibleCollectionFinder(paths=[str(_COLLECTIONS)], scan_sys_paths=False)._install()
