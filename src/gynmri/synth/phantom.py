"""Synthetic female pelvis: anatomy and MR signal as functions of physical LPS position (mm).

Everything here is a pure function of (anatomy parameters, points): a series is rendered by
evaluating the phantom on that series' voxel centres, so every series of a patient (and its mask)
shows the same 3-D object in its own geometry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

B_HIGH = 1000.0  # s/mm^2, the diffusion weighting of the DWI series


@dataclass(frozen=True)
class Tissue:
    """Relative signal of one tissue: T2-weighted, DWI b=0 (fat suppressed) and ADC (1e-3 mm^2/s)."""

    t2: float
    b0: float
    adc: float


# Background tissues; indices into this tuple are the label values used while rendering.
TISSUES: dict[str, Tissue] = {
    "air": Tissue(0.0, 0.0, 0.0),
    "fat": Tissue(0.80, 0.04, 0.6),  # bright on T2, suppressed on DWI
    "muscle": Tissue(0.16, 0.18, 1.4),
    "bladder": Tissue(1.00, 0.95, 3.0),  # free water: very bright T2, dark b=1000
    "rectum": Tissue(0.25, 0.30, 1.2),
    "myometrium": Tissue(0.45, 0.45, 1.6),
    "endometrium": Tissue(0.85, 0.75, 1.0),  # restricted: bright on b=1000
}
_TISSUE_NAMES = tuple(TISSUES)


@dataclass(frozen=True)
class Appearance:
    """How a tumour looks: solid tissue, foci (cystic/necrotic), margin and texture."""

    solid: Tissue
    foci: Tissue
    n_foci: tuple[int, int]  # inclusive range of the number of foci
    lobulation: float  # amplitude of the radius modulation (0 = smooth ellipsoid)
    texture: float  # relative amplitude of the intra-tumour heterogeneity


@dataclass(frozen=True)
class ClassAppearance:
    """Typical and atypical (overlapping) appearance of one class, with the atypical share."""

    typical: Appearance
    atypical: Appearance
    p_atypical: float


_CYST = Tissue(0.95, 0.85, 2.6)
_NECROSIS = Tissue(0.90, 0.80, 2.4)

#: The one table mapping class name -> tumour appearance. Add new classes (ovarian) here.
CLASS_APPEARANCE: dict[str, ClassAppearance] = {
    "myoma": ClassAppearance(
        typical=Appearance(Tissue(0.18, 0.22, 1.15), _CYST, (0, 0), 0.03, 0.05),
        # degenerated myoma: oedematous/cystic, brighter T2 and moderate DWI
        # (cellular/degenerated myomas also restrict diffusion: the DWI overlap of real cohorts)
        atypical=Appearance(Tissue(0.38, 0.44, 0.92), _CYST, (2, 5), 0.08, 0.20),
        p_atypical=0.25,
    ),
    "sarcoma": ClassAppearance(
        typical=Appearance(Tissue(0.55, 0.60, 0.85), _NECROSIS, (3, 7), 0.22, 0.25),
        # smoother, darker sarcoma that resembles a cellular myoma
        atypical=Appearance(Tissue(0.32, 0.42, 1.10), _NECROSIS, (0, 2), 0.07, 0.12),
        p_atypical=0.25,
    ),
}


def check_label(label: str) -> None:
    """Return None if the class has an appearance, else raise ValueError naming it."""
    if label not in CLASS_APPEARANCE:
        raise ValueError(
            f"unknown class {label!r}: the synthetic generator knows {sorted(CLASS_APPEARANCE)}"
        )


def _rotation(rng: np.random.Generator) -> np.ndarray:
    """Random rotation matrix (columns = local axes) from a QR of a Gaussian matrix."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@dataclass(frozen=True)
class Anatomy:
    """Per-patient geometry and tumour parameters (all positions LPS mm)."""

    label: str
    atypical: bool
    appearance: Appearance
    body_center: np.ndarray
    body_axes: np.ndarray  # (x, y) semi-axes of the skin ellipse
    bladder_center: np.ndarray
    bladder_axes: np.ndarray
    rectum_center: np.ndarray
    uterus_center: np.ndarray
    uterus_rot: np.ndarray
    uterus_axes: np.ndarray
    tumour_center: np.ndarray
    tumour_rot: np.ndarray
    tumour_axes: np.ndarray
    lobe_dirs: np.ndarray
    lobe_amps: np.ndarray
    quad: np.ndarray  # symmetric trace-free matrix: low-order (l=2) radius modulation
    foci_centers: np.ndarray
    foci_radii: np.ndarray
    wave_k: np.ndarray  # texture plane waves (rad/mm)
    wave_phase: np.ndarray
    solid: Tissue  # per-patient jittered solid-tumour tissue

    @property
    def tumour_rmax(self) -> float:
        """Return an upper bound of the tumour radius (mm) including lobulation."""
        return float(self.tumour_axes.max() * (1.0 + 3.0 * self.appearance.lobulation + 0.05))


