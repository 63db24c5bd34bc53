# `dataprep serve` in a container (README, "Serving"):
#   docker build -t dataprep-serve --build-arg TORCH_INDEX_URL=<PyTorch's CPU wheel index URL> .
#   docker run --rm -p 8000:8000 -v "$PWD/adapter:/adapter:ro" dataprep-serve
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1

# torch first, pinned, as `make setup` does: installed as a dependency of the package it would be whatever build
# the default index offers (on Linux, CUDA: gigabytes). TORCH_INDEX_URL names the index of the CPU build; left
# empty, pip's default index (or the PIP_INDEX_URL you pass) is used.
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=
RUN pip install "torch==${TORCH_VERSION}" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} \
    && python -c "import sys, torch; torch.version.cuda and sys.exit(f'torch {torch.__version__} is a CUDA build: \
pass --build-arg TORCH_INDEX_URL=<the CPU wheel index>')"

# Then the package with the extras serving an adapter (train) or an ONNX export (export) needs; torch is already
# satisfied, so it stays the CPU build.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY dataprep ./dataprep
RUN pip install ".[train,serve,export]" && useradd --create-home --uid 10001 serve

USER serve
WORKDIR /home/serve
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"
# Exec form: dataprep is PID 1 and gets docker stop's SIGTERM itself (it answers the requests in flight, then
# exits 0). Arguments after the image name replace CMD: `dataprep-serve /models/x --threads 2 --max-batch 64`.
ENTRYPOINT ["dataprep", "serve", "--host", "0.0.0.0", "--port", "8000"]
CMD ["/adapter"]
