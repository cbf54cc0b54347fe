"""Where a training step's time goes, inside mmengine's Runner (the config's own loader, hooks and
logging) and outside it (the same step on a batch already in memory).

    python benchmarks/profile_train_step.py [CONFIG ...] [--steps 20] [--fast] [--threads 2]

For each config (default: the YOLO v1 and CenterNet shapes configs) the Runner trains ``--steps``
iterations on the shapes data (generated under ``--work-dir``) with validation and checkpoints off;
timers wrap the parts of ``model.train_step``: data loading (waiting for the next batch), the data
preprocessor, forward (backbone, neck, heads; DETR's transformer; the RPN's proposals), loss
(``loss_by_feat`` and RoI sampling, target generation included, and of it the target generator /
assigner / matcher alone), backward, optimizer step (with gradient
clipping and zero_grad), and the rest (hooks, logging, parsing the losses). Then the same step runs
outside the Runner on one collated batch. Means over the steps after a warm-up, in ms. ``--fast``
adds the speed switches (bf16 autocast wrapper + channels-last).
"""
import argparse
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from functools import wraps
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIGS = ('configs/yolov1_mobilenetv2_fpn_320_shapes.py',
                   'configs/centernet_mobilenetv2_fpn_320_shapes.py')
PARTS = ('data loading', 'preprocessor', 'forward', 'loss (all)', '  of it: targets', 'backward',
         'optimizer', 'rest (hooks, logging, loss parsing)')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('configs', nargs='*', default=list(DEFAULT_CONFIGS))
    parser.add_argument('--steps', type=int, default=20)
    parser.add_argument('--warmup', type=int, default=4)
    parser.add_argument('--fast', action='store_true', help='bf16 autocast wrapper + channels-last')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--num-workers', type=int, default=None, help="override the loader's num_workers")
    parser.add_argument('--work-dir', help='shapes data and runner output (default: a temporary folder)')
    return parser.parse_args(argv)


class Timers:
    """Accumulates wall time per part within the current step."""

    def __init__(self):
        self.step = defaultdict(float)
        self.steps = []

    def wrap(self, obj, name: str, part: str):
        fn = getattr(obj, name)

        @wraps(fn)
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.step[part] += time.perf_counter() - start
        setattr(obj, name, timed)

    def wrap_callable(self, owner, name: str, part: str):
        """Replace ``owner.<name>`` (a called object that is not an nn.Module, e.g. a target
        generator) by a proxy that times its calls and forwards everything else."""
        target, timers = getattr(owner, name), self

        class Timed:
            def __call__(self, *args, **kwargs):
                start = time.perf_counter()
                try:
                    return target(*args, **kwargs)
                finally:
                    timers.step[part] += time.perf_counter() - start

            def __getattr__(self, attr):
                return getattr(target, attr)

        setattr(owner, name, Timed())

    def close_step(self, total: float):
        self.step['total'] = total
        self.steps.append(dict(self.step))
        self.step = defaultdict(float)

    def means(self, warmup: int) -> dict:
        """ms per step of each part, averaged over the steps after ``warmup`` (means add up)."""
        steps = self.steps[warmup:]
        return {k: 1000 * statistics.mean(s.get(k, 0.0) for s in steps) for k in steps[0]}


# The modules a detector runs after ``extract_feat``: dense and DETR heads (``head``), two-stage heads,
# DETR's transformer and auxiliary head. Whichever a model has are timed.
FORWARD_MODULES = ('head', 'rpn_head', 'sam', 'roi_head', 'encoder', 'decoder', 'aux_head')


def instrument(model, optim_wrapper, timers: Timers):
    """Wrap the parts of one step. Calls nested inside a timed one are only timed as "of it" rows."""
    timers.wrap(model.data_preprocessor, 'forward', 'preprocessor')
    timers.wrap(model, 'extract_feat', 'forward')
    for name in FORWARD_MODULES:
        module = getattr(model, name, None)
        if module is None:
            continue
        timers.wrap(module, 'forward', 'forward')
        if hasattr(module, 'loss_by_feat'):
            timers.wrap(module, 'loss_by_feat', 'loss (all)')
        if hasattr(module, 'sample'):                       # RoI sampling: assignment of the proposals
            timers.wrap(module, 'sample', 'loss (all)')
        if hasattr(module, 'assigner'):
            timers.wrap(module.assigner, 'assign', '  of it: targets')
        for callable_name in ('target_generator', 'matcher'):
            if hasattr(module, callable_name):
                timers.wrap_callable(module, callable_name, '  of it: targets')
    if hasattr(model, 'rpn_head'):                          # proposals of the RPN, part of the forward
        timers.wrap(model.rpn_head, 'predict_by_feat', 'forward')
    timers.wrap(optim_wrapper, 'backward', 'backward')
    timers.wrap(optim_wrapper, 'step', 'optimizer')
    timers.wrap(optim_wrapper, 'zero_grad', 'optimizer')


