"""Benchmark DICOM ingest against dcm2niix on dcm_qa_nih.

    python bench/ingest.py [DATA_DIR] [--workers 2] [--repeat 3]

Copies the data to a temporary folder, then times (best of ``--repeat``):
- discovery: ``discover`` over each series folder (header-only reads), in worker processes;
- full ingest: discover + ``build_volumes`` for every series (headers, pixels, stacking);
- dcm2niix: ``dcm2niix -o OUT -f %s IN`` on the same folder, as a subprocess.
It also prints which reader (dicomsdl, pydicom) read the headers. The last line is
``ratio: <full-ingest files/s / dcm2niix files/s>``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from gynmri.io.dicom import discover, list_files
from gynmri.io.volumes import build_volumes

DEFAULT = Path(__file__).resolve().parents[2] / "shared/data/dcm_qa_nih"


def _discover(folder: Path) -> int:
    return len(discover(folder)[0])


def _ingest(folder: Path) -> int:
    slices = 0
    for series in discover(folder)[1]:
        volumes, _ = build_volumes(series)
        slices += sum(v.image.GetSize()[2] for v in volumes)
    return slices


def _best(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not (args.data / "In").is_dir():
        sys.exit(f"no dcm_qa_nih at {args.data}")
    dcm2niix = shutil.which("dcm2niix")
    if dcm2niix is None:
        sys.exit("dcm2niix not found: pip install -e '.[test]'")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "In"
        shutil.copytree(args.data / "In", data)
        folders = sorted({p.parent for p in data.rglob("*.dcm")})
        n_files = sum(len(list_files(f)) for f in folders)  # the 2 study READMEs aside
        with ProcessPoolExecutor(args.workers) as pool:
            list(pool.map(_discover, folders))  # warm the workers (imports) outside the timing
            t_disc, counts = _best(lambda: sum(pool.map(_discover, folders)), args.repeat)
            t_full, slices = _best(lambda: sum(pool.map(_ingest, folders)), args.repeat)
        assert counts == n_files, (counts, n_files)
        readers = Counter(r.reader or r.reason for f in folders for r in discover(f)[0])

        def convert() -> None:
            out = Path(tmp) / "nii"
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            cmd = [dcm2niix, "-o", str(out), "-f", "%s", str(data)]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)

        t_ref, _ = _best(convert, args.repeat)
    rate = {"discovery": n_files / t_disc, "ingest": n_files / t_full, "dcm2niix": n_files / t_ref}
    print(f"files: {n_files} in {len(folders)} series folders, {args.workers} workers")
    print("readers: " + ", ".join(f"{k} {v}" for k, v in sorted(readers.items())))
    print(f"discovery:   {t_disc:.3f} s  {rate['discovery']:.0f} files/s")
    print(
        f"full ingest: {t_full:.3f} s  {rate['ingest']:.0f} files/s  {slices / t_full:.0f} slices/s"
    )
    print(f"dcm2niix:    {t_ref:.3f} s  {rate['dcm2niix']:.0f} files/s")
    print(f"discovery / dcm2niix: {rate['discovery'] / rate['dcm2niix']:.2f}")
    print(f"ratio: {rate['ingest'] / rate['dcm2niix']:.3f}")


if __name__ == "__main__":
    main()
