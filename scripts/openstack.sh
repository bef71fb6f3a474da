#!/usr/bin/env bash
# The OpenStack test cloud: Debian's Nova (Zed) with the fake virt driver on three fake
# compute hosts in two availability zones, with MariaDB, RabbitMQ, Keystone and Placement
# (uwsgi), Glance and a Neutron stand-in, all on loopback, all run as this user.
#
#   scripts/openstack.sh start   # install once (apt), bring the cloud up, print the state dir
#   scripts/openstack.sh stop    # stop every process by the PID kept in the state dir
#   scripts/openstack.sh status  # exit 0 when every process runs
#   scripts/openstack.sh install # only the apt install (a no-op once installed)
#   scripts/openstack.sh stop-nova api|conductor|scheduler   # one Nova service (fault tests)
#   scripts/openstack.sh start-nova api|conductor|scheduler  # start it again, wait for the API
#
# The state dir ($XDRS_OPENSTACK_STATE, default /tmp/xdrs-openstack-$UID) holds the
# generated admin password (password, mode 600), clouds.yaml, cloud.env (ports), the
# config files, data, logs/ and pids/. A `start` with everything up returns at once; any
# other `start` stops what is left and builds a fresh cloud. Ports: $XDRS_OPENSTACK_PORT
# (default 15000) + 0 keystone, 1 placement, 2 glance, 3 nova, 4 neutron stub, 5 mariadb,
# 6 rabbitmq, 7 epmd, 8 erlang distribution.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
state="${XDRS_OPENSTACK_STATE:-/tmp/xdrs-openstack-$(id -u)}"
base="${XDRS_OPENSTACK_PORT:-15000}"
KEYSTONE_PORT=$base PLACEMENT_PORT=$((base + 1)) GLANCE_PORT=$((base + 2))
NOVA_PORT=$((base + 3)) NEUTRON_PORT=$((base + 4)) DB_PORT=$((base + 5))
RABBIT_PORT=$((base + 6)) EPMD_PORT=$((base + 7)) DIST_PORT=$((base + 8))
HOSTS=(fake-1=az1 fake-2=az1 fake-3=az2)
PACKAGES=(nova-api nova-conductor nova-scheduler placement-api keystone rabbitmq-server
    glance-api mariadb-server python3-pymysql uwsgi-plugin-python3)
SERVICES=(mariadb rabbitmq neutron keystone placement glance nova-api nova-conductor
    nova-scheduler)
for h in "${HOSTS[@]}"; do SERVICES+=("compute-${h%%=*}"); done
export ERL_EPMD_PORT=$EPMD_PORT
cd /  # not a checkout: its placement/ package would shadow OpenStack's (uwsgi, python -c)
PY=/usr/bin/python3  # Debian's, with the OpenStack libraries

log() { echo "openstack.sh: $*" >&2; }

install() {
    local missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return
    local sudo=""
    if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
    log "installing ${missing[*]}"
    $sudo apt-get update -qq >&2
    # the packages' services are started by this script, not on install
    local policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        policy=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
        $sudo chmod +x "$policy"
    fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >&2
    if [ -n "$policy" ]; then $sudo rm -f "$policy"; fi
}

alive() { [ -f "$state/pids/$1" ] && kill -0 "$(cat "$state/pids/$1")" 2>/dev/null; }

status() {
    local s
    [ -f "$state/ready" ] || return 1
    for s in "${SERVICES[@]}"; do alive "$s" || return 1; done
}

