"""Learning check: a tiny plain DETR overfits 8 small images to AP50 > 0.9 (about 100 steps here), scored by
pycocotools on its own predictions; AP50 is checked every 25 steps and the run stops once it is reached."""
import contextlib
import io

import numpy as np
import torch
from mmengine.structures import InstanceData
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from det.registry import MODELS
from det.structures import DetDataSample

SIZE = 64
COLOURS = torch.tensor([[230.0, 40.0, 40.0], [40.0, 200.0, 40.0], [40.0, 40.0, 230.0]])  # class = colour


def _images(num=8, seed=0):
    """``num`` uint8 [3, 64, 64] images of 1-2 solid rectangles (12-36 px) on noise, with samples."""
    gen = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(num):
        img = 100 + 30 * torch.rand(3, SIZE, SIZE, generator=gen)
        boxes, labels = [], []
        for _ in range(int(torch.randint(1, 3, (1,), generator=gen))):
            w, h = (12 + 24 * torch.rand(2, generator=gen)).tolist()
            x, y = (torch.rand(2, generator=gen) * torch.tensor([SIZE - w, SIZE - h])).tolist()
            label = int(torch.randint(0, 3, (1,), generator=gen))
            x0, y0, x1, y1 = round(x), round(y), round(x + w), round(y + h)
            img[:, y0:y1, x0:x1] = COLOURS[label][:, None, None]
            boxes.append([x0, y0, x1, y1])
            labels.append(label)
        sample = DetDataSample(metainfo=dict(img_shape=(SIZE, SIZE), ori_shape=(SIZE, SIZE),
                                             scale_factor=(1.0, 1.0)))
        sample.gt_instances = InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float32),
                                           labels=torch.tensor(labels))
        inputs.append(img.to(torch.uint8))
        samples.append(sample)
    return inputs, samples


def _ap50(samples, predictions) -> float:
    images, annotations, results = [], [], []
    for i, (sample, pred) in enumerate(zip(samples, predictions)):
        images.append(dict(id=i, width=SIZE, height=SIZE))
        for box, label in zip(sample.gt_instances.bboxes.tolist(), sample.gt_instances.labels.tolist()):
            w, h = box[2] - box[0], box[3] - box[1]
            annotations.append(dict(id=len(annotations) + 1, image_id=i, category_id=label, iscrowd=0,
                                    bbox=[box[0], box[1], w, h], area=w * h))
        inst = pred.pred_instances
        for box, score, label in zip(inst.bboxes.tolist(), inst.scores.tolist(), inst.labels.tolist()):
            results.append(dict(image_id=i, category_id=label, score=score,
                                bbox=[box[0], box[1], box[2] - box[0], box[3] - box[1]]))
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = dict(images=images, annotations=annotations,
                          categories=[dict(id=c) for c in range(3)])
        gt.createIndex()
        evaluator = COCOeval(gt, gt.loadRes(results), 'bbox')
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return float(evaluator.stats[1])


def test_tiny_detr_overfits_8_images():
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='DETR', backbone=dict(type='MobileNetV2', widen_factor=0.35, out_indices=(3,)),
        num_queries=10, embed_dims=64, query_type='embedding', denoising=None,
        encoder=dict(num_layers=1, num_heads=4, ffn_dims=128, dropout=0.0),
        decoder=dict(num_layers=2, num_heads=4, ffn_dims=128, dropout=0.0),
        head=dict(type='DETRHead', num_classes=3)))
    model.init_weights()
    inputs, samples = _images()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    data = model.data_preprocessor(dict(inputs=inputs, data_samples=samples), training=True)
    history = []
    for step in range(1, 401):
        model.train()
        losses = model(**data, mode='loss')
        optimizer.zero_grad()
        sum(losses.values()).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % 25 == 0:
            model.eval()
            with torch.no_grad():
                history.append(_ap50(samples, model(**data, mode='predict')))
            if history[-1] > 0.9:
                break
    assert history[-1] > 0.9, f'AP50 every 25 steps: {np.round(history, 3).tolist()}'
