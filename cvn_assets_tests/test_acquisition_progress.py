"""Progress of an acquisition step in its run's log: every line kept, written in few events."""

from __future__ import annotations

from cvn_assets.acquisition.assets import BatchedProgress
from cvn_assets.definitions import build_defs
from cvn_assets.runs import ACQUIRE_JOB
from cvn_assets_tests.fixtures.campaigns import CampaignHarness, logged_lines, small_spec


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_first_line_is_written_at_once_then_lines_are_gathered_until_the_interval_passes():
    written: list[str] = []
    clock = Clock()
    progress = BatchedProgress(written.append, every=5.0, clock=clock)
    progress("header")
    assert written == ["header"]
    clock.now += 1.0
    progress("fold 0")
    clock.now += 3.9
    progress("fold 0 / naive")
    assert written == ["header"]  # 4.9 s since the last write: gathered
    clock.now += 0.1
    progress("fold 0 / logreg")  # 5 s: written with what was gathered, one event
    assert written == ["header", "fold 0\nfold 0 / naive\nfold 0 / logreg"]
    clock.now += 1.0
    progress("fold 1")
    progress.flush()  # the step ends: nothing is left behind
    progress.flush()  # and nothing is written twice
    assert written == ["header", "fold 0\nfold 0 / naive\nfold 0 / logreg", "fold 1"]


def test_an_acquisition_run_logs_every_progress_line_in_fewer_events(instance, storage_root):
    defs = build_defs()
    harness = CampaignHarness(instance=instance, defs=defs, store=defs.resources["object_store"].store(),
                              prefix="s43-predictions")
    harness.register(small_spec("progress-001", symbols=["SOLUSDC"]))
    result = harness.acquire("progress-001", "SOLUSDC")
    assert result.success and result.dagster_run.job_name == ACQUIRE_JOB
    messages = [message for message in logged_lines(instance, result.run_id)
                if "SOLUSDC" in message and "event=" not in message and ": " in message]
    lines = [line for message in messages for line in message.split("\n")]
    # 1 header, then per fold (2): its screening and one line per family (naive, logreg), in order
    expected = [f"progress-001/SOLUSDC/fold-{fold:02d}{suffix}" for fold in range(2)
                for suffix in (": screened", "/naive: validation", "/logreg: validation")]
    assert lines[0].startswith("SOLUSDC: ") and "2 folds" in lines[0]
    assert len(lines) == 1 + len(expected), lines
    for line, prefix in zip(lines[1:], expected):
        assert line.startswith(prefix), (line, prefix)
    assert len(messages) < len(lines), f"expected the {len(lines)} lines in fewer events, found {len(messages)}"
