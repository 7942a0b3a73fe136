"""Provenance of git history findings: which commit introduced each blob at each path, and the commit text.

One NUL-separated ``git log --raw -z`` pass (only when there are findings; run in the background into a
temporary file, started by ``git_results`` when the first finding comes back) maps (blob, path) to the
oldest commit adding it; the commits' author, date and message are then read from the commit objects
(``git_objects``), never parsed out of a line format. Commit metadata is written by whoever made the commit: a
secret found anywhere in the sweep is redacted in it (``hide_commit``) before it reaches a report or the cache.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from veritensor_fast import gitcmd
from veritensor_fast.findings import Finding, display_path, redact
from veritensor_fast.gitcmd import GitError
from veritensor_fast.sources.git_objects import (
    commit_text,
    is_commit_path,
    is_tag_path,
    nul_tokens,
    parse_commit,
    parse_raw_z,
    read_objects,
)
from veritensor_fast.sources.git_spool import Spool

#: The provenance pass: every commit's diff to its first parent (root commits in full), NUL-separated.
LOG_ARGS = ("log", "--raw", "-z", "--no-abbrev", "--no-renames", "--root", "--diff-merges=first-parent",
            "--format=%x01%H %at")


def log_spool(repo: str, args: Sequence[str], stdin: bytes | None) -> Spool:
    """Start the provenance pass in the background (``provenance(..., spool=)`` reads it later)."""
    return Spool(repo, [*LOG_ARGS, *args], stdin)


def provenance(repo: str, oids: set[str], args: Sequence[str], stdin: bytes | None, spool: Spool | None = None
               ) -> dict[tuple[str, str], tuple[int, dict[str, Any]]]:
    """(oid, path) -> (author time, the oldest commit whose diff (to its first parent; root commits in full)
    adds blob ``oid`` at ``path``); also (oid, '') -> the oldest commit adding it at any path. One streaming
    pass over the commits ``args``/``stdin`` select, NUL-separated (paths are exact); the commits' author and
    message are then read from the commit objects themselves (never parsed out of a line format). Each
    commit dict also holds ``path``: the exact path (``rev-list`` names stop at a newline)."""
    if not oids:
        if spool is not None:  # started early but not needed after all
            spool.close()
        return {}
    # No pathspec: measured on 20k commits, the full pass takes 2.5 s while 195 pathspecs take 97 s (git
    # matches every pathspec against every tree entry); 4 pathspecs save only ~1.4 s.
    # ``spool``: the same pass started earlier with the same ``args``/``stdin`` (``log_spool``)
    wanted = oids
    best: dict[tuple[str, str], tuple[int, str, str]] = {}
    if spool is None:
        spool = log_spool(repo, args, stdin)
    spool.wait()
    try:
        only = {o.encode("ascii") for o in wanted if o.isascii()}
        for head, oid, bpath in parse_raw_z(nul_tokens(spool.out), only):
            if oid not in wanted:
                continue
            cid, _, t = head.partition(" ")
            ts = int(t) if t.lstrip("-").isdigit() else 0
            path = display_path(os.fsdecode(bpath))
            keys = [(oid, path), (oid, "")]
            if "\n" in path:  # the listing (rev-list) knows this path only up to its first newline
                keys.append((oid, path.split("\n", 1)[0]))
            for k in keys:
                prev = best.get(k)
                if prev is None or ts <= prev[0]:  # log runs newest first: ties go to the later (older) one
                    best[k] = (ts, cid, path)
    finally:
        spool.close()
    commits = read_objects(repo, sorted({cid for _, cid, _ in best.values()}))
    meta: dict[str, dict[str, Any]] = {}
    for cid, (otype, raw) in commits.items():
        if otype == "commit":
            meta[cid] = parse_commit(cid, raw).provenance()
    return {k: (ts, {**meta.get(cid, {"id": cid}), "path": path}) for k, (ts, cid, path) in best.items()}


def commit_texts(repo: str, pairs: Sequence[tuple[Finding, str]]
                 ) -> tuple[dict[str, tuple[dict[str, Any], list[str], list[str]]], set[str], dict[str, set[str]]]:
    """For the commits with findings in their own text: commit id -> (provenance fields, the field of each
    scanned line, the lines). Also returns what must never be echoed: the secrets (every found secret,
    including those of stored findings, recovered from the commit text by their fingerprint) and
    the hidden fields (commit id -> fields holding a secret that could not be recovered: shown blanked)."""
    secrets = {f.secret for f, _ in pairs if f.secret}
    hidden: dict[str, set[str]] = {}
    oids = {oid for f, oid in pairs if is_commit_path(f.path, oid)}
    out: dict[str, tuple[dict[str, Any], list[str], list[str]]] = {}
    try:
        objs = read_objects(repo, sorted(oids)) if oids else {}
    except GitError:
        objs = {}
    for oid, (otype, raw) in objs.items():
        if otype in ("commit", "tag"):  # an annotated tag's text is read like a commit's (``tag_path``)
            text, fields = commit_text(raw)
            out[oid] = (parse_commit(oid, raw).provenance(), fields,
                        text.decode("utf-8", "replace").split("\n"))
    for f, oid in pairs:
        if not is_commit_path(f.path, oid) or f.secret:
            continue
        _c, fields, lines = out.get(oid, ({}, [], []))
        sec = recover(f, lines)
        if sec is not None:
            secrets.add(sec)
        else:
            field = fields[f.line - 1] if 0 < f.line <= len(fields) else "message"
            hidden.setdefault(oid, set()).update(
                ("author", "email") if field in ("author", "committer", "tagger")
                else ("tag",) if field == "tag" else ("message",))
    return out, secrets, hidden


def text_location(f: Finding, oid: str, c: dict[str, Any], fields: Sequence[str], secrets: set[str],
                  hidden: dict[str, set[str]]) -> dict[str, Any]:
    """The ``location`` of a finding in a commit's or an annotated tag's own text (``commit message``, ``tag
    message``, ``tag name``...); a tag's also names the tag (secrets redacted) and its object id."""
    field = fields[f.line - 1] if 0 < f.line <= len(fields) else "message"
    loc = {**(f.location or {}), "git": f"commit {field}"}
    if is_tag_path(f.path, oid):
        loc.update({"git": "tag " + ("name" if field == "tag" else field), "object": oid,
                    "tag": hide_commit(c, secrets, hidden).get("tag")})
    return loc


