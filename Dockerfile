FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PONTIS_VAR_DIR=/var/lib/pontis
WORKDIR /app
RUN useradd --system --home /app pontis && mkdir -p /var/lib/pontis && chown pontis /var/lib/pontis
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN PONTIS_ENV=development python manage.py collectstatic --noinput && chown -R pontis /var/lib/pontis
USER pontis
EXPOSE 8000
CMD ["gunicorn", "config.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "4", "--access-logfile", "-"]
