"""Charts of a run's metrics: loss and learning rate, and validation WER/CER against the base model's line."""

from __future__ import annotations

import altair as alt
import pandas as pd

from core.training import RunSummary, chart_ceiling


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
                    x=alt.X("step:Q", title="step", axis=alt.Axis(format="d"), scale=alt.Scale(domainMin=0)),
                    y=alt.Y(f"{title}:Q", title=None),
                    tooltip=["step", alt.Tooltip(f"{title}:Q", format=".4g")],
                )
            )
    return charts


def error_rate_curves(runs: dict[str, list[dict]], with_cer: bool = False) -> alt.Chart | None:
    """Validation WER over steps, one line per run (and CER for a single run when `with_cer`); each run's base model
    is a dashed rule with its value written on it, pinned to the top edge when it is off the scale."""
    rows, baselines = [], []
    for run, metrics in runs.items():
        for r in metrics:
            if "eval_wer" not in r:
                continue
            if r.get("baseline"):
                baselines.append({"run": run, "value": 100 * r["eval_wer"]})
            # step 0 (the base model) is also the curve's first point, so the curve starts where training started
            rows.append({"step": r["step"], "value": 100 * r["eval_wer"], "series": "WER" if with_cer else run})
            if with_cer and "eval_cer" in r:
                rows.append({"step": r["step"], "value": 100 * r["eval_cer"], "series": "CER"})
    if not rows and not baselines:
        return None
    trained = [r["value"] for r in rows if r["step"] > 0]
    top = chart_ceiling(trained, [b["value"] for b in baselines])
    baselines = _labelled(baselines, top, with_cer)
    scale = alt.Scale(domain=[0, top], clamp=True)
    layers = []
    if rows:
        layers.append(
            alt.Chart(pd.DataFrame(rows))
            .mark_line(point=True)
            .encode(
                x=alt.X("step:Q", title="step", axis=alt.Axis(format="d")),
                y=alt.Y("value:Q", title="error rate (%)", scale=scale),
                color=alt.Color("series:N", title=None),
                tooltip=["series", "step", alt.Tooltip("value:Q", format=".1f")],
            )
        )
    if baselines:
        base = alt.Chart(pd.DataFrame(baselines))
        layers.append(
            base.mark_rule(strokeDash=[6, 4], color="gray").encode(
                y=alt.Y("shown:Q", scale=scale, title="error rate (%)"),
                tooltip=["label", alt.Tooltip("value:Q", format=".1f")],
            )
        )
        for line in baselines:  # one text mark each: its offset (pixels) is a mark property, not a data channel
            layers.append(
                alt.Chart(pd.DataFrame([line]))
                .mark_text(align="left", dx=4, dy=line["offset"], color="gray")
                .encode(y=alt.Y("shown:Q", scale=scale, title="error rate (%)"), x=alt.value(0), text="label:N")
            )
    return alt.layer(*layers)


LABEL_PX = 13  # a label's height: labels of base-model lines that would overlap are stacked this far apart


def _labelled(baselines: list[dict], top: float, with_cer: bool) -> list[dict]:
    """One dashed line per distinct base-model value (runs that share a base model and validation split share one
    line, named together), drawn at its value or pinned to the top edge with '(off the scale)'; labels that
    would overlap are stacked downwards."""
    merged: dict[float, list[str]] = {}
    for b in baselines:
        merged.setdefault(round(b["value"], 1), []).append(b["run"])
    lines = []
    for value, names in sorted(merged.items(), reverse=True):
        shown = min(value, top)
        label = f"base model {value:.1f}%" + (" (off the scale)" if value > top else "")
        if not with_cer:
            label = f"{', '.join(dict.fromkeys(names))}: {label}"
        lines.append({"run": names[0], "value": value, "shown": shown, "label": label})
    for k, line in enumerate(lines):
        # the label sits above its line, below it when the line is pinned to the top edge (above is the title), and
        # under the label before it when the two lines are close
        close = k and lines[k - 1]["shown"] - line["shown"] < 0.06 * top
        line["offset"] = lines[k - 1]["offset"] + LABEL_PX if close else (LABEL_PX if line["value"] > top else -8)
    return lines


