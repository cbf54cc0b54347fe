"""A short ThunderNet training run on tiny generated data: the loss falls and AP50 (det's evaluate_coco on
pycocotools) rises past a bar."""
import numpy as np
import pytest
import torch

from tests.conftest import ap50, toy_data

from .test_two_stage_detector import thundernet

# The toy objects at 128 x 128 pixels, in three classes (red 0, green 1, blue 2).
LAYOUTS = [[([12, 16, 60, 68], 0)],
           [([60, 20, 112, 52], 1), ([16, 72, 48, 116], 0)],
           [([8, 8, 40, 36], 2), ([72, 60, 120, 120], 0), ([20, 80, 60, 104], 1)],
           [([40, 40, 96, 88], 2)]]


@pytest.mark.slow
def test_short_training_run_learns_toy_boxes():
    model = thundernet()
    inputs, samples = toy_data(LAYOUTS, size=128)
    model.eval()
    with torch.no_grad():
        ap_before = ap50(samples, model.predict_in_input_pixels(inputs, samples), 3)
    model.train()
    optim = torch.optim.Adam(model.parameters(), lr=2e-3)
    history = []
    for _ in range(120):
        losses = model.loss(inputs, samples)
        loss = sum(losses.values())
        optim.zero_grad()
        loss.backward()
        optim.step()
        history.append(loss.item())
    model.eval()
    with torch.no_grad():
        ap_after = ap50(samples, model.predict_in_input_pixels(inputs, samples), 3)
    print(f'loss {history[0]:.3f} -> {np.mean(history[-10:]):.3f}, AP50 {ap_before:.3f} -> {ap_after:.3f}')
    assert np.mean(history[-10:]) < 0.4 * history[0]
    assert ap_before < 0.1
    assert ap_after > 0.5
