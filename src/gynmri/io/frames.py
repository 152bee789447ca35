"""One file's 2-D frames: a slice file, one tile of a Siemens mosaic or a United Imaging grid,
one frame of an enhanced multi-frame object; each with its geometry, kind and acquisition keys
(what :mod:`gynmri.io.volumes` stacks into volumes)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pydicom

from gynmri.io.dicom import FileRecord, bvalue, csa_image, floats, get, group_item, number
from gynmri.io.kinds import MAGNITUDE, frame_kind


class SeriesError(ValueError):
    """A series cannot be stacked into a volume (the message says why)."""


@dataclass
class Frame:
    """One 2-D image of a series with its geometry and the keys that place it in a volume."""

    rec: FileRecord
    index: int  # frame of a multi-frame file, tile of a mosaic, else 0
    position: np.ndarray  # LPS position of the center of the first voxel
    orientation: np.ndarray  # 6 direction cosines (row, column)
    spacing: tuple[float, float]  # (between rows, between columns)
    shape: tuple[int, int]  # (rows, columns)
    bvalue: float | None
    echo: float
    order: tuple  # acquisition order: sorts repeats of one position
    slope: float = 1.0
    intercept: float = 0.0
    mosaic: int = 0  # tiles per row when the frame is a tile of a mosaic or grid
    kind: str = MAGNITUDE
    gradient: tuple | None = None  # diffusion direction of a directional image, when given


def _seconds(tm) -> float:
    """Return a DICOM TM ('HHMMSS.frac') as seconds of the day, 0 when absent or malformed."""
    text = str(tm or "").replace(":", "")
    try:
        return int(text[:2] or 0) * 3600 + int(text[2:4] or 0) * 60 + float(text[4:] or 0)
    except ValueError:
        return 0.0


def _order(ds: pydicom.Dataset, temporal: float | None = None) -> tuple:
    return (
        temporal if temporal is not None else number(ds, "TemporalPositionIdentifier", 0.0),
        number(ds, "AcquisitionNumber", 0.0),
        _seconds(get(ds, "AcquisitionTime")),
        number(ds, "TriggerTime", 0.0),
        number(ds, "InstanceNumber", 0.0),
    )


def _rescale(ds) -> tuple[float, float]:
    return number(ds, "RescaleSlope", 1.0) or 1.0, number(ds, "RescaleIntercept", 0.0)


def frames_of(rec: FileRecord) -> list[Frame]:
    """Return the 2-D frames of one file; SeriesError when its geometry is missing."""
    ds, name = rec.header, rec.path.name
    shape = (int(number(ds, "Rows", 0)), int(number(ds, "Columns", 0)))
    n_frames = int(number(ds, "NumberOfFrames", 1) or 1)
    echo = number(ds, "EchoNumbers", 1.0)
    if "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds:
        frames = []
        for k in range(n_frames):
            pos = floats(group_item(ds, k, "PlanePositionSequence"), "ImagePositionPatient", 3)
            iop = floats(
                group_item(ds, k, "PlaneOrientationSequence"), "ImageOrientationPatient", 6
            )
            spacing = floats(group_item(ds, k, "PixelMeasuresSequence"), "PixelSpacing", 2)
            if pos is None or iop is None or spacing is None:
                raise SeriesError(f"{name}: multi-frame without per-frame geometry (frame {k + 1})")
            content = group_item(ds, k, "FrameContentSequence")
            pixel = group_item(ds, k, "PixelValueTransformationSequence")
            slope, intercept = _rescale(pixel if pixel is not None else ds)
            temporal = number(content, "TemporalPositionIndex")
            frames.append(
                Frame(
                    rec,
                    k,
                    pos,
                    iop,
                    tuple(spacing),
                    shape,
                    bvalue(ds, k),
                    echo,
                    (*_order(ds, temporal), number(content, "InStackPositionNumber", 0.0), k),
                    slope,
                    intercept,
                    kind=frame_kind(ds, k),
                )
            )
        return frames
    if n_frames > 1:
        raise SeriesError(f"{name}: multi-frame ({n_frames} frames) without per-frame geometry")
    pos = floats(ds, "ImagePositionPatient", 3)
    iop = floats(ds, "ImageOrientationPatient", 6)
    spacing = floats(ds, "PixelSpacing", 2)
    if pos is None or iop is None or spacing is None:
        raise SeriesError(
            f"{name}: no geometry (ImagePositionPatient/ImageOrientationPatient/PixelSpacing)"
        )
    slope, intercept = _rescale(ds)
    frame = Frame(
        rec,
        0,
        pos,
        iop,
        tuple(spacing),
        shape,
        bvalue(ds),
        echo,
        (*_order(ds), 0, 0),
        slope,
        intercept,
        kind=frame_kind(ds, None),
    )
    image_type = str(get(ds, "ImageType", "")).upper()
    if "VFRAME" in image_type:
        return _grid_tiles(frame, ds)
    if "MOSAIC" not in image_type:
        return [frame]
    return _mosaic_tiles(frame, ds)


def _mosaic_tiles(frame: Frame, ds: pydicom.Dataset) -> list[Frame]:
    """Return the tiles of a Siemens mosaic as frames (tile count and normal from the CSA)."""
    csa = csa_image(ds)
    count = int(float((csa.get("NumberOfImagesInMosaic") or [0])[0]))
    if count < 1:
        raise SeriesError(f"{frame.rec.path.name}: mosaic without NumberOfImagesInMosaic (CSA)")
    side = int(np.ceil(np.sqrt(count)))
    rows, cols = frame.shape[0] // side, frame.shape[1] // side
    row_dir, col_dir = frame.orientation[:3], frame.orientation[3:]
    # The mosaic's IPP is the corner of the whole tile grid seen as one image; the slices are
    # centered in it (as nibabel's MosaicWrapper.image_position).
    first = (
        frame.position
        + row_dir * frame.spacing[1] * (frame.shape[1] - cols) / 2
        + col_dir * frame.spacing[0] * (frame.shape[0] - rows) / 2
    )
    normal = np.cross(row_dir, col_dir)
    csa_normal = csa.get("SliceNormalVector")
    if csa_normal and len(csa_normal) == 3:
        normal = np.array([float(v) for v in csa_normal])  # tiles follow Siemens' slice normal
    step = number(ds, "SpacingBetweenSlices") or number(ds, "SliceThickness") or 1.0
    b = frame.bvalue
    if b is None and csa.get("B_value"):
        b = float(csa["B_value"][0])
    return _tiles(frame, [first + k * step * normal for k in range(count)], (rows, cols), b, side)


def _tiles(frame: Frame, positions: list, shape: tuple[int, int], b, per_row: int) -> list[Frame]:
    """Return the tiles of one mosaic or grid image: tile k at ``positions[k]``, row-major,
    ``per_row`` tiles per row of the image, each ``shape`` pixels."""
    return [
        Frame(
            frame.rec,
            k,
            position,
            frame.orientation,
            frame.spacing,
            shape,
            b,
            frame.echo,
            frame.order[:-1] + (k,),
            frame.slope,
            frame.intercept,
            per_row,
            frame.kind,
        )
        for k, position in enumerate(positions)
    ]


# United Imaging's grid ("VFRAME", their mosaic): tile count and per-tile positions are private.
_UIH_TILES = (0x0065, 0x1050)
_UIH_FRAMES = (0x0065, 0x1051)


def _grid_tiles(frame: Frame, ds: pydicom.Dataset) -> list[Frame]:
    """Return the tiles of a United Imaging grid image as frames.

    The grid holds ``n`` slices in ceil(sqrt(n)) columns and ceil(n / columns) rows; each slice's
    ImagePositionPatient is in the private VFrame sequence (0065,1051), as dcm2niix reads it.
    """
    name = frame.rec.path.name
    count = int(number(ds, _UIH_TILES, 0) or 0)
    items = get(ds, _UIH_FRAMES) or []
    if count < 1:
        raise SeriesError(
            f"{name}: United Imaging grid image (ImageType VFRAME) without its slice count "
            "(private 0065,1050): cannot be split into slices"
        )
    positions = [floats(item, "ImagePositionPatient", 3) for item in items]
    if len(positions) != count or any(p is None for p in positions):
        raise SeriesError(
            f"{name}: United Imaging grid image (ImageType VFRAME) without the position of each "
            f"of its {count} slices (private sequence 0065,1051): cannot be stacked"
        )
    cols = int(np.ceil(np.sqrt(count)))
    rows_of_tiles = int(np.ceil(count / cols))
    shape = (frame.shape[0] // rows_of_tiles, frame.shape[1] // cols)
    b = frame.bvalue if frame.bvalue is not None else number(ds, (0x0065, 0x1009))
    return _tiles(frame, positions, shape, b, cols)
