"""Hospital profiles: scanner, protocol, geometry, intensity scaling, file layout and identities.

The five centers differ the way real sites do (vendor naming, matrix, slice gap, rescale, folder
layout, slice order, classic or enhanced multi-frame DICOM, diffusion directions), so that the
pipeline's discovery and harmonization are exercised. ``SynthSpec(centers=n)`` takes the first n:
the default 3 (Siemens, GE, Philips) write what they always wrote; Canon (center_d) and Fujifilm
(center_e) follow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SeriesProtocol:
    """Naming and timing of one series at one center."""

    description: str
    protocol: str
    number: int
    image_type: tuple[str, ...]
    te: float  # ms
    tr: float  # ms
    agent: str = ""  # ContrastBolusAgent of a contrast-enhanced series ("": none given)


@dataclass(frozen=True)
class Scanner:
    """One scanner of a center."""

    model: str
    field: float  # tesla
    station: str


@dataclass(frozen=True)
class CenterProfile:
    """Everything that makes one hospital's export look like that hospital."""

    key: str  # "center_a"
    letter: str  # "A": prefix of the pseudonymous export folder
    manufacturer: str
    scanners: tuple[Scanner, ...]
    software: str
    institution: str
    referring: tuple[str, ...]  # DICOM PN strings
    performing: tuple[str, ...]
    operators: tuple[str, ...]
    # keys: loc, t2ax, t2sag, dwi, adc, then the optional series (see writer.SERIES_KEYS); a
    # center without a key does not acquire that series
    series: Mapping[str, SeriesProtocol]
    t2_matrix: int
    t2_fov: float
    dwi_matrix: int
    dwi_fov: float
    t2ax_slices: int
    t2sag_slices: int
    dwi_slices: int
    thickness: float  # T2 and DWI slice thickness (mm)
    gap: float  # extra distance between slices (mm); SpacingBetweenSlices = thickness + gap
    dtype: str  # "uint16" or "int16"
    slope: float  # stored * slope + intercept = signal
    intercept: float
    scale: float  # signal units of relative intensity 1.0
    noise: float  # Rician sigma relative to scale on T2 (DWI is noisier)
    layout: str  # "series_dirs" | "flat" | "philips" | "canon" | "fujifilm"
    order: str  # InstanceNumber vs position: "ascending" | "descending" | "interleaved"
    junk: bool  # writes one non-DICOM file per patient
    id_digits: int
    id_prefix: str
    accession_format: str  # str.format with year= and n=
    # Enhanced multi-frame DICOM: one Enhanced MR Image Storage file per series (Canon)
    enhanced: bool = False
    # b=1000 as three orthogonal gradient directions (with the isotropic trace image only when
    # dwi_trace); the default: the trace image alone, as centers a-c export it
    dwi_directions: bool = False
    dwi_trace: bool = True

    def patient_id(self, n: int) -> str:
        """Return the center-format PatientID for a (unique) patient number n."""
        return f"{self.id_prefix}{n % 10**self.id_digits:0{self.id_digits}d}"

    def accession(self, year: int, n: int) -> str:
        """Return the center-format AccessionNumber."""
        return self.accession_format.format(year=year, n=n)


# ImageType of each vendor's original magnitude images
_SIEMENS = ("ORIGINAL", "PRIMARY", "M", "ND", "NORM")
_GE = ("ORIGINAL", "PRIMARY", "OTHER")
_PHILIPS = ("ORIGINAL", "PRIMARY", "M_SE", "M", "SE")
_PHILIPS_FFE = ("ORIGINAL", "PRIMARY", "M_FFE", "M", "FFE")  # gradient echo
# Enhanced MR ImageType: value 3 is the image flavour, value 4 the derived pixel contrast
_CANON_T2 = ("ORIGINAL", "PRIMARY", "T2", "NONE")
_CANON_T1 = ("ORIGINAL", "PRIMARY", "T1", "NONE")
_CANON_DWI = ("ORIGINAL", "PRIMARY", "DIFFUSION", "NONE")
_FUJI = ("ORIGINAL", "PRIMARY", "M")
_FUJI_DWI = ("ORIGINAL", "PRIMARY", "DIFFUSION", "NONE")  # b=0 and the directional images
_ADC = ("DERIVED", "PRIMARY", "DIFFUSION", "ADC")

