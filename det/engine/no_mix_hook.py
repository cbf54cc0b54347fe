"""Turns multi-image mixing (Mosaic, MixUp) off for the last epochs of training."""
from mmengine.hooks import Hook

from det.registry import HOOKS


def _find_mix_dataset(dataset):
    """The dataset holding ``update_skip_type_keys`` (a MultiImageMixDataset), looking through
    wrappers that keep theirs in ``.dataset`` or ``.datasets``; None when there is none."""
    if hasattr(dataset, 'update_skip_type_keys'):
        return dataset
    for child in [getattr(dataset, 'dataset', None), *getattr(dataset, 'datasets', [])]:
        found = _find_mix_dataset(child) if child is not None else None
        if found is not None:
            return found
    return None


@HOOKS.register_module()
class NoMixHook(Hook):
    """From epoch ``max_epochs - num_last_epochs`` on, the training dataset bypasses the transforms named
    in ``skip_type_keys`` (YOLOX's recipe: the last epochs on unmixed images bring the model back to the
    data's real object density and scale before validation, and lift AP).

    The switch is made before each epoch from the epoch number alone, so a resumed run lands in the same
    state. Dataloader workers hold copies of the dataset: with ``persistent_workers`` the loader's
    iterator is dropped so the next epoch starts workers that see the change (without them, workers are
    started anew each epoch anyway).

    Args:
        num_last_epochs: how many final epochs run without mixing.
        skip_type_keys: transform types the :class:`~det.datasets.MultiImageMixDataset` then bypasses.
    """

    priority = 'NORMAL'

    def __init__(self, num_last_epochs: int = 1, skip_type_keys=('Mosaic', 'MixUp')):
        if num_last_epochs < 0:
            raise ValueError(f'num_last_epochs must be >= 0, got {num_last_epochs}')
        self.num_last_epochs = num_last_epochs
        self.skip_type_keys = tuple(skip_type_keys)

    def before_train_epoch(self, runner) -> None:
        if runner.epoch < runner.max_epochs - self.num_last_epochs:
            return
        loader = runner.train_dataloader
        dataset = _find_mix_dataset(loader.dataset)
        if dataset is None:
            raise TypeError(f'NoMixHook: the training dataset ({type(loader.dataset).__name__}) has no '
                            'MultiImageMixDataset whose mixing could be turned off')
        if tuple(dataset.skip_type_keys) == self.skip_type_keys:
            return
        dataset.update_skip_type_keys(self.skip_type_keys)
        if getattr(loader, 'persistent_workers', False):
            loader._iterator = None  # the next epoch starts workers holding the updated dataset
        runner.logger.info(f'NoMixHook: epoch {runner.epoch + 1} of {runner.max_epochs} on: '
                           f'{list(self.skip_type_keys)} switched off')
