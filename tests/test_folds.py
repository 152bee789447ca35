import pandas as pd
import pytest

from gynmri.training.folds import LeakageError, assign_folds, check_covered, split


def _patients(n_a=20, n_b=9, centers=("c1", "c2", "c3")):
    rows = [
        {"patient": f"Pa{i:03d}", "label": "a", "center": centers[i % len(centers)]}
        for i in range(n_a)
    ]
    rows += [
        {"patient": f"Pb{i:03d}", "label": "b", "center": centers[i % len(centers)]}
        for i in range(n_b)
    ]
    return pd.DataFrame(rows)


def test_every_patient_once_and_labels_balanced_within_one():
    folds = assign_folds(_patients(), k=3, seed=1)
    assert len(folds) == 29 and folds["patient"].is_unique
    counts = folds.groupby(["label", "fold"]).size().unstack()
    assert (counts.max(axis=1) - counts.min(axis=1) <= 1).all()
    assert set(folds["fold"]) == {0, 1, 2}


def test_same_seed_same_folds_other_seed_differs():
    a = assign_folds(_patients(), k=3, seed=1)
    assert a.equals(assign_folds(_patients(), k=3, seed=1))
    assert not a["fold"].equals(assign_folds(_patients(), k=3, seed=2)["fold"])


def test_centers_spread_over_folds():
    folds = assign_folds(_patients(30, 30), k=3, seed=0)
    per = folds.groupby(["center", "fold"]).size().unstack()
    assert (per.max(axis=1) - per.min(axis=1) <= 2).all()


def test_too_few_patients_for_k_is_an_error():
    with pytest.raises(ValueError, match="fewer patients than folds"):
        assign_folds(_patients(10, 2), k=3, seed=0)


def test_split_and_leakage_checks():
    folds = assign_folds(_patients(), k=3, seed=1)
    train, test = split(folds, 0)
    assert not train & test and len(train) + len(test) == 29
    leaky = pd.concat([folds, folds.iloc[[0]].assign(fold=(folds["fold"].iloc[0] + 1) % 3)])
    with pytest.raises(LeakageError):
        split(leaky, int(folds["fold"].iloc[0]))
    with pytest.raises(LeakageError, match="missing"):
        check_covered(folds, set(folds["patient"]) | {"Pnew"})


def test_lock_keeps_existing_patients_and_balances_new_ones(tmp_path):
    from gynmri.training.folds import read_lock, update_lock

    lock = tmp_path / "folds.lock.tsv"
    first = update_lock(lock, _patients(20, 9), k=3, seed=1)
    pd.testing.assert_frame_equal(read_lock(lock), first, check_dtype=False)
    grown = pd.concat(
        [_patients(20, 9), _patients(5, 4).assign(patient=lambda d: d["patient"] + "x")]
    )
    second = update_lock(lock, grown, k=3, seed=1)
    before = first.set_index("patient")["fold"]
    after = second.set_index("patient")["fold"]
    assert (after[before.index] == before).all()  # nobody moved
    counts = second.groupby(["label", "fold"]).size().unstack()
    assert (counts.max(axis=1) - counts.min(axis=1) <= 1).all()
    assert len(read_lock(lock)) == 38
    # a patient leaving the cases table stays in the lock and keeps its fold on return
    third = update_lock(lock, grown.iloc[1:], k=3, seed=1)
    assert len(third) == 37 and len(read_lock(lock)) == 38
    back = update_lock(lock, grown, k=3, seed=1)
    pd.testing.assert_frame_equal(back, second, check_dtype=False)


def test_lock_refuses_label_change_and_other_k(tmp_path):
    from gynmri.training.folds import update_lock

    lock = tmp_path / "folds.lock.tsv"
    update_lock(lock, _patients(), k=3, seed=1)
    relabelled = _patients()
    relabelled.loc[0, "label"] = "b"
    with pytest.raises(LeakageError, match="label differs.*Pa000"):
        update_lock(lock, relabelled, k=3, seed=1)
    with pytest.raises(LeakageError, match="folds/k is 2"):
        update_lock(lock, _patients(), k=2, seed=1)


def test_leave_one_centre_out_folds_are_the_hospitals(tmp_path):
    from gynmri.training.folds import split, update_lock

    lock = tmp_path / "folds.lock.tsv"
    folds = update_lock(lock, _patients(), k=None, seed=1, scheme="centre")
    # one fold per hospital, numbered in name order; a fold's test set is exactly its hospital
    assert folds.groupby("fold")["center"].agg(set).to_dict() == {0: {"c1"}, 1: {"c2"}, 2: {"c3"}}
    train, test = split(folds, 1)
    assert {c for c in folds.set_index("patient").loc[sorted(test), "center"]} == {"c2"}
    assert "c2" not in set(folds.set_index("patient").loc[sorted(train), "center"])


def test_lock_records_both_schemes_and_a_new_hospital_gets_the_next_fold(tmp_path):
    from gynmri.training.folds import read_lock, update_lock

    lock = tmp_path / "folds.lock.tsv"
    kfold = update_lock(lock, _patients(), k=3, seed=1)
    # a hospital named before the others must not renumber them
    update_lock(lock, _patients(centers=("c2", "c3")), k=None, seed=1, scheme="centre")
    grown = pd.concat(
        [
            _patients(centers=("c2", "c3")),
            _patients(3, 3, ("c0",)).assign(patient=lambda d: d["patient"] + "n"),
        ]
    )
    centre = update_lock(lock, grown, k=None, seed=1, scheme="centre")
    assert centre.groupby("center")["fold"].first().to_dict() == {"c0": 2, "c2": 0, "c3": 1}
    written = pd.read_csv(lock, sep="\t")
    assert list(written.columns) == ["patient", "label", "center", "fold", "scheme"]
    assert written["scheme"].value_counts().to_dict() == {"kfold": 29, "centre": 35}
    assert written["scheme"].iloc[0] == "kfold"  # k-fold rows first, as locks were before
    pd.testing.assert_frame_equal(read_lock(lock), kfold, check_dtype=False)  # untouched


def test_lock_without_scheme_column_is_kfold_and_centre_lock_refuses_a_moved_patient(tmp_path):
    from gynmri.training.folds import read_lock, update_lock

    lock = tmp_path / "folds.lock.tsv"
    assign_folds(_patients(), k=3, seed=1).to_csv(lock, sep="\t", index=False)  # an old lock
    assert len(read_lock(lock)) == 29 and read_lock(lock, "centre").empty
    update_lock(lock, _patients(), k=None, seed=1, scheme="centre")
    moved = _patients()
    moved.loc[0, "center"] = "c3"
    with pytest.raises(LeakageError, match="center differs.*Pa000"):
        update_lock(lock, moved, k=None, seed=1, scheme="centre")
    with pytest.raises(ValueError, match="two hospitals"):
        update_lock(tmp_path / "one.tsv", _patients(centers=("c1",)), None, 1, scheme="centre")
    with pytest.raises(ValueError, match="unknown folds scheme"):
        update_lock(lock, _patients(), k=3, seed=1, scheme="loo")
