"""The model analyser behind ``veritensor_fast.models.analyze``: content dispatch and archive recursion.

Dispatch is by content (``sniff``), recursing through zip/tar/7z members with depth, member-count, size and
compression-ratio limits. A file that is both a pickle and a zip is analysed as both. Anything that could not be
analysed becomes an issue (fail closed), never silence. ``Analyzer`` keeps one parsed allowlist and one walker for
many files (the detector holds one per worker).
"""

from __future__ import annotations

import hashlib
import mmap
import posixpath
import re
import zlib
from typing import Any

from veritensor_fast import decompress
from veritensor_fast.models import containers, dcp_archive, formats, torchscript
from veritensor_fast.models.allowlist import parse_allow
from veritensor_fast.models.base import AnalyzeOptions, ModelIssue, ModelLimits
from veritensor_fast.models.dcp_archive import TORCH_MAGIC
from veritensor_fast.models.pickle_scan import PickleWalker
from veritensor_fast.models.pickle_torch import short_records
from veritensor_fast.models.sniff import (
    TRIAL_BYTES,
    has_model_ext,
    hdf5_after_userblock,
    is_metadata_name,
    pickle01_may_run,
    sniff,
    zip_tail,
)
from veritensor_fast.randread import PreadView

__all__ = ["Analyzer", "AnalyzeOptions", "ModelIssue", "ModelLimits", "analyze", "is_candidate"]

_STORAGE_MEMBER = re.compile(r"(^|/)data/\d+$")


def is_candidate(head: bytes, name: str, size: int = -1) -> bool:
    """Cheap first test on the first 4 KiB: could this file need model analysis at all?"""
    kind = sniff(head, name, size)
    if kind == "none":
        return False
    if kind == "pickle?" and not has_model_ext(name):
        return True  # decided by a bounded trial decode
    return True


def analyze(buf: Any, name: str = "", options: AnalyzeOptions | None = None, *,
            polyglot_check: bool = True) -> list[ModelIssue]:
    """All model issues in ``buf`` (bytes or mmap). Never raises for bad input; bugs surface as exceptions."""
    return Analyzer(options or AnalyzeOptions()).analyze(buf, name, polyglot_check=polyglot_check)


