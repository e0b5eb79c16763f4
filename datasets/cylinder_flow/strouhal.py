"""Shedding frequency of a signal and the literature Strouhal relation for a circular cylinder.

Reference: Williamson & Brown (1998), "A series in 1/sqrt(Re) to represent the Strouhal-Reynolds
number relationship of the cylinder wake", J. Fluids Struct. 12: the two-term fit of the laminar
(parallel) shedding branch, ``St = 0.2665 - 1.018 / sqrt(Re)``. It is the branch a 2D simulation
follows; above Re ~ 190 real (3D) wakes shed at a slightly lower frequency (mode A/B), which a 2D
solver cannot show, so the 2D branch is the right comparison for this dataset. For Re <= 178 the
Williamson (1988) fit ``St = -3.3265 / Re + 0.1816 + 1.6e-4 Re`` is reported as well.
"""

from __future__ import annotations

import numpy as np


def reference_st(Re: float) -> dict[str, float | str]:
    """Literature Strouhal number of a circular cylinder at ``Re`` (see the module docstring)."""
    out: dict[str, float | str] = {"st": 0.2665 - 1.018 / np.sqrt(Re),
                                   "relation": "Williamson & Brown 1998, St = 0.2665 - 1.018/sqrt(Re)"}
    if Re <= 178:
        out["st_williamson_1988"] = -3.3265 / Re + 0.1816 + 1.6e-4 * Re
    return out


def strouhal_from_signal(t: np.ndarray, s: np.ndarray, min_periods: int = 3) -> float:
    """Dominant frequency of ``s(t)`` from its upward crossings of its mean (linear interpolation).

    Raises ValueError when the signal shows fewer than ``min_periods`` full periods (no shedding).

    Shapes
    ------
    t, s : (n,) -> returns frequency (1 / units of t)
    """
    t = np.asarray(t, dtype=np.float64)
    x = np.asarray(s, dtype=np.float64) - np.mean(s)
    amp = np.abs(x).max()
    if not np.isfinite(amp) or amp < 1e-8:
        raise ValueError(f"signal is constant (amplitude {amp:.2e}): no shedding")
    k = np.nonzero((x[:-1] < 0) & (x[1:] >= 0))[0]
    tc = t[k] - x[k] * (t[k + 1] - t[k]) / (x[k + 1] - x[k])
    if len(tc) < min_periods + 1:
        raise ValueError(f"signal has {max(len(tc) - 1, 0)} full periods (< {min_periods}): no steady shedding")
    return float((len(tc) - 1) / (tc[-1] - tc[0]))


def spectrum_peak(t: np.ndarray, s: np.ndarray, pad: int = 8) -> float:
    """Frequency of the largest FFT peak of ``s`` (mean removed, Hann window, zero padded, parabolic refinement).

    Shapes
    ------
    t : (n,) uniformly spaced, s : (n,) -> returns frequency
    """
    t = np.asarray(t, dtype=np.float64)
    x = np.asarray(s, dtype=np.float64)
    if len(x) < 8:
        raise ValueError(f"spectrum_peak: {len(x)} samples are too few")
    dt = float(np.mean(np.diff(t)))
    x = (x - x.mean()) * np.hanning(len(x))
    nf = pad * len(x)
    P = np.abs(np.fft.rfft(x, nf))
    P[0] = 0
    k = int(np.argmax(P))
    if 0 < k < len(P) - 1:
        a, b, c = np.log(P[k - 1] + 1e-300), np.log(P[k] + 1e-300), np.log(P[k + 1] + 1e-300)
        k = k + 0.5 * (a - c) / (a - 2 * b + c)
    return float(k / (nf * dt))
