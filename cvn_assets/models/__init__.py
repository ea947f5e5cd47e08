"""Model lifecycle (manual §4, §10): champion and challengers, promotion with approvals, killswitch,
rollback, decommission — governed by the rules of ``contract.py`` and audited in ``cvn_model_events``.

Public API for other domains (model operations, ``cvn model …`` sub-commands)::

    from cvn_assets.models.lifecycle import Lifecycle
    lifecycle = Lifecycle(tracking_uri, diagnostics_store)   # store: a migrated DiagnosticsStore
                                                             # origin="dagster run <id>" in a job

(a) roles of a crypto's versions:
    lifecycle.roles("SOLUSDC") -> {"champion": {...}|None, "challengers": [...], "previous": ...,
                                   "quarantined": [...], "approvals": [...], "unfinished": ...}
    lifecycle.view("SOLUSDC") -> RegistryView (.champion, .previous, .challengers, .quarantined,
                                   .stage_of(version)); models.registry.model_name(crypto)
(b) a new challenger version (already registered in MLflow under model_name(crypto)):
    lifecycle.register_challenger(crypto, version, campaign_id, origin="retrain", tags={...})
    → alias challenger-<campaign_id>, tags campaign_id/origin/stage, audited "register" event.
(c) approvals of an action ("promotion" or "meta_training"; REQUIRED_APPROVALS in contract.py):
    lifecycle.approve(crypto, version, role, actor, reason, action="meta_training")
    lifecycle.check_approved(Action.META_TRAINING, crypto, version, actor)  # Refused + a refused row
    lifecycle.run_approved(Action.META_TRAINING, crypto, version, actor, work)  # audited, approvals consumed
(d) the promotion guard: ``qualified_reason`` — a discovery version passed its campaign's gate,
    a retrained one (origin ``retrain``) a qualifying backtest (``cvn_model_backtests``).

Errors: ``contract.Refused`` (a guard of the manual: exit 2, a ``refused`` row written),
``lifecycle.LifecycleFailed`` (the registry failed mid-action: exit 1, a ``failed`` row; re-run).
"""
