"""Train a detector from a config: ``python tools/train.py CONFIG [--work-dir D] [--data-root DIR]
[--epochs N] [--resume [CKPT]] [--amp] [--skip-data-check] [--cfg-options k=v ...]``.

Before the first step the datasets and the config are checked against each other
(``det.engine.config.check_before_run``): a table of data problems is logged, and a head's
``num_classes`` or an evaluator ``ann_file`` that does not fit the data stops the run at once.

Several processes (GPUs, or CPUs with gloo), one or more nodes: ``tools/dist_train.sh CONFIG N [args]``,
i.e. ``torchrun --nproc_per_node N tools/train.py CONFIG --launcher pytorch [args]``.
"""
import argparse
import logging
import sys

import torch
from mmengine.config import DictAction
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner

import det.engine  # noqa: F401  (registers the atomic checkpoint backend and det's hooks)
from det.engine import (
    check_checkpoint_matches,
    close_distributed,
    find_resume_checkpoint,
    keep_freed_memory,
    setup_distributed,
)
from det.engine.checkpoints import load_checkpoint_safely
from det.engine.config import DataCheckError, check_before_run, load_config, set_data_root, set_max_epochs
from det.models.utils import describe_trainable


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a detector.')
    parser.add_argument('config', help='config file, e.g. configs/yolo_v1.py')
    parser.add_argument('--work-dir', help='where logs and checkpoints go')
    parser.add_argument('--data-root', metavar='DIR',
                        help="data_root of the train, val and test datasets (a relative evaluator ann_file, "
                             "or one under the config's root, follows)")
    parser.add_argument('--epochs', type=int, metavar='N',
                        help="train N epochs; the config's epoch-based schedule (cosine end, T_max) is "
                             'stretched or shrunk to end at epoch N')
    parser.add_argument('--skip-data-check', action='store_true',
                        help='do not read every image before training (the config checks still run)')
    parser.add_argument('--resume', nargs='?', const='auto', default=None, metavar='CKPT',
                        help='resume from CKPT, or from the newest checkpoint in the work dir if no CKPT')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision: bf16 autocast on CPU, fp16 on CUDA')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override config entries, e.g. train_dataloader.batch_size=8')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    keep_freed_memory()  # each step reuses the last step's buffers (det/engine/malloc.py)
    cfg = load_config(args.config, args.cfg_options, args.work_dir)
    if args.data_root:
        set_data_root(cfg, args.data_root)
    if args.epochs is not None:
        try:
            changes = set_max_epochs(cfg, args.epochs)
        except ValueError as error:
            sys.exit(f'error: --epochs: {error}')
        print_log('--epochs: ' + ', '.join(changes), logger='current')
    cfg.launcher = args.launcher
    setup_distributed(cfg)  # gloo without CUDA; mmengine's own nccl set-up with it
    if args.amp:  # fp16 with dynamic loss scaling on CUDA; bf16 autocast (no scaling needed) on CPU
        if torch.cuda.is_available():
            cfg.optim_wrapper.update(type='AmpOptimWrapper', dtype='float16', loss_scale='dynamic')
        else:
            cfg.optim_wrapper.update(type='AutocastOptimWrapper', device_type='cpu', dtype='bfloat16')
    resume_from = None
    if args.resume == 'auto':
        resume_from = find_resume_checkpoint(cfg.work_dir)
        if resume_from is None:
            print_log(f'--resume: no checkpoint in {cfg.work_dir}, starting from scratch',
                      logger='current', level=logging.WARNING)
    elif args.resume is not None:
        resume_from = args.resume
    if resume_from is not None:
        cfg.resume = True
        cfg.load_from = resume_from
    runner = Runner.from_cfg(cfg)
    try:
        check_before_run(cfg, ('train', 'val'), check_images=not args.skip_data_check)
    except DataCheckError as error:
        sys.exit(f'error: {error}')
    if resume_from is not None:
        check_checkpoint_matches(runner.model, resume_from)
    elif cfg.get('load_from'):
        load_checkpoint_safely(cfg.load_from)  # a clear error now rather than mmengine's unpickling one
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    print_log(describe_trainable(model.train()), logger='current')
    runner.train()
    close_distributed()


if __name__ == '__main__':
    main()
