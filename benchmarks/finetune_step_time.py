"""Relative training-step time of fine-tuning variants (input size, backbone ``frozen_stages``) of one config.

    python benchmarks/finetune_step_time.py [CONFIG] [--variants 416:0 416:1 384:0] [--rounds 6] [--threads 1]

Each variant ``SIZE:FROZEN`` builds the config's model with ``backbone.frozen_stages=FROZEN`` and the
config's training pipeline letterboxing to SIZE x SIZE, and collates one batch of the training set.
Then forward + loss + backward (bf16 autocast on CPU, channels-last) runs round-robin over the variants,
so that the load of a shared machine hits every variant alike; the first round is a warm-up. Prints each
variant's median step time and its ratio to the first variant: on a machine shared with other jobs the
absolute times swing, the ratios hold. The weights are not loaded (timing only).
"""
import argparse
import statistics
import time

import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate

from det.engine.config import load_config
from det.registry import DATASETS, MODELS

DEFAULT_CONFIG = 'configs/centernet_efficientnetlite0_fpn_416_bccd.py'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', nargs='?', default=DEFAULT_CONFIG)
    parser.add_argument('--variants', nargs='+', default=['416:0', '416:1', '416:2', '384:0', '352:0'],
                        help='SIZE:FROZEN_STAGES pairs; the first is the reference')
    parser.add_argument('--rounds', type=int, default=6, help='rounds over all variants, the first a warm-up')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--data-root', help="the training set's folder (default: the config's)")
    return parser.parse_args(argv)


def parse_variant(text: str) -> tuple:
    """``'416:1'`` -> ``(416, 1)``."""
    try:
        size, frozen = (int(part) for part in text.split(':'))
    except ValueError:
        raise SystemExit(f'error: --variants: {text!r} is not SIZE:FROZEN_STAGES (e.g. 416:1)') from None
    return size, frozen


def build_variant(base: Config, size: int, frozen: int, batch_size: int, data_root=None) -> tuple:
    """The model (train mode, channels-last) and one preprocessed training batch for one variant."""
    cfg = base.copy()
    cfg.model.backbone.frozen_stages = frozen
    cfg.model.backbone.init_cfg = None
    dataset_cfg = cfg.train_dataloader.dataset.copy()
    if data_root is not None:
        dataset_cfg.data_root = data_root
    for transform in dataset_cfg.pipeline:
        if transform['type'] == 'Resize':
            transform['scale'] = (size, size)
        elif transform['type'] == 'Pad':
            transform['size'] = (size, size)
    dataset = DATASETS.build(dataset_cfg)
    batch = pseudo_collate([dataset[i] for i in range(batch_size)])
    model = MODELS.build(cfg.model)
    model.init_weights()
    model = model.train().to(memory_format=torch.channels_last)
    return model, model.data_preprocessor(batch, True)


def step_time(model, data) -> float:
    """Seconds of one forward + loss + backward."""
    start = time.perf_counter()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = model(**data, mode='loss')
    sum(value for key, value in losses.items() if key.startswith('loss')).backward()
    model.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    base = load_config(args.config)
    variants = {text: build_variant(base, *parse_variant(text), args.batch_size, args.data_root)
                for text in args.variants}
    times = {text: [] for text in variants}
    for round_index in range(args.rounds):
        for text, (model, data) in variants.items():
            seconds = step_time(model, data)
            if round_index > 0:
                times[text].append(seconds)
    reference = statistics.median(times[args.variants[0]])
    for text, seconds in times.items():
        median = statistics.median(seconds)
        print(f'{text}: median {median:.2f} s per step, {median / reference:.3f} x {args.variants[0]}')


if __name__ == '__main__':
    main()