stop() {  # every process group at once, then a grace of 15 s, then SIGKILL
    local s pids=() pid
    for s in "${SERVICES[@]}"; do
        [ -f "$state/pids/$s" ] || continue
        pid="$(cat "$state/pids/$s")"
        pids+=("$pid")
        # each service runs in a session of its own: its PID is its process group
        kill -TERM -- "-$pid" 2>/dev/null || true
    done
    local until=$((SECONDS + 15))
    for pid in "${pids[@]}"; do
        while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $until ]; do sleep 0.2; done
        kill -KILL -- "-$pid" 2>/dev/null || true
    done
    rm -f "$state"/pids/*
    [ -d "$state" ] && epmd -kill >/dev/null 2>&1 || true
    rm -f "$state/ready"
}

# run NAME CMD...: start CMD in a new session, output in logs/NAME.log, PID in pids/NAME
run() {
    local name="$1"
    shift
    setsid "$@" >"$state/logs/$name.log" 2>&1 </dev/null &
    echo $! >"$state/pids/$name"
}

wait_for() {  # wait_for WHAT SECONDS CMD...
    local what="$1" until=$((SECONDS + $2))
    shift 2
    until "$@" >/dev/null 2>&1; do
        if [ $SECONDS -ge $until ]; then
            log "$what not ready; logs in $state/logs"
            exit 1
        fi
        sleep 0.5
    done
}

port_open() { bash -c "exec 3<>/dev/tcp/127.0.0.1/$1"; }

http_up() { "$PY" -c "import urllib.request as u, sys; u.urlopen(sys.argv[1], timeout=2)" "$1"; }

render() {  # render TEMPLATE OUT: @NAME@ -> $NAME
    local sedargs=() v
    for v in STATE PASSWORD KEYSTONE_PORT PLACEMENT_PORT GLANCE_PORT NOVA_PORT NEUTRON_PORT \
        DB_PORT RABBIT_PORT; do
        sedargs+=(-e "s|@$v@|${!v}|g")
    done
    sed "${sedargs[@]}" "$1" >"$2"
}

configure() {
    rm -rf "$state"
    mkdir -p "$state"/{pids,logs,etc,mysql,rabbit,glance/images,nova/locks}
    mkdir -p "$state"/keystone/{fernet-keys,credential-keys}
    chmod 700 "$state"
    (umask 077 && "$PY" -c "import secrets; print(secrets.token_hex(16))" >"$state/password")
    STATE="$state" PASSWORD="$(cat "$state/password")"
    local f
    for f in "$here"/openstack/*.conf "$here"/openstack/clouds.yaml; do
        render "$f" "$state/etc/$(basename "$f")"
    done
    mkdir -p "$state/etc/placement" "$state/etc/keystone"
    mv "$state/etc/placement.conf" "$state/etc/placement/"
    mv "$state/etc/keystone.conf" "$state/etc/keystone/"
    mv "$state/etc/clouds.yaml" "$state/clouds.yaml"
    chmod 600 "$state"/etc/*.conf "$state"/etc/*/*.conf "$state/clouds.yaml"
    for f in "${HOSTS[@]}"; do
        printf '[DEFAULT]\nhost = %s\ncompute_driver = fake.MediumFakeDriver\n' "${f%%=*}" \
            >"$state/etc/compute-${f%%=*}.conf"
    done
    {
        for v in KEYSTONE_PORT PLACEMENT_PORT GLANCE_PORT NOVA_PORT NEUTRON_PORT DB_PORT; do
            echo "$v=${!v}"
        done
        echo "PASSWORD=$PASSWORD"
    } >"$state/cloud.env"
    chmod 600 "$state/cloud.env"
}

