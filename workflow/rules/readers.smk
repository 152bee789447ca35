# Reader study: the readers' calls, unaided and AI-assisted, against the model on the same patients.
# Two classes: binary calls (McNemar); more: K-class calls, per-class and macro figures, McNemar per
# class and Stuart-Maxwell / Bowker on the K x K calls (gynmri.evaluation.readers and
# reader_comparisons).
if config["cohort"].get("readers"):

    rule readers:
        input:
            readers=config["cohort"]["readers"],
            predictions=expand(
                "results/models/{sequence}/fold{fold}/predictions.parquet",
                sequence=SEQUENCES,
                fold=FOLDS,
            ),
            ensembles="results/metrics/ensembles.tsv",
        output:
            table=report(
                "results/metrics/readers.tsv",
                caption="../report/readers.rst",
                category="Reader study",
            ),
            tests=report(
                "results/metrics/reader_tests.tsv",
                caption="../report/reader_tests.rst",
                category="Reader study",
            ),
            png=report(
                "results/figures/readers.png",
                caption="../report/readers_figure.rst",
                category="Reader study",
            ),
        log:
            "results/logs/readers.log",
        conda:
            "../envs/report.yaml"
        params:
            dir_to_key=dict(zip(CASES["patient_dir"], CASES["patient"])),
            classes=config["task"]["classes"],
            positive=config["task"]["positive"],
            scoring=SCORING,
        script:
            "../scripts/readers.py"
