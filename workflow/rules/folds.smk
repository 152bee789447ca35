# Patient-level stratified folds. The assignment itself is made at parse time from the lock
# file (config folds/lock, see common.smk); this rule publishes it with the results.


rule folds:
    output:
        folds="results/splits/folds.tsv",
    log:
        "results/logs/folds.log",
    conda:
        "../envs/report.yaml"
    params:
        folds=FOLD_TABLE.to_dict("records"),
    script:
        "../scripts/folds.py"
