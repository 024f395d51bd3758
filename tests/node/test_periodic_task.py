"""The rounds of a background job: a failing round is logged by type and the next one runs."""

from __future__ import annotations

import asyncio

from structlog.testing import capture_logs

from node.jobs.task import PeriodicTask


class Flaky(PeriodicTask):
    task_name = "test-flaky"
    failure_event = "flaky.round_failed"

    def __init__(self) -> None:
        super().__init__(interval=0.01)
        self.rounds = 0

    async def run_once(self) -> int:
        self.rounds += 1
        if self.rounds == 1:
            raise RuntimeError("Zqxsecretvalue")
        return self.rounds


async def test_a_failed_round_is_logged_by_type_and_the_next_round_runs() -> None:
    job = Flaky()
    with capture_logs() as logs:
        await job.start()
        for _ in range(200):
            if job.rounds >= 3:
                break
            await asyncio.sleep(0.01)
        await job.stop()
    assert job.rounds >= 3
    failures = [e for e in logs if e["event"] == "flaky.round_failed"]
    expected = {"event": "flaky.round_failed", "error": "RuntimeError", "log_level": "error"}
    assert failures == [expected]
    assert "Zqxsecretvalue" not in str(logs)
