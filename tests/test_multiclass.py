"""Three-class evaluation (per class, macro, confusion, binary summaries) and clinical fusion."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import confusion_matrix, roc_auc_score

from gynmri.config import ConfigError, check_consistency
from gynmri.evaluation.classes import multiclass_metrics
from gynmri.evaluation.fusion import FusionError, encode_covariates, fuse, stacked_scores
from gynmri.evaluation.metrics import ensemble_metrics
from gynmri.evaluation.tables import class_tables, summary_metrics, task_summaries
from gynmri.io.cases import CasesError, read_cases_table

CLASSES = ["benign", "borderline", "malignant"]


def _scores(n: int = 90, seed: int = 0, signal: float = 1.5, k: int = 3) -> pd.DataFrame:
    """Patient scores whose probabilities lean towards the true class by ``signal``."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    logits = rng.normal(size=(n, 3)) + signal * np.eye(3)[y]
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    table = pd.DataFrame(p, columns=[f"p_{c}" for c in CLASSES])
    table.insert(0, "label", np.asarray(CLASSES)[y])
    table.insert(0, "fold", rng.permutation(np.arange(n) % k))
    table.insert(0, "patient", [f"P{i:03x}" for i in range(n)])
    return table


def test_per_class_and_macro_metrics_agree_with_sklearn():
    scores = _scores()
    summary, per_class, confusion = multiclass_metrics(scores, CLASSES)
    y = scores["label"].map(CLASSES.index).to_numpy()
    probs = scores[[f"p_{c}" for c in CLASSES]].to_numpy()
    pred = probs.argmax(axis=1)
    cm = confusion_matrix(y, pred, labels=[0, 1, 2])
    got = confusion.pivot(index="true", columns="predicted", values="n").loc[CLASSES, CLASSES]
    np.testing.assert_array_equal(got.to_numpy(), cm)
    for c, row in per_class.set_index("class").iterrows():
        i = CLASSES.index(c)
        assert row["sensitivity"] == pytest.approx(cm[i, i] / cm[i].sum())
        others = np.delete(np.arange(3), i)
        assert row["specificity"] == pytest.approx(1 - cm[others, i].sum() / cm[others].sum())
        assert row["auc"] == pytest.approx(roc_auc_score(y == i, probs[:, i]))
    assert summary["macro_auc"] == pytest.approx(per_class["auc"].mean())
    assert summary["macro_ss_avg"] == pytest.approx(per_class["ss_avg"].mean())
    assert summary["top1_accuracy"] == pytest.approx(np.trace(cm) / cm.sum())


def test_macro_bootstrap_interval_brackets_the_estimate():
    scores = _scores(signal=1.0)
    summary, _, _ = multiclass_metrics(scores, CLASSES, n_boot=300, seed=4)
    for what in ("ss_avg", "auc"):
        lo, hi = summary[f"macro_{what}_lo"], summary[f"macro_{what}_hi"]
        assert lo < summary[f"macro_{what}"] < hi
        assert hi - lo < 0.4
    again, _, _ = multiclass_metrics(scores, CLASSES, n_boot=300, seed=4)
    assert again["macro_auc_lo"] == summary["macro_auc_lo"]  # seeded


def test_binary_summaries_use_their_own_positive_classes():
    scores = _scores()
    task = {
        "positive": ["malignant"],
        "summaries": {"mal": ["malignant"], "nonbenign": ["borderline", "malignant"]},
    }
    table = summary_metrics(scores, task_summaries(task), 0.5).set_index("summary")
    y = scores["label"].to_numpy()
    assert table.loc["nonbenign", "n_positive"] == int((y != "benign").sum())
    s = scores["p_borderline"] + scores["p_malignant"]
    assert table.loc["nonbenign", "auc"] == pytest.approx(roc_auc_score(y != "benign", s))
    assert table.loc["mal", "n_positive"] == int((y == "malignant").sum())
    assert list(task_summaries({"positive": ["malignant"], "summaries": {}})) == [
        "malignant_vs_rest"
    ]


