"""Inference time of test-time augmentation against one view, measured in the same run.

    python benchmarks/tta_cost.py CONFIG [CKPT] [--images 32] [--batch 8]

Times :func:`det.inference.multi_view_predict` (views made from the config's test pipeline, predicted
in batches, mapped back and merged) on the first ``--images`` val images for one view and for the
pyramids ``tools/test.py --tta`` is documented with; prints ms per image and the ratio to one view.
"""
import argparse
import platform
import time

import torch

from det.apis import init_detector
from det.datasets.transforms import LoadImageFromFile
from det.engine.config import load_config
from det.inference import multi_view_predict, split_test_pipeline
from det.registry import DATASETS

SETTINGS = (('one view (scale 1)', dict(scales=(1.0,))),
            ('scales 1, 2 + WBF', dict(scales=(1.0, 2.0), merge_cfg=dict(method='wbf', iou_thr=0.55))),
            ('scales 1, 2, flip + WBF', dict(scales=(1.0, 2.0), flip=True,
                                             merge_cfg=dict(method='wbf', iou_thr=0.55))),
            ('scales 0.5, 1, 2, flip + WBF', dict(scales=(0.5, 1.0, 2.0), flip=True,
                                                  merge_cfg=dict(method='wbf', iou_thr=0.55))))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('checkpoint', nargs='?', help='trained weights (timing does not need them)')
    parser.add_argument('--images', type=int, default=32)
    parser.add_argument('--batch', type=int, default=8)
    args = parser.parse_args(argv)
    cfg = load_config(args.config)
    model = init_detector(cfg, args.checkpoint)
    dataset = DATASETS.build(cfg.val_dataloader.dataset)
    loader = LoadImageFromFile(on_error='raise')
    images = [loader(dict(img_path=dataset.get_data_info(i)['img_path']))['img']
              for i in range(min(args.images, len(dataset)))]
    view_pipeline = split_test_pipeline(cfg)[1]
    print(f'# python benchmarks/tta_cost.py {args.config}; {len(images)} val images, batch {args.batch}, '
          f'{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, '
          f'torch {torch.__version__}')
    print('| views | ms / image | x one view |')
    print('|---|---|---|')
    base = None
    with torch.no_grad():
        multi_view_predict(model, images[:args.batch], view_pipeline, batch_size=args.batch)  # warm-up
        for name, kwargs in SETTINGS:
            start = time.perf_counter()
            multi_view_predict(model, images, view_pipeline, batch_size=args.batch, **kwargs)
            ms = 1000 * (time.perf_counter() - start) / len(images)
            base = base or ms
            print(f'| {name} | {ms:.1f} | {ms / base:.2f} |')


if __name__ == '__main__':
    main()
