"""tools/analysis/confusion_matrix.py on a hand-built case whose matrix is known by construction."""
import json

import cv2
import numpy as np
import pytest

from .tool_loader import assert_bad_inputs_named, load_tool

CATS = [{'id': 2, 'name': 'cat'}, {'id': 5, 'name': 'dog'}, {'id': 9, 'name': 'fox'}]  # rows/cols 0, 1, 2


def box(x, y, w=20.0, h=20.0):
    return [float(x), float(y), float(w), float(h)]


# (image, category, box, iscrowd) and (image, category, box, score), with what each adds to the matrix
GT = [(1, 2, box(0, 0), 0),                 # found by the cat below: [cat, cat]
      (1, 5, box(50, 0), 0),                # taken for a fox: [dog, fox]
      (1, 9, box(100, 0), 0),               # no detection: [fox, background]
      (2, 2, box(0, 0), 0),                 # found by a cat, a dog overlaps it more: [cat, cat]
      (2, 5, box(100, 100), 0),             # its dog overlaps 1/3 (10 * 20 / (800 - 200)): [dog, bg]
      (2, 9, box(200, 200, 60, 60), 1),     # crowd region: never matched nor missed
      (4, 5, box(30, 30), 0)]               # no detection: [dog, background]
DETS = [(1, 2, box(1, 1), 0.9),             # IoU 0.81 with the cat
        (1, 9, box(50, 0), 0.8),            # exactly on the dog
        (1, 2, box(150, 150), 0.9),         # nothing there: [background, cat]
        (1, 5, box(0, 0), 0.1),             # under the score threshold: not counted
        (2, 2, box(2, 2), 0.7),             # IoU 0.68 with the cat: same class is matched first
        (2, 5, box(0, 0), 0.95),            # IoU 1 with that cat, but it is taken: [background, dog]
        (2, 5, box(110, 100), 0.6),         # IoU 1/3 with its dog: [background, dog]
        (2, 9, box(210, 210), 0.9),         # inside the crowd region: ignored
        (3, 9, box(10, 10), 0.5)]           # image without ground truth: [background, fox]


def hand_case():
    anns = [{'id': k + 1, 'image_id': img, 'category_id': cat, 'bbox': b, 'area': b[2] * b[3], 'iscrowd': c}
            for k, (img, cat, b, c) in enumerate(GT)]
    dets = [{'image_id': img, 'category_id': cat, 'bbox': b, 'score': score} for img, cat, b, score in DETS]
    images = [{'id': i, 'width': 320, 'height': 320, 'file_name': f'{i}.png'} for i in (1, 2, 3, 4)]
    return {'images': images, 'annotations': anns, 'categories': CATS}, dets


# rows: ground truth cat, dog, fox, background; columns: detected cat, dog, fox, background
EXPECTED = np.array([[2, 0, 0, 0],
                     [0, 0, 1, 2],
                     [0, 0, 0, 1],
                     [1, 2, 1, 0]])


@pytest.mark.parametrize('options, change', [
    ([], {}),
    # the 0.1-score dog on image 1's cat box: that box is taken by the cat, so a false positive
    (['--score-thr', '0.05'], {(3, 1): +1}),
    # the dog at IoU 1/3 now matches its box
    (['--iou-thr', '0.3'], {(1, 1): +1, (1, 3): -1, (3, 1): -1}),
])
def test_matrix_known_by_construction(tmp_path, options, change):
    gt, dets = hand_case()
    (tmp_path / 'gt.json').write_text(json.dumps(gt))
    (tmp_path / 'dets.json').write_text(json.dumps(dets))
    out = tmp_path / 'cm.png'
    result = load_tool('confusion_matrix').main([str(tmp_path / 'gt.json'), str(tmp_path / 'dets.json'),
                                                '--out', str(out), *options])
    expected = EXPECTED.copy()
    for cell, delta in change.items():
        expected[cell] += delta
    np.testing.assert_array_equal(result['matrix'], expected)
    assert result['classes'] == ['cat', 'dog', 'fox']
    img = cv2.imread(str(out))
    assert img is not None and min(img.shape[:2]) >= 400
    drawn = [int(t.get_text()) for t in result['figure'].axes[0].texts]
    assert drawn == expected.ravel().tolist()  # row by row


def test_bad_input_is_named(tmp_path):
    gt, dets = hand_case()
    assert_bad_inputs_named('confusion_matrix', tmp_path, gt, [dict(dets[0], category_id=77)],
                            r'category id\(s\) not in the annotations')
