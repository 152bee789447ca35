"""Which volume of a series is used: a magnitude image, never a phase image or a field map;
for diffusion, the trace (isotropic) image at the configured b-value, read where the scanner
stored it and computed where it did not; a stored ADC map for an ADC series.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from gynmri.io.kinds import MAGNITUDE, TRACE
from gynmri.io.volumes import SeriesError, Volume

TRACE_READ = "read (the scanner's trace image)"
TRACE_SINGLE = "read (one image per slice at this b-value, no gradient direction given)"


def choose_volume(volumes: list[Volume], wanted_bvalue: str | float) -> Volume:
    """Return the volume a series is read as.

    Magnitude and trace volumes are images; with none, a stored ADC map is used; phase, field
    maps and other derived maps never are. Diffusion series: the volume at the wanted b-value
    ('highest' or a number); there, the scanner's trace if it stored one, else the only image,
    else the geometric mean of the directional images (the trace by definition). The returned
    volume's ``trace`` says which.

    Raises SeriesError: no usable image, or the b-value is not in the series.
    """
    images = [v for v in volumes if v.kind in (MAGNITUDE, TRACE)]
    if not images:
        adc = [v for v in volumes if v.kind == "ADC"]
        if adc:
            return adc[0]
        kinds = sorted({v.kind for v in volumes})
        raise SeriesError(f"no magnitude image (the series holds: {', '.join(kinds)})")
    bvalues = sorted({v.bvalue for v in images if v.bvalue is not None})
    if not any(bvalues):
        return images[0]
    target = bvalues[-1] if wanted_bvalue == "highest" else float(wanted_bvalue)
    at = [v for v in images if v.bvalue is not None and abs(v.bvalue - target) < 1e-3]
    if not at:
        raise SeriesError(f"b-value {target:g} not in series (has {[f'{b:g}' for b in bvalues]})")
    if target == 0:
        return at[0]
    traces = [v for v in at if v.kind == TRACE]
    if traces:
        traces[0].trace = TRACE_READ
        return traces[0]
    if len(at) == 1:
        at[0].trace = TRACE_SINGLE
        return at[0]
    return geometric_mean(at)


def geometric_mean(directions: list[Volume]) -> Volume:
    """Return the trace computed from directional volumes at one b-value: the voxel-wise
    geometric mean (signal floored at a small positive value: the log needs it)."""
    arrays = [sitk.GetArrayViewFromImage(v.image) for v in directions]
    if len({a.shape for a in arrays}) > 1:
        raise SeriesError(
            f"directional images of different sizes {sorted({a.shape for a in arrays})}"
        )
    logs = np.zeros(arrays[0].shape, np.float64)
    for a in arrays:
        logs += np.log(np.maximum(a, 1e-3))
    image = sitk.GetImageFromArray(np.exp(logs / len(arrays)).astype(np.float32))
    image.CopyInformation(directions[0].image)
    first = directions[0]
    how = f"computed (geometric mean of {len(directions)} directional images)"
    label = f"trace b={first.bvalue:g} (computed)"
    seen = {id(f) for f in first.files}
    more = [f for v in directions[1:] for f in v.files if id(f) not in seen]
    return Volume(image, first.files, label, first.bvalue, TRACE, how, more)