def test_class_tables_cover_every_set_with_a_macro_row():
    sets = {"T2axi": _scores(seed=1), "DWI": _scores(seed=2, signal=0.2)}
    tables = class_tables(
        sets, CLASSES, {"mal": ["malignant"]}, 0.5, kinds={"T2axi": "sequence", "DWI": "sequence"}
    )
    per_class = tables["classes"]
    assert set(per_class["class"]) == {*CLASSES, "macro"}
    assert len(per_class) == 2 * 4
    assert len(tables["confusion"]) == 2 * 9 and tables["confusion"]["n"].sum() == 2 * 90
    macro = per_class[per_class["class"] == "macro"].set_index("scores")
    assert macro.loc["T2axi", "auc"] > macro.loc["DWI", "auc"]  # more signal, better AUC


def test_ensembles_rank_by_macro_metrics():
    parts = []
    for seq, signal, seed in (("T2axi", 2.0, 1), ("DWI", 0.0, 2)):
        parts.append(_scores(seed=seed, signal=signal).assign(sequence=seq))
    parts[1]["fold"] = parts[0]["fold"]  # a patient is in one fold
    scores = pd.concat(parts, ignore_index=True)
    table = ensemble_metrics(
        scores, ["T2axi", "DWI"], CLASSES, ["malignant"], 0.5, "mean", rank_by="macro_auc"
    )
    assert table["macro_auc"].is_monotonic_decreasing
    assert table["ensemble"].iloc[0] == "T2axi"
    with pytest.raises(ValueError, match="rank"):
        ensemble_metrics(scores, ["T2axi"], CLASSES, ["malignant"], 0.5, "mean", rank_by="x")


