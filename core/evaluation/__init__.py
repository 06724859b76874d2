"""Evaluation: a model on a prepared split, saved and reused (evaluate); an export checked in its own runtime
(parity, runtimes); what the Compare page lines up from saved evaluations (comparison)."""

from core import lazy_api

__getattr__, __all__ = lazy_api(
    __name__,
    {
        "evaluate_model": "evaluate",
        "EvaluateOptions": "evaluate",
        "export_with_parity": "parity",
        "ExportOptions": "parity",
        "checkpoint_choices": "comparison",
        "config_diff": "comparison",
        "list_evaluations": "comparison",
        "SavedEvaluation": "comparison",
        "load_evaluation": "comparison",
        "side_by_side": "comparison",
        "unreadable_evaluations": "comparison",
        "utterance_audio": "comparison",
        "utterance_table": "comparison",
        "ab_change": "comparison",
        "dataset_of": "comparison",
    },
)
