"""Training throughput and batch-1 inference latency of det's Faster R-CNN, det's ThunderNet-SNet146 and
torchvision's ``fasterrcnn_mobilenet_v3_large_320_fpn``, in one run on the same images.

    python benchmarks/two_stage_speed.py [--batch 4] [--train-steps 6] [--infer-runs 20] [--threads N]

- Images: ``--num-images`` 320x320 normalised tensors (grey noise with filled rectangles) and their
  boxes, made once from a fixed seed and fed to every model in the same order.
- Models are randomly initialised (nothing is downloaded). torchvision's model runs part by part
  (``backbone`` -> ``rpn`` -> ``roi_heads`` on an ``ImageList``), which is its ``forward`` without
  ``GeneralizedRCNNTransform``: det normalises in its data preprocessor, outside the model, so neither
  side's timing includes normalisation or resizing.
- Training step: losses, backward and an SGD step, with ``--batch`` images; img/s = batch / median
  step time. Inference: eval mode, ``torch.no_grad``, one image; latency = median over ``--infer-runs``.
- The models alternate step by step (after one warm-up each), so load from other jobs hits them alike.
  Wall time and process CPU time (``time.process_time``, steadier on a shared machine) are reported.

Targets (issue 9), checked on CPU time: det's Faster R-CNN at most 10% slower than torchvision's both
ways (img/s >= 0.9x, latency <= 1.1x); ThunderNet-SNet146 infers in at most half of torchvision's
latency and trains at least twice its img/s.
"""
import argparse
import logging
import statistics
import time
from pathlib import Path

import torch
from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData
from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_320_fpn
from torchvision.models.detection.image_list import ImageList

import det.models  # noqa: F401  (registers the modules)
from det.engine.config import load_config
from det.registry import MODELS
from det.structures import DetDataSample

REPO = Path(__file__).resolve().parents[1]
SIZE = 320
NUM_CLASSES = 5
CONFIGS = {'det Faster R-CNN': 'configs/faster_rcnn_mobilenetv3_fpn_320_shapes.py',
           'det ThunderNet-SNet146': 'configs/thundernet_snet146_320_shapes.py'}
TORCHVISION = 'torchvision fasterrcnn_mobilenet_v3_large_320_fpn'


def make_images(num: int, seed: int = 0) -> list:
    """``[(image [3, H, W] normalised, boxes [N, 4] xyxy pixels, labels [N] in 0..C-1)]``."""
    gen = torch.Generator().manual_seed(seed)
    data = []
    for _ in range(num):
        img = 0.5 * torch.randn(3, SIZE, SIZE, generator=gen)
        n = int(torch.randint(2, 7, (1,), generator=gen))
        xy = torch.rand(n, 2, generator=gen) * SIZE * 0.7
        wh = 16 + torch.rand(n, 2, generator=gen) * SIZE * 0.3
        boxes = torch.cat([xy, (xy + wh).clamp(max=SIZE)], 1).round()
        labels = torch.randint(0, NUM_CLASSES, (n,), generator=gen)
        for (x1, y1, x2, y2), label in zip(boxes.int().tolist(), labels.tolist()):
            img[:, y1:y2, x1:x2] = (torch.arange(3) == label % 3).float()[:, None, None] * 2 - 1
        data.append((img, boxes, labels))
    return data


class Runner:
    """A training step (SGD) and an inference call on a list of ``(image, boxes, labels)``; subclasses
    give the model's ``losses`` and ``predict`` on a batch."""

    def train_step(self, batch):
        self.model.train()
        losses = self.losses(batch)
        self.optim.zero_grad()
        sum(losses.values()).backward()
        self.optim.step()

    @torch.no_grad()
    def infer(self, batch):
        self.model.eval()
        return self.predict(batch)


class DetRunner(Runner):
    """One of det's configs."""

    def __init__(self, config: str):
        cfg = load_config(REPO / config)
        with DefaultScope.overwrite_default_scope('det'):
            self.model = MODELS.build(cfg.model)
        logger = MMLogger.get_current_instance()
        level, logger.level = logger.level, logging.WARNING  # init_weights logs every tensor
        try:
            self.model.init_weights()
        finally:
            logger.setLevel(level)
        self.optim = torch.optim.SGD(self.model.parameters(), lr=1e-3, momentum=0.9)

    @staticmethod
    def _samples(batch):
        samples = []
        for _, boxes, labels in batch:
            s = DetDataSample(metainfo=dict(img_shape=(SIZE, SIZE), ori_shape=(SIZE, SIZE),
                                            scale_factor=(1.0, 1.0), batch_input_shape=(SIZE, SIZE)))
            s.gt_instances = InstanceData(bboxes=boxes, labels=labels)
            samples.append(s)
        return samples

    def losses(self, batch):
        return self.model.loss(torch.stack([b[0] for b in batch]), self._samples(batch))

    def predict(self, batch):
        return self.model.predict_in_input_pixels(torch.stack([b[0] for b in batch]), self._samples(batch))


