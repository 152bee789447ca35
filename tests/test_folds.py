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
