"""Building blocks only: DCGAN encoder/decoder, MLPs for tabular data,
residual SNGAN blocks, the U-Net and the DCGAN weight initialisation."""

from .dcgan import DCGANDecoder, DCGANEncoder
from .init import dcgan_init, init_dcgan
from .lenet import LeNetDecoder, LeNetEncoder, lenet_pair
from .mlp import MLP, MLPDecoder, MLPDiscriminator, MLPEncoder
from .resnet import DiscBlock, GenBlock, ResNetCritic, ResNetGenerator
from .unet import SkipDiscriminator, UNetGenerator

__all__ = [
    "DCGANDecoder",
    "DCGANEncoder",
    "DiscBlock",
    "GenBlock",
    "LeNetDecoder",
    "LeNetEncoder",
    "MLP",
    "MLPDecoder",
    "MLPDiscriminator",
    "MLPEncoder",
    "ResNetCritic",
    "ResNetGenerator",
    "SkipDiscriminator",
    "UNetGenerator",
    "dcgan_init",
    "init_dcgan",
    "lenet_pair",
]
