"""Synthetic female pelvis: anatomy and MR signal as functions of physical LPS position (mm).

Everything here is a pure function of (anatomy parameters, points): a series is rendered by
evaluating the phantom on that series' voxel centers, so every series of a patient (and its mask)
shows the same 3-D object in its own geometry.

Two kinds of tumour share one rendering path: uterine tumours (``site="uterus"``: a solid mass
with foci, inside the uterus) and adnexal masses (``site="adnexa"``: a cyst lateral to a normal
uterus, with wall, septa, papillary projections, a solid component and optional ascites).

Each tissue also has a T1 signal, a fat fraction and a gadolinium enhancement, from which
:func:`render_contrasts` gives T1, fat-suppressed T1 and T2, and contrast-enhanced T1; the T2 and
diffusion signals of :func:`render` do not depend on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

B_HIGH = 1000.0  # s/mm^2, the diffusion weighting of the DWI series


FAT_SUPPRESSION = 0.9  # share of the fat signal removed by fat suppression (SPAIR, Dixon...)


@dataclass(frozen=True)
class Tissue:
    """Relative signal of one tissue: T2-weighted, DWI b=0 (fat suppressed) and ADC (1e-3 mm^2/s);
    then T1-weighted signal, fat fraction (what fat suppression removes) and gadolinium
    enhancement (signal added to T1 on contrast-enhanced series)."""

    t2: float
    b0: float
    adc: float
    t1: float = 0.0
    fat: float = 0.0
    gd: float = 0.0


# Background tissues; indices into this tuple are the label values used while rendering.
TISSUES: dict[str, Tissue] = {
    "air": Tissue(0.0, 0.0, 0.0),
    # bright on T2 and T1, suppressed on DWI and on every fat-suppressed series
    "fat": Tissue(0.80, 0.04, 0.6, t1=0.95, fat=1.0),
    "muscle": Tissue(0.16, 0.18, 1.4, t1=0.35, gd=0.12),
    # free water: very bright T2, dark b=1000, dark T1, no enhancement (early phase)
    "bladder": Tissue(1.00, 0.95, 3.0, t1=0.08),
    "rectum": Tissue(0.25, 0.30, 1.2, t1=0.30, gd=0.25),
    "myometrium": Tissue(0.45, 0.45, 1.6, t1=0.38, gd=0.55),  # intermediate T1, enhances strongly
    "endometrium": Tissue(0.85, 0.75, 1.0, t1=0.32, gd=0.25),  # restricted: bright on b=1000
    "ascites": Tissue(1.00, 0.95, 3.0, t1=0.06),  # free pelvic fluid: like urine
}
_TISSUE_NAMES = tuple(TISSUES)


@dataclass(frozen=True)
class Appearance:
    """How a tumour looks: solid tissue, foci (cystic/necrotic), margin and texture.

    The fields after ``texture`` describe adnexal (cystic) masses; their defaults give the solid
    uterine tumour. With ``fluid`` set, the mass is a cyst: ``fluid`` inside, a wall of soft
    tissue, planar septa, papillary projections (small nodules on the inner wall) and a mural
    solid component, the last two (and the foci, then necrosis) in ``solid`` tissue.
    """

    solid: Tissue
    foci: Tissue
    n_foci: tuple[int, int]  # inclusive range of the number of foci
    lobulation: float  # amplitude of the radius modulation (0 = smooth ellipsoid)
    texture: float  # relative amplitude of the intra-tumour heterogeneity
    site: str = "uterus"  # "uterus" (in the uterus) | "adnexa" (beside a normal uterus)
    fluid: Tissue | None = None  # cyst content; None: a solid tumour (no cyst)
    septum: Tissue | None = None  # cyst wall and septa; None: the solid tissue
    wall: tuple[float, float] = (0.0, 0.0)  # range of the cyst wall thickness (mm)
    septa: tuple[int, int] = (0, 0)  # inclusive range of the number of planar septa
    septum_mm: tuple[float, float] = (1.0, 2.0)  # range of the septum thickness (mm)
    papillae: tuple[int, int] = (0, 0)  # inclusive range of the number of papillary projections
    papilla_mm: tuple[float, float] = (3.0, 8.0)  # range of their radius (mm)
    solid_share: tuple[float, float] = (0.0, 0.0)  # range of the solid component's volume share
    ascites: float = 0.0  # probability of free fluid in the pelvis


@dataclass(frozen=True)
class ClassAppearance:
    """Typical and atypical (overlapping) appearance of one class, with the atypical share."""

    typical: Appearance
    atypical: Appearance
    p_atypical: float


# T1 and enhancement (t1=, gd=) follow the usual reading: fluid and necrosis dark and not
# enhancing; fibrous tissue enhancing little; papillae and carcinoma enhancing, carcinoma most.
_CYST = Tissue(0.95, 0.85, 2.6, t1=0.10)
_NECROSIS = Tissue(0.90, 0.80, 2.4, t1=0.14, gd=0.02)
# adnexal masses
# simple cyst fluid: very bright T2, dark b=1000 (high ADC)
_SEROUS = Tissue(0.98, 0.88, 2.9, t1=0.06)
# proteinaceous/mucinous locules: a little less bright on T2, a little brighter on T1
_FLUID = Tissue(0.94, 0.85, 2.7, t1=0.18)
# thin wall and septa: soft tissue, not restricted
_FIBROUS = Tissue(0.30, 0.32, 1.6, t1=0.34, gd=0.30)
# fibroma/cystadenofibroma: T2-dark, NOT restricted, weak (delayed) enhancement
_FIBROMA = Tissue(0.15, 0.22, 1.3, t1=0.30, gd=0.15)
# borderline papillae: intermediate T2, moderate DWI
_PAPILLARY = Tissue(0.55, 0.58, 1.25, t1=0.34, gd=0.40)
# solid carcinoma: intermediate T2, restricted (low ADC), strong enhancement
_CARCINOMA = Tissue(0.55, 0.72, 0.80, t1=0.38, gd=0.70)

#: The one table mapping class name -> tumour appearance. Add new classes (ovarian) here.
CLASS_APPEARANCE: dict[str, ClassAppearance] = {
    "myoma": ClassAppearance(
        # T1 like muscle, homogeneous enhancement (little texture)
        typical=Appearance(Tissue(0.18, 0.22, 1.15, t1=0.34, gd=0.45), _CYST, (0, 0), 0.03, 0.05),
        # degenerated myoma: oedematous/cystic, brighter T2 and moderate DWI, poor enhancement
        # (cellular/degenerated myomas also restrict diffusion: the DWI overlap of real cohorts)
        atypical=Appearance(Tissue(0.38, 0.44, 0.92, t1=0.30, gd=0.15), _CYST, (2, 5), 0.08, 0.20),
        p_atypical=0.25,
    ),
    "sarcoma": ClassAppearance(
        # heterogeneous enhancement (texture) around non-enhancing necrotic foci
        typical=Appearance(
            Tissue(0.55, 0.60, 0.85, t1=0.40, gd=0.60), _NECROSIS, (3, 7), 0.22, 0.25
        ),
        # smoother, darker sarcoma that resembles a cellular myoma
        atypical=Appearance(
            Tissue(0.32, 0.42, 1.10, t1=0.36, gd=0.45), _NECROSIS, (0, 2), 0.07, 0.12
        ),
        p_atypical=0.25,
    ),
    # ovarian task: adnexal masses (O-RADS-like descriptions)
    "benign": ClassAppearance(
        # unilocular/few-locular simple cyst: thin smooth wall, 0-1 thin septum, no solid tissue
        typical=Appearance(
            _FIBROMA,
            _NECROSIS,
            (0, 0),
            0.02,
            0.05,
            site="adnexa",
            fluid=_SEROUS,
            septum=_FIBROUS,
            wall=(1.5, 2.5),
            septa=(0, 1),
            septum_mm=(1.0, 2.0),
            ascites=0.03,
        ),
        # fibroma/cystadenofibroma: thicker wall, partly to wholly solid, T2-dark, not restricted
        atypical=Appearance(
            _FIBROMA,
            _NECROSIS,
            (0, 0),
            0.04,
            0.08,
            site="adnexa",
            fluid=_SEROUS,
            septum=_FIBROUS,
            wall=(2.5, 5.0),
            septa=(0, 2),
            septum_mm=(1.5, 3.0),
            solid_share=(0.3, 1.0),
            ascites=0.10,
        ),
        p_atypical=0.20,
    ),
    "borderline": ClassAppearance(
        # septated cyst with several papillary projections on the inner wall
        typical=Appearance(
            _PAPILLARY,
            _NECROSIS,
            (0, 0),
            0.04,
            0.10,
            site="adnexa",
            fluid=_FLUID,
            septum=_FIBROUS,
            wall=(1.5, 3.0),
            septa=(1, 4),
            septum_mm=(1.0, 2.5),
            papillae=(3, 8),
            papilla_mm=(3.0, 8.0),
            solid_share=(0.0, 0.05),
            ascites=0.10,
        ),
        # more benign-looking (few small papillae) to more solid (a mural solid component)
        atypical=Appearance(
            _PAPILLARY,
            _NECROSIS,
            (0, 0),
            0.06,
            0.12,
            site="adnexa",
            fluid=_FLUID,
            septum=_FIBROUS,
            wall=(1.5, 4.0),
            septa=(0, 3),
            septum_mm=(1.0, 3.0),
            papillae=(0, 2),
            papilla_mm=(2.0, 5.0),
            solid_share=(0.0, 0.4),
            ascites=0.10,
        ),
        p_atypical=0.20,
    ),
    "malignant": ClassAppearance(
        # large restricted solid component, thick irregular septa and wall, lobulated outline
        typical=Appearance(
            _CARCINOMA,
            _NECROSIS,
            (0, 3),
            0.15,
            0.25,
            site="adnexa",
            fluid=_FLUID,
            wall=(3.0, 8.0),
            septa=(1, 4),
            septum_mm=(4.0, 9.0),
            papillae=(2, 6),
            papilla_mm=(5.0, 12.0),
            solid_share=(0.35, 0.9),
            ascites=0.65,
        ),
        # mostly cystic with a few solid nodules
        atypical=Appearance(
            _CARCINOMA,
            _NECROSIS,
            (0, 0),
            0.06,
            0.15,
            site="adnexa",
            fluid=_FLUID,
            wall=(2.0, 5.0),
            septa=(0, 3),
            septum_mm=(2.0, 5.0),
            papillae=(1, 4),
            papilla_mm=(5.0, 10.0),
            solid_share=(0.0, 0.1),
            ascites=0.40,
        ),
        p_atypical=0.20,
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


def _none(*shape: int) -> Any:
    """Return a dataclass field defaulting to an empty array of the given shape."""
    return field(default_factory=lambda: np.zeros(shape))


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
    # adnexal masses only (the defaults: a solid uterine tumour, no ascites)
    fluid: Tissue | None = None  # per-patient cyst content; None: no cyst
    side: int = 0  # -1 right, +1 left (LPS x), 0 uterine
    wall_mm: float = 0.0
    septa_normals: np.ndarray = _none(0, 3)  # (k, 3) unit normals of planar septa
    septa_offsets: np.ndarray = _none(0)  # (k,) signed distance of each plane from the center (mm)
    septa_mm: np.ndarray = _none(0)  # (k,) thickness
    papillae_centers: np.ndarray = _none(0, 3)  # (k, 3) on the inner wall
    papillae_radii: np.ndarray = _none(0)
    solid_dir: np.ndarray = _none(0)  # (3,) local unit direction of the mural solid component
    solid_cut: float = 1.0  # the solid component is where q/radius . solid_dir > solid_cut
    ascites_level: float | None = None  # normalized AP depth of the fluid level; None: none
    ascites_phase: float = 0.0
    box: np.ndarray | None = None  # (3,) world half-extents bounding the tumour; None: tumour_rmax

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
    # attached to / inside the uterus: center within half the uterine radius of its center
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
    solid = replace(
        app.solid,
        t2=app.solid.t2 * jitter[0],
        b0=app.solid.b0 * jitter[1],
        adc=app.solid.adc * jitter[2],
    )
    anat = Anatomy(
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
    if app.site == "adnexa":  # draws only after all of the uterine ones: those stay unchanged
        return _adnexal(anat, rng)
    return anat


def _cap_height(share: float) -> float:
    """Return h such that the cap {x . u > 1 - h} holds `share` of the unit ball's volume."""
    h = np.linspace(0.0, 2.0, 401)
    return float(np.interp(share, h * h * (3 - h) / 4, h))