def profile(config: str, args, work: Path) -> dict:
    import torch
    from mmengine.hooks import Hook
    from mmengine.runner import Runner

    import det.engine  # noqa: F401  (registers det's hooks and optim wrappers)
    from det.engine import use_safe_checkpoints
    from det.engine.config import leaf_dataset_cfgs, load_config
    from det.engine.machine import apply_machine_defaults

    torch.set_num_threads(args.threads)
    name = Path(config).stem
    cfg = load_config(config, work_dir=str(work / name))
    use_safe_checkpoints(cfg)  # its hooks (the non-finite loss stop) run in every step, as in tools/train.py
    num_train = 8 * (args.steps + 2)
    for leaf in leaf_dataset_cfgs(cfg.train_dataloader.dataset):
        leaf.update(data_root=str(work / f'shapes_{num_train}'), num_train=num_train, num_val=8)
    if args.num_workers is not None:
        cfg.train_dataloader.num_workers = args.num_workers
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=args.steps, val_interval=10 ** 9)
    cfg.param_scheduler = None
    for split in ('val', 'test'):
        cfg[f'{split}_dataloader'] = cfg[f'{split}_cfg'] = cfg[f'{split}_evaluator'] = None
    cfg.default_hooks.checkpoint = None
    apply_machine_defaults(cfg)  # as tools/train.py does (--num-workers, if given, is kept)
    if args.fast:
        cfg.optim_wrapper.type = 'AutocastOptimWrapper'
        cfg.model.data_preprocessor.channels_last = True

    inside = Timers()

    class StepClock(Hook):
        priority = 'VERY_HIGH'

        def __init__(self):
            self.last_end = None

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            self.start = time.perf_counter()
            if self.last_end is not None:
                inside.step['data loading'] = self.start - self.last_end

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            self.last_end = time.perf_counter()
            # the data loading before this step counts towards it, as the step waited for it
            inside.close_step(self.last_end - self.start + inside.step.get('data loading', 0.0))

    class Instrument(Hook):
        """Wraps the timers around the model and optim wrapper once the Runner has built them."""

        def before_train(self, runner):
            instrument(runner.model, runner.optim_wrapper, inside)

    runner = Runner.from_cfg(cfg)
    runner.register_hook(StepClock())
    runner.register_hook(Instrument())
    runner.train()

    # The same step outside the Runner, on one batch held in memory.
    outside = Timers()
    model, optim_wrapper = runner.model, runner.optim_wrapper
    batch = next(iter(runner.train_dataloader))
    instrument(model, optim_wrapper, outside)
    for _ in range(args.steps):
        start = time.perf_counter()
        model.train_step(batch, optim_wrapper)
        outside.close_step(time.perf_counter() - start)
    return dict(inside=inside.means(args.warmup), outside=outside.means(args.warmup),
                batch=cfg.train_dataloader.batch_size, workers=cfg.train_dataloader.num_workers,
                precision='bf16 autocast' if cfg.optim_wrapper.type == 'AutocastOptimWrapper' else 'fp32',
                layout='channels-last' if cfg.model.data_preprocessor.get('channels_last') else 'NCHW')


def main(argv=None):
    args = parse_args(argv)
    work = Path(args.work_dir or tempfile.mkdtemp(prefix='det_profile_'))
    sys.path.insert(0, str(REPO))
    for config in args.configs:
        res = profile(config, args, work)
        inside, outside = res['inside'], res['outside']
        for r in (inside, outside):
            known = sum(v for k, v in r.items() if k in PARTS and not k.startswith(' ') and k != PARTS[-1])
            r[PARTS[-1]] = r['total'] - known
        print(f"\n{Path(config).name} ({res['precision']}, {res['layout']}), batch "
              f"{res['batch']}, num_workers {res['workers']}, {args.threads} threads; mean ms per step")
        print('| part | inside the Runner | share | outside (batch in memory) | share |')
        print('|---|---:|---:|---:|---:|')
        for part in PARTS + ('total',):
            a, b = inside.get(part, 0.0), outside.get(part, 0.0)
            print(f"| {part} | {a:.0f} | {100 * a / inside['total']:.0f}% | {b:.0f} | "
                  f"{100 * b / outside['total']:.0f}% |")


if __name__ == '__main__':
    main()
