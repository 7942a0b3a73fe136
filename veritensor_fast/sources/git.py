"""Git history source: every blob reachable from every ref (or a commit range), each scanned exactly once.

Parent side (``GitHistorySource``):
- lists the reachable blobs and one path for each from one walk of the history: a full sweep from provenance's
  ``git log --raw`` pass itself (``git_walk``), other scopes with ``git rev-list --objects``; then orders
  them in pack order with ``git cat-file --batch-all-objects --batch-check --unordered`` (which also gives the
  sizes); ``--all-objects`` adds blobs that no ref reaches. Each object id is yielded once, as an
  ``Item(kind="blob", key=<oid>, path=<a path it appears at>, size=..., origin=<repo>)``;
- skips blobs the incremental datastore has already scanned under the same rules and options, and merges
  their stored (redacted) findings back in;
- after the scan, adds provenance to each finding (``Finding.commit``): the commit that introduced the blob
  at that path, computed with one streaming ``git log --raw`` pass only when there are findings;
- incremental sweeps (default scope, datastore on): the ref tips of the last finished sweep are stored; the next
  sweep walks only ``<current tips> --not <previous tips>`` (a superset of the new blobs: git's exclusion is
  boundary based), reports the earlier in-scope findings from the datastore, and takes provenance from the
  datastore's cache (``git log`` runs only over new commits, or in full for pairs the cache lacks). A previous
  tip that is gone (gc) or no longer reachable (history rewritten, ref deleted) falls back to a full listing.

Worker side: ``git_read`` (``BlobReader``, ``CommitReader``; re-exported here). Listing plumbing: ``git_list``;
provenance: ``git_provenance``; incremental planning: ``git_incremental``; object parsing: ``git_objects``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from veritensor_fast import gitloc
from veritensor_fast.findings import Finding, Item, ScanError, display_path
from veritensor_fast.gitcmd import GitError, git_env  # noqa: F401 - re-exported
from veritensor_fast.sources import git_list, git_walk
from veritensor_fast.sources.excludes import excluded as _excluded
from veritensor_fast.sources.git_incremental import advance, scope_key, walk_input
from veritensor_fast.sources.git_list import unquote_path  # noqa: F401 - re-exported
from veritensor_fast.sources.git_objects import commit_path, is_commit_path, tag_path
from veritensor_fast.sources.git_overlap import OverlappedListing
from veritensor_fast.sources.git_provenance import (
    log_spool,
    oldest_per_secret,  # noqa: F401 - re-exported
)
from veritensor_fast.sources.git_read import BlobReader, CommitReader  # noqa: F401 - re-exported
from veritensor_fast.sources.git_results import HistoryResults
from veritensor_fast.sources.git_spool import Spool

MISSING_SHOWN = 5  # missing blobs reported one by one (a blobless partial clone lacks thousands)

if TYPE_CHECKING:
    from veritensor_fast.worker import ScanOptions


def default_datastore_path(repo: str) -> str:
    """The repository's datastore in the user's cache directory (never inside the repository): see
    ``veritensor_fast.datastore.default_location``; keyed by the real path of the git directory."""
    from veritensor_fast.datastore import default_location

    git_dir = git_list.git_text(repo, "rev-parse", "--git-dir").strip()
    return default_location(os.path.abspath(os.path.join(gitloc.path_of(repo), git_dir)))


class GitHistorySource(HistoryResults):
    """Every distinct blob of one repository's history (``Source`` protocol), plus provenance and the memo.

    ``repo`` may be a work tree or a bare repository. Scope: all refs (branches, tags, remotes, stash and its
    reflog) by default; ``branches`` limits the tips; ``since`` (``REV..tips``) or ``rev_range`` (``A..B``)
    limit the commits; ``all_objects`` also scans blobs no ref reaches (their path is ``unreachable/<oid>``).
    With a datastore (default on), blobs already scanned under the same memo key are not read again and their
    stored findings (redacted, without the secret) are reported again; ``new_only`` keeps only findings that
    no earlier finished sweep reported.
    """

    #: a full sweep lists its blobs from provenance's ``git log`` pass, started at once (``git_walk``: one history
    #: walk instead of ``rev-list --objects`` and then ``git log``); False: the two walks, as before
    one_walk = True

    def __init__(self, repo: str, options: ScanOptions | None = None, *, branches: Sequence[str] = (),
                 since: str | None = None, rev_range: str | None = None, all_objects: bool = False,
                 datastore: str | None = None, use_datastore: bool = True, new_only: bool = False,
                 excludes: Sequence[str] = (), max_file_size: int = 0, order: str = "pack",
                 group: bool = True, early_depth: int = 0) -> None:
        from veritensor_fast.worker import ScanOptions

        self.repo = repo
        #: the repository's datastore key; ``origin`` is the ``gitloc`` target every git command and item carries
        #: (the path and the inherited location variables that describe this repository, decided once, here)
        self.store_key = os.path.abspath(repo)
        self.origin, self.env_ignored = gitloc.locate(repo)
        self.options = options or ScanOptions()
        self.branches = tuple(branches)
        self.since = since
        self.rev_range = rev_range
        self.all_objects = all_objects
        self.datastore_path = datastore
        self.use_datastore = use_datastore
        self.new_only = new_only
        self.excludes = tuple(excludes)
        self.max_file_size = max_file_size
        # "pack" (default): walk first, then read in pack order; "stream": read in rev-list order while the walk
        # goes on. Measured on a repacked 20k-commit repo: pack order 148 MB/s raw, rev-list order 93 MB/s.
        self.order = order
        #: with a pool beside the walk, also hand out as ``rev-list`` names them the deltas whose chain has at
        #: most this many links (``git_overlap``; 0: whole blobs only)
        self.early_depth = early_depth
        self.group = group  # one finding per (rule, secret, path): the oldest blob version holding it
        self._walk_failure: str | None = None
        self.stats: dict[str, Any] = {"blobs_total": 0, "blobs_scanned": 0, "blobs_from_datastore": 0}
        if self.env_ignored:  # git's location variables named another repository: not this one's git commands
            self.stats["git_env_ignored"] = self.env_ignored
        self._store: Any = None
        self._memo = ""
        self._sweep = 0
        self._paths: dict[str, str] = {}  # oid -> path, blobs yielded for scanning
        self._commits: dict[str, str] = {}  # oid -> path, commits (and annotated tags) yielded for scanning
        self._tags: set[str] = set()  # annotated tags listed (``_tag_items``)
        self._skipped: dict[str, str] = {}  # oid -> path, blobs answered by the datastore
        self._found: dict[str, set[str]] = {}  # oid -> fingerprints found in it
        self._blob_of: dict[int, str] = {}  # id(finding) -> oid, for this run's findings
        self._revs: list[str] = []
        self._rev_parse: list[str] = []
        self._checked = False
        # incremental state (default scope with a datastore): current tips, the previous finished sweep's state
        self._tips: list[str] | None = None  # tips walked this sweep (None: not tracked, use self._revs)
        self._negatives: list[str] = []  # previous tips excluded from the walk (incremental listing)
        self._incremental = False
        self._scope = ""
        self._prev_total = 0
        self._inscope: dict[str, str] = {}  # oid -> path: earlier in-scope blobs with findings
        self._retry: dict[str, tuple[str, int]] = {}  # oid -> (path, size): blobs to try again next sweep
        self._shown = self._unshown = 0  # missing blobs seen, and those not shown one by one (``_missing``)
        self._recorded: set[str] = set()
        self._advance_memo: dict[frozenset[str], str | None] = {}
        self._secrets: set[str] = set()  # every secret found (never echoed in commit fields)
        self._hidden: dict[str, set[str]] = {}  # commit id -> fields blanked (a secret not recoverable)
        self._fallback_all = False
        self._seen: set[str] = set()
        # background git commands (``start``): the listing's, and provenance's ``git log`` (``git_results``)
        self._started = False
        self._start_error: GitError | None = None
        self._prep_errors: list[ScanError] = []
        self._spools: dict[str, Spool | None] = {}
        self._log: Spool | None = None
        self._log_decided = False
        self._pending: list[tuple[str, Sequence[Finding]]] = []  # scanned, not yet written to the datastore
        self._flushed = float("-inf")  # the first batch is written at once: even a short run leaves a memo
        self._log_walk: tuple[list[str], bytes | None] | None = None
        #: start provenance's ``git log`` while ``rev-list`` walks, ended when the listing is done unless a blob
        #: finding has shown it is needed (set by ``history`` when a process pool scans beside it: a core idles then)
        self.early_log = False
        self._walk_log = False  # this sweep lists from the log (``_one_walk``)

    # -- listing ------------------------------------------------------------------------------------------

    def _advance(self, prev: Sequence[str]) -> str | None:
        key = frozenset(prev)
        if key not in self._advance_memo:
            self._advance_memo[key] = advance(self.origin, self._tips or (), prev)
        return self._advance_memo[key]

    def _set_walk_failure(self, msg: str) -> None:
        self._walk_failure = msg

    def _missing(self, path: str, reason: str) -> Iterator[ScanError]:
        """A missing blob: tried again next sweep; an error of its own for the first 5, the rest counted."""
        self._retry[reason.split()[2]] = (path, -1)
        self._shown += 1
        self._unshown += self._shown > MISSING_SHOWN
        yield from [ScanError(path, reason, "corrupt")] if self._shown <= MISSING_SHOWN else []

    def _label(self) -> str:
        return display_path(self.repo)

    def validate(self) -> None:
        """Check that ``repo`` is a git repository and the revisions exist; raises ``GitError`` otherwise."""
        if not self._checked:
            self._rev_parse = git_list.git_text(self.origin, "rev-parse", "--git-dir", "--is-bare-repository",
                                   "--is-shallow-repository").splitlines()
            self._revs = git_list.rev_args(self.origin, self.rev_range, self.branches, self.since)
            self._checked = True

    def _prepare(self) -> list[ScanError]:
        errors: list[ScanError] = []
        self.validate()
        lines = self._rev_parse
        if len(lines) >= 3 and lines[2].strip() == "true":
            cuts = git_list.shallow_cuts(self.origin)
            for c in cuts[:20]:
                errors.append(ScanError(self._label(), f"shallow clone: history before {c} not available", "limit"))
            if len(cuts) > 20:
                errors.append(ScanError(self._label(), f"shallow clone: {len(cuts) - 20} more history cut points",
                                        "limit"))
            self.stats["shallow"] = cuts
        if self.use_datastore:
            from veritensor_fast.datastore import DataStore, DataStoreError, memo_key

            try:
                path = self.datastore_path or default_datastore_path(self.origin)
                self._store = DataStore(path, private=self.datastore_path is None)
                self._memo = memo_key(self.options)
                self._sweep = self._store.begin_sweep(self.store_key, self._memo)
                self.stats["datastore"] = path
            except DataStoreError as exc:
                errors.append(ScanError(self._label(), f"{exc}; scanning without it", "limit"))
                self._store = None
        if self._store is not None and self._default_scope():
            import sqlite3

            try:
                self._plan_incremental()
            except (GitError, sqlite3.Error) as exc:  # cannot plan: a full listing, untracked
                self._tips, self._incremental, self._negatives = None, False, []
                self._inscope.clear()
                self._retry.clear()
                self.stats["listing"] = f"full ({exc})"
        return errors

    def start(self) -> None:
        """Plan the sweep and start its listing in the background (idempotent; ``items`` calls it too).

        ``rev-list --objects``, the pack-order listing and the commit list run at once, each into a temporary
        file (``git_spool``), while the caller does its own start-up (the process pool, ``warm_workers``)."""
        if self._started:
            return
        self._started = True
        try:
            self._prep_errors = self._prepare()
            walk = walk_input(self._tips, self._revs, self._negatives)
            if self._one_walk():  # the log pass is the listing and provenance's pass (``git_walk``)
                self._walk_log = self._log_decided = True
                if not git_list.walks_nothing(walk[1]):
                    self._log_walk = (list(walk[0]), walk[1])
                    self._log = log_spool(self.origin, *walk)
                self._spools["pack"] = Spool(self.origin, git_list.PACK_ORDER)
            elif self.order == "pack" or self._incremental:
                self._spools["reachable"] = git_list.reachable_spool(self.origin, *walk)
                if not self._incremental:  # an incremental sweep sizes its few new blobs instead
                    self._spools["pack"] = Spool(self.origin, git_list.PACK_ORDER)
            self._spools["commits"] = git_list.commits_spool(self.origin, *walk)
        except GitError as exc:
            self._start_error = exc
            self.close()

    def _one_walk(self) -> bool:
        """A full sweep of every ref, in pack order: listed from provenance's log pass (``git_walk``)."""
        return (self.one_walk and self.order == "pack" and not self._incremental
                and not (self.branches or self.since or self.rev_range))

    def _extra_names(self) -> tuple[list[tuple[str, str]], str | None]:
        """What the log cannot list (``git_walk.extra_names``) and git's error if that failed (the walk's failure,
        as with ``rev-list``, reported after the log's own)."""
        tips = self._tips if self._tips is not None else git_list.current_tips(self.origin, self._revs)
        return git_walk.extra_names(self.origin, tips)

    def is_full_listing(self) -> bool:
        """True once ``start`` has begun a full listing (not an incremental one, nor one that failed)."""
        return self._started and self._start_error is None and not self._incremental

    def object_count(self) -> int:
        """Objects in the repository's database, loose and packed (``git count-objects -v``; 0 if unknown)."""
        try:
            out = git_list.git_text(self.origin, "count-objects", "-v")
        except GitError:
            return 0
        fields = dict(line.partition(": ")[::2] for line in out.splitlines())
        return sum(int(fields.get(k, "0") or 0) for k in ("count", "in-pack") if fields.get(k, "0").isdigit())

    def close(self) -> None:
        """Stop the background git commands that are still running and drop their files. A sweep that ends
        without ``annotate`` (Ctrl-C, an error) still writes the blobs it scanned to the datastore."""
        for sp in (*self._spools.values(), self._log):
            if sp is not None:
                sp.close()
        self._spools.clear()
        self._log = None
        store, self._store = self._store, None
        if store is not None:
            try:
                self._store = store
                self._flush()
            except Exception:  # noqa: BLE001 - already failing; the memo is an optimisation
                pass
            finally:
                self._store = None
                store.close()

    def _default_scope(self) -> bool:
        return not (self.branches or self.since or self.rev_range or self.all_objects)

    def _plan_incremental(self) -> None:
        """Enumerate the tips; if the last finished sweep of this scope left tips that the current ones still
        reach, walk only what is new since then."""
        self._tips = git_list.current_tips(self.origin, self._revs)
        self._scope = scope_key(self._memo, self.excludes, self.max_file_size)
        state = self._store.last_state(self.store_key, self._scope)
        if state is None:
            self.stats["listing"] = "full (first sweep)"
            return
        why = self._advance(state.tips)
        if why is not None:
            self.stats["listing"] = f"full ({why})"
            return
        self._incremental = True
        self._negatives = list(state.tips)
        self._prev_total = state.total
        for oid, (path, size, retry) in state.blobs.items():
            if retry:
                self._retry[oid] = (path, size)
            else:
                self._inscope[oid] = path
        self.stats["listing"] = "incremental"

    def _emit(self, oid: str, path: str, size: int, seen: set[str]) -> Item | ScanError | None:
        is_commit = is_commit_path(path, oid)
        if not is_commit and self.excludes and _excluded(path, path.rsplit("/", 1)[-1], self.excludes):
            return None
        if self.max_file_size and size > self.max_file_size:
            self._retry[oid] = (path, size)
            return ScanError(path, f"{'commit' if is_commit else 'blob'} {oid}: {size} bytes exceeds "
                             f"--max-file-size {self.max_file_size}; skipped", "too-large")
        if oid in seen:
            self._skipped[oid] = path
            return None
        if is_commit:
            self._commits[oid] = path
            return Item("commit", oid, path, size, self.origin)
        self._paths[oid] = path
        return Item("blob", oid, path, size, self.origin)

    def _commit_items(self, seen: set[str]) -> Iterator[Item | ScanError]:
        """Every commit the walk covers, as a ``commit`` item: its message and author/committer are scanned
        (a token pasted into a commit message is as leaked as one in a file). Commit ids come from
        ``rev-list`` (hex, one per line); the objects themselves are read by ``CommitReader``."""
        oids = git_list.parse_commits(self._spools.pop("commits", None))
        n = 0
        for oid, otype, size in git_list.sizes(self.origin, oids):
            if otype != "commit":
                continue
            n += 1
            out = self._emit(oid, commit_path(oid), size, seen)
            if out is not None:
                yield out
        self.stats["commits_listed"] = n

    def _tag_items(self, tags: dict[str, int], seen: set[str]) -> Iterator[Item | ScanError]:
        """The annotated tags the walk named (oid -> size), each once as a ``commit`` item at ``tag:<id>``: its
        name, tagger and message are scanned like a commit's text (``git tag -a v1 -m "HF_TOKEN=..."``)."""
        for oid, size in tags.items():
            if oid not in self._tags:
                self._tags.add(oid)
                self.stats["tags_listed"] = len(self._tags)
                out = self._emit(oid, tag_path(oid), size, seen)
                if out is not None:
                    yield out

    def items(self) -> Iterator[Item | ScanError]:
        t0 = time.perf_counter()
        self.start()
        try:
            yield from self._items(t0)
        finally:
            for sp in self._spools.values():
                if sp is not None:
                    sp.close()
            self._spools.clear()

    def _items(self, t0: float) -> Iterator[Item | ScanError]:
        if self._start_error is not None:
            yield ScanError(self._label(), f"cannot read git repository: {self._start_error}", "unreadable")
            return
        yield from self._prep_errors
        seen = self._store.scanned(self._memo) if self._store is not None else set()
        self._seen = seen
        listed: set[str] = set()
        everything = self.all_objects
        reachable: dict[str, str] = {}
        retry, self._retry = self._retry, {}
        # the commits first: their list is ready long before ``rev-list --objects`` ends, and the workers scan
        # them (messages, authors: ~6k items in a 6k-commit history) while it still runs
        yield from self._commit_items(seen)
        if self.early_log and not self._incremental:  # beside the rest of the walk (git_results)
            self._early_log()
        overlap: OverlappedListing | None = None
        stream: Iterator[tuple[str, str, int, str]]
        walk = self._spools.pop("reachable", None)
        log = self._log if self._walk_log else None
        extras, extras_failure = self._extra_names() if self._walk_log else ([], None)
        if self.early_log and not self._incremental and self.order == "pack" and (walk or log) is not None:
            # a pool scans beside the walk: blobs are handed out as ``rev-list`` names them, then in pack order
            self._spools["reachable"] = walk  # closed by ``items`` when done
            pack = self._spools.get("pack") or Spool(self.origin, git_list.PACK_ORDER)
            self._spools["pack"] = pack
            reach = log if log is not None else walk
            assert reach is not None
            names = git_walk.walk_names(extras, log, follow=True) if log is not None else None
            overlap = OverlappedListing(reach, pack, self._end_early_log, self.early_depth, names)
            stream = iter(overlap)
        elif self.order == "pack" or self._incremental:
            # delta chains are resolved cheaply in pack order; the walk cannot overlap the scan in this mode
            if self._walk_log:
                reachable = git_walk.reachable(extras, log) if log is not None else {}
                self._walk_failure = (log.failure() if log is not None else None) or extras_failure
            else:
                reachable, self._walk_failure = git_list.parse_reachable(walk)
            self._end_early_log()
            if self._incremental and len(reachable) < 50_000:  # a few new blobs: size them, skip the pack scan
                stream = ((oid, t, size, reachable[oid]) for oid, t, size in git_list.sizes(self.origin, list(reachable)))
            else:
                pack = self._spools.pop("pack", None) or Spool(self.origin, git_list.PACK_ORDER)
                self._spools["pack"] = pack  # closed by ``items`` when done
                stream = git_list.reachable_in_pack_order(pack, reachable)
        else:
            stream = git_list.stream(self.origin, *walk_input(self._tips, self._revs, self._negatives), self._set_walk_failure)
        new_in_scope = 0
        for oid, otype, size, path in stream:
            if otype == "tag":  # ``order="stream"``: rev-list's tags come through its batch-check
                yield from self._tag_items({oid: size}, seen)
                continue
            if otype != "blob":
                if otype == "missing" and oid not in listed:
                    listed.add(oid)
                    yield from self._missing(path or f"blob/{oid}", f"git object {oid} is missing or "
                                             "corrupt")
                continue
            if oid in listed:
                continue
            listed.add(oid)
            if oid not in seen and oid not in retry:
                new_in_scope += 1
            out = self._emit(oid, path or f"blob/{oid}", size, seen)  # every stream gives display paths
            if out is not None:
                yield out
        if overlap is not None:
            reachable, self._walk_failure = overlap.reachable, overlap.failure or extras_failure
            self.stats["blobs_listed_early"] = overlap.early
        if self.order == "pack" or self._incremental:
            # a line with a path is a blob or an annotated tag (rev-list names a tag a ref points to even
            # with the blob filter): only a blob that is not in the database is corrupt
            unlisted = [oid for oid, path in reachable.items() if path and oid not in listed]
            tags = {oid: size for oid, otype, size in git_list.typed(self.origin, unlisted) if otype == "tag"}
            yield from self._tag_items(tags, seen)
            for oid in unlisted:
                if oid not in tags:
                    listed.add(oid)
                    yield from self._missing(reachable[oid], f"git object {oid} is missing from the "
                                             "object database")
        self.stats["blobs_listed"] = len(listed)
        if self._incremental:
            # blobs an earlier sweep could not scan are tried again (one still missing is not read: a partial
            # clone's); earlier findings come from the datastore
            again = [oid for oid in retry if oid not in listed]
            have = {oid for oid, otype, _ in git_list.typed(self.origin, again) if otype != "missing"}
            for oid in again:
                listed.add(oid)
                path, size = retry[oid]
                if oid not in have:
                    yield from self._missing(path, f"git object {oid} is missing from the object database")
                    continue
                out = self._emit(oid, path, size, seen)
                if out is not None:
                    yield out
            for oid, path in self._inscope.items():
                if oid not in listed and oid in seen:
                    self._skipped[oid] = path
        if self._unshown:  # a blobless partial clone lacks thousands: one line for all but the first few
            yield ScanError(self._label(), f"{self._unshown} more git objects are missing from the object database "
                            "(a partial clone? fetch them or scan a full clone); not scanned", "corrupt")
        if self._walk_failure is not None:
            # a corrupt commit or tree stops rev-list: report it and fall back to every blob in the database
            yield ScanError(self._label(), f"history walk failed ({self._walk_failure}); scanning every blob in "
                            "the object database instead (some paths unknown)", "corrupt")
            everything = True
            self._fallback_all = True
        if everything:
            for oid, otype, size in git_list.pack_order(self.origin):
                if otype == "blob" and oid not in listed:
                    listed.add(oid)
                    out = self._emit(oid, f"unreachable/{oid}", size, seen)
                    if out is not None:
                        yield out
        if self._incremental:
            # in scope: the previous sweep's blobs plus those first listed now (an estimate when one datastore
            # serves several repositories: a blob another repository already had is not counted again)
            self.stats["blobs_total"] = self._prev_total + new_in_scope
            self.stats["blobs_from_datastore"] = max(
                0, self.stats["blobs_total"] - len(self._paths) - len(self._retry))
        else:
            self.stats["blobs_total"] = len(listed)
            # blobs only, like ``blobs_total`` (commits the datastore answered are in ``_skipped`` too)
            self.stats["blobs_from_datastore"] = sum(1 for o, p in self._skipped.items() if not is_commit_path(p, o))
        self.stats["listing_seconds"] = round(time.perf_counter() - t0, 4)


def __getattr__(name: str) -> Any:
    """``scan_history`` moved to ``veritensor_fast.history`` (sources do not import the engine); kept importable
    from here for existing callers, resolved lazily so importing this module never imports the engine."""
    if name == "scan_history":
        from veritensor_fast.history import scan_history

        return scan_history
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
