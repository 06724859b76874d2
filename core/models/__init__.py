"""Models: a name → a local folder (resolve), the installed whisper-base (installed), CTranslate2 → transformers
(conversion, ct2_file), Whisper folders (hf_folders), the CTranslate2 export (export) and the listening window
(window: shortened for training, standard in every saved folder)."""

from core import lazy_api

__getattr__, __all__ = lazy_api(
    __name__,
    {
        "DEFAULT_MODEL": "resolve",
        "DEMO": "resolve",
        "BASE_MODELS": "resolve",
        "resolve_model": "resolve",
        "load_model": "resolve",
        "is_ctranslate2": "resolve",
        "whisper_processor": "hf_folders",
        "QUANTIZATIONS": "export",
        "export_ctranslate2": "export",
        "apply_window": "window",
        "load_processor": "resolve",
        "EXPORT_FORMATS": "export",
        "EXPORT_RUNTIMES": "export",
    },
)