def duration_chart(histogram: list[dict], window_seconds: float) -> alt.LayerChart | None:
    """The doctor's durations: bars of whole rows over seconds, and the model's window as a red dashed line (a clip
    to its right is longer than the model listens, and prepare drops it)."""
    if not histogram:
        return None
    bars = (
        alt.Chart(pd.DataFrame(histogram), title="Durations of the rows examined")
        .mark_bar()
        .encode(
            x=alt.X("seconds:Q", title="seconds", scale=alt.Scale(domainMin=0)),
            x2="end:Q",
            y=alt.Y("rows:Q", title="rows", axis=alt.Axis(format="d", tickMinStep=1)),  # whole rows
            y2=alt.datum(0),  # a bar from 0 (with x and x2 both given, Vega-Lite would draw a line at the count)
            tooltip=["seconds", "end", "rows"],
        )
    )
    limit = alt.Chart(pd.DataFrame([{"seconds": window_seconds, "label": f"model's window {window_seconds:g} s"}]))
    return (
        bars
        + limit.mark_rule(color="#d62728", strokeDash=[6, 4]).encode(x="seconds:Q")
        + limit.mark_text(align="right", dx=-4, dy=8, color="#d62728").encode(  # inside the plot, left of the line
            x="seconds:Q", y=alt.value(0), text="label:N"
        )
    )


def guard_curves(metrics: list[dict]) -> dict[str, alt.Chart]:
    """Each guard set's WER over steps (step 0 is the base model), and the words written on the no-speech probes:
    {"guard sets": chart, "probe words": chart}, each only when logged."""
    charts = {}
    guards = [
        {"step": r["step"], "WER (%)": 100 * r["guard_wer"], "set": r["guard"]} for r in metrics if "guard_wer" in r
    ]
    if guards:
        charts["guard sets"] = (
            alt.Chart(pd.DataFrame(guards), title="guard sets: WER (step 0 = base model)")
            .mark_line(point=True)
            .encode(
                x=alt.X("step:Q", title="step", axis=alt.Axis(format="d"), scale=alt.Scale(domainMin=0)),
                y=alt.Y("WER (%):Q", title=None, scale=alt.Scale(domainMin=0, nice=True)),
                color=alt.Color("set:N", title=None, legend=alt.Legend(orient="bottom", direction="vertical")),
                tooltip=["set", "step", alt.Tooltip("WER (%):Q", format=".1f")],
            )
        )
    probes = [{"step": r["step"], "words": r["probe_words"]} for r in metrics if "probe_words" in r]
    if probes:
        charts["probe words"] = (
            alt.Chart(pd.DataFrame(probes), title="words made up on 9 no-speech clips")
            .mark_line(point=True, color="#d62728")
            .encode(
                x=alt.X("step:Q", title="step", axis=alt.Axis(format="d"), scale=alt.Scale(domainMin=0)),
                y=alt.Y("words:Q", title=None, scale=alt.Scale(domainMin=0, nice=True)),  # the top point inside
                tooltip=["step", "words"],
            )
        )
    return charts


def before_after_bars(summaries: list[RunSummary]) -> alt.Chart | None:
    """Held-out test WER per run: the starting model and the best checkpoint side by side."""
    rows = [
        {"run": s.run, "model": label, "WER (%)": 100 * value}
        for s in summaries
        for value, label in ((s.test_before, "before fine-tuning"), (s.test_after, "best checkpoint"))
        if value is not None
    ]
    if not rows:
        return None
    return (
        alt.Chart(pd.DataFrame(rows))
        .mark_bar()
        .encode(
            x=alt.X("WER (%):Q"),
            y=alt.Y("model:N", title=None),
            row=alt.Row("run:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left")),
            color=alt.Color("model:N", legend=None),
            tooltip=["run", "model", alt.Tooltip("WER (%):Q", format=".1f")],
        )
    )


_STYLE = {
    "substitute": "background:#fde2b3",
    "delete": "background:#f8c4c4;text-decoration:line-through",
    "insert": "background:#c9ecc9",
}


def alignment_html(alignment: list) -> str:
    """Reference/hypothesis alignment as coloured HTML: substitutions amber (ref→hyp), deletions red, insertions
    green. Words are escaped: transcripts are user data."""
    from html import escape

    def span(op: str, text: str) -> str:
        return f"<span style='{_STYLE[op]}'>{text}</span>"

    parts = []  # one span per word: a run of errors reads word by word, not as one coloured sentence
    for op, ref, hyp in alignment:
        if op == "equal":
            parts += [escape(word) for word in ref]
            continue
        pairs = list(zip(ref, hyp)) if op == "substitute" else []
        parts += [span("substitute", f"{escape(r)} → {escape(h)}") for r, h in pairs]
        parts += [span("delete", escape(word)) for word in ref[len(pairs) :]]
        parts += [span("insert", f"+{escape(word)}") for word in hyp[len(pairs) :]]
    return " ".join(parts)