def make_anatomy(label: str, rng: np.random.Generator) -> Anatomy:
    """Return a random pelvis with a tumour of the given class."""
    check_label(label)
    cls = CLASS_APPEARANCE[label]
    atypical = bool(rng.random() < cls.p_atypical)
    app = cls.atypical if atypical else cls.typical
    body_center = np.array([rng.normal(0, 3), 10 + rng.normal(0, 3), 0.0])
    body_axes = np.array([rng.uniform(140, 165), rng.uniform(100, 120)])
    uterus_center = np.array([rng.normal(0, 6), 15 + rng.normal(0, 5), rng.normal(0, 5)])
    tilt = np.deg2rad(rng.uniform(15, 45))  # anteversion: long axis leans anteriorly (-y)
    long_axis = np.array([0.0, -np.sin(tilt), np.cos(tilt)])
    ap_axis = np.array([0.0, np.cos(tilt), np.sin(tilt)])
    uterus_rot = np.column_stack([[1.0, 0.0, 0.0], ap_axis, long_axis])
    uterus_axes = np.array([rng.uniform(38, 48), rng.uniform(26, 34), rng.uniform(45, 60)])
    diameter = rng.uniform(30, 80)
    tumour_axes = diameter / 2 * rng.uniform(0.85, 1.15, size=3)
    tumour_axes *= diameter / 2 / np.cbrt(np.prod(tumour_axes))  # keep the drawn volume diameter
    # attached to / inside the uterus: centre within half the uterine radius of its centre
    offset = _unit(rng, 1)[0] * rng.uniform(0.2, 0.6) * uterus_axes
    tumour_center = uterus_center + uterus_rot @ offset
    n_lobes = int(rng.integers(5, 10))
    quad = rng.normal(size=(3, 3))
    quad = (quad + quad.T) / 2
    quad -= np.eye(3) * np.trace(quad) / 3
    quad *= app.lobulation / max(np.abs(np.linalg.eigvalsh(quad)).max(), 1e-6)
    n_foci = int(rng.integers(app.n_foci[0], app.n_foci[1] + 1))
    r_mean = float(tumour_axes.mean())
    foci_centers = tumour_center + _unit(rng, n_foci) * rng.uniform(0, 0.55, (n_foci, 1)) * r_mean
    foci_radii = rng.uniform(0.15, 0.32, n_foci) * r_mean
    wave_k = _unit(rng, 5) * (2 * np.pi / rng.uniform(8, 22, (5, 1)))
    jitter = rng.uniform(0.9, 1.1, 3)
    solid = Tissue(app.solid.t2 * jitter[0], app.solid.b0 * jitter[1], app.solid.adc * jitter[2])
    return Anatomy(
        label=label,
        atypical=atypical,
        appearance=app,
        body_center=body_center,
        body_axes=body_axes,
        bladder_center=np.array([rng.normal(0, 4), -40 + rng.normal(0, 4), -35 + rng.normal(0, 5)]),
        bladder_axes=np.array([rng.uniform(35, 50), rng.uniform(22, 32), rng.uniform(22, 32)]),
        rectum_center=np.array([rng.normal(0, 4), 70 + rng.normal(0, 3), 0.0]),
        uterus_center=uterus_center,
        uterus_rot=uterus_rot,
        uterus_axes=uterus_axes,
        tumour_center=tumour_center,
        tumour_rot=_rotation(rng),
        tumour_axes=tumour_axes,
        lobe_dirs=_unit(rng, n_lobes),
        lobe_amps=rng.uniform(0.5, 1.0, n_lobes) * app.lobulation,
        quad=quad,
        foci_centers=foci_centers,
        foci_radii=foci_radii,
        wave_k=wave_k,
        wave_phase=rng.uniform(0, 2 * np.pi, 5),
        solid=solid,
    )


def _near(pts: np.ndarray, center: np.ndarray, radius: float) -> np.ndarray:
    """Return a bool array: points within the axis-aligned cube of half-size radius (cheap)."""
    out = np.abs(pts[..., 0] - np.float32(center[0])) < radius
    for i in (1, 2):
        out &= np.abs(pts[..., i] - np.float32(center[i])) < radius
    return out


