"""The naming rule table: vendor conventions, header facts, exclusions, unknown series."""

from pathlib import Path

import numpy as np
import pytest

from gynmri.io.dicom import Series
from gynmri.preprocessing.sequences import load_rules, name_series

ROOT = Path(__file__).resolve().parents[1]
AXIAL, SAGITTAL = np.array([1, 0, 0, 0, 1, 0.0]), np.array([0, 1, 0, 0, 0, -1.0])


def series(
    description, plane="axial", image_type="ORIGINAL\\PRIMARY\\M", bvalues=(), contrast=False
):
    orientation = AXIAL if plane == "axial" else SAGITTAL
    return Series(
        uid="1.2",
        files=[],
        number=1,
        description=description,
        protocol="",
        image_type=image_type,
        manufacturer="",
        model="",
        field_strength=3.0,
        orientation=orientation,
        plane=plane,
        pixel_spacing=(1, 1),
        slice_thickness=5,
        matrix=(256, 256),
        bvalues=list(bvalues),
        contrast=contrast,
    )


@pytest.fixture(scope="module")
def rules():
    return load_rules(ROOT / "config" / "sequences.yaml")


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"description": "t2_tse_tra"}, "T2axi"),
        ({"description": "Ax T2 FSE"}, "T2axi"),
        ({"description": "T2W_TSE_SAG", "plane": "sagittal"}, "T2sag"),
        ({"description": "ep2d_diff_tra_b0_1000", "bvalues": [0, 1000]}, "DWI"),
        ({"description": "Ax DWI b1000", "bvalues": [1000]}, "DWI"),
        ({"description": "dADC_DWI", "image_type": "DERIVED\\PRIMARY\\DIFFUSION\\ADC"}, "ADC"),
        ({"description": "Apparent Diffusion Coefficient (mm2/s)"}, "ADC"),
        ({"description": "t1_vibe_fs_tra", "contrast": True}, "CET1axi"),
        ({"description": "Ax T1 FSE +C"}, "CET1axi"),
        ({"description": "T1W_TSE_TRA"}, "T1axi"),
        ({"description": "T1 sag post Gd", "plane": "sagittal"}, "CET1sag"),
        ({"description": "t2_tse_fs_tra"}, "T2FSaxi"),
        ({"description": "T2W_SPAIR_SAG", "plane": "sagittal"}, "T2FSsag"),
        ({"description": "t1_vibe_fs_tra"}, "T1FSaxi"),
        ({"description": "Ax T1 FSE"}, "T1axi"),
        ({"description": "ADC sag", "plane": "sagittal"}, "ADCsag"),
        # GE's 3-D T1 gradient echo does not say T1
        ({"description": "Ax LAVA FS"}, "T1FSaxi"),
        ({"description": "Ax LAVA FS +C"}, "CET1axi"),
        ({"description": "Sag LAVA FS", "plane": "sagittal", "contrast": True}, "CET1sag"),
    ],
)
def test_vendor_conventions(rules, kwargs, expected):
    assert name_series(rules, series(**kwargs)).sequence == expected


def test_exclusions_and_unknown(rules):
    assert name_series(rules, series("3-Plane Loc")).reason == "localizer"
    assert (
        name_series(rules, series("x", image_type="ORIGINAL\\PRIMARY\\LOCALIZER")).reason
        == "localizer"
    )
    assert (
        name_series(rules, series("t2_tse_tra_MPR", image_type="DERIVED\\SECONDARY")).reason
        == "derived"
    )
    # a DWI-named series without any b-value > 0 is not DWI
    assert name_series(rules, series("ep2d_diff_tra", bvalues=[0])).sequence is None
    unknown = name_series(rules, series("PD_SPAIR_cor"))
    assert unknown.sequence is None and "unknown sequence ('PD_SPAIR_cor'" in unknown.reason


def test_bad_rule_table_is_refused(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - name: X\n    descripton: t2\n")
    with pytest.raises(ValueError, match="rule 1 has unknown keys.*descripton"):
        load_rules(path)
    path.write_text("rules:\n  - name: X\n    description: '(t2'\n")
    with pytest.raises(ValueError, match="regex"):
        load_rules(path)


def test_the_table_names_fifteen_sequences(rules):
    from gynmri.preprocessing.sequences import sequence_names

    assert len(sequence_names(rules)) == 15
