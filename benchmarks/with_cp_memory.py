"""Peak memory and step time of one backbone training step (forward + backward of the mean of every
output map) with and without ``with_cp`` (per-block gradient checkpointing).

    python benchmarks/with_cp_memory.py [--arch b3] [--size 512] [--batch 4] [--steps 5] [--threads N]

Peak memory is what training steps add on top of the model and the input batch:
- CUDA: ``torch.cuda.max_memory_allocated()`` over the steps minus the allocation before the first;
- CPU: each setting runs in its own subprocess, and the peak is the process's peak resident set
  (``resource.getrusage().ru_maxrss``) minus its resident set before the first step.
Both count everything a step holds at once: activations saved for backward (what ``with_cp`` cuts),
parameter gradients and temporaries.
Step time is the median over ``--steps`` timed steps after one warm-up step, the two settings
alternating step by step: wall time, and the process's CPU time (``time.process_time``), which on
shared CPUs is the steadier measure (use ``--threads 1`` there so it is not spin-waiting either).
"""
import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch

from det.models.backbones.efficientnet import EfficientNet


def _rss_bytes() -> int:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def _setup(args, with_cp: bool):
    """A model in train mode and a step function (forward + backward of the mean of every output)."""
    torch.manual_seed(0)
    device = torch.device(args.device)
    model = EfficientNet(args.arch, out_indices=(0, 1, 2, 3, 4), with_cp=with_cp).to(device).train()
    images = torch.randn(args.batch, 3, args.size, args.size, device=device)

    def step():
        sum(out.mean() for out in model(images)).backward()
        if device.type == 'cuda':
            torch.cuda.synchronize()
    return step


def peak_memory_mb(args, with_cp: bool) -> float:
    """Peak memory of a warm-up step plus one more, over the memory held before them."""
    if args.device == 'cpu' and args.only is None:  # a fresh process per setting: ru_maxrss cannot be reset
        cmd = [sys.executable, __file__, '--only', 'on' if with_cp else 'off'] + [
            f'--{k}={v}' for k, v in vars(args).items() if k != 'only' and v is not None]
        return json.loads(subprocess.check_output(cmd, text=True).strip().splitlines()[-1])
    step = _setup(args, with_cp)
    if args.device == 'cpu':
        base = _rss_bytes()  # before any step, so memory freed by a step but kept by malloc is not in it
        step(), step()
        return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base) / 2**20  # ru_maxrss: KiB
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    step(), step()
    return (torch.cuda.max_memory_allocated() - base) / 2**20


def step_times(args) -> dict:
    """{with_cp: (median wall seconds, median process CPU seconds)} per step. The settings alternate
    step by step, so a machine whose load changes over time slows both alike; CPU time is what the
    process itself computed, which other jobs on shared cores do not inflate."""
    steps = {cp: _setup(args, cp) for cp in (False, True)}
    times = {cp: [] for cp in steps}
    for step in steps.values():
        step()  # warm-up: allocates .grad buffers and lets cuDNN / oneDNN pick kernels
    for _ in range(args.steps):
        for cp, step in steps.items():
            wall, cpu = time.perf_counter(), time.process_time()
            step()
            times[cp].append((time.perf_counter() - wall, time.process_time() - cpu))
    return {cp: tuple(statistics.median(column) for column in zip(*t)) for cp, t in times.items()}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--arch', default='b3')
    parser.add_argument('--size', type=int, default=512)
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--steps', type=int, default=5, help='timed steps per setting (after a warm-up)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--threads', type=int, help='CPU threads (torch.set_num_threads); default: torch\'s')
    parser.add_argument('--only', choices=('off', 'on'), help='internal: print one setting\'s peak memory')
    return parser.parse_args()


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.only:
        print(json.dumps(peak_memory_mb(args, args.only == 'on')))
        return
    memory = {cp: peak_memory_mb(args, cp) for cp in (False, True)}
    seconds = step_times(args)
    print(f'EfficientNet-{args.arch.upper()} training step, {args.batch}x3x{args.size}x{args.size}, '
          f'device {args.device} ({torch.get_num_threads()} threads), median of {args.steps} steps')
    print('| with_cp | peak memory (MiB) | step wall time (s) | step CPU time (s) |')
    print('|---------|------------------:|-------------------:|------------------:|')
    for cp in (False, True):
        print(f'| {cp!s:<7} | {memory[cp]:17.0f} | {seconds[cp][0]:18.2f} | {seconds[cp][1]:17.2f} |')
    ratios = [memory[True] / memory[False]] + [on / off for on, off in zip(seconds[True], seconds[False])]
    print('| ratio   | {:17.2f} | {:18.2f} | {:17.2f} |'.format(*ratios))

if __name__ == '__main__':
    main()
