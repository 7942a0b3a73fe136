"""model24: the picklescan advisories published since redteam21's sweep, one test each, named by the advisory.

Each advisory names the callable a pickle reaches (its text, and picklescan's ``tests/data2/GHSA-*.pkl``); the
payload is written here as raw opcodes at protocol 4 and protocol 2 (``test_redteam21_advisories._forms``) and is
never unpickled. On 378526f GHSA-g38g-8gr9-h9xp's ``_osx_support._read_output``/``_find_build_tool`` (``os.system``
of a command string) and ``_aix_support._read_cmd_output`` (the same) were only an unknown global (high); the
modules are now dangerous and each is CRITICAL. The others were already CRITICAL (a reviewed dangerous module).
"""

from __future__ import annotations

import pytest
from test_redteam21_advisories import test_advisory_callable_is_critical_in_both_protocols as _critical_both

ADVISORIES = [
    ("GHSA-7wx9-6375-f5wh", "profile", "run"),  # the module-level run, not Profile.run
    ("GHSA-g38g-8gr9-h9xp uuid", "uuid", "_get_command_stdout"),
    ("GHSA-g38g-8gr9-h9xp osx-support", "_osx_support", "_read_output"),
    ("GHSA-g38g-8gr9-h9xp osx-support build tool", "_osx_support", "_find_build_tool"),
    ("GHSA-g38g-8gr9-h9xp aix-support", "_aix_support", "_read_cmd_output"),
    ("GHSA-g38g-8gr9-h9xp pyrepl-pager", "_pyrepl.pager", "pipe_pager"),
    ("GHSA-g38g-8gr9-h9xp pyrepl-pager tempfile", "_pyrepl.pager", "tempfile_pager"),
    ("GHSA-g38g-8gr9-h9xp imaplib", "imaplib", "IMAP4_stream"),
    ("GHSA-g38g-8gr9-h9xp test", "test.support.script_helper", "assert_python_ok"),
    ("GHSA-g38g-8gr9-h9xp codeop", "codeop", "compile_command"),
    ("GHSA-hgrh-qx5j-jfwx", "pty", "spawn"),
    ("GHSA-cffc-mxrf-mhh4", "numpy.f2py.crackfortran", "param_eval"),
    ("GHSA-6556-fwc2-fg2p", "numpy.f2py.crackfortran", "_eval_length"),
    ("GHSA-3329-ghmp-jmv5", "numpy.f2py.crackfortran", "myeval"),
    ("GHSA-rrxm-2pvv-m66x", "numpy.f2py.crackfortran", "getlincoef"),
]


@pytest.mark.parametrize("adv,module,qualname", ADVISORIES, ids=[a[0] for a in ADVISORIES])
def test_advisory_callable_is_critical_in_both_protocols(adv: str, module: str, qualname: str) -> None:
    _critical_both(adv, module, qualname)  # redteam21's check: both protocols, as .pkl and as .bin
