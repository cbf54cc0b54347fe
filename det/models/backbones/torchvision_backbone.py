"""Any torchvision classification model as a det backbone, through torchvision's FX feature extraction
(``create_feature_extractor``), with the same interface as the hand-written backbones."""
from collections import OrderedDict
from contextlib import nullcontext

import torch
import torchvision
from torch import nn
from torch.utils.checkpoint import checkpoint
from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

from det.registry import MODELS

from .base import BaseBackbone, batchnorm_stats_frozen

# Side of the square dummy image used at build time to measure channels and strides (a power of two, so
# strides up to 128 come out exact).
PROBE_SIZE = 256
CONTAINERS = (nn.Sequential, nn.ModuleList)


def find_blocks(module: nn.Module, nested: bool = True, prefix: str = '') -> list:
    """Qualified names of the modules held directly by a plain ``nn.Sequential`` / ``nn.ModuleList``, in
    registration order. ``nested=True`` descends into plain containers held by containers and gives the
    blocks (``layer2.0`` of a ResNet, ``features.1.0`` of an EfficientNet, the units ``with_cp``
    checkpoints). ``nested=False`` stops at the outermost container's elements and also takes the
    modules outside any container that hold none (ResNet's ``conv1``/``relu``/``maxpool``, RegNet's
    ``stem``): the stages (``features.1`` of an EfficientNet), among which default return nodes are
    chosen."""
    names = []
    for name, child in module.named_children():
        qualname = prefix + name
        if type(module) in CONTAINERS:
            is_unit = not (nested and type(child) in CONTAINERS)
        else:
            is_unit = not nested and not any(type(m) in CONTAINERS for m in child.modules())
        if is_unit:
            names.append(qualname)
        else:
            names += find_blocks(child, nested, qualname + '.')
    return names


def maybe_checkpoint(block: nn.Module, *args, **kwargs):
    """Run ``block``; in training with gradients, recompute its activations in backward instead of
    storing them (``torch.utils.checkpoint``). Inserted into the FX graph in place of each block call.
    The recomputation restores the block's BatchNorm statistics, so each step counts once, as in
    :class:`BaseBackbone`."""
    if block.training and torch.is_grad_enabled() and any(
            isinstance(a, torch.Tensor) and a.requires_grad for a in args):
        return checkpoint(block, *args, use_reentrant=False,
                          context_fn=lambda: (nullcontext(), batchnorm_stats_frozen(block)), **kwargs)
    return block(*args, **kwargs)


def checkpoint_blocks(graph: torch.fx.Graph, blocks: set):
    """Replace every ``call_module`` of a block in ``graph`` by ``maybe_checkpoint(block, *args)``."""
    for node in list(graph.nodes):
        if node.op == 'call_module' and node.target in blocks:
            with graph.inserting_before(node):
                block = graph.get_attr(node.target)
                wrapped = graph.call_function(maybe_checkpoint, (block, *node.args), dict(node.kwargs))
            node.replace_all_uses_with(wrapped)
            graph.erase_node(node)


