# adamw_cosine_6e.py over 16 epochs, validation every 4 epochs.
_base_ = ['adamw_cosine_6e.py']
train_cfg = dict(max_epochs=16, val_interval=4)
