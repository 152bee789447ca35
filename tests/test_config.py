import copy
from pathlib import Path

import pytest
import yaml

from gynmri.config import ConfigError, load_config, validate_config
from gynmri.io.cases import CasesError, load_cases, read_cases_table
from gynmri.io.deid import MissingKeyError, load_secret, patient_key

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def config():
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def test_shipped_configs_are_valid():
    cfg = load_config(ROOT / "config" / "config.yaml")
    assert cfg["deid"]["key_env"] == "GYNMRI_KEY"  # default filled in
    assert cfg["evaluate"]["aggregate"] == "mean"


def test_unknown_key_is_named(config):
    config["train"]["epoch"] = 3
    with pytest.raises(ConfigError, match="'train'.*epoch"):
        validate_config(config)


def test_wrong_value_is_named(config):
    config["evaluate"]["aggregate"] = "median"
    with pytest.raises(ConfigError, match="evaluate/aggregate"):
        validate_config(config)


def test_positive_class_must_be_a_class(config):
    config["task"]["positive"] = ["carcinoma"]
    with pytest.raises(ConfigError, match="task/positive"):
        validate_config(config)


def test_used_sequences_must_be_written_by_the_synthetic_cohort(config):
    config["sequences"]["use"] = ["T2axi", "CET1axi"]
    with pytest.raises(ConfigError, match=r"sequences/use.*CET1axi.*cohort/synthetic/sequences"):
        validate_config(config)
    config["cohort"]["synthetic"]["sequences"] = ["T2axi", "T2sag", "DWI", "ADC", "CET1axi"]
    assert validate_config(config)["sequences"]["use"] == ["T2axi", "CET1axi"]


def test_folds_k_is_needed_unless_every_fold_is_a_hospital(config):
    del config["folds"]["k"]
    config["folds"]["scheme"] = "both"
    with pytest.raises(ConfigError, match="folds/k.*required with folds/scheme both"):
        validate_config(copy.deepcopy(config))
    config["folds"]["scheme"] = "centre"
    assert "k" not in validate_config(config)["folds"]
    config["folds"]["scheme"] = "hospital"
    with pytest.raises(ConfigError, match="folds/scheme"):
        validate_config(config)


def test_clinical_evaluation_keys_are_checked(config):
    config["evaluate"]["recalibrate"] = "beta"
    with pytest.raises(ConfigError, match="evaluate/recalibrate"):
        validate_config(copy.deepcopy(config))
    config["evaluate"]["recalibrate"] = None
    config["evaluate"]["decision_points"] = [0.1, 1.0]
    with pytest.raises(ConfigError, match="evaluate/decision_points"):
        validate_config(config)


def test_cases_table_errors_name_row_and_column(tmp_path):
    path = tmp_path / "cases.tsv"
    path.write_text("patient_dir\tcenter\tlabel\np1\tc1\tmyoma\np2\tc1\tcarcinoma\n")
    with pytest.raises(CasesError, match="row 3.*carcinoma"):
        read_cases_table(path, ["myoma", "sarcoma"])
    path.write_text("patient_dir\tlabel\np1\tmyoma\n")
    with pytest.raises(CasesError, match="missing columns.*center"):
        read_cases_table(path, ["myoma", "sarcoma"])


def test_real_cohort_needs_a_secret(config, tmp_path, monkeypatch):
    monkeypatch.delenv("GYNMRI_KEY", raising=False)
    with pytest.raises(MissingKeyError, match="GYNMRI_KEY"):
        load_secret({"key_env": "GYNMRI_KEY"}, synthetic=False)
    cases = tmp_path / "cases.tsv"
    cases.write_text("patient_dir\tcenter\tlabel\nHA1234567\tc1\tmyoma\n")
    cfg = copy.deepcopy(config)
    del cfg["cohort"]["synthetic"]
    cfg["cohort"]["cases"] = str(cases)
    with pytest.raises(MissingKeyError):
        load_cases(cfg)
    monkeypatch.setenv("GYNMRI_KEY", "s3cret")
    table = load_cases(cfg)
    assert table.loc[0, "patient"] == patient_key(b"s3cret", "c1", "HA1234567")
    assert "HA1234567" not in table.loc[0, "patient"]


def test_keys_are_stable_and_depend_on_the_secret():
    assert patient_key(b"a", "c", "x") == patient_key(b"a", "c", "x")
    assert patient_key(b"a", "c", "x") != patient_key(b"b", "c", "x")


def test_a_job_refuses_a_secret_other_than_the_planned_one(monkeypatch):
    from gynmri.io.deid import DEMO_KEY, job_secret, secret_id

    monkeypatch.setenv("GYNMRI_KEY", "the real secret")
    planned = secret_id(b"the real secret")
    assert job_secret({}, planned) == b"the real secret"
    assert "real secret" not in planned
    monkeypatch.delenv("GYNMRI_KEY")  # the job does not see the variable: the demo key is not ok
    with pytest.raises(MissingKeyError, match="GYNMRI_KEY"):
        job_secret({}, planned)
    assert job_secret({}, secret_id(DEMO_KEY)) == DEMO_KEY  # a synthetic cohort


def test_a_subgroup_column_the_cases_table_lacks_is_named(config):
    config["evaluate"]["subgroups"] = ["hospital", "smoker"]
    with pytest.raises(CasesError, match=r"evaluate/subgroups \['smoker'\]"):
        load_cases(validate_config(config))
    # the exam's own variables need no column; a cases-table column comes along with the cases
    config["evaluate"]["subgroups"] = ["hospital", "vendor", "field_strength", "menopausal"]
    cases = load_cases(validate_config(config))
    assert "menopausal" in cases.columns and "vendor" not in cases.columns
