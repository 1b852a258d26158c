# Test-only callback: records every task result as one JSON line so integration tests can assert on
# outcomes (changed, failed, unreachable, returned values) instead of scraping the human output.
from __future__ import annotations

import json
import os
from typing import Any

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: kbfix_test_results
type: aggregate
short_description: record task results as JSON lines (kbfix.windows tests only)
description: Writes one JSON object per task result to the file named by KBFIX_TEST_RESULTS.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "kbfix_test_results"
    CALLBACK_NEEDS_ENABLED = False

    def __init__(self) -> None:
        super().__init__()
        self._path = os.environ.get("KBFIX_TEST_RESULTS")

    def _record(self, status: str, result: Any) -> None:
        if not self._path:
            return
        task = result._task
        line = {
            "host": result._host.get_name(),
            "task": task.get_name(),
            "action": task.resolved_action or task.action,
            "status": status,
            "result": result._result,
        }
        with open(self._path, "a", encoding="utf-8") as stream:
            stream.write(json.dumps(line, default=str) + "\n")

    def v2_runner_on_ok(self, result: Any) -> None:
        self._record("changed" if result._result.get("changed") else "ok", result)

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._record("failed", result)

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._record("unreachable", result)

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._record("skipped", result)
