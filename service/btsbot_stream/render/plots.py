"""The light curve as a PNG (matplotlib, Agg, object-oriented API: safe in threads).

Magnitude by band against time (MJD), brighter up; 5-sigma upper limits of
non-detections as open down-pointing triangles; the score of every scored alert on a
second axis (0-1, right), with BTSbot's 0.5 decision line.
"""

from __future__ import annotations

import io

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from btsbot_stream.render.lightcurve import BANDS, LightCurve

MJD_OFFSET = 2400000.5
BAND_COLOURS = {1: "#2a9d3c", 2: "#d1352b", 3: "#c79a00"}  # g, r, i
SCORE_COLOUR = "#5b3fa0"
_SCORE_MARKERS = ("D", "s", "^", "P", "X")


def _value(mag: float | None) -> float:
    return float("nan") if mag is None else mag


def light_curve_png(curve: LightCurve, title: str = "", width_in: float = 7.0) -> bytes:
    """The light curve plot as PNG bytes (about 700x340 pixels at 100 dpi)."""
    fig = Figure(figsize=(width_in, 3.4), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    handles: list[Line2D] = []
    for fid, band in BANDS.items():
        colour = BAND_COLOURS[fid]
        det = [p for p in curve.detections if p.fid == fid]
        lim = [p for p in curve.upper_limits if p.fid == fid]
        if det:
            ax.errorbar(
                [p.jd - MJD_OFFSET for p in det],
                [_value(p.magpsf) for p in det],
                yerr=[p.sigmapsf or 0.0 for p in det],
                fmt="o",
                ms=5,
                color=colour,
                ecolor=colour,
                elinewidth=1,
                capsize=0,
            )
            handles.append(Line2D([], [], marker="o", ls="", color=colour, label=f"ZTF {band}"))
        if lim:
            ax.plot(
                [p.jd - MJD_OFFSET for p in lim],
                [_value(p.diffmaglim) for p in lim],
                "v",
                ms=5,
                mfc="none",
                mec=colour,
                alpha=0.6,
            )
            handles.append(
                Line2D([], [], marker="v", ls="", mfc="none", mec=colour, label=f"{band} limit")
            )
    ax.invert_yaxis()  # magnitudes: brighter is up
    ax.set_xlabel("MJD")
    ax.set_ylabel("magnitude (AB, difference PSF)")
    ax.grid(True, alpha=0.25)
    if curve.scores:
        sx = ax.twinx()
        models = sorted({s.model for s in curve.scores})
        for index, model in enumerate(models):
            points = [s for s in curve.scores if s.model == model]
            marker = _SCORE_MARKERS[index % len(_SCORE_MARKERS)]
            sx.plot(
                [s.jd - MJD_OFFSET for s in points],
                [s.score for s in points],
                marker=marker,
                ls=":",
                lw=1,
                ms=6,
                color=SCORE_COLOUR,
                alpha=0.85,
            )
            handles.append(
                Line2D([], [], marker=marker, ls=":", color=SCORE_COLOUR, label=f"score {model}")
            )
        sx.axhline(0.5, color=SCORE_COLOUR, lw=0.8, ls="--", alpha=0.4)
        sx.set_ylim(-0.03, 1.03)
        sx.set_ylabel("BTSbot score", color=SCORE_COLOUR)
        sx.tick_params(axis="y", colors=SCORE_COLOUR)
    if not curve.points:
        ax.text(0.5, 0.5, "no photometry", ha="center", va="center", transform=ax.transAxes)
    if handles:
        ax.legend(handles=handles, loc="best", fontsize=8, ncols=3, framealpha=0.8)
    if title:
        ax.set_title(title, fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
