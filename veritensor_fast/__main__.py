"""``python -m veritensor_fast``: the same command line as ``veritensor-fast``."""

from veritensor_fast.cli import main

if __name__ == "__main__":
    main()
