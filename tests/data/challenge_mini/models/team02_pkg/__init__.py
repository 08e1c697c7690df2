from .net import PkgNet

__all__ = ["PkgNet"]
