#!/bin/sh
# Runs once, as the PostgreSQL superuser, when the data volume is new: a database owned by a
# NON-superuser owner role, which runs the migrations and creates the application role. The
# superuser is used for nothing else, so row-level security binds every role the API uses.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  --set owner_password="$OWNER_DB_PASSWORD" <<'SQL'
CREATE ROLE clinicflow_owner LOGIN NOSUPERUSER NOBYPASSRLS CREATEROLE PASSWORD :'owner_password';
CREATE DATABASE clinicflow OWNER clinicflow_owner;
\connect clinicflow
CREATE EXTENSION IF NOT EXISTS btree_gist;
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS unaccent;
SQL
