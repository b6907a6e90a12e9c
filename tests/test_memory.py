"""medlink.malloc_mmap_threshold.v1: large freed blocks go back to the OS.

The scenario is the one that OOM-killed gated MiniLM training, in small: a
freed big block raises glibc's adaptive mmap threshold, then big blocks come
from the heap, pinned by medium ones between them, and freeing them returns
nothing. Run in fresh interpreters, since the setting is process-wide."""
import subprocess
import sys
import textwrap

import pytest
from spacy.language import Language
from spacy.util import registry

import spacy_medlink.memory  # noqa: F401 (registers the callback without entry points)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt, /proc")

SCENARIO = textwrap.dedent(
    """
    import sys, numpy
    from spacy.language import Language
    from spacy.util import registry
    import spacy_medlink.memory  # noqa: registers the callback without entry points

    def rss_mb():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS"):
                return int(line.split()[1]) // 1024

    if sys.argv[1] == "fix":
        assert registry.callbacks.get("medlink.malloc_mmap_threshold.v1")(threshold=4 * 2**20)(Language) is Language
    a = numpy.ones(2**21)  # 16 MB, freed: glibc raises its mmap threshold above 8 MB
    del a
    base = rss_mb()
    big, medium = [], []
    for _ in range(64):
        big.append(numpy.ones(2**20))  # 8 MB
        medium.append(numpy.ones(2**15))  # 256 KB, from the heap either way
    del big
    print(rss_mb() - base)
    """
)


def _held_mb(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", SCENARIO, mode], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def test_freed_large_blocks_are_returned():
    # 64 x 8 MB freed: without the setting the heap keeps ~512 MB, with it only the 16 MB of medium blocks stay
    assert _held_mb("nofix") > 256
    assert _held_mb("fix") < 64


def test_callback_returns_the_class_unchanged_and_checks_its_argument():
    make = registry.callbacks.get("medlink.malloc_mmap_threshold.v1")
    assert make()(Language) is Language
    with pytest.raises(ValueError, match="positive"):
        make(threshold=0)(Language)
