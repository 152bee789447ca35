# Discover + ingest, one job per patient: every file accounted for in QC, tumour slices
# harmonized (`ingest`), and every slice of the used series on the detector's wide grid
# (`ingest_wide`), so that a detector setting re-ingests no classifier input.

# What both ingest rules depend on besides their own settings.
INGEST_PARAMS = {
    "case": case_record,
    "dicom_root": config["cohort"]["dicom_root"],
    "masks_root": config["cohort"]["masks_root"],
    # only this patient's rows: editing another patient's range reruns only that patient
    "ranges": lambda wc: RANGES.get(case_record(wc)["patient_dir"], []),
    "sequences": SEQUENCES,
    "harmonize": config["harmonize"],
    "deid": config["deid"],
    # a fingerprint of the secret (not the secret): keys change, and ingest reruns, with it only
    "secret_id": SECRET_ID,
}


rule ingest:
    input:
        unpack(patient_inputs),
        rules=RULES_FILE,
    output:
        slices="results/slices/{patient}.parquet",
        qc="results/qc/patients/{patient}.json",
    log:
        "results/logs/ingest/{patient}.log",
    conda:
        "../envs/ingest.yaml"
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        **INGEST_PARAMS,
    script:
        "../scripts/ingest.py"


rule ingest_wide:
    input:
        unpack(patient_inputs),
        rules=RULES_FILE,
    output:
        wide="results/wide/{patient}.parquet",
    log:
        "results/logs/ingest_wide/{patient}.log",
    conda:
        "../envs/ingest.yaml"
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        **INGEST_PARAMS,
        wide_fov_mm=config["detect"]["fov_mm"],
    script:
        "../scripts/ingest.py"


rule qc_summary:
    input:
        qc=expand("results/qc/patients/{patient}.json", patient=PATIENTS),
    output:
        files=report(
            "results/qc/files.tsv",
            caption="../report/qc_files.rst",
            category="Cohort",
        ),
        series="results/qc/series.tsv",
        cohort=report(
            "results/qc/cohort.tsv",
            caption="../report/cohort.rst",
            category="Cohort",
        ),
    log:
        "results/logs/qc_summary.log",
    conda:
        "../envs/report.yaml"
    params:
        sequences=SEQUENCES,
    script:
        "../scripts/qc_summary.py"
