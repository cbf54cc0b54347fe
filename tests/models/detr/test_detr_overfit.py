"""Learning check: a tiny plain DETR overfits 8 small images to AP50 > 0.9 (about 100 steps here), scored by
det's evaluate_coco (pycocotools) on its own predictions; AP50 is checked every 25 steps and the run stops
once it is reached."""
import numpy as np
import torch

from det.registry import MODELS
from tests.conftest import ap50, make_sample

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
        inputs.append(img.to(torch.uint8))
        samples.append(make_sample(boxes, labels, (SIZE, SIZE)))
    return inputs, samples


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
                history.append(ap50(samples, model(**data, mode='predict'), 3))
            if history[-1] > 0.9:
                break
    assert history[-1] > 0.9, f'AP50 every 25 steps: {np.round(history, 3).tolist()}'
