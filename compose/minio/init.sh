#!/bin/sh
# One-shot MinIO set-up for Subtone (the compose service minio-init). Safe to run again.
#  - the bucket SUBTONE_S3_BUCKET, private;
#  - an expiry rule: objects (uploaded covers and secrets, job results) are deleted once older
#    than SUBTONE_UPLOAD_TTL_SECONDS, rounded up to whole days (MinIO's ILM counts days), so
#    the bucket does not grow forever; the server keeps finished objects that long;
#  - a user SUBTONE_S3_ACCESS_KEY for the API and the workers, allowed that bucket only
#    (the root credentials stay with the operator).
# Incomplete multipart uploads are aborted by MinIO itself after MINIO_API_STALE_UPLOADS_EXPIRY
# (set on the minio service to SUBTONE_UPLOAD_TTL_SECONDS): MinIO's ILM refuses the
# AbortIncompleteMultipartUpload rule that S3 uses for this.
set -eu

: "${SUBTONE_S3_BUCKET:?}" "${SUBTONE_S3_ACCESS_KEY:?}" "${SUBTONE_S3_SECRET_KEY:?}"
: "${SUBTONE_UPLOAD_TTL_SECONDS:?}"
bucket="local/$SUBTONE_S3_BUCKET"
mc alias set local http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null

mc mb --ignore-existing "$bucket"
mc anonymous set private "$bucket"

# The bucket's rules are this script's alone: replace them, so that a re-run (with another TTL)
# leaves one rule, not two.
expire_days=$(( (SUBTONE_UPLOAD_TTL_SECONDS + 86399) / 86400 ))
if mc ilm rule ls "$bucket" >/dev/null 2>&1; then
  mc ilm rule rm --all --force "$bucket"
fi
mc ilm rule add --expire-days "$expire_days" "$bucket"

policy="${TMPDIR:-/tmp}/subtone-policy.json"
cat >"$policy" <<JSON
{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
      "Resource": ["arn:aws:s3:::$SUBTONE_S3_BUCKET"]
    },
    {
      "Effect": "Allow",
      "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject",
                 "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
      "Resource": ["arn:aws:s3:::$SUBTONE_S3_BUCKET/*"]
    }
  ]
}
JSON
mc admin policy create local subtone-bucket "$policy"
mc admin user add local "$SUBTONE_S3_ACCESS_KEY" "$SUBTONE_S3_SECRET_KEY"
# Attaching a policy the user already has is an error; anything else is one too.
if ! out=$(mc admin policy attach local subtone-bucket --user "$SUBTONE_S3_ACCESS_KEY" 2>&1); then
  case "$out" in
    *"already"*) ;;
    *) echo "$out" >&2; exit 1 ;;
  esac
fi
echo "minio-init: bucket $SUBTONE_S3_BUCKET (objects expire after $expire_days days) and user $SUBTONE_S3_ACCESS_KEY ready"
