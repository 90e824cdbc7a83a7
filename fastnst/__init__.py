"""fastnst: fast neural style transfer (Johnson et al. 2016) trained with the Gatys perceptual loss.

From Python::

    from fastnst import TrainConfig, train                # needs the [train] extra (PyTorch)
    run_dir = train(TrainConfig(style="mosaic.jpg", data="photos/"))

    from fastnst.runtime import open_model, stylize_file  # numpy, Pillow and onnxruntime only
    stylize_file(open_model("mosaic"), "photo.jpg", "photo_mosaic.jpg")

``import fastnst`` itself imports neither torch nor onnxruntime: ``train`` and ``TrainConfig`` load
on first use.
"""

__version__ = "0.1.0"
__all__ = ["TrainConfig", "train"]


def __getattr__(name: str):
    if name == "train":
        from fastnst.training import train

        return train
    if name == "TrainConfig":
        from fastnst.train_config import TrainConfig

        return TrainConfig
    raise AttributeError(f"module 'fastnst' has no attribute {name!r}")