def _in_ellipsoid(
    pts: np.ndarray, center: np.ndarray, rot: np.ndarray, axes: np.ndarray
) -> np.ndarray:
    """Return a bool array: points (..., 3) inside the rotated ellipsoid."""
    out = _near(pts, center, float(axes.max()))
    q = ((pts[out] - center.astype(np.float32)) @ rot.astype(np.float32)) / axes.astype(np.float32)
    out[out] = np.einsum("ni,ni->n", q, q) < 1.0
    return out


def tumour_inside(anat: Anatomy, pts: np.ndarray) -> np.ndarray:
    """Return a bool array: which points (..., 3) lie inside the (possibly lobulated) tumour."""
    out = np.zeros(pts.shape[:-1], dtype=bool)
    near = _near(pts, anat.tumour_center, anat.tumour_rmax)  # skip far points (speed)
    q = ((pts[near] - anat.tumour_center) @ anat.tumour_rot) / anat.tumour_axes
    rho = np.linalg.norm(q, axis=-1)
    u = q / np.maximum(rho, 1e-6)[:, None]
    # lobulation: bumps around random directions plus an l=2 spherical-harmonic-like term
    bumps = np.exp((u @ anat.lobe_dirs.T - 1.0) / 0.25) @ anat.lobe_amps
    quad = np.einsum("ni,ij,nj->n", u, anat.quad, u)
    radius = np.maximum(1.0 + bumps - anat.lobe_amps.sum() * 0.25 + quad, 0.6)
    out[near] = rho < radius
    return out


