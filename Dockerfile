# ebook2audio, CPU image: the command line, a distributed worker, a coordinator or Flower.
#
#   docker build -t ebook2audio .
#   docker run --rm -v "$PWD:/data" ebook2audio convert /data/book.epub -o /data
#   docker compose -f docker-compose.distributed.yml up --scale worker=5     (see docs/distributed.md)
#
# For NVIDIA GPUs build docker/Dockerfile.cuda instead (same layout, onnxruntime-gpu).
FROM python:3.11-slim

# Extras: the distributed mode and the web app (serve); e.g. --build-arg EXTRAS=distributed,web,formats
ARG EXTRAS=distributed,web

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    EBOOK2AUDIO_VOICES_DIR=/opt/ebook2audio/voices \
    XDG_CACHE_HOME=/home/ebook2audio/.cache

# ffmpeg comes from the imageio-ffmpeg wheel and espeak-ng data from espeakng-loader: no apt packages.
WORKDIR /opt/ebook2audio/src
COPY pyproject.toml README.md LICENSE NOTICE ./
COPY src ./src
RUN pip install ".[${EXTRAS}]" \
 && rm -rf build src/*.egg-info \
 && ebook2audio --version

# An unprivileged user. The directories that compose mounts as named volumes belong to it, so the
# volumes start out writable by it (/mnt/shared: chunk audio; voices: downloaded Piper voices).
RUN useradd --create-home --uid 10001 --user-group --shell /usr/sbin/nologin ebook2audio \
 && mkdir -p /mnt/shared /opt/ebook2audio/voices /data /app/input /app/output /app/data \
 && chown ebook2audio:ebook2audio /mnt/shared /opt/ebook2audio/voices /data /app/input /app/output /app/data
# The guide's entry point (`docker exec ebook2audio-coordinator python app.py ...`) in the working
# directory, and the licence texts beside it (the program is GPL-3.0-or-later: NOTICE lists the
# licence of every package installed with it).
COPY app.py LICENSE NOTICE /app/
USER ebook2audio
WORKDIR /app

ENTRYPOINT ["ebook2audio"]
CMD ["--help"]