start_db_and_bus() {
    mariadb-install-db --no-defaults --user="$(id -un)" --datadir="$state/mysql" \
        >"$state/logs/mariadb-install.log" 2>&1
    run mariadb mariadbd --no-defaults --user="$(id -un)" --datadir="$state/mysql" \
        --socket="$state/mysqld.sock" --port="$DB_PORT" --bind-address=127.0.0.1 \
        --pid-file="$state/mysqld.pid" --innodb-buffer-pool-size=64M --max-connections=400 \
        --skip-log-bin --innodb-flush-log-at-trx-commit=0
    echo "[]." >"$state/rabbit/enabled_plugins"
    run rabbitmq env HOME="$state/rabbit" RABBITMQ_NODENAME="xdrs@localhost" \
        RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$RABBIT_PORT" \
        RABBITMQ_DIST_PORT="$DIST_PORT" RABBITMQ_MNESIA_BASE="$state/rabbit/mnesia" \
        RABBITMQ_LOG_BASE="$state/rabbit/log" RABBITMQ_ENABLED_PLUGINS_FILE="$state/rabbit/enabled_plugins" \
        /usr/lib/rabbitmq/bin/rabbitmq-server
    run neutron "$PY" "$here/openstack/neutron_stub.py" "$NEUTRON_PORT"
    wait_for mariadb 60 mariadb --no-defaults --socket="$state/mysqld.sock" -e "select 1"
    local sql="" db
    for db in keystone placement glance nova_api nova nova_cell0; do
        sql+="CREATE DATABASE IF NOT EXISTS $db; "
    done
    sql+="CREATE USER IF NOT EXISTS 'xdrs'@'127.0.0.1' IDENTIFIED BY '$PASSWORD'; "
    sql+="GRANT ALL PRIVILEGES ON *.* TO 'xdrs'@'127.0.0.1';"
    mariadb --no-defaults --socket="$state/mysqld.sock" <<<"$sql"  # stdin: not in ps
}

db_sync() {  # the schema of every service, in parallel (each waits on MariaDB only)
    local etc="$state/etc" nova=(--config-file "$state/etc/nova.conf")
    (
        keystone-manage --config-file "$etc/keystone/keystone.conf" db_sync
        keystone-manage --config-file "$etc/keystone/keystone.conf" fernet_setup \
            --keystone-user "$(id -un)" --keystone-group "$(id -gn)"
        keystone-manage --config-file "$etc/keystone/keystone.conf" credential_setup \
            --keystone-user "$(id -un)" --keystone-group "$(id -gn)"
        # the password through the environment, not the command line (ps shows that)
        OS_BOOTSTRAP_PASSWORD="$PASSWORD" keystone-manage \
            --config-file "$etc/keystone/keystone.conf" bootstrap --bootstrap-region-id RegionOne \
            --bootstrap-admin-url "http://127.0.0.1:$KEYSTONE_PORT/v3/" \
            --bootstrap-internal-url "http://127.0.0.1:$KEYSTONE_PORT/v3/" \
            --bootstrap-public-url "http://127.0.0.1:$KEYSTONE_PORT/v3/"
    ) >"$state/logs/keystone-manage.log" 2>&1 &
    local k=$!
    placement-manage --config-file "$etc/placement/placement.conf" db sync \
        >"$state/logs/placement-manage.log" 2>&1 &
    local p=$!
    glance-manage --config-file "$etc/glance-api.conf" db_sync \
        >"$state/logs/glance-manage.log" 2>&1 &
    local g=$!
    (
        nova-manage "${nova[@]}" api_db sync
        nova-manage "${nova[@]}" cell_v2 map_cell0 --database_connection \
            "mysql+pymysql://xdrs:$PASSWORD@127.0.0.1:$DB_PORT/nova_cell0"
        nova-manage "${nova[@]}" cell_v2 create_cell --name cell1
        nova-manage "${nova[@]}" db sync
    ) >"$state/logs/nova-manage.log" 2>&1 &
    local n=$!
    local pid failed=0
    for pid in $k $p $g $n; do wait "$pid" || failed=1; done
    if [ $failed = 1 ]; then log "a database sync failed; logs in $state/logs"; exit 1; fi
}

uwsgi_app() {  # uwsgi_app NAME PORT WSGI_SCRIPT ENV=VALUE
    # uwsgi's plain HTTP socket drops kept-alive connections now and then: close each one
    run "$1" uwsgi --plugin python3 --http-socket "127.0.0.1:$2" --wsgi-file "$3" --master \
        --processes 2 --threads 1 --die-on-term --env "$4" \
        --add-header "Connection: close" --logto2 "$state/logs/$1.uwsgi.log"
}

