"""fastnst: fast neural style transfer (Johnson et al. 2016) trained with the Gatys perceptual loss."""

__version__ = "0.1.0"
