"""Training: the config (the one contract of a run), the trainer that runs in its own process (worker), the run
folder it writes (runs, run_recorder), the jobs that start and stop it, and what the pages read from it (monitor)."""

from core import lazy_api

__getattr__, __all__ = lazy_api(
    __name__,
    {
        "TrainConfig": "config",
        "PRESETS": "config",
        "apply_preset": "config",
        "default_preset": "config",
        "presets_help": "config",
        "RunFolder": "runs",
        "RunState": "run_records",
        "RunStatus": "run_records",
        "RunSummary": "run_records",
        "list_runs": "runs",
        "free_run_name": "runs",
        "workspace_language": "monitor",
        "start_run": "jobs",
        "stop_run": "jobs",
        "resume_run": "jobs",
        "wait_for": "jobs",
        "live_run": "jobs",
        "start_command_job": "jobs",
        "command_job": "jobs",
        "command_job_state": "jobs",
        "command_job_tail": "jobs",
        "eta_seconds": "monitor",
        "estimate_from_runs": "monitor",
        "phase_progress": "monitor",
        "run_warnings": "monitor",
        "schedule_warnings": "monitor",
        "chart_ceiling": "monitor",
        "FeatureDataset": "feature_sets",
        "SpeechCollator": "feature_sets",
        "generate_texts": "held_out",
        "DistilRequest": "config",
        "DistillationRecord": "distil",
        "distil_config": "distil",
        "teacher_layers": "distil",
    },
)
