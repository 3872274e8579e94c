"""CI only: minio-init's set-up on LocalStack's S3 (compose/minio/init.sh does it with mc)."""

import os

import boto3

bucket = os.environ["SUBTONE_S3_BUCKET"]
days = (int(os.environ["SUBTONE_UPLOAD_TTL_SECONDS"]) + 86399) // 86400
s3 = boto3.client(
    "s3",
    endpoint_url="http://minio:9000",
    region_name="us-east-1",
    aws_access_key_id=os.environ["MINIO_ROOT_USER"],
    aws_secret_access_key=os.environ["MINIO_ROOT_PASSWORD"],
)
if bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
    s3.create_bucket(Bucket=bucket)
s3.put_bucket_lifecycle_configuration(
    Bucket=bucket,
    LifecycleConfiguration={
        "Rules": [
            {
                "ID": "expire",
                "Status": "Enabled",
                "Filter": {"Prefix": ""},
                "Expiration": {"Days": days},
            }
        ]
    },
)
print(f"s3-init: bucket {bucket} (objects expire after {days} days) ready")
