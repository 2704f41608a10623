"""`python -m zcx.operator ...` runs the operator's report CLI."""

from zcx.operator.cli import main

if __name__ == "__main__":
    main()
