# 30-monitor-role.sh - the role the PostgreSQL exporters log in as (monitor/Dockerfile,
# `db1-exporter`..`db3-exporter` in docker-compose.yml). Sourced by the entrypoint, like
# 20-app-role.sh, once per cluster; the standbys get the role by replication.
#
# pg_monitor (a role built into PostgreSQL 10+) may read every statistics view and setting an
# exporter needs, and nothing else: no table's data, no writes.
# Its password comes from a secret file; without one (the unit tests' standalone server) the role
# is not made, and nothing else depends on it.
if [ -n "${MONITOR_DB_PASSWORD_FILE:-}" ] && [ -r "$MONITOR_DB_PASSWORD_FILE" ]; then
  "${psql[@]}" --dbname "$POSTGRES_DB" \
    --set monitor_user="${MONITOR_DB_USER:-monitor}" \
    --set monitor_password="$(<"$MONITOR_DB_PASSWORD_FILE")" --set db="$POSTGRES_DB" <<'SQL'
CREATE ROLE :"monitor_user" LOGIN PASSWORD :'monitor_password' IN ROLE pg_monitor;
GRANT CONNECT ON DATABASE :"db" TO :"monitor_user";
SQL
else
  echo "30-monitor-role.sh: no MONITOR_DB_PASSWORD_FILE, no monitoring role made"
fi
