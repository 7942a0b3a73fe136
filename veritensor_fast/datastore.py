"""Incremental memo for history sweeps: an embedded SQLite datastore (WAL, one writer: the parent process).

What it records, under a *memo key* (rules version + every scan option that can change results + the
package version + which detectors are installed; see ``memo_key``):
- ``scanned``: every blob id that was read and scanned without error (a blob with zero findings too);
- ``findings``: each finding of those blobs: rule, kind, severity, path, line, column, message, redacted
  preview, fingerprint, location, decoding chain. **Never the secret itself**: findings loaded back carry
  ``secret=None`` and are shown redacted even with ``--show-secrets``.
Blob ids are content hashes, so a memo entry stays valid for as long as the memo key is the same; a change to
the rules or options gives a new key and everything is rescanned (old entries are simply not used).

Sweeps: ``begin_sweep`` opens one; ``finish_sweep`` records which findings the sweep reported (``finding_key``:
rule + fingerprint + path). ``--new-only`` hides findings that an earlier *finished* sweep already reported, so
a killed run never hides anything.
Each batch is committed as it arrives: after a kill, everything committed is valid and the next run resumes.

Incremental listing and provenance (history sweeps of all refs): a finished sweep stores its *state* per
repository and scope key (memo + listing options): the ref tips it walked, how many blobs were in scope, the
blobs in scope that have findings (with the path they were listed at) and the blobs to retry (errors). The next
sweep walks only ``<current tips> --not <previous tips>``. Provenance (the commit that introduced a blob at a
path) is cached per repository with the tips it is valid for: only the commit id, date and author time. Author,
email and message are never stored (they are the repository's words, may hold a secret, and are shown redacted
by the reporters): they are read back from the repository for the cached commits (one ``git log --no-walk``).

Trust: the default datastore lives in the user's cache directory (``default_location``), keyed by the
repository's real path, never inside the scanned repository (a repository could ship a doctored memo). A
datastore that does not verify (SQLite ``quick_check`` fails, wrong schema, not a database) is moved aside to
``<path>.invalid`` with one warning on stderr and rebuilt, never believed. A datastore path (or its ``-wal`` /
``-shm`` / ``-journal`` companion) that is a symbolic link is refused: never written through.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from veritensor_fast.findings import Finding

if TYPE_CHECKING:
    from veritensor_fast.worker import ScanOptions

SCHEMA_VERSION = 2  # 2: provenance rows no longer hold author, email or message

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS scanned (memo TEXT NOT NULL, blob TEXT NOT NULL, PRIMARY KEY (memo, blob))
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS findings (
    memo TEXT NOT NULL, blob TEXT NOT NULL, rule_id TEXT NOT NULL, kind TEXT NOT NULL, severity TEXT NOT NULL,
    path TEXT NOT NULL, line INTEGER NOT NULL, col INTEGER NOT NULL, message TEXT NOT NULL,
    redacted TEXT NOT NULL, fingerprint TEXT NOT NULL, location TEXT, decoded TEXT);
CREATE INDEX IF NOT EXISTS findings_blob ON findings (memo, blob);
CREATE TABLE IF NOT EXISTS sweeps (
    id INTEGER PRIMARY KEY AUTOINCREMENT, repo TEXT NOT NULL, memo TEXT NOT NULL, started REAL NOT NULL,
    finished REAL);
CREATE TABLE IF NOT EXISTS reported (fkey TEXT PRIMARY KEY, first_sweep INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tips (
    repo TEXT NOT NULL, scope TEXT NOT NULL, sweep INTEGER NOT NULL, total INTEGER NOT NULL, tips TEXT NOT NULL,
    PRIMARY KEY (repo, scope)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS inscope (
    repo TEXT NOT NULL, scope TEXT NOT NULL, blob TEXT NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL,
    retry INTEGER NOT NULL, PRIMARY KEY (repo, scope, blob)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS provenance (
    repo TEXT NOT NULL, blob TEXT NOT NULL, path TEXT NOT NULL, exact INTEGER NOT NULL, ts INTEGER NOT NULL,
    commit_id TEXT, author TEXT, email TEXT, date TEXT, message TEXT, PRIMARY KEY (repo, blob, path)) WITHOUT ROWID;
"""

