"""`python -m zcx.sim ...` runs the simulator CLI."""

from zcx.sim.cli import main

if __name__ == "__main__":
    main()
