"""Write one benchmark's section into BENCHMARKS.md, keeping the other sections as they are.

Each section carries the machine, library versions and date it was measured on, so ratios from different runs are
never mixed up. Sections are delimited by HTML comments naming the benchmark.
"""

from __future__ import annotations

import datetime
import os
import platform
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "BENCHMARKS.md"
HEADER = (
    "# Benchmarks\n\nMeasured side by side in one run on the machine named in each section; ratios, not "
    "absolute times, are what carry over to other machines. `python bench/run_all.py` regenerates every section.\n"
)


def machine() -> str:
    import torch
    import transformers

    cpu = platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{os.cpu_count()} CPU cores ({cpu}), {gpu}; Python {platform.python_version()}, torch {torch.__version__}, "
        f"transformers {transformers.__version__}; {datetime.date.today().isoformat()}"
    )


def write_section(name: str, body: str) -> None:
    text = REPORT.read_text(encoding="utf-8") if REPORT.exists() else HEADER
    section = f"<!-- bench:{name} -->\n{body.strip()}\n\n_{machine()}_\n<!-- /bench:{name} -->"
    pattern = re.compile(rf"<!-- bench:{re.escape(name)} -->.*?<!-- /bench:{re.escape(name)} -->", re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section + "\n"
    tmp = REPORT.with_suffix(".md.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, REPORT)
