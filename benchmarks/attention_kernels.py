"""Why DETR's attention runs in fp32 on CPU under bf16 autocast (``det.models.detr.transformer.attention``):
times forward + backward of ``scaled_dot_product_attention`` at the small DETR's shapes (batch 8, 8 heads
of 16 channels; encoder self-attention over 400 tokens, decoder cross-attention 130 -> 400 and
self-attention 130 -> 130, 130 = 100 queries + 30 denoising) in bf16 and in fp32, each with torch's
flash (default) and math kernels, and prints the ratio of bf16 flash to fp32 flash.

    python benchmarks/attention_kernels.py [--threads 2] [--repeats 9]
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

SHAPES = {'encoder self 400x400': (400, 400), 'decoder cross 130x400': (130, 400),
          'decoder self 130x130': (130, 130)}


def time_ms(num_q: int, num_k: int, dtype: torch.dtype, backend: SDPBackend, repeats: int) -> float:
    """Median ms of forward + backward with a key padding mask, after two warm-up runs."""
    q = torch.randn(8, 8, num_q, 16, dtype=dtype, requires_grad=True)
    k = torch.randn(8, 8, num_k, 16, dtype=dtype, requires_grad=True)
    v = torch.randn(8, 8, num_k, 16, dtype=dtype, requires_grad=True)
    mask = torch.ones(8, 1, 1, num_k, dtype=torch.bool)
    times = []
    for _ in range(repeats + 2):
        start = time.perf_counter()
        with sdpa_kernel(backend):
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        out.sum().backward()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times[2:])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=9)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f'torch {torch.__version__}, {args.threads} threads, forward + backward, median of {args.repeats}')
    print('| attention | bf16 flash | bf16 math | fp32 flash | fp32 math | bf16 flash / fp32 flash |')
    print('|---|---:|---:|---:|---:|---:|')
    for name, (num_q, num_k) in SHAPES.items():
        ms = {(dtype, backend): time_ms(num_q, num_k, dtype, backend, args.repeats)
              for dtype in (torch.bfloat16, torch.float32)
              for backend in (SDPBackend.FLASH_ATTENTION, SDPBackend.MATH)}
        row = [ms[(d, b)] for d in (torch.bfloat16, torch.float32)
               for b in (SDPBackend.FLASH_ATTENTION, SDPBackend.MATH)]
        flash = SDPBackend.FLASH_ATTENTION
        ratio = ms[(torch.bfloat16, flash)] / ms[(torch.float32, flash)]
        print(f'| {name} | ' + ' | '.join(f'{t:.1f} ms' for t in row) + f' | {ratio:.2f}x |')


if __name__ == '__main__':
    main()