def _covariates(scores: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Covariates that carry class information the (weak) image scores lack."""
    rng = np.random.default_rng(seed)
    y = scores["label"].map(CLASSES.index).to_numpy()
    ca125 = np.exp(rng.normal(3 + 1.2 * y, 0.6))
    age = rng.normal(42 + 8 * y, 8).round()
    table = pd.DataFrame({"patient": scores["patient"], "age": age, "ca125": ca125.round(1)})
    table["menopausal"] = np.where(age > 51, "post", "pre")
    table.loc[::10, "ca125"] = np.nan  # missing values are imputed
    return table


SPEC = {"age": "numeric", "ca125": "log", "menopausal": "category"}


def test_clinical_data_add_to_weak_image_scores():
    image = _scores(n=150, signal=0.4, seed=3)
    covariates = _covariates(image)
    image_seq = image.assign(sequence="T2axi")
    sets, coef, info = fuse(image_seq, covariates, CLASSES, {"covariates": SPEC}, ["T2axi"], "mean")
    assert list(sets) == ["image", "clinical", "image+clinical"]
    assert info["imputed_cells"] == 15
    auc = {name: multiclass_metrics(s, CLASSES)[0]["macro_auc"] for name, s in sets.items()}
    assert auc["image+clinical"] > auc["image"] + 0.05
    assert auc["clinical"] > 0.7
    for s in sets.values():
        probs = s[[f"p_{c}" for c in CLASSES]].to_numpy()
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    assert {"feature", "class", "coefficient"} <= set(coef.columns)
    # CA-125 raises the malignant log-odds (it does so in the simulated data)
    row = coef[(coef["class"] == "malignant") & coef["feature"].str.startswith("ca125")]
    assert row["coefficient"].iloc[0] > 0


def test_a_test_patient_never_informs_its_own_score():
    image = _scores(n=60, signal=0.8, seed=5)
    covariates = _covariates(image)
    base, _ = stacked_scores(image, covariates, CLASSES, SPEC)
    # change one fold-0 patient's label and covariates: its own score must not move
    changed_image = image.copy()
    changed_cov = covariates.copy()
    who = image.index[image["fold"] == 0][0]
    changed_image.loc[who, "label"] = (
        "benign" if image.loc[who, "label"] != "benign" else "malignant"
    )
    changed_cov.loc[who, "age"] = (
        99.0  # also outside the range: must not shift its own encoding fit
    )
    after, _ = stacked_scores(changed_image, changed_cov, CLASSES, SPEC)
    cols = [f"p_{c}" for c in CLASSES]
    fold0 = (image["fold"] == 0).to_numpy()
    others_in_fold0 = fold0 & (image.index != who)
    np.testing.assert_allclose(
        after.loc[others_in_fold0, cols].to_numpy(), base.loc[others_in_fold0, cols].to_numpy()
    )
    assert not np.allclose(after.loc[~fold0, cols].to_numpy(), base.loc[~fold0, cols].to_numpy())


def test_covariate_encoding_is_fitted_on_training_rows_and_errors_name_the_column():
    table = pd.DataFrame(
        {
            "age": [30, 40, np.nan, 90],
            "ca125": ["10", "", "20", "x"],
            "meno": ["pre", "pre", "post", ""],
        }
    )
    train = np.array([True, True, False, False])
    x, names, imputed = encode_covariates(
        table[["age", "meno"]], {"age": "numeric", "meno": "category"}, train
    )
    assert imputed == 2
    assert x[:2, 0].mean() == pytest.approx(0.0)  # standardized on the training rows
    assert x[2, 0] == pytest.approx(x[:2, 0].mean())  # missing -> training median (35)
    # 'post' never occurs among the training rows: no indicator for it (it counts as 'pre')
    assert names == ["age (numeric, standardized)"]
    x, names, _ = encode_covariates(table[["meno"]], {"meno": "category"}, np.ones(4, bool))
    assert names == ["meno=post (vs pre)"] and x[:, 0].tolist() == [0, 0, 1, 0]
    with pytest.raises(FusionError, match="ca125.*'x' is not a number"):
        encode_covariates(table, {"ca125": "numeric"}, np.ones(4, bool))
    with pytest.raises(FusionError, match="'weight' is not a column"):
        encode_covariates(table, {"weight": "numeric"}, train)


def test_cases_table_needs_the_covariate_columns(tmp_path):
    path = tmp_path / "cases.tsv"
    path.write_text("patient_dir\tcenter\tlabel\tage\nA/1\tA\tbenign\t40\nA/2\tA\tmalignant\t\n")
    table = read_cases_table(path, CLASSES, ["age"])
    assert list(table.columns) == ["patient_dir", "center", "label", "age"]
    assert table["age"].tolist() == ["40", ""]
    with pytest.raises(CasesError, match="missing columns \\['ca125'\\]"):
        read_cases_table(path, CLASSES, ["age", "ca125"])


def test_config_checks_summaries_and_fusion_sequences():
    config = {
        "task": {
            "classes": CLASSES,
            "positive": ["malignant"],
            "summaries": {"x": ["benign", "cancer"]},
        },
        "sequences": {"use": ["T2axi"]},
        "cohort": {},
    }
    with pytest.raises(ConfigError, match="task/summaries/x.*cancer"):
        check_consistency(config)
    config["task"]["summaries"] = {"x": ["malignant"]}
    config["fusion"] = {"covariates": {"age": "numeric"}, "sequences": ["DWI"]}
    with pytest.raises(ConfigError, match="fusion/sequences"):
        check_consistency(config)


def test_no_task_class_name_in_rules_or_package():
    """A task is its config: class names appear only in config/ and the synthetic generator."""
    import re
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[1]
    names = set()
    for cfg in (root / "config").glob("*.yaml"):
        task = (yaml.safe_load(cfg.read_text()) or {}).get("task") or {}
        names.update(task.get("classes", []))
    assert {"sarcoma", "malignant"} <= names  # both tasks' configs were read
    pattern = re.compile("|".join(sorted(names)), re.IGNORECASE)
    files = [
        root / "Snakefile",
        *(root / "workflow").rglob("*.*"),
        *(root / "src/gynmri").rglob("*.py"),
    ]
    hits = [
        f"{f.relative_to(root)}:{i}: {line.strip()}"
        for f in files
        if "synth" not in f.relative_to(root).parts
        for i, line in enumerate(f.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert not hits, "\n".join(hits)
