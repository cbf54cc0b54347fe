"""det's registries: children of mmengine's roots, so configs with ``default_scope='det'`` build
det's modules by ``type=`` name and fall back to mmengine's roots (optimizers, schedulers, hooks).

Building an unknown ``type`` fails with the names the registry holds, instead of mmengine's bare
"X is not in the registry".
"""
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import TASK_UTILS as MMENGINE_TASK_UTILS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import Registry


class DetRegistry(Registry):
    """A registry whose failed look-up lists what is registered (here and in mmengine's parent)."""

    def get(self, key):
        found = super().get(key)
        if found is None and isinstance(key, str):
            names = sorted(set(self.module_dict) | set(self.parent.module_dict if self.parent else {}))
            raise KeyError(
                f"type={key!r} is not registered in det's {self.name!r} registry. "
                f"Registered names: {', '.join(names)}")
        return found

    def __contains__(self, key):
        return super().get(key) is not None


def _child(name, parent, location):
    return DetRegistry(name, parent=parent, scope='det', locations=[location])


MODELS = _child('model', MMENGINE_MODELS, 'det.models')
TASK_UTILS = _child('task util', MMENGINE_TASK_UTILS, 'det.models')
DATASETS = _child('dataset', MMENGINE_DATASETS, 'det.datasets')
TRANSFORMS = _child('transform', MMENGINE_TRANSFORMS, 'det.datasets.transforms')
METRICS = _child('metric', MMENGINE_METRICS, 'det.evaluation')
HOOKS = _child('hook', MMENGINE_HOOKS, 'det.engine')
OPTIM_WRAPPERS = _child('optim wrapper', MMENGINE_OPTIM_WRAPPERS, 'det.engine')
