"""A picture of identity saliency people can read at a glance: one row per face.

Each row shows the face with its saliency heatmap and a colour bar, the mask a strength selects drawn
over the face, and the regions ranked by identity per area with each one's share of the identity.
"""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from lookalike.saliency.core import IdentitySaliency, identity_mask, select_regions

_HEAT = "inferno"


def saliency_figure(
    image: np.ndarray, saliencies: list[IdentitySaliency], strength: float = 0.5, title: str | None = None
) -> Figure:
    """Matplotlib figure of every face's saliency (skipped faces get a row that says why).

    >>> fig = saliency_figure(np.zeros((8, 8, 3), np.uint8), [])
    >>> len(fig.axes)
    1
    """
    rows = max(1, len(saliencies))
    figure = Figure(figsize=(12, 3.8 * rows), layout="constrained")
    if title:
        figure.suptitle(title, fontsize=11)
    if not saliencies:
        axis = figure.add_subplot(1, 1, 1)
        axis.text(0.5, 0.5, "no face found", ha="center", va="center", fontsize=14)
        axis.set_axis_off()
        return figure
    grid = figure.add_gridspec(rows, 3, width_ratios=[1.1, 1, 1.1])
    for row, saliency in enumerate(saliencies):
        heat_axis = figure.add_subplot(grid[row, 0])
        mask_axis = figure.add_subplot(grid[row, 1])
        bar_axis = figure.add_subplot(grid[row, 2])
        label = f"face {row + 1}"
        if saliency.status == "skipped" or saliency.values is None:
            _face_crop(heat_axis, image, saliency)
            heat_axis.set_title(f"{label}: skipped", fontsize=10)
            for axis in (mask_axis, bar_axis):
                axis.set_axis_off()
            mask_axis.text(0, 0.5, _wrap(saliency.reason or ""), fontsize=9, va="center", transform=mask_axis.transAxes)
            continue
        x0, y0, x1, y1 = saliency.window
        crop = image[y0:y1, x0:x1]
        heat_axis.imshow(crop)
        # Opacity grows with the value, so low-saliency skin stays visible instead of a uniform tint.
        heat = colormaps[_HEAT](saliency.values)
        heat[..., 3] = 0.8 * np.sqrt(np.clip(saliency.values, 0, 1))
        heat_axis.imshow(heat)
        methods = " + ".join(f"{k} {v}" for k, v in saliency.methods.items())
        heat_axis.set_title(f"{label}: identity saliency\n({methods})", fontsize=9)
        heat_axis.set_axis_off()
        shown = ScalarMappable(Normalize(0, 1), cmap=_HEAT)
        colour_bar = figure.colorbar(shown, ax=heat_axis, fraction=0.046, pad=0.02)
        colour_bar.set_label("identity per pixel (1 = most)", fontsize=8)
        colour_bar.ax.tick_params(labelsize=7)
        chosen = select_regions(saliency, strength)
        mask = identity_mask(saliency, strength, crop=True)
        mask_axis.imshow(crop)
        overlay = np.zeros(mask.shape + (4,), np.float32)
        overlay[..., 2] = 1.0
        overlay[..., 3] = 0.55 * mask
        mask_axis.imshow(overlay)
        if mask.max() > 0:
            mask_axis.contour(mask, levels=[0.5], colors="cyan", linewidths=1)
        share = sum(r.share for r in saliency.regions if r.name in chosen)
        mask_axis.set_title(
            f"mask at strength {strength:g}: {len(chosen)} regions\n{share:.0%} of identity, "
            f"{sum(r.area for r in saliency.regions if r.name in chosen):.0%} of face",
            fontsize=9,
        )
        mask_axis.set_axis_off()
        _ranked_bars(bar_axis, saliency, chosen)
        if saliency.status == "degraded":
            figure.text(0.01, 1 - (row + 0.98) / rows, f"degraded: {saliency.reason}", fontsize=8, color="darkred")
    return figure


def _ranked_bars(axis, saliency: IdentitySaliency, chosen: list[str]) -> None:
    names = [r.name.replace("_", " ") for r in saliency.regions]
    shares = [r.share for r in saliency.regions]
    colours = ["tab:blue" if r.name in chosen else "lightgray" for r in saliency.regions]
    positions = np.arange(len(names))
    axis.barh(positions, shares, color=colours)
    axis.set_yticks(positions, names, fontsize=8)
    axis.invert_yaxis()
    axis.set_xlabel("share of the face's identity", fontsize=8)
    axis.tick_params(axis="x", labelsize=7)
    for position, region in zip(positions, saliency.regions):
        axis.text(region.share, position, f" {region.share:.0%} ({region.area:.0%} of face)", va="center", fontsize=7)
    axis.set_xlim(0, max(shares + [0.01]) * 1.6)
    axis.set_title("regions in ranked order: features by identity\nper area (blue: in the mask)", fontsize=9)
    axis.spines[["top", "right"]].set_visible(False)


def _face_crop(axis, image: np.ndarray, saliency: IdentitySaliency) -> None:
    height, width = image.shape[:2]
    x0, y0, x1, y1 = (int(round(v)) for v in saliency.face.box)
    pad_x, pad_y = (x1 - x0) // 2, (y1 - y0) // 2
    crop = image[max(0, y0 - pad_y) : min(height, y1 + pad_y), max(0, x0 - pad_x) : min(width, x1 + pad_x)]
    if crop.size:
        axis.imshow(crop)
    axis.set_axis_off()


def _wrap(text: str, width: int = 50) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))