class TorchvisionRunner(Runner):
    """torchvision's model, part by part (its forward without the in-model transform)."""

    def __init__(self):
        self.model = fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None,
                                                           num_classes=NUM_CLASSES + 1)
        self.optim = torch.optim.SGD(self.model.parameters(), lr=1e-3, momentum=0.9)

    def _run(self, batch, targets=None):
        images = ImageList(torch.stack([b[0] for b in batch]), [(SIZE, SIZE)] * len(batch))
        feats = self.model.backbone(images.tensors)
        proposals, rpn_losses = self.model.rpn(images, feats, targets)
        detections, roi_losses = self.model.roi_heads(feats, proposals, images.image_sizes, targets)
        return detections, {**rpn_losses, **roi_losses}

    def losses(self, batch):
        return self._run(batch, [dict(boxes=b, labels=lab + 1) for _, b, lab in batch])[1]

    def predict(self, batch):
        return self._run(batch)[0]


def timed(fn, *args) -> tuple:
    wall, cpu = time.perf_counter(), time.process_time()
    fn(*args)
    return time.perf_counter() - wall, time.process_time() - cpu


def measure(runners: dict, batches: list, method: str) -> dict:
    """Median wall and CPU seconds per call of ``runner.<method>(batch)``, the runners alternating."""
    for runner in runners.values():  # warm-up
        getattr(runner, method)(batches[0])
    times = {name: [] for name in runners}
    for batch in batches:
        for name, runner in runners.items():
            times[name].append(timed(getattr(runner, method), batch))
    return {name: (statistics.median(w for w, _ in t), statistics.median(c for _, c in t))
            for name, t in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--batch', type=int, default=4, help='training batch size')
    parser.add_argument('--train-steps', type=int, default=6)
    parser.add_argument('--infer-runs', type=int, default=20)
    parser.add_argument('--threads', type=int, default=None, help='torch.set_num_threads')
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    runners = {name: DetRunner(cfg) for name, cfg in CONFIGS.items()}
    runners[TORCHVISION] = TorchvisionRunner()
    data = make_images(max(args.batch * args.train_steps, args.infer_runs))
    train = measure(runners, [data[i * args.batch:(i + 1) * args.batch] for i in range(args.train_steps)],
                    'train_step')
    infer = measure(runners, [[data[i]] for i in range(args.infer_runs)], 'infer')

    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, {SIZE}x{SIZE}, training batch '
          f'{args.batch} x {args.train_steps} steps, inference batch 1 x {args.infer_runs} runs')
    print(f'{"model":<52}{"train img/s":>12}{"(CPU time)":>12}{"latency ms":>12}{"(CPU ms)":>10}')
    for name in runners:
        (tw, tc), (iw, ic) = train[name], infer[name]
        print(f'{name:<52}{args.batch / tw:>12.2f}{args.batch / tc:>12.2f}{1e3 * iw:>12.1f}{1e3 * ic:>10.1f}')
    tv_train, tv_infer = train[TORCHVISION], infer[TORCHVISION]
    print('\nratios to torchvision (wall / CPU time):')
    for name in CONFIGS:
        speed = [tv_train[k] / train[name][k] for k in (0, 1)]
        latency = [infer[name][k] / tv_infer[k] for k in (0, 1)]
        print(f'{name:<52} train speed x{speed[0]:.2f} / x{speed[1]:.2f}, '
              f'latency x{latency[0]:.2f} / x{latency[1]:.2f}')
    fr, tn = 'det Faster R-CNN', 'det ThunderNet-SNet146'
    checks = {
        'Faster R-CNN trains at >= 0.9x torchvision img/s': tv_train[1] / train[fr][1] >= 0.9,
        'Faster R-CNN latency <= 1.1x torchvision': infer[fr][1] <= 1.1 * tv_infer[1],
        'ThunderNet latency <= 0.5x torchvision': infer[tn][1] <= 0.5 * tv_infer[1],
        'ThunderNet training img/s >= 2x torchvision': tv_train[1] / train[tn][1] >= 2.0,
    }
    print('\ntargets (on CPU time):')
    for text, ok in checks.items():
        print(f'  [{"met" if ok else "MISSED"}] {text}')


if __name__ == '__main__':
    main()
