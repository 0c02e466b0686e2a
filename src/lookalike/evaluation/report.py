"""Render a finished evaluation: ``report.json``, two plots and one self-contained ``report.html``.

The HTML page embeds its plots and face thumbnails as data URIs and needs no script, so the single file
can be attached to an issue or opened offline. Every string that comes from the data (file names, error
messages, labels) is escaped. The plots are drawn on a bare :class:`matplotlib.figure.Figure`, which
leaves pyplot's global state alone.
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from lookalike.evaluation.runner import ORIGINAL, EvaluationRun
from lookalike.io.images import write_bytes_atomic, write_text_atomic

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_LINESTYLES = ("-", "--", "-.", ":")
_MIN_GALLERY = 200
_DAGGER = "\u2020"
_COUNTING_RULE = (
    "Faces that could not be measured count as matched, retrieved at rank 1 and not detected; "
    "they stay in every denominator."
)

Row = dict[str, Any]
FaceKey = tuple[str, int, str]


def write_report(run: EvaluationRun, out_dir: str | Path, *, examples: int = 6, worst: int = 12) -> dict[str, Path]:
    """Write ``report.json``, ``tradeoff.png``, ``distances.png`` and ``report.html`` into ``out_dir``.

    Each file is replaced atomically. ``examples`` faces, spread evenly over the measured faces, are shown
    with every variant; ``worst`` bounds each worst-case list. Returns the paths by kind.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = run.report
    paths = {"json": write_text_atomic(out / "report.json", json.dumps(report, indent=1, allow_nan=False))}
    tradeoff, paths["tradeoff"] = _figure_bytes(_tradeoff_figure(report)), out / "tradeoff.png"
    distances, paths["distances"] = _figure_bytes(_distances_figure(report)), out / "distances.png"
    write_bytes_atomic(paths["tradeoff"], tradeoff)
    write_bytes_atomic(paths["distances"], distances)
    page = render_html(run, {"tradeoff": tradeoff, "distances": distances}, examples=examples, worst=worst)
    paths["html"] = write_text_atomic(out / "report.html", page)
    return {key: paths[key] for key in ("json", "html", "tradeoff", "distances")}


def plot_tradeoff(report: dict, path: str | Path) -> Path:
    """Protection (top-1 retrieval) against utility (face SSIM, detection), one point per variant and recognizer."""
    return write_bytes_atomic(Path(path), _figure_bytes(_tradeoff_figure(report)))


def plot_distances(report: dict, path: str | Path) -> Path:
    """Per recognizer, a box plot of each variant's distances to the own original, beside the threshold."""
    return write_bytes_atomic(Path(path), _figure_bytes(_distances_figure(report)))


# ---------------------------------------------------------------- plots


def _tradeoff_figure(report: dict) -> Figure:
    fig = Figure(figsize=(11, 4.5), dpi=120, layout="constrained")
    axes = fig.subplots(1, 2)
    recognizers = _recognizers(report)
    variants = report.get("variants") or []
    colours = _method_colours(variants)
    chance = _get(report, "gallery", "chance_top1")
    panels = (
        (
            lambda v: _get(v, "utility", "face_ssim", "mean"),
            1.0,
            "face SSIM, mean\n(likeness of the face to the original, higher = more alike)",
        ),
        (lambda v: _get(v, "utility", "detection_rate"), 100.0, "still detected (%)"),
    )
    points: list[list[_Point]] = []
    for ax, (utility, scale, ylabel) in zip(axes, panels):
        _tradeoff_axes(ax, scale, ylabel, chance)
        points.append(
            [
                p
                for r, name in enumerate(recognizers)
                for p in _plot_method_curves(ax, variants, name, r, colours, utility, scale)
            ]
        )
    handles = [
        Line2D(
            [],
            [],
            ls=_LINESTYLES[r % len(_LINESTYLES)],
            marker=_MARKERS[r % len(_MARKERS)],
            color="0.3",
            lw=0.8,
            label=name,
        )
        for r, name in enumerate(recognizers)
    ]
    handles += [Line2D([], [], ls="", marker="o", color=c, label=m) for m, c in colours.items()]
    if chance is not None:
        handles.append(Line2D([], [], ls=":", color="0.35", label=f"chance ({_pct(chance)})"))
    if handles:
        fig.legend(handles=handles, loc="outside right upper", fontsize=8, frameon=False)
    fig.suptitle(f"Protection vs utility, against a gallery of {_gallery_text(report)}", fontsize=11)
    fig.draw_without_rendering()  # lays the axes out, so labels can be placed in pixels
    for ax, panel_points in zip(axes, points):
        if panel_points:
            _annotate_points(ax, panel_points)
        else:
            _note(ax, "no measured faces")
    return fig


