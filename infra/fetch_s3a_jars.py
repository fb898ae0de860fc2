"""Fetch the jars Spark needs for s3a:// into pyspark's jars folder, each checked against the SHA-1 that
Maven Central publishes beside it (run by infra/Dockerfile at build time; a mismatch fails the build).

    python infra/fetch_s3a_jars.py HADOOP_AWS_VERSION AWS_SDK_BUNDLE_VERSION ANALYTICS_ACCELERATOR_VERSION
"""

import hashlib
import sys
import urllib.request
from pathlib import Path

import pyspark

MAVEN = "https://repo1.maven.org/maven2"


def fetch(group: str, artifact: str, version: str, into: Path) -> None:
    """Download one jar and refuse it unless its SHA-1 is the published one."""
    url = f"{MAVEN}/{group.replace('.', '/')}/{artifact}/{version}/{artifact}-{version}.jar"
    with urllib.request.urlopen(url + ".sha1", timeout=60) as answer:
        expected = answer.read().decode().split()[0].strip()
    with urllib.request.urlopen(url, timeout=600) as answer:
        body = answer.read()
    actual = hashlib.sha1(body).hexdigest()
    if actual != expected:
        raise SystemExit(f"{url}: SHA-1 {actual} is not the published {expected}")
    (into / f"{artifact}-{version}.jar").write_bytes(body)
    print(f"{artifact}-{version}.jar ({len(body):,} bytes) checked and installed")


def main() -> None:
    hadoop_aws, sdk_bundle, accelerator = sys.argv[1:4]
    jars = Path(pyspark.__file__).parent / "jars"
    shipped = sorted(p.name for p in jars.glob("hadoop-client-api-*.jar"))
    if shipped and shipped[0] != f"hadoop-client-api-{hadoop_aws}.jar":
        raise SystemExit(f"pyspark ships {shipped[0]}: set HADOOP_AWS_VERSION to the same Hadoop version")
    fetch("org.apache.hadoop", "hadoop-aws", hadoop_aws, jars)
    fetch("software.amazon.awssdk", "bundle", sdk_bundle, jars)
    fetch("software.amazon.s3.analyticsaccelerator", "analyticsaccelerator-s3", accelerator, jars)


if __name__ == "__main__":
    main()
