"""A short ThunderNet training run on tiny generated data: the loss falls and AP50 (pycocotools) rises
past a bar."""
import contextlib
import io

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from .test_two_stage_detector import sample, thundernet

SIZE = 128


def toy_data():
    """Four 128x128 images: grey noise with filled rectangles, class = colour (red 0, green 1, blue 2)."""
    gen = torch.Generator().manual_seed(0)
    layouts = [[([12, 16, 60, 68], 0)],
               [([60, 20, 112, 52], 1), ([16, 72, 48, 116], 0)],
               [([8, 8, 40, 36], 2), ([72, 60, 120, 120], 0), ([20, 80, 60, 104], 1)],
               [([40, 40, 96, 88], 2)]]
    colours = torch.tensor([[1.5, -1.0, -1.0], [-1.0, 1.5, -1.0], [-1.0, -1.0, 1.5]])
    images, samples = [], []
    for boxes in layouts:
        img = 0.3 * torch.randn(3, SIZE, SIZE, generator=gen)
        for (x1, y1, x2, y2), label in boxes:
            img[:, y1:y2, x1:x2] = colours[label][:, None, None]
        images.append(img)
        samples.append(sample([b for b, _ in boxes], [lab for _, lab in boxes], (SIZE, SIZE)))
    return torch.stack(images), samples


def ap50(samples, results) -> float:
    images, anns, dets = [], [], []
    for i, (s, res) in enumerate(zip(samples, results)):
        images.append(dict(id=i, height=SIZE, width=SIZE))
        for box, label in zip(s.gt_instances.bboxes.tolist(), s.gt_instances.labels.tolist()):
            w, h = box[2] - box[0], box[3] - box[1]
            anns.append(dict(id=len(anns) + 1, image_id=i, category_id=label, bbox=[box[0], box[1], w, h],
                             area=w * h, iscrowd=0))
        for box, score, label in zip(res.bboxes.tolist(), res.scores.tolist(), res.labels.tolist()):
            dets.append(dict(image_id=i, category_id=label, score=score,
                             bbox=[box[0], box[1], box[2] - box[0], box[3] - box[1]]))
    if not dets:
        return 0.0
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = dict(images=images, annotations=anns, categories=[dict(id=c) for c in range(3)])
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(dets), 'bbox')
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[1])


@pytest.mark.slow
def test_short_training_run_learns_toy_boxes():
    model = thundernet()
    inputs, samples = toy_data()
    model.eval()
    with torch.no_grad():
        ap_before = ap50(samples, model.predict_in_input_pixels(inputs, samples))
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
        ap_after = ap50(samples, model.predict_in_input_pixels(inputs, samples))
    print(f'loss {history[0]:.3f} -> {np.mean(history[-10:]):.3f}, AP50 {ap_before:.3f} -> {ap_after:.3f}')
    assert np.mean(history[-10:]) < 0.4 * history[0]
    assert ap_before < 0.1
    assert ap_after > 0.5
