"""spark-submit entrypoint of the silver layer: `spark-submit spark_jobs/silver.py [--run-id ID] ...`."""

import sys

from _runner import main

if __name__ == "__main__":
    sys.exit(main("silver"))