def _tradeoff_axes(ax, scale: float, ylabel: str, chance: float | None) -> None:
    if chance is not None:
        ax.axvline(100.0 * chance, ls=":", lw=1.2, color="0.35")
    ax.set_xlim(-4, 104)
    ax.set_ylim(*((-0.04, 1.04) if scale == 1.0 else (-4, 104)))
    ax.set_xlabel("top-1 retrieval of the original (%), lower = better protection")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)


@dataclass
class _Point:
    x: float
    y: float
    method: str
    text: str
    colour: Any


def _plot_method_curves(
    ax,
    variants: list[Row],
    recognizer: str,
    index: int,
    colours: dict[str, Any],
    utility: Callable[[Row], float | None],
    scale: float,
) -> list[_Point]:
    """Points of one recognizer, joined per method in level order so each method reads as a curve."""
    plotted = []
    for method, colour in colours.items():
        points = []
        for v in variants:
            x, y = _get(v, "protection", recognizer, "top1_rate"), utility(v)
            if _method(v) == method and x is not None and y is not None:
                points.append(_Point(100.0 * x, scale * y, method, _point_label(v), colour))
        if not points:
            continue
        xs, ys = [p.x for p in points], [p.y for p in points]
        ax.plot(xs, ys, ls=_LINESTYLES[index % len(_LINESTYLES)], lw=0.8, alpha=0.4, color=colour)
        ax.plot(
            xs,
            ys,
            ls="",
            marker=_MARKERS[index % len(_MARKERS)],
            ms=6,
            color=colour,
            markeredgecolor="white",
            markeredgewidth=0.6,
        )
        plotted += points
    return plotted


# Label positions tried around a point: offset (points), horizontal and vertical alignment
_LABEL_SPOTS = (
    (5, 3, "left", "bottom"),
    (5, -3, "left", "top"),
    (-5, 3, "right", "bottom"),
    (-5, -3, "right", "top"),
    (0, 7, "center", "bottom"),
    (0, -7, "center", "top"),
    (5, 13, "left", "bottom"),
    (5, -13, "left", "top"),
    (-5, 13, "right", "bottom"),
    (-5, -13, "right", "top"),
)


def _annotate_points(ax, points: list[_Point], fontsize: float = 7.0) -> None:
    """Label points, merging those that coincide and avoiding labels and markers already drawn, since
    many strong methods pile up near the origin."""
    px_per_pt = ax.figure.dpi / 72.0
    where = [ax.transData.transform((p.x, p.y)) for p in points]
    clusters: list[list[int]] = []
    for i, xy in enumerate(where):
        near = [c for c in clusters if np.hypot(*(where[c[0]] - xy)) < 6 * px_per_pt]
        (near[0].append(i) if near else clusters.append([i]))
    frame = ax.get_window_extent()
    marker = 3.5 * px_per_pt
    taken = [(x - marker, y - marker, x + marker, y + marker) for x, y in where]
    for cluster in clusters:
        text, colour = _cluster_label([points[i] for i in cluster])
        x, y = where[cluster[0]]
        width, height = len(text) * fontsize * 0.56 * px_per_pt, fontsize * 1.25 * px_per_pt
        boxes = [_label_box(x, y, spot, width, height, px_per_pt) for spot in _LABEL_SPOTS]
        inside = [
            k
            for k, b in enumerate(boxes)
            if b[0] >= frame.x0 and b[2] <= frame.x1 and b[1] >= frame.y0 and b[3] <= frame.y1
        ] or [0]
        free = [k for k in inside if not any(_overlap(boxes[k], t) for t in taken)]
        k = (free or inside)[0]
        dx, dy, ha, va = _LABEL_SPOTS[k]
        ax.annotate(
            text,
            (points[cluster[0]].x, points[cluster[0]].y),
            xytext=(dx, dy),
            textcoords="offset points",
            ha=ha,
            va=va,
            fontsize=fontsize,
            color=colour,
        )
        taken.append(boxes[k])