class Analyzer:
    """Reusable analyser: the allowlist is parsed and the walker built once, ``analyze`` may be called per file."""

    def __init__(self, options: AnalyzeOptions) -> None:
        self.opts = options
        self.limits = options.limits
        self.walker = PickleWalker(parse_allow(options.allow_globals), options.limits)
        self.total = 0
        self.dcp = False
        self._dcp_zipped = False

    def analyze(self, buf: Any, name: str = "", *, polyglot_check: bool = True, dcp: bool = False) -> list[ModelIssue]:
        """All model issues in ``buf`` (bytes or mmap); the per-file decompression budget starts afresh.
        ``dcp``: a file of a Distributed Checkpoint directory (``models.sniff.DcpDirs``), whatever its name: every archive
        and legacy ``torch.save`` stream at any offset is analysed, as ``dcp.load`` loads any slice."""
        self.total = 0
        self.dcp = dcp
        self._dcp_zipped = False
        try:
            with decompress.scope():  # the file's decompression budget (the detector's, or a new one)
                return self.run(buf, name, 0, "", polyglot_check=polyglot_check)
        finally:
            self.dcp = False

    def run(self, buf: Any, name: str, depth: int, where: str, *, polyglot_check: bool = True,
            member: bool = False) -> list[ModelIssue]:
        out = self._run(buf, name, depth, where, polyglot_check=polyglot_check, member=member)
        if any(not (i.location and "sha256" in i.location) for i in out):
            # the content judged is part of each finding (and of its fingerprint): baselining one file never
            # silences a different file at the same path
            d = content_digest(buf)
            out = [i if i.location and "sha256" in i.location else
                   ModelIssue(i.rule_id, i.severity, i.message, i.evidence, {**(i.location or {}), "sha256": d},
                              i.error)
                   for i in out]
        return out

    def _run(self, buf: Any, name: str, depth: int, where: str, *, polyglot_check: bool = True,
             member: bool = False) -> list[ModelIssue]:
        head = bytes(buf[:4096])
        kind = sniff(head, name, len(buf))
        out: list[ModelIssue] = []
        if kind in ("pickle", "pickle?"):
            out += self._pickle(in_memory(buf), name, where, kind, member)
            if polyglot_check and zip_tail(buf) and depth < self.limits.max_depth:
                # a zip tail that no reader could open is no zip at all (no loader reads it as one)
                zi = [i for i in self._zip(buf, name, depth, where) if i.error != "corrupt"]
                if any(not i.error for i in zi):
                    out.append(ModelIssue("model.polyglot", "high",
                                          "file is both a pickle and a zip archive; analysed as both", "polyglot",
                                          _loc(where)))
                out += zi
        elif kind == "zip":
            out += self._zip(buf, name, depth, where)
        elif kind == "tar":
            out += self._tar(buf, name, depth, where)
        elif kind == "7z":
            out += self._7z(buf, name, depth, where)
        elif kind == "npy":
            issues, at = formats.npy_header(buf, where)
            out += issues
            if at >= 0:
                found = self.walker.analyze(in_memory(buf), at, where=where, max_streams=1, trailing_is_data=True).issues
                if found:  # an object array of plain data does nothing when loaded: no finding at all
                    out.append(ModelIssue("model.npy.object", "info",
                                          ".npy holds Python objects (dtype 'O'): np.load(allow_pickle=True) runs "
                                          "the pickle after the header; its findings follow", "dtype=object",
                                          {**(_loc(where) or {}), "offset": at}))
                out += found
        elif kind == "safetensors":
            out += formats.safetensors_check(buf, where)
        elif kind == "gguf":
            out += formats.gguf_check(buf, where)
        elif kind == "hdf5":
            out += formats.hdf5_check(buf, where)
        elif kind == "compressed":
            out += containers.compressed_issues(self, buf, name, depth, where)
        elif polyglot_check and has_model_ext(name) and zip_tail(buf) and depth < self.limits.max_depth:
            out += self._zip(buf, name, depth, where)
        if kind not in ("hdf5", "tar") and hdf5_after_userblock(buf):
            # after a user block: h5py finds the superblock at 512, 1024, ... under any name (tf.keras 2 opens any
            # file h5py.is_hdf5 accepts), whatever the user block's first bytes sniff as; a tar's bytes at 512 are
            # its first member's, analysed as the member
            out += formats.hdf5_check(buf, where)
        if name[-5:].lower() == ".onnx" and kind in ("none", "pickle?"):  # ONNX has no magic number
            from veritensor_fast.models.onnx_ext import external_data_issues

            out += external_data_issues(buf, where)
        if self.dcp and not depth and not where:
            out += self._dcp_slices(buf, name, kind)
        return out

    def _dcp_slices(self, buf: Any, name: str, kind: str, depth: int = 0, where: str = "") -> list[ModelIssue]:
        return dcp_archive.slices(self, buf, name, kind, depth, where)

    # ---- pickles --------------------------------------------------------------------------------------------
    def _pickle(self, buf: Any, name: str, where: str, kind: str, member: bool) -> list[ModelIssue]:
        if kind == "pickle?":
            # protocol 0/1 without PROTO: only a stream that reaches STOP or makes a call counts as a pickle
            if has_model_ext(name):
                res = self.walker.analyze(buf, where=where)
                if res.clean_stop or res.saw_global_call or res.saw_global:
                    return res.issues
                return []
            if not pickle01_may_run(buf, TRIAL_BYTES):
                return []  # its first opcode already fails: the trial below could find nothing
            # bounded by ``end`` rather than a copy: every read of the walker checks it, as a slice would
            src = buf[:TRIAL_BYTES] if isinstance(buf, memoryview | bytearray) else buf  # walker copies these
            trial = self.walker.analyze(src, 0, TRIAL_BYTES, where=where, max_streams=1)
            if not (trial.saw_global_call or (trial.clean_stop and trial.saw_global)):
                return []
            res = self.walker.analyze(buf, where=where)
            return [i for i in res.issues if i.rule_id != "model.pickle.trailing-data"]
        if bytes(buf[:len(TORCH_MAGIC)]) == TORCH_MAGIC:
            # legacy torch.save: magic, protocol, sys_info, object, storage keys; then raw storage bytes
            res = self.walker.analyze(buf, where=where, max_streams=5, trailing_is_data=True)
            out = res.issues
            if res.streams < 5 and not res.broken:
                out.append(ModelIssue("model.pickle.truncated", "high",
                                      f"legacy PyTorch file holds {res.streams} of its 5 pickles", "truncated",
                                      _loc(where)))
            return out
        return self.walker.analyze(buf, where=where).issues

    # ---- archives -------------------------------------------------------------------------------------------
    def _member(self, data: Any, mname: str, depth: int, where: str) -> list[ModelIssue]:
        sub = f"{where}!{mname}" if where else mname
        if depth + 1 > self.limits.max_depth:
            return [ModelIssue("model.archive.limit", "high",
                               f"archive nesting deeper than {self.limits.max_depth}; member not analysed",
                               "depth limit", _loc(sub))]
        return self.run(data, mname, depth + 1, sub, member=True)

    def _budget(self, n: int, where: str) -> ModelIssue | None:
        self.total += n
        if self.total > self.limits.max_total_bytes:
            return ModelIssue("model.archive.limit", "high",
                              f"more than {self.limits.max_total_bytes} bytes decompressed from one file; the rest "
                              "was not analysed", "total size limit", _loc(where))
        return None

    def _zip(self, buf: Any, name: str, depth: int, where: str) -> list[ModelIssue]:
        """Every archive of a file made of several complete ones (``.distcp``: one ``torch.save`` per item, each
        loaded at its offset), the last one as a plain zip, the others at ``zip@OFFSET``."""
        if not where:
            self._dcp_zipped = self.dcp  # this file's every archive is read here (``_dcp_slices``)
        tail = containers.safetensors_tail(buf) if containers.find_eocd(buf) < 0 else -1
        if tail > 0:  # a DCP .distcp in the SAFETENSORS format: zips, then the tensors as one safetensors blob
            with memoryview(buf) as mv:
                if formats.safetensors_check(mv[tail:], where):
                    tail = -1  # not a valid blob: analysed as before (its zip anomalies reported)
        try:
            segments = containers.zip_segments(buf, self.limits.max_members, tail if tail > 0 else None)
        except containers.LimitExceeded as exc:
            return [ModelIssue("model.archive.limit", "high", f"zip: {exc}; not analysed", "member limit",
                               _loc(where), "" if has_model_ext(name) else "limit")]
        out: list[ModelIssue] = []
        for k, (start, end) in enumerate(segments):
            seg_where = where if k == 0 else (f"{where}!" if where else "") + f"zip@{start}"
            out += self._zip_one(buf, name, depth, seg_where, None if k == 0 and tail < 0 else end,
                                 k + 1 < len(segments))
            if self.total > self.limits.max_total_bytes:
                return out  # the budget finding is out; the archives before this one are not read
        if name.endswith(".distcp") or (self.dcp and not where):  # DCP reads any offset its .metadata names
            try:
                inner = containers.embedded_archives(buf, {s for s, _ in segments}, self.limits.max_members)
            except containers.LimitExceeded as exc:
                return out + [ModelIssue("model.archive.limit", "high", f"zip: {exc}; not analysed",
                                         "member limit", _loc(where))]
            for start, end in inner:
                out += self._zip_one(buf, name, depth, (f"{where}!" if where else "") + f"zip@{start}", end, True)
        return out

    def _zip_one(self, buf: Any, name: str, depth: int, where: str, end: int | None,
                 joined: bool) -> list[ModelIssue]:
        lim = self.limits
        out: list[ModelIssue] = []
        # a zip named as a model (``.pt``, ``.keras``, ...) that cannot be read is a finding (fail closed); any
        # other zip is an incomplete scan (an error, exit 3): nothing model-like was reached
        named = has_model_ext(name)
        try:
            members, anomalies = containers.zip_members(buf, lim, end=end)
            if joined:  # the bytes before it are the archive analysed next, not an unexplained prefix
                anomalies = [a for a in anomalies if a.evidence != "zip prefix"]
        except containers.LimitExceeded as exc:
            return [ModelIssue("model.archive.limit", "high", f"zip: {exc}; not analysed", "member limit",
                               _loc(where), "" if named else "limit")]
        except (containers.ArchiveError, IndexError, ValueError, OverflowError) as exc:
            return [ModelIssue("model.archive.corrupt", "high",
                               f"zip structure unreadable ({exc if isinstance(exc, containers.ArchiveError) else type(exc).__name__}); "
                               "the file could not be analysed", "corrupt zip", _loc(where), "" if named else "corrupt")]
        for a in anomalies:
            out.append(ModelIssue(a.rule_id, a.severity, "zip: " + a.message, a.evidence, _loc(where)))
        names = {m.name for m in members}
        torch_layout = any(n.endswith("data.pkl") for n in names)
        # Keras load_model opens any zip named .keras and builds the model from config.json before it looks for
        # the other members: config.json alone is enough to run its gadgets
        keras_layout = "config.json" in names and ("metadata.json" in names or "model.weights.h5" in names
                                                   or name.lower().endswith(".keras"))
        # a Distributed Checkpoint directory packed into the zip: its storage files under any name
        dcp_dirs = dcp_archive.folders(buf, members, lim.max_member_bytes) if any(
            is_metadata_name(posixpath.basename(n)) for n in names) else set()
        for k, m in enumerate(members):
            if m.is_dir:
                continue
            model_like = False  # the member's head sniffed as model content
            sub = f"{where}!{m.name}" if where else m.name
            for a in containers.member_anomalies(m):
                out.append(ModelIssue(a.rule_id, a.severity, "zip: " + a.message, a.evidence, _loc(sub)))
            try:
                head, complete = containers.zip_read(buf, m, lim.max_member_bytes, head_only=True)
                kind = sniff(bytes(head), m.name, m.usize)
                if torch_layout and (torchscript.is_code_member(m.name) or m.name.endswith("bytecode.pkl")):
                    # TorchScript source (and lite-interpreter op lists) run by torch.jit.load (``torchscript``)
                    out += torchscript.code_issues(containers.zip_read(buf, m, lim.max_member_bytes)[0], sub)
                    if kind == "none":
                        continue
                if keras_layout and m.name == "model.weights.h5" and kind == "hdf5":
                    continue  # Keras v3 reads only arrays from it (h5py); the architecture is config.json
                # a storage file of a checkpoint directory packed in the zip: read whatever its name and bytes
                in_dcp = bool(dcp_dirs) and posixpath.dirname(m.name) in dcp_dirs and not is_metadata_name(
                    posixpath.basename(m.name))
                if kind == "none" and not in_dcp and not (keras_layout and m.name == "config.json") and m.csize >= 0:
                    # no model content: check only that a compressed member is not a bomb (declared sizes)
                    if m.method != 0 and m.csize and m.usize > lim.bomb_floor and m.usize / m.csize > lim.max_ratio:
                        out.append(ModelIssue("model.zip.bomb", "medium",
                                              f"zip member {m.name!r} declares compression ratio "
                                              f"{m.usize // max(m.csize, 1)}:1 (zip bomb?)", m.name, _loc(sub)))
                    continue
                if torch_layout and not in_dcp and _STORAGE_MEMBER.search(m.name) and not _strong_pickle(head):
                    continue  # tensor storage bytes: never unpickled by torch; not read
                model_like = True
                data, _ = containers.zip_read(buf, m, lim.max_member_bytes)
                stop = self._budget(len(data), sub)
                if stop:
                    out.append(stop)
                    break
                if m.method != 0 and m.csize and len(data) > lim.bomb_floor and len(data) / m.csize > lim.max_ratio:
                    out.append(ModelIssue("model.zip.bomb", "medium",
                                          f"zip member {m.name!r} expands {len(data) // m.csize}:1 (zip bomb?)",
                                          m.name, _loc(sub)))
                if zlib.crc32(data) != m.crc:
                    out.append(ModelIssue("model.zip.anomaly", "low",
                                          f"zip member {m.name!r} fails its CRC check (PyTorch ignores CRCs)",
                                          m.name, _loc(sub)))
                if in_dcp:
                    out += self._dcp_member(data, m.name, kind, depth, where)
                    continue
                if keras_layout and m.name == "config.json":
                    out += formats.keras_config(bytes(data), sub)
                    continue
                if torch_layout and m.name.endswith("data.pkl"):
                    out += self._checkpoint_pickle(data, m.name, depth, where, members)
                    continue
                out += self._member(data, m.name, depth, where)
            except containers.BudgetExhausted as exc:
                # a finding when model content (or a member named like a model payload) is left unread
                left = model_like or any(containers.model_name(r.name) for r in members[k:] if not r.is_dir)
                out.append(ModelIssue("model.archive.limit", "high", f"zip: {exc}; this member and the rest were "
                                      "not analysed", m.name, _loc(sub), "" if left else "limit"))
                break
            except containers.LimitExceeded as exc:
                out.append(ModelIssue("model.zip.bomb", "high", f"zip: {exc}; member not fully analysed", m.name,
                                      _loc(sub), "" if model_like or containers.model_name(m.name) else "limit"))
            except containers.ArchiveError as exc:
                out.append(ModelIssue("model.archive.corrupt", "high", f"zip: {exc}; member could not be analysed",
                                      m.name, _loc(sub),
                                      "" if model_like or containers.model_name(m.name) else "corrupt"))
        return out

    def _dcp_member(self, data: Any, mname: str, kind: str, depth: int, where: str) -> list[ModelIssue]:
        return dcp_archive.member(self, data, mname, kind, depth, where)

    def _checkpoint_pickle(self, data: Any, mname: str, depth: int, where: str,
                           members: list[containers.ZipMember]) -> list[ModelIssue]:
        """A PyTorch zip's ``data.pkl``, analysed as any member; then each storage it declares is compared with
        its record's size (``pickle_torch.short_records``: CVE-2026-24747)."""
        seen: dict[str, int] = {}
        outer, self.walker.storages = self.walker.storages, seen  # (a checkpoint nested in this pickle's zip tail)
        try:
            out = self._member(data, mname, depth, where)
        finally:
            self.walker.storages = outer
        if seen:
            out += short_records(mname, seen, {m.name: m.usize for m in members if not m.is_dir}, where)
        return out

    def _tar(self, buf: Any, name: str, depth: int, where: str) -> list[ModelIssue]:
        out: list[ModelIssue] = []
        try:
            for mname, head, reader in containers.tar_members(buf, self.limits):
                sub = f"{where}!{mname}" if where else mname
                kind = sniff(head, mname)
                if kind == "none":
                    continue
                try:
                    data = reader(self.limits.max_member_bytes)
                except containers.BudgetExhausted as exc:  # model content left unread: a finding
                    out.append(ModelIssue("model.archive.limit", "high", f"tar: {exc}; this member and the rest "
                                          "were not analysed", mname, _loc(sub)))
                    break
                except containers.LimitExceeded as exc:
                    out.append(ModelIssue("model.archive.limit", "high", f"tar: {exc}; member not analysed",
                                          mname, _loc(sub)))
                    continue
                except containers.ArchiveError as exc:  # damage inside model content: a finding
                    out.append(ModelIssue("model.archive.corrupt", "high", f"tar: {exc}; member could not be "
                                          "fully analysed", mname, _loc(sub)))
                    break
                stop = self._budget(len(data), sub)
                if stop:
                    out.append(stop)
                    break
                if posixpath.basename(mname) in ("storages", "tensors") and kind == "pickle":
                    # legacy torch tar: small pickles interleaved with raw tensor bytes
                    out += self.walker.analyze(data, where=sub, trailing_is_data=True).issues
                    continue
                out += self._member(data, mname, depth, where)
        # stopped between members or inside one that is no model content: nothing model-like was left unread
        # that we know of; an incomplete scan (error, exit 3), not a finding
        # (unless it stopped at the start of a member named like a model payload)
        except containers.LimitExceeded as exc:
            err = "" if containers.model_name(getattr(exc, "member", ".")) else "limit"
            out.append(ModelIssue("model.archive.limit", "high", f"tar: {exc}; rest not analysed", "limit",
                                  _loc(where), err))
        except containers.ArchiveError as exc:
            err = "" if containers.model_name(getattr(exc, "member", ".")) else "corrupt"
            out.append(ModelIssue("model.archive.corrupt", "high", f"tar: {exc}; could not be fully analysed",
                                  "corrupt tar", _loc(where), err))
        return out

    def _7z(self, buf: Any, name: str, depth: int, where: str) -> list[ModelIssue]:
        out: list[ModelIssue] = []
        cap = self.limits.max_member_bytes

        def member(mname: str, data: bytes, size: int) -> None:
            sub = f"{where}!{mname}" if where else mname
            if sniff(data[:4096], mname, size) == "none":
                return
            if size > len(data):
                out.append(ModelIssue("model.archive.limit", "high", f"7z: member larger than {cap} bytes; not "
                                      "analysed", mname, _loc(sub)))
                return
            out.extend(self._member(data, mname, depth, where))

        try:
            containers.sevenzip_walk(buf, self.limits, member, cap,
                                     keep=lambda n, h: sniff(h, n) != "none")  # only model content is held
        except containers.LimitExceeded as exc:
            out.append(ModelIssue("model.archive.limit", "high", f"7z: {exc}; the rest was not analysed", "limit",
                                  _loc(where), "limit"))
        except containers.ArchiveError as exc:
            out.append(ModelIssue("model.archive.corrupt", "high", f"7z: {exc}; could not be analysed",
                                  "corrupt 7z", _loc(where), "corrupt"))
        return out


