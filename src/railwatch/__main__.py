"""Allow ``python -m railwatch``."""

from railwatch.cli import main

main()
