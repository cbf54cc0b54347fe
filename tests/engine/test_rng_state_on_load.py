"""Checkpoints carry the RNG state for an exact ``--resume``; loading weights to fine-tune or test
(``load_from``) must not replace the new run's seeded random stream with the old run's."""
from types import SimpleNamespace

import torch

from det.engine import WeightsOnlyCheckpointHook


def _checkpoint_saved_after(seed: int) -> dict:
    torch.manual_seed(seed)
    checkpoint = {}
    WeightsOnlyCheckpointHook().before_save_checkpoint(SimpleNamespace(), checkpoint)
    return checkpoint


def test_rng_restored_on_resume_only():
    hook = WeightsOnlyCheckpointHook()
    torch.manual_seed(123)
    expected_fresh = torch.rand(3)
    torch.manual_seed(7)
    expected_saved = torch.rand(3)

    checkpoint = _checkpoint_saved_after(7)
    torch.manual_seed(123)
    hook.after_load_checkpoint(SimpleNamespace(_resume=False), checkpoint)   # load_from: fine-tuning
    assert torch.equal(torch.rand(3), expected_fresh)

    checkpoint = _checkpoint_saved_after(7)
    torch.manual_seed(123)
    hook.after_load_checkpoint(SimpleNamespace(_resume=True), checkpoint)    # --resume
    assert torch.equal(torch.rand(3), expected_saved)
