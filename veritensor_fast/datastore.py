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
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from veritensor_fast.findings import Finding

if TYPE_CHECKING:
    from veritensor_fast.worker import ScanOptions

SCHEMA_VERSION = 1

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
"""

#: Optional detector modules whose presence changes results (part of the memo key).
_DETECTOR_MODULES = ("veritensor_fast.detectors.model", "veritensor_fast.detectors.notebook",
                     "veritensor_fast.detectors.encoded", "veritensor_fast.detectors.pyast",
                     "veritensor_fast.ignore")


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


class DataStore:
    """One SQLite file. Only the parent process writes; every ``record`` call is one committed transaction."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        try:
            parent = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(parent, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
            row = self.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is None:
                self.db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            elif row[0] != str(SCHEMA_VERSION):
                raise DataStoreError(f"datastore {self.path} has schema {row[0]}, expected {SCHEMA_VERSION}")
        except (sqlite3.Error, OSError) as exc:
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
        rows = []
        for blob, fs in results:
            for f in fs:
                rows.append((memo, blob, f.rule_id, f.kind, f.severity, f.path, f.line, f.column, f.message,
                             f.redacted, f.fingerprint,
                             json.dumps(f.location, default=repr) if f.location else None, f.decoded))
        try:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("DELETE FROM findings WHERE memo=? AND blob=?", [(memo, b) for b, _ in results])
            self.db.executemany("INSERT INTO findings VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
            self.db.executemany("INSERT OR IGNORE INTO scanned VALUES (?,?)", [(memo, b) for b, _ in results])
            self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise DataStoreError(f"cannot write datastore {self.path}: {exc}") from None

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

    def finish_sweep(self, sweep: int, fkeys: Iterable[str]) -> None:
        try:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("INSERT OR IGNORE INTO reported VALUES (?,?)", [(k, sweep) for k in fkeys])
            self.db.execute("UPDATE sweeps SET finished=? WHERE id=?", (time.time(), sweep))
            self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise DataStoreError(f"cannot write datastore {self.path}: {exc}") from None

    def _rollback(self) -> None:
        try:
            self.db.execute("ROLLBACK")
        except sqlite3.Error:
            pass


def stats(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Row counts, for tests and ``--verbose`` style reporting."""
    ds = DataStore(path)
    try:
        return {t: ds.db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("scanned", "findings", "sweeps", "reported")}
    finally:
        ds.close()
