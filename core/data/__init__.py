"""Data: sources → examples → rows → features, in that order.

A source (sources, folders, hub, synth; recordings of your own voice, read from prompts) yields examples per split;
rows keeps or drops each one with its reason; features writes the artifact that artifact reads; doctor examines a
source before it is prepared."""

from core import lazy_api

__getattr__, __all__ = lazy_api(
    __name__,
    {
        "open_source": "sources",
        "SourceSpec": "sources",
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
        "PrepareOptions": "prepare_options",
        "prepare_features": "features",
        "Preparation": "features",
        "TASKS": "prepare_options",
        "FEATURE_DTYPE": "artifact",
        "open_artifact": "artifact",
        "list_artifacts": "artifact",
        "newest_artifact": "artifact",
        "Manifest": "manifest",
        "features_from_row": "artifact",
        "DoctorReport": "doctor",
        "examine": "doctor",
        "DoctorSample": "doctor",
        "duration_histogram": "doctor",
        "SPLIT_RULES": "prepare_options",
        "RecordingSet": "recordings",
        "check_take": "recordings",
        "list_recordings": "recordings",
        "keep_in_set": "recordings",
        "recordings_root": "recordings",
        "held_out_sentences": "prompts",
        "template_prompts": "prompts",
        "text_prompts": "prompts",
        "missed_words": "prompts",
        "error_prompts": "prompts",
        "evaluated_language": "prompts",
        "report_table": "doctor",
        "LabelRow": "label_options",
        "LabelSet": "pseudo_labels",
        "list_label_sets": "pseudo_labels",
    },
)
