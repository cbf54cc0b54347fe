"""A dataset wrapper for augmentations that mix several images (Mosaic, MixUp), in the manner of
MMDetection's ``MultiImageMixDataset``."""
import copy

from torch.utils.data import Dataset

from det.registry import DATASETS, TRANSFORMS


@DATASETS.register_module()
class MultiImageMixDataset(Dataset):
    """Wraps any det dataset; runs its own pipeline per image, then ``pipeline`` over the result.

    ``dataset[i]`` with the wrapped dataset's pipeline (loading, per-image augmentation; it must stop
    before ``PackDetInputs``) gives a results dict. Each transform of ``pipeline`` then runs in order;
    one with a ``get_indexes(dataset)`` method (:class:`~det.datasets.transforms.Mosaic`,
    :class:`~det.datasets.transforms.MixUp`) first receives the samples at those indexes, each through
    the wrapped pipeline too, as ``results['mix_results']``. ``pipeline`` ends with the packing step.
    An unreadable image is skipped by the wrapped dataset itself (``LoadImageFromFile(on_error='skip')``
    in training), for the current sample and the mixed-in ones alike.

    Transforms whose ``type`` is in ``skip_type_keys`` are bypassed (and load nothing): training usually
    ends with a few epochs on unmixed images, so that the model sees the data's real statistics before
    validation. :class:`~det.engine.NoMixHook` switches this at a given epoch through
    :meth:`update_skip_type_keys`.

    Args:
        dataset: the wrapped dataset or its config.
        pipeline: transform configs applied after the wrapped dataset's pipeline.
        skip_type_keys: transform type names to bypass from the start.
        **dataset_kwargs: options of mmengine's datasets (``serialize_data``, ``lazy_init``), handed to
            the wrapped dataset when it is given as a config, so code that builds any dataset config
            with them (det's pre-run data check) builds this wrapper too.
    """

    def __init__(self, dataset, pipeline, skip_type_keys=(), **dataset_kwargs):
        unknown = sorted(set(dataset_kwargs) - {'serialize_data', 'lazy_init'})
        if unknown:
            raise TypeError(f'MultiImageMixDataset got unexpected arguments {unknown}')
        if isinstance(dataset, dict):
            self.dataset = DATASETS.build(dict(dataset, **dataset_kwargs))
        else:
            self.dataset = dataset
        pipeline = list(pipeline)
        if not all(isinstance(t, dict) and 'type' in t for t in pipeline):
            raise TypeError('MultiImageMixDataset: pipeline must be a list of transform configs '
                            "dict(type=...), so that skip_type_keys can name them")
        self.pipeline_types = [t['type'] if isinstance(t['type'], str) else t['type'].__name__
                               for t in pipeline]
        self.pipeline = [TRANSFORMS.build(copy.deepcopy(t)) for t in pipeline]
        self.skip_type_keys = ()
        self.update_skip_type_keys(skip_type_keys)

    @property
    def metainfo(self) -> dict:
        """The wrapped dataset's metainfo (``classes``...)."""
        return self.dataset.metainfo

    def __len__(self) -> int:
        return len(self.dataset)

    def full_init(self):
        """Fully initialise the wrapped dataset (mmengine's lazy-init protocol)."""
        if hasattr(self.dataset, 'full_init'):
            self.dataset.full_init()

    def update_skip_type_keys(self, skip_type_keys):
        """Bypass the transforms of these types from now on (names as in the pipeline configs)."""
        keys = tuple(skip_type_keys or ())
        unknown = sorted(set(keys) - set(self.pipeline_types))
        if unknown:
            raise KeyError(f'skip_type_keys {unknown} name no transform of the pipeline '
                           f'{self.pipeline_types}')
        self.skip_type_keys = keys

    def _load(self, index: int) -> dict:
        results = self.dataset[index]
        if not isinstance(results, dict) or 'img' not in results or 'data_samples' in results:
            raise TypeError('MultiImageMixDataset: the wrapped dataset must return a results dict with '
                            "'img' (its pipeline loads and augments single images and stops before "
                            'PackDetInputs, which belongs in the wrapper\'s pipeline)')
        return results

    def __getitem__(self, index: int) -> dict:
        results = self._load(index)
        for name, transform in zip(self.pipeline_types, self.pipeline):
            if name in self.skip_type_keys:
                continue
            if hasattr(transform, 'get_indexes'):
                results['mix_results'] = [self._load(i) for i in transform.get_indexes(self.dataset)]
            results = transform(results)
            if results is None:
                raise RuntimeError(f'{name} in MultiImageMixDataset returned None for index {index}')
            results.pop('mix_results', None)
        return results

    def __repr__(self):
        return (f'{type(self).__name__}(dataset={type(self.dataset).__name__} of {len(self)}, '
                f'pipeline={self.pipeline_types}, skip_type_keys={list(self.skip_type_keys)})')