start_nova() {  # start_nova api|conductor|scheduler
    run "nova-$1" "nova-$1" --config-file "$state/etc/nova.conf" \
        --log-file "$state/logs/nova-$1.service.log"
}

stop_one() {  # stop_one NAME: the service's process group, SIGKILL after 15 s
    local pid
    [ -f "$state/pids/$1" ] || return 0
    pid="$(cat "$state/pids/$1")"
    kill -TERM -- "-$pid" 2>/dev/null || true
    local until=$((SECONDS + 15))
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $until ]; do sleep 0.2; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$state/pids/$1"
}

nova_service() {  # nova_service stop|start api|conductor|scheduler
    case "${2:-}" in
    api | conductor | scheduler) ;;
    *) echo "usage: $0 $1-nova api|conductor|scheduler" >&2; exit 2 ;;
    esac
    [ -f "$state/ready" ] || { log "no cloud running in $state"; exit 1; }
    if [ "$1" = stop ]; then stop_one "nova-$2"; return; fi
    alive "nova-$2" && return
    start_nova "$2"
    if [ "$2" = api ]; then
        local port
        port="$(sed -n 's/^NOVA_PORT=//p' "$state/cloud.env")"
        wait_for nova-api 60 http_up "http://127.0.0.1:$port/"
    fi
}

start_services() {
    local etc="$state/etc" h
    uwsgi_app keystone "$KEYSTONE_PORT" /usr/bin/keystone-wsgi-public \
        "OS_KEYSTONE_CONFIG_DIR=$etc/keystone"
    uwsgi_app placement "$PLACEMENT_PORT" /usr/bin/placement-api \
        "OS_PLACEMENT_CONFIG_DIR=$etc/placement"
    run glance glance-api --config-file "$etc/glance-api.conf"
    wait_for keystone 60 http_up "http://127.0.0.1:$KEYSTONE_PORT/v3"
    "$PY" "$here/openstack/bootstrap.py" catalog "$state"
    wait_for placement 60 http_up "http://127.0.0.1:$PLACEMENT_PORT/"
    wait_for glance 60 http_up "http://127.0.0.1:$GLANCE_PORT/versions"
    wait_for rabbitmq 60 port_open "$RABBIT_PORT"  # AMQP listens once the broker is up
    for h in api conductor scheduler; do start_nova "$h"; done
    for h in "${HOSTS[@]}"; do
        h="${h%%=*}"
        run "compute-$h" "$PY" -c 'import sys; from nova.cmd.compute import main; sys.argv[0] = "nova-compute"; main()' \
            --config-file "$etc/nova.conf" --config-file "$etc/compute-$h.conf" \
            --log-file "$state/logs/compute-$h.service.log"
    done
    wait_for nova-api 60 http_up "http://127.0.0.1:$NOVA_PORT/"
    local names=()
    for h in "${HOSTS[@]}"; do names+=("${h%%=*}"); done
    "$PY" "$here/openstack/bootstrap.py" wait-hosts "$state" 120 "${names[@]}"
    nova-manage --config-file "$etc/nova.conf" cell_v2 discover_hosts \
        >"$state/logs/discover-hosts.log" 2>&1
    "$PY" "$here/openstack/bootstrap.py" cloud "$state" "${HOSTS[@]}"
}

start() {
    install
    if status; then echo "$state"; return; fi
    if [ -d "$state/pids" ]; then stop; fi
    local t0=$SECONDS
    configure
    start_db_and_bus
    db_sync
    start_services
    touch "$state/ready"
    log "cloud up in $((SECONDS - t0)) s"
    echo "$state"
}

main() {
    case "${1:-start}" in
    start) start ;;
    install) install ;;
    stop) stop ;;
    status) status ;;
    stop-nova) nova_service stop "${2:-}" ;;
    start-nova) nova_service start "${2:-}" ;;
    *) echo "usage: $0 start|stop|status|install|stop-nova S|start-nova S" >&2; exit 2 ;;
    esac
}

main "$@"; exit  # one line: an edit of this file while it runs cannot change what runs
