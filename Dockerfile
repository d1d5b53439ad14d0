# vae-tfp as a shared demo server: the dashboard in shared mode (a private space per browser session, published
# read-only runs, the limits in vae_tfp/settings.py), runs and uploaded data on the volume /data.
#
#   docker build -t vae-tfp .
#   docker run -p 8501:8501 -v vae-tfp-data:/data vae-tfp                 # http://localhost:8501
#   docker run -p 9000:9000 -e PORT=9000 -e VAE_TFP_MAX_EPOCHS=50 -v vae-tfp-data:/data vae-tfp
#
# Every VAE_TFP_* setting (README, "A shared server") can be given with -e; STREAMLIT_* variables set Streamlit's
# own options (server.maxUploadSize is the transport cap on a file; keep it above VAE_TFP_MAX_UPLOAD_MB so a file
# just over the server's cap is refused with its size in words).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    PORT=8501 \
    VAE_TFP_MODE=shared \
    VAE_TFP_HOME=/data \
    STREAMLIT_SERVER_MAX_UPLOAD_SIZE=100 \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin app \
    && mkdir -p /data \
    && chown app:app /data
WORKDIR /app

# The pinned dependencies first (a layer that survives code changes), then the project itself (requirements.txt's
# last line, -e ., installs it: the same `pip install -r requirements.txt` that Streamlit Community Cloud runs).
COPY requirements.txt pyproject.toml ./
RUN grep -v '^-e ' requirements.txt > /tmp/pinned.txt \
    && pip install -r /tmp/pinned.txt \
    && rm /tmp/pinned.txt
COPY vae_tfp ./vae_tfp
COPY dashboard ./dashboard
COPY .streamlit ./.streamlit
RUN pip install -r requirements.txt \
    && cd / && python -c "import vae_tfp.spaces, dashboard; print('vae_tfp and dashboard import from', vae_tfp.__file__)"

USER app
VOLUME /data
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/_stcore/health' % os.environ.get('PORT', '8501'), timeout=4)"
CMD ["sh", "-c", "exec python -m streamlit run dashboard/app.py --server.port=\"${PORT:-8501}\" --server.address=0.0.0.0"]
