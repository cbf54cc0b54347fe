"""det.visualization.draw_detections: one call draws a result on its image, small images scaled up (the
background compared with cv2.resize of the input, the boxes where the scaled coordinates put them)."""
import cv2
import numpy as np
import torch
from mmengine.structures import InstanceData

from det.structures import DetDataSample
from det.visualization import draw_detections
from det.visualization.draw import _PALETTE

CLASSES = ('circle', 'square', 'triangle')


def _image():
    rng = np.random.default_rng(0)
    return cv2.resize(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8), (160, 120),
                      interpolation=cv2.INTER_NEAREST)


def _sample():
    sample = DetDataSample(metainfo=dict(classes=CLASSES))
    sample.pred_instances = InstanceData(bboxes=torch.tensor([[40., 50., 100., 110.], [5., 5., 20., 20.]]),
                                         labels=torch.tensor([1, 2]), scores=torch.tensor([0.9, 0.1]))
    return sample


def test_small_image_is_scaled_up_and_boxes_follow(tmp_path):
    img = _image()
    path = tmp_path / 'small.png'
    cv2.imwrite(str(path), img)
    drawn = draw_detections(str(path), _sample(), score_thr=0.3)  # classes from the sample's metainfo
    assert drawn.shape == (480, 640, 3)  # long side 160 -> 640: scale 4
    reference = cv2.resize(img, (640, 480), interpolation=cv2.INTER_LINEAR)
    # The kept box (square, 0.9) at 4x its coordinates, in the square's colour; the low-score one absent.
    x1, y1, x2, y2 = 160, 200, 400, 440
    colour = np.array(_PALETTE[1])
    assert np.all(drawn[y2, x1 + 10:x2 - 10] == colour)
    assert np.all(drawn[y1 + 10:y2 - 10, x1] == colour)
    assert np.array_equal(drawn[30:70, 30:70], reference[30:70, 30:70])  # where the 0.1 box would be
    # Everywhere away from the box and its tag the picture is the enlarged input.
    mask = np.ones(drawn.shape[:2], bool)
    mask[y1 - 40:y2 + 5, x1 - 5:x2 + 5] = False
    assert np.array_equal(drawn[mask], reference[mask])
    # The tag above the box is a filled band of the box colour, tall enough to read (>= 12 px).
    tag_rows = [y for y in range(y1 - 40, y1) if np.sum(np.all(drawn[y, x1:x1 + 40] == colour, axis=1)) > 20]
    assert len(tag_rows) >= 12


def test_large_image_keeps_its_size_and_min_size_zero_never_scales():
    big = cv2.resize(_image(), (800, 600))
    assert draw_detections(big, _sample(), CLASSES).shape == big.shape
    small = _image()
    drawn = draw_detections(small, _sample().pred_instances, CLASSES, score_thr=0.0, min_size=0)
    assert drawn.shape == small.shape
    assert np.all(drawn[110, 45:95] == np.array(_PALETTE[1]))
