"""Checks that a refactor keeps models the same: builds each config's model here and in another checkout
of det (``--ref``, e.g. the main branch), and compares their ``state_dict()`` keys (checkpoints keep
loading) and, with the reference's weights loaded here, the outputs of a forward pass in ``'tensor'`` mode
(eval, two images, one padded) and the training losses (one unpadded batch, same seed), which must be
equal.

    python tools/analysis/compare_models.py --ref /work/main configs/*detr*.py

The reference side runs in a subprocess with ``--ref`` first on ``PYTHONPATH``; exits 1 if any config
differs.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import torch
from mmengine.config import Config
from mmengine.structures import InstanceData

SIZE = 192                 # 144 tokens at stride 16: more than the shipped configs' 100 queries


def build(config: str):
    from mmengine.logging import MMLogger

    import det.models  # noqa: F401  (registers every model part)
    from det.registry import MODELS
    MMLogger.get_instance('compare_models', log_level='WARNING')   # no init_weights report per parameter
    model = MODELS.build(Config.fromfile(config).model)
    model.init_weights()
    return model


def batch(model, padded: bool) -> dict:
    """Two uint8 images (the second 64 px narrower when ``padded``) with two boxes each, preprocessed."""
    from det.structures import DetDataSample
    generator = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for width in (SIZE, SIZE - 64 if padded else SIZE):
        inputs.append(torch.randint(0, 255, (3, SIZE, width), dtype=torch.uint8, generator=generator))
        sample = DetDataSample(metainfo=dict(img_shape=(SIZE, width), ori_shape=(SIZE, width),
                                             scale_factor=(1.0, 1.0)))
        boxes = torch.tensor([[4.0, 6.0, 20.0, 30.0], [10.0, 40.0, 28.0, 90.0]])
        sample.gt_instances = InstanceData(bboxes=boxes, labels=torch.tensor([0, 1]))
        samples.append(sample)
    return model.data_preprocessor(dict(inputs=inputs, data_samples=samples), training=False)


def outputs(model) -> dict:
    """``'tensor'`` outputs (eval, padded batch) and losses (train, unpadded batch, seed 0)."""
    model.eval()
    with torch.no_grad():
        data = batch(model, padded=True)
        tensor = model(data['inputs'], data['data_samples'], mode='tensor')
        model.train()
        data = batch(model, padded=False)
        torch.manual_seed(0)
        losses = model(data['inputs'], data['data_samples'], mode='loss')
    return dict(tensor=tensor, losses={k: v.detach() for k, v in losses.items()})


def dump(config: str, path: str):
    """Reference side: the model's state dict and outputs, saved to ``path``."""
    torch.manual_seed(0)
    model = build(config)
    state_dict = {name: value.clone() for name, value in model.state_dict().items()}  # before BN updates
    torch.save(dict(state_dict=state_dict, outputs=outputs(model)), path)


def flat(value, prefix=''):
    """Nested tuples / dicts of tensors -> ``{path: tensor}``."""
    if isinstance(value, torch.Tensor):
        return {prefix: value}
    items = value.items() if isinstance(value, dict) else enumerate(value)
    return {k: v for key, item in items for k, v in flat(item, f'{prefix}/{key}').items()}


def compare(config: str, ref: str) -> list:
    """Problems found for ``config`` (a path relative to this checkout's root, the same in ``ref``;
    empty when keys and outputs are equal)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'ref.pth')
        env = dict(os.environ, PYTHONPATH=ref)
        ref_config = os.path.join(ref, os.path.relpath(config))
        subprocess.run([sys.executable, os.path.abspath(__file__), '--dump', path, ref_config], check=True,
                       env=env, cwd=ref)
        theirs = torch.load(path, weights_only=True)
    model = build(config)
    problems = []
    ours_keys, ref_keys = list(model.state_dict()), list(theirs['state_dict'])
    if ours_keys != ref_keys:
        problems.append(f'state_dict keys differ: only here {sorted(set(ours_keys) - set(ref_keys))}, only '
                        f'in the reference {sorted(set(ref_keys) - set(ours_keys))}'
                        + ('' if set(ours_keys) != set(ref_keys) else ' (same set, another order)'))
        return problems
    ref_state = theirs['state_dict']
    shapes = [f'{name} {tuple(value.shape)} vs {tuple(ref_state[name].shape)}'
              for name, value in model.state_dict().items() if value.shape != ref_state[name].shape]
    if shapes:
        return [f'state_dict shapes differ (here vs reference): {", ".join(shapes)}']
    model.load_state_dict(theirs['state_dict'], strict=True)
    ours, ref_out = flat(outputs(model)), flat(theirs['outputs'])
    if set(ours) != set(ref_out):
        problems.append(f'outputs differ in names: here {sorted(ours)}, reference {sorted(ref_out)}')
    for name in sorted(set(ours) & set(ref_out)):
        if not torch.equal(ours[name], ref_out[name]):
            diff = (ours[name].float() - ref_out[name].float()).abs().max().item()
            problems.append(f'{name} differs (max abs difference {diff:.3g})')
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('configs', nargs='+')
    parser.add_argument('--ref', help='root of the other checkout of det')
    parser.add_argument('--dump', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.dump:
        dump(args.configs[0], args.dump)
        return
    if not args.ref:
        parser.error('--ref is required')
    failed = False
    for config in args.configs:
        problems = compare(config, os.path.abspath(args.ref))
        print(f"{config}: {'keys and outputs equal' if not problems else 'DIFFERS'}")
        for problem in problems:
            print('   ', problem)
        failed |= bool(problems)
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