CENTERS: dict[str, CenterProfile] = {
    "center_a": CenterProfile(
        key="center_a",
        letter="A",
        manufacturer="SIEMENS",
        scanners=(Scanner("MAGNETOM Skyra", 3.0, "AWP45217"),),
        software="syngo MR E11",
        institution="Kanagawa Central Hospital",
        referring=("SUZUKI^TAKESHI", "KOBAYASHI^MASAO", "MATSUMOTO^REIKO"),
        performing=("INOUE^KAZUHIRO", "KIMURA^YUKIKO"),
        operators=("HAYASHI^TOMOYA", "SHIMIZU^AYAKA", "YAMAZAKI^RYOTA"),
        series={
            "loc": SeriesProtocol(
                "localizer", "localizer", 1, ("ORIGINAL", "PRIMARY", "M", "ND"), 1.6, 3.8
            ),
            "t2ax": SeriesProtocol(
                "t2_tse_tra",
                "t2_tse_tra",
                2,
                ("ORIGINAL", "PRIMARY", "M", "ND", "NORM"),
                101.0,
                4200.0,
            ),
            "t2sag": SeriesProtocol(
                "t2_tse_sag",
                "t2_tse_sag",
                3,
                ("ORIGINAL", "PRIMARY", "M", "ND", "NORM"),
                99.0,
                3900.0,
            ),
            "dwi": SeriesProtocol(
                "ep2d_diff_tra_b0_1000",
                "ep2d_diff_tra_b0_1000",
                4,
                ("ORIGINAL", "PRIMARY", "DIFFUSION", "NONE", "ND", "NORM"),
                62.0,
                5600.0,
            ),
            "adc": SeriesProtocol(
                "ep2d_diff_tra_b0_1000_ADC",
                "ep2d_diff_tra_b0_1000",
                5,
                ("DERIVED", "PRIMARY", "DIFFUSION", "ADC"),
                62.0,
                5600.0,
            ),
            # the full protocol: every optional series
            "t2cor": SeriesProtocol("t2_tse_cor", "t2_tse_cor", 6, _SIEMENS, 101.0, 4000.0),
            "t2fsax": SeriesProtocol("t2_tse_fs_tra", "t2_tse_fs_tra", 7, _SIEMENS, 78.0, 4500.0),
            "t2fssag": SeriesProtocol("t2_tse_fs_sag", "t2_tse_fs_sag", 8, _SIEMENS, 78.0, 4300.0),
            "dwisag": SeriesProtocol(
                "ep2d_diff_sag_b0_1000",
                "ep2d_diff_sag_b0_1000",
                9,
                ("ORIGINAL", "PRIMARY", "DIFFUSION", "NONE", "ND", "NORM"),
                62.0,
                5200.0,
            ),
            "adcsag": SeriesProtocol(
                "ep2d_diff_sag_b0_1000_ADC",
                "ep2d_diff_sag_b0_1000",
                10,
                ("DERIVED", "PRIMARY", "DIFFUSION", "ADC"),
                62.0,
                5200.0,
            ),
            "t1ax": SeriesProtocol("t1_tse_tra", "t1_tse_tra", 11, _SIEMENS, 11.0, 650.0),
            "t1sag": SeriesProtocol("t1_tse_sag", "t1_tse_sag", 12, _SIEMENS, 11.0, 600.0),
            "t1fsax": SeriesProtocol("t1_vibe_fs_tra", "t1_vibe_fs_tra", 13, _SIEMENS, 2.46, 5.2),
            "cet1ax": SeriesProtocol(
                "t1_vibe_fs_tra_post", "t1_vibe_fs_tra_post", 14, _SIEMENS, 2.46, 5.2, "Gadovist"
            ),
            "cet1sag": SeriesProtocol(
                "t1_vibe_fs_sag_post", "t1_vibe_fs_sag_post", 15, _SIEMENS, 2.46, 5.2, "Gadovist"
            ),
            "cet1cor": SeriesProtocol(
                "t1_vibe_fs_cor_post", "t1_vibe_fs_cor_post", 16, _SIEMENS, 2.46, 5.2, "Gadovist"
            ),
        },
        t2_matrix=224,
        t2_fov=240.0,
        dwi_matrix=112,
        dwi_fov=260.0,
        t2ax_slices=22,
        t2sag_slices=16,
        dwi_slices=18,
        thickness=5.5,
        gap=0.0,
        dtype="uint16",
        slope=1.0,
        intercept=0.0,
        scale=900.0,
        noise=0.02,
        layout="series_dirs",
        order="ascending",
        junk=False,
        id_digits=7,
        id_prefix="HA",
        accession_format="{year}{n:07d}",
    ),
    "center_b": CenterProfile(
        key="center_b",
        letter="B",
        manufacturer="GE MEDICAL SYSTEMS",
        scanners=(
            Scanner("SIGNA Architect", 3.0, "SMUHMR3T01"),
            Scanner("DISCOVERY MR750w", 3.0, "SMUHMR3T02"),
            Scanner("SIGNA Explorer", 1.5, "SMUHMR15T1"),
        ),
        software="27\\LX\\MR Software release:RX27.0_R05",
        institution="Shonan Medical University Hospital",
        referring=("TAKAHASHI^NAOKI", "WATANABE^KEIKO", "NAKAMURA^HIROSHI"),
        performing=("MORI^SATOSHI", "OGAWA^MIDORI"),
        operators=("FUJITA^KENTA", "OKADA^NATSUMI"),
        series={
            "loc": SeriesProtocol(
                "3-Plane Loc", "GYN PELVIS", 1, ("ORIGINAL", "PRIMARY", "LOCALIZER"), 1.5, 4.5
            ),
            "t2ax": SeriesProtocol(
                "Ax T2 FSE", "GYN PELVIS", 2, ("ORIGINAL", "PRIMARY", "OTHER"), 95.0, 5000.0
            ),
            "t2sag": SeriesProtocol(
                "Sag T2 FSE", "GYN PELVIS", 3, ("ORIGINAL", "PRIMARY", "OTHER"), 97.0, 4800.0
            ),
            "dwi": SeriesProtocol(
                "Ax DWI b1000", "GYN PELVIS", 4, ("ORIGINAL", "PRIMARY", "OTHER"), 70.0, 6000.0
            ),
            "adc": SeriesProtocol(
                "Apparent Diffusion Coefficient (mm2/s)",
                "GYN PELVIS",
                400,
                ("DERIVED", "PRIMARY", "ADC"),
                70.0,
                6000.0,
            ),
            # no coronal T2 in this center's protocol
            "t2fsax": SeriesProtocol("Ax T2 FSE FS", "GYN PELVIS", 5, _GE, 85.0, 5200.0),
            "t2fssag": SeriesProtocol("Sag T2 FSE FS", "GYN PELVIS", 6, _GE, 85.0, 5000.0),
            "dwisag": SeriesProtocol("Sag DWI b1000", "GYN PELVIS", 7, _GE, 70.0, 6000.0),
            "adcsag": SeriesProtocol(
                "Apparent Diffusion Coefficient (mm2/s)",
                "GYN PELVIS",
                700,
                ("DERIVED", "PRIMARY", "ADC"),
                70.0,
                6000.0,
            ),
            "t1ax": SeriesProtocol("Ax T1 FSE", "GYN PELVIS", 8, _GE, 9.0, 600.0),
            "t1sag": SeriesProtocol("Sag T1 FSE", "GYN PELVIS", 9, _GE, 9.0, 560.0),
            "t1fsax": SeriesProtocol("Ax LAVA FS", "GYN PELVIS", 10, _GE, 1.7, 4.0),
            "cet1ax": SeriesProtocol("Ax LAVA FS +C", "GYN PELVIS", 11, _GE, 1.7, 4.0, "ProHance"),
            "cet1sag": SeriesProtocol(
                "Sag LAVA FS +C", "GYN PELVIS", 12, _GE, 1.7, 4.0, "ProHance"
            ),
            "cet1cor": SeriesProtocol(
                "Cor LAVA FS +C", "GYN PELVIS", 13, _GE, 1.7, 4.0, "ProHance"
            ),
        },
        t2_matrix=192,
        t2_fov=260.0,
        dwi_matrix=128,
        dwi_fov=280.0,
        t2ax_slices=20,
        t2sag_slices=18,
        dwi_slices=16,
        thickness=6.0,
        gap=1.0,  # an interslice gap (as center_d and center_e)
        dtype="int16",
        slope=0.5,
        intercept=0.0,
        scale=1500.0,
        noise=0.025,
        layout="flat",
        order="descending",
        junk=False,
        id_digits=10,
        id_prefix="",
        accession_format="SM{n:08d}",
    ),
    "center_c": CenterProfile(
        key="center_c",
        letter="C",
        manufacturer="Philips Medical Systems",
        scanners=(Scanner("Ingenia", 1.5, "YBWC-MR15-01"),),
        software="5.6.1\\5.6.1.0",
        institution="Yokohama Bayside Women's Clinic",
        referring=("ISHIKAWA^MAKOTO", "MAEDA^HARUMI"),
        performing=("FUKUDA^SHINJI",),
        operators=("NISHIMURA^KAORI", "OKAMOTO^DAISUKE"),
        series={
            "loc": SeriesProtocol(
                "Survey", "Survey", 101, ("ORIGINAL", "PRIMARY", "M_FFE", "M", "FFE"), 2.3, 11.0
            ),
            "t2ax": SeriesProtocol(
                "T2W_TSE_TRA",
                "T2W_TSE_TRA",
                201,
                ("ORIGINAL", "PRIMARY", "M_SE", "M", "SE"),
                100.0,
                3500.0,
            ),
            "t2sag": SeriesProtocol(
                "T2W_TSE_SAG",
                "T2W_TSE_SAG",
                301,
                ("ORIGINAL", "PRIMARY", "M_SE", "M", "SE"),
                100.0,
                3300.0,
            ),
            "dwi": SeriesProtocol(
                "DWI_b0_1000",
                "DWI_b0_1000",
                401,
                ("ORIGINAL", "PRIMARY", "M_SE", "M", "SE"),
                75.0,
                4500.0,
            ),
            "adc": SeriesProtocol(
                "dADC_DWI", "DWI_b0_1000", 402, ("DERIVED", "PRIMARY", "ADC", "ADC"), 75.0, 4500.0
            ),
            # no sagittal DWI (nor its ADC map) in this center's protocol
            "t2cor": SeriesProtocol("T2W_TSE_COR", "T2W_TSE_COR", 501, _PHILIPS, 100.0, 3300.0),
            "t2fsax": SeriesProtocol("T2W_SPAIR_TRA", "T2W_SPAIR_TRA", 601, _PHILIPS, 80.0, 4000.0),
            "t2fssag": SeriesProtocol(
                "T2W_SPAIR_SAG", "T2W_SPAIR_SAG", 701, _PHILIPS, 80.0, 3800.0
            ),
            "t1ax": SeriesProtocol("T1W_TSE_TRA", "T1W_TSE_TRA", 801, _PHILIPS, 10.0, 550.0),
            "t1sag": SeriesProtocol("T1W_TSE_SAG", "T1W_TSE_SAG", 901, _PHILIPS, 10.0, 520.0),
            "t1fsax": SeriesProtocol(
                "T1W_THRIVE_TRA", "T1W_THRIVE_TRA", 1001, _PHILIPS_FFE, 2.1, 4.4
            ),
            "cet1ax": SeriesProtocol(
                "T1W_mDIXON_TRA +C", "T1W_mDIXON_TRA +C", 1101, _PHILIPS_FFE, 1.8, 5.5, "Magnescope"
            ),
            "cet1sag": SeriesProtocol(
                "T1W_mDIXON_SAG +C", "T1W_mDIXON_SAG +C", 1201, _PHILIPS_FFE, 1.8, 5.5, "Magnescope"
            ),
            "cet1cor": SeriesProtocol(
                "T1W_mDIXON_COR +C", "T1W_mDIXON_COR +C", 1301, _PHILIPS_FFE, 1.8, 5.5, "Magnescope"
            ),
        },
        t2_matrix=240,
        t2_fov=250.0,
        dwi_matrix=96,
        dwi_fov=250.0,
        t2ax_slices=21,
        t2sag_slices=16,
        dwi_slices=18,
        thickness=6.0,
        gap=0.0,
        dtype="uint16",
        slope=2.34676,  # Philips-like real-world rescale
        intercept=0.0,
        scale=700.0,
        noise=0.03,
        layout="philips",
        order="interleaved",
        junk=True,
        id_digits=6,
        id_prefix="KC",
        accession_format="{year}-{n:06d}",
    ),
    "center_d": CenterProfile(
        key="center_d",
        letter="D",
        manufacturer="CANON_MEC",
        scanners=(Scanner("Vantage Galan 3T", 3.0, "RKMH-MR3T"),),
        software="V6.0",
        institution="Rokko Municipal Hospital",
        referring=("OKUDA^TAKAHIRO", "MIYAMOTO^SHIORI", "KONDOU^MASAYUKI"),
        performing=("SAKAMOTO^KOUJI", "NOGUCHI^EMI"),
        operators=("MATSUMURA^YUUTA", "ARAI^NANAMI"),
        # ProtocolName: the exam plan (a repeated description would read 'FSE ... T2WI' as
        # 'FS ... T2WI' in the rule table)
        series={
            "loc": SeriesProtocol(
                "Locator", "PELVIS_GYN", 1, ("ORIGINAL", "PRIMARY", "LOCALIZER", "NONE"), 2.2, 5.0
            ),
            "t2ax": SeriesProtocol("T2WI_FSE_AX", "PELVIS_GYN", 2, _CANON_T2, 96.0, 4500.0),
            "t2sag": SeriesProtocol("T2WI_FSE_SAG", "PELVIS_GYN", 3, _CANON_T2, 96.0, 4200.0),
            "dwi": SeriesProtocol("DWI_b1000_AX", "PELVIS_GYN", 4, _CANON_DWI, 68.0, 5000.0),
            "adc": SeriesProtocol("ADC_AX", "PELVIS_GYN", 5, _ADC, 68.0, 5000.0),
            # no sagittal DWI (nor its ADC map) in this center's protocol
            "t2cor": SeriesProtocol("T2WI_FSE_COR", "PELVIS_GYN", 6, _CANON_T2, 96.0, 4200.0),
            "t2fsax": SeriesProtocol("FS T2WI_FSE_AX", "PELVIS_GYN", 7, _CANON_T2, 80.0, 4800.0),
            "t2fssag": SeriesProtocol("FS T2WI_FSE_SAG", "PELVIS_GYN", 8, _CANON_T2, 80.0, 4600.0),
            "t1ax": SeriesProtocol("T1WI_SE_AX", "PELVIS_GYN", 11, _CANON_T1, 10.0, 580.0),
            "t1sag": SeriesProtocol("T1WI_SE_SAG", "PELVIS_GYN", 12, _CANON_T1, 10.0, 560.0),
            # 'FS T1WI_QUICK3D_AX' would be named T1axi: the rule table reads 'FS' before 'T2' only
            "t1fsax": SeriesProtocol("T1WI_QUICK3D_FS_AX", "PELVIS_GYN", 13, _CANON_T1, 2.0, 4.6),
            "cet1ax": SeriesProtocol(
                "T1WI_QUICK3D_FS_AX +C", "PELVIS_GYN", 14, _CANON_T1, 2.0, 4.6, "Omniscan"
            ),
            "cet1sag": SeriesProtocol(
                "T1WI_QUICK3D_FS_SAG +C", "PELVIS_GYN", 15, _CANON_T1, 2.0, 4.6, "Omniscan"
            ),
            "cet1cor": SeriesProtocol(
                "T1WI_QUICK3D_FS_COR +C", "PELVIS_GYN", 16, _CANON_T1, 2.0, 4.6, "Omniscan"
            ),
        },
        t2_matrix=256,
        t2_fov=240.0,
        dwi_matrix=128,
        dwi_fov=260.0,
        t2ax_slices=24,
        t2sag_slices=18,
        dwi_slices=20,
        thickness=5.0,
        gap=0.5,
        dtype="uint16",
        slope=1.0,
        intercept=0.0,
        scale=1200.0,
        noise=0.02,
        layout="canon",
        order="interleaved",  # the frame order inside each enhanced file
        junk=False,
        id_digits=8,
        id_prefix="",
        accession_format="RK{year}{n:06d}",
        enhanced=True,
        dwi_directions=True,
        dwi_trace=False,  # the scanner exports the directions; the pipeline computes the trace
    ),
    "center_e": CenterProfile(
        key="center_e",
        letter="E",
        manufacturer="FUJIFILM Healthcare Corporation",
        scanners=(Scanner("ECHELON Smart ZeroHelium", 1.5, "HBMC-MR15"),),
        software="V7.0",
        institution="Hakata Bay Medical Center",
        referring=("NAKAGAWA^ICHIROU", "KOJIMA^SATOMI", "HIRANO^MASARU"),
        performing=("TSUJI^AKIRA",),
        operators=("KUBO^MISAKI", "SANO^TAKUYA"),
        series={
            "loc": SeriesProtocol(
                "Scanogram", "GYN_Pelvis", 1, ("ORIGINAL", "PRIMARY", "LOCALIZER"), 2.4, 6.0
            ),
            "t2ax": SeriesProtocol("T2W_FSE_Ax", "GYN_Pelvis", 2, _FUJI, 100.0, 4000.0),
            "t2sag": SeriesProtocol("T2W_FSE_Sag", "GYN_Pelvis", 3, _FUJI, 100.0, 3800.0),
            "dwi": SeriesProtocol("DWI_b1000_Ax", "GYN_Pelvis", 4, _FUJI_DWI, 78.0, 5500.0),
            "adc": SeriesProtocol("ADC_Ax", "GYN_Pelvis", 1004, _ADC, 78.0, 5500.0),
            # no coronal T2 in this center's protocol
            "t2fsax": SeriesProtocol("T2W_FSE_FatSep_Ax", "GYN_Pelvis", 5, _FUJI, 90.0, 4200.0),
            "t2fssag": SeriesProtocol("T2W_FSE_FatSep_Sag", "GYN_Pelvis", 6, _FUJI, 90.0, 4000.0),
            "dwisag": SeriesProtocol("DWI_b1000_Sag", "GYN_Pelvis", 7, _FUJI_DWI, 78.0, 5500.0),
            "adcsag": SeriesProtocol("ADC_Sag", "GYN_Pelvis", 1007, _ADC, 78.0, 5500.0),
            "t1ax": SeriesProtocol("T1W_SE_Ax", "GYN_Pelvis", 8, _FUJI, 12.0, 520.0),
            "t1sag": SeriesProtocol("T1W_SE_Sag", "GYN_Pelvis", 9, _FUJI, 12.0, 500.0),
            "t1fsax": SeriesProtocol("T1W_TIGRE_FS_Ax", "GYN_Pelvis", 10, _FUJI, 2.2, 5.0),
            "cet1ax": SeriesProtocol(
                "T1W_TIGRE_FS_Ax_CE", "GYN_Pelvis", 11, _FUJI, 2.2, 5.0, "Magnevist"
            ),
            "cet1sag": SeriesProtocol(
                "T1W_TIGRE_FS_Sag_CE", "GYN_Pelvis", 12, _FUJI, 2.2, 5.0, "Magnevist"
            ),
            "cet1cor": SeriesProtocol(
                "T1W_TIGRE_FS_Cor_CE", "GYN_Pelvis", 13, _FUJI, 2.2, 5.0, "Magnevist"
            ),
        },
        t2_matrix=192,
        t2_fov=250.0,
        dwi_matrix=96,
        dwi_fov=270.0,
        t2ax_slices=18,
        t2sag_slices=14,
        dwi_slices=16,
        thickness=7.0,  # 1.5 T: thicker slices for the signal
        gap=1.0,
        dtype="uint16",
        slope=1.0,
        intercept=0.0,
        scale=800.0,
        noise=0.03,
        layout="fujifilm",
        order="ascending",
        junk=False,
        id_digits=7,
        id_prefix="F",
        accession_format="{n:06d}{year}",
        dwi_directions=True,  # b=1000: three directions and their trace, in one series
    ),
}

