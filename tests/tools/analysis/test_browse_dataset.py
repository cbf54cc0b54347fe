"""tools/analysis/browse_dataset.py on the tiny experiment: one drawn box per ground-truth box of the
json, and a PNG of exactly the grid's size."""
import json
from collections import Counter

import cv2
import pytest
from matplotlib.patches import Rectangle

from .tool_loader import load_tool


def test_grid_of_five_training_samples(tiny_config, tmp_path):
    out = tmp_path / 'grid.png'
    result = load_tool('browse_dataset').main([str(tiny_config), '--n', '5', '--start', '2', '--seed', '0',
                                               '--cell', '2', '--out', str(out)])
    # 5 cells: ceil(sqrt(5)) = 3 columns, 2 rows of 2 inches at 100 dpi
    assert cv2.imread(str(out)).shape == (2 * 200, 3 * 200, 3)
    patches = [p for ax in result['figure'].axes for p in ax.patches if isinstance(p, Rectangle)]
    drawn = Counter(p.get_gid() for p in patches)
    packed = sum(len(s['data_samples'].gt_instances) for s in result['samples'])
    # The shapes json, read directly: boxes of the 3rd..7th images in id order (the flip keeps them all).
    with open(tiny_config.parent / 'shapes/annotations/train.json') as f:
        coco = json.load(f)
    img_ids = sorted(img['id'] for img in coco['images'])[2:7]
    in_json = sum(1 for a in coco['annotations'] if a['image_id'] in img_ids and not a.get('iscrowd', 0))
    assert drawn['gt'] == packed == in_json > 0
    assert [s['data_samples'].img_id for s in result['samples']] == img_ids


def test_bad_split_and_start(tiny_config):
    tool = load_tool('browse_dataset')
    with pytest.raises(SystemExit, match=r"no holdout_dataloader.dataset; splits it has: \['test', 'train'"):
        tool.main([str(tiny_config), '--split', 'holdout'])
    with pytest.raises(SystemExit, match='--start 100 is past the end of the train dataset'):
        tool.main([str(tiny_config), '--start', '100'])
