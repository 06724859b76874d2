"""Data: sources → examples → rows → features, in that order.

A source (sources, folders, hub, synth; recordings of your own voice, read from prompts) yields examples per split;
rows keeps or drops each one with its reason; features writes the artifact that artifact reads; doctor examines a
source before it is prepared."""

from core import lazy_api

__getattr__, __all__ = lazy_api(
    __name__,
    {
        "open_source": "sources",
        "MixedSource": "sources",
        "FolderSource": "folders",
        "LAYOUTS": "folders",
        "detect_layout": "folders",
        "HubSource": "hub",
        "PRESETS": "hub",
        "COMMON_VOICE_MOVED": "hub",
        "SynthSpec": "synth",
        "synthesize_dataset": "synth",
        "default_kind": "synth",
        "kind_for_window": "synth",
        "PrepareOptions": "options",
        "prepare_features": "features",
        "TASKS": "options",
        "FEATURE_DTYPE": "artifact",
        "open_artifact": "artifact",
        "list_artifacts": "artifact",
        "newest_artifact": "artifact",
        "overlap_warnings": "artifact",
        "artifact_warnings": "artifact",
        "dropped_rows_line": "artifact",
        "small_split_warnings": "artifact",
        "split_table": "artifact",
        "made_from": "artifact",
        "empty_splits": "artifact",
        "features_from_row": "artifact",
        "DoctorReport": "doctor",
        "examine": "doctor",
        "duration_histogram": "doctor",
        "SPLIT_RULES": "options",
        "with_split_rule": "folders",
        "RecordingSet": "recordings",
        "RecordingSummary": "recordings",
        "Take": "recordings",
        "TakeCheck": "recordings",
        "check_take": "recordings",
        "list_recordings": "recordings",
        "keep_in_set": "recordings",
        "recordings_root": "recordings",
        "held_out_sentences": "prompts",
        "template_prompts": "prompts",
        "text_prompts": "prompts",
        "missed_words": "prompts",
        "error_prompts": "prompts",
        "write_prompts": "prompts",
    },
)