# Name pools for planted patient identities (Japanese-style DICOM PN: FAMILY^GIVEN).
SURNAMES = (
    "YAMADA",
    "TANAKA",
    "SASAKI",
    "YAMAMOTO",
    "NAKAJIMA",
    "KATOU",
    "YOSHIDA",
    "YAMAGUCHI",
    "MATSUDA",
    "INOUE",
    "KIMURA",
    "HAYASHI",
    "SAITOU",
    "SHIMIZU",
    "YAMAZAKI",
    "IKEDA",
    "HASHIMOTO",
    "ISHIKAWA",
    "OGAWA",
    "NISHIDA",
    "FUJIWARA",
    "OKAMOTO",
    "MATSUI",
    "NAKANO",
    "HARADA",
    "ONO",
    "TAMURA",
    "TAKEUCHI",
    "KANEKO",
    "WADA",
    "NAKAYAMA",
    "ISHIDA",
    "UEDA",
    "MORITA",
    "HARA",
    "SHIBATA",
    "SAKAI",
    "KUDOU",
    "YOKOYAMA",
    "MIYAZAKI",
)
GIVEN_NAMES = (
    "HANAKO",
    "YUMIKO",
    "KEIKO",
    "NAOMI",
    "SACHIKO",
    "TOMOKO",
    "MICHIKO",
    "AKEMI",
    "YOSHIKO",
    "KAZUKO",
    "MEGUMI",
    "ERIKO",
    "MAYUMI",
    "KYOKO",
    "JUNKO",
    "HIROMI",
    "NORIKO",
    "YUKARI",
    "SAYAKA",
    "MISAKI",
    "HARUKA",
    "CHIHIRO",
    "AYUMI",
    "KANAKO",
    "RIEKO",
    "SHIZUKA",
    "MIDORI",
    "FUMIKO",
    "ASUKA",
    "NATSUKO",
    "MASAKO",
    "YOKO",
)