@MODELS.register_module()
class TorchvisionBackbone(BaseBackbone):
    """A torchvision model (``torchvision.models.get_model(name, **model_kwargs)``) cut into feature maps.

    Args:
        name: torchvision model name, e.g. ``'resnet50'``, ``'mobilenet_v3_large'``, ``'convnext_tiny'``.
            Only models whose features are ``[B, C, H, W]`` maps (CNNs) are supported.
        return_nodes: FX node or module names to return, in increasing stride (a list, or a dict whose
            keys are used), e.g. ``['layer1', 'layer2', 'layer3', 'layer4']``. ``None`` picks, for every
            stride 2, 4, 8, ... the model reaches, the last stage (``find_blocks(model, nested=False)``)
            at that stride: ``relu, layer1.1 .. layer4.1`` for resnet18, ``features.1/2/3/5/8`` for
            efficientnet_b0, so that, as for every backbone, index ``i`` is stride ``2 ** (i + 1)``
            (models without a stride-2 map, e.g. ConvNeXt's stride-4 stem, start at their first stride).
        model_kwargs: passed to ``get_model``; defaults to ``dict(weights=None)`` (no download).
        norm_layer: name of the normalisation class to build the model with, looked up in
            ``torchvision.ops`` then ``torch.nn`` (e.g. ``'FrozenBatchNorm2d'``: affine and statistics as
            buffers, as DETR's ResNet); None keeps the model's default. A name, so configs stay plain data.
        out_indices: which of ``return_nodes`` to output; ``None`` means all.
        frozen_stages: ``k`` freezes every parameter that feeds ``return_nodes[0..k]`` (found by autograd
            at build time) and keeps the modules holding them in eval mode; -1 freezes none.
        norm_eval, with_cp: as in :class:`BaseBackbone`; checkpointing wraps each block, which is then
            traced as a leaf, so with ``with_cp=True`` return nodes must be blocks or above.

    ``out_channels`` / ``strides`` are measured with a dummy ``PROBE_SIZE`` x ``PROBE_SIZE`` forward.
    Parameters are stored under ``body.`` with torchvision's names; a plain torchvision state dict
    (``init_cfg=dict(type='Pretrained', checkpoint='resnet50.pth')``) loads directly, the missing
    ``body.`` prefix being added on load. ``convert='torchvision'`` in that init_cfg works as for the
    other backbones (:meth:`convert_torchvision`), and also skips the keys of modules not built.
    """

    def __init__(self, name='resnet50', return_nodes=None, model_kwargs=None, out_indices=None,
                 frozen_stages=-1, norm_eval=False, with_cp=False, init_cfg=None, norm_layer=None):
        model_kwargs = dict(model_kwargs or dict(weights=None))
        if norm_layer is not None:
            norm_class = getattr(torchvision.ops, norm_layer, None) or getattr(nn, norm_layer, None)
            if not isinstance(norm_class, type):
                raise ValueError(f'norm_layer={norm_layer!r} is not a class of torchvision.ops or torch.nn')
            model_kwargs['norm_layer'] = norm_class
        model = torchvision.models.get_model(name, **model_kwargs)
        if return_nodes is None:
            return_nodes = self._default_nodes(model, find_blocks(model, nested=False))
        nodes = list(return_nodes)
        out_indices = range(len(nodes)) if out_indices is None else out_indices
        super().__init__(out_indices, frozen_stages, norm_eval, with_cp, init_cfg)
        bad = [i for i in self.out_indices if not -len(nodes) <= i < len(nodes)]
        if bad:
            raise ValueError(f'out_indices {bad} out of range for return_nodes {nodes}')
        self.out_indices = tuple(sorted(i % len(nodes) for i in self.out_indices))
        # Nodes after the last output are dropped, so every parameter in the body gets a gradient.
        self.nodes = nodes[:self.out_indices[-1] + 1]
        blocks = find_blocks(model)
        leaf_types = list({type(model.get_submodule(b)) for b in blocks})
        tracer_kwargs = dict(leaf_modules=leaf_types) if with_cp else {}
        self.body = create_feature_extractor(model, {n: str(i) for i, n in enumerate(self.nodes)},
                                             tracer_kwargs=tracer_kwargs)
        if with_cp:
            for graph in (self.body.train_graph, self.body.eval_graph):
                checkpoint_blocks(graph, set(blocks))
            self.body.recompile()
        self._probe()
        self._register_load_state_dict_pre_hook(self._add_body_prefix)
        self._freeze_stages()

    @classmethod
    def convert_torchvision(cls, state_dict: dict, **arch_kwargs) -> OrderedDict:
        """torchvision's keys are this class's under ``body.`` (for any ``arch_kwargs``)."""
        return OrderedDict(('body.' + key, value) for key, value in state_dict.items())

    @staticmethod
    def _default_nodes(model: nn.Module, stages: list) -> list:
        """The last of ``stages`` at each stride 2, 4, 8, ... (in order of first appearance), measured on
        a dummy image; maps at stride 1, at no power-of-two stride (VGG's 7x7 adaptive pool) or 1x1
        (after global pooling) are skipped, as are stages the eval-mode forward does not call."""
        called = get_graph_node_names(model.eval())[1]
        stages = [s for s in stages if any(n == s or n.startswith(s + '.') for n in called)]
        body = create_feature_extractor(model, {n: n for n in stages})
        with torch.no_grad():
            feats = body(torch.zeros(1, 3, PROBE_SIZE, PROBE_SIZE))
        last_at_stride = {}
        for node, feat in feats.items():
            size = feat.shape[-1]
            if feat.dim() == 4 and 1 < size < PROBE_SIZE and PROBE_SIZE % size == 0:
                last_at_stride[PROBE_SIZE // size] = node
        if not last_at_stride:
            raise ValueError(f'no [B, C, H, W] block outputs found in {type(model).__name__}; '
                             'pass return_nodes explicitly')
        return list(last_at_stride.values())

    def _probe(self):
        """Measure ``out_channels``/``strides`` and, for ``frozen_stages >= 0``, find the parameters that
        feed the first ``frozen_stages + 1`` nodes (autograd reaches exactly those)."""
        self.body.eval()
        with torch.set_grad_enabled(self.frozen_stages >= 0):
            feats = list(self.body(torch.zeros(1, 3, PROBE_SIZE, PROBE_SIZE)).values())
        self.body.train()
        self.out_channels = [feats[i].shape[1] for i in self.out_indices]
        self.strides = [round(PROBE_SIZE / feats[i].shape[-1]) for i in self.out_indices]
        self.frozen_modules = []
        if self.frozen_stages < 0:
            return
        params = dict(self.body.named_parameters())
        frozen = feats[:self.frozen_stages + 1]
        grads = torch.autograd.grad(sum(f.sum() for f in frozen), list(params.values()), allow_unused=True)
        frozen_params = {name for name, g in zip(params, grads) if g is not None}
        for name, module in self.body.named_modules():
            own = [f'{name}.{p}'.lstrip('.') for p, _ in module.named_parameters(recurse=False)]
            if own and all(p in frozen_params for p in own):
                self.frozen_modules.append(name)

    def _freeze_stages(self):
        for name in self.frozen_modules:
            module = self.body.get_submodule(name)
            module.eval()
            for param in module.parameters(recurse=False):
                param.requires_grad = False

    @staticmethod
    def _add_body_prefix(state_dict, prefix, *args):
        for key in [k for k in state_dict if k.startswith(prefix) and not k.startswith(prefix + 'body.')]:
            state_dict[prefix + 'body.' + key[len(prefix):]] = state_dict.pop(key)

    def forward(self, x: torch.Tensor) -> tuple:
        feats = self.body(x)
        return tuple(feats[str(i)] for i in self.out_indices)
