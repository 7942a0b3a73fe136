"""History mode (``scan --history``): real repositories built with the git CLI in tmp_path.

Ground truth is what each test commits: which synthetic token went into which commit, at which path.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from veritensor_fast.engine import scan
from veritensor_fast.findings import Finding
from veritensor_fast.sources.git import GitHistorySource, scan_history, unquote_path
from veritensor_fast.worker import ScanOptions

from conftest import git_run, hf_token, scan_json

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ENV = {"GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "ada@example.com", "GIT_COMMITTER_NAME": "Ada",
       "GIT_COMMITTER_EMAIL": "ada@example.com", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}


class Repo:
    def __init__(self, path: Path, bare: bool = False) -> None:
        self.path = path
        self.t = 1_700_000_000
        subprocess.run(["git", "init", "-q", "-b", "main", *(["--bare"] if bare else []), str(path)], check=True,
                       env={**os.environ, **ENV})

    def git(self, *args: str) -> str:
        self.t += 60
        env = {**os.environ, **ENV, "GIT_AUTHOR_DATE": f"{self.t} +0000", "GIT_COMMITTER_DATE": f"{self.t} +0000"}
        return subprocess.run(["git", "-C", str(self.path), *args], check=True, capture_output=True, text=True,
                              env=env).stdout.strip()

    def write(self, rel: str, text: str) -> None:
        p = self.path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)

    def commit(self, msg: str, **files: str | None) -> str:
        for rel, text in files.items():
            rel = rel.replace("__", "/")
            if text is None:
                self.git("rm", "-q", rel)
            else:
                self.write(rel, text)
                self.git("add", rel)
        self.git("commit", "-q", "--allow-empty", "-m", msg)
        return self.git("rev-parse", "HEAD")


def history(repo: Repo | Path, **kw: Any) -> Any:
    kw.setdefault("use_datastore", False)
    return scan_history([str(repo.path if isinstance(repo, Repo) else repo)], ScanOptions(), jobs=1, **kw)


def by_fp(findings: list[Finding]) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for f in findings:
        out.setdefault(f.redacted + f.fingerprint, []).append(f)
    return out


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path / "r")


def test_token_added_then_deleted(repo: Repo) -> None:
    tok = hf_token()
    repo.commit("init", **{"README.md": "hello\n"})
    c1 = repo.commit("add config\n\nlonger body", **{"src__cfg.py": f'TOKEN = "{tok}"\n'})
    repo.commit("remove token", **{"src__cfg.py": "TOKEN = None\n"})
    r = history(repo)
    assert not r.errors
    [f] = r.findings
    assert f.rule_id == "huggingface.user-token" and f.path == "src/cfg.py" and f.secret == tok
    assert f.commit is not None
    assert f.commit["id"] == c1 and f.commit["message"] == "add config"
    assert f.commit["author"] == "Ada" and f.commit["email"] == "ada@example.com"
    assert f.commit["date"].startswith("2023-11-14T") and f.commit["path"] == "src/cfg.py"
    assert f.commit["at_head"] is False
    assert f.commit["blob"] == repo.git("rev-parse", f"{c1}:src/cfg.py")


def test_still_at_head_and_moved(repo: Repo) -> None:
    tok, tok2 = hf_token(), hf_token()
    repo.commit("a", **{"a.py": f'T = "{tok}"\n', "b.py": f'U = "{tok2}"\n'})
    repo.commit("edit a", **{"a.py": f'T = "{tok}"\nX = 1\n'})
    repo.commit("move b", **{"b.py": None, "c.py": f'U = "{tok2}"  # moved\n'})
    r = history(repo)
    at_head = {(f.path, f.secret): f.commit["at_head"] for f in r.findings if f.commit}
    assert at_head == {("a.py", tok): True, ("b.py", tok2): True, ("c.py", tok2): True}


def test_same_blob_on_two_branches_scanned_once(repo: Repo) -> None:
    tok = hf_token()
    repo.commit("init", **{"README.md": "x\n"})
    repo.git("checkout", "-q", "-b", "a")
    ca = repo.commit("on a", **{"k.py": f"K = '{tok}'\n"})
    repo.git("checkout", "-q", "main")
    repo.git("checkout", "-q", "-b", "b")
    repo.commit("on b", **{"k.py": f"K = '{tok}'\n"})
    r = history(repo)
    assert r.stats["blobs_scanned"] == r.stats["blobs_total"] == 2  # README + the one shared blob
    [f] = r.findings
    assert f.commit is not None and f.commit["id"] == ca  # the older of the two introducing commits


def test_notebook_token_only_in_history(repo: Repo) -> None:
    tok = hf_token()
    nb = {"cells": [{"cell_type": "code", "execution_count": 1, "metadata": {}, "outputs": [
        {"name": "stdout", "output_type": "stream", "text": [f"logged in with {tok}\n"]}],
        "source": ["from huggingface_hub import login\n", "login()\n"]}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    c1 = repo.commit("notebook", **{"nb__train.ipynb": json.dumps(nb, indent=1)})
    repo.commit("drop notebook", **{"nb__train.ipynb": None})
    r = history(repo)
    [f] = r.findings
    assert f.path == "nb/train.ipynb" and f.secret == tok and f.commit is not None
    assert f.commit["id"] == c1 and f.commit["at_head"] is False


def test_merge_commit_and_tag_only_commit(repo: Repo) -> None:
    t_side, t_merge, t_tag = hf_token(), hf_token(), hf_token()
    repo.commit("init", **{"f.txt": "base\n"})
    repo.git("checkout", "-q", "-b", "side")
    c_side = repo.commit("side", **{"side.py": f"S = '{t_side}'\n", "f.txt": "side\n"})
    repo.git("checkout", "-q", "main")
    repo.commit("main", **{"f.txt": "main\n"})
    subprocess.run(["git", "-C", str(repo.path), "merge", "-q", "side"], capture_output=True, env={**os.environ, **ENV})
    repo.write("f.txt", f"resolved {t_merge}\n")
    repo.git("add", "f.txt")
    repo.git("commit", "-q", "--no-edit")
    c_merge = repo.git("rev-parse", "HEAD")
    assert repo.git("rev-list", "--parents", "-n1", "HEAD").count(" ") == 2
    repo.git("branch", "-q", "-D", "side")
    # a commit reachable only from a tag
    repo.git("checkout", "-q", "-b", "tmp")
    c_tag = repo.commit("tagged", **{"t.py": f"T = '{t_tag}'\n"})
    repo.git("tag", "-a", "v1", "-m", "release")
    repo.git("checkout", "-q", "main")
    repo.git("branch", "-q", "-D", "tmp")
    r = history(repo)
    got = {f.secret: f.commit["id"] for f in r.findings if f.commit}
    assert got == {t_side: c_side, t_merge: c_merge, t_tag: c_tag}
    assert {f.secret: f.commit["at_head"] for f in r.findings if f.commit} == {
        t_side: True, t_merge: True, t_tag: False}


def test_stash_is_scanned(repo: Repo) -> None:
    t1, t2 = hf_token(), hf_token()
    repo.commit("init", **{"a.py": "A = 1\n"})
    repo.write("a.py", f"A = '{t1}'\n")
    repo.git("stash", "-q")
    repo.write("a.py", f"A = '{t2}'\n")
    repo.git("stash", "-q")  # the first stash now lives only in the stash reflog
    r = history(repo)
    assert {f.secret for f in r.findings} == {t1, t2}
    assert all(f.commit and f.commit["id"] and f.commit["at_head"] is False for f in r.findings)


def test_bare_repo_and_default_datastore_in_cache(tmp_path: Path, repo: Repo, monkeypatch: Any) -> None:
    tok = hf_token()
    repo.commit("x", **{"x.env": f"HF_TOKEN={tok}\n"})
    bare = tmp_path / "bare.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo.path), str(bare)], check=True)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    r = history(bare, use_datastore=True)
    assert [f.secret for f in r.findings] == [tok] and not r.errors
    assert r.findings[0].commit and r.findings[0].commit["at_head"] is True
    assert str(r.stats["datastore"]).startswith(str(tmp_path / "cache"))
    assert not (bare / "veritensor-fast").exists()


def test_default_datastore_not_in_the_repository(repo: Repo) -> None:
    repo.commit("x", **{"x.txt": "nothing\n"})
    r = history(repo, use_datastore=True)
    assert not str(r.stats["datastore"]).startswith(str(repo.path))  # never inside the scanned repository


def test_shallow_clone_reports_missing_history(tmp_path: Path, repo: Repo) -> None:
    tok = hf_token()
    repo.commit("old", **{"a.py": f"A = '{tok}'\n"})
    repo.commit("rm", **{"a.py": "A = 0\n"})
    head = repo.commit("new", **{"b.py": "B = 1\n"})
    shallow = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{repo.path}", str(shallow)], check=True)
    r = history(shallow)
    assert not r.findings  # the token is in history that the clone does not have
    assert [(e.kind, e.reason) for e in r.errors] == [("limit", f"shallow clone: history before {head} not available")]


@pytest.mark.parametrize("order", ["pack", "stream"])
def test_corrupt_object_reported_and_sweep_continues(repo: Repo, order: str) -> None:
    tok, tok2 = hf_token(), hf_token()
    repo.commit("a", **{"bad.py": "X = '" + "y" * 3000 + "'\n" + f"A = '{tok}'\n", "good.py": f"B = '{tok2}'\n"})
    oid = repo.git("rev-parse", "HEAD:bad.py")
    obj = repo.path / ".git" / "objects" / oid[:2] / oid[2:]
    data = bytearray(obj.read_bytes())
    data[len(data) // 2: len(data) // 2 + 40] = bytes(40)  # valid zlib header, corrupt stream
    obj.chmod(0o644)
    obj.write_bytes(bytes(data))
    r = history(repo, order=order)
    assert [f.secret for f in r.findings] == [tok2]
    assert [(e.path, e.kind) for e in r.errors] == [("bad.py", "corrupt")]
    assert oid in r.errors[0].reason and tok not in r.errors[0].reason
    obj.write_bytes(b"not even a zlib header")  # unreadable header: listed as missing, still reported
    r = history(repo, order=order)
    assert [f.secret for f in r.findings] == [tok2]
    assert [(e.kind, oid in e.reason) for e in r.errors] == [("corrupt", True)]
    obj.unlink()  # gone altogether
    r = history(repo, order=order)
    assert [f.secret for f in r.findings] == [tok2]
    assert [(e.kind, oid in e.reason) for e in r.errors] == [("corrupt", True)]


def test_all_objects_scans_unreachable_blobs(repo: Repo) -> None:
    tok = hf_token()
    repo.commit("x", **{"x.txt": "x\n"})
    repo.write("loose.txt", f"{tok}\n")
    oid = repo.git("hash-object", "-w", "loose.txt")
    assert history(repo).findings == []
    [f] = history(repo, all_objects=True).findings
    assert f.path == f"unreachable/{oid}" and f.commit is not None and f.commit["id"] is None


def test_range_since_and_branch(repo: Repo) -> None:
    t1, t2, t3 = hf_token(), hf_token(), hf_token()
    c1 = repo.commit("one", **{"a.py": f"A = '{t1}'\n"})
    c2 = repo.commit("two", **{"b.py": f"B = '{t2}'\n"})
    repo.git("checkout", "-q", "-b", "dev")
    repo.commit("three", **{"c.py": f"C = '{t3}'\n"})
    repo.git("checkout", "-q", "main")
    assert {f.secret for f in history(repo, rev_range=f"{c1}..{c2}").findings} == {t2}
    assert {f.secret for f in history(repo, since=c1).findings} == {t2, t3}
    assert {f.secret for f in history(repo, branches=["main"]).findings} == {t1, t2}
    found = history(repo, branches=["dev"], since=c2).findings
    assert [f.secret for f in found] == [t3]
    assert found[0].commit and found[0].commit["at_head"] is False  # HEAD (main) has no c.py


def _store_kw(tmp_path: Path) -> dict[str, Any]:
    return {"use_datastore": True, "datastore": str(tmp_path / "ds.sqlite")}


def _keys(findings: list[Finding]) -> list[tuple[Any, ...]]:
    return [(f.path, f.line, f.rule_id, f.fingerprint, f.redacted, json.dumps(f.commit, sort_keys=True))
            for f in findings]


def test_incremental_second_run_scans_nothing(tmp_path: Path, repo: Repo) -> None:
    tok, tok2 = hf_token(), hf_token()
    repo.commit("a", **{"a.py": f"A = '{tok}'\n", "n.txt": "clean\n"})
    repo.commit("b", **{"a.py": "A = 0\n", "b.py": f"B = '{tok2}'\n"})
    kw = _store_kw(tmp_path)
    r1 = history(repo, **kw)
    assert r1.stats["blobs_scanned"] == 4 and len(r1.findings) == 2
    r2 = history(repo, **kw)
    assert r2.stats["blobs_scanned"] == 0 and r2.stats["files"] == 0 and r2.stats["blobs_from_datastore"] == 4
    assert _keys(r2.findings) == _keys(r1.findings)
    assert all(f.secret is None for f in r2.findings)  # the datastore never holds secrets
    raw = (tmp_path / "ds.sqlite").read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("ds.sqlite-*"))
    assert tok.encode() not in raw and tok2.encode() not in raw
    # a new commit: only its blob is scanned
    tok3 = hf_token()
    repo.commit("c", **{"c.py": f"C = '{tok3}'\n"})
    r3 = history(repo, **kw)
    assert r3.stats["blobs_scanned"] == 1 and {f.redacted for f in r3.findings} >= {f.redacted for f in r1.findings}
    assert [f.secret for f in r3.findings if f.secret] == [tok3]


def test_new_only(tmp_path: Path, repo: Repo) -> None:
    t1, t2 = hf_token(), hf_token()
    repo.commit("a", **{"a.py": f"A = '{t1}'\n"})
    kw = _store_kw(tmp_path)
    assert len(history(repo, new_only=True, **kw).findings) == 1  # first sweep: everything is new
    assert history(repo, new_only=True, **kw).findings == []
    repo.commit("b", **{"b.py": f"B = '{t2}'\n"})
    assert [f.secret for f in history(repo, new_only=True, **kw).findings] == [t2]
    assert len(history(repo, **kw).findings) == 2  # without --new-only: all findings


def test_rules_change_rescans(tmp_path: Path, repo: Repo) -> None:
    repo.commit("a", **{"a.py": f"A = '{hf_token()}'\n", "b.txt": "x\n"})
    kw = _store_kw(tmp_path)
    history(repo, **kw)
    assert history(repo, **kw).stats["blobs_scanned"] == 0
    changed = ScanOptions(disabled_rules=("slack.token",))
    r = scan_history([str(repo.path)], changed, jobs=1, **kw)
    assert r.stats["blobs_scanned"] == 2 and len(r.findings) == 1
    strict = ScanOptions(strict_secrets=True)
    assert scan_history([str(repo.path)], strict, jobs=1, **kw).stats["blobs_scanned"] == 2


def test_killed_run_resumes(tmp_path: Path) -> None:
    from corpora.gen_git_repo import generate

    truth = generate(tmp_path / "g", commits=60, files=40, avg_size=600, changes=8, secrets=10, decoys=4, seed=3)
    kw = _store_kw(tmp_path)
    src = GitHistorySource(str(tmp_path / "g"), ScanOptions(), **kw)

    class Killed(Exception):
        pass

    def kill(res: Any) -> None:
        raise Killed

    with pytest.raises(Killed):
        scan(src, ScanOptions(), jobs=1, on_progress=kill)  # dies after the first batch was recorded
    r = history(tmp_path / "g", new_only=True, **kw)
    total = r.stats["blobs_total"]
    # the first batch held the commits (listed first) and then blobs, 256 items in all
    first = 256 - len(git_run(tmp_path / "g", "rev-list", "--all").stdout.split())
    assert total > 256 and r.stats["blobs_scanned"] == total - first and r.stats["blobs_from_datastore"] == first
    assert {f.fingerprint for f in r.findings} == {s["fingerprint"] for s in truth["secrets"]}  # nothing hidden


@pytest.mark.parametrize("order", ["stream", "pack"])
def test_generated_repo_ground_truth(tmp_path: Path, order: str) -> None:
    from corpora.gen_git_repo import generate

    truth = generate(tmp_path / "g", commits=300, files=120, avg_size=1500, changes=5, secrets=40, decoys=24, seed=11)
    r = scan_history([str(tmp_path / "g")], ScanOptions(), jobs=2, use_datastore=False, order=order)
    assert not r.errors
    planted = {s["fingerprint"]: s for s in truth["secrets"]}
    # 100% recall, and precision: a hit on any of the planted decoys (or on filler) would add a fingerprint
    assert len(truth["decoys"]) == 24 and all(d["blob"] and d["commit"] for d in truth["decoys"])
    assert {f.fingerprint for f in r.findings} == set(planted)
    for fp, s in planted.items():
        intro = [f for f in r.findings if f.fingerprint == fp and f.commit and f.commit["blob"] == s["blob"]]
        assert intro, s["rule_id"]
        c = intro[0].commit
        assert c is not None
        assert (intro[0].path, c["id"], c["at_head"]) == (s["path"], s["commit"], s["at_head"])


def test_cli_json_and_sarif_carry_commit(tmp_path: Path, repo: Repo) -> None:
    tok = hf_token()
    c1 = repo.commit("a", **{"a.py": f"A = '{tok}'\n"})
    repo.commit("b", **{"a.py": "A = 0\n"})
    code, doc = scan_json("--history", str(repo.path), "--no-datastore", "-j", "1")
    assert code == 1
    [f] = doc["findings"]
    assert f["commit"]["id"] == c1 and f["commit"]["at_head"] is False and "secret" not in f
    assert tok not in json.dumps(doc)
    from conftest import run_cli

    p = run_cli("scan", "--history", str(repo.path), "--no-datastore", "-f", "sarif", "--no-progress")
    sarif = json.loads(p.stdout)
    [res] = sarif["runs"][0]["results"]
    assert res["properties"]["commit"]["id"] == c1 and tok not in p.stdout
    ds = tmp_path / "ds.sqlite"
    code, doc = scan_json("--history", str(repo.path), "--datastore", str(ds), "-j", "1")
    code2, doc2 = scan_json("--history", str(repo.path), "--datastore", str(ds), "-j", "1", "--new-only")
    assert (code, len(doc["findings"]), code2, doc2["findings"]) == (1, 1, 0, [])
    assert doc2["stats"]["blobs_scanned"] == 0
    p = run_cli("scan", str(repo.path), "--new-only")
    assert p.returncode == 2 and "need --history" in p.stderr


def test_show_secrets_only_for_blobs_scanned_now(tmp_path: Path, repo: Repo) -> None:
    tok = hf_token()
    repo.commit("a", **{"a.py": f"A = '{tok}'\n"})
    ds = str(tmp_path / "ds.sqlite")
    code, doc = scan_json("--history", str(repo.path), "--datastore", ds, "--show-secrets", "-j", "1")
    assert doc["findings"][0].get("secret") == tok
    code, doc = scan_json("--history", str(repo.path), "--datastore", ds, "--show-secrets", "-j", "1")
    assert tok not in json.dumps(doc) and doc["findings"][0]["redacted"]


def test_not_a_repository_is_a_usage_error(tmp_path: Path) -> None:
    from conftest import run_cli

    p = run_cli("scan", "--history", str(tmp_path), "--no-datastore")
    assert p.returncode == 2 and "not a git repository" in p.stderr


def test_unquote_path() -> None:
    assert unquote_path('"a\\tb\\"c"') == 'a\tb"c'
    assert unquote_path('"caf\\303\\251.py"') == "café.py"
    assert unquote_path("plain name") == "plain name"


def test_blob_reader_many_objects_and_bad_ids(repo: Repo) -> None:
    from veritensor_fast.findings import Item
    from veritensor_fast.sources.fs import InputError
    from veritensor_fast.sources.git import BlobReader

    rng = random.Random(5)
    files = {f"f{i}.txt": "".join(rng.choice("abc\n") for _ in range(rng.randint(0, 3000))) for i in range(600)}
    for name, text in files.items():
        repo.write(name, text)
    repo.git("add", ".")
    repo.git("commit", "-q", "-m", "many")
    oids = dict(line.split("\t")[::-1] for line in
                (ln.split(" ", 2)[2] for ln in repo.git("ls-tree", "HEAD").splitlines()))
    items = [Item("blob", oids[n], n, -1, str(repo.path)) for n in sorted(files)]
    reader = BlobReader()
    try:
        reader.prefetch(items)  # 600 ids: more than a pipe buffer of requests and responses
        for it in items:
            buf, close = reader.open(it)
            assert buf == files[it.path].encode()
            close()
        tree = repo.git("rev-parse", "HEAD^{tree}")
        for key, kind in ((tree, "unreadable"), ("0" * 40, "corrupt")):
            with pytest.raises(InputError) as ei:
                reader.open(Item("blob", key, "x", -1, str(repo.path)))
            assert ei.value.kind == kind
        assert reader.open(items[0])[0] == files[items[0].path].encode()
    finally:
        reader.close()


def test_undecodable_path_name(repo: Repo) -> None:
    tok = hf_token()
    name = os.fsdecode(b"caf\xff.py")
    (repo.path / name).write_text(f"T = '{tok}'\n")
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "odd name")
    [f] = history(repo).findings
    assert f.path == "caf\\xff.py" and f.commit is not None and f.commit["id"] and f.commit["at_head"] is True


def test_exclude_and_max_file_size(repo: Repo) -> None:
    t1, t2 = hf_token(), hf_token()
    repo.commit("a", **{"vendor__x.py": f"A = '{t1}'\n", "big.txt": f"B = '{t2}'\n" + "z" * 5000})
    r = history(repo, excludes=("vendor",), max_file_size=1000)
    assert r.findings == [] and [(e.path, e.kind) for e in r.errors] == [("big.txt", "too-large")]


def test_secret_kept_through_edits_is_one_finding(tmp_path: Path, repo: Repo) -> None:
    tok = hf_token()
    c1 = repo.commit("add", **{"a.py": f"X = 1\nT = '{tok}'\n"})
    repo.commit("edit", **{"a.py": f"X = 2\nY = 3\nT = '{tok}'\n"})
    kw = _store_kw(tmp_path)
    r = history(repo, new_only=True, **kw)
    [f] = r.findings
    assert f.commit is not None and f.commit["id"] == c1 and f.line == 2 and f.commit["at_head"] is True
    assert r.stats["later_versions_folded"] == 1
    every = scan_history([str(repo.path)], ScanOptions(), jobs=1, use_datastore=False, group=False).findings
    assert len(every) == 2
    repo.commit("edit again", **{"a.py": f"X = 5\nT = '{tok}'\n"})  # still the same secret at the same path
    assert history(repo, new_only=True, **kw).findings == []
    repo.commit("copy", **{"b.py": f"T = '{tok}'\n"})  # the same secret at a new path is new
    assert [f.path for f in history(repo, new_only=True, **kw).findings] == ["b.py"]


# ---- incremental listing and cached provenance ----------------------------------------------------------

def _full(repo: Repo) -> list[tuple[Any, ...]]:
    """Ground truth for an incremental sweep: a full sweep without the datastore (secrets dropped)."""
    return _keys(history(repo).findings)


def test_incremental_listing_nothing_new(tmp_path: Path, repo: Repo) -> None:
    t1, t2 = hf_token(), hf_token()
    c1 = repo.commit("a", **{"a.py": f"A = '{t1}'\n", "n.txt": "clean\n"})
    repo.commit("b", **{"a.py": "A = 0\n", "b.py": f"B = '{t2}'\n"})
    kw = _store_kw(tmp_path)
    r1 = history(repo, **kw)
    assert r1.stats["listing"] == "full (first sweep)" and r1.stats["blobs_listed"] == 4
    assert r1.stats["provenance_lookups"] == 2
    r2 = history(repo, **kw)
    assert r2.stats["listing"] == "incremental"
    assert (r2.stats["blobs_listed"], r2.stats["blobs_scanned"], r2.stats["files"]) == (0, 0, 0)
    assert (r2.stats["blobs_total"], r2.stats["blobs_from_datastore"]) == (4, 4)
    assert r2.stats["provenance_lookups"] == 0 and r2.stats["provenance_cached"] == 2
    assert "provenance_log" not in r2.stats  # no git log pass at all
    assert _keys(r2.findings) == _keys(r1.findings) == _full(repo)
    got = {f.path: f.commit for f in r2.findings}
    assert got["a.py"] and got["a.py"]["id"] == c1 and got["a.py"]["at_head"] is False
    assert got["b.py"] and got["b.py"]["at_head"] is True and got["b.py"]["author"] == "Ada"
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("ds.sqlite*"))
    assert t1.encode() not in raw and t2.encode() not in raw


def test_incremental_listing_new_commit(tmp_path: Path, repo: Repo) -> None:
    t1, t2, t3 = hf_token(), hf_token(), hf_token()
    repo.commit("a", **{"a.py": f"A = '{t1}'\n", "n.txt": "clean\n"})
    repo.commit("b", **{"b.py": f"B = '{t2}'\n"})
    kw = _store_kw(tmp_path)
    history(repo, **kw)
    # new commit on main: a new secret, and the old a.py secret removed from HEAD
    c3 = repo.commit("c", **{"c.py": f"C = '{t3}'\n", "a.py": "A = 0\n"})
    r = history(repo, **kw)
    assert r.stats["listing"] == "incremental"
    assert r.stats["blobs_listed"] == 2 and r.stats["blobs_scanned"] == 2  # new c.py and a.py versions
    assert r.stats["blobs_total"] == 5 and r.stats["provenance_lookups"] == 0
    assert r.stats["provenance_log"] == "new commits"
    [new] = [f for f in r.findings if f.secret]
    assert new.secret == t3 and new.commit and new.commit["id"] == c3 and new.commit["at_head"] is True
    at_head = {f.path: f.commit["at_head"] for f in r.findings if f.commit}
    assert at_head == {"a.py": False, "b.py": True, "c.py": True}  # recomputed for the current HEAD
    assert _keys(r.findings) == _full(repo)
    # a new branch and a tag (new tips) are listed incrementally too
    repo.git("checkout", "-q", "-b", "dev")
    t4 = hf_token()
    c4 = repo.commit("d", **{"d.py": f"D = '{t4}'\n"})
    repo.git("checkout", "-q", "main")
    repo.git("tag", "v1", c4)
    r = history(repo, **kw)
    assert r.stats["listing"] == "incremental" and r.stats["blobs_listed"] == 1
    assert [(f.secret, f.commit and f.commit["id"]) for f in r.findings if f.secret] == [(t4, c4)]
    assert _keys(r.findings) == _full(repo)
    # nothing new again
    r = history(repo, **kw)
    assert (r.stats["blobs_listed"], r.stats["blobs_scanned"], r.stats["provenance_lookups"]) == (0, 0, 0)
    assert _keys(r.findings) == _full(repo)


def test_incremental_falls_back_when_history_drops_out(tmp_path: Path, repo: Repo) -> None:
    t1, t2, t3 = hf_token(), hf_token(), hf_token()
    repo.commit("base", **{"a.py": f"A = '{t1}'\n"})
    repo.git("checkout", "-q", "-b", "side")
    repo.commit("side", **{"s.py": f"S = '{t2}'\n"})
    repo.git("checkout", "-q", "main")
    kw = _store_kw(tmp_path)
    assert {f.path for f in history(repo, **kw).findings} == {"a.py", "s.py"}
    # the branch is deleted: its commit is still an object, but no longer in scope
    repo.git("branch", "-q", "-D", "side")
    r = history(repo, **kw)
    assert r.stats["listing"] == "full (history rewritten or refs deleted)"
    assert _keys(r.findings) == _full(repo) and {f.path for f in r.findings} == {"a.py"}
    # the base for the next sweep is the current tips: incremental again
    assert history(repo, **kw).stats["listing"] == "incremental"
    # a previous tip garbage-collected: recreate the branch, sweep, delete it and prune its objects
    repo.git("checkout", "-q", "-b", "gone")
    repo.commit("gone", **{"g.py": f"G = '{hf_token()}'\n"})
    repo.git("checkout", "-q", "main")
    assert "g.py" in {f.path for f in history(repo, **kw).findings}
    repo.git("branch", "-q", "-D", "gone")
    repo.git("reflog", "expire", "--expire=now", "--expire-unreachable=now", "--all")
    repo.git("gc", "-q", "--prune=now")
    c3 = repo.commit("new", **{"c.py": f"C = '{t3}'\n"})
    r = history(repo, **kw)
    assert r.stats["listing"] == "full (a previous tip no longer exists)" and not r.errors
    assert r.stats["blobs_listed"] == r.stats["blobs_total"] == 2 and r.stats["blobs_scanned"] == 1
    assert {f.path for f in r.findings} == {"a.py", "c.py"} and _keys(r.findings) == _full(repo)
    assert [f.commit and f.commit["id"] for f in r.findings if f.secret] == [c3]


def test_incremental_force_push_rewrite(tmp_path: Path, repo: Repo) -> None:
    t1, t2 = hf_token(), hf_token()
    repo.commit("base", **{"a.py": "A = 1\n"})
    repo.commit("oops", **{"k.py": f"K = '{t1}'\n"})
    kw = _store_kw(tmp_path)
    history(repo, **kw)
    repo.git("reset", "-q", "--hard", "HEAD~1")  # the leaked commit is rewritten away
    c2 = repo.commit("fixed", **{"k.py": f"K = '{t2}'\n"})
    r = history(repo, **kw)
    assert r.stats["listing"].startswith("full")
    assert [(f.secret, f.commit and f.commit["id"]) for f in r.findings] == [(t2, c2)]
    assert _keys(r.findings) == _full(repo)


def test_incremental_rules_change_lists_everything(tmp_path: Path, repo: Repo) -> None:
    repo.commit("a", **{"a.py": f"A = '{hf_token()}'\n", "b.txt": "x\n"})
    kw = _store_kw(tmp_path)
    history(repo, **kw)
    assert history(repo, **kw).stats["blobs_listed"] == 0
    r = scan_history([str(repo.path)], ScanOptions(disabled_rules=("slack.token",)), jobs=1, **kw)
    assert r.stats["listing"] == "full (first sweep)" and r.stats["blobs_listed"] == r.stats["blobs_scanned"] == 2
    assert r.stats["provenance_lookups"] == 0  # provenance does not depend on the rules: still cached
    [f] = r.findings
    assert f.commit and f.commit["id"] and f.commit["at_head"] is True
    # other listing options are part of the scope too
    r = history(repo, max_file_size=10_000, **kw)
    assert r.stats["listing"] == "full (first sweep)"
    # scopes other than all refs keep the full listing
    r = history(repo, branches=["main"], **kw)
    assert "listing" not in r.stats and r.stats["blobs_listed"] == 2


def test_incremental_retries_errors(tmp_path: Path, repo: Repo) -> None:
    tok = hf_token()
    repo.commit("a", **{"big.txt": f"B = '{tok}'\n" + "z" * 5000, "a.py": "A = 1\n"})
    kw = _store_kw(tmp_path)
    r1 = history(repo, max_file_size=1000, **kw)
    assert [(e.path, e.kind) for e in r1.errors] == [("big.txt", "too-large")]
    r2 = history(repo, max_file_size=1000, **kw)
    assert r2.stats["listing"] == "incremental" and r2.stats["blobs_listed"] == 0
    assert [(e.path, e.kind) for e in r2.errors] == [("big.txt", "too-large")]  # not silently dropped
