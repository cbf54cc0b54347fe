"""Sliced inference: the tile grid, the tiles and the box shifting against sahi's (the reference
implementation of slicing-aided inference), and sliced_predict localising small objects better than a
whole-image pass at the network's input size."""
import numpy as np
import pytest
import torch

from det.inference.slicing import slice_grid, sliced_predict
from det.inference.views import View, to_original, view_image

from .bright_regions import assert_boxes_close, bright_region_detector

sahi_slicing = pytest.importorskip('sahi.slicing',
                                   reason='sahi is the reference for slicing; pip install sahi')
sahi_prediction = pytest.importorskip('sahi.prediction')

GRIDS = [(1000, 1500, 512, 0.2), (512, 512, 512, 0.2), (300, 200, 512, 0.2), (1024, 700, 256, 0.0),
         (999, 1001, 320, 0.5), (640, 480, 100, 0.25), (257, 1000, 256, 0.1)]


@pytest.mark.parametrize('height, width, size, overlap', GRIDS)
def test_grid_matches_sahi(height, width, size, overlap):
    expected = sahi_slicing.get_slice_bboxes(height, width, slice_height=size, slice_width=size,
                                             overlap_height_ratio=overlap, overlap_width_ratio=overlap)
    assert slice_grid(height, width, size, overlap) == [tuple(b) for b in expected]


def test_tiles_and_shifted_boxes_match_sahi():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (700, 900, 3), dtype=np.uint8)
    tiles = slice_grid(700, 900, 256, 0.2)
    sliced = sahi_slicing.slice_image(image=img, slice_height=256, slice_width=256, overlap_height_ratio=0.2,
                                      overlap_width_ratio=0.2, auto_slice_resolution=False)
    assert [list(t[:2]) for t in tiles] == [list(p) for p in sliced.starting_pixels]
    for tile, sahi_tile in zip(tiles, sliced.images):
        np.testing.assert_array_equal(view_image(img, View(crop=tile)), sahi_tile)
        xy = rng.uniform(0, 200, (5, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(1, 56, (5, 2))], 1)
        ours = to_original(torch.tensor(boxes, dtype=torch.float64), View(crop=tile), tile[2] - tile[0])
        for box, shifted in zip(boxes, ours):
            prediction = sahi_prediction.ObjectPrediction(bbox=box.tolist(), category_id=0, score=0.5,
                                                          shift_amount=list(tile[:2]), full_shape=[700, 900])
            reference = prediction.get_shifted_object_prediction().bbox.to_xyxy()
            np.testing.assert_allclose(shifted.numpy(), reference, atol=1e-6)


# Squares of 16-20 px and one 60x40 box in a 700x500 image, none crossing a tile border of the
# 256 px / 0.2 grid (x starts 0, 205, 410, 444; y starts 0, 205, 244).
SMALL = np.array([[20, 30, 36, 46], [300, 100, 316, 116], [600, 300, 620, 316], [100, 400, 160, 440],
                  [470, 50, 490, 66]])


def test_sliced_predict_localises_small_objects():
    symmetric_model = bright_region_detector()
    img = np.zeros((500, 700, 3), np.uint8)
    for x1, y1, x2, y2 in SMALL:
        img[y1:y2, x1:x2] = 255
    pipeline = [dict(type='Resize', scale=(128, 128), keep_ratio=True), dict(type='Pad', size=(128, 128)),
                dict(type='PackDetInputs')]
    # Each 256 px tile is resized to 128: one input pixel is two original pixels. Duplicates from
    # overlapping tiles are merged by NMS.
    tiles_only = sliced_predict(symmetric_model, img, pipeline, slice_size=256, overlap_ratio=0.2,
                                full_image=False)
    assert_boxes_close(tiles_only.bboxes, SMALL, tol=2.01)
    # The whole image at 128 px (scale 0.18) localises them to an input pixel, 5.5 original pixels.
    whole = sliced_predict(symmetric_model, img, pipeline, slice_size=1000, full_image=False)
    errors = [np.abs(whole.bboxes.numpy() - box).max(axis=1).min() for box in SMALL]
    assert max(errors) > 2.01
    # Tiles and the whole image together: every object has its accurate box among the detections.
    both = sliced_predict(symmetric_model, img, pipeline, slice_size=256, overlap_ratio=0.2)
    for box in SMALL:
        assert np.abs(both.bboxes.numpy() - box).max(axis=1).min() <= 2.01