def _surface_radius(
    u: np.ndarray, lobe_dirs: np.ndarray, lobe_amps: np.ndarray, quad: np.ndarray
) -> np.ndarray:
    """Return the lobulated surface radius (units of the axes) along local unit directions (n, 3)."""
    bumps = np.exp((u @ lobe_dirs.T - 1.0) / 0.25) @ lobe_amps
    quad_term = np.einsum("ni,ij,nj->n", u, quad, u)
    return np.maximum(1.0 + bumps - lobe_amps.sum() * 0.25 + quad_term, 0.6)


def _adnexal(anat: Anatomy, rng: np.random.Generator) -> Anatomy:
    """Return the anatomy with its tumour replaced by an adnexal mass beside a normal uterus.

    The mass sits in the pelvic fat lateral to the uterus (which is pushed a little to the other
    side by large masses); its volume-equivalent diameter is log-normal (median 70 mm, 30-120 mm),
    its craniocaudal semi-axis at most 42 mm so that the axial stacks cover it.
    """
    app = anat.appearance
    side = 1 if rng.random() < 0.5 else -1
    diameter = float(np.clip(70.0 * np.exp(rng.normal(0, 0.3)), 30.0, 120.0))
    axes = diameter / 2 * rng.uniform(0.85, 1.15, size=3)
    axes *= diameter / 2 / np.cbrt(np.prod(axes))
    axes[2] = min(axes[2], 42.0)  # local z = patient z (rotation about z only)
    angle = rng.uniform(0, np.pi)
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    grow = 1.0 + 0.8 * app.lobulation  # about the largest outward lobulation
    ext = np.sqrt((rot[:2, :2] * axes[:2]) ** 2 @ np.ones(2)) * grow  # world x, y half-extent
    uterus_center = anat.uterus_center.copy()
    uterus_center[0] -= side * min(0.4 * diameter / 2, 25.0)
    limit = 0.62 * anat.body_axes  # stay inside the pelvic fat (inner pelvic wall at 0.65)
    x = uterus_center[0] + side * (anat.uterus_axes[0] + rng.uniform(-5, 10) + ext[0])
    x = anat.body_center[0] + np.clip(
        x - anat.body_center[0], -max(limit[0] - ext[0], 0), max(limit[0] - ext[0], 0)
    )
    y = uterus_center[1] + rng.normal(0, 8)
    y = anat.body_center[1] + np.clip(
        y - anat.body_center[1], -max(limit[1] - ext[1], 0), max(limit[1] - ext[1], 0)
    )
    center = np.array([x, y, uterus_center[2] + rng.uniform(-5, 15)])
    # foci (necrosis in the solid component) keep their relative place in the new mass
    scale = float(axes.mean() / anat.tumour_axes.mean())
    foci = center + (anat.foci_centers - anat.tumour_center) * scale
    r_mean = float(axes.mean())
    wall = float(rng.uniform(*app.wall))
    n_sep = int(rng.integers(app.septa[0], app.septa[1] + 1))
    n_pap = int(rng.integers(app.papillae[0], app.papillae[1] + 1))
    pap_dirs = _unit(rng, n_pap)
    inner = 1.0 - wall / r_mean
    pap_r = _surface_radius(pap_dirs, anat.lobe_dirs, anat.lobe_amps, anat.quad) * inner
    # a tight bounding box (the cube of tumour_rmax is loose for lobulated, flattened masses)
    k = np.arange(2000) + 0.5
    polar, azimuth = np.arccos(1 - 2 * k / len(k)), np.pi * (1 + 5**0.5) * k
    sphere = np.column_stack(
        [np.cos(azimuth) * np.sin(polar), np.sin(azimuth) * np.sin(polar), np.cos(polar)]
    )
    r_max = float(_surface_radius(sphere, anat.lobe_dirs, anat.lobe_amps, anat.quad).max())
    box = np.sqrt((rot * axes) ** 2 @ np.ones(3)) * r_max * 1.03 + 1.0
    share = float(rng.uniform(*app.solid_share))
    fj = rng.uniform(0.95, 1.05, 3)
    fluid = replace(
        app.fluid, t2=app.fluid.t2 * fj[0], b0=app.fluid.b0 * fj[1], adc=app.fluid.adc * fj[2]
    )
    has_ascites = bool(rng.random() < app.ascites)
    level = float(rng.uniform(-0.3, 0.45))  # posterior (dependent) part of the pelvic fat
    return replace(
        anat,
        uterus_center=uterus_center,
        tumour_center=center,
        tumour_rot=rot,
        tumour_axes=axes,
        foci_centers=foci,
        foci_radii=anat.foci_radii * scale,
        fluid=fluid,
        side=side,
        wall_mm=wall,
        septa_normals=_unit(rng, n_sep),
        septa_offsets=rng.uniform(-0.6, 0.6, n_sep) * axes.min(),
        septa_mm=rng.uniform(*app.septum_mm, n_sep),
        papillae_centers=center + (pap_dirs * pap_r[:, None] * axes) @ rot.T,
        papillae_radii=rng.uniform(*app.papilla_mm, n_pap),
        solid_dir=_unit(rng, 1)[0],
        solid_cut=1.0 - _cap_height(share) if share > 0 else 2.0,
        ascites_level=level if has_ascites else None,
        ascites_phase=float(rng.uniform(0, 2 * np.pi)),
        box=box,
    )


