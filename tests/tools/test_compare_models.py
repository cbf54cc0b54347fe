"""tools/analysis/compare_models.py, the refactor check: a checkout compared with itself is equal, and a
reference whose config builds another model is reported, not crashed on."""
import shutil
import subprocess
import sys

from .conftest import REPO

TOOL = REPO / 'tools/analysis/compare_models.py'


def _run(ref):
    return subprocess.run([sys.executable, str(TOOL), '--ref', str(ref), 'configs/yolo_v1.py'], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def test_a_checkout_equals_itself():
    proc = _run(REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'keys and outputs equal' in proc.stdout


def test_a_reference_with_another_model_is_reported(tmp_path):
    ref = tmp_path / 'ref'
    shutil.copytree(REPO / 'configs', ref / 'configs')
    (ref / 'det').symlink_to(REPO / 'det')
    config = ref / 'configs/yolo_v1.py'
    text = config.read_text()
    assert 'model = dict(head=dict(num_classes=5))' in text
    config.write_text(text.replace('model = dict(head=dict(num_classes=5))',
                                   'model = dict(head=dict(num_classes=5, feat_channels=64))'))
    proc = _run(ref)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert 'DIFFERS' in proc.stdout and 'state_dict shapes differ' in proc.stdout
