"""One Hyperscan scan of a Python source for both the text pass and the AST prefilter.

Every ``.py`` file the AST detector may parse was scanned twice: by the text pass (the rules and the base64
needles, ``SecretMatcher.find_with_hits``) and by the prefilter's first database (``pyast_prefilter``). Both are
literal-heavy sets that Hyperscan matches in one pass almost as fast as either alone: over the real tree's 208 MB
of Python source, 1.83e9 instructions for the rules, 2.49e9 for the prefilter, 2.72e9 for both in one database
(``bench/README.md``, cpu23). So the text pass scans such a file with the rules' database plus the prefilter's
first-stage patterns (``SecretMatcher.shared``) and leaves the prefilter's hits in ``ItemScan.shared``, where the
AST detector takes them instead of scanning again (:func:`prefilter_hits`; a needle's hit still brings the
second stage, ``pyast_needles.TwoStage.after``). The hits are the same: each pattern keeps its flags, and its own
match id, in the larger database.

Compiling that database costs about as much as compiling the two it joins (~3 CPU-s), once per machine, and
loading it from the cache ~2.3e7 instructions (a one-file scan: +4 %): so it is looked up in the on-disk cache only
once a process has scanned :data:`LOOK_AFTER` bytes of Python source twice (one scan saves ~7.6e6 instructions
per MB), and compiled only after :data:`COMPILE_AFTER` (a small tree, a pre-commit scan, never pays for either).
Any failure to build it leaves the two scans.

The batch gate scans a batch's small Python files joined with the same database (``PythonAstSecrets.gate_share``):
a file without a prefilter hit of its own there is quiet for the AST pass, not scanned again. For that the
prefilter's patterns are compiled in it to report every hit (``matcher.Shared.once``: a single-match pattern would
report its first hit in the whole concatenation only); ``find_shared`` keeps each such pattern's first hit, the one
a single match reports (the scan costs the same: 2.149e9 and 2.150e9 instructions over the real tree's 166 MB of
large ``.py`` files).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from veritensor_fast.detectors.pyast_prefilter import PrefilterPlan
    from veritensor_fast.matcher import SecretMatcher, Shared
    from veritensor_fast.worker import ItemScan

#: Python source scanned by both databases in one process before the shared database is looked up in the cache,
#: and before it is compiled (when the cache does not hold it).
LOOK_AFTER = 4 << 20
COMPILE_AFTER = 64 << 20
#: While another process compiles it (:func:`cache_claim`), the cache is looked at again after this much more.
RELOOK = 16 << 20
#: The claim's name in the cache directory: one process of the machine compiles the database at a time.
CLAIM = "pyast-shared"


class Sharing:
    """The shared database of one AST detector (:mod:`pyast_shared`), found in the cache or compiled when due.

    Only one process of the machine compiles it (the others of a ``--jobs N`` scan would each spend the same ~2.6
    CPU-s: a cold real-tree scan took 4.3 -> 6.2 s with both workers compiling); they scan twice meanwhile and look
    in the cache again every :data:`RELOOK` bytes. Without a trusted cache directory it is never compiled: it
    could not be kept, and one scan never earns its compile back."""

    __slots__ = ("_double", "_look_at", "_matcher", "_off", "_plan", "_shared", "_waiting")

    def __init__(self, matcher: SecretMatcher, plan: PrefilterPlan) -> None:
        self._matcher, self._plan = matcher, plan
        self._shared: Shared | None = None
        self._off = self._waiting = False
        self._double = 0  # bytes scanned twice so far
        self._look_at = LOOK_AFTER

    def get(self, size: int) -> Shared | None:
        """The shared database for a source of ``size`` bytes the AST detector will prefilter, or None (scan twice)."""
        if self._shared is not None or self._off:
            return self._shared
        self._double += size
        if self._double >= self._look_at:
            self._look_at = self._double + RELOOK if self._waiting else 1 << 62
            self._shared = self._build(False)
            if self._shared is not None or self._off:
                return self._shared
        if self._double >= COMPILE_AFTER and not self._waiting:
            from veritensor_fast.kernels.diskcache import cache_claim

            with cache_claim(CLAIM) as mine:
                if mine:
                    self._shared = self._build(True)
                    self._off = self._shared is None
                else:  # another process compiles it (or there is no cache to keep it in): look for it later
                    self._waiting, self._look_at = True, self._double + RELOOK
        return self._shared

    def _build(self, compile_it: bool) -> Shared | None:
        from veritensor_fast.detectors.pyast_prefilter import first_stage

        try:
            return self._matcher.shared(*first_stage(self._plan), compile_it=compile_it)
        except Exception:  # a database that does not compile or load: the two scans, as before
            self._off = True
            return None


def prefilter_hits(db: Any, buf: Any, scan: ItemScan | None) -> list[tuple[int, int]]:
    """The prefilter's hits in ``buf``: those the text pass's shared scan left in ``scan`` for this very buffer
    (the second stage added where a needle hit), else ``db``'s own scan."""
    got = scan.shared if scan is not None else None
    if got is None or got[0] is not buf:
        hits: list[tuple[int, int]] = db.scan(buf)
        return hits
    from veritensor_fast.detectors.pyast_needles import TwoStage

    return db.after(buf, got[1]) if isinstance(db, TwoStage) else got[1]


def joinable(plan: PrefilterPlan | None) -> bool:
    """Whether no pattern of ``plan`` may hold a ``^``/``$``/``\\A``/``\\z`` anchor, so that every hit in a buffer
    alone is one in a concatenation of buffers (``PythonAstSecrets.none_wanted``, the batch gate's joined scan; a
    word boundary is no anchor there: Hyperscan sees a buffer's ends as non-word characters, as it sees a NUL or a
    line break). False without a plan."""
    from veritensor_fast.detectors.pyast_prefilter import after_backslash
    from veritensor_fast.matcher import is_anchored

    if plan is None:
        return False
    joined = b"\n".join(p for p, _ci in plan.patterns)
    # no ``^``/``$`` byte and no ``\A``-like escape at all is the usual answer (found at memchr speed); otherwise
    # ask is_anchored, once for all (each pattern's escapes and classes end inside it)
    quick = b"^" not in joined and b"$" not in joined and not any(after_backslash(joined, c) for c in b"AZzG")
    return quick or not is_anchored(joined)
