"""review22: a path that a model file names is shown through ``base.shown_path`` in every model finding.

model22 added ``shown_path`` (long token runs cut to four characters) for DCP storage paths and ONNX external
data locations, but the joblib ``NDArrayWrapper`` file name beside them (``model.joblib.external-file``, moved
into ``pickle_paths`` by model22) was still printed raw, up to 80 characters, in the message and evidence: a
pickle naming ``../hf_<token>.npy`` put the whole token in every report format (on 75722a6 and 260b088 alike).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from veritensor_fast.models import analyze

from conftest import hf_token, run_cli


def _su(s: str) -> bytes:  # SHORT_BINUNICODE
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


def _wrapper(filename: str) -> bytes:
    return (b"\x80\x02cjoblib.numpy_pickle\nNDArrayWrapper\n)\x81}(" + _su("filename") + _su(filename)
            + _su("subclass") + b"cnumpy\nndarray\n" + _su("allow_mmap") + b"\x88ub.")


def test_joblib_external_file_name_is_shown_without_its_token() -> None:
    t = hf_token()
    issues = analyze(_wrapper(f"../{t}.npy"), "m.pkl")
    assert [i.rule_id for i in issues] == ["model.joblib.external-file"]
    assert t[4:] not in issues[0].message and t[4:] not in issues[0].evidence
    assert "../" in issues[0].message  # still says where it points


@pytest.mark.parametrize("fmt", ["json", "sarif", "text", "jsonl"])
def test_no_report_format_prints_it(tmp_path: Path, fmt: str) -> None:
    t = hf_token()
    (tmp_path / "m.pkl").write_bytes(_wrapper(f"../../key{t}x/x.npy"))  # glued: no secret rule sees it
    p = run_cli("scan", "--format", fmt, "--no-progress", tmp_path / "m.pkl")
    assert "joblib" in p.stdout and p.returncode == 1
    assert t[4:] not in p.stdout + p.stderr
