"""edgecv: transfer-learn vision models, quantize them with proof, run them on the edge."""

__version__ = "0.1.0"