#: ``tips`` scope under which the provenance cache records the tips it is valid for.
PROVENANCE_SCOPE = "provenance"


@dataclass(frozen=True)
class SweepState:
    """What a finished sweep of all refs leaves for the next one (see the module docstring).

    ``blobs``: object id -> (path, size, retry): blobs in scope with findings (``retry`` False) and blobs that
    could not be scanned (``retry`` True: errors, too large, missing)."""
    tips: tuple[str, ...]
    total: int = 0
    blobs: dict[str, tuple[str, int, bool]] = field(default_factory=dict)


@dataclass(frozen=True)
class Provenance:
    """A cached introducing commit of a blob at a path. ``exact``: the commit adds the blob at that very path
    (otherwise at some other path); ``ts``: author time, to compare with later candidates; ``commit``: the
    ``Finding.commit`` fields id, author, email, date, message (all None when no commit adds the blob)."""
    exact: bool
    ts: int
    commit: dict[str, Any]


#: Optional detector modules whose presence changes results (part of the memo key).
_DETECTOR_MODULES = ("veritensor_fast.detectors.model", "veritensor_fast.detectors.notebook",
                     "veritensor_fast.detectors.encoded", "veritensor_fast.detectors.pyast",
                     "veritensor_fast.detectors.archive", "veritensor_fast.ignore")


class DataStoreError(Exception):
    """The datastore could not be opened or written (corrupt file, wrong schema, read-only location)."""


def memo_key(options: ScanOptions, rules_version: str | None = None) -> str:
    """Everything that can change what a scan of one blob reports, hashed. Same key = reusable results."""
    from veritensor_fast import __version__

    opts = asdict(options)
    opts.pop("rule_files", None)  # their content is in the rules version
    present = []
    for m in _DETECTOR_MODULES:
        try:
            present.append(m if importlib.util.find_spec(m) is not None else "")
        except (ImportError, ValueError):
            present.append("")
    doc = {"rules": rules_version if rules_version is not None else options.ruleset().version,
           "options": opts, "package": __version__, "detectors": present}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=repr).encode()).hexdigest()[:24]


def finding_key(f: Finding) -> str:
    """Identity of a reported finding across sweeps: the same secret (rule + fingerprint) at the same path.

    Deliberately blind to the blob, line and column: editing a file that still holds an old secret is not a
    new finding for ``--new-only``; the same secret copied to another path is."""
    raw = "\x00".join((f.rule_id, f.fingerprint, f.path))
    return hashlib.sha256(raw.encode("utf-8", "surrogateescape")).hexdigest()


def default_location(repo: str | os.PathLike[str]) -> str:
    """The default datastore of ``repo`` (a work tree, bare repository or git dir): in the user's cache
    directory (``$XDG_CACHE_HOME/veritensor-fast/datastores`` on Linux), keyed by the repository's real path,
    so nothing the scanned repository ships is ever read as scan state."""
    import platformdirs

    real = os.path.realpath(os.fspath(repo))
    key = hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest()[:24]
    return os.path.join(platformdirs.user_cache_dir("veritensor-fast"), "datastores", f"{key}.sqlite")


_COMPANIONS = ("", "-wal", "-shm", "-journal")


def _check_private(path: str) -> None:
    """The default datastore is believed (a blob it lists as scanned is not read again) only when this user
    alone could have written it: its directory and that directory's parent (``veritensor-fast`` in the cache
    directory) and the file and its companions, where they exist, are owned by this user and not writable by
    group or others. ``XDG_CACHE_HOME`` on a shared ``/tmp``: another user could plant a datastore listing a
    secret's blob as scanned with no findings, and the secret would never be reported."""
    import stat

    d = os.path.dirname(os.path.abspath(path))
    for p in (d, os.path.dirname(d), *(path + s for s in _COMPANIONS)):
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise DataStoreError(f"cannot check datastore {p}: {exc.strerror}") from None
        if st.st_uid != os.geteuid() or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise DataStoreError(f"datastore location {p} could have been written by another user (owner or "
                                 "permissions); not used")


