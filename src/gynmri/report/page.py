"""The page skeleton and formatting shared by the run's report and ``gynmri predict``'s page.

Pages are self-contained HTML (figures embedded as data URIs), so a report can be mailed or
archived as one file.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import json
import subprocess
from importlib import metadata
from pathlib import Path

import pandas as pd

AUC_COLUMNS = ("auc", "macro_auc")  # shown as 0.xxx, the other metrics as percentages
VERSIONED = [
    "gynmri",
    "snakemake",
    "pydicom",
    "SimpleITK",
    "jax",
    "flax",
    "optax",
    "pandas",
    "numpy",
]

CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table.t{border-collapse:collapse;font-size:.85em;margin:.5em 0}
table.t th,table.t td{padding:.25em .6em;border-bottom:1px solid #e3e3e3;text-align:right}
table.t th{background:#f4f4f4}img{max-width:100%}.note{color:#555;font-size:.9em}
footer{margin-top:3em;font-size:.8em;color:#666;border-top:1px solid #ccc;padding-top:.5em}
.d{font-size:1.3em}
"""


def page(title: str, body: list[str]) -> str:
    """Return a complete HTML page of ``body`` parts (already HTML) under ``title``."""
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>"
        f"<body>{chr(10).join(body)}</body></html>"
    )


def png(path: str | Path) -> str:
    """Return an <img> tag with the PNG at ``path`` embedded."""
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img alt="{html.escape(Path(path).stem)}" src="data:image/png;base64,{data}">'


def fmt(value, percent: bool) -> str:
    """Return a metric as text: a percentage with one decimal, or a number with three."""
    if pd.isna(value):
        return ""
    return f"{100 * value:.1f}" if percent else f"{value:.3f}"


def table(df: pd.DataFrame, percent: list[str] = ()) -> str:
    """Return an HTML table; metrics with ``_lo``/``_hi`` columns are shown as 'value (lo-hi)'."""
    df = df.copy()
    for col in [*percent, *AUC_COLUMNS]:
        if col not in df:
            continue
        is_pct = col not in AUC_COLUMNS
        lo, hi = f"{col}_lo", f"{col}_hi"
        text = df[col].map(lambda v, p=is_pct: fmt(v, p) + (" %" if p and pd.notna(v) else ""))
        if lo in df and hi in df:
            ci = [
                f" ({fmt(a, is_pct)}-{fmt(b, is_pct)})" if pd.notna(a) and pd.notna(b) else ""
                for a, b in zip(df[lo], df[hi], strict=True)
            ]
            text = text + pd.Series(ci, index=df.index)
            df = df.drop(columns=[lo, hi])
        df[col] = text
    return df.to_html(index=False, border=0, classes="t", na_rep="")


def provenance(config: dict) -> dict:
    """Return config hash, package versions, git revision and date for the report footer."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    try:
        rev = (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"],
                capture_output=True,
                text=True,
                timeout=10,
                cwd=Path(__file__).parent,
            ).stdout.strip()
            or "unknown"
        )
    except (OSError, subprocess.SubprocessError):
        rev = "unknown"
    versions = {}
    for name in VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {
        "config_sha256": hashlib.sha256(blob).hexdigest()[:16],
        "git": rev,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "versions": versions,
    }


def footer(config: dict) -> str:
    """Return the provenance footer of a report."""
    prov = provenance(config)
    versions = ", ".join(f"{k} {html.escape(v)}" for k, v in prov["versions"].items())
    return (
        f"<footer>config sha256 {prov['config_sha256']} &middot; git "
        f"{html.escape(prov['git'])} &middot; {prov['date']}<br>{versions}</footer>"
    )


def _card_link(card: str | None) -> str:
    """A link to the run's model card (intended use, validation, limitations)."""
    if not card:
        return "<p class='note'>No model card: the run's report has not been written.</p>"
    uri = html.escape(Path(card).as_uri())
    return (
        f"<p>Model card (intended use, validation, calibration, limitations): "
        f"<a href='{uri}'>{html.escape(card)}</a></p>"
    )


def prediction_page(result: dict, pngs: list[Path]) -> str:
    """Return the one-page HTML summary of a ``gynmri predict`` result (figures embedded)."""
    classes = result["classes"]
    rows = [
        {
            "sequence": seq,
            "series": v["series_number"],
            "slices selected": f"{len(v['selected_slices'])} of {v['slices']}",
            **{f"p({c})": v["probabilities"][c] for c in classes},
        }
        for seq, v in result["per_sequence"].items()
    ]
    rows.append(
        {
            "sequence": "ensemble",
            "series": "",
            "slices selected": "",
            **{f"p({c})": result["probabilities"][c] for c in classes},
        }
    )
    probs = pd.DataFrame(rows).to_html(index=False, border=0, classes="t", float_format="%.3f")
    missing = "".join(
        f"<li>{html.escape(k)}: {html.escape(v)}</li>"
        for k, v in result["sequences_missing"].items()
    )
    body = [
        f"<h1>gynmri prediction: {html.escape(result['task'])}</h1>",
        f"<p class='d'>Most probable: <b>{html.escape(result['predicted_class'])}</b>; "
        f"p({html.escape('+'.join(result['positive']))}) = {result['positive_probability']:.3f} "
        f"&rarr; <b>{result['decision']}</b> at threshold {result['threshold']}</p>",
        "<p>Decision support only: the tumour slices were selected automatically; check them "
        "and the maps below.</p>",
        _card_link(result.get("model_card")),
        probs,
        f"<h2>Missing sequences</h2><ul>{missing}</ul>" if missing else "",
        "<h2>Where the models look (HiResCAM, predicted class)</h2>",
        "<p class='note'>Selected slices as the classifiers see them; green outline: the tumour "
        "the localiser segmented (largest 3-D component).</p>"
        if pngs
        else "",
        *(png(p) for p in pngs),
    ]
    return page(f"gynmri prediction: {result['task']}", body)
