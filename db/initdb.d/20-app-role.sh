# 20-app-role.sh - the least-privilege role the application connects as. Sourced by the entrypoint
# (which defines the psql command in "${psql[@]}") once per cluster: on the primary that bootstraps
# a Patroni cluster (the role and its password then reach the standbys by replication), or on a
# standalone server's first start.
#
# The role may read and add guestbook messages and nothing else: no CREATE on the schema (PostgreSQL
# 15+ no longer grants it to PUBLIC), no UPDATE or DELETE, no other tables.
# Its name and password come from the environment or a secret file, never from the image.
if [ -n "${APP_DB_PASSWORD_FILE:-}" ]; then
  APP_DB_PASSWORD=$(<"$APP_DB_PASSWORD_FILE")
fi
: "${APP_DB_PASSWORD:?set APP_DB_PASSWORD or APP_DB_PASSWORD_FILE}"

"${psql[@]}" --dbname "$POSTGRES_DB" \
  --set app_user="${APP_DB_USER:-guestbook_app}" --set app_password="$APP_DB_PASSWORD" \
  --set db="$POSTGRES_DB" <<'SQL'
CREATE ROLE :"app_user" LOGIN PASSWORD :'app_password';
GRANT CONNECT ON DATABASE :"db" TO :"app_user";
GRANT USAGE ON SCHEMA public TO :"app_user";
GRANT SELECT, INSERT ON messages TO :"app_user";
SQL
