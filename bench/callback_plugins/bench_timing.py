# Benchmark-only callback: one JSON line per task result with the time the task took on that host, so
# bench/run.py can add up a host's own work even when Ansible runs many hosts at once.
from __future__ import annotations

import json
import os
import time
from typing import Any

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: bench_timing
type: aggregate
short_description: per-host task durations as JSON lines (kbfix.windows benchmarks only)
description:
  - Writes one JSON object per task result (host, task, action, status, start, end, requests) to the file
    named by KBFIX_BENCH_TIMING.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_timing"
    CALLBACK_NEEDS_ENABLED = False

    def __init__(self) -> None:
        super().__init__()
        self._path = os.environ.get("KBFIX_BENCH_TIMING")
        self._started: dict[tuple[str, str], float] = {}
        self._lines: list[str] = []

    # runner_on_start is sent by the worker as it begins the task, so end - start is the task's time on
    # that host (connection, module, result) without the wait for other hosts that a linear play adds.
    def v2_runner_on_start(self, host: Any, task: Any) -> None:
        self._started[(host.get_name(), task._uuid)] = time.time()

    def _record(self, status: str, result: Any) -> None:
        if not self._path:
            return
        end = time.time()
        host = result._host.get_name()
        task = result._task
        start = self._started.pop((host, task._uuid), end)
        requests = result._result.get("requests")
        verdicts = result._result.get("verdicts")
        self._lines.append(json.dumps({
            "host": host, "task": task.get_name(), "action": task.resolved_action or task.action,
            "status": status, "start": start, "end": end,
            "requests": requests if isinstance(requests, int) else None,
            "verdicts": {v.get("article"): v.get("status") for v in verdicts if isinstance(v, dict)}
            if isinstance(verdicts, list) else None,
            "msg": str(result._result.get("msg", ""))[:300] if status in ("failed", "unreachable") else None,
            # raw results carry the command's output: run.py checks that the host really ran the command.
            "rc": result._result.get("rc"),
            "out": (str(result._result.get("stdout", "")) + str(result._result.get("stderr", "")))[:300]
            if "rc" in result._result else None,
        }))

    def v2_runner_on_ok(self, result: Any) -> None:
        self._record("ok", result)

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._record("failed", result)

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._record("unreachable", result)

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._record("skipped", result)

    def v2_playbook_on_stats(self, stats: Any) -> None:
        # Written once at the end: file I/O per result would itself show up in the controller CPU figures.
        if self._path:
            with open(self._path, "a", encoding="utf-8") as stream:
                stream.writelines(line + "\n" for line in self._lines)
