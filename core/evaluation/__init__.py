"""Evaluation: a model on a prepared split, saved and reused, and an export's parity (evaluate); what the Compare
page lines up from saved evaluations (comparison)."""

from core import lazy_api

__getattr__, __all__ = lazy_api(
    __name__,
    {
        "evaluate_model": "evaluate",
        "export_with_parity": "evaluate",
        "parity": "evaluate",
        "checkpoint_choices": "comparison",
        "config_diff": "comparison",
        "list_evaluations": "comparison",
        "load_evaluation": "comparison",
        "side_by_side": "comparison",
        "unreadable_evaluations": "comparison",
        "utterance_audio": "comparison",
        "utterance_table": "comparison",
    },
)
