# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Documentation only: the module runs on the controller as the action plugin plugins/action/kb_article.py.

from __future__ import annotations

DOCUMENTATION = r"""
module: kb_article
short_description: Audit or enforce Microsoft KB articles on Windows hosts over WinRM, without PowerShell
version_added: 1.0.0
description:
  - Checks a Windows host against one or more KB articles described as data (article specs, see
    C(docs/spec-format.md)) and, in O(state=enforced), installs the hotfix package and sets the registry values
    the article asks for, then reads the host again and reports the new verdict.
  - Runs on the controller and talks to the host itself, over WMI through WS-Management and the WinRM cmd
    shell, using the host's ordinary C(ansible_connection=winrm) settings (C(ansible_winrm_*), user,
    password). No PowerShell is needed or used on the host, so Windows NT 5.x and 6.x hosts work.
  - One task reads everything all listed articles need with a handful of concurrent WinRM requests, over one
    authenticated connection. With O(host_facts) (or gathered C(kbfix_os) facts), an audit of one article
    costs about five requests; after M(kbfix.windows.facts) in the same play the pending restart is taken
    from its C(kbfix_reboot_pending_sources) too (the indicators the articles' installers leave), so the four
    seed articles cost at most three. After changes in O(state=enforced) the host is read again in full, and
    the task returns the refreshed C(kbfix_reboot_pending) and C(kbfix_reboot_pending_sources) facts, so a
    later task does not reuse the answer from before the changes.
  - Spec and variable errors fail before any request reaches the host, naming the field.
  - Hosts that do not answer are reported as unreachable, rejected credentials as a failure.
  - Verbosity C(-vv) shows the steps and verdicts, C(-vvvv) each WS-Management operation, C(-vvvvv) the
    payloads. Passwords never appear at any level.
author:
  - kbfix.windows developers (!UNKNOWN)
options:
  articles:
    description:
      - The articles to check. Each element is the id of a known article (like V(KB977381)), V(all), the path of
        a spec file, or a mapping with V(spec) (a path or the spec itself as inline data) and V(variables) (that
        article's variables).
      - The known articles are this collection's and the user's, found in the directories of the host variable
        C(kbfix_article_paths) (every article role C(kbNNNNNN/files/kbNNNNNN.yml) and every spec file
        C(kbNNNNNN.yml) there; relative directories are taken from the playbook's directory).
        M(kbfix.windows.article_list) lists them. A directory that does not exist, a spec there that does not
        load (the file is named) and an id found twice (both places are named) fail the task before any request.
      - V(all) stands for every known article not named otherwise in the list.
      - An article named by id is read from its spec, and each variable the spec declares is taken from the host
        variable C(<role>_<name>), as its article role reads it (for KB828753 C(kb828753_reconnectable_servers);
        a spec file outside a role uses its file name, C(kb123456_<name>)), unless O(variables) gives it. A host
        variable that is not set is not given; its value is checked like any other and errors name the host
        variable. This is how C(kbfix.windows.audit) and C(kbfix.windows.remediate) pass the articles (V(all)
        unless C(kbfix_articles) selects ids), so nothing per article is templated for every host.
      - A relative path is searched like C(files/) lookups are, the role's C(files/) directory first, then the
        playbook's directory; for example V(kb828753.yml) inside role C(kb828753).
      - All listed articles are gathered together and reported in one task.
    type: list
    elements: raw
    required: true
  variables:
    description:
      - Variables for every listed article that declares them (for example V(reconnectable_servers) of
        KB828753). Variables given in an element of O(articles) override these.
      - A variable that no listed article declares is an error (a typo would otherwise be ignored).
    type: dict
    default: {}
  state:
    description:
      - V(audited) reads and reports, and never changes anything.
      - V(enforced) carries out the plan of each noncompliant article (install the package, set registry
        values, each write read back), then reads the host again. It never restarts the host; the result says
        when a restart is required.
      - Articles whose verdict is V(unknown) (facts could not be read) are not enforced.
    type: str
    choices: [audited, enforced]
    default: audited
  package_source:
    description:
      - Where the hotfix packages named by the specs are, needed when a package must be installed.
      - A directory on the controller (relative paths searched like C(files/) lookups); the package is uploaded
        through the WinRM cmd shell to C(%SystemRoot%\Temp) and removed after installing.
      - A directory on the host, like V(C:\\updates).
      - A UNC path, like V(\\\\fileserver\\updates). The WinRM session has no network credentials (NTLM), so
        the share must allow the computer account or anonymous read.
    type: str
  allow_pending_reboot:
    description:
      - By default no package is installed while the host has a restart pending (pending file renames, and
        from Vista on the CBS RebootPending key, the indicators the articles' installers leave); the task
        then installs nothing for that
        article, says why in RV(msg) and RV(changes), and sets RV(restart_required).
      - Set to V(true) to install anyway.
    type: bool
    default: false
  fail_on:
    description:
      - Verdict statuses that make the task fail after it has reported the verdicts (for example
        V([noncompliant, unknown]) in an audit run that gates a pipeline).
    type: list
    elements: str
    choices: [compliant, noncompliant, not_applicable, reboot_pending, unknown]
    default: []
  host_facts:
    description:
      - The host's OS facts as M(kbfix.windows.facts) returns them in C(kbfix_os) (V(version),
        V(service_pack), V(architecture), V(product_type), and optionally V(caption), V(r2),
        V(system_root)).
      - "Optionally V(last_boot), the C(kbfix_last_boot) fact (ISO 8601 with a time zone), for example
        C({{ ansible_facts.kbfix_os | combine({'last_boot': ansible_facts.kbfix_last_boot}) }}). Without it a
        fixed file with any pending restart is reported C(reboot_pending); with it an unrelated pending
        restart is reported as information and the article judged C(compliant)."
      - Default is C(ansible_facts.kbfix_os) (with C(ansible_facts.kbfix_last_boot)) when facts were gathered,
        otherwise the host is queried (two requests).
    type: dict
  install_timeout:
    description:
      - Seconds one installer may run before it is terminated and the task fails.
    type: int
    default: 3600
  reboot_timeout:
    description:
      - Seconds to wait for a host that goes down in the middle of the task (restarted by someone else, or
        crashed), seen as a refused or reset connection, or as the HTTP 400 a restarted WinRM gives to a
        session it no longer knows. Once it answers again the task starts over from a fresh read of the
        host's state, so nothing done before is done twice; changes made before it went down stay in
        RV(changes).
      - When it does not answer in time the host is reported unreachable with the reason it was lost and
        the last error. V(0) reports it unreachable at once. At most V(86400).
    type: int
    default: 600
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - kbfix.windows.controller_action
  - kbfix.windows.controller_action.windows_host
attributes:
  check_mode:
    support: full
    details: With O(state=enforced) the planned changes are reported in RV(changes) and nothing is changed.
  diff_mode:
    support: full
    details: Each registry value changed (before and after), and each package installed.
notes:
  - The hosts need WinRM (1.1 or later; 1.0 on Windows Server 2003 R2 is handled without WQL filters). Windows
    NT 4.0 has no WinRM; give such hosts C(kbfix_transport=smb) and they are reached over SMB (the admin
    shares, the remote registry and the service control manager) with the same options and results.
  - Verdicts are decided from file versions, as vulnerability scanners do; hotfix records are reported as
    hints.
seealso:
  - module: kbfix.windows.hotfix
  - module: kbfix.windows.facts
  - module: kbfix.windows.reboot
"""

