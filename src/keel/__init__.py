"""Keel: the machine-learning lifecycle in one package.

``import keel`` is light: each name below loads its module on first use.

    with keel.start_run(experiment="churn", run_name="rf-100") as run:
        run.log_params({"n_estimators": 100})
        run.log_metric("auc", 0.91)
        run.log_model(model, "model", input_example=X[:5])
    keel.register_model(f"runs:/{run.run_id}/model", "churn")
    keel.set_alias("churn", "champion", 1)
    model = keel.load_model("models:/churn@champion")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from keel._version import __version__

if TYPE_CHECKING:
    from keel.config import get_settings, set_tracking_uri
    from keel.deploy.api import (
        ab_analysis,
        abort_rollout,
        create_deployment,
        delete_deployment,
        get_deployment,
        get_deployment_history,
        list_deployments,
        pause_rollout,
        promote_rollout,
        record_outcome,
        record_outcomes,
        reload_deployment,
        resume_rollout,
        rollback,
        rollout,
        set_traffic,
    )
    from keel.environments import get_environment, list_environments
    from keel.errors import (
        AlreadyExists,
        Conflict,
        IntegrityError,
        InvalidInput,
        KeelError,
        NotFound,
        SchemaError,
    )
    from keel.hpo.journal import create_study, load_study
    from keel.hpo.search import TuneResult, tune
    from keel.hpo.step import tuning_step
    from keel.monitoring.alerts import (
        acknowledge_alert,
        add_alert_rule,
        delete_alert_rule,
        get_alert,
        get_alert_events,
        get_alert_rule,
        list_alert_rules,
        list_alerts,
        load_alert_rules,
        register_alert_action,
    )
    from keel.monitoring.feedback import log_feedback
    from keel.monitoring.prediction_read import read_predictions
    from keel.monitoring.report import monitoring_report
    from keel.monitoring.windows import monitor_windows
    from keel.pipelines.api import (
        get_pipeline_run,
        list_pipeline_runs,
        list_pipelines,
        load_step_output,
        resume_pipeline,
        run_pipeline,
    )
    from keel.pipelines.definition import Pipeline, pipeline
    from keel.pipelines.errors import PipelineFailed, StepFailed
    from keel.pipelines.schedules_api import (
        add_trigger,
        delete_schedule,
        delete_trigger,
        list_schedules,
        list_triggers,
        pause_schedule,
        resume_schedule,
        schedule_pipeline,
    )
    from keel.pipelines.steps import Step, step
    from keel.promotion.api import approve_promotion, promote, promotion_history
    from keel.registry.api import (
        delete_alias,
        get_alias_history,
        get_model_card,
        get_model_version,
        get_registered_model,
        list_model_versions,
        list_registered_models,
        load_model,
        register_model,
        resolve_model_version,
        set_alias,
        set_model_card,
    )
    from keel.serving.batch import predict_batch
    from keel.serving.bundle import bundle_model
    from keel.serving.export import export_onnx
    from keel.tracking.api import (
        create_experiment,
        download_artifacts,
        gc_runs,
        get_experiment,
        get_metric_history,
        get_run,
        get_run_inputs,
        list_artifacts,
        list_experiments,
        log_metric,
        log_metrics,
        log_param,
        log_params,
        search_runs,
        set_tag,
    )
    from keel.tracking.entities import Experiment, Run, RunStatus
    from keel.tracking.fluent import ActiveRun, active_run, end_run, start_run

_EXPORTS: dict[str, str] = {
    # configuration
    "get_settings": "keel.config",
    "set_tracking_uri": "keel.config",
    # errors
    "AlreadyExists": "keel.errors",
    "Conflict": "keel.errors",
    "IntegrityError": "keel.errors",
    "InvalidInput": "keel.errors",
    "KeelError": "keel.errors",
    "NotFound": "keel.errors",
    "SchemaError": "keel.errors",
    # tracking
    "ActiveRun": "keel.tracking.fluent",
    "active_run": "keel.tracking.fluent",
    "end_run": "keel.tracking.fluent",
    "start_run": "keel.tracking.fluent",
    "Experiment": "keel.tracking.entities",
    "Run": "keel.tracking.entities",
    "RunStatus": "keel.tracking.entities",
    "create_experiment": "keel.tracking.api",
    "download_artifacts": "keel.tracking.api",
    "gc_runs": "keel.tracking.api",
    "get_experiment": "keel.tracking.api",
    "get_metric_history": "keel.tracking.api",
    "get_run": "keel.tracking.api",
    "get_run_inputs": "keel.tracking.api",
    "list_artifacts": "keel.tracking.api",
    "list_experiments": "keel.tracking.api",
    "log_metric": "keel.tracking.api",
    "log_metrics": "keel.tracking.api",
    "log_param": "keel.tracking.api",
    "log_params": "keel.tracking.api",
    "search_runs": "keel.tracking.api",
    "set_tag": "keel.tracking.api",
    # pipelines
    "Pipeline": "keel.pipelines.definition",
    "Step": "keel.pipelines.steps",
    "pipeline": "keel.pipelines.definition",
    "step": "keel.pipelines.steps",
    "PipelineFailed": "keel.pipelines.errors",
    "StepFailed": "keel.pipelines.errors",
    "get_pipeline_run": "keel.pipelines.api",
    "list_pipeline_runs": "keel.pipelines.api",
    "list_pipelines": "keel.pipelines.api",
    "load_step_output": "keel.pipelines.api",
    "resume_pipeline": "keel.pipelines.api",
    "run_pipeline": "keel.pipelines.api",
    # pipeline schedules and triggers
    "add_trigger": "keel.pipelines.schedules_api",
    "delete_schedule": "keel.pipelines.schedules_api",
    "delete_trigger": "keel.pipelines.schedules_api",
    "list_schedules": "keel.pipelines.schedules_api",
    "list_triggers": "keel.pipelines.schedules_api",
    "pause_schedule": "keel.pipelines.schedules_api",
    "resume_schedule": "keel.pipelines.schedules_api",
    "schedule_pipeline": "keel.pipelines.schedules_api",
    # hyperparameter search
    "TuneResult": "keel.hpo.search",
    "create_study": "keel.hpo.journal",
    "load_study": "keel.hpo.journal",
    "tune": "keel.hpo.search",
    "tuning_step": "keel.hpo.step",
    # lineage
    "get_lineage": "keel.lineage",
    # registry
    "delete_alias": "keel.registry.api",
    "get_alias_history": "keel.registry.api",
    "get_model_card": "keel.registry.api",
    "get_model_version": "keel.registry.api",
    "get_registered_model": "keel.registry.api",
    "list_model_versions": "keel.registry.api",
    "list_registered_models": "keel.registry.api",
    "load_model": "keel.registry.api",
    "register_model": "keel.registry.api",
    "resolve_model_version": "keel.registry.api",
    "set_alias": "keel.registry.api",
    "set_model_card": "keel.registry.api",
    # deployments
    "ab_analysis": "keel.deploy.api",
    "abort_rollout": "keel.deploy.api",
    "create_deployment": "keel.deploy.api",
    "delete_deployment": "keel.deploy.api",
    "get_deployment": "keel.deploy.api",
    "get_deployment_history": "keel.deploy.api",
    "list_deployments": "keel.deploy.api",
    "promote_rollout": "keel.deploy.api",
    "record_outcome": "keel.deploy.api",
    "record_outcomes": "keel.deploy.api",
    "reload_deployment": "keel.deploy.api",
    "rollback": "keel.deploy.api",
    "rollout": "keel.deploy.api",
    "set_traffic": "keel.deploy.api",
    "pause_rollout": "keel.deploy.api",
    "resume_rollout": "keel.deploy.api",
    # alerts
    "acknowledge_alert": "keel.monitoring.alerts",
    "add_alert_rule": "keel.monitoring.alerts",
    "delete_alert_rule": "keel.monitoring.alerts",
    "get_alert": "keel.monitoring.alerts",
    "get_alert_events": "keel.monitoring.alerts",
    "get_alert_rule": "keel.monitoring.alerts",
    "list_alert_rules": "keel.monitoring.alerts",
    "list_alerts": "keel.monitoring.alerts",
    "load_alert_rules": "keel.monitoring.alerts",
    "register_alert_action": "keel.monitoring.alerts",
    # environments and promotion
    "get_environment": "keel.environments",
    "list_environments": "keel.environments",
    "approve_promotion": "keel.promotion.api",
    "promote": "keel.promotion.api",
    "promotion_history": "keel.promotion.api",
    # serving
    "bundle_model": "keel.serving.bundle",
    "export_onnx": "keel.serving.export",
    "predict_batch": "keel.serving.batch",
    # monitoring
    "log_feedback": "keel.monitoring.feedback",
    "read_predictions": "keel.monitoring.prediction_read",
    "monitor_windows": "keel.monitoring.windows",
    "monitoring_report": "keel.monitoring.report",
}

__all__ = [
    "ActiveRun",
    "AlreadyExists",
    "Conflict",
    "Experiment",
    "IntegrityError",
    "InvalidInput",
    "KeelError",
    "NotFound",
    "Pipeline",
    "PipelineFailed",
    "Run",
    "RunStatus",
    "SchemaError",
    "Step",
    "StepFailed",
    "TuneResult",
    "__version__",
    "ab_analysis",
    "abort_rollout",
    "acknowledge_alert",
    "active_run",
    "add_alert_rule",
    "add_trigger",
    "approve_promotion",
    "bundle_model",
    "create_deployment",
    "create_experiment",
    "create_study",
    "delete_alert_rule",
    "delete_alias",
    "delete_deployment",
    "delete_schedule",
    "delete_trigger",
    "download_artifacts",
    "end_run",
    "export_onnx",
    "gc_runs",
    "get_alert",
    "get_alert_events",
    "get_alert_rule",
    "get_alias_history",
    "get_deployment",
    "get_deployment_history",
    "get_environment",
    "get_experiment",
    "get_lineage",
    "get_metric_history",
    "get_model_card",
    "get_model_version",
    "get_pipeline_run",
    "get_registered_model",
    "get_run",
    "get_run_inputs",
    "get_settings",
    "list_alert_rules",
    "list_alerts",
    "list_artifacts",
    "list_deployments",
    "list_environments",
    "list_experiments",
    "list_model_versions",
    "list_pipeline_runs",
    "list_pipelines",
    "list_registered_models",
    "list_schedules",
    "list_triggers",
    "load_alert_rules",
    "load_model",
    "load_step_output",
    "load_study",
    "log_feedback",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "monitor_windows",
    "monitoring_report",
    "pause_rollout",
    "pause_schedule",
    "pipeline",
    "predict_batch",
    "promote",
    "promote_rollout",
    "promotion_history",
    "read_predictions",
    "record_outcome",
    "record_outcomes",
    "register_alert_action",
    "register_model",
    "reload_deployment",
    "resolve_model_version",
    "resume_pipeline",
    "resume_rollout",
    "resume_schedule",
    "rollback",
    "rollout",
    "run_pipeline",
    "schedule_pipeline",
    "search_runs",
    "set_alias",
    "set_model_card",
    "set_tag",
    "set_tracking_uri",
    "set_traffic",
    "start_run",
    "step",
    "tune",
    "tuning_step",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'keel' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
