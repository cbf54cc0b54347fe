"""Time to load one photograph through a config's training pipeline, with and without ``decode_size``.

    python benchmarks/decode_size.py [CONFIG] [--sizes 4032x3024 1920x1080 640x480] [--repeats 10]

For each size a synthetic photograph (smooth gradients plus texture, JPEG quality 90, as a camera
writes) is written to a temporary folder and run through the config's training pipeline (loading,
augmentation, letterbox, packing) ``--repeats`` times, once as the config has it and once with
``LoadImageFromFile``'s ``decode_size`` removed (every file decoded at full size), interleaved, one
thread. Prints the median milliseconds per image and their ratio: the time a data loader spends on
each training image before the model sees it.
"""
import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from det.datasets.transforms import build_pipeline
from det.engine.config import load_config

DEFAULT_CONFIG = 'configs/centernet_efficientnetlite0_fpn_416_own_data.py'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', nargs='?', default=DEFAULT_CONFIG)
    parser.add_argument('--sizes', nargs='+', default=['4032x3024', '1920x1080', '640x480'], help='WxH')
    parser.add_argument('--repeats', type=int, default=10)
    return parser.parse_args(argv)


def synthetic_photo(width: int, height: int, seed: int = 0) -> np.ndarray:
    """``[H, W, 3]`` uint8 BGR: gradients and blurred noise, compressing like a photograph."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([xs * 255 / width, ys * 255 / height, (xs + ys) * 127 / (width + height)], axis=2)
    noise = cv2.GaussianBlur(rng.normal(0, 40, (height, width, 3)).astype(np.float32), (0, 0), 3)
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def without_decode_size(pipeline: list) -> list:
    pipeline = copy.deepcopy(pipeline)
    for transform in pipeline:
        transform.pop('decode_size', None)
    return pipeline


def main(argv=None):
    args = parse_args(argv)
    cv2.setNumThreads(1)
    cfg = load_config(args.config)
    configured = [dict(t) for t in cfg.train_dataloader.dataset.pipeline]
    pipelines = {'decode_size': build_pipeline(configured),
                 'full decode': build_pipeline(without_decode_size(configured))}
    print(f'{args.config}: training pipeline, ms per image (median of {args.repeats}, one thread)')
    print('| image | full decode | with decode_size | ratio |')
    print('|---|---|---|---|')
    with tempfile.TemporaryDirectory() as folder:
        for size in args.sizes:
            width, height = (int(v) for v in size.split('x'))
            path = str(Path(folder) / f'{size}.jpg')
            cv2.imwrite(path, synthetic_photo(width, height), [cv2.IMWRITE_JPEG_QUALITY, 90])
            box = [width * 0.2, height * 0.2, width * 0.7, height * 0.8]
            instance = dict(bbox=box, bbox_label=0, ignore_flag=False)
            record = dict(img_path=path, img_id=0, instances=[instance])
            times = {name: [] for name in pipelines}
            for _ in range(args.repeats + 1):  # the first round warms up
                for name, pipeline in pipelines.items():
                    start = time.perf_counter()
                    results = copy.deepcopy(record)
                    for transform in pipeline:
                        results = transform(results)
                    times[name].append(time.perf_counter() - start)
            full, reduced = (statistics.median(times[n][1:]) * 1000 for n in ('full decode', 'decode_size'))
            print(f'| {width}x{height} | {full:.1f} | {reduced:.1f} | {reduced / full:.2f} |')


if __name__ == '__main__':
    main()
