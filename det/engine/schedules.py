"""Epoch-based schedules that end with the training.

A ``param_scheduler`` entry with ``by_epoch=True`` and no ``end`` runs to ``train_cfg.max_epochs``: a
config that trains for another number of epochs (its own ``train_cfg=dict(max_epochs=N)`` or
``--cfg-options train_cfg.max_epochs=N``) moves the end of its schedule with it instead of restating it.
``--epochs`` (:func:`det.engine.config.set_max_epochs`) then stretches these ends like written ones.
"""


def end_schedules_with_training(cfg) -> None:
    """Set ``end = train_cfg.max_epochs`` on every epoch-based ``param_scheduler`` entry of ``cfg`` that
    leaves ``end`` out (mmengine's default would be never). mmengine's cosine schedulers derive a missing
    ``T_max`` from ``end - begin``, so a cosine written without both decays over the whole run.
    Iteration-based entries, written ends and iteration-based loops (no ``max_epochs``) stay as they are."""
    max_epochs = (cfg.get('train_cfg') or {}).get('max_epochs')
    if max_epochs is None:
        return
    schedulers = cfg.get('param_scheduler') or []
    for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
        if scheduler.get('by_epoch', True) and 'end' not in scheduler:
            scheduler['end'] = max_epochs
