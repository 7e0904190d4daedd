"""The ``callgate`` command line: migrations, serving, demo data and operator commands."""
