"""spark-submit entrypoint of the gold layer: `spark-submit spark_jobs/gold.py [--run-id ID] ...`."""

import sys

from _runner import main

if __name__ == "__main__":
    sys.exit(main("gold"))
