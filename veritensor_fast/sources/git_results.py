"""Results of a git history sweep (the parent side, after the workers): per-batch recording in the datastore,
stored findings merged back, provenance (which commit introduced each finding's blob at its path) and
``at_head``. A mixin of ``GitHistorySource`` (``sources/git.py``), which lists what is scanned.

Provenance needs one ``git log --raw`` pass over the swept commits. A full sweep's listing is that pass
(``git_walk``: started with the listing, read again here). Otherwise it is started in the background
(``git_spool.Spool``) as soon as the first blob finding comes back from a worker, so it runs while the rest is
scanned instead of after it; an incremental sweep takes provenance from the datastore's cache and ``git log``
over the new commits only. When a process pool scans beside the listing (``early_log``), the pass starts
already while ``rev-list`` walks, at nice 19, and is ended when the walk is done unless a blob finding has shown
it is needed (``_early_log``); a finding after that starts a fresh pass, as without the early one. Without the
early pool, a sweep without findings never starts it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from veritensor_fast.findings import Finding, Item
from veritensor_fast.gitcmd import GitError
from veritensor_fast.sources import git_provenance as gp
from veritensor_fast.sources.git_incremental import walk_input
from veritensor_fast.sources.git_objects import is_commit_path
from veritensor_fast.sources.git_spool import Spool

if TYPE_CHECKING:
    from veritensor_fast.worker import BatchResult, ScanOptions


#: Scanned blobs are written to the datastore in one transaction per this many blobs or seconds, whichever
#: comes first, the first batch at once (measured: one transaction per 256-blob batch cost 0.9 s of parent CPU
#: over 60k blobs, and up to 17 ms of commit latency each on a loaded disk). A sweep that is interrupted writes
#: what it scanned when its source is closed; one that is killed loses at most this much of its memo.
FLUSH_BLOBS = 20_000
FLUSH_SECONDS = 5.0


class HistoryResults:
    """What a sweep does with its results; the listing state it reads is set by ``GitHistorySource``."""

    origin: str
    store_key: str
    options: ScanOptions
    group: bool
    new_only: bool
    stats: dict[str, Any]
    _store: Any
    _memo: str
    _sweep: int
    _paths: dict[str, str]
    _commits: dict[str, str]
    _tags: set[str]
    _skipped: dict[str, str]
    _found: dict[str, set[str]]
    _blob_of: dict[int, str]
    _revs: list[str]
    _tips: list[str] | None
    _incremental: bool
    _scope: str
    _retry: dict[str, tuple[str, int]]
    _recorded: set[str]
    _secrets: set[str]
    _hidden: dict[str, set[str]]
    _fallback_all: bool
    _walk_failure: str | None
    _seen: set[str]
    _log: Spool | None
    _pending: list[tuple[str, Sequence[Finding]]]
    _flushed: float
    _log_decided: bool
    _log_walk: tuple[list[str], bytes | None] | None

    def _advance(self, prev: Sequence[str]) -> str | None:
        raise NotImplementedError

    def on_batch(self, res: BatchResult) -> None:
        """Called by the engine with each batch result: map findings to blobs, record them in the datastore."""
        pos = 0
        rec: list[tuple[str, Sequence[Finding]]] = []
        commits, tags, paths, recorded = self._commits, self._tags, self._paths, self._recorded
        ncommits = ntags = nblobs = 0  # added to ``stats`` once per batch, not once per object
        findings = res.findings
        for key, nf, had_errors in res.scanned:
            if nf:
                fs: Sequence[Finding] = findings[pos:pos + nf]
                pos += nf
            else:  # nearly every object: no slice to make, no finding to map
                fs = ()
            if key in commits:
                if key in tags:
                    ntags += 1
                else:
                    ncommits += 1
            elif key in paths:
                nblobs += 1
            else:
                continue
            if fs:
                for f in fs:
                    self._blob_of[id(f)] = key
                self._found.setdefault(key, set()).update(f.fingerprint for f in fs)
            if not had_errors:  # a blob that could not be fully scanned is tried again next time
                rec.append((key, fs))
                recorded.add(key)
        stats = self.stats
        for what, n in (("commits_scanned", ncommits), ("tags_scanned", ntags)):
            if n:
                stats[what] = stats.get(what, 0) + n
        stats["blobs_scanned"] += nblobs
        if self._store is not None and rec:
            self._pending.extend(rec)
            now = time.monotonic()
            if len(self._pending) >= FLUSH_BLOBS or now - self._flushed >= FLUSH_SECONDS:
                self._flush()
        if not self._log_decided and any(nf and key in self._paths for key, nf, _ in res.scanned):
            log = self._log
            if log is not None and log.foreground():  # started beside the listing (``_early_log``): needed
                self._log_decided = True
            else:  # none, or its priority cannot be raised again (unprivileged): a fresh pass, as without it
                if log is not None:
                    log.close()
                    self._log = None
                self._start_log()

    def _early_log(self) -> None:
        """Start the provenance pass while ``rev-list --objects`` still walks (a core idles then);
        ``_end_early_log`` ends it when the walk is done, unless a blob finding (``on_batch``) has shown it is
        needed (a later one starts a fresh pass). It runs at the lowest priority (nice 19) until then, so it takes
        only CPU time nothing else wants: a clean history pays at most the idle core's time and never waits on it.
        It is ended, not paused: a stopped (SIGSTOP) git outlived a scanner killed with SIGKILL, stopped forever."""
        if self._log is None and not self._log_decided:
            self._start_log()
            self._log_decided = False  # the first blob finding still decides
            if self._log is not None:
                self._log.background()

    def _end_early_log(self) -> None:
        """The walk is done and no blob finding has come yet: end the speculative provenance pass."""
        if self._log is not None and not self._log_decided:
            self._log.close()
            self._log = None

    def _flush(self) -> None:
        """Write the recorded blobs waiting in memory to the datastore, in one transaction."""
        if self._store is not None and self._pending:
            self._store.record(self._memo, self._pending)
        self._pending = []
        self._flushed = time.monotonic()

    def _start_log(self) -> None:
        """The first finding in a blob: start the full provenance pass now, in the background, when this sweep
        will need it (not incremental, no valid provenance cache), so that it is done when the scan is."""
        self._log_decided = True
        if self._incremental:
            return
        if self._store is not None and self._tips is not None:
            from veritensor_fast.datastore import PROVENANCE_SCOPE

            state = self._store.last_state(self.store_key, PROVENANCE_SCOPE)
            if state is not None and self._advance(state.tips) is None:
                return  # a valid cache: ``git log`` runs over the new commits only
        self._log_walk = walk_input(self._tips, self._revs)
        try:
            self._log = gp.log_spool(self.origin, *self._log_walk)
        except GitError:
            self._log = None

    def close(self) -> None:
        raise NotImplementedError

    def annotate(self, findings: Sequence[Finding]) -> list[Finding]:
        """Merge stored findings, apply ``new_only``, and add ``commit`` provenance to every finding."""
        try:
            return self._annotate(findings)
        finally:
            self.close()  # a provenance pass started but not needed (a valid cache answered) is stopped

    def _annotate(self, findings: Sequence[Finding]) -> list[Finding]:
        t0 = time.perf_counter()
        self._flush()
        pairs: list[tuple[Finding, str]] = []
        by_path: dict[str, list[str]] | None = None  # built only when needed: 60k blobs in a 6k-commit history
        for f in findings:
            known = self._blob_of.get(id(f))
            if known is None:  # engine without the on_batch hook: fall back to a path that names one blob
                if by_path is None:
                    by_path = {}
                    for oid, p in self._paths.items():
                        by_path.setdefault(p, []).append(oid)
                cands = by_path.get(f.path, [])
                known = cands[0] if len(cands) == 1 else ""
            pairs.append((f, known))
        store = self._store
        if store is not None:
            if self._skipped:
                for oid, fs in store.findings(self._memo, self._skipped).items():
                    path = self._skipped[oid]
                    self._found.setdefault(oid, set()).update(f.fingerprint for f in fs)
                    pairs.extend((replace(f, path=path), oid) for f in fs)
            from veritensor_fast.datastore import finding_key

            keys = [finding_key(f) for f, _ in pairs]
            all_pairs = pairs
            if self.new_only:
                old = store.reported_before(keys, self._sweep)
                pairs = [p for p, k in zip(pairs, keys, strict=True) if k not in old]
            in_commits, self._secrets, self._hidden = gp.commit_texts(self.origin, pairs)
            try:
                prov = self._cached_provenance(store, {(oid, f.path) for f, oid in pairs
                                                       if oid and not is_commit_path(f.path, oid)}) if pairs else {}
                for (oid, p), v in prov.items():  # the next sweep lists these blobs at their exact path
                    exact = v.commit.get("path")
                    if isinstance(exact, str) and gp.truncated(p, exact):
                        for paths in (self._paths, self._skipped):
                            if oid in paths:
                                paths[oid] = exact
                store.finish_sweep(self._sweep, keys, self._next_state(all_pairs))
            finally:
                store.close()
                self._store = None
        else:
            in_commits, self._secrets, self._hidden = gp.commit_texts(self.origin, pairs)
            prov = self._full_provenance({(oid, f.path) for f, oid in pairs
                                          if oid and not is_commit_path(f.path, oid)}) if pairs else {}
        if not pairs:
            self.stats["provenance_seconds"] = 0.0
            return []
        fixed: list[tuple[Finding, str, dict[str, Any]]] = []
        for f, oid in pairs:
            if is_commit_path(f.path, oid):
                c, fields, _lines = in_commits.get(oid, ({"id": oid}, [], []))
                loc = gp.text_location(f, oid, c, fields, self._secrets, self._hidden)
                fixed.append((replace(f, location=loc), "", c))
                continue
            c = prov[(oid, f.path)].commit if (oid, f.path) in prov else {}
            full = c.get("path")
            if isinstance(full, str) and gp.truncated(f.path, full):
                f = replace(f, path=full)  # rev-list cut this path at its newline; the log pass has it whole
            fixed.append((f, oid, c))
        head_fps = self._head_fingerprints({f.path for f, _, _ in fixed})
        out: list[Finding] = []
        for f, oid, c in fixed:
            c = gp.hide_commit(c, self._secrets, self._hidden)
            out.append(replace(f, commit={
                "id": c.get("id"), "author": c.get("author"), "email": c.get("email"),
                "date": c.get("date"), "message": c.get("message"), "path": f.path,
                "at_head": f.fingerprint in head_fps, "blob": oid or None}))
        if self.group:
            n = len(out)
            out = gp.oldest_per_secret(out)
            self.stats["later_versions_folded"] = n - len(out)
        self.stats["provenance_seconds"] = round(time.perf_counter() - t0, 4)
        return out

    def _next_state(self, pairs: Sequence[tuple[Finding, str]]) -> tuple[str, str, Any] | None:
        """(repo, scope, SweepState) for the next sweep, or None when this sweep's listing is not a sound base
        (not tracked, or the walk failed)."""
        if self._tips is None or self._fallback_all or self._walk_failure is not None:
            return None
        from veritensor_fast.datastore import SweepState

        blobs: dict[str, tuple[str, int, bool]] = {}
        for f, oid in pairs:
            if oid and oid not in blobs:
                blobs[oid] = (self._paths.get(oid) or self._skipped.get(oid) or f.path, -1, False)
        for oid, path in (*self._paths.items(), *self._commits.items()):
            if oid not in self._recorded:
                blobs[oid] = (path, -1, True)
        for oid, (path, size) in self._retry.items():
            blobs[oid] = (path, size, True)
        return self.store_key, self._scope, SweepState(tuple(self._tips), int(self.stats.get("blobs_total", 0)), blobs)

    def _full_provenance(self, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], Any]:
        """Provenance of every wanted (oid, path) from one pass over all scanned commits."""
        self.stats["provenance_lookups"] = self.stats.get("provenance_lookups", 0) + len(wanted)
        args, stdin = walk_input(self._tips, self._revs)
        spool = None
        if self._log is not None and self._log_walk == (args, stdin):  # started when the first finding came
            spool, self._log = self._log, None
        return gp.resolve(gp.provenance(self.origin, {o for o, _ in wanted}, args, stdin, spool), wanted)

    def _cached_provenance(self, store: Any, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], Any]:
        """Provenance from the datastore's cache where it is valid, ``git log`` over the new commits only, and
        one full pass for pairs the cache lacks. Only for the default scope (all refs); other scopes: full."""
        from veritensor_fast.datastore import PROVENANCE_SCOPE

        if self._tips is None or not wanted:
            return self._full_provenance(wanted)
        state = store.last_state(self.store_key, PROVENANCE_SCOPE)
        valid = state is not None and self._advance(state.tips) is None
        cache: dict[tuple[str, str], Any] = store.provenance(self.store_key, wanted) if valid else {}
        new: dict[tuple[str, str], Any] = {}
        if valid and state is not None and set(self._tips) - set(state.tips):
            # commits since the cache's tips: new blobs are added only there; an old blob re-added there with an
            # older author date (a late-pushed branch) would win
            args, stdin = walk_input(self._tips, self._revs, state.tips)
            new = gp.resolve(gp.provenance(self.origin, {o for o, _ in wanted}, args, stdin), wanted)
            self.stats["provenance_log"] = "new commits"
        merged = gp.merge_cached(cache, new, wanted)
        missing = wanted - merged.keys()
        self.stats["provenance_cached"] = len(cache)
        if missing:
            merged.update(self._full_provenance(missing))
            self.stats["provenance_log"] = "full"
        else:
            self.stats.setdefault("provenance_lookups", 0)
        changed = {k: replace(v, commit=gp.hide_commit(v.commit, self._secrets, self._hidden))
                   for k, v in merged.items() if cache.get(k) != v}
        for (oid, p), v in list(changed.items()):  # also cached under the exact path the next sweep will use
            if gp.truncated(p, v.commit.get("path")):
                changed[(oid, v.commit["path"])] = v
        try:
            store.save_provenance(self.store_key, changed, self._tips, clear=not valid)
        except Exception:  # noqa: BLE001 - the cache is an optimisation; the findings are already complete
            pass
        return merged

    def _head_fingerprints(self, finding_paths: set[str]) -> set[str]:
        """Fingerprints of secrets present anywhere in HEAD's tree, as far as this sweep knows its blobs;
        HEAD blobs at finding paths that this sweep did not cover (ranges, --branch) are scanned now."""
        head = gp.head_blobs(self.origin)
        known = self._paths.keys() | self._skipped.keys()
        if self._incremental:  # every blob in scope was scanned by this or an earlier sweep
            known = known | self._seen
        fps: set[str] = set()
        for oid in set(head.values()):
            fps |= self._found.get(oid, set())
        unknown = {head[p]: p for p in finding_paths if p in head and head[p] not in known}
        if unknown:
            from veritensor_fast.worker import WorkerContext

            ctx = WorkerContext(self.options)
            try:
                res = ctx.run_batch([Item("blob", oid, p, -1, self.origin) for oid, p in unknown.items()])
            finally:
                ctx.close()
            fps.update(f.fingerprint for f in res.findings)
        return fps