_DIGEST_WHOLE = 64 << 20
#: A pickle in a large file read without a memory map (``randread.PreadView``) is walked from memory up to this
#: size (the walker slices per opcode; ``pread`` per slice would be several times slower); bigger ones (legacy
#: ``torch.save`` files, whose pickles are followed by raw tensor bytes) are walked through the view.
PICKLE_IN_MEMORY = 256 << 20


def in_memory(buf: Any) -> Any:
    if isinstance(buf, PreadView) and len(buf) <= PICKLE_IN_MEMORY:
        return buf.read(0, len(buf))
    return buf


def content_digest(buf: Any) -> str:
    """First 16 hex digits of the SHA-256 of ``buf`` (of its size, first 64 MiB and last 1 MiB when larger)."""
    h = hashlib.sha256()
    n = len(buf)
    if not isinstance(buf, bytes | bytearray | memoryview | mmap.mmap):  # a ``PreadView``: 1 MiB reads
        def part(a: int, b: int) -> None:
            for x in range(a, b, 1 << 20):
                h.update(buf[x:min(b, x + (1 << 20))])
        if n <= _DIGEST_WHOLE:
            part(0, n)
        else:
            h.update(n.to_bytes(8, "little"))
            part(0, _DIGEST_WHOLE)
            part(n - (1 << 20), n)
        return h.hexdigest()[:16]
    with memoryview(buf) as mv:  # no copy of an mmap; every view is released before the mmap may close
        if n <= _DIGEST_WHOLE:
            h.update(mv)
        else:
            h.update(n.to_bytes(8, "little"))
            with mv[:_DIGEST_WHOLE] as head, mv[n - (1 << 20):] as tail:
                h.update(head)
                h.update(tail)
    return h.hexdigest()[:16]


def _strong_pickle(head: Any) -> bool:
    """A storage member that nonetheless is a real pickle: PROTO header and a global within the head."""
    h = bytes(head)
    if not (len(h) > 2 and h[0] == 0x80 and 2 <= h[1] <= 5):
        return False
    res = PickleWalker().analyze(h, max_streams=1)
    return res.saw_global and not any(i.rule_id == "model.pickle.corrupt" for i in res.issues)


def _loc(where: str) -> dict[str, Any] | None:
    return {"member": where} if where else None