def _near(pts: np.ndarray, center: np.ndarray, radius: float) -> np.ndarray:
    """Return a bool array: points within the axis-aligned cube of half-size radius (cheap)."""
    out = np.abs(pts[..., 0] - np.float32(center[0])) < radius
    for i in (1, 2):
        out &= np.abs(pts[..., i] - np.float32(center[i])) < radius
    return out


def _near_box(pts: np.ndarray, center: np.ndarray, half: np.ndarray) -> np.ndarray:
    """Return a bool array: points within the axis-aligned box of half-sizes half (3,)."""
    out = np.abs(pts[..., 0] - np.float32(center[0])) < half[0]
    for i in (1, 2):
        out &= np.abs(pts[..., i] - np.float32(center[i])) < half[i]
    return out


def _in_ellipsoid(
    pts: np.ndarray, center: np.ndarray, rot: np.ndarray, axes: np.ndarray
) -> np.ndarray:
    """Return a bool array: points (..., 3) inside the rotated ellipsoid."""
    out = _near(pts, center, float(axes.max()))
    q = ((pts[out] - center.astype(np.float32)) @ rot.astype(np.float32)) / axes.astype(np.float32)
    out[out] = np.einsum("ni,ni->n", q, q) < 1.0
    return out


def _tumour_local(anat: Anatomy, pts: np.ndarray) -> tuple[np.ndarray, ...]:
    """Return near (bool, pts.shape[:-1]) and, at the near points, local q, |q| and surface radius."""
    if anat.box is None:
        near = _near(pts, anat.tumour_center, anat.tumour_rmax)  # skip far points (speed)
    else:
        near = _near_box(pts, anat.tumour_center, anat.box)
    q = ((pts[near] - anat.tumour_center) @ anat.tumour_rot) / anat.tumour_axes
    rho = np.linalg.norm(q, axis=-1)
    u = q / np.maximum(rho, 1e-6)[:, None]
    # lobulation: bumps around random directions plus an l=2 spherical-harmonic-like term
    radius = _surface_radius(u, anat.lobe_dirs, anat.lobe_amps, anat.quad)
    return near, q, rho, radius


