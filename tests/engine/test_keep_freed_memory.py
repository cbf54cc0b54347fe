"""``keep_freed_memory``: after it, tensors freed in one step are reused by the next without new page
faults (counted by the kernel, ``getrusage``); without it glibc unmaps them and faults them in again."""
import platform
import subprocess
import sys
import textwrap

import pytest

STEPS = textwrap.dedent('''
    import resource, sys, torch
    from det.engine.malloc import keep_freed_memory
    if sys.argv[1] == 'keep':
        assert keep_freed_memory()
    def step():  # activations of a training step: 4-48 MiB tensors, freed at its end
        acts = [torch.ones(mib << 18) for mib in (4, 12, 24, 48, 8)]
        return sum(float(a[-1]) for a in acts)
    step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        step()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
''')


def page_faults(mode: str) -> int:
    out = subprocess.run([sys.executable, '-c', STEPS, mode], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(platform.system() != 'Linux' or platform.libc_ver()[0] != 'glibc',
                    reason='mallopt thresholds are glibc settings')
def test_freed_tensors_are_reused_without_page_faults():
    default, kept = page_faults('default'), page_faults('keep')
    pages_per_step = (4 + 12 + 24 + 48 + 8) * 256  # 4 KiB pages
    assert default > 2 * pages_per_step  # glibc gave (some of) them back and faulted them in again
    assert kept < default / 20  # measured here: 122,742 page faults in 5 steps without, 2,048 with


def test_other_c_libraries_are_left_alone(monkeypatch):
    from det.engine import malloc
    monkeypatch.setattr(malloc.platform, 'system', lambda: 'Darwin')
    assert malloc.keep_freed_memory() is False
