"""Library output kept off the user's screen: what transformers, torch and the other libraries say goes to a log.

A run in the foreground (the demo, `train --foreground`) shares the terminal with the user: our own progress lines
belong there, but a library's log records ("[transformers] There were missing keys in the checkpoint model loaded:
['proj_out.weight']", which is expected: the output projection is tied to the token embedding), its deprecation
warnings and its progress bars ("Writing model shards") do not. While `library_output_to(log)` is open they are
written to `log` (the run's train.log) and nowhere else; a background worker's whole output goes to that file anyway.
Records of our own `studio` logger are left alone: they are notes for the user.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

OURS = "studio"  # our logger's name (core/cli.py prints its records as notes)


class _NotOurs(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith(OURS)


@contextmanager
def library_output_to(log: TextIO) -> Iterator[None]:
    """Route library log records, Python warnings and transformers' progress bars to `log` until the block ends;
    the previous routing is restored (so the blocks nest: the innermost log wins)."""
    # imported here, not at the top: 2 s, and core/training/jobs.py (which the pages import) imports this module
    import transformers.utils.logging as hf_logging

    handler = logging.StreamHandler(log)
    handler.setFormatter(logging.Formatter("[%(name)s] %(levelname)s: %(message)s"))
    handler.addFilter(_NotOurs())
    hf_logging.get_logger("transformers")  # made on first use: its stderr handler exists now
    # library loggers with handlers of their own (transformers'; torch's glog-style ones, which do not propagate)
    own = [
        logger
        for name, logger in list(logging.root.manager.loggerDict.items())
        if isinstance(logger, logging.Logger) and logger.handlers and not name.startswith(OURS)
    ]
    saved = [(logger, logger.handlers[:]) for logger in own]
    bars_were_on = hf_logging.is_progress_bar_enabled()
    root = logging.getLogger()
    for logger, handlers in saved:
        for old in handlers:
            logger.removeHandler(old)
        logger.addHandler(handler)
    root.addHandler(handler)  # other libraries' records propagate here (and no longer reach Python's last resort)
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():  # restores showwarning and the filters at the end

            def show(message, category, filename, lineno, file=None, line=None) -> None:
                log.write(warnings.formatwarning(message, category, filename, lineno, line))
                log.flush()

            warnings.showwarning = show
            yield
    finally:
        root.removeHandler(handler)
        for logger, handlers in saved:
            logger.removeHandler(handler)
            for old in handlers:
                logger.addHandler(old)
        if bars_were_on:
            hf_logging.enable_progress_bar()
        handler.flush()
