"""det's registries: children of mmengine's roots, so configs with ``default_scope='det'`` build
det's modules by ``type=`` name and fall back to mmengine's roots (optimizers, schedulers, hooks).

Building an unknown ``type`` fails with the names the registry holds, instead of mmengine's bare
"X is not in the registry".
"""
from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOG_PROCESSORS as MMENGINE_LOG_PROCESSORS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import RUNNER_CONSTRUCTORS as MMENGINE_RUNNER_CONSTRUCTORS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import TASK_UTILS as MMENGINE_TASK_UTILS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISBACKENDS as MMENGINE_VISBACKENDS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import WEIGHT_INITIALIZERS as MMENGINE_WEIGHT_INITIALIZERS
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


def _child(name, parent, location=None):
    return DetRegistry(name, parent=parent, scope='det', locations=[location] if location else [])


MODELS = _child('model', MMENGINE_MODELS, 'det.models')
TASK_UTILS = _child('task util', MMENGINE_TASK_UTILS, 'det.models')
DATASETS = _child('dataset', MMENGINE_DATASETS, 'det.datasets')
TRANSFORMS = _child('transform', MMENGINE_TRANSFORMS, 'det.datasets.transforms')
METRICS = _child('metric', MMENGINE_METRICS, 'det.evaluation')
HOOKS = _child('hook', MMENGINE_HOOKS, 'det.engine')
OPTIM_WRAPPERS = _child('optim wrapper', MMENGINE_OPTIM_WRAPPERS, 'det.engine')

# Runner machinery det takes from mmengine as it is. Declaring the children lets mmengine's scoped
# look-up find 'det' in every registry tree (no "Failed to search registry with scope det" warnings).
RUNNERS = _child('runner', MMENGINE_RUNNERS)
RUNNER_CONSTRUCTORS = _child('runner constructor', MMENGINE_RUNNER_CONSTRUCTORS)
LOOPS = _child('loop', MMENGINE_LOOPS)
DATA_SAMPLERS = _child('data sampler', MMENGINE_DATA_SAMPLERS)
OPTIMIZERS = _child('optimizer', MMENGINE_OPTIMIZERS)
OPTIM_WRAPPER_CONSTRUCTORS = _child('optimizer wrapper constructor', MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS)
PARAM_SCHEDULERS = _child('parameter scheduler', MMENGINE_PARAM_SCHEDULERS)
WEIGHT_INITIALIZERS = _child('weight initializer', MMENGINE_WEIGHT_INITIALIZERS)
MODEL_WRAPPERS = _child('model_wrapper', MMENGINE_MODEL_WRAPPERS)
EVALUATOR = _child('evaluator', MMENGINE_EVALUATOR)
LOG_PROCESSORS = _child('log_processor', MMENGINE_LOG_PROCESSORS)
VISUALIZERS = _child('visualizer', MMENGINE_VISUALIZERS)
VISBACKENDS = _child('vis_backend', MMENGINE_VISBACKENDS)
FUNCTIONS = _child('function', MMENGINE_FUNCTIONS)
