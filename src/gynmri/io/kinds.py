"""What one image is: its kind (magnitude, phase, a field map, a derived map) and, for a
diffusion-weighted image, whether it is one gradient direction or the scanner's trace.

Scanners say it in different places. Enhanced multi-frame objects: per frame, in the MR Image
Frame Type macro (FrameType, whose 4th value is the derived pixel contrast, and
ComplexImageComponent), in Real World Value Mapping units (a B0 map in Hz) and in the MR
Diffusion macro (DiffusionDirectionality, gradient orientation). Classic files: ImageType
(Siemens 'M'/'P'/'ADC'/'TRACEW', Philips 'M_FFE'/'P_SE'/'B0 MAP'), GE's image type tag, and
the diffusion tags of each vendor (standard; GE 0019,10BB-BD; Siemens 0019,100E; Philips
2001,1004 'I' for the isotropic image; Canon's ImageComments 'b=1000(x,y,z)').
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from gynmri.io.dicom import comment_diffusion, floats, get, group_item, number

MAGNITUDE = "magnitude"
TRACE = "trace"
#: Kinds a volume is made from: magnitude images, the scanner's trace, and a stored ADC map.
IMAGE_KINDS = (MAGNITUDE, TRACE, "ADC")

# Derived pixel contrast (ImageType / FrameType tokens) -> kind. Checked before the complex
# component: a phase-derived field map is a field map, not a phase image.
_DERIVED = {
    "ADC": "ADC",
    "EADC": "exponential ADC",
    "EXP": "exponential ADC",
    "TRACEW": TRACE,
    "TRACE": TRACE,
    "ISOTROPIC": TRACE,
    "FA": "FA",
    "B0 MAP": "B0 field map",
    "B0": "B0 field map",
    "FIELD_MAP": "B0 field map",
    "FIELDMAP": "B0 field map",
    "T1 MAP": "T1 map",
    "T2 MAP": "T2 map",
    "SUBTRACTION": "subtraction",
}
# Complex component (ComplexImageComponent, or a vendor's one-letter token) -> kind.
_COMPLEX = {
    "MAGNITUDE": MAGNITUDE,
    "M": MAGNITUDE,
    "PHASE": "phase",
    "PHASE MAP": "phase",
    "P": "phase",
    "REAL": "real",
    "R": "real",
    "IMAGINARY": "imaginary",
    "I": "imaginary",
}
# GE's image type (0043,102F): 0 magnitude, 1 phase, 2 real, 3 imaginary.
_GE_IMAGE_TYPE = (0x0043, 0x102F)
_GE_KINDS = {1: "phase", 2: "real", 3: "imaginary"}
_UNITS_HZ = {"HZ"}


def _tokens(values: Iterable) -> list[str]:
    """Return ImageType/FrameType values upper-cased, with Philips' 'M_FFE' also as 'M'."""
    out = []
    for value in values:
        text = str(value).strip().upper()
        out.append(text)
        if "_" in text and text not in _DERIVED:
            out.extend(t for t in text.split("_") if t in _COMPLEX)
    return out


def image_kind(image_type: Iterable, complex_component=None, units=None, ge_type=None) -> str:
    """Return the kind of an image from its ImageType/FrameType values, ComplexImageComponent,
    real-world value units and GE image type: 'magnitude' unless something says otherwise."""
    tokens = _tokens(image_type or [])
    for token in tokens[2:]:  # values 1-2 are ORIGINAL/DERIVED and PRIMARY/SECONDARY
        if token in _DERIVED:
            return _DERIVED[token]
    if units is not None and str(units).strip().upper() in _UNITS_HZ:
        return "B0 field map"
    component = str(complex_component or "").strip().upper()
    if component in _COMPLEX:
        return _COMPLEX[component]
    if component == "MIXED":
        return "complex (mixed)"
    if ge_type in _GE_KINDS:
        return _GE_KINDS[ge_type]
    for token in tokens[2:]:
        if token in _COMPLEX:
            return _COMPLEX[token]
    return MAGNITUDE


def _first_item(ds, sequence: str):
    value = get(ds, sequence)
    return value[0] if value else None


