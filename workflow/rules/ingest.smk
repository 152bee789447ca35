# Discover + ingest, one job per patient: every file accounted for in QC, tumour slices harmonised.


rule ingest:
    input:
        unpack(patient_inputs),
        rules=RULES_FILE,
    output:
        slices="results/slices/{patient}.parquet",
        wide="results/wide/{patient}.parquet",
        qc="results/qc/patients/{patient}.json",
    params:
        case=lambda wc: case(wc)[["patient_dir", "center", "label", "label_index"]].to_dict(),
        masks_root=config["cohort"]["masks_root"],
        # only this patient's rows: editing another patient's range reruns only that patient
        ranges=lambda wc: RANGES.get(case(wc).patient_dir, []),
        dicom_root=config["cohort"]["dicom_root"],
    log:
        "results/logs/ingest/{patient}.log",
    benchmark:
        "results/benchmarks/ingest/{patient}.tsv"
    resources:
        mem_mb=2000,
        runtime=20,
    conda:
        "../../envs/ingest.yaml"
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
        "../../envs/report.yaml"
    script:
        "../scripts/qc_summary.py"