@dataclass(frozen=True)
class Identity:
    """The identifiers planted in one patient's headers."""

    patient_name: str
    patient_id: str
    birth_date: str
    age: str
    study_date: str
    study_time: str
    accession: str
    referring: str
    performing: str
    operator: str
    scanner: Scanner
    other_id: str = ""  # OtherPatientIDs: e.g. an insurance number
    address: str = ""  # PatientAddress
    telephone: str = ""  # PatientTelephoneNumbers
    device_serial: str = ""  # DeviceSerialNumber

    def strings(self, profile: CenterProfile) -> list[str]:
        """Return every identifying string of this patient (names also split into parts)."""
        names = [self.patient_name, self.referring, self.performing, self.operator]
        parts = [p for n in names for p in n.split("^")]
        return [
            *names,
            *parts,
            self.patient_id,
            self.birth_date,
            self.accession,
            profile.institution,
            institution_address(profile),
            self.scanner.station,
            self.other_id,
            self.address,
            self.telephone,
            self.device_serial,
        ]


_TOWNS = (
    "Naka-ku Yokohama",
    "Aoba-ku Sendai",
    "Kita-ku Osaka",
    "Chuo-ku Kobe",
    "Minami-ku Fukuoka",
)


def institution_address(profile: CenterProfile) -> str:
    """Return the planted street address of a center's hospital."""
    return f"{ord(profile.letter) - 64}-{len(profile.institution)}-8 Honcho, {_TOWNS[ord(profile.letter) % 5]}"