def tumour_inside(anat: Anatomy, pts: np.ndarray) -> np.ndarray:
    """Return a bool array: which points (..., 3) lie inside the (possibly lobulated) tumour."""
    out = np.zeros(pts.shape[:-1], dtype=bool)
    near, _, rho, radius = _tumour_local(anat, pts)
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
    if anat.ascites_level is not None:
        # free fluid in the dependent (posterior, +y) pelvic fat, with a gently wavy surface
        depth = rel[..., 1] - np.float32(0.06) * np.sin(
            pts[..., 0] / np.float32(25.0) + np.float32(anat.ascites_phase)
        )
        lab[(r2 < 0.62**2) & (depth > anat.ascites_level)] = idx["ascites"]
    rect = (pts[..., :2] - anat.rectum_center[:2].astype(np.float32)) / np.float32([18.0, 14.0])
    lab[np.einsum("...i,...i->...", rect, rect) < 1.0] = idx["rectum"]
    lab[_in_ellipsoid(pts, anat.bladder_center, np.eye(3), anat.bladder_axes)] = idx["bladder"]
    uterus = _in_ellipsoid(pts, anat.uterus_center, anat.uterus_rot, anat.uterus_axes)
    lab[uterus] = idx["myometrium"]
    endo_axes = anat.uterus_axes * np.array([0.55, 0.14, 0.72])
    lab[_in_ellipsoid(pts, anat.uterus_center, anat.uterus_rot, endo_axes)] = idx["endometrium"]
    return lab


