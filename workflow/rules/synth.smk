# The embedded default cohort: synthetic multi-center DICOM, written by the workflow itself.
# Only active when config cohort/synthetic is set; real cohorts skip these rules.
if SYNTHETIC:

    rule synth_cases:
        output:
            cases=config["cohort"]["cases"],
        params:
            synthetic=config["cohort"]["synthetic"],
        log:
            "results/logs/synth/cases.log",
        conda:
            "../../envs/ingest.yaml"
        script:
            "../scripts/synth_cases.py"

    rule synth_patient:
        output:
            dicom=directory(os.path.join(config["cohort"]["dicom_root"], "{patient_dir}")),
            masks=directory(os.path.join(config["cohort"]["masks_root"], "{patient_dir}")),
        wildcard_constraints:
            patient_dir=r"[^/]+/[^/]+",
        params:
            synthetic=config["cohort"]["synthetic"],
        log:
            "results/logs/synth/{patient_dir}.log",
        conda:
            "../../envs/ingest.yaml"
        script:
            "../scripts/synth_patient.py"