def tumour_fraction(anat: Anatomy, pts: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Return the share of slab sub-samples inside the tumour; pts (..., 3), offsets (s, 3)."""
    return np.mean([tumour_inside(anat, pts + o) for o in offsets], axis=0)


def _tissue_labels(anat: Anatomy, pts: np.ndarray) -> np.ndarray:
    """Label each point with an index into TISSUES (later structures override earlier ones)."""
    idx = {name: i for i, name in enumerate(_TISSUE_NAMES)}
    lab = np.zeros(pts.shape[:-1], dtype=np.int8)
    rel = (pts[..., :2] - anat.body_center[:2].astype(np.float32)) / anat.body_axes.astype(
        np.float32
    )
    r2 = np.einsum("...i,...i->...", rel, rel)
    lab[r2 < 1.0] = idx["fat"]  # subcutaneous fat rim
    lab[r2 < 0.85**2] = idx["muscle"]  # muscular pelvic wall
    lab[r2 < 0.65**2] = idx["fat"]  # pelvic fat around the organs
    rect = (pts[..., :2] - anat.rectum_center[:2].astype(np.float32)) / np.float32([18.0, 14.0])
    lab[np.einsum("...i,...i->...", rect, rect) < 1.0] = idx["rectum"]
    lab[_in_ellipsoid(pts, anat.bladder_center, np.eye(3), anat.bladder_axes)] = idx["bladder"]
    uterus = _in_ellipsoid(pts, anat.uterus_center, anat.uterus_rot, anat.uterus_axes)
    lab[uterus] = idx["myometrium"]
    endo_axes = anat.uterus_axes * np.array([0.55, 0.14, 0.72])
    lab[_in_ellipsoid(pts, anat.uterus_center, anat.uterus_rot, endo_axes)] = idx["endometrium"]
    return lab


def _signals(anat: Anatomy, pts: np.ndarray) -> tuple[np.ndarray, ...]:
    """Return noise-free T2, b=0 and b=1000 signal and the tumour membership at the points."""
    lab = _tissue_labels(anat, pts)
    table = np.array([[t.t2, t.b0, t.adc] for t in TISSUES.values()], dtype=np.float32)
    t2, b0, adc = (table[lab, i] for i in range(3))
    inside = tumour_inside(anat, pts)
    if inside.any():
        p = pts[inside]
        waves = np.sin(p @ anat.wave_k.T + anat.wave_phase).mean(axis=1)
        mod = 1.0 + anat.appearance.texture * waves * 1.6
        s = anat.solid
        tt2, tb0, tadc = s.t2 * mod, s.b0 * mod, np.full(len(p), s.adc) / np.sqrt(mod)
        if len(anat.foci_radii):
            dd = p[:, None, :] - anat.foci_centers[None]
            focal = (np.einsum("nfi,nfi->nf", dd, dd) < anat.foci_radii**2).any(axis=1)
            f = anat.appearance.foci
            tt2[focal], tb0[focal], tadc[focal] = f.t2, f.b0, f.adc
        t2[inside], b0[inside], adc[inside] = tt2, tb0, tadc
    b1000 = b0 * np.exp(-B_HIGH * adc * 1e-3)
    return t2, b0, b1000, inside


def render(anat: Anatomy, pts: np.ndarray, offsets: np.ndarray) -> dict[str, np.ndarray]:
    """Return slab-averaged noise-free 't2', 'b0', 'b1000' and tumour 'fraction' on points (..., 3)."""
    keys = ("t2", "b0", "b1000", "fraction")
    acc = {k: np.zeros(pts.shape[:-1], dtype=np.float32) for k in keys}
    for o in offsets:
        for key, val in zip(keys, _signals(anat, pts + o.astype(np.float32)), strict=True):
            acc[key] += val
    return {k: v / len(offsets) for k, v in acc.items()}


def bias_field(pts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return a smooth multiplicative coil-sensitivity field (about 0.75-1.25) on points (..., 3)."""
    g = rng.normal(0, 0.08, 3)
    quad = rng.uniform(0.05, 0.2)
    x = pts / 150.0
    field = 1.0 + x @ g + quad * (x[..., 0] ** 2 + x[..., 1] ** 2) - quad / 2
    return np.clip(field, 0.6, 1.4).astype(np.float32)


def rician(signal: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Return the magnitude of signal plus complex Gaussian noise of standard deviation sigma."""
    re = signal + rng.normal(0, sigma, signal.shape)
    im = rng.normal(0, sigma, signal.shape)
    return np.sqrt(re * re + im * im).astype(np.float32)


def adc_map(b0: np.ndarray, b1000: np.ndarray, floor: float) -> np.ndarray:
    """Return ADC in 1e-6 mm^2/s from b=0 and b=1000 magnitudes, 0 where b0 is below floor."""
    ratio = np.maximum(b0, 1e-6) / np.maximum(b1000, 1e-6)
    adc = np.log(np.maximum(ratio, 1.0)) / B_HIGH * 1e6
    return np.where(b0 > floor, np.clip(adc, 0, 4000), 0).astype(np.float32)


@dataclass(frozen=True)
class SliceGrid:
    """A stack of parallel slices: DICOM-style in-plane geometry plus slice centres (LPS mm)."""

    rows: int
    cols: int
    pixel_spacing: tuple[float, float]  # DICOM order: (between rows, between columns)
    row_dir: np.ndarray  # IOP[0:3]: direction of increasing column index
    col_dir: np.ndarray  # IOP[3:6]: direction of increasing row index
    positions: np.ndarray  # (n, 3) ImagePositionPatient, sorted ascending along the normal
    thickness: float
    spacing: float  # SpacingBetweenSlices (centre to centre)

    @property
    def normal(self) -> np.ndarray:
        """Return the slice normal row_dir x col_dir."""
        return np.cross(self.row_dir, self.col_dir)

    def points(self) -> np.ndarray:
        """Return voxel centres as an (n, rows, cols, 3) float32 array."""
        r = np.arange(self.rows, dtype=np.float32)[:, None, None] * self.pixel_spacing[0]
        c = np.arange(self.cols, dtype=np.float32)[None, :, None] * self.pixel_spacing[1]
        plane = c * self.row_dir.astype(np.float32) + r * self.col_dir.astype(np.float32)
        return (self.positions[:, None, None, :].astype(np.float32) + plane[None]).astype(
            np.float32
        )

    def slab_offsets(self, n: int = 3) -> np.ndarray:
        """Return (n, 3) offsets along the normal at the centres of n equal parts of the slab."""
        t = (np.arange(n) + 0.5) / n - 0.5
        return (t[:, None] * self.thickness * self.normal[None]).astype(np.float32)


def make_grid(
    center: np.ndarray,
    row_dir: tuple[float, float, float],
    col_dir: tuple[float, float, float],
    matrix: int,
    fov: float,
    n_slices: int,
    thickness: float,
    spacing: float,
) -> SliceGrid:
    """Return a square-matrix slice stack centred on `center` (LPS mm)."""
    rd, cd = np.asarray(row_dir, float), np.asarray(col_dir, float)
    normal = np.cross(rd, cd)
    px = round(fov / matrix, 6)  # DS-safe; the same rounded value is used everywhere
    half = (matrix - 1) / 2 * px
    k = (np.arange(n_slices) - (n_slices - 1) / 2) * spacing
    first = np.asarray(center, float) - half * rd - half * cd
    positions = np.round(first[None] + k[:, None] * normal[None], 4)
    return SliceGrid(matrix, matrix, (px, px), rd, cd, positions, thickness, spacing)
