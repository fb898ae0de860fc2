"""spark-submit entrypoint of the bronze layer: `spark-submit spark_jobs/bronze.py [--run-id ID] ...`."""

import sys

from _runner import main

if __name__ == "__main__":
    sys.exit(main("bronze"))
