"""The slice table: one row per harmonized 2-D slice, the contract between ingest and training.

Pixels are stored as raw float16 bytes (row-major, ``height`` x ``width``) so that a table of a
few thousand slices stays small and reads back without per-pixel Python work.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

#: Column name -> Arrow type. Written down once; `write_slices` checks every table against it.
SLICE_SCHEMA = pa.schema(
    [
        ("patient", pa.string()),  # pseudonymous key, never a raw identifier
        ("center", pa.string()),
        ("label", pa.string()),  # class name from the config
        ("label_index", pa.int16()),  # position of label in config task.classes
        ("sequence", pa.string()),  # canonical sequence name (T2axi, DWI, ...)
        ("series", pa.string()),  # keyed hash of the SeriesInstanceUID
        ("slice_index", pa.int32()),  # index along the slice normal after harmonization
        ("slice_position_mm", pa.float32()),  # position along the slice normal
        ("tumour_fraction", pa.float32()),  # share of in-plane pixels inside the tumour mask
        ("height", pa.int16()),
        ("width", pa.int16()),
        ("pixels", pa.binary()),  # float16, height*width, normalized intensities
        ("vendor", pa.string()),
        ("field_strength", pa.float32()),
        ("spacing_row_mm", pa.float32()),  # original in-plane spacing
        ("spacing_col_mm", pa.float32()),
        ("slice_thickness_mm", pa.float32()),
    ]
)

PIXEL_DTYPE = np.float16

#: The wide table: every slice of a used series on a grid centered on the series (no annotation
#: needed) at the classifier's pixel spacing; the contract between ingest and the detector.
WIDE_SCHEMA = pa.schema(
    [
        ("patient", pa.string()),
        ("label", pa.string()),
        ("label_index", pa.int16()),
        ("sequence", pa.string()),
        ("series", pa.string()),
        ("slice_index", pa.int32()),  # the same index as in the slice table
        ("annotated", pa.bool_()),  # the annotation selects this slice (a row of the slice table)
        ("height", pa.int16()),
        ("width", pa.int16()),
        ("pixels", pa.binary()),  # float16, height*width, normalized as the slice table
        ("mask", pa.binary()),  # tumour mask, numpy.packbits of height*width booleans
        # where the slice lies in the patient (one exam's series share these coordinates):
        ("plane", pa.string()),  # canonical orientation: axial | sagittal | coronal
        ("pixel_mm", pa.float32()),  # in-plane spacing of the wide grid
        ("center_x_mm", pa.float64()),  # LPS position of the slice's centre
        ("center_y_mm", pa.float64()),
        ("center_z_mm", pa.float64()),
    ]
)


def empty_slices() -> pd.DataFrame:
    """Return an empty slice table with the contract's columns."""
    return SLICE_SCHEMA.empty_table().to_pandas()


def empty_wide() -> pd.DataFrame:
    """Return an empty wide table with the contract's columns."""
    return WIDE_SCHEMA.empty_table().to_pandas()


def encode_pixels(image: np.ndarray) -> bytes:
    """Return the stored form of one 2-D slice (float16 bytes)."""
    return np.ascontiguousarray(image, dtype=PIXEL_DTYPE).tobytes()


def quantize(images: np.ndarray) -> np.ndarray:
    """Return float32 images rounded as the tables store them (float16), so that a model reading
    an exam directly (``gynmri predict``) sees exactly what it was trained and evaluated on."""
    return np.asarray(images, dtype=PIXEL_DTYPE).astype(np.float32)


def write_slices(df: pd.DataFrame, path: str | Path) -> None:
    """Check ``df`` against SLICE_SCHEMA and write it as parquet.

    Raises:
        ValueError: a column is missing or extra, or pixel buffers do not match height*width.
    """
    _write(df, SLICE_SCHEMA, path)


def _write(df: pd.DataFrame, schema: pa.Schema, path: str | Path) -> None:
    """Check ``df`` against ``schema`` (columns, pixel buffer sizes) and write it as parquet."""
    missing = [n for n in schema.names if n not in df.columns]
    extra = [c for c in df.columns if c not in schema.names]
    if missing or extra:
        raise ValueError(f"table for {path}: missing columns {missing}, unexpected {extra}")
    expected = df["height"].astype(int) * df["width"].astype(int) * np.dtype(PIXEL_DTYPE).itemsize
    if len(df) and not (df["pixels"].map(len) == expected).all():
        raise ValueError(f"table for {path}: a pixel buffer does not match height*width")
    table = pa.Table.from_pandas(df[schema.names], schema=schema, preserve_index=False)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd")


def read_slices(paths: Iterable[str | Path], sequence: str | None = None) -> pd.DataFrame:
    """Return the concatenated slice tables, optionally only the rows of one sequence."""
    return _read_tables(paths, SLICE_SCHEMA, sequence)


def to_images(df: pd.DataFrame) -> np.ndarray:
    """Return the pixels of a slice table as a float32 array of shape (N, H, W)."""
    if df.empty:
        return np.zeros((0, 0, 0), np.float32)
    heights, widths = df["height"].unique(), df["width"].unique()
    if len(heights) != 1 or len(widths) != 1:
        raise ValueError(f"slices of different sizes cannot be stacked: {heights} x {widths}")
    h, w = int(heights[0]), int(widths[0])
    buf = b"".join(df["pixels"].tolist())
    return np.frombuffer(buf, dtype=PIXEL_DTYPE).reshape(len(df), h, w).astype(np.float32)


def write_wide(df: pd.DataFrame, path: str | Path) -> None:
    """Check ``df`` against WIDE_SCHEMA and write it as parquet."""
    _write(df, WIDE_SCHEMA, path)


def read_wide(paths: Iterable[str | Path], sequence: str | None = None) -> pd.DataFrame:
    """Return the concatenated wide tables, optionally only the rows of one sequence."""
    return _read_tables(paths, WIDE_SCHEMA, sequence)


def encode_mask(mask: np.ndarray) -> bytes:
    """Return the stored form of one 2-D boolean mask (packed bits)."""
    return np.packbits(np.asarray(mask, bool).ravel()).tobytes()


def to_masks(df: pd.DataFrame) -> np.ndarray:
    """Return the masks of a wide table as a bool array (N, H, W)."""
    if df.empty:
        return np.zeros((0, 0, 0), bool)
    h, w = int(df["height"].iloc[0]), int(df["width"].iloc[0])
    bits = [np.unpackbits(np.frombuffer(b, np.uint8), count=h * w) for b in df["mask"]]
    return np.stack(bits).reshape(len(df), h, w).astype(bool)


def _read_tables(
    paths: Iterable[str | Path], schema: pa.Schema, sequence: str | None
) -> pd.DataFrame:
    """Return parquet tables of ``schema`` concatenated, optionally one sequence's rows only."""
    filters = [("sequence", "=", sequence)] if sequence else None
    tables = [pq.read_table(p, schema=schema, filters=filters) for p in paths]
    if not tables:
        return schema.empty_table().to_pandas()
    return pa.concat_tables(tables).to_pandas()


def listed_tables(listing: str | Path) -> list[str]:
    """Return the table paths that a fold listing (``results/splits/<kind>/fold<k>_<part>.txt``,
    one path per line) names."""
    return Path(listing).read_text().split()
