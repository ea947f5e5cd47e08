"""``model_lifecycle_alert_sensor``: each done lifecycle action of ``cvn_model_events`` notified once.

Whoever acted — the command or a job — the sensor tells the channels, so a notification never
depends on where the action ran. Deduplicated like the other alert sensors: the cursor remembers
the events told (by id) and owes a failed channel a retry on the next ticks.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import dagster as dg

from cvn_assets.alerts.sensors import AlertCursor, _deliver, _prune, _result
from cvn_assets.models.alerts import NOTIFIED_ACTIONS, lifecycle_alert
from cvn_assets.models.audit import ModelAudit

MODEL_ALERT_SENSOR = "model_lifecycle_alert_sensor"


def build_model_alert_sensor(
    *,
    name: str = MODEL_ALERT_SENSOR,
    minimum_interval_seconds: int = 30,
    lookback_hours: float = 24.0,
    initial_lookback_minutes: float = 60.0,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING,
) -> dg.SensorDefinition:
    @dg.sensor(name=name, minimum_interval_seconds=minimum_interval_seconds, default_status=default_status,
               required_resource_keys={"alert_channels", "diagnostics"},
               description="Notifies each model promotion / decommission (P3) and killswitch / rollback (P1) once.")
    def model_lifecycle_alert_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        now = time.time()
        cursor = AlertCursor.load(context.cursor, now, initial_lookback_minutes)
        horizon = cursor.horizon(now, lookback_hours)
        seen = dict(cursor.seen)
        alerts = []
        audit = ModelAudit(context.resources.diagnostics.store())
        for event in audit.events_after(datetime.fromtimestamp(horizon, UTC), NOTIFIED_ACTIONS):
            identity = f"model_event:{event['id']}"
            if identity in seen:
                continue
            seen[identity] = now
            alerts.append(lifecycle_alert(event, datetime.now(UTC)))
        dispatcher = context.resources.alert_channels.dispatcher(context.log)
        cursor = cursor.model_copy(update={"seen": _prune(seen, horizon)})
        cursor, lines = _deliver(dispatcher, alerts, cursor, now, lookback_hours)
        return _result(cursor, lines, "no new model lifecycle action")

    return model_lifecycle_alert_sensor
