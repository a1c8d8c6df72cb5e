"""minnet: reproducible studies of the fast.ai Lesson 5 Mini Net on MovieLens."""

from minnet.errors import AuditError, MinnetError

__version__ = "0.1.0"
__all__ = ["AuditError", "MinnetError", "__version__"]
