"""What each evaluation records: §2 signals as columns, per-job latency, §7 platform codes."""

from __future__ import annotations

from cvn_assets.state.history import INFRA_SATURATED, PIPELINE_DEGRADED, platform_diagnostics, state_columns
from cvn_assets.state.rules import evaluate_state
from cvn_assets.state.settings import StateSettings
from cvn_assets.state.signals import InfraHealth, JobLatency, Measure
from cvn_assets_tests.test_state_rules import healthy, with_crypto


def codes(signals, settings=None):
    settings = settings or StateSettings()
    return platform_diagnostics(evaluate_state(signals, settings), signals, settings)


def test_a_healthy_platform_has_no_platform_code():
    assert codes(healthy()) == []


def test_pipeline_degraded_is_the_orange_success_rate_only():
    assert codes(healthy(pipeline_success_rate=Measure.of(80.0))) == []  # YELLOW: not §7's < 70 %
    [code] = codes(healthy(pipeline_success_rate=Measure.of(60.0, "6 of 10")))
    assert code["code"] == PIPELINE_DEGRADED and code["severity"] == "P1"
    assert code["values"] == {"success_rate": 60.0, "threshold": 70.0} and "60 % < 70 %" in code["reason"]


def test_infra_saturated_on_oom_volume_or_cpu_with_p0_when_the_state_is_red():
    cpu = codes(healthy(infra_health=InfraHealth(mode="local", disks={"object store": Measure.of(40.0)},
                                                 memory_percent=Measure.of(30.0), cpu_percent=Measure.of(95.0))))
    assert [(c["code"], c["severity"]) for c in cpu] == [(INFRA_SATURATED, "P1")]  # not a §0 RED rule
    assert cpu[0]["values"] == {"cpu_percent": 95.0}
    full = codes(healthy(infra_health=InfraHealth(mode="kubernetes", disks={"pvc": Measure.of(91.0)},
                                                  oom_kills=Measure.of(3), pods_down=Measure.of(0))))
    assert [(c["code"], c["severity"]) for c in full] == [(INFRA_SATURATED, "P0")]
    assert full[0]["values"] == {"oom_kills": 3, "disk_percent[pvc]": 91.0}
    assert "3 OOMKill(s) > 2" in full[0]["reason"] and "volume pvc 91.0 % > 85 %" in full[0]["reason"]


def test_columns_hold_every_golden_signal_at_its_worst():
    signals = with_crypto(healthy(pipeline_latency={
        "a": JobLatency(ratio=Measure.of(1.4), seconds=140.0, p95_seconds=100.0),
        "b": JobLatency(ratio=Measure.missing("no history"), seconds=5.0)}), "SOLUSDC",
        model_freshness_days=Measure.of(9.0))
    columns = state_columns(signals, queued_runs=2, started_runs=1)
    assert columns == {"success_rate": 100.0, "latency_ratio": 1.4, "disk_percent": 40.0, "memory_percent": 30.0,
                       "cpu_percent": 10.0, "oom_kills": None, "pods_down": None, "restarts": None,
                       "model_freshness_days": 9.0, "challenger_count": 1, "queued_runs": 2, "started_runs": 1}
