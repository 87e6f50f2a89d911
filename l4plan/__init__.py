"""l4plan: infrastructure as code for Layer 4 (TCP/UDP) proxy applications."""

__version__ = "0.1.0"
