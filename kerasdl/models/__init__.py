"""Model builders returning plain keras.Model objects."""

from kerasdl.models.baselines import conv_bn
from kerasdl.models.baselines import deeper_conv_bn
from kerasdl.models.baselines import dense_bn_head
from kerasdl.models.baselines import linear_bn
from kerasdl.models.summary import param_counts
from kerasdl.models.surgery import conv_base
from kerasdl.models.surgery import replace_head
from kerasdl.models.surgery import split_at
from kerasdl.models.vgg import VGGPreprocess
from kerasdl.models.vgg import vgg16
from kerasdl.models.vgg import vgg16_bn

__all__ = [
    "VGGPreprocess",
    "conv_base",
    "conv_bn",
    "deeper_conv_bn",
    "dense_bn_head",
    "linear_bn",
    "param_counts",
    "replace_head",
    "split_at",
    "vgg16",
    "vgg16_bn",
]
