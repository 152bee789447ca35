# Patient-level stratified folds: depend on the cases table only, never on image content.


rule folds:
    input:
        cases=cases_table(),
    output:
        folds="results/splits/folds.tsv",
    params:
        patients=CASES[["patient", "label", "center"]].to_dict("records"),
        k=config["folds"]["k"],
        seed=config["folds"]["seed"],
    log:
        "results/logs/folds.log",
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/folds.py"
