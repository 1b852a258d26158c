# Copyright: kbfix.windows contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Documentation only: the module runs on the controller as the action plugin plugins/action/fleet_report.py.

from __future__ import annotations

DOCUMENTATION = r"""
module: fleet_report
short_description: Write the fleet compliance report from the verdicts kept in the fact cache
version_added: 1.0.0
description:
  - M(kbfix.windows.kb_article) leaves each host's verdicts in the fact C(kbfix_compliance). With a fact
    cache (C(fact_caching) in C(ansible.cfg), or the fact cache of an AWX job template) they stay between
    playbook runs, job slices and jobs. This module reads that fact for every host in O(hosts) and writes the
    fleet report (JSON, JUnit XML, HTML; C(docs/report-format.md)) without contacting any host.
  - A host without the fact is listed as never audited. A host whose last attempt gave no verdict (it did not
    answer) is reported unreachable, with its last verdicts and their age, never as compliant.
  - With O(run_result), used at the end of C(kbfix.windows.audit), it also works out what the fact cache must
    be told about the hosts of this run that Ansible did not cache (a result failed by C(fail_on), a host that
    did not answer) and returns it in RV(records), for a C(set_fact) with C(cacheable) and C(delegate_facts).
  - Optionally copies the files it wrote to a URL with HTTP PUT (O(upload_url)), so that the report
    survives a job whose disk is discarded (AWX execution environments).
author:
  - kbfix.windows developers (!UNKNOWN)
options:
  hosts:
    description:
      - Inventory host names to report on. Default is every host in the inventory (C(groups.all)).
      - C(kbfix.windows.report) passes the hosts of the pattern C(kbfix_hosts).
    type: list
    elements: str
  output_dir:
    description:
      - Directory the report files are written to (C(kbfix-report.json), C(kbfix-report.xml),
        C(kbfix-report.html)); created when missing. Without it nothing is written, only returned.
    type: path
  formats:
    description: Which files to write.
    type: list
    elements: str
    choices: [json, junit, html]
    default: [json, junit, html]
  title:
    description: Title of the report.
    type: str
    default: KB compliance report
  run_result:
    description:
      - Name of the variable the C(kb_article) task of this run registered. A host of O(hosts) without it
        did not reach the task (it did not answer, or an earlier task failed); that attempt is noted in
        RV(records) and the host counted unreachable.
    type: str
  upload_url:
    description:
      - Base URL the written files are copied to with HTTP PUT, one request per file, the file name appended
        (C(https://reports.example.com/kbfix/) gives C(.../kbfix/kbfix-report.json)). Needs O(output_dir).
      - Must not contain credentials; use O(upload_username) and O(upload_password) (HTTP Basic).
    type: str
  upload_username:
    description: User name for HTTP Basic authentication of the upload.
    type: str
  upload_password:
    description:
      - Password for HTTP Basic authentication of the upload. The module never returns or prints it; template
        it from a vault or an AWX credential (docs/scale.md).
    type: str
  upload_validate_certs:
    description: Check the server's TLS certificate for C(https) URLs.
    type: bool
    default: true
  upload_timeout:
    description: Seconds to wait for the server for each file (1 to 3600).
    type: int
    default: 30
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - kbfix.windows.controller_action
attributes:
  check_mode:
    support: full
    details: In check mode the report is built and returned, but no file is written and nothing uploaded.
  diff_mode:
    support: none
  platform:
    platforms: all
    details: Runs on the controller only and contacts no managed host.
notes:
  - Ansible's jsonfile cache forgets facts after C(fact_caching_timeout) (default 86400 seconds); set it to 0
    (or AWX's per-host fact cache timeout to 0) so that a host audited last week is reported with its age, not
    as never audited.
seealso:
  - module: kbfix.windows.kb_article
"""

EXAMPLES = r"""
- name: Fleet report from the fact cache (contacts no host)
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Write the report and copy it to the report server
      kbfix.windows.fleet_report:
        hosts: "{{ query('inventory_hostnames', 'windows') }}"
        output_dir: /var/lib/kbfix/report
        upload_url: https://reports.example.com/kbfix/
        upload_username: kbfix
        upload_password: "{{ vault_report_password }}"
"""

RETURN = r"""
summary:
  description: Fleet summary, as in the JSON report's C(summary).
  returned: always
  type: dict
articles:
  description:
    - Per article, the number of hosts in each status (C(compliant), C(noncompliant), C(reboot_pending),
      C(not_applicable), C(unknown), C(failed), C(unreachable), C(not_audited)).
  returned: always
  type: dict
  sample: {"KB828753": {"compliant": 10, "noncompliant": 2, "reboot_pending": 0, "not_applicable": 3,
           "unknown": 0, "failed": 0, "unreachable": 1, "not_audited": 0}}
records:
  description:
    - With O(run_result), the C(kbfix_compliance) fact each listed host must get in the fact cache, by host
      name; empty otherwise.
  returned: always
  type: dict
files:
  description: Paths of the files written.
  returned: always
  type: list
  elements: str
uploaded:
  description: URLs the files were copied to.
  returned: always
  type: list
  elements: str
"""
