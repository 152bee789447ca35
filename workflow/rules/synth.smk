# The embedded default cohort: synthetic multi-center DICOM, written by the workflow itself.
# Only active when config cohort/synthetic is set; real cohorts skip these rules.
if SYNTHETIC:
    from gynmri.synth import DEFAULT_SEQUENCES

    # The patients' settings, the default sequences left out (synth_spec fills them in): results
    # written before cohort/synthetic/sequences existed keep their params, so that the same
    # files are not written again, and everything below them rerun.
    SYNTH_PATIENT = {
        k: v
        for k, v in config["cohort"]["synthetic"].items()
        if k != "sequences" or list(v) != list(DEFAULT_SEQUENCES)
    }

    rule synth_cases:
        output:
            cases=config["cohort"]["cases"],
        log:
            "results/logs/synth/cases.log",
        conda:
            "../envs/ingest.yaml"
        params:
            # the cases table does not depend on which series are written: choosing them
            # reruns only the patients
            synthetic={k: v for k, v in config["cohort"]["synthetic"].items() if k != "sequences"},
        script:
            "../scripts/synth_cases.py"

    rule synth_patient:
        output:
            dicom=directory(os.path.join(config["cohort"]["dicom_root"], "{patient_dir}")),
            masks=directory(os.path.join(config["cohort"]["masks_root"], "{patient_dir}")),
        log:
            "results/logs/synth/{patient_dir}.log",
        wildcard_constraints:
            patient_dir=r"[^/]+/[^/]+",
        conda:
            "../envs/ingest.yaml"
        params:
            synthetic=SYNTH_PATIENT,
        script:
            "../scripts/synth_patient.py"

    if config["cohort"].get("readers"):

        rule synth_readers:
            output:
                readers=config["cohort"]["readers"],
            log:
                "results/logs/synth/readers.log",
            conda:
                "../envs/ingest.yaml"
            params:
                patients=CASES[["patient", "patient_dir", "label"]].to_dict("records"),
                classes=config["task"]["classes"],
                positive=config["task"]["positive"],
                seed=config["cohort"]["synthetic"]["readers_seed"],
            script:
                "../scripts/synth_readers.py"
