# CI only: LocalStack's S3 as the stand-in for MinIO (no registry here serves MinIO), which,
# run with S3_SKIP_SIGNATURE_VALIDATION=0, refuses tampered and expired SigV4 pre-signed URLs.
# LocalStack needs Python 3.13: this machine's pyenv build (python3.13.tar, put in the build
# context by scripts/compose-check.sh). Every package pinned (localstack-requirements.txt).
ARG BASE_IMAGE=local/python:3.11-slim-bookworm
FROM ${BASE_IMAGE}
ADD python3.13.tar /opt/python3.13/
ENV PATH=/opt/python3.13/bin:$PATH \
    LD_LIBRARY_PATH=/opt/python3.13/lib \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY localstack-requirements.txt /tmp/
RUN python3.13 -m ensurepip \
    && PIP_CONSTRAINT=/tmp/localstack-requirements.txt \
       python3.13 -m pip install --no-deps -r /tmp/localstack-requirements.txt \
    && groupadd --system --gid 10002 localstack \
    && useradd --system --uid 10002 --gid localstack --create-home \
       --home-dir /var/lib/localstack --shell /usr/sbin/nologin localstack \
    && mkdir -p /usr/lib/localstack && chown localstack:localstack /usr/lib/localstack
COPY s3-init.py /opt/subtone-check/s3-init.py
USER 10002:10002
WORKDIR /var/lib/localstack
ENV HOME=/var/lib/localstack
EXPOSE 9000
ENTRYPOINT ["python3.13", "-m", "localstack.runtime.main"]