def make_identity(seed: int, case_index: int, profile: CenterProfile) -> Identity:
    """Return the deterministic planted identity of one patient (unique within a cohort)."""
    rng = np.random.default_rng([seed, case_index, 7])
    # a seeded permutation of all name combinations, indexed by case: unique up to 1280 patients
    combos = np.random.default_rng([seed, 11]).permutation(len(SURNAMES) * len(GIVEN_NAMES))
    combo = int(combos[case_index % len(combos)])
    name = f"{SURNAMES[combo // len(GIVEN_NAMES)]}^{GIVEN_NAMES[combo % len(GIVEN_NAMES)]}"
    # affine map of the case index: unique numbers that do not look sequential
    mod = 10 ** min(profile.id_digits, 8)
    base = int(np.random.default_rng([seed, 13]).integers(10**5, mod // 2))
    number = (base + case_index * 7919) % mod
    year = int(rng.integers(2015, 2022))
    month, day = int(rng.integers(1, 13)), int(rng.integers(1, 29))
    age = int(rng.integers(32, 76))
    birth = f"{year - age:04d}{int(rng.integers(1, 13)):02d}{int(rng.integers(1, 29)):02d}"
    if (int(birth[4:8]) > month * 100 + day) and age > 0:
        age -= 1  # birthday not yet reached in the study year
    hour, minute = int(rng.integers(8, 18)), int(rng.integers(0, 60))
    return Identity(
        patient_name=name,
        patient_id=profile.patient_id(number),
        birth_date=birth,
        age=f"{age:03d}Y",
        study_date=f"{year:04d}{month:02d}{day:02d}",
        study_time=f"{hour:02d}{minute:02d}{int(rng.integers(0, 60)):02d}",
        accession=profile.accession(year, (base * 3 + case_index * 104729) % 10**6),
        referring=profile.referring[int(rng.integers(len(profile.referring)))],
        performing=profile.performing[int(rng.integers(len(profile.performing)))],
        operator=profile.operators[int(rng.integers(len(profile.operators)))],
        scanner=profile.scanners[int(rng.integers(len(profile.scanners)))],
        # A separate stream, so that adding tags leaves the earlier identifiers unchanged.
        **_contact(np.random.default_rng([seed, case_index, 17]), profile),
    )


def _contact(rng: np.random.Generator, profile: CenterProfile) -> dict[str, str]:
    """Return planted insurance number, home address, telephone and scanner serial number."""
    town = _TOWNS[int(rng.integers(len(_TOWNS)))]
    return {
        "other_id": f"INS{int(rng.integers(10**7, 10**8))}",
        "address": f"{int(rng.integers(1, 9))}-{int(rng.integers(1, 30))}-{int(rng.integers(1, 20))} "
        f"Sakuragaoka, {town}",
        "telephone": f"0{int(rng.integers(30, 99))}-{int(rng.integers(100, 999))}-{int(rng.integers(1000, 9999))}",
        "device_serial": f"{profile.letter}SN{int(rng.integers(10**5, 10**6))}",
    }
