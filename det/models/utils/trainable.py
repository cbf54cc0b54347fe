"""What a fine-tuning run trains: which parameters are frozen (``requires_grad=False``: a backbone's
``frozen_stages``, a frozen module) and which BatchNorms keep fixed statistics, as one log line, so a
config that freezes too much (or nothing) shows at the start of the run rather than in its accuracy."""
from collections import OrderedDict

from torch import nn


def _module_of(name: str, depth: int) -> str:
    """``backbone.layers.0.0.block.0.weight`` -> ``backbone.layers.0`` for ``depth=3``."""
    return '.'.join(name.split('.')[:depth])


def describe_trainable(model: nn.Module, depth: int = 3) -> str:
    """One line: trainable / total parameter counts, the frozen parameters grouped by their module
    ``depth`` levels deep (``backbone.layers.0: 928``), and the BatchNorms in eval mode in train mode
    (``norm_eval``). Call it on a model in train mode (``model.train()`` applies ``norm_eval``)."""
    total = trainable = 0
    frozen = OrderedDict()
    for name, param in model.named_parameters():
        total += param.numel()
        if param.requires_grad:
            trainable += param.numel()
        else:
            key = _module_of(name, depth)
            frozen[key] = frozen.get(key, 0) + param.numel()
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    fixed_norms = sum(not m.training for m in norms)
    frozen_text = ', '.join(f'{k} ({v:,})' for k, v in frozen.items()) or 'none'
    return (f'trainable parameters: {trainable:,} of {total:,}; frozen: {frozen_text}; BatchNorm '
            f'statistics fixed (norm_eval / frozen stages): {fixed_norms} of {len(norms)} layers')
