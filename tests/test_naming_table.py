"""The rule table against 115 series descriptions as six vendors write them (Siemens, GE,
Philips, Canon/Toshiba, Fujifilm/Hitachi, United Imaging), decoys included: patterns match whole
tokens only, so 'REST1' is not T1 and 'T1rho' is no T1, while 'T2W', 'sT2W' and 'T2WI' are T2.

Each row: description, plane, b-values, ImageType, what the table must make of it (a sequence
name, 'x: <reason>' for an exclusion, or 'unknown')."""

from pathlib import Path

import pytest
from test_sequences import series

from gynmri.preprocessing.sequences import load_rules, name_series

ROOT = Path(__file__).resolve().parents[1]
AX, SAG, COR = "axial", "sagittal", "coronal"
B = (0, 1000)  # a diffusion series' b-values
ADC_TYPE = "DERIVED\\PRIMARY\\DIFFUSION\\ADC"
ORIG = "ORIGINAL\\PRIMARY\\M"
TRACEW = "DERIVED\\PRIMARY\\DIFFUSION\\TRACEW\\ND"
LOC = "x: localizer"

TABLE = [
    # Siemens
    ("t2_tse_tra", AX, (), ORIG, "T2axi"),
    ("t2_tse_sag_p2", SAG, (), ORIG, "T2sag"),
    ("t2_tse_cor", COR, (), ORIG, "T2cor"),
    ("t2_tse_fs_tra", AX, (), ORIG, "T2FSaxi"),
    ("t2_tse_fs_sag", SAG, (), ORIG, "T2FSsag"),
    ("t2_haste_tra_mbh", AX, (), ORIG, "T2axi"),
    ("t2_space_cor_p3", COR, (), ORIG, "T2cor"),
    ("ep2d_diff_b50_800", AX, (50, 800), ORIG, "DWI"),
    ("ep2d_diff_tra_b50_800_ADC", AX, (), ADC_TYPE, "ADC"),
    ("ep2d_diff_sag_b0_1000", SAG, B, ORIG, "DWIsag"),
    ("ep2d_diff_sag_b0_1000_ADC", SAG, (), ADC_TYPE, "ADCsag"),
    ("resolve_diff_tra_b1000", AX, B, ORIG, "DWI"),
    ("t1_tse_tra", AX, (), ORIG, "T1axi"),
    ("t1_tse_sag", SAG, (), ORIG, "T1sag"),
    ("t1_vibe_fs_tra", AX, (), ORIG, "T1FSaxi"),
    ("t1_vibe_dixon_tra_opp", AX, (), ORIG, "T1FSaxi"),
    ("t1_vibe_fs_tra_post", AX, (), ORIG, "CET1axi"),
    ("t1_vibe_fs_sag_post", SAG, (), ORIG, "CET1sag"),
    ("t1_vibe_fs_cor_post", COR, (), ORIG, "CET1cor"),
    ("t1_fl2d_tra", AX, (), ORIG, "T1axi"),
    ("t1_mprage_sag", SAG, (), ORIG, "T1sag"),
    ("localizer", AX, (), ORIG, LOC),
    ("AAHead_Scout_32ch-head-coil", SAG, (), ORIG, LOC),
    ("AdjCoilSens", AX, (), ORIG, "x: calibration scan"),
    ("ep2d_bold_rest", AX, (), ORIG, "x: functional MRI"),
    ("REST1 w SMS", AX, (), ORIG, "unknown"),
    ("ep2d_diff_mddw_30dir", AX, B, ORIG, "x: diffusion tensor"),
    ("t2_swi_tra_p2", AX, (), ORIG, "x: T2*"),
    ("t2_fl2d_tra_hemo", AX, (), ORIG, "x: T2*"),
    ("T1rho_map_tra", AX, (), ORIG, "unknown"),
    ("t2_tse_tra_MPR", AX, (), "DERIVED\\SECONDARY", "x: derived"),
    ("t1_vibe_fs_tra_SUB", AX, (), ORIG, "x: derived"),
    ("ep2d_diff_tra", AX, (0,), ORIG, "unknown"),  # no b-value > 0: not DWI
    ("ep2d_diff_tra_b50_800_EXP", AX, (), "DERIVED\\PRIMARY\\DIFFUSION\\EXP", "x: exponential ADC"),
    # the scanner's trace is the DWI radiologists read; a derived trace of other images is not
    ("ep2d_diff_b50_800_tra_TRACEW", AX, (50, 800), TRACEW, "DWI"),
    ("ep2d_diff_b0_1000_sag_TRACEW", SAG, B, TRACEW, "DWIsag"),
    ("ep2d_diff_tra_TRACEW_MPR", AX, (), "DERIVED\\SECONDARY\\MPR", "x: derived"),
    # GE
    ("Ax T2 FSE", AX, (), ORIG, "T2axi"),
    ("Sag T2 FSE", SAG, (), ORIG, "T2sag"),
    ("Cor T2 SSFSE", COR, (), ORIG, "T2cor"),
    ("Ax T2 FSE FS", AX, (), ORIG, "T2FSaxi"),
    ("Sag T2 FRFSE FS", SAG, (), ORIG, "T2FSsag"),
    ("Ax T2 PROPELLER", AX, (), ORIG, "T2axi"),
    ("Ax DWI b1000", AX, B, ORIG, "DWI"),
    ("Ax DWI 50,800", AX, (50, 800), ORIG, "DWI"),
    ("Apparent Diffusion Coefficient (mm2/s)", AX, (), "DERIVED\\PRIMARY\\ADC", "ADC"),
    ("Sag DWI b800", SAG, (0, 800), ORIG, "DWIsag"),
    (
        "Exponential Apparent Diffusion Coefficient",
        AX,
        (),
        "DERIVED\\PRIMARY\\OTHER",
        "x: exponential ADC",
    ),
    ("Ax T1 FSE", AX, (), ORIG, "T1axi"),
    ("Sag T1 FSE", SAG, (), ORIG, "T1sag"),
    ("Ax LAVA FS", AX, (), ORIG, "T1FSaxi"),
    ("Ax LAVA-Flex", AX, (), ORIG, "T1FSaxi"),
    ("Ax LAVA FS +C", AX, (), ORIG, "CET1axi"),
    ("Sag LAVA +C", SAG, (), ORIG, "CET1sag"),
    ("Cor LAVA FS +C", COR, (), ORIG, "CET1cor"),
    ("Ax T1 FSE C+", AX, (), ORIG, "CET1axi"),
    ("3-Plane Loc", AX, (), ORIG, LOC),
    ("ASSET Cal", COR, (), ORIG, "x: calibration scan"),
    ("Ax T2 FLAIR", AX, (), ORIG, "x: FLAIR"),
    ("Ax T2* GRE", AX, (), ORIG, "x: T2*"),
    ("Cor MRCP 3D", COR, (), ORIG, "x: MRCP"),
    ("Ax DTI 25 dir", AX, B, ORIG, "x: diffusion tensor"),
    ("Ax fMRI rest", AX, (), ORIG, "x: functional MRI"),
    # Philips
    ("T2W_TSE_TRA", AX, (), ORIG, "T2axi"),
    ("T2W_TSE_SAG", SAG, (), ORIG, "T2sag"),
    ("T2W_TSE_COR", COR, (), ORIG, "T2cor"),
    ("sT2W/TSE", AX, (), ORIG, "T2axi"),
    ("T2W_SPAIR_TRA", AX, (), ORIG, "T2FSaxi"),
    ("T2W_SPIR_SAG", SAG, (), ORIG, "T2FSsag"),
    ("DWI_b1000", AX, B, ORIG, "DWI"),
    ("DWI_SSh_b0_1000", AX, B, ORIG, "DWI"),
    ("dADC_DWI", AX, (), ADC_TYPE, "ADC"),
    ("eADC_DWI", AX, (), "DERIVED\\PRIMARY\\EADC", "x: exponential ADC"),
    ("T1W_TSE_TRA", AX, (), ORIG, "T1axi"),
    ("T1W_mDIXON_TRA", AX, (), ORIG, "T1FSaxi"),
    ("T1W_mDIXON_TRA +C", AX, (), ORIG, "CET1axi"),
    ("eTHRIVE_TRA", AX, (), ORIG, "T1FSaxi"),
    ("dyn_eTHRIVE_TRA", AX, (), ORIG, "CET1axi"),
    ("Survey", AX, (), ORIG, LOC),
    ("SENSE Ref Scan", COR, (), ORIG, "x: calibration scan"),
    ("CoilSurvey", COR, (), ORIG, "x: calibration scan"),
    ("DTI_32dir", AX, B, ORIG, "x: diffusion tensor"),
    ("T2*W_FFE", AX, (), ORIG, "x: T2*"),
    ("T2W_FLAIR", AX, (), ORIG, "x: FLAIR"),
    ("sWIP_MRCP_3D", COR, (), ORIG, "x: MRCP"),
    # Canon (Toshiba)
    ("T2WI_FSE_AX", AX, (), ORIG, "T2axi"),
    ("T2WI_FSE_SAG", SAG, (), ORIG, "T2sag"),
    ("FS T2WI_SAG", SAG, (), ORIG, "T2FSsag"),
    ("DWI_b1000_AX", AX, B, ORIG, "DWI"),
    ("ADC", AX, (), "DERIVED\\SECONDARY\\ADC", "ADC"),
    ("T1WI_SE_AX", AX, (), ORIG, "T1axi"),
    ("T1WI_QUICK3D_FS_AX", AX, (), ORIG, "T1FSaxi"),
    ("T1WI_QUICK3D_FS_AX_Gd", AX, (), ORIG, "CET1axi"),
    ("Locator", COR, (), ORIG, LOC),
    # Fujifilm (Hitachi)
    ("T2W_FSE_Ax", AX, (), ORIG, "T2axi"),
    ("T2W_FSE_Sag", SAG, (), ORIG, "T2sag"),
    ("T2W_FSE_FatSep_Ax", AX, (), ORIG, "T2FSaxi"),
    ("DWI_b1000_SSEPI", AX, B, ORIG, "DWI"),
    ("ADC_b1000", AX, (), "DERIVED\\PRIMARY\\ADC", "ADC"),
    ("T1W_SE_Ax", AX, (), ORIG, "T1axi"),
    ("T1W_TIGRE_FS_Ax", AX, (), ORIG, "T1FSaxi"),
    ("T1W_TIGRE_FS_Ax_CE", AX, (), ORIG, "CET1axi"),
    ("Scanogram", SAG, (), ORIG, LOC),
    # United Imaging
    ("t2_fse_tra", AX, (), ORIG, "T2axi"),
    ("t2_fse_fs_sag", SAG, (), ORIG, "T2FSsag"),
    ("dwi_ssep_tra_b800", AX, (0, 800), ORIG, "DWI"),
    ("ADC_dwi_ssep_tra", AX, (), ADC_TYPE, "ADC"),
    ("t1_gre_fs_tra_+C", AX, (), ORIG, "CET1axi"),
    ("t1_fse_sag", SAG, (), ORIG, "T1sag"),
    ("t1_quick3d_tra", AX, (), ORIG, "T1axi"),
    ("PD_SPAIR_cor", COR, (), ORIG, "unknown"),
    # parts joined by '.*' are whole tokens too (a protocol name repeating the description)
    ("FS T1WI_QUICK3D_AX", AX, (), ORIG, "T1FSaxi"),
    ("T2WI_FSE_AX T2WI_FSE_AX", AX, (), ORIG, "T2axi"),
    ("T1W_FSE_Ax T1W_FSE_Ax", AX, (), ORIG, "T1axi"),
]


@pytest.fixture(scope="module")
def rules():
    return load_rules(ROOT / "config" / "sequences.yaml")


def test_the_table_has_a_hundred_descriptions_of_six_vendors():
    assert len(TABLE) >= 100 and len({row[0] for row in TABLE}) == len(TABLE)


@pytest.mark.parametrize(("description", "plane", "bvalues", "image_type", "expected"), TABLE)
def test_description_is_named(rules, description, plane, bvalues, image_type, expected):
    naming = name_series(
        rules, series(description, plane=plane, image_type=image_type, bvalues=bvalues)
    )
    if expected == "unknown":
        assert naming.sequence is None and naming.reason.startswith("unknown sequence"), naming
    elif expected.startswith("x: "):
        assert naming.sequence is None and naming.reason.startswith(expected[3:]), naming
    else:
        assert naming.sequence == expected, naming
