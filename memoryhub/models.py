"""The project app's models: the kernel's bookkeeping tables, registered under the app label
"memoryhub" (kernel/models.py says why)."""

from kernel.models import MaintenanceJob

__all__ = ["MaintenanceJob"]