EXAMPLES = r"""
- name: Audit KB828753 (role file) and KB938475 (inline variables)
  kbfix.windows.kb_article:
    articles:
      - kb828753.yml
      - spec: roles/kb938475/files/kb938475.yml
        variables:
          asynchronous_credits: 512
    variables:
      reconnectable_servers: [fs01, fs01.example.com, 192.0.2.10]
  register: audit

- name: Fail the play when an article is not in place
  kbfix.windows.kb_article:
    articles: [kb977381.yml]
    fail_on: [noncompliant, unknown]

- name: Enforce KB828753 with packages uploaded from the controller
  kbfix.windows.kb_article:
    articles: [kb828753.yml]
    variables:
      reconnectable_servers: [fs01, fs01.example.com]
      reconnect_timeout: 300
    state: enforced
    package_source: "{{ playbook_dir }}/packages"
  register: fix

- name: Restart when the fix needs it
  kbfix.windows.reboot:
  when: fix.restart_required

- name: Enforce KB977381 from a share, after gathering OS facts once
  kbfix.windows.kb_article:
    articles: [kb977381.yml]
    state: enforced
    package_source: \\fileserver\updates
    host_facts: "{{ ansible_facts.kbfix_os }}"
"""

RETURN = r"""
verdicts:
  description:
    - One verdict per article, in the order of O(articles); in O(state=enforced) the state after the changes.
    - Each has V(article), V(title), V(status) (V(compliant), V(noncompliant), V(not_applicable),
      V(reboot_pending), V(unknown)), V(reason), V(checks) (each V(id), V(kind), V(passed), V(expected),
      V(found), V(message)), V(plan) (steps with V(action), V(description), V(details)), V(missing) and
      V(restart_required).
  returned: success
  type: list
  elements: dict
  sample:
    - article: KB828753
      title: Programs that are run directly from a file server quit unexpectedly
      status: noncompliant
      reason: "1 check(s) fail: file:%SystemRoot%\\system32\\drivers\\Mrxsmb.sys expected ..."
      checks: []
      plan: []
      missing: []
      restart_required: true
verdicts_before:
  description: The verdicts before anything was changed (same shape as RV(verdicts)).
  returned: when O(state=enforced)
  type: list
  elements: dict
changes:
  description:
    - What was done, or in check mode what would be done (V(planned=true)), one entry per step.
    - Every entry has V(article), V(action) (V(install_package), V(set_registry), V(delete_registry)),
      V(description) and V(changed).
    - Registry steps add V(key), V(name), V(before) and V(after) (V(type) and V(data), or null when absent).
    - Package steps add V(hotfix_id), V(package), V(installer), V(source) and, once run, V(command),
      V(exit_code), V(result) (V(success), V(restart_required), V(already_installed)),
      V(restart_required) and V(staged_by) (V(stdin), V(echo), V(smb), V(host), V(unc), how the package
      reached the host; several articles of the task using one package file upload it once). A package not
      installed because a restart is pending has V(skipped=true) and a V(reason).
  returned: always
  type: list
  elements: dict
  sample:
    - article: KB828753
      action: set_registry
      description: "add fs01 to HKLM\\...\\ReconnectableServers (multistring)"
      key: HKLM\SYSTEM\CurrentControlSet\Services\LanmanWorkstation\Parameters
      name: ReconnectableServers
      before: null
      after: {type: multistring, data: [fs01]}
      changed: true
restart_required:
  description:
    - Whether the host must restart for the articles to take effect (a package or value that needs it was
      applied, a verdict plans a restart, or an install waits for a pending restart).
  returned: success
  type: bool
ansible_facts:
  description: Facts for the fact cache.
  returned: success
  type: complex
  contains:
    kbfix_compliance:
      description:
        - The host's last verdict of every article ever judged on it, kept between runs by a fact cache and
          read by M(kbfix.windows.fleet_report). V(articles) maps each article id to its last verdict (as in
          RV(verdicts), passing checks left out) with V(when) (UTC) and V(state); the articles of this task
          replace their entries, the others stay. Also V(schema), V(collection_version) and V(updated).
        - Not returned in check mode with O(state=enforced) (those verdicts are predictions).
      returned: success, when at least one article was judged
      type: dict
requests:
  description: The number of WinRM requests this task sent (authentication handshakes not counted).
  returned: always
  type: int
  sample: 5
article:
  description: The article at fault when a single article made the task fail.
  returned: failure
  type: str
  sample: KB938475
argument:
  description: The argument or variable at fault (for example V(articles[1].variables.asynchronous_credits)).
  returned: when an argument or variable is invalid
  type: str
msg:
  description: One line per run, each article's status (before -> after when enforced) and notes.
  returned: always
  type: str
"""
