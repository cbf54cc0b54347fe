"""Crash-safety of checkpoint files: atomic writes and choosing the checkpoint to resume from."""
import os

import pytest
import torch

from det.engine import checkpoint_to_test, find_resume_checkpoint, write_atomic


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


def _save(path, epoch, iteration, run='run_1'):
    """A checkpoint as mmengine's Runner writes it: ``meta`` records the epoch, the global iteration and
    the run (``experiment_name``)."""
    torch.save({'meta': {'epoch': epoch, 'iter': iteration, 'experiment_name': run},
                'state_dict': {'w': torch.zeros(2)}}, path)


def test_find_resume_checkpoint_takes_the_latest_not_a_stale_pointer(tmp_path):
    assert find_resume_checkpoint(str(tmp_path)) is None
    for epoch in (2, 10):
        _save(tmp_path / f'epoch_{epoch}.pth', epoch, epoch * 3)
    for name in ('best_coco_AP50_epoch_11.pth', '.tmp_epoch_12.pth'):  # not resume points
        _save(tmp_path / name, 11, 33)
    (tmp_path / 'last_checkpoint').write_text('')  # truncated by a kill
    assert find_resume_checkpoint(str(tmp_path)) == str(tmp_path / 'epoch_10.pth')


def test_epoch_and_iter_checkpoints_are_ranked_by_the_iteration_they_record(tmp_path):
    """``epoch_N`` counts epochs, ``iter_N`` iterations: epoch 3 of 10 iterations each (iteration 30) is
    later than iteration 20, though 3 < 20; and iteration 40 is later than epoch 3."""
    _save(tmp_path / 'epoch_3.pth', 3, 30)
    _save(tmp_path / 'iter_20.pth', 2, 20)
    assert find_resume_checkpoint(str(tmp_path)) == str(tmp_path / 'epoch_3.pth')
    _save(tmp_path / 'iter_40.pth', 4, 40)
    assert find_resume_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_40.pth')


def test_a_checkpoint_without_recorded_iteration_is_named_and_left_out(tmp_path):
    _save(tmp_path / 'epoch_1.pth', 1, 10)
    (tmp_path / 'epoch_9.pth').write_bytes(b'not a checkpoint')
    torch.save({'state_dict': {}}, tmp_path / 'iter_90.pth')  # no meta
    with pytest.warns(UserWarning, match='records no iteration') as caught:
        assert find_resume_checkpoint(str(tmp_path)) == str(tmp_path / 'epoch_1.pth')
    assert sorted(str(w.message).split()[1] for w in caught) == [
        str(tmp_path / 'epoch_9.pth'), str(tmp_path / 'iter_90.pth')]


def test_checkpoint_to_test_takes_a_file_or_a_work_dirs_best_else_latest(tmp_path):
    with pytest.raises(FileNotFoundError, match='no checkpoint'):
        checkpoint_to_test(str(tmp_path))
    with pytest.raises(FileNotFoundError, match='not found'):
        checkpoint_to_test(str(tmp_path / 'missing.pth'))
    _save(tmp_path / 'epoch_1.pth', 1, 10)
    _save(tmp_path / 'epoch_2.pth', 2, 20)
    assert checkpoint_to_test(str(tmp_path)) == str(tmp_path / 'epoch_2.pth')
    _save(tmp_path / 'best_coco_AP50_epoch_1.pth', 1, 10)
    assert checkpoint_to_test(str(tmp_path)) == str(tmp_path / 'best_coco_AP50_epoch_1.pth')
    assert checkpoint_to_test(str(tmp_path / 'epoch_2.pth')) == str(tmp_path / 'epoch_2.pth')
    _save(tmp_path / 'epoch_3.pth', 1, 30, run='run_2')  # another run in the same dir, not validated yet
    assert checkpoint_to_test(str(tmp_path)) == str(tmp_path / 'epoch_3.pth')
