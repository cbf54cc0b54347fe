"""Small dataset folders as a user would bring them: 3 classes of filled shapes drawn with OpenCV,
written in COCO layout (``annotations/{train,val}.json`` + ``{train,val}/``) or VOC layout
(``Annotations/*.xml``, ``JPEGImages/``, ``ImageSets/Main/{trainval,test}.txt``)."""
import json
from pathlib import Path

import cv2
import numpy as np

CLASSES = ('disc', 'block', 'wedge')


def draw_image(rng: np.random.Generator, size: int) -> tuple:
    """A ``[size, size, 3]`` BGR image with 1-3 objects, and their ``(class index, xyxy box)``."""
    img = np.full((size, size, 3), rng.integers(0, 90), np.uint8)
    objects = []
    for _ in range(rng.integers(1, 4)):
        label = int(rng.integers(len(CLASSES)))
        side = int(rng.integers(size // 6, size // 3))
        x, y = (int(v) for v in rng.integers(0, size - side, 2))
        colour = [int(c) for c in rng.integers(150, 256, 3)]
        if label == 0:
            cv2.circle(img, (x + side // 2, y + side // 2), side // 2, colour, -1)
        elif label == 1:
            cv2.rectangle(img, (x, y), (x + side - 1, y + side - 1), colour, -1)
        else:
            corners = [[x, y + side - 1], [x + side - 1, y + side - 1], [x + side // 2, y]]
            cv2.fillPoly(img, [np.array(corners)], colour)
        objects.append((label, [x, y, x + side, y + side]))
    return img, objects


def write_coco_folder(root: Path, num_train: int = 8, num_val: int = 4, size: int = 96, seed: int = 0,
                      ann_names=('annotations/train.json', 'annotations/val.json'),
                      image_dirs=('train', 'val')) -> Path:
    """A COCO folder; category ids start at 10 (not 0 or 1) so that a label/id mix-up shows."""
    rng = np.random.default_rng(seed)
    for ann_name, image_dir, count in zip(ann_names, image_dirs, (num_train, num_val)):
        (root / image_dir).mkdir(parents=True, exist_ok=True)
        images, annotations = [], []
        for i in range(count):
            img, objects = draw_image(rng, size)
            cv2.imwrite(str(root / image_dir / f'{i:04d}.png'), img)
            images.append(dict(id=i + 1, file_name=f'{i:04d}.png', width=size, height=size))
            for label, (x1, y1, x2, y2) in objects:
                annotations.append(dict(id=len(annotations) + 1, image_id=i + 1, category_id=10 + label,
                                        bbox=[x1, y1, x2 - x1, y2 - y1], area=(x2 - x1) * (y2 - y1),
                                        iscrowd=0))
        categories = [dict(id=10 + i, name=n) for i, n in enumerate(CLASSES)]
        (root / ann_name).parent.mkdir(parents=True, exist_ok=True)
        (root / ann_name).write_text(json.dumps(dict(images=images, annotations=annotations,
                                                     categories=categories)))
    return root


def write_voc_folder(root: Path, num_train: int = 8, num_test: int = 4, size: int = 96,
                     seed: int = 0) -> Path:
    """A VOC folder with the splits trainval (training) and test (validation)."""
    rng = np.random.default_rng(seed)
    for sub in ('Annotations', 'JPEGImages', 'ImageSets/Main'):
        (root / sub).mkdir(parents=True, exist_ok=True)
    names = [f'img{i:03d}' for i in range(num_train + num_test)]
    for name in names:
        img, objects = draw_image(rng, size)
        cv2.imwrite(str(root / 'JPEGImages' / f'{name}.jpg'), img)
        objs = ''.join(f'<object><name>{CLASSES[label]}</name><difficult>0</difficult><bndbox>'
                       f'<xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>'
                       for label, (x1, y1, x2, y2) in objects)
        (root / 'Annotations' / f'{name}.xml').write_text(
            f'<annotation><filename>{name}.jpg</filename><size><width>{size}</width><height>{size}</height>'
            f'<depth>3</depth></size>{objs}</annotation>')
    (root / 'ImageSets/Main/trainval.txt').write_text('\n'.join(names[:num_train]) + '\n')
    (root / 'ImageSets/Main/test.txt').write_text('\n'.join(names[num_train:]) + '\n')
    return root
