"""Charts of a run's metrics: loss and learning rate, and eval WER/CER against the base model's line."""

from __future__ import annotations

import altair as alt
import pandas as pd


def training_curves(metrics: list[dict]) -> dict[str, alt.Chart]:
    """One small line chart per training series that has values: {"loss": chart, "learning rate": chart}."""
    charts = {}
    for key, title in (("loss", "loss"), ("learning_rate", "learning rate")):
        data = pd.DataFrame([{"step": r["step"], title: r[key]} for r in metrics if key in r])
        if not data.empty:
            charts[title] = (
                alt.Chart(data, title=title)
                .mark_line(point=len(data) < 30)  # a short run has few rows: show each as a point
                .encode(
                    x=alt.X("step:Q", title="step"),
                    y=alt.Y(f"{title}:Q", title=None),
                    tooltip=["step", alt.Tooltip(f"{title}:Q", format=".4g")],
                )
            )
    return charts


def error_rate_curves(metrics: list[dict], runs: dict[str, list[dict]] | None = None) -> alt.Chart | None:
    """WER/CER over steps; with `runs`, WER per run. The base model's zero-shot WER is a dashed rule."""
    runs = runs or {"": metrics}
    rows, baselines = [], []
    for run, rows_of_run in runs.items():
        for r in rows_of_run:
            if "eval_wer" not in r:
                continue
            if r.get("baseline"):
                baselines.append({"value": 100 * r["eval_wer"], "label": f"{run} base model".strip()})
                continue
            rows.append({"step": r["step"], "value": 100 * r["eval_wer"], "series": f"{run} WER".strip()})
            if len(runs) == 1 and "eval_cer" in r:
                rows.append({"step": r["step"], "value": 100 * r["eval_cer"], "series": "CER"})
    if not rows and not baselines:
        return None
    # An untrained model can score 1000%+ WER; keep the scale readable and pin such a baseline to the top.
    top = max([100.0] + [1.1 * r["value"] for r in rows])
    scale = alt.Scale(domain=[0, top], clamp=True)
    layers = []
    if rows:
        layers.append(
            alt.Chart(pd.DataFrame(rows))
            .mark_line(point=True)
            .encode(
                x=alt.X("step:Q", title="step"),
                y=alt.Y("value:Q", title="error rate (%)", scale=scale),
                color=alt.Color("series:N", title=None),
                tooltip=["series", "step", alt.Tooltip("value:Q", format=".1f")],
            )
        )
    if baselines:
        layers.append(
            alt.Chart(pd.DataFrame(baselines))
            .mark_rule(strokeDash=[6, 4], color="gray")
            .encode(y=alt.Y("value:Q", scale=scale), tooltip=["label", alt.Tooltip("value:Q", format=".1f")])
        )
    return alt.layer(*layers)


_STYLE = {
    "substitute": "background:#fde2b3",
    "delete": "background:#f8c4c4;text-decoration:line-through",
    "insert": "background:#c9ecc9",
}


def alignment_html(alignment: list) -> str:
    """Reference/hypothesis alignment as coloured HTML: substitutions amber (ref→hyp), deletions red, insertions
    green. Words are escaped: transcripts are user data."""
    from html import escape

    parts = []
    for op, ref, hyp in alignment:
        ref_text, hyp_text = escape(" ".join(ref)), escape(" ".join(hyp))
        if op == "equal":
            parts.append(ref_text)
        elif op == "substitute":
            parts.append(f"<span style='{_STYLE[op]}'>{ref_text} → {hyp_text}</span>")
        elif op == "delete":
            parts.append(f"<span style='{_STYLE[op]}'>{ref_text}</span>")
        else:
            parts.append(f"<span style='{_STYLE[op]}'>+{hyp_text}</span>")
    return " ".join(parts)