def frame_kind(ds, frame: int | None) -> str:
    """Return the kind of one frame (enhanced: per-frame macros first) or of a classic file."""
    if frame is None:
        ge = get(ds, _GE_IMAGE_TYPE)
        try:
            ge = int(ge[0] if isinstance(ge, list | tuple) else ge) if ge is not None else None
        except (TypeError, ValueError):
            ge = None
        return image_kind(get(ds, "ImageType") or [], get(ds, "ComplexImageComponent"), None, ge)
    item = group_item(ds, frame, "MRImageFrameTypeSequence")
    types = get(item, "FrameType") if item is not None else None
    mapping = group_item(ds, frame, "RealWorldValueMappingSequence")
    units = get(_first_item(mapping, "MeasurementUnitsCodeSequence"), "CodeValue")
    return image_kind(
        types or get(ds, "ImageType") or [], get(item, "ComplexImageComponent"), units
    )


# GE's gradient direction, one component per private element.
_GE_GRADIENT = [(0x0019, 0x10BB), (0x0019, 0x10BC), (0x0019, 0x10BD)]
_SIEMENS_GRADIENT = (0x0019, 0x100E)
_PHILIPS_DIRECTION = (0x2001, 0x1004)  # 'I' isotropic, other letters a direction


def _gradient(ds, frame: int | None) -> np.ndarray | None:
    """Return the diffusion gradient direction if the header gives one (zero: none applied)."""
    if frame is not None:
        diffusion = group_item(ds, frame, "MRDiffusionSequence")
        inner = _first_item(diffusion, "DiffusionGradientDirectionSequence")
        found = floats(inner, "DiffusionGradientOrientation", 3)
        if found is not None:
            return found
    for source in ("DiffusionGradientOrientation", _SIEMENS_GRADIENT):
        found = floats(ds, source, 3)
        if found is not None:
            return found
    parts = [number(ds, tag) for tag in _GE_GRADIENT]
    if all(p is not None for p in parts):
        return np.array(parts)
    return comment_diffusion(ds)[1]


def diffusion_role(ds, frame: int | None) -> tuple[str, tuple | None]:
    """Return ('trace' | 'directional' | '', gradient) for a diffusion-weighted image.

    'trace': the header marks the scanner's isotropic image (DiffusionDirectionality ISOTROPIC,
    Philips 'I'), or a gradient direction is given and is zero at b > 0 (Philips' and GE's
    combined image). '': nothing says (one image per position is then read as the trace).
    """
    item = group_item(ds, frame, "MRDiffusionSequence") if frame is not None else None
    directionality = str(get(item, "DiffusionDirectionality", "") or "").upper()
    directionality = directionality or str(get(ds, "DiffusionDirectionality", "") or "").upper()
    gradient = _gradient(ds, frame)
    key = None if gradient is None else tuple(round(float(v), 4) for v in gradient)
    if directionality == "ISOTROPIC" or str(get(ds, _PHILIPS_DIRECTION, "")).upper() == "I":
        return TRACE, None
    if directionality in ("DIRECTIONAL", "BMATRIX"):
        return "directional", key
    if gradient is not None:
        return ("directional", key) if np.linalg.norm(gradient) > 1e-6 else (TRACE, None)
    return "", None


def _enhanced_index(frame) -> int | None:
    """Return the frame number of a frame of an enhanced multi-frame file, else None."""
    enhanced = "PerFrameFunctionalGroupsSequence" in frame.rec.header
    return frame.index if enhanced and not frame.mosaic else None


def mark_diffusion(frames: list) -> None:
    """Set, in place, the b-values and kinds of a series' frames (volumes.Frame objects).

    No b-value above 0: none at all (GE fills its b-value tag with 0 outside DWI). Otherwise
    frames without a b-value are b=0 (Canon tags only diffusion-weighted images), and each
    diffusion-weighted magnitude frame becomes 'trace' (see :func:`diffusion_role`) or keeps
    its gradient direction. Philips' classic trace image may only be DERIVED among ORIGINAL
    directional images at its b-value: that marks it too.
    """
    if not any(f.bvalue for f in frames):
        for f in frames:
            f.bvalue = None
        return
    weighted = []
    for f in frames:
        if f.bvalue is None:
            f.bvalue = 0.0
        elif f.bvalue > 0 and f.kind == MAGNITUDE:
            weighted.append(f)
    unknown = []
    for f in weighted:
        role, f.gradient = diffusion_role(f.rec.header, _enhanced_index(f))
        if role == TRACE:
            f.kind = TRACE
        elif role == "":
            unknown.append(f)
    derived = [f for f in unknown if _first_type(f) == "DERIVED"]
    if derived and any(_first_type(f) == "ORIGINAL" for f in weighted):
        for f in derived:
            f.kind = TRACE


def _first_type(frame) -> str:
    values = get(frame.rec.header, "ImageType") or [""]
    return str(values[0] if isinstance(values, list | tuple) else values).upper()
