"""Uploads the generated input (/data/dt=DATE/*.parquet) to s3://lake/events/ on the S3 emulator,
creating the bucket; waits for the datagen service's /data/_done and for the emulator to answer."""

import os
import pathlib
import time

import boto3

s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"])
for attempt in range(60):
    try:
        s3.create_bucket(Bucket="lake")
        break
    except s3.exceptions.BucketAlreadyOwnedByYou:
        break
    except Exception as e:  # the emulator is still starting
        if attempt == 59:
            raise SystemExit(f"seed: the S3 emulator did not answer: {e}")
        time.sleep(1)
for _ in range(300):
    if pathlib.Path("/data/_done").exists():
        break
    time.sleep(1)
else:
    raise SystemExit("seed: no /data/_done from the datagen service after 300 s")
n = 0
for path in sorted(pathlib.Path("/data").glob("dt=*/*.parquet")):
    s3.upload_file(str(path), "lake", f"events/{path.parent.name}/{path.name}")
    n += 1
print(f"seed: uploaded {n} objects to s3://lake/events/")
