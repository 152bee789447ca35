"""Series -> volumes: single-frame slices, Siemens mosaics and enhanced multi-frame objects.

Every series is first expanded into 2-D frames (a slice file, one tile of a mosaic, one frame
of a multi-frame object), each with its own geometry, kind (magnitude, phase, field map, trace,
ADC... see :mod:`gynmri.io.kinds`) and acquisition keys. Frames are split into volumes by kind,
b-value and echo, then by repetition at the same position along the slice normal (time points,
repeats, diffusion directions). Volumes follow SimpleITK's convention:
LPS millimetres, index (x, y, z) = (column, row, slice), direction columns = (row direction,
column direction, row x column); slices are ordered along that normal, never by
InstanceNumber or file name.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pydicom
import SimpleITK as sitk

from gynmri.io.dicom import FileRecord, Series, get, number
from gynmri.io.frames import Frame, SeriesError, frames_of
from gynmri.io.kinds import MAGNITUDE, mark_diffusion

__all__ = ["SeriesError", "Volume", "build_volumes", "decode", "plan_frames", "volume_kinds"]

# Frames closer than this along the normal share a position (scanners jitter in the 1e-4 mm).
_SAME_POSITION_MM = 0.05


@dataclass
class Volume:
    """One volume of a series: the image (float32 signal, LPS) and the files it came from."""

    image: sitk.Image
    files: list[FileRecord]
    label: str
    bvalue: float | None
    kind: str = MAGNITUDE  # see gynmri.io.kinds
    # DWI volume chosen at a b-value: how its trace was had ('read', 'computed ...'), else ""
    trace: str = ""
    # files also read into it besides ``files`` (one per slice): the other directions of a
    # computed trace
    more_files: list[FileRecord] = field(default_factory=list)


# Native (uncompressed) little-endian syntaxes: uid -> bytes of the Pixel Data element header.
_NATIVE = {"1.2.840.10008.1.2": 8, "1.2.840.10008.1.2.1": 12}


def _native(rec: FileRecord) -> np.ndarray | None:
    """Return the pixels of a native little-endian grey-scale file read straight from disk.

    None when the fast path does not apply (pydicom then decodes the file).
    """
    ds, offset = rec.header, rec.pixel_offset
    syntax = str(get(getattr(ds, "file_meta", None), "TransferSyntaxUID", ""))
    bits, stored = number(ds, "BitsAllocated"), number(ds, "BitsStored")
    if offset is None or syntax not in _NATIVE or number(ds, "SamplesPerPixel", 1) != 1:
        return None
    signed = number(ds, "PixelRepresentation", 0) == 1
    if bits not in (8, 16, 32) or (signed and stored != bits):
        return None  # signed values in fewer bits need sign extension: leave it to pydicom
    shape = (int(number(ds, "NumberOfFrames", 1) or 1), *map(int, (ds.Rows, ds.Columns)))
    dtype = np.dtype(f"<{'i' if signed else 'u'}{int(bits) // 8}")
    size = int(np.prod(shape)) * dtype.itemsize
    head = _NATIVE[syntax]
    with open(rec.path, "rb") as fh:
        fh.seek(offset)
        data = fh.read(head + size)
    length = int.from_bytes(data[head - 4 : head], "little")
    if len(data) < head + size or length < size or length == 0xFFFFFFFF:
        return None
    pixels = np.frombuffer(data, dtype, offset=head).reshape(shape)
    if not signed and stored is not None and stored < bits and pixels.max() >> int(stored):
        return None  # bits above BitsStored set (overlays): let pydicom handle them
    return pixels


def decode(rec: FileRecord) -> np.ndarray:
    """Return a file's stored pixel values as (frames, rows, columns[, samples]).

    Native grey-scale files are read straight from disk, the others decoded by pydicom. Not by
    dicomsdl: it crashes the process on truncated or corrupt compressed frames, and decodes some
    files otherwise than pydicom (32-bit as 16-bit, lossy JPEG, J2K pixel representation).

    Raises SeriesError naming the file and its transfer syntax when they cannot be decoded.
    """
    try:
        pixels = _native(rec)
    except Exception:  # any surprise in the fast path: decode the regular way
        pixels = None
    if pixels is not None:
        return pixels
    try:
        ds = pydicom.dcmread(rec.path, force=True)
        syntax = ds.file_meta.get("TransferSyntaxUID")
    except Exception as err:
        raise SeriesError(f"{rec.path.name}: unreadable ({type(err).__name__})") from None
    n_frames = int(number(ds, "NumberOfFrames", 1) or 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pixels = ds.pixel_array
    except Exception as err:  # truncated data, missing decoder: name file and syntax
        what = syntax.name if syntax else "no transfer syntax"
        text = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
        raise SeriesError(f"{rec.path.name}: pixel data unreadable ({what}: {text})") from None
    samples = int(number(ds, "SamplesPerPixel", 1) or 1)
    if n_frames == 1:
        pixels = pixels[None]
    if pixels.ndim != (4 if samples > 1 else 3):
        raise SeriesError(f"{rec.path.name}: pixel data of unexpected shape {pixels.shape}")
    return pixels


def _tile(pixels: np.ndarray, f: Frame) -> np.ndarray:
    if not f.mosaic:
        return pixels[f.index]
    r, c = divmod(f.index, f.mosaic)
    rows, cols = f.shape
    return pixels[0, r * rows : (r + 1) * rows, c * cols : (c + 1) * cols]


def _split(frames: list[Frame], normal: np.ndarray) -> list[list[Frame]]:
    """Return the frames split into volumes, each ordered along the normal."""
    groups: dict[tuple, list[Frame]] = {}
    for f in frames:
        b = None if f.bvalue is None else round(f.bvalue, 3)
        groups.setdefault((f.kind, b, f.echo), []).append(f)
    volumes = []
    for members in groups.values():
        members.sort(key=lambda f: float(f.position @ normal))
        stacks: list[list[Frame]] = [[members[0]]]
        for f in members[1:]:
            if abs(float((f.position - stacks[-1][0].position) @ normal)) <= _SAME_POSITION_MM:
                stacks[-1].append(f)
            else:
                stacks.append([f])
        counts = sorted({len(s) for s in stacks})
        if len(counts) > 1:
            raise SeriesError(
                f"repeated positions of unequal counts ({counts[0]}-{counts[-1]} frames per "
                f"position over {len(stacks)} positions): incomplete or mixed volumes"
            )
        for s in stacks:
            s.sort(key=lambda f: f.order)
        volumes.extend([s[t] for s in stacks] for t in range(counts[0]))
    volumes.sort(key=lambda v: min(f.order for f in v))  # acquisition order
    return volumes


def _labels(volumes: list[list[Frame]]) -> list[str]:
    """Return a label per volume: its kind (when not all are magnitude), echo, b-value."""
    kinds = {v[0].kind for v in volumes}
    if len(volumes) == 1 and kinds == {MAGNITUDE}:
        return [""]
    echoes = len({v[0].echo for v in volumes}) > 1
    labels, seen = [], {}
    for k, v in enumerate(volumes, 1):
        parts = [v[0].kind] if kinds != {MAGNITUDE} else []
        parts += [f"echo {v[0].echo:g}"] if echoes else []
        parts += [f"b={v[0].bvalue:g}"] if v[0].bvalue is not None else []
        text = " ".join(parts) if v[0].bvalue is not None or kinds != {MAGNITUDE} else ""
        text = text or " ".join([*parts, f"volume {k}"])
        seen[text] = seen.get(text, 0) + 1
        labels.append(text if seen[text] == 1 else f"{text} #{seen[text]}")
    return labels


def _geometry(frames: list[Frame], normal: np.ndarray, tilt_tag: float) -> tuple[float, list]:
    """Return the slice spacing of one volume and warnings; SeriesError if it cannot stack."""
    warns = []
    along = np.array([f.position @ normal for f in frames])
    steps = np.diff(along)
    if len(steps) == 0:
        ds = frames[0].rec.header
        step = number(ds, "SpacingBetweenSlices") or number(ds, "SliceThickness") or 1.0
        return float(step), warns
    spacing = float((along[-1] - along[0]) / (len(along) - 1))
    median = float(np.median(steps))
    if np.max(np.abs(steps - median)) > 0.01 * median + 1e-3:
        text = f"uneven slice spacing {steps.min():.1f}-{steps.max():.1f} mm"
        if steps.max() > 1.5 * steps.min():
            raise SeriesError(f"{text} (missing or overlapping slices): cannot be stacked")
        warns.append(text)
    shift = frames[-1].position - frames[0].position
    angle = np.degrees(np.arccos(min(1.0, abs(shift @ normal) / max(np.linalg.norm(shift), 1e-9))))
    if angle > 0.1 or abs(tilt_tag) > 0.1:
        warns.append(f"gantry tilt {max(angle, abs(tilt_tag)):.1f} deg (stacked along the normal)")
    return spacing, warns


def plan_frames(series: Series) -> tuple[list[Frame], np.ndarray]:
    """Return the frames of a series, each with its kind (a diffusion-weighted image: directional
    or trace), and the unit slice normal, from the headers alone.

    Raises SeriesError: no geometry, mixed orientations, matrices or pixel spacing.
    """
    frames = [f for rec in series.files for f in frames_of(rec)]
    if not frames:
        raise SeriesError("no images")
    mark_diffusion(frames)
    first = frames[0]
    if np.max(np.abs([f.orientation - first.orientation for f in frames])) > 1e-3:
        raise SeriesError("mixed orientations in one series")
    if len({f.shape for f in frames}) > 1:
        raise SeriesError(f"frames of different matrix sizes {sorted({f.shape for f in frames})}")
    if np.max(np.abs(np.subtract([f.spacing for f in frames], first.spacing))) > 1e-3:
        raise SeriesError("frames of different pixel spacing")
    normal = np.cross(first.orientation[:3], first.orientation[3:])
    if np.linalg.norm(normal) < 0.5:
        raise SeriesError("degenerate ImageOrientationPatient")
    return frames, normal / np.linalg.norm(normal)


def volume_kinds(series: Series) -> str:
    """Return what the volumes of a series are, from the headers alone, as QC lists them:
    'magnitude b=0; magnitude b=1000 x3; trace b=1000' ('' when they cannot be told)."""
    try:
        frames, normal = plan_frames(series)
        groups = _split(frames, normal)
    except SeriesError:
        return ""
    counts: dict[str, int] = {}
    for v in groups:
        b = v[0].bvalue
        text = v[0].kind + (f" b={b:g}" if b is not None else "")
        counts[text] = counts.get(text, 0) + 1
    return "; ".join(k if n == 1 else f"{k} x{n}" for k, n in counts.items())


def build_volumes(series: Series) -> tuple[list[Volume], list[str]]:
    """Return every volume of a series (acquisition order) and warnings about its geometry.

    Raises:
        SeriesError: no geometry, mixed orientations or matrices, volumes that cannot be
            stacked (uneven spacing, unequal repeats), unreadable pixel data.
    """
    frames, normal = plan_frames(series)
    first = frames[0]
    samples = int(number(first.rec.header, "SamplesPerPixel", 1) or 1)
    if samples != 1:
        raise SeriesError(f"color images (SamplesPerPixel {samples}) not supported")
    groups = _split(frames, normal)
    tilt = max(abs(number(r.header, "GantryDetectorTilt", 0.0)) for r in series.files)
    pixels: dict[int, np.ndarray] = {}  # decoded once per file, shared by its volumes
    volumes, warns = [], []
    for label, members in zip(_labels(groups), groups, strict=True):
        spacing_z, geometry_warnings = _geometry(members, normal, tilt)
        warns.extend(w for w in geometry_warnings if w not in warns)
        array = np.empty((len(members), *first.shape), np.float32)
        for z, f in enumerate(members):
            if id(f.rec) not in pixels:
                pixels[id(f.rec)] = decode(f.rec)
            plane = _tile(pixels[id(f.rec)], f)
            if plane.shape != f.shape:
                raise SeriesError(f"{f.rec.path.name}: pixel data of shape {plane.shape}")
            np.multiply(plane, f.slope, out=array[z], casting="unsafe")
            array[z] += f.intercept
        image = sitk.GetImageFromArray(array)  # array (z, y, x) -> image (x, y, z)
        image.SetSpacing((first.spacing[1], first.spacing[0], spacing_z))
        image.SetOrigin(tuple(float(v) for v in members[0].position))
        direction = np.column_stack([first.orientation[:3], first.orientation[3:], normal])
        image.SetDirection(tuple(direction.ravel()))
        files = list({id(f.rec): f.rec for f in members}.values())
        volumes.append(Volume(image, files, label, members[0].bvalue, members[0].kind))
    return volumes, warns
