"""tools/train.py trains and evaluates on a YOLO-format folder (Ultralytics layout, data.yaml) built from
generated shape images of three classes."""
import re

import cv2
import numpy as np

from det.datasets.shapes import render_image, sample_layout

from .conftest import experiment_config, run_tool

CLASSES = ('circle', 'square', 'triangle')  # the first three of the shapes generator's classes

def write_yolo_shapes(root, counts=(('train', 8), ('val', 4)), size=96) -> dict:
    """A YOLO folder of generated images holding circles, squares and triangles only; returns the number
    of boxes written per split."""
    rng = np.random.default_rng(0)
    written = {}
    for split, count in counts:
        (root / 'images' / split).mkdir(parents=True)
        (root / 'labels' / split).mkdir(parents=True)
        written[split] = 0
        for index in range(count):
            objects = [o for o in sample_layout(rng, size) if o[0] < len(CLASSES)]
            cv2.imwrite(str(root / 'images' / split / f'{index:03d}.jpg'), render_image(rng, objects, size))
            lines = []
            for label, _, (x1, y1, x2, y2) in objects:
                lines.append(f'{label} {(x1 + x2) / 2 / size:.6f} {(y1 + y2) / 2 / size:.6f} '
                             f'{(x2 - x1) / size:.6f} {(y2 - y1) / size:.6f}')
            (root / 'labels' / split / f'{index:03d}.txt').write_text('\n'.join(lines))
            written[split] += len(lines)
    (root / 'data.yaml').write_text('path: .\ntrain: images/train\nval: images/val\n'
                                    'names:\n' + ''.join(f'  {i}: {n}\n' for i, n in enumerate(CLASSES)))
    return written


def test_train_and_evaluate_on_a_yolo_folder(tmp_path):
    written = write_yolo_shapes(tmp_path / 'data')
    config = tmp_path / 'yolo_data.py'
    data_yaml = str(tmp_path / 'data' / 'data.yaml')
    config.write_text(experiment_config(f"dict(type='YOLODataset', data_yaml={data_yaml!r})", 3, size=96))
    proc = run_tool('train', config, '--work-dir', tmp_path / 'wd')
    log = proc.stdout + proc.stderr
    assert (tmp_path / 'wd' / 'epoch_1.pth').exists()
    table = log[log.index('Data check'):]
    for split, count in (('train', 8), ('val', 4)):
        assert re.search(rf'{split} +images / boxes +{count} / {written[split]}\b', table), split
    assert re.search(r'coco/AP: [\d.]+', log)
    assert "Per-class AP" in log and all(name in log for name in CLASSES)