def hide_commit(c: dict[str, Any], secrets: set[str], hidden: dict[str, set[str]]) -> dict[str, Any]:
    """Commit fields with every known secret redacted (and fields with an unknown one blanked)."""
    blank = hidden.get(c.get("id") or "", set())
    return {k: ("[redacted: holds a secret]" if k in blank and v else hide(v, secrets)) for k, v in c.items()}


def truncated(listed: str, full: Any) -> bool:
    """True when ``listed`` is ``full`` cut at its first newline (``rev-list --objects`` names stop there)."""
    return isinstance(full, str) and "\n" not in listed and full.startswith(listed + "\n")


def merge_cached(cache: dict[tuple[str, str], Any], new: dict[tuple[str, str], Any],
                 wanted: set[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    """Cached provenance updated by a pass over the new commits only (``new``); pairs it cannot settle are
    left out (looked up in full by the caller)."""
    merged: dict[tuple[str, str], Any] = {}
    for k in wanted:
        a, b = cache.get(k), new.get(k)
        if b is not None and b.commit.get("id"):
            if a is None:
                # not cached: only an add at this very path is conclusive (new blobs are added only in new
                # commits); an add elsewhere may lose to an older commit: looked up in full below
                a = b if b.exact else None
            elif (b.exact, -b.ts) > (a.exact, -a.ts):
                a = b
        if a is not None:
            merged[k] = a
    return merged


def head_blobs(repo: str) -> dict[str, str]:
    """path -> blob id of every file in HEAD's tree (NUL-separated: exact paths); empty for an unborn HEAD."""
    try:
        out = gitcmd.run(repo, ["ls-tree", "-r", "-z", "--full-tree", "HEAD"]).decode("utf-8", "surrogateescape")
    except GitError:
        return {}
    head: dict[str, str] = {}
    for entry in out.split("\0"):
        meta, _, path = entry.partition("\t")
        f = meta.split()
        if len(f) == 3 and f[1] == "blob":
            head[display_path(path)] = f[2]
    return head


def recover(f: Finding, lines: Sequence[str]) -> str | None:
    """The secret of a stored finding (stored without it) from the text it was found in: the substring at its
    line and column whose fingerprint matches; None if none does (e.g. a decoded secret)."""
    from veritensor_fast.findings import fingerprint

    if not 0 < f.line <= len(lines):
        return None
    line = lines[f.line - 1]
    start = f.column - 1
    for end in range(start + 8, min(len(line), start + 4096) + 1):
        cand = line[start:end]
        if fingerprint(f.rule_id, cand) == f.fingerprint:
            return cand
    return None


def hide(value: Any, secrets: set[str]) -> Any:
    """``value`` with every found secret in it replaced by its redacted preview (commit metadata is written by
    whoever made the commit: a token pasted into a message or author name is a leak, not provenance)."""
    if not isinstance(value, str) or not secrets:
        return value
    for sec in secrets:
        if sec in value:
            value = value.replace(sec, redact(sec))
    return value


def resolve(best: dict[tuple[str, str], tuple[int, dict[str, Any]]], wanted: set[tuple[str, str]]
             ) -> dict[tuple[str, str], Any]:
    """Each wanted (oid, path) -> ``Provenance``: the commit adding the blob at that path, else at any path,
    else an empty one (no commit adds it: still cached, so it is not looked up again)."""
    from veritensor_fast.datastore import Provenance

    fields = ("id", "author", "email", "date", "message")
    out: dict[tuple[str, str], Any] = {}
    for oid, path in wanted:
        hit = best.get((oid, path))
        exact = hit is not None
        hit = hit or best.get((oid, ""))
        if hit is None:
            out[(oid, path)] = Provenance(False, 1 << 62, dict.fromkeys(fields))
        else:
            out[(oid, path)] = Provenance(exact, hit[0], {k: hit[1].get(k) for k in (*fields, "path")})
    return out


def oldest_per_secret(findings: Sequence[Finding]) -> list[Finding]:
    """Keep one finding per (rule, fingerprint, path): the one in the oldest commit (then lowest line).

    A secret that stays in a file while the file is edited is in every later blob version; reviewers want it
    once, with the commit that introduced it. Findings without a commit (unreachable blobs) are kept per blob.
    """
    from datetime import datetime

    def age(f: Finding) -> tuple[float, int, int]:
        c = f.commit or {}
        try:
            ts = datetime.fromisoformat(str(c.get("date"))).timestamp() if c.get("date") else float("inf")
        except ValueError:
            ts = float("inf")
        return ts, f.line, f.column

    best: dict[tuple[str, ...], Finding] = {}
    for f in findings:
        c = f.commit or {}
        key = (f.rule_id, f.fingerprint, f.path) if c.get("id") else (f.rule_id, f.fingerprint, f.path,
                                                                       str(c.get("blob")), str(f.line))
        cur = best.get(key)
        if cur is None or age(f) < age(cur):
            best[key] = f
    return list(best.values())
