"""trust23: a blobless partial clone (``git clone --filter=blob:none``) of a real repository: its missing blobs are
summed up (a few named, one error with the count) instead of one ``corrupt`` line each, the scan stays
incomplete (exit 3), and a ref naming a tree is listed without a failed walk (nothing is lost there)."""

from __future__ import annotations

from pathlib import Path

from conftest import git_run, init_repo, scan_json

FILES = 40


def _clone(tmp_path: Path) -> Path:
    src = init_repo(tmp_path / "src")
    for rnd in range(2):  # two versions of each file: 80 blobs, all missing from the clone
        for i in range(FILES):
            (src / f"f{i:02}.txt").write_text(f"version {rnd} of {i}\n")
        git_run(src, "add", "-A")
        git_run(src, "commit", "-q", "-m", f"round {rnd}")
    git_run(src, "config", "uploadpack.allowFilter", "true")
    clone = tmp_path / "clone"
    git_run(tmp_path, "clone", "-q", "--no-checkout", "--filter=blob:none", "--no-local", f"file://{src}",
            str(clone))
    return clone


def _check_summary(rep: dict, clone: Path) -> None:  # type: ignore[type-arg]
    listing = git_run(clone.parent / "src", "rev-list", "--objects", "--all", "--filter=object:type=blob").stdout
    blobs = sum(1 for ln in listing.splitlines() if " " in ln and ln.split(" ", 1)[1])  # the blobs of the source
    errs = rep["errors"]
    assert {e["kind"] for e in errs} == {"corrupt"}
    summary = [e for e in errs if e["path"] == str(clone)]
    one_by_one = [e for e in errs if e["path"] != str(clone)]
    assert len(one_by_one) == 5, errs  # a few named at their paths
    assert len(summary) == 1 and summary[0]["reason"].startswith(f"{blobs - 5} more git objects are missing")
    assert blobs >= 2 * FILES
    assert "walk failed" not in str(errs)


def test_missing_blobs_are_summed_up_and_the_scan_is_incomplete(tmp_path: Path) -> None:
    clone = _clone(tmp_path)
    code, rep = scan_json("--history", "--no-datastore", clone)
    assert code == 3
    _check_summary(rep, clone)


def test_a_ref_naming_a_tree_is_no_failed_walk(tmp_path: Path) -> None:
    clone = _clone(tmp_path)
    tree = git_run(clone, "rev-parse", "HEAD~1^{tree}").stdout.strip()
    git_run(clone, "update-ref", "refs/keep/tree", tree)  # the older tree: its blobs are missing too
    code, rep = scan_json("--history", "--no-datastore", clone)
    assert code == 3
    _check_summary(rep, clone)


def test_incremental_sweeps_sum_them_up_too(tmp_path: Path) -> None:
    """The next sweep tries each missing blob again (datastore): still missing, still one summary, not one read
    error per blob (the baseline read each and reported it)."""
    clone = _clone(tmp_path)
    store = tmp_path / "store.db"
    for _ in range(2):
        code, rep = scan_json("--history", "--datastore", store, clone)
        assert code == 3
        _check_summary(rep, clone)
