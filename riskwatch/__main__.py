"""`python -m riskwatch ...`: the same command line as the `riskwatch` console script."""

from riskwatch.cli import main

if __name__ == "__main__":
    main()