def _warn(msg: str) -> None:
    import sys

    from veritensor_fast.redaction import escape_text

    sys.stderr.write(f"veritensor-fast: warning: {escape_text(msg)}\n")  # names a path, quotes what it read
    sys.stderr.flush()


class _Invalid(Exception):
    """The file is not a datastore we can believe (moved aside and rebuilt)."""


class DataStore:
    """One SQLite file. Only the parent process writes; every ``record`` call is one committed transaction."""

    def __init__(self, path: str | os.PathLike[str], private: bool = False) -> None:
        """``private``: the default location in the user's cache directory, used only if no other user could
        have written it (see :func:`_check_private`)."""
        self.path = os.fspath(path)
        #: secrets found this run (in memory only): every occurrence in a stored path, message, location or
        #: decoding chain is replaced by its redacted preview (a token in a file name is a leak too)
        self._secrets: dict[str, str] = {}
        import stat

        for suffix in _COMPANIONS:
            if os.path.islink(self.path + suffix):
                raise DataStoreError(f"datastore {self.path + suffix} is a symbolic link; not written through")
            try:  # a FIFO or device (--datastore /dev/zero) was opened by SQLite, then renamed to ".invalid"
                if not stat.S_ISREG(os.lstat(self.path + suffix).st_mode):
                    raise DataStoreError(f"datastore {self.path + suffix} is not a regular file; not used")
            except OSError:
                pass  # absent (created by SQLite), or unreadable: SQLite says so
        try:
            parent = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(parent, mode=0o700, exist_ok=True)
        except OSError as exc:
            raise DataStoreError(f"cannot open datastore {self.path}: {exc.strerror}") from None
        if private:
            _check_private(self.path)
        try:
            self._open()
        except _Invalid as exc:
            _warn(f"datastore {self.path} does not verify ({exc}); moved aside to {self.path}.invalid and rebuilt")
            try:
                self.db.close()
            except (sqlite3.Error, AttributeError):
                pass
            try:
                os.replace(self.path, self.path + ".invalid")
                for suffix in _COMPANIONS[1:]:
                    if os.path.lexists(self.path + suffix):
                        os.unlink(self.path + suffix)
                self._open()
            except (OSError, _Invalid) as exc2:
                raise DataStoreError(f"cannot rebuild datastore {self.path}: {exc2}") from None

    def _open(self) -> None:
        try:
            self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise DataStoreError(f"cannot open datastore {self.path}: {exc}") from None
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            check = self.db.execute("PRAGMA quick_check(1)").fetchone()
            if check is None or check[0] != "ok":
                raise _Invalid(f"integrity check: {check[0] if check else 'no answer'}")
            self.db.executescript(_SCHEMA)
            row = self.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is None:
                self.db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            elif row[0] != str(SCHEMA_VERSION):
                raise _Invalid(f"schema {row[0]}, expected {SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                raise DataStoreError(f"cannot open datastore {self.path}: {exc}") from None
            if isinstance(exc, sqlite3.OperationalError) and "readonly" in str(exc).replace("-", ""):
                raise DataStoreError(f"cannot open datastore {self.path}: {exc}") from None
            raise _Invalid(str(exc)) from None
        except sqlite3.Error as exc:
            raise DataStoreError(f"cannot open datastore {self.path}: {exc}") from None

    def close(self) -> None:
        self.db.close()

    def scanned(self, memo: str) -> set[str]:
        """Blob ids already scanned under ``memo``."""
        return {r[0] for r in self.db.execute("SELECT blob FROM scanned WHERE memo=?", (memo,))}

    def record(self, memo: str, results: Sequence[tuple[str, Sequence[Finding]]]) -> None:
        """Record scanned blobs and their findings (secrets are dropped), in one transaction."""
        if not results:
            return
        from veritensor_fast.findings import redact

        for _blob, fs in results:
            for f in fs:
                if f.secret and len(f.secret) >= 6 and f.secret not in self._secrets:
                    self._secrets[f.secret] = redact(f.secret)
        scrub = self._scrub
        rows = []
        for blob, fs in results:
            for f in fs:
                loc = json.dumps(f.location, default=repr) if f.location else None
                rows.append((memo, blob, f.rule_id, f.kind, f.severity, scrub(f.path), f.line, f.column,
                             scrub(f.message), f.redacted, f.fingerprint, scrub(loc) if loc else None,
                             scrub(f.decoded) if f.decoded else None))
        try:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("DELETE FROM findings WHERE memo=? AND blob=?", [(memo, b) for b, _ in results])
            self.db.executemany("INSERT INTO findings VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
            self.db.executemany("INSERT OR IGNORE INTO scanned VALUES (?,?)", [(memo, b) for b, _ in results])
            self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise DataStoreError(f"cannot write datastore {self.path}: {exc}") from None

    def _scrub(self, text: str) -> str:
        """``text`` with every secret found this run replaced by its redacted preview (longest first)."""
        if not self._secrets:
            return text
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, self._secrets[secret])
        return text

    def findings(self, memo: str, blobs: Iterable[str] | None = None) -> dict[str, list[Finding]]:
        """Stored findings by blob (``secret`` is always None). ``blobs`` restricts the result."""
        want = set(blobs) if blobs is not None else None
        out: dict[str, list[Finding]] = {}
        q = ("SELECT blob, rule_id, kind, severity, path, line, col, message, redacted, fingerprint, location, "
             "decoded FROM findings WHERE memo=?")
        for (blob, rule_id, kind, severity, path, line, col, message, redacted, fp, loc,
             decoded) in self.db.execute(q, (memo,)):
            if want is not None and blob not in want:
                continue
            out.setdefault(blob, []).append(Finding(
                rule_id=rule_id, kind=kind, severity=severity, path=path, line=line, column=col, message=message,
                redacted=redacted, fingerprint=fp, location=json.loads(loc) if loc else None, decoded=decoded))
        return out

    def begin_sweep(self, repo: str, memo: str) -> int:
        cur = self.db.execute("INSERT INTO sweeps (repo, memo, started) VALUES (?,?,?)", (repo, memo, time.time()))
        return int(cur.lastrowid or 0)

    def reported_before(self, fkeys: Iterable[str], sweep: int) -> set[str]:
        """Which of ``fkeys`` a finished sweep before ``sweep`` already reported."""
        keys = list(fkeys)
        out: set[str] = set()
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            marks = ",".join("?" * len(chunk))
            q = f"SELECT fkey FROM reported WHERE first_sweep < ? AND fkey IN ({marks})"
            out.update(r[0] for r in self.db.execute(q, (sweep, *chunk)))
        return out

    def finish_sweep(self, sweep: int, fkeys: Iterable[str], state: tuple[str, str, SweepState] | None = None
                     ) -> None:
        """Mark ``sweep`` finished and record what it reported; ``state`` = (repo, scope, state) replaces the
        state the next sweep of that repository and scope starts from (same transaction)."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("INSERT OR IGNORE INTO reported VALUES (?,?)", [(k, sweep) for k in fkeys])
            self.db.execute("UPDATE sweeps SET finished=? WHERE id=?", (time.time(), sweep))
            if state is not None:
                repo, scope, st = state
                self._put_tips(repo, scope, sweep, st.total, st.tips)
                self.db.execute("DELETE FROM inscope WHERE repo=? AND scope=?", (repo, scope))
                self.db.executemany("INSERT INTO inscope VALUES (?,?,?,?,?,?)", [
                    (repo, scope, b, self._scrub(path), size, int(retry))
                    for b, (path, size, retry) in st.blobs.items()])
            self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise DataStoreError(f"cannot write datastore {self.path}: {exc}") from None

    def _put_tips(self, repo: str, scope: str, sweep: int, total: int, tips: Sequence[str]) -> None:
        self.db.execute("INSERT OR REPLACE INTO tips VALUES (?,?,?,?,?)", (repo, scope, sweep, total, "\n".join(tips)))

    def last_state(self, repo: str, scope: str) -> SweepState | None:
        """The state left by the last finished sweep of ``repo`` under ``scope`` (None: there is none)."""
        row = self.db.execute("SELECT total, tips FROM tips WHERE repo=? AND scope=?", (repo, scope)).fetchone()
        if row is None:
            return None
        blobs = {b: (path, size, bool(retry)) for b, path, size, retry in self.db.execute(
            "SELECT blob, path, size, retry FROM inscope WHERE repo=? AND scope=?", (repo, scope))}
        return SweepState(tuple(t for t in row[1].split("\n") if t), int(row[0]), blobs)

    def provenance(self, repo: str, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Provenance]:
        """Cached provenance of (blob, path) pairs of ``repo`` (only the pairs that are cached)."""
        want = set(pairs)
        out: dict[tuple[str, str], Provenance] = {}
        blobs = sorted({b for b, _ in want})
        for i in range(0, len(blobs), 500):
            chunk = blobs[i:i + 500]
            q = ("SELECT blob, path, exact, ts, commit_id, author, email, date, message FROM provenance "
                 f"WHERE repo=? AND blob IN ({','.join('?' * len(chunk))})")
            for b, path, exact, ts, cid, _author, _email, date, _message in self.db.execute(q, (repo, *chunk)):
                if (b, path) in want:
                    out[(b, path)] = Provenance(bool(exact), int(ts), {
                        "id": cid, "author": None, "email": None, "date": date, "message": None})
        details = _commit_details(repo, {p.commit["id"] for p in out.values() if p.commit.get("id")})
        for p in out.values():
            p.commit.update(details.get(p.commit.get("id") or "", {}))
        return out

    def save_provenance(self, repo: str, rows: dict[tuple[str, str], Provenance], tips: Sequence[str],
                        clear: bool = False) -> None:
        """Store provenance rows and the tips they are valid for; ``clear`` drops the repository's old rows
        first (its history was rewritten)."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
            if clear:
                self.db.execute("DELETE FROM provenance WHERE repo=?", (repo,))
            self.db.executemany("INSERT OR REPLACE INTO provenance VALUES (?,?,?,?,?,?,?,?,?,?)", [
                (repo, b, self._scrub(path), int(p.exact), p.ts, p.commit.get("id"), None, None,
                 p.commit.get("date"), None)
                for (b, path), p in rows.items()])
            self._put_tips(repo, PROVENANCE_SCOPE, 0, 0, tips)
            self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise DataStoreError(f"cannot write datastore {self.path}: {exc}") from None

    def _rollback(self) -> None:
        try:
            self.db.execute("ROLLBACK")
        except sqlite3.Error:
            pass


def _commit_details(repo: str, ids: set[str]) -> dict[str, dict[str, Any]]:
    """Author, email and message subject of commits ``ids`` of ``repo``, read from the repository (one
    ``git log --no-walk --stdin`` through the hardened git runner); commits it cannot read are left out."""
    if not ids:
        return {}
    from veritensor_fast.gitcmd import GitError
    from veritensor_fast.sources.git_list import git_input

    try:
        out = git_input(repo, "".join(f"{i}\n" for i in sorted(ids)), "log", "--no-walk=unsorted", "--stdin",
                         "-z", "--format=%H%x1f%an%x1f%ae%x1f%s")
    except GitError:
        return {}
    details: dict[str, dict[str, Any]] = {}
    for rec in out.split("\x00"):
        parts = rec.strip("\n").split("\x1f")
        if len(parts) == 4:
            details[parts[0]] = {"author": parts[1], "email": parts[2], "message": parts[3]}
    return details


def stats(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Row counts, for tests and ``--verbose`` style reporting."""
    ds = DataStore(path)
    try:
        return {t: ds.db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("scanned", "findings", "sweeps", "reported", "tips", "inscope", "provenance")}
    finally:
        ds.close()
