# CI only (scripts/compose-check.sh): a stand-in for python:3.11-slim-bookworm, which no registry
# here serves. Debian's python3.11 laid out as the official image is: `python`, `python3` and
# `pip` on PATH, pip free to install as root, libpython3.11 shared (Triton's python-backend stub
# embeds it). The machine's extra CA certificates come in through this build's context (ca/), so
# apt and pip reach HTTPS through the machine's egress; the project's Dockerfiles never see them.
ARG DEBIAN_IMAGE=local/debian:bookworm
FROM ${DEBIAN_IMAGE}
COPY ca/ /usr/local/share/ca-certificates/
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       ca-certificates python3.11 python3.11-venv libpython3.11 python3-pip \
    && update-ca-certificates \
    && rm -rf /var/lib/apt/lists/* /usr/lib/python3.11/EXTERNALLY-MANAGED \
    && ln -s /usr/bin/python3.11 /usr/local/bin/python \
    && ln -s /usr/bin/python3.11 /usr/local/bin/python3 \
    && ln -s /usr/bin/pip3 /usr/local/bin/pip
# pip carries its own CA bundle; point it at the system's (which now has the machine's CAs).
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    LANG=C.UTF-8
CMD ["python3"]
