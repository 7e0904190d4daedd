"""The ``/api/ver1.0`` edge: error mapping shared by every resource router."""
