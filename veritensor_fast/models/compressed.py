"""Model analysis of single compressed streams (``.pkl.gz``, ``.tar.xz``, joblib ``compress=...``, pandas
``to_pickle(compression=...)``), routed by content through the shared bounded layer (``veritensor_fast.decompress``).
"""

from __future__ import annotations

from typing import Any

from veritensor_fast import decompress, decompress_keep
from veritensor_fast.decompress import BudgetExhausted
from veritensor_fast.models.base import ModelIssue
from veritensor_fast.models.sniff import has_model_ext, pickle01_may_run, sniff


def compressed_issues(an: Any, buf: Any, name: str, depth: int, where: str) -> list[ModelIssue]:
    """Model issues of a compressed stream: a compressed tar is walked, other content analysed as a member.

    ``an`` is the ``Analyzer`` (its ``run``/``_tar`` do the analysis). Content decides: a compressed file whose
    decompressed head is no model format is left alone (its secrets are the archive detector's business).
    """
    codec = decompress.codec_of(bytes(buf[:16]))
    if codec is None:
        return []
    base = name.rsplit("/", 1)[-1].rsplit("!", 1)[-1] or name
    inner = decompress.strip_suffix(base, codec)
    sub = f"{where}!{inner}" if where else inner
    loc = {"member": sub}
    if not decompress.available(codec):
        return [ModelIssue("model.archive.corrupt", "medium", f"{codec}-compressed file could not be analysed: "
                           f"{codec} support is not installed", f"no {codec}", loc)]
    try:
        h, rest = decompress_keep.head(buf, codec, 4096)  # a bz2 head's block decoded once (decompress_keep)
    except BudgetExhausted as exc:
        return [ModelIssue("model.archive.limit", "high", f"{codec}: {exc}; not analysed", "limit", loc, "limit")]
    if len(h) >= 262 and h[257:262] == b"ustar":
        out: list[ModelIssue] = an._tar(buf, name, depth, where)
        return out
    kind = sniff(h, inner)
    if kind == "none" or (kind == "pickle?" and not pickle01_may_run(h) and not has_model_ext(inner)):
        return []
    lim = an.limits
    if depth + 1 > lim.max_depth:
        return [ModelIssue("model.archive.limit", "high", f"nesting deeper than {lim.max_depth}; {codec} content "
                           "not analysed", "depth limit", loc)]
    data, problem = decompress.read(buf, codec, lim.max_member_bytes, partial=True, resume=rest)
    out = []
    if problem and problem.startswith("limit"):
        out.append(ModelIssue("model.archive.limit", "high", f"{codec}: {problem[7:]}; only the first {len(data)} "
                              "decompressed bytes were analysed", "limit", loc))
    elif problem:
        out.append(ModelIssue("model.archive.corrupt", "high", f"{codec} stream {problem[9:]}; the "
                              f"{len(data)} bytes before the damage were analysed", f"corrupt {codec}", loc))
    out += an.run(data, inner, depth + 1, sub, member=True)
    return out