def _cluster_label(points: list[_Point]) -> tuple[str, Any]:
    """One label for coinciding points: their levels, with method names when methods are mixed."""
    by_method: dict[str, list[str]] = {}
    for p in points:
        texts = by_method.setdefault(p.method, [])
        if p.text not in texts:
            texts.append(p.text)
    if len(by_method) == 1:
        return ", ".join(next(iter(by_method.values()))), points[0].colour
    parts = [m if texts == [m] else f"{m} {', '.join(texts)}" for m, texts in by_method.items()]
    return "; ".join(parts), "0.2"


def _label_box(
    x: float, y: float, spot: tuple, width: float, height: float, px_per_pt: float
) -> tuple[float, float, float, float]:
    dx, dy, ha, va = spot
    x0 = x + dx * px_per_pt - {"left": 0.0, "center": width / 2, "right": width}[ha]
    y0 = y + dy * px_per_pt - {"bottom": 0.0, "top": height}[va]
    return (x0, y0, x0 + width, y0 + height)


def _overlap(a: tuple, b: tuple) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _distances_figure(report: dict) -> Figure:
    recognizers = _recognizers(report)
    labels = [v.get("label", "") for v in report.get("variants") or []]
    height = max(3.0, 0.42 * len(labels) + 1.8)
    fig = Figure(figsize=(11, height), dpi=120, layout="constrained")
    axes = fig.subplots(1, max(1, len(recognizers)), sharey=True, squeeze=False)[0]
    rows = report.get("per_face") or []
    for ax, name in zip(axes, recognizers):
        data = [
            [r[f"{name}_distance"] for r in rows if r.get("variant") == label and r.get(f"{name}_distance") is not None]
            for label in labels
        ]
        _distance_panel(ax, report, name, labels, data)
    if not recognizers:
        _note(axes[0], "no recognizers in the report")
    counts = [sum(1 for r in rows if r.get("variant") == label) for label in labels]
    measured = [
        [sum(1 for r in rows if r.get("variant") == label and r.get(f"{n}_distance") is not None) for n in recognizers]
        for label in labels
    ]
    # n = faces measured of faces counted: an unmeasured face has no distance to draw
    axes[0].set_yticks(
        range(len(labels)),
        [f"{label}\n(n={min(m, default=0)} of {c})" for label, m, c in zip(labels, measured, counts)],
        fontsize=8,
    )
    axes[0].set_ylim(len(labels) - 0.5 if labels else 0.5, -0.5)  # first variant on top
    handles = [
        Line2D([], [], color="C3", lw=1.5, label="verification threshold"),
        Line2D([], [], color="C0", lw=1.5, ls="--", label="median distance to the nearest other person"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    fig.suptitle("Distance of each anonymized face to its own original", fontsize=11)
    return fig


def _distance_panel(ax, report: dict, name: str, labels: list[str], data: list[list[float]]) -> None:
    filled = [i for i, values in enumerate(data) if values]
    if filled:
        ax.boxplot(
            [data[i] for i in filled],
            positions=filled,
            orientation="horizontal",
            widths=0.6,
            patch_artist=True,
            boxprops={"facecolor": "#dbe6f3", "edgecolor": "0.3"},
            medianprops={"color": "black"},
            flierprops={"markersize": 3, "markeredgecolor": "0.4"},
        )
    else:
        _note(ax, "no measured distances")
    threshold = _get(report, "recognizers", name, "threshold")
    if threshold is not None:
        ax.axvline(threshold, color="C3", lw=1.5)
    nearest = _get(report, "gallery", "nearest_other_original", name, "median")
    if nearest is not None:
        ax.axvline(nearest, color="C0", lw=1.5, ls="--")
    ax.set_title(name, fontsize=10)
    ax.set_xlabel(_get(report, "recognizers", name, "distance") or "distance", fontsize=8)
    ax.grid(True, axis="x", alpha=0.3)


def _note(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="0.4", fontsize=10)


def _method_colours(variants: list[Row]) -> dict[str, Any]:
    from matplotlib import colormaps

    methods = list(dict.fromkeys(_method(v) for v in variants))
    palette = colormaps["tab10" if len(methods) <= 10 else "tab20"]
    return {m: palette(i % palette.N) for i, m in enumerate(methods)}


def _method(variant: Row) -> str:
    return str(variant.get("method") or variant.get("label", ""))


def _point_label(variant: Row) -> str:
    level = variant.get("level")
    return f"{level:g}" if isinstance(level, (int, float)) else str(variant.get("label", ""))


def _figure_bytes(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


# ---------------------------------------------------------------- HTML


def render_html(run: EvaluationRun, plots: dict[str, bytes], *, examples: int = 6, worst: int = 12) -> str:
    """The report page; ``plots`` maps "tradeoff" and "distances" to PNG bytes (missing ones are skipped)."""
    report = run.report
    faces = _face_index(report)
    sections = [
        _header(report),
        _section("Summary", _summary_table(report)),
        _section(
            "Protection and utility",
            _plot_img(plots.get("tradeoff"), "trade-off plot")
            + _plot_img(plots.get("distances"), "distance distributions"),
        ),
        _section("Examples", _examples(report, run.thumbnails, faces, examples)),
        _section("Still recognized", _still_recognized(report, run.thumbnails, worst)),
        _section("No longer detected", _not_detected(report, run.thumbnails, worst)),
        _section("Problems", _problems(report)),
        _section("Definitions", _definitions(report)),
    ]
    title = f"lookalike {_e(report.get('kind', 'evaluation'))} report"
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{_CSS}</style></head>\n<body><main>\n<h1>{title}</h1>\n"
        + "\n".join(sections)
        + "\n</main></body></html>\n"
    )


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#222;
 background:#fff;margin:0;line-height:1.45}
main{max-width:1200px;margin:0 auto;padding:1rem 1.5rem 3rem}
h1{font-size:1.6rem;margin:.5rem 0}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ddd;
 padding-bottom:.2rem}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
th,td{padding:.25rem .5rem;border-bottom:1px solid #e4e4e4;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tbody tr:nth-child(even){background:#f6f7f9}
thead th{background:#eef1f5;white-space:nowrap}thead tr.dir th{font-weight:normal;color:#555;font-size:.75rem}
.wide{overflow-x:auto}.muted{color:#666;font-size:.85rem}
.warn{background:#fff4e0;border-left:4px solid #e69500;padding:.4rem .7rem}
dl.meta{display:grid;grid-template-columns:max-content auto;gap:.15rem 1rem;margin:.5rem 0}
dl.meta dt{font-weight:600}dl.meta dd{margin:0;word-break:break-word}
img.plot{max-width:100%;height:auto;display:block;margin:.8rem 0}
.row{display:flex;flex-wrap:wrap;gap:.4rem;margin:.6rem 0;padding-bottom:.6rem;border-bottom:1px solid #eee}
figure{margin:0;width:112px;font-size:.7rem;line-height:1.25;color:#333}
figure img,.missing{width:112px;height:112px;display:block;border-radius:3px}
.missing{background:#eee;color:#888;display:flex;align-items:center;justify-content:center}
.cards{display:flex;flex-wrap:wrap;gap:.8rem}
.card{display:flex;gap:.3rem;border:1px solid #e2e2e2;border-radius:5px;padding:.35rem;background:#fafafa}
.card .txt{width:150px;font-size:.72rem;line-height:1.3;word-break:break-word}
code{font-size:.85em}
"""


def _header(report: dict) -> str:
    files = report.get("files") or {}
    counts = ", ".join(
        f"{files.get(k, 0)} {text}"
        for k, text in (("measured", "measured"), ("no_face", "without a face"), ("failed", "failed"))
    )
    items = [
        ("kind", report.get("kind")),
        ("created", report.get("created")),
        ("command", report.get("command")),
        ("inputs", _inline_dict(report.get("inputs"))),
        ("total time", _unit(report.get("seconds_total"), "s", 1)),
        ("detection", _unit(report.get("detection_seconds_per_image"), "s per image", 3)),
        ("files", f"{files.get('total', 0)} ({counts})"),
        ("faces", files.get("faces", 0)),
        ("gallery", _gallery_text(report)),
    ]
    body = '<dl class="meta">' + "".join(f"<dt>{_e(k)}</dt><dd>{_e(_text(v))}</dd>" for k, v in items) + "</dl>"
    if (_get(report, "gallery", "faces") or 0) < _MIN_GALLERY:
        body += (
            f'<p class="warn">The gallery holds fewer than {_MIN_GALLERY} faces: top-1 retrieval is only '
            f"meaningful against a gallery of at least {_MIN_GALLERY} originals.</p>"
        )
    return body


def _gallery_text(report: dict) -> str:
    faces = _get(report, "gallery", "faces") or 0
    chance = _get(report, "gallery", "chance_top1")
    return f"{faces} original faces" + ("" if chance is None else f" (chance top-1: {_pct(chance)})")


@dataclass(frozen=True)
class _Column:
    """One summary column: the value at ``path`` in a variant row, shown with ``show``."""

    group: str
    heading: str
    metric: str | None  # key in report["metrics"], for the direction row
    path: tuple[str, ...]
    show: Callable[[Any], str]
    held_out: str | None = None  # recognizer whose held-out mark goes in this cell

    def cell(self, variant: Row) -> str:
        text = _e(self.show(_get(variant, *self.path)))
        return text + _held_out_mark(variant, self.held_out) if self.held_out else text


def _fixed(digits: int) -> Callable[[Any], str]:
    return lambda value: _num(value, digits)


def _summary_columns(recognizers: list[str]) -> list[_Column]:
    columns = [_Column("", "variant", None, ("label",), _text), _Column("", "faces", None, ("faces",), _text)]
    for name in recognizers:
        columns += [
            _Column(name, "match", "match_rate", ("protection", name, "match_rate"), _pct, held_out=name),
            _Column(name, "top-1", "top1_rate", ("protection", name, "top1_rate"), _pct),
            _Column(name, "top-5", "top5_rate", ("protection", name, "top5_rate"), _pct),
            _Column(name, "median rank", "median_rank", ("protection", name, "median_rank"), _text),
            _Column(name, "median distance", "distance", ("protection", name, "distance", "median"), _fixed(3)),
        ]
    utility = [
        ("detected", "detection_rate", (), _pct),
        ("fallback", "fallback_rate", (), _pct),
        ("landmark error", "landmark_error", ("mean",), _fixed(3)),
        ("pose error (\u00b0)", "pose_error", ("mean",), _fixed(2)),
        ("mouth error", "mouth_error", ("mean",), _fixed(3)),
        ("eye error", "eye_error", ("mean",), _fixed(3)),
        ("face SSIM", "face_ssim", ("mean",), _fixed(3)),
        ("perceptual similarity", "perceptual_similarity", ("mean",), _fixed(3)),
    ]
    columns += [_Column("utility", h, m, ("utility", m, *stat), show) for h, m, stat, show in utility]
    columns += [
        _Column("defects", h, m, ("utility", "defects", m, "mean"), _fixed(3))
        for h, m in (("seam", "seam"), ("hair", "hair"), ("frames kept", "frames"), ("2nd contours", "contours"))
    ]
    columns += [
        _Column("perceived attributes", f"{a} MAD", "attribute_mad", ("utility", "attributes", a, "mad"), _fixed(1))
        for a in ("age", "gender", "skin-color")
    ]
    columns += [
        _Column(
            "perceived attributes",
            f"{a} r",
            "attribute_correlation",
            ("utility", "attributes", a, "correlation"),
            _fixed(2),
        )
        for a in ("age", "gender", "skin-color")
    ]
    outside = [
        ("SSIM mean", "ssim_outside", "mean", 4),
        ("SSIM min", "ssim_outside", "min", 4),
        ("PSNR median (dB)", "psnr_outside", "median", 1),
        ("PSNR min (dB)", "psnr_outside", "min", 1),
    ]
    columns += [_Column("outside the face", h, m, ("utility", m, stat), _fixed(d)) for h, m, stat, d in outside]
    columns += [
        _Column("outside the face", "extra faces", None, ("utility", "extra_faces"), _text),
        _Column("speed", "s / face", "seconds_per_face", ("speed", "seconds_per_face"), _fixed(3)),
    ]
    return columns


def _summary_table(report: dict) -> str:
    variants = report.get("variants") or []
    if not variants:
        return "<p>No variants were measured.</p>"
    columns = _summary_columns(_recognizers(report))
    metrics = report.get("metrics") or {}
    groups = "".join(
        f'<th colspan="{sum(c.group == group for c in columns)}">{_e(group)}</th>'
        for group in dict.fromkeys(c.group for c in columns)
    )
    names = "".join(f"<th>{_e(c.heading)}</th>" for c in columns)
    directions = "".join(_direction_cell(metrics.get(c.metric) if c.metric else None) for c in columns)
    body = "".join(
        "<tr><td>"
        + columns[0].cell(v)
        + "</td>"  # the label; numbers right-aligned
        + "".join(f'<td class="n">{c.cell(v)}</td>' for c in columns[1:])
        + "</tr>"
        for v in variants
    )
    table = (
        f'<div class="wide"><table><thead><tr>{groups}</tr><tr>{names}</tr><tr class="dir">{directions}'
        f"</tr></thead><tbody>{body}</tbody></table></div>"
    )
    notes = []
    if any(v.get("held_out") for v in variants):
        notes.append(
            f"{_DAGGER} held out: the method did not consult this recognizer, so its figures are the honest ones."
        )
    if any(v.get("held_out") is None for v in variants):
        notes.append(
            "Which recognizers the anonymizer consulted is unknown (give evaluate --steered-by), so none "
            "is marked held out."
        )
    notes.append(
        "Rates count every face found in the originals; unmeasured faces count as matched and retrieved "
        "(see Problems). Errors are means over the faces still detected."
    )
    unmeasured = [
        f"{_e(v.get('label', ''))}: {_e(_text(v.get('unmeasured_faces')))}"
        for v in variants
        if v.get("unmeasured_faces")
    ]
    if unmeasured:
        notes.append("Unmeasured faces per variant: " + ", ".join(unmeasured) + ".")
    return table + "".join(f'<p class="muted">{n}</p>' for n in notes)


def _held_out_mark(variant: Row, recognizer: str) -> str:
    held = recognizer in (variant.get("held_out") or [])
    return f'<span title="held out">{_DAGGER}</span>' if held else ""


def _direction_cell(metric: dict | None) -> str:
    if not metric:
        return "<th></th>"
    better = str(metric.get("better", ""))
    arrow = {"lower": "\u2193", "higher": "\u2191"}.get(better, "")
    return f'<th title="{_e(metric.get("meaning", ""))}">{arrow} {_e(better)} is better</th>'


def _plot_img(png: bytes | None, alt: str) -> str:
    if not png:
        return ""
    return f'<img class="plot" alt="{_e(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


# ---------------------------------------------------------------- face galleries


def _face_index(report: dict) -> dict[FaceKey, Row]:
    return {(r.get("file"), r.get("face"), r.get("variant")): r for r in report.get("per_face") or []}


def _measured_faces(report: dict) -> list[tuple[str, int]]:
    """(file, face) of every face with a per-face row, in report order."""
    return list(dict.fromkeys((r.get("file"), r.get("face")) for r in report.get("per_face") or []))


def spread(n: int, k: int) -> list[int]:
    """``k`` indices spread evenly over ``range(n)``, the middle of each stretch.

    >>> spread(10, 3)
    [1, 5, 8]
    >>> spread(2, 6)
    [0, 1]
    >>> spread(0, 3)
    []
    """
    if k <= 0 or n <= 0:
        return []
    if k >= n:
        return list(range(n))
    return [(2 * i + 1) * n // (2 * k) for i in range(k)]


def _examples(report: dict, thumbnails: dict[FaceKey, bytes], faces: dict[FaceKey, Row], count: int) -> str:
    measured = _measured_faces(report)
    chosen = [measured[i] for i in spread(len(measured), count)]
    if not chosen:
        return "<p>No faces were measured.</p>"
    labels = [v.get("label", "") for v in report.get("variants") or []]
    recognizers = _recognizers(report)
    rows = []
    for file, face in chosen:
        cells = [_figure(thumbnails.get((file, face, ORIGINAL)), [_face_name(file, face), "original"])]
        for label in labels:
            row = faces.get((file, face, label)) or {}
            caption = [label, _ranks(row, recognizers)] + ([] if row.get("detected", True) else ["not detected"])
            cells.append(_figure(thumbnails.get((file, face, label)), caption))
        rows.append('<div class="row">' + "".join(cells) + "</div>")
    return (
        f'<p class="muted">{len(chosen)} of {len(measured)} faces, spread evenly over the run; '
        "#k is the rank of the own original among all originals (1 = recognized).</p>" + "".join(rows)
    )


def _still_recognized(report: dict, thumbnails: dict[FaceKey, bytes], limit: int) -> str:
    recognizers = _recognizers(report)
    found = [
        r
        for r in report.get("per_face") or []
        if any(r.get(f"{n}_rank") == 1 or r.get(f"{n}_match") for n in recognizers)
    ]
    found.sort(key=lambda r: _severity(r, report, recognizers))
    shown = _pick(found, thumbnails, limit)
    intro = (
        "Faces whose own original is still the nearest (rank 1) or still verified as the same person by a "
        "recognizer, most severe first, the worst of each variant before the second worst of any."
    )
    return _cards(intro, found, shown, thumbnails, recognizers, "No anonymized face is still recognized.")


def _not_detected(report: dict, thumbnails: dict[FaceKey, bytes], limit: int) -> str:
    lost = [r for r in report.get("per_face") or [] if r.get("status") == "measured" and r.get("detected") is False]
    # the most alike to the original first: a barely changed face the detector loses says most about the method
    lost.sort(key=lambda r: -(r.get("face_ssim") if r.get("face_ssim") is not None else -1.0))
    shown = _pick(lost, thumbnails, limit)
    intro = (
        "Anonymized faces the detector no longer finds at their place, the most alike to the original "
        "(face SSIM) first, the first of each variant before the second of any."
    )
    return _cards(
        intro, lost, shown, thumbnails, _recognizers(report), "Every measured anonymized face is still detected."
    )


def _severity(row: Row, report: dict, recognizers: list[str]) -> tuple:
    retrieved = sum(row.get(f"{n}_rank") == 1 for n in recognizers)
    matched = sum(bool(row.get(f"{n}_match")) for n in recognizers)
    ratios = []
    for name in recognizers:
        distance, threshold = row.get(f"{name}_distance"), _get(report, "recognizers", name, "threshold")
        # an unmeasured face has no distance and counts as found at distance 0
        ratios.append(0.0 if distance is None or not threshold else distance / threshold)
    return (-retrieved, -matched, min(ratios, default=0.0))


def _pick(rows: list[Row], thumbnails: dict[FaceKey, bytes], limit: int) -> list[Row]:
    """Up to ``limit`` rows with both thumbnails, keeping order within a variant but taking turns across
    variants, so a single weak variant does not fill the whole list."""
    usable = [
        r
        for r in rows
        if (r.get("file"), r.get("face"), ORIGINAL) in thumbnails
        and (r.get("file"), r.get("face"), r.get("variant")) in thumbnails
    ]
    turn: dict[str, int] = {}
    keyed = []
    for position, row in enumerate(usable):
        variant = str(row.get("variant"))
        keyed.append((turn.get(variant, 0), position, row))
        turn[variant] = turn.get(variant, 0) + 1
    return [row for *_, row in sorted(keyed, key=lambda t: t[:2])[: max(0, limit)]]


def _cards(
    intro: str, found: list[Row], shown: list[Row], thumbnails: dict[FaceKey, bytes], recognizers: list[str], empty: str
) -> str:
    if not found:
        return f"<p>{_e(empty)}</p>"
    total = f"{len(found)} face version{'s' if len(found) != 1 else ''} in all; showing {len(shown)}."
    if not shown:
        return f"<p>{_e(intro)} {_e(total)} (No thumbnails were kept for them.)</p>"
    cards = []
    for row in shown:
        file, face, label = row["file"], row["face"], row["variant"]  # _pick keeps rows whose thumbnails exist
        lines = [f"<b>{_e(_face_name(file, face))}</b>", _e(label)]
        for name in recognizers:
            rank, distance = row.get(f"{name}_rank"), row.get(f"{name}_distance")
            verdict = " match" if row.get(f"{name}_match") else ""
            lines.append(f"{_e(name)} #{_e(_text(rank))}, d={_e(_num(distance, 3))}{verdict}")
        lines.append("detected" if row.get("detected") else "not detected")
        lines.append(f"face SSIM {_e(_num(row.get('face_ssim'), 3))}")
        cards.append(
            '<div class="card">'
            + _img(thumbnails.get((file, face, ORIGINAL)), "original")
            + _img(thumbnails.get((file, face, label)), str(label))
            + '<div class="txt">'
            + "<br>".join(lines)
            + "</div></div>"
        )
    return f'<p>{_e(intro)} {_e(total)}</p><div class="cards">' + "".join(cards) + "</div>"


def _figure(jpeg: bytes | None, caption: list[str]) -> str:
    text = "<br>".join(_e(line) for line in caption if line)
    return f"<figure>{_img(jpeg, caption[0])}<figcaption>{text}</figcaption></figure>"


def _img(jpeg: bytes | None, alt: str) -> str:
    if not jpeg:
        return '<div class="missing">no image</div>'
    return (
        f'<img width="112" height="112" alt="{_e(alt)}" src="data:image/jpeg;base64,{base64.b64encode(jpeg).decode()}">'
    )


def _ranks(row: Row, recognizers: list[str]) -> str:
    """``"dlib #1 · facenet #37"``."""
    return " \u00b7 ".join(f"{n} #{_text(row.get(f'{n}_rank'))}" for n in recognizers if f"{n}_rank" in row)


def _face_name(file: Any, face: Any) -> str:
    return f"{file} #{face}"


# ---------------------------------------------------------------- problems and definitions


def _problems(report: dict) -> str:
    rows = []
    for entry in report.get("per_file") or []:
        if entry.get("status") != "measured":
            rows.append((entry.get("file"), "", entry.get("status"), entry.get("error")))
        for label, version in (entry.get("variants") or {}).items():
            if version.get("status") != "measured":
                rows.append((entry.get("file"), label, version.get("status"), version.get("error")))
    rows += [
        (path, "", "unpaired", "anonymized file without an original")
        for path in report.get("unpaired_anonymized") or []
    ]
    rows += [
        (path, "", "skipped", "not an image file (by its suffix); not counted")
        for path in report.get("skipped_non_images") or []
    ]
    rule = f'<p class="muted">{_e(_COUNTING_RULE)}</p>'
    if report.get("kind") == "evaluate" and report.get("unpaired_anonymized") is None:
        rule += (
            '<p class="muted">Unpaired anonymized files are not looked for when only some originals are read '
            "(--limit).</p>"
        )
    if not rows:
        return "<p>none</p>" + rule
    body = "".join("<tr>" + "".join(f"<td>{_e(_text(cell))}</td>" for cell in row) + "</tr>" for row in rows)
    return (
        '<div class="wide"><table><thead><tr><th>file</th><th>variant</th><th>status</th><th>error</th>'
        f"</tr></thead><tbody>{body}</tbody></table></div>" + rule
    )


def _definitions(report: dict) -> str:
    metrics = report.get("metrics") or {}
    recognizers = report.get("recognizers") or {}
    parts = [
        "<h3>Metrics</h3>",
        _table(
            ["metric", "better", "meaning"],
            [(f"<code>{_e(k)}</code>", _e(m.get("better")), _e(m.get("meaning"))) for k, m in metrics.items()],
        ),
    ]
    parts += [
        "<h3>Recognizers</h3>",
        _table(
            ["recognizer", "threshold", "distance"],
            [(_e(k), _e(_text(r.get("threshold"))), _e(r.get("distance"))) for k, r in recognizers.items()],
        ),
    ]
    if report.get("config"):
        parts += [
            "<h3>Settings</h3>",
            _table(
                ["setting", "value"],
                [(_e(k), _e("None" if v is None else _text(v))) for k, v in report["config"].items()],
            ),
        ]
    if report.get("software"):
        parts += [
            "<h3>Software</h3>",
            _table(["component", "version"], [(_e(k), _e(_text(v))) for k, v in report["software"].items()]),
        ]
    return "".join(parts)


def _table(head: list[str], rows: list[tuple[str, ...]]) -> str:
    """A table of already escaped cells."""
    if not rows:
        return "<p>none</p>"
    header = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<div class="wide"><table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table></div>'


def _section(title: str, body: str) -> str:
    anchor = title.lower().replace(" ", "-")
    return f'<section id="{_e(anchor)}"><h2>{_e(title)}</h2>\n{body}</section>'


# ---------------------------------------------------------------- formatting


def _recognizers(report: dict) -> list[str]:
    return list(report.get("recognizers") or {})


def _get(data: Any, *keys: str) -> Any:
    """``data[k1][k2]...``, or None where anything on the way is missing."""
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _text(value: Any) -> str:
    """A plain value for display: ``n/a`` for None, ``g`` format for floats.

    >>> _text(None), _text(0.25), _text(True), _text([1, "a"])
    ('n/a', '0.25', 'True', '1, a')
    """
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(v) for v in value)
    return str(value)


def _pct(rate: float | None) -> str:
    """A rate as a percentage with one decimal.

    >>> _pct(0.125), _pct(1), _pct(None)
    ('12.5%', '100.0%', 'n/a')
    """
    return "n/a" if rate is None else f"{100.0 * rate:.1f}%"


def _num(value: float | None, digits: int) -> str:
    """A number with fixed decimals.

    >>> _num(0.12345, 3), _num(None, 2), _num(13.5, 1)
    ('0.123', 'n/a', '13.5')
    """
    return "n/a" if value is None else f"{value:.{digits}f}"


def _unit(value: float | None, unit: str, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f} {unit}"


def _inline_dict(value: Any) -> str:
    if not isinstance(value, dict):
        return _text(value)
    return ", ".join(f"{k}={_text(v)}" for k, v in value.items())
