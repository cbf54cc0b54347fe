"""Crash-safety of checkpoint files: atomic writes and choosing the checkpoint to resume from."""
import os

import pytest

from det.engine import find_resume_checkpoint, write_atomic


def test_write_atomic_keeps_old_file_when_interrupted(tmp_path, monkeypatch):
    target = tmp_path / 'epoch_1.pth'
    write_atomic(b'complete old checkpoint', target)

    def killed(*args):
        raise KeyboardInterrupt('killed while writing')

    monkeypatch.setattr(os, 'replace', killed)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(b'half a new', target)
    assert target.read_bytes() == b'complete old checkpoint'
    assert [p.name for p in tmp_path.iterdir()] == ['epoch_1.pth']  # no temporary file left behind


def test_find_resume_checkpoint_takes_highest_number_not_stale_pointer(tmp_path):
    assert find_resume_checkpoint(str(tmp_path)) is None
    for name in ('epoch_2.pth', 'epoch_10.pth', 'best_coco_AP50_epoch_11.pth', '.tmp_epoch_12.pth'):
        (tmp_path / name).write_bytes(b'x')
    (tmp_path / 'last_checkpoint').write_text('')  # truncated by a kill
    assert find_resume_checkpoint(str(tmp_path)) == str(tmp_path / 'epoch_10.pth')