@dataclass(frozen=True)
class _Parts:
    """Where a tumour's compartments are: ``inside`` over all points, the rest over the points
    inside (``solid`` None: all of them are solid tissue, the uterine tumour)."""

    inside: np.ndarray
    mod: np.ndarray | None = None  # texture modulation at the solid points
    solid: np.ndarray | None = None
    wall: np.ndarray | None = None  # cyst wall and septa
    focal: np.ndarray | None = None  # foci (cystic degeneration, necrosis) in the solid tissue


def _uterine_parts(anat: Anatomy, pts: np.ndarray) -> _Parts:
    """Return the compartments of a solid uterine tumour: textured solid tissue and foci."""
    inside = tumour_inside(anat, pts)
    if not inside.any():
        return _Parts(inside)
    p = pts[inside]
    waves = np.sin(p @ anat.wave_k.T + anat.wave_phase).mean(axis=1)
    mod = 1.0 + anat.appearance.texture * waves * 1.6
    focal = None
    if len(anat.foci_radii):
        dd = p[:, None, :] - anat.foci_centers[None]
        focal = (np.einsum("nfi,nfi->nf", dd, dd) < anat.foci_radii**2).any(axis=1)
    return _Parts(inside, mod, None, None, focal)


def _cystic_parts(anat: Anatomy, pts: np.ndarray) -> _Parts:
    """Return the compartments of an adnexal mass: fluid, wall and septa, solid tissue, foci."""
    near, q, rho, radius = _tumour_local(anat, pts)
    sel = rho < radius
    inside = np.zeros(pts.shape[:-1], dtype=bool)
    inside[near] = sel
    if not sel.any():
        return _Parts(inside)
    p, rel = pts[inside], rho[sel] / radius[sel]  # rel: 1 on the outer surface
    d = p - anat.tumour_center
    app = anat.appearance
    waves = np.sin(p @ anat.wave_k.T + anat.wave_phase).mean(axis=1)
    irregular = 1.0 + 1.6 * app.texture * waves  # thickness modulation: irregular wall/septa
    # compartments: cyst fluid, then wall and septa, then papillae and the solid component
    r_mean = float(anat.tumour_axes.mean())
    wall = rel > 1.0 - anat.wall_mm * irregular / r_mean
    for n, off, mm in zip(anat.septa_normals, anat.septa_offsets, anat.septa_mm, strict=True):
        wall |= np.abs(d @ n - off) < mm / 2 * irregular
    solid = np.zeros(len(p), dtype=bool)
    for c, r in zip(anat.papillae_centers, anat.papillae_radii, strict=True):
        dd = p - c
        solid |= np.einsum("ni,ni->n", dd, dd) < r * r
    if anat.solid_cut < 1.0:
        u = q[sel] / radius[sel, None]
        solid |= u @ anat.solid_dir > anat.solid_cut + 0.12 * waves
    mod = 1.0 + app.texture * waves[solid] * 1.6
    focal = None
    if len(anat.foci_radii):  # necrosis within the solid tissue
        dd = p[:, None, :] - anat.foci_centers[None]
        focal = (np.einsum("nfi,nfi->nf", dd, dd) < anat.foci_radii**2).any(axis=1) & solid
    return _Parts(inside, mod, solid, wall, focal)


def _textured(name: str, value: float, mod: np.ndarray) -> np.ndarray:
    """Return a solid-tissue property modulated by the texture: signals and enhancement scale
    with it, ADC falls with cellularity; T1 and fat fraction do not vary."""
    if name == "adc":
        return np.full(len(mod), value) / np.sqrt(mod)
    if name in ("t2", "b0", "gd"):
        return value * mod
    return np.full(len(mod), value)


def _tumour_values(anat: Anatomy, parts: _Parts, name: str) -> np.ndarray:
    """Return the Tissue property ``name`` at the points inside the tumour."""
    app, s = anat.appearance, anat.solid
    if parts.solid is None:  # solid uterine tumour
        vals = _textured(name, getattr(s, name), parts.mod)
    else:  # cyst: fluid, then wall and septa, then solid tissue
        w = app.septum if app.septum is not None else s
        vals = np.full(len(parts.solid), getattr(anat.fluid, name), dtype=np.float32)
        vals[parts.wall] = getattr(w, name)
        vals[parts.solid] = _textured(name, getattr(s, name), parts.mod)
    if parts.focal is not None:
        vals[parts.focal] = getattr(app.foci, name)
    return vals


def _properties(
    anat: Anatomy, pts: np.ndarray, names: tuple[str, ...]
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Return the Tissue properties ``names`` at the points and the tumour membership."""
    lab = _tissue_labels(anat, pts)
    table = np.array([[getattr(t, n) for n in names] for t in TISSUES.values()], dtype=np.float32)
    out = {n: table[lab, i] for i, n in enumerate(names)}
    parts = _cystic_parts(anat, pts) if anat.fluid is not None else _uterine_parts(anat, pts)
    if parts.inside.any():
        for n in names:
            out[n][parts.inside] = _tumour_values(anat, parts, n)
    return out, parts.inside


def _signals(anat: Anatomy, pts: np.ndarray) -> tuple[np.ndarray, ...]:
    """Return noise-free T2, b=0 and b=1000 signal and the tumour membership at the points."""
    props, inside = _properties(anat, pts, ("t2", "b0", "adc"))
    b1000 = props["b0"] * np.exp(-B_HIGH * props["adc"] * 1e-3)
    return props["t2"], props["b0"], b1000, inside


#: What :func:`render_contrasts` returns: T2, fat-suppressed T2, T1, fat-suppressed T1, the
#: contrast-enhanced (fat-suppressed) T1, DWI b=0 and b=1000, and the tumour fraction.
CONTRASTS = ("t2", "t2fs", "t1", "t1fs", "ce", "b0", "b1000", "fraction")


def _contrast_signals(anat: Anatomy, pts: np.ndarray) -> tuple[np.ndarray, ...]:
    """Return the noise-free signals of CONTRASTS at the points."""
    props, inside = _properties(anat, pts, ("t2", "b0", "adc", "t1", "fat", "gd"))
    keep = 1.0 - np.float32(FAT_SUPPRESSION) * props["fat"]
    t2, t1 = props["t2"], props["t1"]
    b1000 = props["b0"] * np.exp(-B_HIGH * props["adc"] * 1e-3)
    return t2, t2 * keep, t1, t1 * keep, (t1 + props["gd"]) * keep, props["b0"], b1000, inside


def _accumulate(
    fn: Any, keys: tuple[str, ...], anat: Anatomy, pts: np.ndarray, offsets: np.ndarray
) -> dict[str, np.ndarray]:
    """Return the slab averages of the signals ``fn`` gives (in ``keys`` order) on the points."""
    acc = {k: np.zeros(pts.shape[:-1], dtype=np.float32) for k in keys}
    for o in offsets:
        for key, val in zip(keys, fn(anat, pts + o.astype(np.float32)), strict=True):
            acc[key] += val
    return {k: v / len(offsets) for k, v in acc.items()}


def render(anat: Anatomy, pts: np.ndarray, offsets: np.ndarray) -> dict[str, np.ndarray]:
    """Return slab-averaged noise-free 't2', 'b0', 'b1000' and tumour 'fraction' on points (..., 3)."""
    return _accumulate(_signals, ("t2", "b0", "b1000", "fraction"), anat, pts, offsets)


def render_contrasts(anat: Anatomy, pts: np.ndarray, offsets: np.ndarray) -> dict[str, np.ndarray]:
    """Return the slab-averaged noise-free signals of CONTRASTS on points (..., 3): one pass
    serves every series that shares a grid."""
    return _accumulate(_contrast_signals, CONTRASTS, anat, pts, offsets)


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
    """A stack of parallel slices: DICOM-style in-plane geometry plus slice centers (LPS mm)."""

    rows: int
    cols: int
    pixel_spacing: tuple[float, float]  # DICOM order: (between rows, between columns)
    row_dir: np.ndarray  # IOP[0:3]: direction of increasing column index
    col_dir: np.ndarray  # IOP[3:6]: direction of increasing row index
    positions: np.ndarray  # (n, 3) ImagePositionPatient, sorted ascending along the normal
    thickness: float
    spacing: float  # SpacingBetweenSlices (center to center)

    @property
    def normal(self) -> np.ndarray:
        """Return the slice normal row_dir x col_dir."""
        return np.cross(self.row_dir, self.col_dir)

    def points(self) -> np.ndarray:
        """Return voxel centers as an (n, rows, cols, 3) float32 array."""
        r = np.arange(self.rows, dtype=np.float32)[:, None, None] * self.pixel_spacing[0]
        c = np.arange(self.cols, dtype=np.float32)[None, :, None] * self.pixel_spacing[1]
        plane = c * self.row_dir.astype(np.float32) + r * self.col_dir.astype(np.float32)
        return (self.positions[:, None, None, :].astype(np.float32) + plane[None]).astype(
            np.float32
        )

    def slab_offsets(self, n: int = 3) -> np.ndarray:
        """Return (n, 3) offsets along the normal at the centers of n equal parts of the slab."""
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
    """Return a square-matrix slice stack centered on `center` (LPS mm)."""
    rd, cd = np.asarray(row_dir, float), np.asarray(col_dir, float)
    normal = np.cross(rd, cd)
    px = round(fov / matrix, 6)  # DS-safe; the same rounded value is used everywhere
    half = (matrix - 1) / 2 * px
    k = (np.arange(n_slices) - (n_slices - 1) / 2) * spacing
    first = np.asarray(center, float) - half * rd - half * cd
    positions = np.round(first[None] + k[:, None] * normal[None], 4)
    return SliceGrid(matrix, matrix, (px, px), rd, cd, positions, thickness, spacing)
